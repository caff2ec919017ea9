"""k-nearest-neighbour graphs: search backends and the reference self-first table format."""

from __future__ import annotations

import importlib.util
import logging
import math
from typing import Any, Optional

import numpy as np
import torch

from ._progress import progress
from ._validation import (
    ArrayLike,
    as_tensor,
    check_features,
    check_in_options,
    check_int,
    to_like,
)

__all__ = [
    "AUTO_EXACT_BUDGET",
    "AUTO_FAISS_MIN_SAMPLES",
    "BACKENDS",
    "METRICS",
    "check_knn_index",
    "choose_backend",
    "drop_self",
    "from_self_first",
    "knn",
    "to_self_first",
]

logger = logging.getLogger("linkage_gcn")

#: Metrics of :func:`knn`: cosine similarity, or minus the Euclidean distance (``"l2"``).
METRICS = ("cosine", "l2")
#: Backends of :func:`knn` (see its ``backend`` parameter; ``"auto"``: :func:`choose_backend`).
BACKENDS = ("auto", "torch", "faiss", "faiss-ivf", "faiss-hnsw", "torch_cluster")

#: Largest similarity tile (query rows x database rows) held at once by the torch backend.
DEFAULT_TILE = 1 << 25

#: ``backend="auto"`` uses faiss (when installed, for CPU data) from this many points on.
#: Measured on one core of a 2-core machine, k = 80: the exact flat faiss index was 1.6 to
#: 1.8 times as fast as the torch backend from N = 5,000 up (13,233 LFW faces, D = 128:
#: 1.7 s against 3.0 s; 20,000 random points, D = 128: 5.6 s against 9.5 s). Below this
#: size the torch search takes seconds and keeps float64 inputs and the device as they are.
AUTO_FAISS_MIN_SAMPLES = 20_000

#: ``backend="auto"`` keeps faiss's exact search while ``N * N * D`` (multiply-adds) is at
#: most this; beyond, it builds an approximate HNSW index. 8e12 is about 10 minutes on one
#: core of the machine above (the flat index ran at 1.3e10 multiply-adds a second): N up to
#: about 250,000 at D = 128 or 125,000 at D = 512.
AUTO_EXACT_BUDGET = 8e12


def knn(
    x: ArrayLike,
    k: int,
    *,
    metric: str = "cosine",
    backend: str = "auto",
    chunk_size: Optional[int] = None,
    tile_size: int = DEFAULT_TILE,
    nprobe: int = 32,
    verbose: Optional[bool] = None,
) -> tuple[ArrayLike, ArrayLike]:
    """Find the ``k`` nearest neighbours of every row of ``x`` among the other rows.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (N, D)
        Embeddings. A tensor stays on its device (CPU or GPU).
    k : int
        Neighbours per row, ``1 <= k < N``. The row itself is never among
        them, even when an exact duplicate ties with it.
    metric : {"cosine", "l2"}
        ``"cosine"``: similarity is the cosine of the angle (rows are
        L2-normalised first; zero rows are an error). ``"l2"``: similarity is
        minus the Euclidean distance.
    backend : {"auto", "torch", "faiss", "faiss-ivf", "faiss-hnsw", "torch_cluster"}
        ``"torch"``: exact, chunked matrix product and top-k on ``x``'s device,
        memory bounded by ``tile_size`` (never an N x N matrix). ``"faiss"``:
        exact flat index (needs ``faiss-cpu``). ``"faiss-ivf"`` and
        ``"faiss-hnsw"``: approximate indexes for millions of points.
        ``"torch_cluster"``: ``torch_cluster.knn`` when installed (slow on CPU:
        never chosen by ``"auto"``). ``"auto"`` picks with :func:`choose_backend`:
        ``"torch"`` for fewer than :data:`AUTO_FAISS_MIN_SAMPLES` points, for
        data on a GPU or without faiss; otherwise ``"faiss"`` (exact) while
        ``N * N * D <= AUTO_EXACT_BUDGET`` and ``"faiss-hnsw"`` beyond. The
        choice is logged at INFO level on the ``"linkage_gcn"`` logger.
    chunk_size : int, optional
        Query rows per chunk of the torch backend; by default as many as fit
        in ``tile_size`` similarities (at least 1, at most 1024).
    tile_size : int
        Largest number of similarities (query rows x database rows) held at
        once by the torch backend; the database is split into blocks when one
        query chunk against all rows would exceed it.
    nprobe : int
        Lists visited per query by ``"faiss-ivf"`` (accuracy against speed).
    verbose : bool, optional
        Progress bar: ``None`` shows it on a terminal when the search is long.

    Returns
    -------
    index : same kind as ``x``, int64, shape (N, k)
        Neighbour ids, rows sorted by decreasing similarity.
    similarity : same kind as ``x``, float, shape (N, k)
        Cosine similarity, or minus the Euclidean distance for ``"l2"``.

    Raises
    ------
    ValueError
        On NaN or infinity, a shape that is not (N, D), ``k >= N``, an unknown
        metric or backend, zero rows under the cosine metric, or a backend
        whose package is not installed.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> index, sim = knn(x, 1)
    >>> index.ravel()
    array([1, 0, 3, 2])
    >>> np.round(sim.ravel(), 3)
    array([0.994, 0.994, 0.994, 0.994])
    >>> knn(x, 1, metric="l2")[0].ravel()
    array([1, 0, 3, 2])
    """
    metric = check_in_options(metric, METRICS, "metric")
    backend = check_in_options(backend, BACKENDS, "backend")
    t, was_numpy = check_features(x, name="x", min_samples=2)
    k = check_int(k, "k", minimum=1)
    if k >= t.shape[0]:
        raise ValueError(
            f"k must be smaller than the number of points: k={k} but x has {t.shape[0]} rows "
            "(a point is never its own neighbour)."
        )
    if metric == "cosine":
        t = _normalize_rows(t)
    if backend == "auto":
        backend = choose_backend(
            t.shape[0],
            t.shape[1],
            faiss_available=importlib.util.find_spec("faiss") is not None,
            on_gpu=t.device.type != "cpu",
        )
        logger.info(
            "kNN search: backend 'auto' chose %r for N=%d points of dimension %d (k=%d).",
            backend,
            t.shape[0],
            t.shape[1],
            k,
        )
    if backend == "torch":
        index, sim = _knn_torch(t, k, metric, chunk_size, tile_size, verbose)
    elif backend.startswith("faiss"):
        index, sim = _knn_faiss(t, k, metric, backend, nprobe)
    else:
        index, sim = _knn_torch_cluster(t, k, metric)
    return to_like(index, was_numpy), to_like(sim, was_numpy)


def choose_backend(
    n_samples: int, n_features: int, *, faiss_available: bool, on_gpu: bool = False
) -> str:
    """The backend that ``backend="auto"`` uses for ``n_samples`` points of ``n_features``.

    A pure function of its arguments (it builds nothing and imports nothing).

    Parameters
    ----------
    n_samples : int
        Number of points ``N``.
    n_features : int
        Their dimension ``D``.
    faiss_available : bool
        Whether the ``faiss`` package is installed.
    on_gpu : bool, default=False
        Whether the data are on a GPU, where the exact torch search is fast
        (faiss-cpu would copy them to the host).

    Returns
    -------
    {"torch", "faiss", "faiss-hnsw"}
        ``"torch"`` (exact) without faiss, on a GPU or below
        :data:`AUTO_FAISS_MIN_SAMPLES` points; ``"faiss"`` (exact flat index)
        while ``N * N * D <= AUTO_EXACT_BUDGET``; ``"faiss-hnsw"`` beyond. HNSW
        rather than IVF because its recall is far higher at a similar cost: on
        the 13,233 LFW faces (k = 80), 0.997 against 0.914 for IVF at
        ``nprobe=32``.

    Examples
    --------
    >>> choose_backend(10_000, 128, faiss_available=True)
    'torch'
    >>> choose_backend(100_000, 128, faiss_available=True)
    'faiss'
    >>> choose_backend(5_000_000, 256, faiss_available=True)
    'faiss-hnsw'
    >>> choose_backend(5_000_000, 256, faiss_available=False)
    'torch'
    """
    n = check_int(n_samples, "n_samples", minimum=0)
    d = check_int(n_features, "n_features", minimum=1)
    if not faiss_available or on_gpu or n < AUTO_FAISS_MIN_SAMPLES:
        return "torch"
    if float(n) * n * d <= AUTO_EXACT_BUDGET:
        return "faiss"
    return "faiss-hnsw"


def _normalize_rows(t: torch.Tensor) -> torch.Tensor:
    """L2-normalise the rows, refusing all-zero rows (their cosine is undefined)."""
    norms = t.norm(dim=1, keepdim=True)
    zero = norms.squeeze(1) == 0
    if bool(zero.any()):
        raise ValueError(
            f"x has {int(zero.sum())} all-zero row(s) (first: row {int(zero.nonzero()[0, 0])}); "
            "the cosine metric is undefined for them."
        )
    return t / norms


def _knn_torch(
    t: torch.Tensor,
    k: int,
    metric: str,
    chunk_size: Optional[int],
    tile_size: int,
    verbose: Optional[bool],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact search: chunked matrix products and top-k, never an N x N matrix."""
    n = t.shape[0]
    tile_size = check_int(tile_size, "tile_size", minimum=1)
    if chunk_size is None:
        chunk_size = int(min(1024, max(1, tile_size // n)))
    chunk_size = check_int(chunk_size, "chunk_size", minimum=1)
    block = max(k + 1, tile_size // chunk_size)
    db_t = t.T.contiguous()  # (D, N): a contiguous right operand makes the product faster
    # For l2, rank by 2<q, x> - |x|^2 (the query's own |q|^2 does not change the order).
    bias = -(t * t).sum(1) if metric == "l2" else None
    long = n * n * t.shape[1] > 5e11
    index = torch.empty(n, k, dtype=torch.long, device=t.device)
    sim = torch.empty(n, k, dtype=t.dtype, device=t.device)
    starts = range(0, n, chunk_size)
    for start in progress(starts, desc="kNN search", verbose=verbose, long=long, unit="chunk"):
        stop = min(start + chunk_size, n)
        index[start:stop], sim[start:stop] = _topk_chunk(t, db_t, bias, start, stop, k, block)
    if metric == "l2":
        sim = -((-bias).unsqueeze(1) - sim).clamp_min(0).sqrt()  # -|q - x|
    return index, sim


def _topk_chunk(
    t: torch.Tensor,
    db_t: torch.Tensor,
    bias: Optional[torch.Tensor],
    start: int,
    stop: int,
    k: int,
    block: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of query rows ``start:stop`` over the database, in blocks, self masked."""
    n = t.shape[0]
    q = t[start:stop]
    rows = torch.arange(start, stop, device=t.device)
    best_sim = best_idx = None
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        if bias is None:
            s = q @ db_t[:, b0:b1]
        else:
            s = torch.addmm(bias[b0:b1].unsqueeze(0), q, db_t[:, b0:b1], alpha=2)
        self_in = (rows >= b0) & (rows < b1)
        if bool(self_in.any()):
            s[self_in.nonzero().squeeze(1), rows[self_in] - b0] = -math.inf
        vals, idx = s.topk(min(k, b1 - b0), dim=1)
        idx = idx + b0
        if best_sim is not None:
            vals, order = torch.cat([best_sim, vals], dim=1).topk(k, dim=1)
            idx = torch.cat([best_idx, idx], dim=1).gather(1, order)
        best_sim, best_idx = vals, idx
    return best_idx, best_sim


def _require(module: str, backend: str, install: str) -> Any:
    """Import ``module`` for ``backend``, with a clear error when it is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"backend {backend!r} needs the package {module!r}, which is not installed; "
            f"install it ({install}) or use backend='torch'."
        )
    return importlib.import_module(module)


def _knn_faiss(
    t: torch.Tensor, k: int, metric: str, backend: str, nprobe: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Search with a faiss index (flat, IVF or HNSW); results back on ``t``'s device."""
    faiss = _require("faiss", backend, "pip install 'linkage-gcn[faiss]'")
    x = np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)
    n, d = x.shape
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    if backend == "faiss":
        index = faiss.IndexFlat(d, faiss_metric)
    elif backend == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss_metric)
        index.hnsw.efSearch = max(64, 2 * (k + 1))
    else:
        nlist = int(max(1, min(4 * math.sqrt(n), n // 39)))
        quantizer = faiss.IndexFlat(d, faiss_metric)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric)
        index.train(x)
        index.nprobe = int(min(nprobe, nlist))
    index.add(x)
    sim, idx = index.search(x, k + 1)
    idx_t, sim_t = drop_self(torch.from_numpy(idx), torch.from_numpy(sim))
    if bool((idx_t < 0).any()):  # faiss pads with -1 when it finds too few
        raise ValueError(
            "the approximate index returned fewer than k neighbours for some points; "
            "raise nprobe or use an exact backend."
        )
    if metric == "l2":
        sim_t = -sim_t.clamp_min(0).sqrt()
    return idx_t.to(t.device), sim_t.to(device=t.device, dtype=t.dtype)


def _knn_torch_cluster(t: torch.Tensor, k: int, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Search with ``torch_cluster.knn`` and sort each row by decreasing similarity."""
    tc = _require(
        "torch_cluster",
        "torch_cluster",
        "a wheel matching your torch from https://data.pyg.org/whl/, see the install guide",
    )
    # torch_cluster.knn(x, y, k) returns (y_pos, x_pos) pairs: for each row of y, k rows of x.
    _, col = tc.knn(t, t, k + 1, cosine=False)
    idx = col.view(t.shape[0], k + 1)
    if metric == "cosine":
        sim = (t.unsqueeze(1) * t[idx]).sum(-1)
    else:
        sim = -(t.unsqueeze(1) - t[idx]).norm(dim=-1)
    order = sim.argsort(dim=1, descending=True, stable=True)
    return drop_self(idx.gather(1, order), sim.gather(1, order))


def drop_self(index: ArrayLike, *values: ArrayLike) -> tuple[ArrayLike, ...]:
    """Remove one column from every row of a search result that may list the row itself.

    The rule, the same wherever the package reads or computes ``K + 1``
    neighbours to keep ``K``: in row ``i``, drop the first occurrence of ``i``
    (wherever exact duplicates or ties put it); when ``i`` is absent, drop
    the last (farthest) column. All other entries keep their order. The same
    positions are dropped from every array of ``values`` (similarities,
    distances).

    Parameters
    ----------
    index : numpy.ndarray or torch.Tensor of int, shape (N, K + 1)
        Neighbour ids; row ``i`` holds the neighbours of point ``i``.
    *values : numpy.ndarray or torch.Tensor, shape (N, K + 1)
        Arrays aligned with ``index``.

    Returns
    -------
    tuple of arrays of shape (N, K)
        ``index`` followed by each of ``values``, each of the kind it came as
        (numpy or torch, on its device).

    Raises
    ------
    ValueError
        When ``index`` is not 2-D with at least two columns or a value array
        has another shape.

    Examples
    --------
    >>> index = np.array([[0, 2, 1], [0, 1, 2], [1, 0, 2]])  # self first, second, absent
    >>> dist = np.array([[0.0, 0.1, 0.2], [0.0, 0.0, 0.3], [0.1, 0.2, 0.4]])
    >>> new_index, new_dist = drop_self(index, dist)
    >>> new_index
    array([[2, 1],
           [0, 2],
           [1, 0]])
    >>> new_dist
    array([[0.1, 0.2],
           [0. , 0.3],
           [0.1, 0.2]])
    """
    t, was_numpy = as_tensor(index, name="index", dtype=torch.long)
    if t.dim() != 2 or t.shape[1] < 2:
        raise ValueError(
            f"index must be 2-D (N, K + 1) with K >= 1 to drop a column, got shape "
            f"{tuple(t.shape)}."
        )
    n, width = t.shape
    rows = torch.arange(n, device=t.device)
    is_self = t == rows.unsqueeze(1)
    # argmax returns the first maximal position: the first occurrence of the row's own id
    column = torch.where(
        is_self.any(dim=1),
        is_self.to(torch.int8).argmax(dim=1),
        torch.full((n,), width - 1, dtype=torch.long, device=t.device),
    )
    keep = torch.ones(n, width, dtype=torch.bool, device=t.device)
    keep[rows, column] = False
    out = [to_like(t[keep].view(n, width - 1), was_numpy)]
    for i, v in enumerate(values):
        vt, v_numpy = as_tensor(v, name=f"values[{i}]")
        if vt.shape != t.shape:
            raise ValueError(
                f"values[{i}] has shape {tuple(vt.shape)} but index has shape {tuple(t.shape)}."
            )
        out.append(to_like(vt[keep.to(vt.device)].view(n, width - 1), v_numpy))
    return tuple(out)


def to_self_first(index: ArrayLike) -> ArrayLike:
    """Prepend each row's own id: (N, K) neighbours -> the reference (N, K+1) table.

    Parameters
    ----------
    index : array-like or torch.Tensor of shape (N, K)
        Neighbour ids, self excluded.

    Returns
    -------
    table : same kind as ``index``, shape (N, K + 1)
        Row ``i`` is ``[i, nn_1, ..., nn_K]``, the ``knn.npy`` format of L-GCN.

    Examples
    --------
    >>> to_self_first(np.array([[1, 2], [0, 2], [1, 0]]))
    array([[0, 1, 2],
           [1, 0, 2],
           [2, 1, 0]])
    """
    t, was_numpy = as_tensor(index, name="index", dtype=torch.long)
    if t.dim() != 2:
        raise ValueError(f"index must be 2-D (N, K), got shape {tuple(t.shape)}.")
    rows = torch.arange(t.shape[0], device=t.device).unsqueeze(1)
    return to_like(torch.cat([rows, t], dim=1), was_numpy)


def from_self_first(table: ArrayLike) -> ArrayLike:
    """Drop the leading self column of a reference (N, K+1) kNN table.

    Raises a :class:`ValueError` when a row does not start with its own id.

    Examples
    --------
    >>> from_self_first(np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]]))
    array([[1, 2],
           [0, 2],
           [1, 0]])
    """
    t, was_numpy = as_tensor(table, name="knn table", dtype=torch.long)
    if t.dim() != 2 or t.shape[1] < 2:
        raise ValueError(
            f"a kNN table must be 2-D (N, K+1) with K >= 1, got shape {tuple(t.shape)}."
        )
    rows = torch.arange(t.shape[0], device=t.device)
    bad = t[:, 0] != rows
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"kNN table is not self-first: row {first} starts with {int(t[first, 0])} "
            f"({int(bad.sum())} row(s) affected); each row i must be [i, nn_1, ..., nn_K]."
        )
    return to_like(t[:, 1:].contiguous(), was_numpy)


def check_knn_index(
    index: Any,
    n: Optional[int] = None,
    *,
    name: str = "knn_index",
    rows_of: str = "x",
    width: Optional[int] = None,
    min_width: Optional[int] = None,
    why: str = "",
    device: Any = None,
) -> torch.Tensor:
    """Validate a (N, K) kNN table: the one kNN-table check of the package.

    Every entry point that takes a kNN table (the estimator, the IPS
    builders, the samplers, the training and scoring loops, the file writers,
    the incremental state) checks it here.

    Parameters
    ----------
    index : array-like or torch.Tensor of int, shape (N, K)
        Neighbour ids of each row, nearest first, self excluded.
    n : int, optional
        The number of rows the table must have (the samples of ``rows_of``);
        by default its own row count. Ids must lie in ``[0, n)``.
    name : str
        What to call the table in messages (an argument, a flag or a file).
    rows_of : str
        What ``n`` counts, for messages ("x", "X", "--feat_path").
    width : int, optional
        Check only the first ``width`` columns (a sampler reads no further).
    min_width : int, optional
        The fewest columns accepted; ``why`` says what needs them.
    why : str
        What needs ``min_width`` columns (for the message).
    device : torch.device, optional
        Move the table there.

    Returns
    -------
    torch.Tensor of int64, shape (N, K)

    Raises
    ------
    ValueError
        On floating, boolean or complex ids, a shape other than (N, K) with
        K >= 1, another row count than ``n``, fewer than ``min_width``
        columns, ids outside ``[0, n)`` or a row listing itself (each message
        names the table, and the first bad row and column).

    Examples
    --------
    >>> check_knn_index([[1, 2], [0, 2], [1, 0]])
    tensor([[1, 2],
            [0, 2],
            [1, 0]])
    >>> check_knn_index([[1], [1]])
    Traceback (most recent call last):
    ...
    ValueError: knn_index row 1 lists itself among its own neighbours; ...
    """
    t, _ = as_tensor(index, name=name)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer neighbour ids, got dtype {t.dtype} (ids are never "
            "rounded: cast a table of whole numbers to int first)."
        )
    if t.dim() != 2 or t.shape[1] == 0:
        raise ValueError(
            f"{name} must be a 2-D (N, K) table of neighbour ids with K >= 1, got shape "
            f"{tuple(t.shape)}."
        )
    t = t.long()
    if device is not None:
        t = t.to(device)
    rows = t.shape[0]
    if n is None:
        n = rows
    elif rows != n:
        raise ValueError(
            f"{name} has {rows} rows but {rows_of} has {n} samples: the table needs one row "
            f"per sample of {rows_of}."
        )
    if min_width is not None and t.shape[1] < min_width:
        need = f" ({why})" if why else ""
        raise ValueError(
            f"{name} has {t.shape[1]} neighbours per row but {min_width} are needed{need}; "
            "pass a wider table."
        )
    cols = t if width is None else t[:, :width]
    if cols.numel() == 0:
        return t
    bad = (cols < 0) | (cols >= n)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise ValueError(
            f"{name} holds neighbour ids outside [0, {n}) ({int(bad.sum())} of them; "
            f"{rows_of} has {n} samples): row {row}, column {col} is {int(cols[row, col])}."
        )
    own = cols == torch.arange(rows, device=t.device).unsqueeze(1)
    if bool(own.any()):
        row = int(own.nonzero()[0, 0])
        raise ValueError(
            f"{name} row {row} lists itself among its own neighbours; the table must "
            "exclude each row's own id (linkage_gcn.knn.from_self_first converts the "
            "self-first reference format)."
        )
    return t
