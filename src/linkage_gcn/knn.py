"""k-nearest-neighbour graphs: search backends and the reference self-first table format."""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from ._params import PARAMS, check_param
from ._progress import progress
from ._validation import (
    ArrayLike,
    as_tensor,
    check_features,
    check_ids,
    check_int,
    to_like,
)

__all__ = [
    "AUTO_EXACT_BUDGET",
    "AUTO_FAISS_MIN_SAMPLES",
    "BACKENDS",
    "METRICS",
    "KNNIndex",
    "check_backend",
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

    A thin door over :class:`KNNIndex`: the rows of ``x`` are added to an
    index, which is then searched for each of them, itself excluded.

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
    searcher = KNNIndex(
        metric, backend, chunk_size=chunk_size, tile_size=tile_size, nprobe=nprobe,
        verbose=verbose,
    )  # fmt: skip
    searcher._settings()  # the settings are named before the data
    t, was_numpy = check_features(x, name="x", min_samples=2)
    k = check_int(k, "k", minimum=1)
    if k >= t.shape[0]:
        raise ValueError(
            f"k must be smaller than the number of points: k={k} but x has {t.shape[0]} rows "
            "(a point is never its own neighbour)."
        )
    searcher.add(t)
    sim, index = searcher.search(t, k, self_ids=torch.arange(t.shape[0], device=t.device))
    if bool((index < 0).any()):  # faiss pads with -1 when it finds too few
        raise ValueError(
            "the approximate index returned fewer than k neighbours for some points; "
            "raise nprobe or use an exact backend."
        )
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


@dataclass
class _Rows:
    """What a :class:`KNNIndex` holds once rows were added (its backend fixed)."""

    backend: str
    n_features: int
    n: int = 0
    db: Optional[torch.Tensor] = None  # torch backends: (D, capacity), unit rows for cosine
    sq: Optional[torch.Tensor] = None  # torch backends, l2: squared norms, (capacity,)
    faiss: Any = None  # faiss backends: the faiss index
    module: Any = None  # torch_cluster


class KNNIndex:
    """A nearest-neighbour index: add rows, search them (exact tiled torch search or faiss).

    As faiss's indexes and PyG's ``KNNIndex``: :meth:`add` rows (numbered
    ``0, 1, ...`` in the order added), then :meth:`search` queries for their
    ``k`` nearest rows. Similarities follow the package's convention: the
    cosine of the angle, or minus the Euclidean distance (``"l2"``); results
    are sorted nearest first. :func:`knn` is this index searched for its own
    rows; :class:`~linkage_gcn.incremental.IncrementalClusterer` keeps one
    over a growing collection.

    Parameters
    ----------
    metric : {"cosine", "l2"}
        ``"cosine"`` L2-normalises the rows and queries (zero rows are an error).
    backend : {"auto", "torch", "faiss", "faiss-ivf", "faiss-hnsw", "torch_cluster"}
        As :func:`knn`'s. ``"torch"`` keeps the rows on the device and in the
        floating dtype of the first :meth:`add` and searches them exactly;
        the faiss backends keep a faiss index (``"faiss-ivf"`` trains its
        lists on the first :meth:`add`). ``"auto"`` is chosen by
        :func:`choose_backend` at the first :meth:`add`, from that batch's
        size, dimension and device (logged at INFO level).
    chunk_size : int, optional
        Query rows per tile of the torch backend; by default as many as fit
        in ``tile_size`` similarities (at least 1, at most 1024).
    tile_size : int
        Largest number of similarities held at once by the torch backend.
    nprobe : int
        Lists visited per query by ``"faiss-ivf"``.
    verbose : bool, optional
        Progress bar of long torch searches (``None``: on a terminal).

    Attributes
    ----------
    backend_ : str or None
        The backend in use (``None`` before the first :meth:`add`).
    n_features_in_ : int or None
        The width of the rows (``None`` before the first :meth:`add`).

    Examples
    --------
    >>> index = KNNIndex(metric="cosine", backend="torch")
    >>> index.add(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]]))
    >>> sim, ids = index.search(np.array([[1.0, 0.05]]), 2)
    >>> ids, np.round(sim, 3)
    (array([[0, 1]]), array([[0.999, 0.998]]))
    >>> index.search(np.array([[1.0, 0.0]]), 1, self_ids=[0])[1]  # row 0 itself excluded
    array([[1]])
    >>> index.remove([0])
    >>> len(index), index
    (2, KNNIndex(metric='cosine', backend='torch', n_rows=2))
    """

    def __init__(
        self,
        metric: str = "cosine",
        backend: str = "auto",
        *,
        chunk_size: Optional[int] = None,
        tile_size: int = DEFAULT_TILE,
        nprobe: int = 32,
        verbose: Optional[bool] = None,
    ) -> None:
        self.metric = metric
        self.backend = backend
        self.chunk_size = chunk_size
        self.tile_size = tile_size
        self.nprobe = nprobe
        self.verbose = verbose
        self._rows: Optional[_Rows] = None

    # ------------------------------------------------------------------ views

    @property
    def backend_(self) -> Optional[str]:
        """The backend in use, ``None`` before the first :meth:`add`."""
        return None if self._rows is None else self._rows.backend

    @property
    def n_features_in_(self) -> Optional[int]:
        """The width of the rows, ``None`` before the first :meth:`add`."""
        return None if self._rows is None else self._rows.n_features

    def __len__(self) -> int:
        return 0 if self._rows is None else self._rows.n

    def __repr__(self) -> str:
        backend = self.backend if self._rows is None else self._rows.backend
        return (
            f"{type(self).__name__}(metric={self.metric!r}, backend={backend!r}, "
            f"n_rows={len(self)})"
        )

    def _settings(self) -> dict[str, Any]:
        """The settings, each checked by its declaration in :data:`~linkage_gcn._params.PARAMS`."""
        return {
            "metric": check_param("metric", self.metric),
            "backend": check_param("backend", self.backend, PARAMS["knn_backend"]),
            "chunk_size": check_param("chunk_size", self.chunk_size),
            "tile_size": check_param("tile_size", self.tile_size),
            "nprobe": check_param("nprobe", self.nprobe),
            "verbose": check_param("verbose", self.verbose),
        }

    # ------------------------------------------------------------------ updates

    def add(self, x: ArrayLike) -> None:
        """Add rows, numbered on from ``len(self)`` in their order.

        Parameters
        ----------
        x : array-like or torch.Tensor of shape (n, D)
            Rows of the width of those already added.

        Raises
        ------
        ValueError
            On a bad setting, NaN or infinity, another width, a zero row under
            the cosine metric or a backend whose package is missing (nothing
            is added).
        """
        cfg = self._settings()
        t, _ = check_features(x, name="x", min_samples=0)
        if self._rows is not None and t.shape[1] != self._rows.n_features:
            raise ValueError(
                f"x has {t.shape[1]} features but the index holds rows of "
                f"{self._rows.n_features}."
            )
        if cfg["metric"] == "cosine":
            t = _unit_rows(t, "x")
        if t.shape[0] == 0:
            return
        rows = self._rows if self._rows is not None else self._start(t, cfg)
        if rows.faiss is not None:
            rows.faiss.add(_as_faiss(t))
        else:
            _append_columns(rows, t, cfg["metric"])
        rows.n += t.shape[0]
        self._rows = rows

    def remove(self, ids: ArrayLike) -> None:
        """Remove rows; the rows after them move up (ids stay ``range(len(self))``).

        Parameters
        ----------
        ids : array-like of int
            Ids of stored rows (repeats are harmless).

        Raises
        ------
        ValueError
            On ids that are not integers in ``[0, len(self))``.
        """
        n = len(self)
        drop = check_ids(ids, n, name="ids", what="row id").reshape(-1)
        if drop.numel() == 0:
            return
        rows = self._rows
        keep = torch.ones(n, dtype=torch.bool)
        keep[drop.cpu()] = False
        m = int(keep.sum())
        if rows.faiss is not None:
            if rows.backend == "faiss-ivf":
                rows.faiss.make_direct_map()
            kept = rows.faiss.reconstruct_n(0, n)[keep.numpy()]
            rows.faiss.reset()  # an IVF index keeps its trained lists
            rows.faiss.add(np.ascontiguousarray(kept))
        else:
            mask = keep.to(rows.db.device)
            rows.db[:, :m] = rows.db[:, :n][:, mask]
            if rows.sq is not None:
                rows.sq[:m] = rows.sq[:n][mask]
        rows.n = m

    def reset(self) -> None:
        """Remove every row, and what the first :meth:`add` chose (``"auto"``, IVF lists)."""
        self._rows = None

    # ------------------------------------------------------------------ search

    def search(
        self,
        queries: ArrayLike,
        k: int,
        *,
        self_ids: Optional[ArrayLike] = None,
        bounds: Optional[ArrayLike] = None,
    ) -> tuple[Any, ...]:
        """The ``k`` stored rows nearest to each query.

        Parameters
        ----------
        queries : array-like or torch.Tensor of shape (Q, D)
        k : int
            Rows per query, at most ``len(self)`` (``len(self) - 1`` with
            ``self_ids``).
        self_ids : array-like of int, shape (Q,), optional
            The stored row that each query is: it is never among the query's
            neighbours, even when an exact duplicate ties with it (see
            :func:`drop_self` for the faiss backends).
        bounds : array-like of float, shape (len(self),), optional
            A similarity per stored row (e.g. that of its own ``k``-th
            neighbour): also report each (query, row) pair more similar than
            the row's bound, the queries that enter the row's own neighbour
            list. Exact with the torch backend; the other backends find them
            among each query's ``k`` results.

        Returns
        -------
        similarity : same kind as ``queries``, float, shape (Q, k)
            Cosine similarity, or minus the Euclidean distance; nearest first.
            ``-inf`` where an approximate index found fewer than ``k`` rows.
        ids : same kind as ``queries``, int64, shape (Q, k)
            Row ids (``-1`` where fewer than ``k`` were found).
        entering : tuple of three arrays, only with ``bounds``
            ``(query, row, similarity)`` of each pair above the row's bound.

        Raises
        ------
        ValueError
            On an empty index, another width, NaN, ``k`` out of range, or
            ``self_ids``/``bounds`` of another shape or out of range.
        """
        cfg = self._settings()
        q, was_numpy = check_features(queries, name="queries", min_samples=0)
        rows = self._rows
        if rows is None or rows.n == 0:
            raise ValueError("the index is empty: add rows before searching it.")
        if q.shape[1] != rows.n_features:
            raise ValueError(
                f"queries have {q.shape[1]} features but the index holds rows of "
                f"{rows.n_features}."
            )
        own = None
        if self_ids is not None:
            own = check_ids(self_ids, rows.n, name="self_ids", what="row id").reshape(-1)
        if own is not None and own.numel() != q.shape[0]:
            raise ValueError(
                f"self_ids has {own.numel()} entries but there are {q.shape[0]} queries; give "
                "one stored row per query."
            )
        k = check_int(k, "k", minimum=1)
        most = rows.n - (own is not None)
        if k > most:
            why = " other than each query itself" if own is not None else ""
            raise ValueError(f"k={k} but the index holds only {most} rows{why}.")
        bound = None if bounds is None else _check_bounds(bounds, rows.n)
        if cfg["metric"] == "cosine":
            q = _unit_rows(q, "queries")
        if rows.faiss is not None:
            sim, ids, entering = _search_faiss(rows, q, k, own, bound, cfg)
        else:
            sim, ids, entering = _search_torch(rows, q, k, own, bound, cfg)
        out = [
            to_like(sim.to(device=q.device, dtype=q.dtype), was_numpy),
            to_like(ids.to(q.device), was_numpy),
        ]
        if bound is None:
            return tuple(out)
        qi, row, s = entering
        entering = (qi.to(q.device), row.to(q.device), s.to(device=q.device, dtype=q.dtype))
        return (*out, tuple(to_like(a, was_numpy) for a in entering))

    # ------------------------------------------------------------------ internals

    def _start(self, t: torch.Tensor, cfg: dict[str, Any]) -> _Rows:
        """Fix the backend at the first addition (``"auto"``: :func:`choose_backend`)."""
        backend = cfg["backend"]
        n, d = t.shape
        if backend == "auto":
            backend = choose_backend(
                n, d, faiss_available=importlib.util.find_spec("faiss") is not None,
                on_gpu=t.device.type != "cpu",
            )  # fmt: skip
            logger.info(
                "kNN index: backend 'auto' chose %r for N=%d points of dimension %d.",
                backend, n, d,
            )  # fmt: skip
        rows = _Rows(backend=backend, n_features=int(d))
        module = _require(backend)
        if backend.startswith("faiss"):
            rows.faiss = _faiss_index(module, backend, _as_faiss(t), cfg["metric"])
        else:
            rows.module = module
        return rows


def check_backend(backend: str) -> str:
    """Check a backend name and that its optional package is installed, before any work.

    Parameters
    ----------
    backend : str
        One of :data:`BACKENDS`.

    Returns
    -------
    str
        ``backend``.

    Raises
    ------
    ValueError
        On an unknown backend, or one whose package is not installed (the
        message says how to install it).

    Examples
    --------
    >>> check_backend("torch")
    'torch'
    >>> check_backend("annoy")
    Traceback (most recent call last):
    ...
    ValueError: unknown backend 'annoy'; choose one of 'auto', 'torch', 'faiss', ...
    """
    backend = check_param("backend", backend, PARAMS["knn_backend"])
    _require(backend)
    return backend


def _unit_rows(t: torch.Tensor, name: str) -> torch.Tensor:
    """Rows scaled to length one; all-zero rows (no direction, no cosine) are refused."""
    length = torch.linalg.vector_norm(t, dim=1)
    zero = torch.nonzero(length == 0).squeeze(1)
    if zero.numel():
        raise ValueError(
            f"{name} has {zero.numel()} all-zero row(s) (first: row {int(zero[0])}); the "
            "cosine metric is undefined for them."
        )
    return t / length.unsqueeze(1)


def _check_bounds(bounds: ArrayLike, n: int) -> torch.Tensor:
    """One similarity bound per stored row (``inf`` allowed, NaN not)."""
    t, _ = as_tensor(bounds, name="bounds")
    if not t.is_floating_point() or t.shape != (n,):
        raise ValueError(
            f"bounds must be a float array of shape ({n},) (one per stored row), got "
            f"{t.dtype} of shape {tuple(t.shape)}."
        )
    if bool(torch.isnan(t).any()):
        raise ValueError("bounds holds NaN.")
    return t


def _as_faiss(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def _require(backend: str) -> Any:
    """Import the optional package of ``backend`` (``None`` if it needs none), or say how."""
    if backend.startswith("faiss"):
        module, install = "faiss", "pip install 'linkage-gcn[faiss]'"
    elif backend == "torch_cluster":
        module = "torch_cluster"
        install = "a wheel for your torch from https://data.pyg.org/whl/, see the install guide"
    else:
        return None
    if importlib.util.find_spec(module) is None:
        raise ValueError(
            f"backend {backend!r} needs the package {module!r}, which is not installed; "
            f"install it ({install}) or use backend='torch'."
        )
    return importlib.import_module(module)


def _faiss_index(faiss: Any, backend: str, x: np.ndarray, metric: str) -> Any:
    """An empty faiss index (flat, HNSW, or IVF with lists trained on ``x``)."""
    n, d = x.shape
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    if backend == "faiss":
        return faiss.IndexFlat(d, faiss_metric)
    if backend == "faiss-hnsw":
        return faiss.IndexHNSWFlat(d, 32, faiss_metric)
    nlist = int(max(1, min(4 * math.sqrt(n), n // 39)))
    index = faiss.IndexIVFFlat(faiss.IndexFlat(d, faiss_metric), d, nlist, faiss_metric)
    index.train(x)
    return index


def _append_columns(rows: _Rows, t: torch.Tensor, metric: str) -> None:
    """Store new rows as columns of ``rows.db`` (capacity doubles: amortised appends)."""
    n, b = rows.n, t.shape[0]
    if rows.db is None or n + b > rows.db.shape[1]:
        cap = max(n + b, 0 if rows.db is None else 2 * rows.db.shape[1])
        like = t if rows.db is None else rows.db
        db = torch.empty(t.shape[1], cap, dtype=like.dtype, device=like.device)
        sq = torch.empty(cap, dtype=like.dtype, device=like.device) if metric == "l2" else None
        if n:
            db[:, :n] = rows.db[:, :n]
            if sq is not None:
                sq[:n] = rows.sq[:n]
        rows.db, rows.sq = db, sq
    t = t.to(device=rows.db.device, dtype=rows.db.dtype)
    rows.db[:, n : n + b] = t.T
    if rows.sq is not None:
        rows.sq[n : n + b] = (t * t).sum(1)


def _l2_similarity(scores: torch.Tensor, q_sq: torch.Tensor) -> torch.Tensor:
    """``-|q - x|`` from the ranking scores ``2 <q, x> - |x|^2`` and ``|q|^2``."""
    return -(q_sq.unsqueeze(1) - scores).clamp_min(0).sqrt()


def _search_torch(
    rows: _Rows,
    q: torch.Tensor,
    k: int,
    own: Optional[torch.Tensor],
    bounds: Optional[torch.Tensor],
    cfg: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Exact search (or torch_cluster's): chunked matrix products and top-k, never Q x N."""
    n = rows.n
    device, dtype = rows.db.device, rows.db.dtype
    q = q.to(device=device, dtype=dtype)
    own = None if own is None else own.to(device)
    bounds = None if bounds is None else bounds.to(device=device, dtype=dtype)
    if rows.module is not None:
        sim, ids = _search_torch_cluster(rows, q, k, own)
        return sim, ids, None if bounds is None else _entering(sim, ids, bounds)
    db_t = rows.db[:, :n]  # (D, N): a contiguous right operand makes the product faster
    # For l2, rank by 2<q, x> - |x|^2 (the query's own |q|^2 does not change the order).
    bias = None if rows.sq is None else -rows.sq[:n]
    q_sq = None if bias is None else (q * q).sum(1)
    tile = cfg["tile_size"]
    chunk = cfg["chunk_size"] or int(min(1024, max(1, tile // n)))
    block = max(k + 1, tile // chunk)
    m = q.shape[0]
    ids = torch.empty(m, k, dtype=torch.long, device=device)
    sim = torch.empty(m, k, dtype=dtype, device=device)
    hits: list[tuple[torch.Tensor, ...]] = []
    starts = range(0, m, chunk)
    long = m * n * q.shape[1] > 5e11
    for start in progress(starts, desc="kNN search", verbose=cfg["verbose"], long=long,
                          unit="chunk"):  # fmt: skip
        stop = min(start + chunk, m)
        ids[start:stop], sim[start:stop] = _topk_chunk(
            q[start:stop], db_t, bias, None if own is None else own[start:stop], k, block,
            None if bounds is None else (bounds, q_sq[start:stop] if bias is not None else None),
            hits, start,
        )  # fmt: skip
    if bias is not None:
        sim = _l2_similarity(sim, q_sq)  # -|q - x|
    if bounds is None:
        return sim, ids, None
    if not hits:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return sim, ids, (empty, empty, torch.zeros(0, dtype=dtype, device=device))
    return sim, ids, tuple(torch.cat(part) for part in zip(*hits))


def _topk_chunk(
    q: torch.Tensor,
    db_t: torch.Tensor,
    bias: Optional[torch.Tensor],
    own: Optional[torch.Tensor],
    k: int,
    block: int,
    bounds: Optional[tuple[torch.Tensor, Optional[torch.Tensor]]],
    hits: list[tuple[torch.Tensor, ...]],
    offset: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of the query rows ``q`` over the database, in blocks, their own rows masked.

    With ``bounds`` (the bounds and, for l2, ``|q|^2``), each (query, row)
    pair above the row's bound is appended to ``hits`` (queries numbered from
    ``offset``).
    """
    n = db_t.shape[1]
    best_sim = best_idx = None
    for b0 in range(0, n, block):
        b1 = min(b0 + block, n)
        if bias is None:
            s = q @ db_t[:, b0:b1]
        else:
            s = torch.addmm(bias[b0:b1].unsqueeze(0), q, db_t[:, b0:b1], alpha=2)
        if own is not None:
            self_in = (own >= b0) & (own < b1)
            if bool(self_in.any()):
                s[self_in.nonzero().squeeze(1), own[self_in] - b0] = -math.inf
        if bounds is not None:
            bound, q_sq = bounds
            similarity = s if q_sq is None else _l2_similarity(s, q_sq)
            qi, col = torch.nonzero(similarity > bound[b0:b1], as_tuple=True)
            if qi.numel():
                hits.append((qi + offset, col + b0, similarity[qi, col]))
        vals, idx = s.topk(min(k, b1 - b0), dim=1)
        idx = idx + b0
        if best_sim is not None:
            vals, order = torch.cat([best_sim, vals], dim=1).topk(k, dim=1)
            idx = torch.cat([best_idx, idx], dim=1).gather(1, order)
        best_sim, best_idx = vals, idx
    return best_idx, best_sim


def _search_torch_cluster(
    rows: _Rows, q: torch.Tensor, k: int, own: Optional[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Search with ``torch_cluster.knn`` and sort each row by decreasing similarity."""
    db = rows.db[:, : rows.n].T.contiguous()
    width = k + (own is not None)
    # torch_cluster.knn(x, y, k) returns (y_pos, x_pos) pairs: for each row of y, k rows of x.
    _, col = rows.module.knn(db, q, width, cosine=False)
    idx = col.view(q.shape[0], width)
    if rows.sq is None:
        sim = (q.unsqueeze(1) * db[idx]).sum(-1)
    else:
        sim = -(q.unsqueeze(1) - db[idx]).norm(dim=-1)
    order = sim.argsort(dim=1, descending=True, stable=True)
    idx, sim = idx.gather(1, order), sim.gather(1, order)
    if own is not None:
        idx, sim = _drop_columns(idx, own, sim)
    return sim, idx


def _search_faiss(
    rows: _Rows,
    q: torch.Tensor,
    k: int,
    own: Optional[torch.Tensor],
    bounds: Optional[torch.Tensor],
    cfg: dict[str, Any],
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Search the faiss index (flat, IVF or HNSW); results as CPU tensors."""
    index = rows.faiss
    width = k + (own is not None)
    if rows.backend == "faiss-hnsw":
        index.hnsw.efSearch = max(64, 2 * width)
    elif rows.backend == "faiss-ivf":
        index.nprobe = int(min(cfg["nprobe"], index.nlist))
    dist, idx = index.search(_as_faiss(q), width)
    ids, sim = torch.from_numpy(idx), torch.from_numpy(dist)
    if cfg["metric"] == "l2":
        sim = -sim.clamp_min(0).sqrt()
    sim = sim.masked_fill(ids < 0, -math.inf)  # faiss pads with -1 when it finds too few
    if own is not None:
        ids, sim = _drop_columns(ids, own.cpu(), sim)
    return sim, ids, None if bounds is None else _entering(sim, ids, bounds.cpu())


def _entering(
    sim: torch.Tensor, ids: torch.Tensor, bounds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The (query, row, similarity) results above the row's bound."""
    found = ids >= 0
    above = found & (sim > bounds[ids.clamp_min(0)])
    qi, col = torch.nonzero(above, as_tuple=True)
    return qi, ids[qi, col], sim[qi, col]


def _drop_columns(
    t: torch.Tensor, own: torch.Tensor, *values: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Drop from row ``r`` the first occurrence of ``own[r]``, else its last column.

    The rule of :func:`drop_self`; the same positions go from each of ``values``.
    """
    n, width = t.shape
    is_own = t == own.to(t.device).unsqueeze(1)
    # argmax returns the first maximal position: the first occurrence of the row's own id
    column = torch.where(
        is_own.any(dim=1),
        is_own.to(torch.int8).argmax(dim=1),
        torch.full((n,), width - 1, dtype=torch.long, device=t.device),
    )
    keep = torch.ones(n, width, dtype=torch.bool, device=t.device)
    keep[torch.arange(n, device=t.device), column] = False
    return tuple(v[keep.to(v.device)].view(n, width - 1) for v in (t, *values))


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
    t, was_numpy = _self_column_table(index, "index")
    checked = []
    for i, v in enumerate(values):
        vt, v_numpy = as_tensor(v, name=f"values[{i}]")
        if vt.shape != t.shape:
            raise ValueError(
                f"values[{i}] has shape {tuple(vt.shape)} but index has shape {tuple(t.shape)}."
            )
        checked.append((vt, v_numpy))
    rows = torch.arange(t.shape[0], device=t.device)
    out = _drop_columns(t, rows, *(vt for vt, _ in checked))
    kinds = [was_numpy, *(v_numpy for _, v_numpy in checked)]
    return tuple(to_like(a, as_numpy) for a, as_numpy in zip(out, kinds))


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
    t, was_numpy = _self_column_table(table, "knn table")
    rows = torch.arange(t.shape[0], device=t.device)
    bad = t[:, 0] != rows
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"kNN table is not self-first: row {first} starts with {int(t[first, 0])} "
            f"({int(bad.sum())} row(s) affected); each row i must be [i, nn_1, ..., nn_K]."
        )
    return to_like(t[:, 1:].contiguous(), was_numpy)


def _self_column_table(table: ArrayLike, name: str) -> tuple[torch.Tensor, bool]:
    """An (N, K + 1) id table with K >= 1, from which one column per row is to go."""
    t, was_numpy = as_tensor(table, name=name, dtype=torch.long)
    if t.dim() != 2 or t.shape[1] < 2:
        raise ValueError(
            f"{name} must be 2-D (N, K + 1) with K >= 1 to drop a column, got shape "
            f"{tuple(t.shape)}."
        )
    return t, was_numpy


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
