"""Baselines that a learned linkage model must beat: what people run to cluster faces.

Each is a scikit-learn style clusterer: ``fit(X, y)`` chooses its one cut on
labelled training data (the value of a grid with the best B-Cubed F), or
takes the cut it is given; ``predict(X)`` clusters a new set with it;
``fit_predict(X, y)`` does both on one set. Embeddings are compared with the
Euclidean distance (``metric="l2"``, right for raw dlib / face_recognition
descriptors) or the cosine (``metric="cosine"``).

* :class:`KNNThresholdClusterer`: kNN graph, links closer than a cut,
  connected components (the yardstick of the L-GCN paper);
* :class:`ChineseWhispersClusterer`: dlib's Chinese whispers on all pairs
  closer than a cut (what ``face_recognition`` users run; dlib's cut 0.5);
* :class:`InfomapClusterer`: kNN graph (k=20) + Infomap (needs the optional,
  GPL-licensed ``infomap`` package);
* :class:`DBSCANClusterer` and :class:`HDBSCANClusterer`: scikit-learn's
  density-based clusterings (photo libraries), noise points as singletons;
* :class:`FaceMapClusterer`: FaceMap (ECCV 2022), kNN + Infomap with each
  item's links pruned by its own similarity curve, no cut at all (needs
  ``infomap``).

Label-free defaults, nothing tuned (what a photo library runs out of the
box), by name in :data:`LABEL_FREE_BASELINES`: :func:`immich_defaults`
(Immich's face clustering: DBSCAN, cosine distance 0.5, 3 faces),
:func:`hdbscan_defaults` (scikit-learn's HDBSCAN as shipped) and
:class:`FaceMapClusterer` (the paper's settings).

How a cut reads: with ``metric="l2"`` a threshold is a Euclidean distance
(items at most that far apart are linked); with ``metric="cosine"`` it is a
cosine similarity (items at least that similar are linked). DBSCAN's ``eps``
and HDBSCAN's ``cluster_selection_epsilon`` keep scikit-learn's meaning: a
distance, the cosine distance ``1 - cos`` under ``metric="cosine"``.

Measured on the LFW dlib descriptors (``shared/data/lfw-dlib``, raw
descriptors, cuts tuned on the train half), B-Cubed F on the test half:
threshold components 0.920, DBSCAN 0.918, HDBSCAN 0.927, Chinese whispers
0.929, Infomap 0.932-0.938 (see the docs for the full table).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Optional

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from ._params import PARAMS, Number, Rule, check_param
from ._validation import check_features, check_labels
from .community import _import_infomap, chinese_whispers, infomap
from .knn import knn
from .merge import _first_appearance, pool_pair_scores, threshold_components
from .metrics import bcubed_fscore

__all__ = [
    "COSINE_GRID",
    "DISTANCE_GRID",
    "LABEL_FREE_BASELINES",
    "ChineseWhispersClusterer",
    "DBSCANClusterer",
    "FaceMapClusterer",
    "HDBSCANClusterer",
    "InfomapClusterer",
    "KNNThresholdClusterer",
    "hdbscan_defaults",
    "immich_defaults",
    "knn_edges",
    "radius_edges",
]

#: Default Euclidean cuts tried by ``"auto"`` (``metric="l2"``): 0.30 to 0.60 by 0.0125, the
#: range of raw dlib / face_recognition descriptors (norm about 1.4; dlib's same-person rule is
#: a distance below 0.6). Embeddings on another scale need their own ``grid``.
DISTANCE_GRID = np.round(np.arange(0.30, 0.60 + 1e-9, 0.0125), 4)

#: Default cosine similarities tried by ``"auto"`` (``metric="cosine"``) on a kNN graph.
COSINE_GRID = np.round(np.arange(0.30, 0.95, 0.0125), 4)

#: The same for graphs of all pairs (Chinese whispers, DBSCAN): a low cosine links most pairs.
_COSINE_RADIUS_GRID = np.round(np.arange(0.50, 0.95, 0.0125), 4)

#: The metrics of the baselines: those of :func:`linkage_gcn.knn.knn` (``PARAMS["metric"]``).
METRICS = PARAMS["metric"].choices

#: The values of ``HDBSCANClusterer``'s ``cluster_selection_epsilon`` tried by ``"auto"``.
_EPSILON_GRIDS = {
    "l2": np.concatenate([[0.0], DISTANCE_GRID]),
    "cosine": np.concatenate([[0.0], np.sort(np.round(1.0 - _COSINE_RADIUS_GRID, 4))]),
}

#: The bounds of a cut that links pairs at most that far (a Euclidean distance, ``"l2"``) or
#: at least that similar (a cosine similarity, ``"cosine"``): ``threshold`` of the clusterers.
_THRESHOLD_RULES: dict[str, Rule] = {"l2": Number(0.0), "cosine": Number(-1.0, 1.0)}
#: The bounds of a distance cut: Euclidean, or the cosine distance ``1 - cos`` (``eps``).
_DISTANCE_RULES: dict[str, Rule] = {"l2": Number(0.0), "cosine": Number(0.0, 2.0)}


# ----------------------------------------------------------------------------- edges


def knn_edges(X: Any, k: int, *, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Unordered kNN pairs ``i < j`` and their similarity (one entry per pair).

    The similarity is the cosine, or minus the Euclidean distance for
    ``metric="l2"``.

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> edge_index, sim = knn_edges(X, 1)
    >>> edge_index.tolist()
    [[0, 1], [1, 2]]
    """
    index, sim = knn(_features(X, check_param("metric", metric)), k, metric=metric)
    src = np.repeat(np.arange(index.shape[0]), index.shape[1])
    # a pair found from both sides has the same similarity twice: max keeps it
    return pool_pair_scores(
        src, index.reshape(-1), sim.reshape(-1), num_nodes=index.shape[0], pool="max"
    )


def radius_edges(X: Any, threshold: float, *, metric: str = "l2") -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``i < j`` closer than a cut (an exact search) and their similarity.

    Parameters
    ----------
    X : array-like of shape (N, D)
        Embeddings.
    threshold : float
        ``metric="l2"``: the largest Euclidean distance linked;
        ``metric="cosine"``: the smallest cosine similarity linked.
    metric : {"l2", "cosine"}

    Returns
    -------
    edge_index : numpy.ndarray of int64, shape (2, E)
        The pairs, ``edge_index[0] < edge_index[1]``, sorted.
    similarity : numpy.ndarray of float64, shape (E,)
        Minus the Euclidean distance (``"l2"``) or the cosine.

    Notes
    -----
    A brute-force radius search (scikit-learn), memory bounded by chunks:
    quadratic time, fine up to some 10^5 items. The number of pairs grows
    quickly with the cut: mind large ones.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.3, 0.0], [0.0, 0.4], [2.0, 2.0]])
    >>> edge_index, sim = radius_edges(X, 0.45)
    >>> edge_index.tolist(), sim.round(2).tolist()
    ([[0, 0], [1, 2]], [-0.3, -0.4])
    """
    metric = check_param("metric", metric)
    threshold = _THRESHOLD_RULES[metric](threshold, "threshold")
    x = _features(X, metric)
    rows, cols, dist = _radius_pairs(x, _euclidean_radius(threshold, metric), metric)
    upper = rows < cols
    order = np.lexsort((cols[upper], rows[upper]))
    edge_index = np.vstack([rows[upper][order], cols[upper][order]])
    return edge_index, _similarity(dist[upper][order], metric)


def _features(X: Any, metric: str) -> np.ndarray:
    """Finite (N, D) embeddings, N >= 2; no all-zero row under the cosine."""
    x = check_features(X, name="X", min_samples=2)[0].numpy()
    if metric == "cosine":
        zero = np.flatnonzero(~x.any(axis=1))
        if zero.size:
            raise ValueError(
                f"X has {zero.size} all-zero row(s) (first: row {int(zero[0])}); the cosine "
                "metric is undefined for them."
            )
    return x


def _euclidean_radius(threshold: float, metric: str) -> float:
    """The Euclidean radius of a cut (on unit rows for the cosine: ``d^2 = 2 - 2 cos``)."""
    if metric == "l2":
        return float(threshold)
    return float(np.sqrt(min(max(2.0 - 2.0 * threshold, 0.0), 4.0)))


def _radius_pairs(
    x: np.ndarray, radius: float, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered pair ``(i, j)``, ``i != j``, at Euclidean distance <= ``radius``.

    Under the cosine metric the rows are L2-normalised first.
    """
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)  # rows checked non-zero by _features
    # a little slack: the cut itself is applied to the distances afterwards
    nn = NearestNeighbors(radius=radius * (1 + 1e-6) + 1e-12, algorithm="brute").fit(x)
    graph = nn.radius_neighbors_graph(mode="distance").tocoo()  # the query point is left out
    keep = graph.data <= radius
    return (
        graph.row[keep].astype(np.int64),
        graph.col[keep].astype(np.int64),
        graph.data[keep].astype(np.float64),
    )


def _similarity(dist: np.ndarray, metric: str) -> np.ndarray:
    """Euclidean distances (between unit rows for the cosine) as similarities."""
    return -dist if metric == "l2" else 1.0 - dist * dist / 2.0


def _similarity_cut(threshold: float, metric: str) -> float:
    """A checked cut (a distance for l2, a cosine) as a threshold on similarities."""
    return -float(threshold) if metric == "l2" else float(threshold)


def _link_weights(sim: np.ndarray, metric: str) -> np.ndarray:
    """Edge weights from similarities: ``1 - d / 2`` for l2, the cosine itself for cosine."""
    return 1.0 + sim / 2.0 if metric == "l2" else sim


def _candidate_edges(
    x: np.ndarray, threshold: float, metric: str, k: Optional[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs linked at the cut ``threshold``: all of them (``k=None``) or among the kNN."""
    if k is None:
        return radius_edges(x, threshold, metric=metric)
    edge_index, sim = knn_edges(x, min(k, len(x) - 1), metric=metric)
    return _linked(edge_index, sim, threshold, metric)


def _linked(
    edge_index: np.ndarray, sim: np.ndarray, cut: float, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (and their similarities) that the cut links."""
    keep = sim >= _similarity_cut(cut, metric)
    return edge_index[:, keep], sim[keep]


def _noise_as_singletons(labels: np.ndarray) -> np.ndarray:
    """scikit-learn labels with noise ``-1`` as singletons, numbered by first appearance."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(int(noise.sum()))
    return _first_appearance(labels)


# ----------------------------------------------------------------------------- cut tuning


class _UnusableCut(ValueError):
    """A cut the underlying algorithm cannot run with (skipped while tuning)."""


def _tune_cut(
    grid: np.ndarray, labels: np.ndarray, cluster_at: Callable[[float], np.ndarray]
) -> tuple[float, np.ndarray]:
    """The grid value whose clustering has the best B-Cubed F (the first among ties).

    A value the algorithm cannot run with scores NaN and is never chosen.
    """
    scores = np.full(grid.size, np.nan)
    error = None
    for i, cut in enumerate(grid):
        try:
            scores[i] = bcubed_fscore(labels, cluster_at(float(cut)))[2]
        except _UnusableCut as exc:
            error = exc
    if np.isnan(scores).all():
        raise ValueError(f"no value of the grid can be used: {error}") from error
    return float(grid[int(np.nanargmax(scores))]), scores


class _Clusterer(ClusterMixin, BaseEstimator):
    """What every baseline shares: declared parameters, checked embeddings, ``fit_predict``.

    ``_parameter_constraints`` maps a subclass's parameters to their
    declarations in :data:`linkage_gcn._params.PARAMS`.
    """

    _parameter_constraints: ClassVar[dict[str, Rule]] = {}

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` (with ``y`` where the clusterer uses labels) and cluster it."""
        return self.fit(X, y).predict(X)

    def _check_declared(self) -> None:
        """Check every parameter by its declaration."""
        for name, rule in self._parameter_constraints.items():
            rule(getattr(self, name), name)

    def _fitted_features(self, X: Any, metric: str) -> np.ndarray:
        """``X`` checked as :func:`_features` does, of the width seen by ``fit``."""
        x = _features(X, metric)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {x.shape[1]} features, but {type(self).__name__} was fitted with "
                f"{self.n_features_in_}."
            )
        return x


class _CutClusterer(_Clusterer):
    """A clusterer with one cut (parameter ``_cut``) chosen by B-Cubed F when it is "auto".

    Each parameter is declared once in :data:`linkage_gcn._params.PARAMS`;
    ``_parameter_constraints`` maps a subclass's parameters to their
    declarations, and ``_cut_rules`` the metric to the bounds of its cut.
    Subclasses define ``_cluster`` (labels at one cut, from what
    ``_graph`` computes once per data set), and may override ``_graph`` and
    ``_grids`` (the default grid of each metric).
    """

    _cut = "threshold"
    _cut_rules: ClassVar[dict[str, Rule]] = _THRESHOLD_RULES
    #: The metrics under which the cut is a similarity (pairs at least that similar link).
    _similarity_cuts: ClassVar[tuple[str, ...]] = ("cosine",)
    _grids: ClassVar[dict[str, np.ndarray]] = {"l2": DISTANCE_GRID, "cosine": COSINE_GRID}

    def fit(self, X: Any, y: Any = None) -> _CutClusterer:
        """Choose the cut on labelled ``X`` (when it is ``"auto"``) or take the given one.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Embeddings.
        y : array-like of shape (N,), optional
            Identity labels (integers, strings or other comparable ids, as
            :meth:`LinkageClusterer.fit <linkage_gcn.LinkageClusterer.fit>`
            takes them); needed when the cut is ``"auto"``.

        Returns
        -------
        self
        """
        cut = self._check_params()
        x = _features(X, self.metric)
        labels = None if y is None else check_labels(y, n_samples=len(x), name="y", encode=True)
        self.n_features_in_ = int(x.shape[1])
        if isinstance(cut, str):  # "auto"
            if labels is None:
                raise ValueError(f"{self._cut}='auto' needs labels y to choose the {self._cut}.")
            grid = self._grid()
            graph = self._graph(x, self._loosest(grid))
            best, scores = _tune_cut(grid, labels, lambda c: self._cluster(graph, c, len(x)))
            self.grid_, self.grid_scores_ = grid, scores
            usable = grid[~np.isnan(scores)]
            # at the end of the grid that can be widened (not at a distance of 0)
            if usable.size > 2 and (best == usable.max() or 0 != best == usable.min()):
                warnings.warn(
                    f"{type(self).__name__}: the best {self._cut} ({best:g}) is at the edge "
                    f"of the grid [{usable.min():g}, {usable.max():g}]; widen the grid.",
                    UserWarning,
                    stacklevel=2,
                )
        else:
            best = cut
            self.grid_, self.grid_scores_ = None, None
        setattr(self, self._cut + "_", best)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Cluster ``X`` (a new set) with the fitted cut.

        Returns
        -------
        numpy.ndarray of int64, shape (N,)
            Cluster labels ``0 .. C-1`` in order of first appearance.
        """
        check_is_fitted(self, self._cut + "_")
        self._check_params()
        x = self._fitted_features(X, self.metric)
        cut = getattr(self, self._cut + "_")
        return self._cluster(self._graph(x, cut), cut, len(x))

    def _check_params(self) -> Any:
        """Check every parameter by its declaration, then the cut by the metric's bounds.

        Returns the cut: ``"auto"`` or a float.
        """
        self._check_declared()
        cut = getattr(self, self._cut)
        return cut if isinstance(cut, str) else self._check_cut(cut)

    def _check_cut(self, cut: Any) -> float:
        try:
            return self._cut_rules[self.metric](cut, self._cut)
        except ValueError as exc:
            raise ValueError(f"{exc} (metric={self.metric!r})") from None

    def _grid(self) -> np.ndarray:
        grid = self._grids[self.metric] if self.grid is None else PARAMS["grid"](self.grid, "grid")
        for c in grid:
            self._check_cut(float(c))
        return grid

    def _loosest(self, grid: np.ndarray) -> float:
        """The cut of the grid linking the most: the least similarity, the largest distance."""
        return float(grid.min() if self.metric in self._similarity_cuts else grid.max())

    def _graph(self, x: np.ndarray, loosest: float) -> Any:
        return _candidate_edges(x, loosest, self.metric, self.k)

    def _cluster(self, graph: Any, cut: float, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def _declared(*names: str, **declarations: str) -> dict[str, Rule]:
    """``{name: PARAMS[name]}``, and ``{name: PARAMS[declaration]}`` for a name declared apart."""
    rules = {name: PARAMS[name] for name in names}
    rules.update((name, PARAMS[declared]) for name, declared in declarations.items())
    return rules


# ----------------------------------------------------------------------------- clusterers


class KNNThresholdClusterer(_CutClusterer):
    """kNN graph + cut + connected components.

    The yardstick of the L-GCN paper and of ``shared/data``: link each item
    to those of its ``k`` nearest neighbours closer than the cut and take the
    connected components. With ``threshold="auto"``, ``fit(X, y)`` picks the
    cut that maximises B-Cubed F on labelled ``X``.

    Parameters
    ----------
    k : int
        Neighbours per item.
    threshold : float or "auto"
        The cut: a cosine similarity (link when at least it) for
        ``metric="cosine"``, a Euclidean distance (link when at most it) for
        ``metric="l2"``.
    metric : {"cosine", "l2"}
        kNN metric. The default stays ``"cosine"`` (as in 0.1.0); use
        ``"l2"`` for raw dlib / face_recognition descriptors (LFW: cut 0.45,
        B-Cubed F 0.920 against 0.879 for the cosine on centred, normalised
        descriptors).
    grid : array-like, optional
        Cuts tried by ``"auto"``: by default :data:`COSINE_GRID` (0.30 to
        0.9375 by 0.0125) for the cosine, :data:`DISTANCE_GRID` (0.30 to
        0.60 by 0.0125, the scale of dlib descriptors) for l2.

    Attributes
    ----------
    threshold_ : float
        The cut ``predict`` links at (the given one, or the one ``"auto"`` chose).
    grid_, grid_scores_ : numpy.ndarray or None
        With ``"auto"``, each cut tried and its B-Cubed F on the training set.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(50, random_state=0)
    >>> base = KNNThresholdClusterer(k=10).fit(X, y)
    >>> 0.3 <= base.threshold_ <= 0.95
    True
    >>> base.predict(X).shape
    (670,)
    """

    _parameter_constraints = _declared("k", "metric", "grid", threshold="baseline_threshold")

    def __init__(
        self,
        k: int = 10,
        threshold: Any = "auto",
        metric: str = "cosine",
        grid: Optional[Any] = None,
    ) -> None:
        self.k = k
        self.threshold = threshold
        self.metric = metric
        self.grid = grid

    def _cluster(self, graph: tuple[np.ndarray, np.ndarray], cut: float, n: int) -> np.ndarray:
        edge_index, sim = graph
        return threshold_components(edge_index, sim, n, _similarity_cut(cut, self.metric))


class ChineseWhispersClusterer(_CutClusterer):
    """dlib's face clustering: Chinese whispers on all pairs closer than a cut.

    What ``face_recognition`` users run (``dlib.chinese_whispers_clustering``
    with dlib's documented cut 0.5): an edge of weight 1 between every two
    faces closer than the cut, a self loop on every face, then
    :func:`linkage_gcn.community.chinese_whispers`.

    Parameters
    ----------
    threshold : float or "auto"
        The cut: a Euclidean distance (``metric="l2"``; dlib documents 0.5
        for its face descriptors, 0.6 being its same-person rule) or a cosine
        similarity (``metric="cosine"``). ``"auto"`` tunes it on ``fit(X, y)``.
    metric : {"l2", "cosine"}
        ``"l2"`` (dlib's) for raw descriptors.
    k : int, optional
        ``None`` (default): every pair closer than the cut, an exact radius
        search as dlib (quadratic time). An int: only pairs among each item's
        ``k`` nearest neighbours (for large sets; fewer edges).
    weighting : {"unit", "similarity"}
        Edge weights: 1 (dlib), or the similarity ``1 - d / 2`` (l2) / the
        cosine (cosine).
    self_loops : bool
        A self loop on every item, as dlib's face clustering adds, as heavy as
        a link at the cut (1 with unit weights): an item's own label counts
        like one more neighbour.
    max_iter : int
        Most rounds (dlib runs 100; the rounds stop at a fixed point).
    n_blocks : int
        Blocks of simultaneous updates per round (see
        :func:`~linkage_gcn.community.chinese_whispers`).
    grid : array-like, optional
        Cuts tried by ``"auto"``: :data:`DISTANCE_GRID` for l2, 0.50 to 0.9375
        by 0.0125 for the cosine.
    random_state : None, int, numpy.random.Generator or RandomState
        Seed of the node orders and ties (the same for every cut tried).

    Attributes
    ----------
    threshold_, grid_, grid_scores_
        As :class:`KNNThresholdClusterer`.

    Notes
    -----
    LFW dlib descriptors, test half: B-Cubed F 0.933 at cut 0.45, 0.928 at
    0.475 (the cut tuned on the train half), 0.899 at dlib's 0.5; this
    implementation matches dlib's own within a few thousandths (see
    :func:`~linkage_gcn.community.chinese_whispers`).

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [3.0, 3.0], [3.1, 3.0]])
    >>> ChineseWhispersClusterer(threshold=0.5, random_state=0).fit_predict(X)
    array([0, 0, 0, 1, 1])
    """

    _parameter_constraints = _declared(
        "metric", "weighting", "self_loops", "max_iter", "n_blocks", "grid",
        threshold="baseline_threshold", k="k_or_all_pairs", random_state="generator_seed",
    )  # fmt: skip
    _grids: ClassVar[dict[str, np.ndarray]] = {"l2": DISTANCE_GRID, "cosine": _COSINE_RADIUS_GRID}

    def __init__(
        self,
        threshold: Any = "auto",
        metric: str = "l2",
        k: Optional[int] = None,
        weighting: str = "unit",
        self_loops: bool = True,
        max_iter: int = 100,
        n_blocks: int = 16,
        grid: Optional[Any] = None,
        random_state: Any = None,
    ) -> None:
        self.threshold = threshold
        self.metric = metric
        self.k = k
        self.weighting = weighting
        self.self_loops = self_loops
        self.max_iter = max_iter
        self.n_blocks = n_blocks
        self.grid = grid
        self.random_state = random_state

    def _cluster(self, graph: tuple[np.ndarray, np.ndarray], cut: float, n: int) -> np.ndarray:
        edge_index, sim = _linked(*graph, cut, self.metric)
        cut_sim = _similarity_cut(cut, self.metric)
        weights = np.ones(sim.size) if self.weighting == "unit" else _link_weights(sim, self.metric)
        if self.self_loops:
            # as heavy as a link at the cut (dlib: 1, as every link), so that one close
            # neighbour ties with an item's own label rather than always losing to it
            loop = (
                1.0 if self.weighting == "unit" else _link_weights(np.array(cut_sim), self.metric)
            )
            nodes = np.arange(n)
            edge_index = np.hstack([edge_index, np.vstack([nodes, nodes])])
            weights = np.concatenate([weights, np.full(n, float(loop))])
        return chinese_whispers(
            edge_index,
            weights,
            n,
            max_iter=self.max_iter,
            n_blocks=self.n_blocks,
            random_state=self.random_state,
        )


class InfomapClusterer(_CutClusterer):
    """kNN graph + Infomap: the research baseline of face clustering.

    Each item is linked to those of its ``k`` nearest neighbours closer than
    the cut, with weight ``1 - d / 2`` (l2) or the cosine (cosine), and
    :func:`linkage_gcn.community.infomap` finds the modules. Needs the
    optional ``infomap`` package (GPL-3.0): ``pip install
    'linkage-gcn[infomap]'``.

    Parameters
    ----------
    threshold : float or "auto"
        The cut: a Euclidean distance (``metric="l2"``, below 2 so that the
        weights stay positive) or a cosine similarity (``metric="cosine"``).
    metric : {"l2", "cosine"}
    k : int
        Neighbours per item (20, as measured on LFW).
    num_trials : int
        Infomap runs, the best (shortest code length) kept. One run now and
        then lands in a poor partition (LFW test, one trial: B-Cubed F 0.910
        for one seed in three, 0.937 for the others); five cost about 3x the
        time and were stable.
    markov_time : float
        Infomap's Markov time (above 1: fewer, larger clusters).
    grid : array-like, optional
        Cuts tried by ``"auto"``: :data:`DISTANCE_GRID` or :data:`COSINE_GRID`.
    random_state : None, int, numpy.random.Generator or RandomState
        Seeds Infomap.

    Attributes
    ----------
    threshold_, grid_, grid_scores_
        As :class:`KNNThresholdClusterer`.

    Notes
    -----
    Its scores on LFW, with the cut tuned on the train half, are in
    ``docs/results.md``.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [3.0, 3.0], [3.1, 3.0]])
    >>> InfomapClusterer(threshold=0.5, k=2, random_state=0).fit_predict(X)  # doctest: +SKIP
    array([0, 0, 0, 1, 1])
    """

    _parameter_constraints = _declared(
        "metric", "k", "num_trials", "markov_time", "grid",
        threshold="baseline_threshold", random_state="generator_seed",
    )  # fmt: skip
    #: Positive link weights: a distance below 2, a cosine above 0.
    _cut_rules: ClassVar[dict[str, Rule]] = {
        "l2": Number(0.0, 2.0, closed="neither"),
        "cosine": Number(0.0, 1.0, closed="neither"),
    }

    def __init__(
        self,
        threshold: Any = "auto",
        metric: str = "l2",
        k: int = 20,
        num_trials: int = 5,
        markov_time: float = 1.0,
        grid: Optional[Any] = None,
        random_state: Any = None,
    ) -> None:
        self.threshold = threshold
        self.metric = metric
        self.k = k
        self.num_trials = num_trials
        self.markov_time = markov_time
        self.grid = grid
        self.random_state = random_state

    def _check_params(self) -> Any:
        cut = super()._check_params()
        _import_infomap()  # fail before the kNN search when the package is missing
        return cut

    def _cluster(self, graph: tuple[np.ndarray, np.ndarray], cut: float, n: int) -> np.ndarray:
        edge_index, sim = _linked(*graph, cut, self.metric)
        return infomap(
            edge_index,
            _link_weights(sim, self.metric),
            n,
            random_state=self.random_state,
            num_trials=self.num_trials,
            markov_time=self.markov_time,
        )


class DBSCANClusterer(_CutClusterer):
    """scikit-learn's DBSCAN, noise points as singletons.

    With ``min_samples=1`` (the default) every point is a core point and
    DBSCAN is the connected components of all pairs closer than ``eps``
    (single linkage cut at ``eps``).

    Parameters
    ----------
    eps : float or "auto"
        DBSCAN's radius: a Euclidean distance (``metric="l2"``) or a cosine
        distance ``1 - cos`` (``metric="cosine"``); ``"auto"`` tunes it.
    min_samples : int
        DBSCAN's ``min_samples`` (the point itself included).
    metric : {"l2", "cosine"}
    grid : array-like, optional
        Values of ``eps`` tried by ``"auto"``: :data:`DISTANCE_GRID` for l2,
        0.05 to 0.50 by 0.0125 for the cosine distance.
    n_jobs : int, optional
        Passed to scikit-learn.

    Attributes
    ----------
    eps_ : float
        The radius used by ``predict``.
    grid_, grid_scores_ : numpy.ndarray or None
        As :class:`KNNThresholdClusterer`, for ``eps``.

    Notes
    -----
    LFW dlib descriptors, test half: eps 0.45, min_samples 1: B-Cubed F 0.918.
    The radius graph is computed once (at the largest ``eps`` of the grid)
    and DBSCAN runs on it as a precomputed sparse distance matrix.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [3.0, 3.0], [3.1, 3.0], [9.0, 9.0]])
    >>> DBSCANClusterer(eps=0.5).fit_predict(X)
    array([0, 0, 0, 1, 1, 2])
    """

    _cut = "eps"
    _parameter_constraints = _declared("eps", "min_samples", "metric", "grid", "n_jobs")
    _cut_rules = _DISTANCE_RULES
    _similarity_cuts = ()
    _grids: ClassVar[dict[str, np.ndarray]] = {
        "l2": DISTANCE_GRID, "cosine": np.round(1.0 - _COSINE_RADIUS_GRID, 4),
    }  # fmt: skip

    def __init__(
        self,
        eps: Any = "auto",
        min_samples: int = 1,
        metric: str = "l2",
        grid: Optional[Any] = None,
        n_jobs: Optional[int] = None,
    ) -> None:
        self.eps = eps
        self.min_samples = min_samples
        self.metric = metric
        self.grid = grid
        self.n_jobs = n_jobs

    def _graph(self, x: np.ndarray, loosest: float) -> tuple[np.ndarray, ...]:
        radius = loosest if self.metric == "l2" else float(np.sqrt(2.0 * loosest))
        rows, cols, dist = _radius_pairs(x, radius, self.metric)
        # the distances DBSCAN compares with eps: Euclidean, or 1 - cos = d^2 / 2 on unit rows
        return rows, cols, dist if self.metric == "l2" else dist * dist / 2.0

    def _cluster(self, graph: tuple[np.ndarray, ...], cut: float, n: int) -> np.ndarray:
        from sklearn.cluster import DBSCAN

        rows, cols, dist = graph
        keep = dist <= cut
        # a sparse matrix keeps explicit zeros (duplicates), which DBSCAN counts as neighbours
        matrix = sp.csr_matrix((dist[keep], (rows[keep], cols[keep])), shape=(n, n))
        model = DBSCAN(
            eps=cut, min_samples=self.min_samples, metric="precomputed", n_jobs=self.n_jobs
        )
        return _noise_as_singletons(model.fit_predict(matrix))


class HDBSCANClusterer(_CutClusterer):
    """scikit-learn's HDBSCAN (photo libraries' choice), noise points as singletons.

    Parameters
    ----------
    min_cluster_size : int
        HDBSCAN's ``min_cluster_size``; 2 lets pairs of photos be clusters.
    min_samples : int
        HDBSCAN's ``min_samples``; 1 keeps the distances as they are.
    cluster_selection_method : {"eom", "leaf"}
    cluster_selection_epsilon : float or "auto"
        Clusters closer than this are not split (0: plain HDBSCAN, the
        default, which needs no labels); a Euclidean distance, or a cosine
        distance for ``metric="cosine"``. ``"auto"`` tunes it on ``fit(X, y)``.
    metric : {"l2", "cosine"}
    grid : array-like, optional
        Values tried by ``"auto"``: 0 and :data:`DISTANCE_GRID` for l2, 0 and
        0.05 to 0.50 by 0.0125 for the cosine distance (one HDBSCAN fit each).
    n_jobs : int, optional
        Passed to scikit-learn.

    Attributes
    ----------
    cluster_selection_epsilon_ : float
        The value used by ``predict``.
    grid_, grid_scores_ : numpy.ndarray or None
        The values tried by ``"auto"`` and their B-Cubed F (``None`` otherwise);
        NaN for a value scikit-learn's HDBSCAN cannot run with (an epsilon
        above the distance at which the whole set splits makes it fail).

    Notes
    -----
    LFW dlib descriptors, test half, the defaults (min_cluster_size 2,
    min_samples 1, eom, epsilon 0): B-Cubed F 0.927, pairwise F 0.986.
    Needs scikit-learn >= 1.3.

    Examples
    --------
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [3.0, 3.0], [3.1, 3.0], [9.0, 9.0]])
    >>> HDBSCANClusterer().fit_predict(X)
    array([0, 0, 0, 1, 1, 2])
    """

    _cut = "cluster_selection_epsilon"
    _parameter_constraints = _declared(
        "min_cluster_size", "min_samples", "cluster_selection_method",
        "cluster_selection_epsilon", "metric", "grid", "n_jobs",
    )  # fmt: skip
    _cut_rules = _DISTANCE_RULES
    _similarity_cuts = ()
    _grids = _EPSILON_GRIDS

    def __init__(
        self,
        min_cluster_size: int = 2,
        min_samples: int = 1,
        cluster_selection_method: str = "eom",
        cluster_selection_epsilon: Any = 0.0,
        metric: str = "l2",
        grid: Optional[Any] = None,
        n_jobs: Optional[int] = None,
    ) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.metric = metric
        self.grid = grid
        self.n_jobs = n_jobs

    def _graph(self, x: np.ndarray, loosest: float) -> np.ndarray:
        return x

    def _cluster(self, x: np.ndarray, cut: float, n: int) -> np.ndarray:
        try:
            from sklearn.cluster import HDBSCAN
        except ImportError as exc:  # pragma: no cover - scikit-learn < 1.3
            raise ImportError("HDBSCANClusterer needs scikit-learn >= 1.3.") from exc
        model = HDBSCAN(
            min_cluster_size=self.min_cluster_size,
            min_samples=self.min_samples,
            cluster_selection_epsilon=cut,
            cluster_selection_method=self.cluster_selection_method,
            metric="euclidean" if self.metric == "l2" else "cosine",
            n_jobs=self.n_jobs,
            copy=True,
        )
        try:
            labels = model.fit_predict(x)
        except TypeError as exc:
            if cut == 0:
                raise
            # scikit-learn (1.3 to 1.9 at least) fails in its epsilon search when the epsilon
            # is larger than the distance at which the whole data set splits in two
            raise _UnusableCut(
                f"scikit-learn's HDBSCAN cannot run with cluster_selection_epsilon={cut:g} on "
                "this data (larger than the distance at which the whole set splits: a "
                "scikit-learn limitation); use a smaller value."
            ) from exc
        return _noise_as_singletons(labels)


# ----------------------------------------------------------------------------- label-free defaults


def immich_defaults() -> DBSCANClusterer:
    """Immich's face clustering at its defaults: DBSCAN, cosine distance 0.5, 3 faces.

    Immich (the self-hosted photo library) groups faces with an incremental
    DBSCAN on the cosine distance of their embeddings: a face whose
    neighbourhood within ``maxDistance`` (default 0.5) holds at least
    ``minFaces`` faces (default 3, the face itself included) is a core face
    and founds or joins a person; other faces join a person within reach or
    stay unassigned. Its batch form is DBSCAN with ``eps=0.5``,
    ``min_samples=3`` on the cosine distance, which this returns: faces in no
    cluster become singletons. Nothing is tuned: ``fit(X)`` needs no labels.

    Returns
    -------
    DBSCANClusterer
        ``DBSCANClusterer(eps=0.5, min_samples=3, metric="cosine")``, unfitted.

    See Also
    --------
    LABEL_FREE_BASELINES : the label-free defaults by name.

    Notes
    -----
    Immich visits faces one by one, so which person a border face (not a
    core face) joins may depend on that order, as it may in DBSCAN (one of
    the clusters within reach). The settings are those of Immich's
    ``machineLearning.facialRecognition`` (``maxDistance: 0.5``,
    ``minFaces: 3``), made for its ArcFace embeddings; another face model
    may need others, but then they are no longer the defaults.

    LFW test half: B-Cubed F 0.960, pairwise F 0.976 on SFace embeddings
    (unit vectors of a model trained with a cosine margin, as Immich's); on
    raw dlib descriptors, whose cosines are all high (they are not centred),
    one cluster of everything (B-Cubed F 0.018).

    Examples
    --------
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0], [0.1, 0.9]])
    >>> immich_defaults().fit_predict(np.vstack([X, [[-1.0, -1.0]]]))
    array([0, 0, 0, 1, 1, 1, 2])
    """
    return DBSCANClusterer(eps=0.5, min_samples=3, metric="cosine")


def hdbscan_defaults(metric: str = "cosine") -> HDBSCANClusterer:
    """scikit-learn's HDBSCAN at its defaults (5 per cluster, eom), noise as singletons.

    ``sklearn.cluster.HDBSCAN()`` as shipped: ``min_cluster_size=5``,
    ``min_samples=None`` (that is, ``min_cluster_size``: passed here as 5),
    ``cluster_selection_method="eom"``, ``cluster_selection_epsilon=0``;
    points it calls noise become singletons. Nothing is tuned: ``fit(X)``
    needs no labels.

    Parameters
    ----------
    metric : {"cosine", "l2"}
        The distance: the cosine distance (default; how face embeddings are
        compared), or the Euclidean one (scikit-learn's own default, right for
        raw dlib descriptors).

    Returns
    -------
    HDBSCANClusterer
        ``HDBSCANClusterer(min_cluster_size=5, min_samples=5,
        cluster_selection_method="eom", metric=metric)``, unfitted.

    See Also
    --------
    HDBSCANClusterer : the same with other settings (2 and 1 by default).
    LABEL_FREE_BASELINES : the label-free defaults by name.

    Notes
    -----
    LFW test half, cosine: B-Cubed F 0.914, pairwise F 0.992 on SFace
    embeddings; 0.880 / 0.975 on raw dlib descriptors (Euclidean: 0.882 /
    0.976). At least 5 faces per cluster: people with fewer photos are
    singletons (high precision, low B-Cubed recall on long-tailed sets).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(12, 2)) * 0.1
    >>> X = np.vstack([X[:6] + [3.0, 0.0], X[6:] + [0.0, 3.0]])
    >>> hdbscan_defaults().fit_predict(X)
    array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    """
    return HDBSCANClusterer(
        min_cluster_size=5,
        min_samples=5,
        cluster_selection_method="eom",
        cluster_selection_epsilon=0.0,
        metric=metric,
    )


# ----------------------------------------------------------------------------- FaceMap

#: Rows of the similarity curves FaceMap's cut handles at once (memory: a few arrays of
#: this many rows x k float64 values).
_FACEMAP_BLOCK = 8192


def _facemap_keep(similarity: np.ndarray, window_size: int) -> np.ndarray:
    """How many of its neighbours each item keeps: FaceMap's cut of its similarity curve.

    ``similarity`` holds each row's ``k`` neighbour similarities, sorted in
    decreasing order. FaceMap (ECCV 2022; ``outlier_detect`` of the authors'
    code) takes the drops ``d_t = p_t - p_{t+1}`` of the row's transition
    probabilities ``p = s / sum(s)`` (``t = 0 .. k-2``) and, for every start
    ``j = 0 .. k-1-w`` of a window of ``w = window_size`` drops, the score
    ``z = |mean(d[j:j+w]) - mean(d[j:])| / std(d[j:])`` (the window against
    all later drops), written at the window's centre ``q = j + (w+1)//2``
    (0 elsewhere). The row keeps its neighbours ``0 .. argmax(z)``.

    The scores do not change when a row is scaled, so they are computed on the
    similarities themselves; a reference of zero spread (constant drops)
    scores 0 here (FaceMap's 0 / 0). All rows at once, by suffix sums.
    """
    s = np.asarray(similarity, dtype=np.float64)
    n, k = s.shape
    m, w = k - 1, int(window_size)
    if m < w + 1:
        raise ValueError(
            f"FaceMap's cut needs at least window_size + 2 = {w + 2} neighbours per item, got {k}."
        )
    starts = np.arange(m - w + 1)  # window starts j
    n_ref = (m - starts).astype(np.float64)  # drops from j to the end
    keep = np.empty(n, dtype=np.int64)
    for lo in range(0, n, _FACEMAP_BLOCK):
        rows = s[lo : lo + _FACEMAP_BLOCK]
        raw = rows[:, :-1] - rows[:, 1:]
        # centring changes no score (means shift alike, spreads stay) and steadies the sums
        d = raw - raw.mean(axis=1, keepdims=True)
        zero = np.zeros((len(d), 1))
        # suffix sums: c[:, j] = sum of d[:, j:], c[:, m] = 0
        c1 = np.hstack([np.cumsum(d[:, ::-1], axis=1)[:, ::-1], zero])
        c2 = np.hstack([np.cumsum((d * d)[:, ::-1], axis=1)[:, ::-1], zero])
        ref_mean = c1[:, starts] / n_ref
        test_mean = (c1[:, starts] - c1[:, starts + w]) / w
        var = np.maximum(c2[:, starts] / n_ref - ref_mean * ref_mean, 0.0)
        # a spread at rounding level is no spread (constant drops): score 0
        tiny = (1e-6 * np.abs(raw).max(axis=1, keepdims=True)) ** 2
        spread = var > tiny
        z = np.zeros_like(var)
        np.divide(np.abs(test_mean - ref_mean), np.sqrt(var), out=z, where=spread)
        best = np.argmax(z, axis=1)
        found = z[np.arange(len(z)), best] > 0
        # FaceMap's argmax over all drops: the first (q = 0, one neighbour) when no score is
        # positive
        keep[lo : lo + len(rows)] = np.where(found, best + (w + 1) // 2, 0) + 1
    return keep


class FaceMapClusterer(_Clusterer):
    """FaceMap: kNN + Infomap, each item's links pruned by its own similarity curve.

    FaceMap ("FaceMap: Towards Unsupervised Face Clustering via Map
    Equation", ECCV 2022) needs no labels and no cut: each face's ``k``
    nearest neighbours by cosine similarity, sorted, become transition
    probabilities ``p = s / sum(s)``; the face keeps its neighbours up to the
    middle of the window of ``window_size`` drops of that curve that stands
    out most from all later drops (the largest z-score), and Infomap (undirected,
    two-level) clusters the kept links, weighted by ``p``. Faces that keep no
    link are singletons. Needs the optional ``infomap`` package (GPL-3.0):
    ``pip install 'linkage-gcn[infomap]'``.

    Parameters
    ----------
    k : int
        Neighbours per item, the item itself excluded (the paper's 256).
        Sets of ``k`` items or fewer use ``N - 1``.
    window_size : int
        FaceMap's window ``omega`` of drops (the paper's 20); ``k`` must be
        at least ``window_size + 2``.
    num_trials : int
        Infomap runs, the shortest code length kept (FaceMap runs one; five
        steady Infomap, see :class:`InfomapClusterer`).
    random_state : None, int, numpy.random.Generator or RandomState
        Seeds Infomap.

    Attributes
    ----------
    n_features_in_ : int
        The embedding dimension seen by ``fit``.

    See Also
    --------
    InfomapClusterer : kNN + Infomap with one similarity cut for all links.
    LABEL_FREE_BASELINES : the label-free defaults by name.

    Notes
    -----
    Embeddings of any dimension, compared by the cosine (rows L2-normalised
    inside). ``fit`` learns nothing (``y`` is checked, then unused) and
    ``predict`` clusters the set it is given. The cut follows the authors'
    code (``github.com/bd-if/FaceMap``, ``outlier_detect``), vectorised over
    all items; Infomap runs undirected, as in that code (the paper speaks of
    a directed kNN graph). Negative similarities (small sets) weigh 0. Time:
    the kNN search, then Infomap on at most ``N k`` links.

    Every item keeps at least ``(window_size + 1) // 2 + 1`` links unless
    its curve is flat, faces alone of their identity too: made for sets of
    many photos per person (MS1M, 68 on average), FaceMap merges the small
    identities of a long-tailed set. LFW test half, paper's settings:
    B-Cubed F 0.59 (precision 0.42), pairwise F 0.84 on SFace embeddings;
    0.48 / 0.41 on raw dlib descriptors (the authors' own code gives the same).

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> from linkage_gcn.metrics import bcubed_fscore
    >>> X, y = make_identities(20, min_size=10, max_size=30, spread=0.3, separation=2.0,
    ...                        nuisance=0.0, random_state=0)
    >>> model = FaceMapClusterer(k=30, window_size=5, random_state=0)
    >>> bcubed_fscore(y, model.fit_predict(X))[2] > 0.9  # doctest: +SKIP
    True
    """

    _parameter_constraints = _declared(
        "k", "window_size", "num_trials", random_state="generator_seed"
    )

    def __init__(
        self,
        k: int = 256,
        window_size: int = 20,
        num_trials: int = 5,
        random_state: Any = None,
    ) -> None:
        self.k = k
        self.window_size = window_size
        self.num_trials = num_trials
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> FaceMapClusterer:
        """Check the settings and ``X`` (FaceMap learns nothing; ``y`` is unused).

        Parameters
        ----------
        X : array-like of shape (N, D)
            Embeddings.
        y : array-like of shape (N,), optional
            Ignored (checked against ``X`` when given).

        Returns
        -------
        self
        """
        self._check_params()
        x = _features(X, "cosine")
        if y is not None:
            check_labels(y, n_samples=len(x), name="y", encode=True)
        self._check_size(len(x))
        self.n_features_in_ = int(x.shape[1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Cluster ``X``.

        Returns
        -------
        numpy.ndarray of int64, shape (N,)
            Cluster labels ``0 .. C-1`` in order of first appearance.
        """
        check_is_fitted(self, "n_features_in_")
        self._check_params()
        x = self._fitted_features(X, "cosine")
        self._check_size(len(x))
        index, sim = knn(x, min(self.k, len(x) - 1), metric="cosine")
        index, sim = np.asarray(index), np.asarray(sim, dtype=np.float64)
        kept = np.arange(index.shape[1]) < _facemap_keep(sim, self.window_size)[:, None]
        positive = np.maximum(sim, 0.0)
        total = positive.sum(axis=1, keepdims=True)
        p = np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)
        src = np.broadcast_to(np.arange(len(x))[:, None], index.shape)
        return infomap(
            np.vstack([src[kept], index[kept]]),
            p[kept],
            len(x),
            random_state=self.random_state,
            num_trials=self.num_trials,
        )

    def _check_params(self) -> None:
        self._check_declared()
        if self.k < self.window_size + 2:
            raise ValueError(
                f"k must be at least window_size + 2 = {self.window_size + 2} (the window "
                f"slides over the k - 1 drops of each similarity curve), got k={self.k}."
            )
        _import_infomap()  # fail before the kNN search when the package is missing

    def _check_size(self, n: int) -> None:
        if n - 1 < self.window_size + 2:
            raise ValueError(
                f"X has {n} rows; FaceMap's window_size={self.window_size} needs at least "
                f"window_size + 3 = {self.window_size + 3} (each item's curve of "
                "window_size + 2 neighbours); lower window_size."
            )


#: The label-free baselines by name: ``name -> factory`` of an unfitted clusterer at its
#: defaults, which ``fit_predict(X)`` runs without labels (nothing tuned).
LABEL_FREE_BASELINES: dict[str, Callable[[], Any]] = {
    "immich-defaults": immich_defaults,
    "hdbscan-defaults": hdbscan_defaults,
    "facemap": FaceMapClusterer,
}
