"""k-nearest-neighbour graphs: search backends and the reference self-first table format."""

from __future__ import annotations

import importlib.util
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    check_in_options,
    check_int,
    check_real,
    to_like,
)

__all__ = [
    "AUTO_EXACT_BUDGET",
    "AUTO_FAISS_MIN_SAMPLES",
    "BACKENDS",
    "FAISS_SETTINGS",
    "METRICS",
    "KNNIndex",
    "KNNSettings",
    "RecallEstimate",
    "check_backend",
    "check_knn_index",
    "choose_backend",
    "choose_settings",
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
#: The approximate backends (:func:`knn` estimates and logs their recall).
APPROXIMATE = ("faiss-ivf", "faiss-hnsw")

#: Largest similarity tile (query rows x database rows) held at once by the torch backend.
DEFAULT_TILE = 1 << 25

#: ``backend="auto"`` uses faiss (when installed, for CPU data) from this many points on.
#: Measured on one core of a 2-core machine, k = 80: the exact flat faiss index was 1.6 to
#: 1.8 times as fast as the torch backend from N = 5,000 up (13,233 LFW faces, D = 128:
#: 1.7 s against 3.0 s; 20,000 random points, D = 128: 5.6 s against 9.5 s). Below this
#: size the torch search takes seconds and keeps float64 inputs and the device as they are.
AUTO_FAISS_MIN_SAMPLES = 20_000

#: ``backend="auto"`` keeps faiss's exact search while ``N * N * D`` (multiply-adds) is at
#: most this; beyond, it builds an approximate HNSW index. The flat index runs at about
#: 8.5e10 multiply-adds a second on 2 threads of the 2-core machine (1.3e10 on one busy
#: core): 8e12 is 1.5 to 10 minutes, N up to about 250,000 at D = 128 or 125,000 at
#: D = 512. Below it exact search is also the fastest at a useful recall: at N = 100,000
#: synthetic 128-D faces it took 15-20 s (recall 1) where the HNSW settings of
#: :data:`FAISS_SETTINGS` took 15.7 s for recall@80 0.83, and recall@80 0.94 cost 25 s
#: (``bench_knn.py --table``).
AUTO_EXACT_BUDGET = 8e12

#: The parameters of the approximate faiss backends, by ``(backend, growing)``: the one
#: table of the kNN settings (:func:`choose_settings` reads it; a ``params`` mapping
#: overrides single entries). ``growing=False``: the index is built from all its rows at
#: once (:func:`knn`); ``growing=True``: a :class:`KNNIndex` that rows reach batch by
#: batch, where nothing is trained on the first batch (no 8-bit codes; an IVF index
#: still trains its lists there, which is why the growing library never uses it).
#: HNSW: ``M`` links per node, ``ef_construction``, ``ef_search`` (by default
#: ``max(64, ef_factor * (k + 1))``), ``storage`` (``"flat"`` float32 or ``"sq8"``:
#: 8-bit codes searched, then ``refine * (k + 1)`` candidates re-ranked exactly, so the
#: similarities returned are exact). IVF: ``nlist`` (by default ``min(4 sqrt(N),
#: N / 39)``) and ``nprobe``. Chosen from ``examples/benchmarks/bench_knn.py --table``
#: (2 threads, synthetic 128-D faces, recall@k on 1,000 queries against exact search):
#: at N = 1M, ``M=48, ef_construction=80`` with 8-bit codes and ``ef_search`` 64 gave
#: recall@20 0.95, recall@80 0.82 (0.9986 of the same-identity neighbours) in about
#: 290 s of CPU to build and 275 s to search; the former ``M=32, ef_construction=40``
#: float graph reached recall@80 0.69-0.74 at ``ef_search`` 64-128 for about twice the
#: search time; IVF (``nlist`` 4096) reached recall@80 0.54-0.76 at ``nprobe`` 16-256
#: for 140-1,100 s of search, with only 0.83-0.90 of the same-identity neighbours. At 1M,
#: ``knn(X, 80)`` with these settings took 410 s on the machine shared with another job
#: (583 s of CPU: about 300 s on two free cores) for recall@80 0.843, against 503 s for
#: the former settings. These synthetic faces are nearly isotropic (111 of 128 principal
#: directions hold 90 % of the variance): beyond a face's own identity its neighbours are
#: strangers at similarities 0.33-0.35, and recall@80 >= 0.95 costs about an exact search.
FAISS_SETTINGS: dict[tuple[str, bool], dict[str, Any]] = {
    ("faiss-hnsw", False): {
        "M": 48, "ef_construction": 80, "ef_factor": 1.0, "storage": "sq8", "refine": 2.0,
    },
    ("faiss-hnsw", True): {"M": 32, "ef_construction": 40, "ef_factor": 2.0, "storage": "flat"},
    ("faiss-ivf", False): {"nprobe": 32},
    ("faiss-ivf", True): {"nprobe": 32},
}  # fmt: skip

#: Smallest ``efSearch`` of the HNSW backend (fewer candidates can leave rows short of k).
EF_SEARCH_MIN = 64

#: Queries per faiss search call (bounds the candidate lists an index gathers at once).
FAISS_QUERY_CHUNK = 1 << 16

#: Queries that :func:`knn` samples to estimate the recall of an approximate backend.
RECALL_QUERIES = 512

#: The parameters that each approximate backend takes (``params`` of :func:`knn`).
_PARAM_RULES: dict[str, tuple[str, ...]] = {
    "faiss-hnsw": ("M", "ef_construction", "ef_search", "ef_factor", "storage", "refine"),
    "faiss-ivf": ("nlist", "nprobe"),
}
#: HNSW storages: float32 vectors, or 8-bit scalar codes re-ranked exactly.
HNSW_STORAGES = ("flat", "sq8")


@dataclass(frozen=True)
class KNNSettings:
    """A kNN backend and its parameters, as :func:`choose_settings` resolves them.

    Attributes
    ----------
    backend : str
        One of :data:`BACKENDS` other than ``"auto"``.
    params : dict
        The backend's parameters (empty for the exact backends); see
        :data:`FAISS_SETTINGS`.

    Examples
    --------
    >>> KNNSettings("faiss-ivf", {"nlist": 100, "nprobe": 8}).describe()
    'faiss-ivf nlist=100 nprobe=8'
    """

    backend: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The backend and its parameters in one line (the form of the log)."""
        return " ".join([self.backend, *(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in self.params.items())])  # fmt: skip


@dataclass(frozen=True)
class RecallEstimate:
    """The recall@k of an approximate search, estimated on a sample of its queries.

    Attributes
    ----------
    k : int
        Neighbours per query.
    recall : float
        Mean over the sampled queries of the fraction of their exact ``k``
        nearest rows that the index returned.
    n_queries : int
        Queries sampled.
    seconds : float
        Time of the check (the exact search of the sampled queries).
    queries : numpy.ndarray of int64
        Positions of the sampled queries among those searched.
    """

    k: int
    recall: float
    n_queries: int
    seconds: float
    queries: np.ndarray = field(repr=False)


def choose_settings(
    n_samples: int,
    n_features: int,
    k: Optional[int] = None,
    *,
    faiss_available: bool,
    backend: str = "auto",
    on_gpu: bool = False,
    growing: bool = False,
    params: Optional[Mapping[str, Any]] = None,
) -> KNNSettings:
    """The backend and parameters of a search of ``n_samples`` points (the kNN settings table).

    A pure function of its arguments (it builds nothing and imports nothing):
    ``backend="auto"`` picks the backend by size (:func:`choose_backend`),
    then the backend's parameters come from :data:`FAISS_SETTINGS`,
    overridden by ``params``.

    Parameters
    ----------
    n_samples : int
        Number of points ``N`` (rows of the index).
    n_features : int
        Their dimension ``D``.
    k : int, optional
        Neighbours per query; sets HNSW's ``ef_search`` (without it, the
        search sets it from its own ``k``).
    faiss_available : bool
        Whether the ``faiss`` package is installed.
    backend : str, default="auto"
        One of :data:`BACKENDS`; a name keeps that backend.
    on_gpu : bool, default=False
        Whether the data are on a GPU.
    growing : bool, default=False
        Rows will reach the index batch by batch (a :class:`KNNIndex` kept
        open): no storage trained on the first batch.
    params : mapping, optional
        Parameters of a named approximate backend that replace the table's
        (see :data:`FAISS_SETTINGS`); refused with ``"auto"`` and the exact
        backends.

    Returns
    -------
    KNNSettings

    Raises
    ------
    ValueError
        On an unknown backend, a parameter the backend does not take, or a
        bad value.

    Examples
    --------
    >>> choose_settings(10_000, 128, 80, faiss_available=True)
    KNNSettings(backend='torch', params={})
    >>> choose_settings(1_000_000, 128, 80, faiss_available=True).describe()
    'faiss-hnsw M=48 ef_construction=80 storage=sq8 refine=2 ef_search=81'
    >>> choose_settings(1_000_000, 128, faiss_available=True, growing=True).describe()
    'faiss-hnsw M=32 ef_construction=40 ef_factor=2 storage=flat'
    >>> choose_settings(40_000, 64, 10, faiss_available=True, backend="faiss-ivf").describe()
    'faiss-ivf nprobe=32 nlist=800'
    """
    n = check_int(n_samples, "n_samples", minimum=0)
    d = check_int(n_features, "n_features", minimum=1)
    if k is not None:
        k = check_int(k, "k", minimum=1)
    backend = check_param("backend", backend, PARAMS["knn_backend"])
    given = _check_params(backend, params)
    if backend == "auto":
        if not faiss_available or on_gpu or n < AUTO_FAISS_MIN_SAMPLES:
            backend = "torch"
        elif float(n) * n * d <= AUTO_EXACT_BUDGET:
            backend = "faiss"
        else:
            backend = "faiss-hnsw"
    if backend not in APPROXIMATE:
        return KNNSettings(backend)
    p = {**FAISS_SETTINGS[(backend, bool(growing))], **given}
    if backend == "faiss-ivf":
        p.setdefault("nlist", int(max(1, min(4 * math.sqrt(n), n // 39))))
        return KNNSettings(backend, p)
    if p["storage"] == "flat":
        if "refine" in given:
            raise ValueError("refine re-ranks the 8-bit codes: it needs storage='sq8'.")
        p.pop("refine", None)
    else:
        p.setdefault("refine", 2.0)
    if k is not None and "ef_search" not in p:
        p["ef_search"] = max(EF_SEARCH_MIN, math.ceil(p["ef_factor"] * (k + 1)))
    if "ef_search" in p:
        p.pop("ef_factor", None)
    return KNNSettings(backend, p)


def _check_params(backend: str, params: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``params`` of a named approximate backend, each checked."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of parameter names to values, got {params!r}.")
    if not params:
        return {}
    if backend not in _PARAM_RULES:
        what = ("name the approximate backend they are for ('faiss-hnsw' or 'faiss-ivf')"
                if backend == "auto" else "it has no parameters")  # fmt: skip
        raise ValueError(f"params were given to backend {backend!r}: {what}.")
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in _PARAM_RULES[backend]:
            accepted = ", ".join(repr(n) for n in _PARAM_RULES[backend])
            raise ValueError(
                f"backend {backend!r} has no parameter {name!r}; it takes {accepted}."
            )
        if name == "storage":
            out[name] = check_in_options(value, HNSW_STORAGES, "storage")
        elif name in ("ef_factor", "refine"):
            out[name] = check_real(value, name, minimum=1.0 if name == "refine" else 0.0,
                                   inclusive=name == "refine")  # fmt: skip
        else:
            out[name] = check_int(value, name, minimum=2 if name == "M" else 1)
    return out


def knn(
    x: ArrayLike,
    k: int,
    *,
    metric: str = "cosine",
    backend: str = "auto",
    chunk_size: Optional[int] = None,
    tile_size: int = DEFAULT_TILE,
    nprobe: Optional[int] = None,
    params: Optional[Mapping[str, Any]] = None,
    recall_queries: int = RECALL_QUERIES,
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
        ``"faiss-hnsw"``: approximate indexes for millions of points, with the
        parameters of :data:`FAISS_SETTINGS` (HNSW: 8-bit codes searched, the
        candidates re-ranked exactly). ``"torch_cluster"``:
        ``torch_cluster.knn`` when installed (slow on CPU: never chosen by
        ``"auto"``). ``"auto"`` picks with :func:`choose_settings`:
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
    nprobe : int, optional
        Lists visited per query by ``"faiss-ivf"`` (default: the table's, 32).
    params : mapping, optional
        Parameters of a named approximate backend replacing the table's, e.g.
        ``{"M": 32, "ef_search": 128}`` for ``"faiss-hnsw"`` (see
        :data:`FAISS_SETTINGS`).
    recall_queries : int, default=512
        With an approximate backend, rows sampled (seeded) to estimate
        recall@k against an exact search of those rows alone, logged at INFO
        level with the settings and the time; 0 skips the estimate.
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
        metric or backend, zero rows under the cosine metric, a backend whose
        package is not installed, or ``params`` the backend does not take.

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
    start = time.perf_counter()
    # the settings are checked before the data
    cfg = KNNIndex(
        metric, backend, chunk_size=chunk_size, tile_size=tile_size, nprobe=nprobe,
        params=params, verbose=verbose,
    )._settings()  # fmt: skip
    n_check = check_param("recall_queries", recall_queries)
    t, was_numpy = check_features(x, name="x", min_samples=2)
    k = check_int(k, "k", minimum=1)
    n, d = t.shape
    if k >= n:
        raise ValueError(
            f"k must be smaller than the number of points: k={k} but x has {n} rows "
            "(a point is never its own neighbour)."
        )
    settings = choose_settings(
        n, d, k, faiss_available=importlib.util.find_spec("faiss") is not None,
        backend=cfg["backend"], on_gpu=t.device.type != "cpu", params=cfg["params"],
    )  # fmt: skip
    if cfg["backend"] == "auto":
        logger.info(
            "kNN search: backend 'auto' chose %r for N=%d points of dimension %d (k=%d)%s.",
            settings.backend, n, d, k,
            f": {settings.describe()}" if settings.params else "",
        )  # fmt: skip
    searcher = KNNIndex(
        metric, settings.backend, chunk_size=chunk_size, tile_size=tile_size,
        params=settings.params or None, verbose=verbose,
    )  # fmt: skip
    searcher.add(t)
    own = torch.arange(n, device=t.device)
    sim, index = searcher.search(t, k, self_ids=own)
    if bool((index < 0).any()):  # faiss pads with -1 when it finds too few
        raise ValueError(
            "the approximate index returned fewer than k neighbours for some points; "
            "raise ef_search or nprobe (params=...) or use an exact backend."
        )
    if settings.backend in APPROXIMATE and n_check > 0:
        seconds = time.perf_counter() - start
        sample = _sample_rows(n, n_check)
        sample = sample.to(t.device)
        est = searcher._estimate(t[sample], index[sample], k, own[sample], sample)
        logger.info(
            "kNN: %s, recall@%d %.3f on %d sampled queries, %.1f s (recall check %.1f s).",
            settings.describe(), k, est.recall, est.n_queries, seconds, est.seconds,
        )  # fmt: skip
    elif settings.backend not in APPROXIMATE:
        logger.info(
            "kNN: %s, exact, k=%d, %.1f s.", settings.describe(), k, time.perf_counter() - start
        )
    return to_like(index, was_numpy), to_like(sim, was_numpy)


def choose_backend(
    n_samples: int, n_features: int, *, faiss_available: bool, on_gpu: bool = False
) -> str:
    """The backend that ``backend="auto"`` uses for ``n_samples`` points of ``n_features``.

    A pure function of its arguments (it builds nothing and imports nothing);
    :func:`choose_settings` adds the backend's parameters.

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
        while ``N * N * D <= AUTO_EXACT_BUDGET``; ``"faiss-hnsw"`` beyond.
        HNSW rather than IVF because its recall is far higher at a similar
        cost: on 1M synthetic 128-D faces (2 threads, k = 80), recall 0.82
        and 0.9986 of the same-identity neighbours for about 275 s of CPU
        searching, against 0.64 and 0.87 for IVF (``nlist`` 4096,
        ``nprobe`` 64, 333 s); on the 13,233 LFW faces, 0.992 against 0.813
        (``nprobe`` 16; 0.971 at 64), where the exact search is the fastest.

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
    return choose_settings(
        n_samples, n_features, faiss_available=faiss_available, on_gpu=on_gpu
    ).backend


def _sample_rows(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``min(size, n)`` distinct rows of ``range(n)``, sorted, the same for the same seed."""
    if size >= n:
        return torch.arange(n)
    rows = np.random.default_rng(seed).choice(n, size=size, replace=False)
    return torch.from_numpy(np.sort(rows))


@dataclass
class _Rows:
    """What a :class:`KNNIndex` holds once rows were added (its backend fixed)."""

    backend: str
    n_features: int
    settings: KNNSettings = field(default_factory=lambda: KNNSettings("torch"))
    n: int = 0
    db: Optional[torch.Tensor] = None  # torch backends: (D, capacity), unit rows for cosine
    sq: Optional[torch.Tensor] = None  # torch backends, l2: squared norms, (capacity,)
    faiss: Any = None  # faiss backends: the faiss index searched
    hnsw: Any = None  # faiss-hnsw: the graph index (the base of an 8-bit index's re-ranking)
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
        lists on the first :meth:`add`). The index may grow batch by batch,
        so its parameters are the ``growing`` ones of :data:`FAISS_SETTINGS`
        (HNSW on float32 vectors: nothing trained on the first batch) unless
        ``params`` says otherwise. ``"auto"`` is chosen by
        :func:`choose_settings` at the first :meth:`add`, from that batch's
        size, dimension and device (logged at INFO level).
    chunk_size : int, optional
        Query rows per tile of the torch backend; by default as many as fit
        in ``tile_size`` similarities (at least 1, at most 1024).
    tile_size : int
        Largest number of similarities held at once by the torch backend.
    nprobe : int, optional
        Lists visited per query by ``"faiss-ivf"`` (default: the table's).
    params : mapping, optional
        Parameters of a named approximate backend replacing the table's (see
        :data:`FAISS_SETTINGS`), e.g. ``{"storage": "sq8"}`` for an HNSW
        index filled in one :meth:`add`.
    verbose : bool, optional
        Progress bar of long torch searches (``None``: on a terminal).

    Attributes
    ----------
    backend_ : str or None
        The backend in use (``None`` before the first :meth:`add`).
    settings_ : KNNSettings or None
        The backend and its parameters (``None`` before the first :meth:`add`).
    n_features_in_ : int or None
        The width of the rows (``None`` before the first :meth:`add`).
    recall_ : RecallEstimate or None
        The last :meth:`estimate_recall` (or the check of :func:`knn`).

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
        nprobe: Optional[int] = None,
        params: Optional[Mapping[str, Any]] = None,
        verbose: Optional[bool] = None,
    ) -> None:
        self.metric = metric
        self.backend = backend
        self.chunk_size = chunk_size
        self.tile_size = tile_size
        self.nprobe = nprobe
        self.params = params
        self.verbose = verbose
        self.recall_: Optional[RecallEstimate] = None
        self._rows: Optional[_Rows] = None

    # ------------------------------------------------------------------ views

    @property
    def backend_(self) -> Optional[str]:
        """The backend in use, ``None`` before the first :meth:`add`."""
        return None if self._rows is None else self._rows.backend

    @property
    def settings_(self) -> Optional[KNNSettings]:
        """The backend and its parameters, ``None`` before the first :meth:`add`."""
        return None if self._rows is None else self._rows.settings

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
        """The settings, each checked by its declaration in :data:`~linkage_gcn._params.PARAMS`.

        ``params`` are checked against the backend's parameters; ``nprobe``
        joins them for ``"faiss-ivf"`` (other backends have no lists).
        """
        metric = check_param("metric", self.metric)
        backend = check_param("backend", self.backend, PARAMS["knn_backend"])
        params = _check_params(backend, self.params)
        nprobe = check_param("nprobe", self.nprobe)
        if nprobe is not None and backend == "faiss-ivf":
            if params.get("nprobe", nprobe) != nprobe:
                raise ValueError(
                    f"nprobe={nprobe} and params['nprobe']={params['nprobe']} disagree; give it "
                    "once."
                )
            params["nprobe"] = nprobe
        return {
            "metric": metric,
            "backend": backend,
            "chunk_size": check_param("chunk_size", self.chunk_size),
            "tile_size": check_param("tile_size", self.tile_size),
            "params": params,
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
        self.recall_ = None

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

    def estimate_recall(
        self,
        queries: ArrayLike,
        k: int,
        *,
        self_ids: Optional[ArrayLike] = None,
        n_queries: int = RECALL_QUERIES,
        random_state: int = 0,
    ) -> RecallEstimate:
        """Estimate recall@k of :meth:`search` on a sample of ``queries`` (also ``recall_``).

        ``n_queries`` queries drawn at random (seeded) are searched in the
        index and exactly, by brute force over the stored rows (the rows
        themselves for the torch backends; the float32 vectors that the faiss
        indexes keep). Cheap: one matrix product of the sample against the
        rows.

        Parameters
        ----------
        queries : array-like or torch.Tensor of shape (Q, D)
        k : int
            As :meth:`search`'s.
        self_ids : array-like of int, shape (Q,), optional
            As :meth:`search`'s: each query's own row, excluded on both sides.
        n_queries : int, default=512
            Queries sampled (all of them when there are fewer).
        random_state : int, default=0
            Seed of the sample.

        Returns
        -------
        RecallEstimate
            Stored as :attr:`recall_` too.

        Raises
        ------
        ValueError
            As :meth:`search`, or on ``n_queries < 1``.

        Examples
        --------
        >>> x = np.random.default_rng(0).standard_normal((300, 8))
        >>> index = KNNIndex("cosine", "torch")
        >>> index.add(x)
        >>> est = index.estimate_recall(x, 5, self_ids=np.arange(300), n_queries=50)
        >>> est.recall, est.n_queries, est.queries.shape
        (1.0, 50, (50,))
        """
        q, _ = check_features(queries, name="queries", min_samples=1)
        n_queries = check_int(n_queries, "n_queries", minimum=1)
        random_state = check_int(random_state, "random_state", minimum=0)
        own = None
        if self_ids is not None:
            own = check_ids(self_ids, len(self), name="self_ids", what="row id").reshape(-1)
            if own.numel() != q.shape[0]:
                raise ValueError(
                    f"self_ids has {own.numel()} entries but there are {q.shape[0]} queries; "
                    "give one stored row per query."
                )
        sample = _sample_rows(q.shape[0], n_queries, random_state).to(q.device)
        own_sample = None if own is None else own.to(q.device)[sample]
        _, found = self.search(q[sample], k, self_ids=own_sample)
        return self._estimate(q[sample], found, k, own_sample, sample)

    # ------------------------------------------------------------------ internals

    def _start(self, t: torch.Tensor, cfg: dict[str, Any]) -> _Rows:
        """Fix the backend and its parameters at the first addition (:func:`choose_settings`)."""
        n, d = t.shape
        settings = choose_settings(
            n, d, faiss_available=importlib.util.find_spec("faiss") is not None,
            backend=cfg["backend"], on_gpu=t.device.type != "cpu", growing=True,
            params=cfg["params"],
        )  # fmt: skip
        if cfg["backend"] == "auto":
            logger.info(
                "kNN index: backend 'auto' chose %r for N=%d points of dimension %d.",
                settings.backend, n, d,
            )  # fmt: skip
        rows = _Rows(backend=settings.backend, n_features=int(d), settings=settings)
        module = _require(settings.backend)
        if settings.backend.startswith("faiss"):
            rows.faiss, rows.hnsw = _faiss_index(module, settings, _as_faiss(t), cfg["metric"])
        else:
            rows.module = module
        return rows

    def _estimate(
        self,
        q: torch.Tensor,
        found: torch.Tensor,
        k: int,
        own: Optional[torch.Tensor],
        positions: torch.Tensor,
    ) -> RecallEstimate:
        """Recall@k of the results ``found`` for the queries ``q`` against an exact search."""
        start = time.perf_counter()
        rows = self._rows
        db = _stored_rows(rows)
        q = q.to(device=db.device, dtype=db.dtype)
        if self.metric == "cosine":
            q = _unit_rows(q, "queries")
        exact = _exact_ids(db, q, k, self.metric, None if own is None else own.to(db.device))
        found = found.to(db.device)[:, :k]
        hit = (found.unsqueeze(2) == exact.unsqueeze(1)).any(dim=2)  # (Q, k): found is exact
        recall = float(hit.sum()) / max(1, hit.numel())
        self.recall_ = RecallEstimate(
            k=k, recall=recall, n_queries=int(q.shape[0]),
            seconds=time.perf_counter() - start,
            queries=positions.cpu().numpy().astype(np.int64),
        )  # fmt: skip
        return self.recall_


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


def _faiss_index(faiss: Any, settings: KNNSettings, x: np.ndarray, metric: str) -> tuple[Any, Any]:
    """An empty faiss index for ``settings`` (codes or lists trained on ``x``), and its graph.

    Returns the index searched and, for HNSW, the graph index whose
    ``efSearch`` is set per search (the base of the re-ranking index with 8-bit
    codes, the index itself on float32 vectors).
    """
    n, d = x.shape
    faiss_metric = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
    p = settings.params
    if settings.backend == "faiss":
        return faiss.IndexFlat(d, faiss_metric), None
    if settings.backend == "faiss-hnsw":
        if p["storage"] == "flat":
            graph = faiss.IndexHNSWFlat(d, p["M"], faiss_metric)
            graph.hnsw.efConstruction = p["ef_construction"]
            return graph, graph
        graph = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, p["M"], faiss_metric)
        graph.hnsw.efConstruction = p["ef_construction"]
        graph.train(x)  # the range of each dimension
        index = faiss.IndexRefineFlat(graph)  # keeps the float32 rows: exact re-ranking
        index.k_factor = float(p["refine"])
        return index, graph
    nlist = int(min(p["nlist"], n))
    index = faiss.IndexIVFFlat(faiss.IndexFlat(d, faiss_metric), d, nlist, faiss_metric)
    index.train(x)
    return index, None


def _stored_rows(rows: _Rows) -> torch.Tensor:
    """The stored rows as an (n, D) tensor: a view where the index keeps float32 vectors."""
    if rows.faiss is None:
        return rows.db[:, : rows.n].T
    faiss = importlib.import_module("faiss")
    index, flat = rows.faiss, None
    if rows.backend == "faiss":
        flat = index
    elif rows.backend == "faiss-hnsw":
        inner = index.storage if rows.hnsw is index else index.refine_index
        flat = faiss.downcast_index(inner)
    if isinstance(flat, faiss.IndexFlat):
        d = rows.n_features
        return torch.from_numpy(faiss.rev_swig_ptr(flat.get_xb(), rows.n * d).reshape(rows.n, d))
    if rows.backend == "faiss-ivf":
        index.make_direct_map()
    return torch.from_numpy(index.reconstruct_n(0, rows.n))


def _exact_ids(
    db: torch.Tensor, q: torch.Tensor, k: int, metric: str, own: Optional[torch.Tensor]
) -> torch.Tensor:
    """Exact top-k row ids of the queries ``q`` over the rows ``db`` (N, D), own rows masked."""
    bias = None if metric == "cosine" else -(torch.linalg.vector_norm(db, dim=1) ** 2)
    block = max(k + 1, DEFAULT_TILE // max(1, q.shape[0]))
    ids, _ = _topk_chunk(q, db.T, bias, own, k, block, None, [], 0)
    return ids


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
    p = rows.settings.params
    if rows.backend == "faiss-hnsw":
        ef = p.get("ef_search") or max(EF_SEARCH_MIN, math.ceil(p["ef_factor"] * width))
        rows.hnsw.hnsw.efSearch = int(ef)
    elif rows.backend == "faiss-ivf":
        index.nprobe = int(min(p["nprobe"], index.nlist))
    qs = _as_faiss(q)
    # in chunks: an 8-bit index gathers refine * width candidates per query before re-ranking
    dist = np.empty((qs.shape[0], width), dtype=np.float32)
    idx = np.empty((qs.shape[0], width), dtype=np.int64)
    for start in range(0, qs.shape[0], FAISS_QUERY_CHUNK):
        stop = start + FAISS_QUERY_CHUNK
        dist[start:stop], idx[start:stop] = index.search(qs[start:stop], width)
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
