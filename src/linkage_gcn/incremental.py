"""Growing collections: add faces to an existing clustering, keep ids and names, re-cut.

:class:`IncrementalClusterer` holds the whole state of a clustered collection
(embeddings, kNN table, directed link scores, cluster ids, names) for a fitted
:class:`~linkage_gcn.LinkageClusterer`, and updates it locally: L-GCN's
linkage only looks at a node's neighbourhood, so adding a batch of faces only
needs

1. the kNN rows of the new faces, and the existing rows the new faces enter;
2. new link scores for the pivots whose 1-hop set changed (the new faces and
   those rows), with :func:`~linkage_gcn.training.predict_links` on the
   subgraph those pivots read;
3. a new merge of the connected components touched by a changed link,
   mapped back onto the cluster ids they had.

Rules (see ``docs/incremental.md``):

* **Stable ids.** A cluster id, once given, stays with its cluster. When
  clusters merge, the surviving id is the one of the old cluster carrying a
  name, else of the one contributing the most faces, else the oldest (the
  smallest id); the others are reported in :attr:`UpdateReport.merged`. When
  a cluster splits, its largest part keeps the id.
* **Names.** Faces given the same name are one person (must-link); two
  different names never share a cluster (cannot-link, enforced inside the
  merge by :func:`~linkage_gcn.merge.constrained_components`); unnamed faces
  join a named person when the links say so. Renaming a person onto another
  name merges the two.
* **Groups.** Faces added with one group id (``add(X, groups=...)``, such as
  the faces of one photo) are never put in one cluster: after the merge,
  :func:`~linkage_gcn.merge.separate_groups` splits a cluster holding a group
  twice along its weakest links (a name outranks a group).
* **Re-cut.** :meth:`IncrementalClusterer.recut` clusters the stored scores at
  another threshold, without scoring again.

Approximations (the batch result of
:meth:`LinkageClusterer.predict <linkage_gcn.LinkageClusterer.predict>` on
the whole collection is the reference):

* a pivot is re-scored when its 1-hop set changes; when only its 2-hop
  context changes (a neighbour's own neighbours), its stored scores are kept;
* with the faiss backends, the existing rows that a new face enters are found
  among the new face's ``search_k`` nearest neighbours (the torch backend
  finds them exactly); ``"faiss-hnsw"`` is also approximate in its search.

The nearest-neighbour search is a :class:`~linkage_gcn.knn.KNNIndex` over the
stored embeddings, and the estimator is driven through its public methods
only (``resolved_params``, ``preprocess``, ``link_threshold``,
``merge_rule``). The state file is the package's state format
(:mod:`linkage_gcn._archive`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._archive import as_path, read_state, write_state
from ._params import PARAMS, Number, Rule, check_param, skip_validation
from ._threads import with_threads
from ._validation import check_bool, check_labels
from .knn import BACKENDS as KNN_BACKENDS
from .knn import KNNIndex, check_backend, check_knn_index
from .merge import pool_pair_scores, separate_groups
from .merges import MERGES
from .structure import StructureContext, similarity_scale
from .training import predict_links

__all__ = ["BACKENDS", "IncrementalClusterer", "UpdateReport"]

logger = logging.getLogger(__name__)

#: kNN backends of :class:`IncrementalClusterer`: those of :data:`linkage_gcn.knn.BACKENDS`
#: whose index grows one batch at a time ("faiss-ivf" would train its lists on the first
#: batch alone; "torch_cluster" searches everything again per batch, slowly on a CPU).
BACKENDS = tuple(b for b in KNN_BACKENDS if b not in ("faiss-ivf", "torch_cluster"))

#: The merge rule: ``merge(edge_index, scores, num_nodes, threshold, names) -> labels``.
MergeRule = Callable[[np.ndarray, np.ndarray, int, float, np.ndarray], np.ndarray]

_ARRAYS = ("x", "knn", "sim", "scores", "labels", "comp", "names", "face_ids")
#: Arrays a state file may lack: ``groups`` (all ``-1`` when absent).
_OPTIONAL_ARRAYS = ("groups",)
#: Header fields of every state file, and those added by format version 2 (the settings).
_HEADER = ("fingerprint", "n_features", "n_faces", "width", "threshold", "backend",
           "search_k", "names", "next_face_id", "next_cluster_id", "next_component")  # fmt: skip
_HEADER_V2 = ("context", "chunk_size", "merge", "custom_merge")
_CHUNK = 512  # new faces searched and inserted at once, by default
_PIVOT_BLOCK = 8192  # pivots whose IPS nodes are gathered at once


#: Run an update with the clusterer's ``threads`` CPU threads (as its ``fit``/``predict``).
_with_threads = with_threads(lambda inc: inc._cfg.get("threads"))


@dataclass(frozen=True)
class UpdateReport:
    """What an update of an :class:`IncrementalClusterer` did.

    Attributes
    ----------
    face_ids : numpy.ndarray of int64
        The faces added (empty for other updates).
    labels : numpy.ndarray of int64
        Their cluster ids.
    merged : dict of int to int
        Cluster ids that disappeared, each mapped to the id of the cluster
        now holding most of its faces (a merge; or a split whose largest part
        joined another cluster).
    split : dict of int to list of int
        Clusters whose faces now carry several ids: old id -> the ids.
    removed : list of int
        Cluster ids whose every face was removed.
    changed_faces : int
        Existing faces whose cluster id changed.
    merged_faces : int
        Of those, the faces that followed a reported merge.
    rescored : int
        Pivots whose links were scored.
    region : int
        Faces whose cluster was recomputed.
    seconds : float
        Wall time of the update.
    """

    face_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    merged: dict[int, int] = field(default_factory=dict)
    split: dict[int, list[int]] = field(default_factory=dict)
    removed: list[int] = field(default_factory=list)
    changed_faces: int = 0
    merged_faces: int = 0
    rescored: int = 0
    region: int = 0
    seconds: float = 0.0

    def __repr__(self) -> str:
        return (
            f"UpdateReport(added={self.face_ids.size}, merged={len(self.merged)}, "
            f"split={len(self.split)}, removed={len(self.removed)}, "
            f"changed_faces={self.changed_faces}, rescored={self.rescored}, "
            f"region={self.region}, seconds={self.seconds:.3f})"
        )


class IncrementalClusterer:
    """A clustered collection that grows: add, name and remove faces; re-cut.

    Parameters
    ----------
    clusterer : LinkageClusterer
        A fitted clusterer: its model scores the links, its preprocessing and
        metric apply, its link cut (:meth:`LinkageClusterer.link_threshold
        <linkage_gcn.LinkageClusterer.link_threshold>`) is the starting
        threshold, and its merge (:meth:`LinkageClusterer.merge_rule
        <linkage_gcn.LinkageClusterer.merge_rule>` with names as constraints)
        the default merge: an addition of everything at once gives
        ``clusterer.predict`` for ``merge="threshold"`` or
        ``"chinese-whispers"``. Other merges have no form with names as
        constraints: threshold components are used, and without
        ``threshold`` a :class:`UserWarning` says that the cut was calibrated
        for that merge.
    threshold : float, optional
        Link threshold, a number in [0, 1] (default: the clusterer's cut;
        ``"auto"`` is refused: there are no training data to calibrate on).
    backend : {"auto", "torch", "faiss", "faiss-hnsw"}
        Nearest-neighbour search of new faces against the collection (a
        :class:`~linkage_gcn.knn.KNNIndex`). ``"torch"``: exact, one pass
        over the stored embeddings per batch (also finds exactly the rows a
        new face enters). ``"faiss"``: a flat faiss index kept in memory
        (exact search; the rows a new face enters are found among its
        ``search_k`` nearest). ``"faiss-hnsw"``: an HNSW index, sublinear,
        for millions of faces (approximate). ``"auto"``: ``"torch"`` (the
        exact rows; the faiss backends are chosen by name).
    search_k : int, optional
        ``k'`` of the faiss backends (default: 8 times the kNN width, at
        least 100).
    chunk_size : int, optional
        New faces searched and inserted into the kNN table at once (bounds
        memory; default 512).
    context : bool
        Also re-score the pivots whose 1-hop nodes gained a new neighbour
        among their first ``max(k2, active_connection)`` (the 2-hop context
        of their subgraph): closer to scoring everything again, at the cost
        of more pivots per addition. Default: only the pivots whose 1-hop set
        changed.
    merge : str or callable, optional
        A merge of :data:`linkage_gcn.merges.MERGES` by name (in its form with
        names as constraints, with the clusterer's ``merge_runs`` and seed),
        or a function ``merge(edge_index, scores, num_nodes, threshold,
        names) -> labels``. By default the clusterer's own merge. A function
        must work one connected component of the kept links at a time (the
        updates re-merge only the touched components); it cannot be stored
        in a state file (:meth:`load` asks for it again).

    Attributes
    ----------
    face_ids_ : numpy.ndarray of int64, shape (n_faces,)
        The face ids, in storage order (increasing; never reused).
    labels_ : numpy.ndarray of int64, shape (n_faces,)
        The cluster id of each face (storage order).
    names_ : numpy.ndarray of object, shape (n_faces,)
        The name of each face, or ``None``.
    threshold_ : float
        The link threshold in use.
    n_features_in_ : int
        Feature width (the clusterer's).
    fingerprint_ : str
        SHA-256 of the model weights and the settings that shape the scores;
        a saved state only loads with the same.

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> from linkage_gcn.datasets import make_identities
    >>> faces, _ = make_identities(30, dim=128, random_state=0)
    >>> library = IncrementalClusterer(LinkageClusterer.pretrained(merge="threshold"))
    >>> first = library.add(faces[:40])
    >>> report = library.add(faces[40:50])
    >>> report.face_ids.tolist()
    [40, 41, 42, 43, 44, 45, 46, 47, 48, 49]
    >>> len(library), library.labels_.shape
    (50, (50,))
    """

    def __init__(
        self,
        clusterer: Any,
        *,
        threshold: Optional[float] = None,
        backend: str = "auto",
        search_k: Optional[int] = None,
        chunk_size: Optional[int] = None,
        context: bool = False,
        merge: Union[str, MergeRule, None] = None,
    ) -> None:
        check_is_fitted(clusterer, "model_")
        cfg = clusterer.resolved_params()
        backend = check_backend(check_param("backend", backend, PARAMS["incremental_backend"]))
        search_k = check_param("search_k", search_k)
        chunk_size = check_param("chunk_size", chunk_size)
        self.context = check_param("context", context)
        self.merge = check_param("merge", merge, PARAMS["incremental_merge"])
        own = MERGES[cfg["merge"]]
        if not own.native_constraints and threshold is None and merge is None:
            warnings.warn(
                f"the clusterer merges with merge={own.name!r}; IncrementalClusterer merges "
                "with threshold components with name constraints at the clusterer's link "
                "cut, which was calibrated for the other merge: pass threshold= (or fit with "
                "merge='threshold' or 'chinese-whispers') to choose the cut.",
                UserWarning,
                stacklevel=2,
            )
        self.threshold_ = clusterer.link_threshold() if threshold is None else _link_cut(threshold)
        self.clusterer = clusterer
        self.backend = "torch" if backend == "auto" else backend
        self._cfg = cfg
        self._width = int(cfg["n_neighbors_predict"])  # K
        self._k1 = int(cfg["k1"])
        self.search_k = max(8 * self._width, 100) if search_k is None else search_k
        self.chunk_size = _CHUNK if chunk_size is None else chunk_size
        self._merge = _merge_function(clusterer, cfg, self.merge)
        self.n_features_in_ = int(clusterer.n_features_in_)
        # a structure model takes any width: the first faces added set the collection's
        self._any_width = cfg["features"] == "structure"
        self.fingerprint_ = model_fingerprint(clusterer)
        self._index = KNNIndex(
            cfg["metric"], self.backend, chunk_size=self.chunk_size, verbose=False
        )
        self._n = 0
        self._w = 0  # valid kNN width, min(K, n - 1)
        self._bufs: dict[str, np.ndarray] = {}
        self._alloc(0)
        self._name_list: list[str] = []
        self._name_code: dict[str, int] = {}
        self._next_face = 0
        self._next_id = 0
        self._next_comp = 0
        self._journal: Optional[list[tuple[str, np.ndarray, np.ndarray]]] = None

    # ------------------------------------------------------------------ views

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        n_clusters = int(np.unique(self.labels_).size)
        named = int(np.unique(self._names_view()[self._names_view() >= 0]).size)
        return (
            f"{type(self).__name__}(n_faces={self._n}, n_clusters={n_clusters}, "
            f"n_named_persons={named}, threshold={self.threshold_:.4g}, "
            f"backend={self.backend!r})"
        )

    @property
    def face_ids_(self) -> np.ndarray:
        """The face ids in storage order (a copy)."""
        return self._bufs["face_ids"][: self._n].copy()

    @property
    def labels_(self) -> np.ndarray:
        """The cluster id of each face, in storage order (a copy)."""
        return self._bufs["labels"][: self._n].copy()

    @property
    def names_(self) -> np.ndarray:
        """The name of each face or ``None``, in storage order."""
        codes = self._names_view()
        table = np.array([None, *self._name_list], dtype=object)
        return table[codes + 1]

    def _names_view(self) -> np.ndarray:
        return self._bufs["names"][: self._n]

    def labels_of(self, face_ids: Any) -> np.ndarray:
        """The cluster ids of the given faces.

        Raises
        ------
        ValueError
            On an unknown face id.
        """
        return self._bufs["labels"][self._rows(face_ids, allow_repeats=True)].copy()

    def persons(self) -> dict[str, int]:
        """Each name and the cluster id of its person."""
        codes = self._names_view()
        named = np.flatnonzero(codes >= 0)
        code, first = np.unique(codes[named], return_index=True)
        labels = self._bufs["labels"][named[first]]
        return {self._name_list[c]: int(i) for c, i in zip(code.tolist(), labels.tolist())}

    def pair_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored link scores pooled into pairs (what :meth:`recut` merges).

        Returns
        -------
        edge_index : numpy.ndarray of int64, shape (2, E)
            Pairs of storage positions (rows of :attr:`face_ids_`), ``i < j``.
        scores : numpy.ndarray, shape (E,)
            Pooled link probabilities.
        """
        return self._pairs(np.arange(self._n))

    # ------------------------------------------------------------------ public updates

    @_with_threads
    def add(self, X: Any, groups: Any = None) -> UpdateReport:
        """Add faces; return their ids and what changed.

        Parameters
        ----------
        X : array-like of shape (n_new, n_features)
            Embeddings, as given to the clusterer (its preprocessing applies).
        groups : array-like of int, shape (n_new,), optional
            A group id per face, ``-1`` for none: faces of one group (such as
            the faces of one photo) are never put in one cluster, now or in
            any later update (:func:`~linkage_gcn.merge.separate_groups`
            splits a cluster holding a group twice along its weakest links;
            a name outranks it). Ids are the caller's, shared across calls.

        Returns
        -------
        UpdateReport
            ``face_ids`` (new, increasing) and ``labels`` (their cluster ids),
            the merges and splits of existing clusters, counts.

        Raises
        ------
        ValueError
            On a bad ``X`` (shape, feature width, NaN, an all-zero row under
            the cosine metric) or ``groups`` (not one integer per row):
            nothing is changed.
        """
        start = time.perf_counter()
        xb = self.clusterer.preprocess(X)
        if groups is not None:
            groups = np.asarray(
                check_labels(groups, n_samples=xb.shape[0], name="groups"), dtype=np.int64
            ).clip(-1)
        if xb.shape[1] != self.n_features_in_:
            if not (self._any_width and self._n == 0):
                raise ValueError(
                    f"X has {xb.shape[1]} features per row but this collection holds "
                    f"{self.n_features_in_}-dimensional embeddings (one face model per "
                    "collection)."
                )
            self.n_features_in_ = int(xb.shape[1])
            self._bufs = {}
            self._alloc(0)
        b, n0 = xb.shape[0], self._n
        self._journal = []
        scalars = self._scalars()
        try:
            self._index.add(xb)
            self._append(xb)
            if groups is not None:
                self._bufs["groups"][n0 : n0 + b] = groups
            new_rows = np.arange(n0, n0 + b)
            if n0 <= self._width or b >= n0:
                report = self._rebuild()
            else:
                changed, old_hop1, ctx = self._insert(n0)
                pivots = np.union1d(new_rows, changed)
                if self.context and ctx.size:
                    hit = _mark(self._n, ctx)[self._hop1(np.arange(self._n))].any(1)
                    pivots = np.union1d(pivots, np.flatnonzero(hit))
                self._score(pivots)
                touched = np.unique(np.concatenate([pivots, old_hop1, self._hop1(pivots).ravel()]))
                report = self._recluster(self._region(touched), rescored=pivots.size)
        except BaseException:
            self._undo(scalars)
            raise
        finally:
            self._journal = None
        fids = self._bufs["face_ids"][new_rows].copy()
        report = _replace(
            report, face_ids=fids, labels=self._bufs["labels"][new_rows].copy(), start=start
        )
        logger.info("added %d faces (%d in all): %r", b, self._n, report)
        return report

    @_with_threads
    def name(self, face_ids: Any, names: Union[str, Sequence[Optional[str]], None]) -> UpdateReport:
        """Name faces (``None`` removes a name); re-merge what the names touch.

        Parameters
        ----------
        face_ids : int or array-like of int
            Faces to name.
        names : str, None or sequence of (str or None)
            One name for all, or one per face. A face keeps its name until
            named again; all faces of a name are one person.

        Raises
        ------
        ValueError
            On an unknown face id, ``names`` that is not a string, ``None`` or
            a sequence, a name that is not a non-empty string, lengths that
            differ, or one face given two different names: nothing is changed.
        """
        start = time.perf_counter()
        rows = self._rows(face_ids, allow_repeats=True)
        if names is None or isinstance(names, str):
            given = [names] * rows.size
        elif isinstance(names, (Sequence, np.ndarray)) and not isinstance(names, bytes):
            given = np.asarray(names, dtype=object).ravel().tolist()
            if np.ndim(names) != 1 or len(given) != rows.size:
                raise ValueError(
                    f"names has {len(given)} entries (shape {np.shape(names)}) but face_ids has "
                    f"{rows.size}; give one name per face, or a single name."
                )
        else:
            raise ValueError(
                "names must be a str, None, or a sequence of str or None (one per face), got "
                f"{type(names).__name__} {names!r}."
            )
        single = names is None or isinstance(names, str)
        for i, value in enumerate(given):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                where = "names" if single else f"names[{i}]"
                raise ValueError(f"{where} must be a non-empty string or None, got {value!r}.")
        seen: dict[int, Optional[str]] = {}
        for r, value in zip(rows.tolist(), given):
            if r in seen and seen[r] != value:
                fid = int(self._bufs["face_ids"][r])
                raise ValueError(
                    f"face {fid} is given two different names ({seen[r]!r} and {value!r})."
                )
            seen[r] = value
        for value in {v for v in given if v is not None and v not in self._name_code}:
            self._name_code[value] = len(self._name_list)
            self._name_list.append(value)
        codes = np.array([-1 if v is None else self._name_code[v] for v in given], dtype=np.int64)
        names_view = self._names_view()
        affected = np.union1d(codes[codes >= 0], names_view[rows][names_view[rows] >= 0])
        touched = np.union1d(rows, np.flatnonzero(np.isin(names_view, affected)))
        names_view[rows] = codes
        report = self._recluster(self._region(touched), rescored=0)
        return _replace(report, start=start)

    @_with_threads
    def rename(self, old: str, new: str) -> UpdateReport:
        """Rename a person; onto an existing name, the two persons merge.

        Raises
        ------
        ValueError
            When ``old`` or ``new`` is not a non-empty string, or ``old`` is
            not a name in use.
        """
        start = time.perf_counter()
        for arg, value in (("old", old), ("new", new)):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{arg} must be a non-empty string (a name), got {value!r}.")
        codes = self._names_view()
        code = self._name_code.get(old, -1)
        faces = np.flatnonzero(codes == code) if code >= 0 else np.zeros(0, dtype=np.int64)
        if faces.size == 0:
            raise ValueError(f"no face is named {old!r}.")
        if old == new:
            return UpdateReport(seconds=time.perf_counter() - start)
        if new not in self._name_code:  # a plain rename: same grouping
            del self._name_code[old]
            self._name_list[code] = new
            self._name_code[new] = code
            return UpdateReport(seconds=time.perf_counter() - start)
        target = self._name_code[new]
        touched = np.union1d(faces, np.flatnonzero(codes == target))
        codes[faces] = target
        report = self._recluster(self._region(touched), rescored=0)
        return _replace(report, start=start)

    @_with_threads
    def remove(self, face_ids: Any) -> UpdateReport:
        """Remove faces (deleted photos); the rows that listed them get new neighbours.

        Raises
        ------
        ValueError
            On an unknown or repeated face id: nothing is changed.
        """
        start = time.perf_counter()
        rows = self._rows(face_ids, allow_repeats=False)
        if rows.size == 0:
            return UpdateReport(seconds=time.perf_counter() - start)
        n, w = self._n, self._w
        dead = np.zeros(n, dtype=bool)
        dead[rows] = True
        labels_before = self._bufs["labels"][:n]
        gone_ids = np.setdiff1d(labels_before[dead], labels_before[~dead])
        snapshot = self._snapshot()
        try:
            hit = np.flatnonzero(~dead & dead[self._bufs["knn"][:n, :w]].any(1)) if w else rows[:0]
            comps = np.unique(self._bufs["comp"][:n][dead | _mark(n, hit)])
            old_hop1 = self._hop1(hit)
            keep = ~dead
            new_pos = np.cumsum(keep) - 1
            region_old = np.isin(self._bufs["comp"][:n], comps) | _mark(n, old_hop1.ravel())
            self._compact(keep, new_pos)
            m = self._n
            if m <= self._width:
                report = self._rebuild()
            else:
                hit_new = new_pos[hit]
                self._research(hit_new)
                self._score(hit_new)
                touched = np.unique(
                    np.concatenate([new_pos[region_old & keep], self._hop1(hit_new).ravel()])
                )
                report = self._recluster(self._region(touched), rescored=hit_new.size)
        except BaseException:
            self._restore(snapshot)
            raise
        return _replace(report, removed=[int(i) for i in gone_ids], start=start)

    @_with_threads
    def recut(self, threshold: float) -> UpdateReport:
        """Cluster the stored scores at another threshold (no scoring); ids kept where possible.

        The result equals merging :meth:`pair_scores` with the merge rule at
        ``threshold`` (with the names), mapped onto the current ids.

        Raises
        ------
        ValueError
            When ``threshold`` is not a number in [0, 1] (nothing is changed).
        """
        start = time.perf_counter()
        threshold = _link_cut(threshold)
        self.threshold_ = threshold
        report = self._recluster(np.arange(self._n), rescored=0)
        return _replace(report, start=start)

    # ------------------------------------------------------------------ persistence

    def save(self, path: Union[str, Path], *, overwrite: bool = False) -> Path:
        """Write the whole state to one ``.npz`` file (no pickle; JSON header).

        The header holds every setting (threshold, backend, ``search_k``,
        ``chunk_size``, ``context``, the merge's name); a merge given as a
        function cannot be stored: a :class:`UserWarning` says so, and
        :meth:`load` asks for it again. Atomic; refuses to replace an existing
        file unless ``overwrite=True``.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        FileExistsError
            When ``path`` exists and ``overwrite`` is false.
        TypeError
            When ``path`` is not a path.
        ValueError
            When ``overwrite`` is not ``True`` or ``False``.
        """
        path = as_path(path)
        overwrite = check_bool(overwrite, "overwrite")
        custom = None if self._merge_name() is not None else _qualname(self.merge)
        if custom is not None:
            warnings.warn(
                f"the merge function {custom} is not stored in the state file (a function "
                "cannot be); pass it again: IncrementalClusterer.load(path, clusterer, "
                "merge=...).",
                UserWarning,
                stacklevel=2,
            )
        header = {
            "fingerprint": self.fingerprint_,
            "n_features": self.n_features_in_,
            "n_faces": self._n,
            "width": self._w,
            "threshold": self.threshold_,
            "backend": self.backend,
            "search_k": self.search_k,
            "names": self._name_list,
            "next_face_id": self._next_face,
            "next_cluster_id": self._next_id,
            "next_component": self._next_comp,
            "context": self.context,
            "chunk_size": self.chunk_size,
            "merge": self._merge_name(),
            "custom_merge": custom,
        }
        arrays = {name: self._bufs[name][: self._n] for name in _ARRAYS + _OPTIONAL_ARRAYS}
        arrays["knn"] = arrays["knn"][:, : self._w]
        arrays["sim"] = arrays["sim"][:, : self._w]
        arrays["scores"] = arrays["scores"][:, : min(self._k1, self._w)]
        return write_state(path, header, arrays, overwrite=overwrite)

    @classmethod
    def load(
        cls,
        path: Union[str, Path],
        clusterer: Any,
        *,
        backend: Optional[str] = None,
        chunk_size: Optional[int] = None,
        merge: Union[str, MergeRule, None] = None,
    ) -> IncrementalClusterer:
        """Read a state written by :meth:`save`, for the same model, with its settings.

        Parameters
        ----------
        path : str or Path
        clusterer : LinkageClusterer
            The model the state was built with (same weights and settings).
        backend : str, optional
            Search with another backend than the saved one (e.g. ``"torch"``
            where faiss is not installed).
        chunk_size : int, optional
            Another chunk size than the saved one.
        merge : str or callable, optional
            Another merge than the saved one; required when the state was
            saved with a merge function (which a file cannot hold).

        Returns
        -------
        IncrementalClusterer
            With the saved threshold, backend, ``search_k``, ``chunk_size``,
            ``context`` and merge (files of format version 1 hold only the
            first three: the others take their defaults).

        Raises
        ------
        FileNotFoundError
            When ``path`` is not a file (or is a directory).
        ValueError
            Naming the file: not a state file (another kind of file, a
            pickle), truncated or corrupted, a newer format, missing fields,
            a bad setting, a merge function to pass again, another feature
            width, another model (fingerprint), or inconsistent arrays.
        """
        check_is_fitted(clusterer, "model_")
        overrides = {
            "backend": None if backend is None else check_backend(
                check_param("backend", backend, PARAMS["incremental_backend"])
            ),
            "chunk_size": check_param("chunk_size", chunk_size),
            "merge": check_param("merge", merge, PARAMS["incremental_merge"]),
        }  # fmt: skip
        header, arrays = read_state(path, required_arrays=_ARRAYS, required_header=_HEADER)
        p = as_path(path)
        settings = _saved_settings(p, header)
        any_width = clusterer.resolved_params()["features"] == "structure"
        if header["n_features"] != clusterer.n_features_in_ and not any_width:
            raise ValueError(
                f"{p} holds {header['n_features']}-dimensional embeddings but the clusterer "
                f"expects {clusterer.n_features_in_}; load it with the model it was built with."
            )
        if settings["custom_merge"] is not None and overrides["merge"] is None:
            raise ValueError(
                f"{p} was saved with the merge function {settings['custom_merge']}, which a "
                "state file cannot hold: pass it again, IncrementalClusterer.load(path, "
                "clusterer, merge=...)."
            )
        settings.update({k: v for k, v in overrides.items() if v is not None})
        del settings["custom_merge"]
        try:
            state = cls(clusterer, **settings)
        except ValueError as exc:  # a saved setting this installation cannot honour
            raise ValueError(f"{p}: {exc}") from None
        if header["fingerprint"] != state.fingerprint_:
            raise ValueError(
                f"{p} was written with another model (fingerprint "
                f"{header['fingerprint'][:12]}..., this clusterer's is "
                f"{state.fingerprint_[:12]}...): its link scores do not apply; load it with "
                "the model it was built with, or build a new state."
            )
        if state.n_features_in_ != header["n_features"]:  # a structure model's collection
            state.n_features_in_ = int(header["n_features"])
            state._bufs = {}
            state._alloc(0)
        try:
            state._set_arrays(header, arrays)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{p} is not a consistent state: {exc}") from None
        return state

    def _merge_name(self) -> Optional[str]:
        """The registry name of the merge in use (``None`` for a merge function)."""
        if self.merge is None:
            return self._cfg["merge"]
        return self.merge if isinstance(self.merge, str) else None

    def _set_arrays(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        n, w = int(header["n_faces"]), int(header["width"])
        if w != min(self._width, max(n - 1, 0)):
            raise ValueError(f"kNN width {w} does not fit {n} faces and width {self._width}")
        k1w = min(self._k1, w)
        shapes = {
            "x": (n, self.n_features_in_), "knn": (n, w), "sim": (n, w), "scores": (n, k1w),
            "labels": (n,), "comp": (n,), "names": (n,), "face_ids": (n,), "groups": (n,),
        }  # fmt: skip
        arrays = {"groups": np.full(n, -1, dtype=np.int64), **arrays}
        for name, shape in shapes.items():
            a = arrays[name]
            if a.shape != shape:
                raise ValueError(f"array {name!r} has shape {a.shape}, expected {shape}")
        for name in ("x", "sim", "scores"):
            if arrays[name].dtype.kind != "f" or not np.isfinite(arrays[name]).all():
                raise ValueError(f"array {name!r} must hold finite floats")
        for name in ("knn", "labels", "comp", "names", "face_ids", "groups"):
            if arrays[name].dtype.kind not in "iu":
                raise ValueError(f"array {name!r} must hold integers")
        table = header["names"]
        if not isinstance(table, list) or not all(isinstance(s, str) for s in table):
            raise ValueError("the name table must be a list of strings")
        if w:
            check_knn_index(arrays["knn"], n, name="array 'knn'", rows_of="the state")
        fids = arrays["face_ids"]
        if n and (np.any(np.diff(fids) <= 0) or fids[0] < 0 or fids[-1] >= header["next_face_id"]):
            raise ValueError("face ids must increase and stay below next_face_id")
        labels = arrays["labels"]
        if n and (labels.min() < 0 or labels.max() >= header["next_cluster_id"]):
            raise ValueError("cluster ids outside [0, next_cluster_id)")
        names = arrays["names"]
        if n and (names.min() < -1 or names.max() >= len(table)):
            raise ValueError("name codes outside the name table")
        self._alloc(n)
        self._n, self._w = n, w
        for name in _ARRAYS + _OPTIONAL_ARRAYS:
            if name in ("knn", "sim"):
                self._bufs[name][:n, :w] = arrays[name]
            elif name == "scores":
                self._bufs[name][:n, :k1w] = arrays[name]
            else:
                self._bufs[name][:n] = arrays[name]
        self._name_list = list(table)
        self._name_code = {s: i for i, s in enumerate(table)}
        self._next_face = int(header["next_face_id"])
        self._next_id = int(header["next_cluster_id"])
        self._next_comp = int(header["next_component"])
        self._reindex()

    # ------------------------------------------------------------------ storage

    def _alloc(self, n: int) -> None:
        """Buffers with room for at least ``n`` rows (capacity doubles: amortised appends)."""
        old = self._bufs
        cap = old["x"].shape[0] if old else 0
        if old and n <= cap:
            return
        cap = max(n, 2 * cap, 64)
        K, D = max(self._width, 1), self.n_features_in_
        specs = {
            "x": ((cap, D), np.float32),
            "knn": ((cap, K), np.int64), "sim": ((cap, K), np.float32),
            "scores": ((cap, max(min(self._k1, K), 1)), np.float32),
            "labels": ((cap,), np.int64), "comp": ((cap,), np.int64),
            "names": ((cap,), np.int64), "face_ids": ((cap,), np.int64),
            "groups": ((cap,), np.int64),
        }  # fmt: skip
        bufs = {}
        for name, (shape, dtype) in specs.items():
            bufs[name] = np.zeros(shape, dtype=dtype)
            if old:
                bufs[name][: self._n] = old[name][: self._n]
        self._bufs = bufs

    def _append(self, xb: np.ndarray) -> None:
        n0, b = self._n, xb.shape[0]
        self._alloc(n0 + b)
        sl = slice(n0, n0 + b)
        self._bufs["x"][sl] = xb
        self._bufs["labels"][sl] = -1
        self._bufs["comp"][sl] = -1
        self._bufs["names"][sl] = -1
        self._bufs["groups"][sl] = -1
        self._bufs["face_ids"][sl] = np.arange(self._next_face, self._next_face + b)
        self._next_face += b
        self._n = n0 + b

    def _compact(self, keep: np.ndarray, new_pos: np.ndarray) -> None:
        """Drop the rows not kept; re-point kNN ids (ids of dropped rows become -1)."""
        n = self._n
        m = int(keep.sum())
        for buf in self._bufs.values():
            buf[:m] = buf[:n][keep]
        pos = np.where(keep, new_pos, -1)
        self._bufs["knn"][:m, : self._w] = pos[self._bufs["knn"][:m, : self._w]]
        self._n = m
        self._index.remove(np.flatnonzero(~keep))

    def _scalars(self) -> tuple[Any, ...]:
        return (self._n, self._w, self._next_face, self._next_id, self._next_comp,
                self.threshold_)  # fmt: skip

    def _keep(self, name: str, rows: Any) -> None:
        """Journal the rows of a buffer about to be written (while an add can be undone)."""
        if self._journal is not None:
            self._journal.append((name, rows, self._bufs[name][rows].copy()))

    def _undo(self, scalars: tuple[Any, ...]) -> None:
        """Undo a failed add: rows written back in reverse order, appended rows dropped."""
        for name, rows, values in reversed(self._journal or []):
            self._bufs[name][rows] = values
        self._n, self._w, self._next_face, self._next_id, self._next_comp = scalars[:5]
        self.threshold_ = scalars[5]
        if len(self._index) > self._n:  # the rows of the failed addition
            self._index.remove(np.arange(self._n, len(self._index)))

    def _snapshot(self) -> dict[str, Any]:
        """Everything an update may change (copies of the used rows; small next to a failure)."""
        return {
            "bufs": {k: v[: self._n].copy() for k, v in self._bufs.items()},
            "scalars": (self._n, self._w, self._next_face, self._next_id, self._next_comp),
            "names": (list(self._name_list), dict(self._name_code)),
            "threshold": self.threshold_,
        }

    def _restore(self, snap: dict[str, Any]) -> None:
        n = snap["scalars"][0]
        self._n = 0
        self._alloc(n)
        for k, v in snap["bufs"].items():
            self._bufs[k][:n] = v
        self._n, self._w, self._next_face, self._next_id, self._next_comp = snap["scalars"]
        self._name_list, self._name_code = snap["names"]
        self.threshold_ = snap["threshold"]
        self._reindex()

    def _rows(self, face_ids: Any, *, allow_repeats: bool) -> np.ndarray:
        """Storage rows of face ids; a clear error on unknown ones."""
        ids = np.asarray(face_ids)
        if ids.dtype == bool or ids.dtype.kind not in "iu":
            if ids.dtype.kind == "f" and ids.size and np.all(ids == np.round(ids)):
                ids = ids.astype(np.int64)
            elif ids.size:
                raise ValueError(f"face_ids must be integer face ids, got {face_ids!r}.")
        ids = ids.astype(np.int64).ravel()
        if not allow_repeats and np.unique(ids).size != ids.size:
            raise ValueError("face_ids lists a face more than once.")
        fids = self._bufs["face_ids"][: self._n]
        pos = np.searchsorted(fids, ids).clip(0, max(self._n - 1, 0))
        found = (fids[pos] == ids) if self._n else np.zeros(ids.size, dtype=bool)
        if not found.all():
            bad = ids[~found]
            raise ValueError(
                f"{bad.size} unknown face id(s), e.g. {bad[:5].tolist()} (the collection has "
                f"{self._n} faces)."
            )
        return pos

    # ------------------------------------------------------------------ kNN

    def _reindex(self) -> None:
        """The kNN index over the stored rows again (after a restore or a load)."""
        self._index.reset()
        if self._n:
            self._index.add(self._bufs["x"][: self._n])

    def _search(
        self, rows: np.ndarray, k: int, bounds: Optional[np.ndarray] = None
    ) -> tuple[np.ndarray, ...]:
        """The ``k`` nearest stored rows of the stored ``rows`` (themselves excluded)."""
        found = self._index.search(self._bufs["x"][rows], k, self_ids=rows, bounds=bounds)
        if bool((found[1] < 0).any()):
            raise ValueError(
                f"the {self.backend!r} index found fewer than {k} neighbours for some faces; "
                "use backend='torch' or 'faiss' (exact), or a larger search_k."
            )
        return found

    def _insert(self, n0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find the kNN rows of the new rows ``[n0, n)`` and update the rows they enter.

        Returns the rows (existing or new) whose 1-hop set changed, the 1-hop
        ids those rows had before, and the existing rows whose first
        ``max(k2, active_connection)`` neighbours changed.
        """
        n, w, k1w = self._n, self._w, min(self._k1, self._w)
        wc = min(max(self._cfg["k2"], self._cfg["active_connection"]), w)
        knn_, sim_ = self._bufs["knn"], self._bufs["sim"]
        k = min(w if self.backend == "torch" else max(self.search_k, w), n - 1)
        bounds = np.full(n, np.inf, dtype=np.float32)  # a new row's list is searched in full
        changed: list[np.ndarray] = []
        old_hop1: list[np.ndarray] = []
        context: list[np.ndarray] = []
        for c0 in range(n0, n, self.chunk_size):
            c1 = min(c0 + self.chunk_size, n)
            b = c1 - c0
            bounds[:n0] = sim_[:n0, w - 1]  # an existing row is entered above its last neighbour
            sims, ids, (qi, j, s) = self._search(np.arange(c0, c1), k, bounds)
            knn_[c0:c1, :w] = ids[:, :w]
            sim_[c0:c1, :w] = sims[:, :w]
            if qi.size:  # the existing rows the chunk enters
                rows, inv = np.unique(j, return_inverse=True)
                dense = np.full((rows.size, b), -np.inf, dtype=np.float32)
                dense[inv, qi] = s
                cs = np.concatenate([sim_[rows, :w], dense], 1)
                ci = np.concatenate(
                    [knn_[rows, :w], np.broadcast_to(np.arange(c0, c1), dense.shape)], 1
                )
                order = np.argsort(-cs, axis=1, kind="stable")[:, :w]
                new_i = np.take_along_axis(ci, order, 1)
                diff = (new_i[:, :k1w] != knn_[rows, :k1w]).any(1)
                changed.append(rows[diff])
                context.append(rows[(new_i[:, :wc] != knn_[rows, :wc]).any(1)])
                old_hop1.append(knn_[rows[diff], :k1w].ravel())
                self._keep("knn", rows)
                self._keep("sim", rows)
                knn_[rows, :w] = new_i
                sim_[rows, :w] = np.take_along_axis(cs, order, 1)
        cat = np.concatenate(changed) if changed else np.zeros(0, dtype=np.int64)
        old = np.concatenate(old_hop1) if old_hop1 else np.zeros(0, dtype=np.int64)
        ctx = np.unique(np.concatenate(context)) if context else old[:0]
        return np.unique(cat), old, ctx

    def _research(self, rows: np.ndarray) -> None:
        """New kNN rows for ``rows`` (after a removal), searched among all rows."""
        w = self._w
        for c0 in range(0, rows.size, self.chunk_size):
            r = rows[c0 : c0 + self.chunk_size]
            sims, ids = self._search(r, w)
            self._bufs["knn"][r, :w] = ids
            self._bufs["sim"][r, :w] = sims

    def _hop1(self, rows: np.ndarray) -> np.ndarray:
        return self._bufs["knn"][rows, : min(self._k1, self._w)]

    # ------------------------------------------------------------------ scoring

    def _score(self, pivots: np.ndarray) -> None:
        """Score the links of ``pivots`` to their 1-hop nodes, on the subgraph they read."""
        w = self._w
        if pivots.size == 0 or w == 0:
            return
        cfg = self._cfg
        k1w, k2 = min(self._k1, w), min(cfg["k2"], w)
        knn_ = self._bufs["knn"][: self._n, :w]
        scale = self._scale() if self._any_width else None
        model = self.clusterer.model_.to(cfg["device"])
        try:
            for p0 in range(0, pivots.size, _PIVOT_BLOCK):
                p = pivots[p0 : p0 + _PIVOT_BLOCK]
                hop1 = knn_[p, :k1w]
                hop2 = knn_[hop1.ravel(), :k2]
                nodes = np.unique(np.concatenate([p, hop1.ravel(), hop2.ravel()]))
                rows = knn_[nodes]
                pos = np.searchsorted(nodes, rows).clip(0, nodes.size - 1)
                local = np.where(nodes[pos] == rows, pos, nodes.size)  # outside: a dummy node
                local = np.concatenate([local, np.zeros((1, w), dtype=np.int64)])
                x = np.concatenate([self._bufs["x"][nodes], np.zeros((1, self.n_features_in_))])
                x_t = torch.from_numpy(x.astype(np.float32)).to(cfg["device"])
                knn_t = torch.from_numpy(local).to(cfg["device"])
                piv_t = torch.from_numpy(np.searchsorted(nodes, p)).to(cfg["device"])
                inputs: dict[str, Any] = {"pivot_similarity": cfg["pivot_similarity"]}
                if scale is not None:
                    ctx = self._structure(nodes, local, x_t, k1w, scale)
                    inputs = {"pivot_similarity": False, "structure": ctx}
                with skip_validation():  # the clusterer's settings, validated once
                    _, _, scores = predict_links(
                        model, x_t, knn_t, k1=k1w, k2=k2,
                        active_connection=cfg["active_connection"],
                        batch_size=cfg["inference_batch_size"], verbose=False,
                        pivots=piv_t, precision=cfg["precision"], **inputs,
                    )  # fmt: skip
                self._keep("scores", p)
                self._bufs["scores"][p, :k1w] = scores.view(-1, k1w).cpu().numpy()
        finally:
            self.clusterer.model_ = model.cpu()

    def _scale(self) -> tuple[float, float]:
        """The collection's similarity scale (:func:`~linkage_gcn.structure.similarity_scale`).

        Estimated on the whole collection at each update (its random pairs, a
        fixed seed): the links scored by this update read the collection as it
        is now, as a batch ``predict`` would; stored links keep the scale they
        were scored with.
        """
        return similarity_scale(torch.from_numpy(self._bufs["x"][: self._n]))

    def _structure(
        self, nodes: np.ndarray, local: np.ndarray, x_t: torch.Tensor, k: int,
        scale: tuple[float, float],
    ) -> StructureContext:  # fmt: skip
        """The structure context of the subgraph ``nodes`` (a dummy row last), as in a batch.

        Each node's nearest and ``k``-th similarities come from the stored kNN
        table of the whole collection, and its kNN list keeps the neighbours
        outside the subgraph as ids of their own (past the subgraph's), so that
        ranks and overlaps read the collection's lists, not the subgraph's.
        """
        loc, sd = scale
        m = nodes.size
        glob = self._bufs["knn"][nodes, :k]
        lists = np.where(local[:m, :k] < m, local[:m, :k], m + 1 + glob)
        lists = np.concatenate([lists, np.full((1, k), -1, dtype=np.int64)])
        sim = self._bufs["sim"][nodes, :k].astype(np.float64)
        first = np.append((sim[:, 0] - loc) / sd, 0.0)
        last = np.append((sim[:, k - 1] - loc) / sd, 0.0)
        dev = x_t.device
        norm = x_t.norm(dim=1, keepdim=True).clamp_min(1e-12)
        full = torch.ones(m + 1, device=dev)
        sims = np.concatenate([sim, np.zeros((1, k))])
        return StructureContext(
            x=x_t / norm, knn_index=torch.from_numpy(lists).to(dev),
            knn_similarity=torch.from_numpy(sims).float().to(dev), loc=full * loc,
            scale=full * sd, z_first=torch.from_numpy(first).float().to(dev),
            z_last=torch.from_numpy(last).float().to(dev),
            size_z=full * float(np.sqrt(2 * np.log(max(self._n, 2)))), n_collections=1,
        )  # fmt: skip

    def _rebuild(self) -> UpdateReport:
        """kNN, scores and clusters of the whole collection (small or first collections)."""
        n = self._n
        self._w = w = min(self._width, max(n - 1, 0))
        if w > 0:
            self._keep("knn", np.arange(n))
            self._keep("sim", np.arange(n))
            sims, ids = self._search(np.arange(n), w)
            self._bufs["knn"][:n, :w] = ids
            self._bufs["sim"][:n, :w] = sims
            self._score(np.arange(n))
        return self._recluster(np.arange(n), rescored=n if w else 0)

    # ------------------------------------------------------------------ merging

    def _pairs(self, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled pair scores among the rows of ``region`` (sorted), in local positions."""
        k1w = min(self._k1, self._w)
        m = region.size
        if k1w == 0 or m < 2:
            return np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.float32)
        nbr = self._bufs["knn"][region, :k1w]
        pos = np.searchsorted(region, nbr).clip(0, m - 1)
        inside = region[pos] == nbr
        src = np.broadcast_to(np.arange(m)[:, None], nbr.shape)[inside]
        return pool_pair_scores(
            src, pos[inside], self._bufs["scores"][region, :k1w][inside],
            num_nodes=m, pool=self._cfg["pool"],
        )  # fmt: skip

    def _region(self, touched: np.ndarray) -> np.ndarray:
        """The faces of every component holding a touched face (new faces included)."""
        comp = self._bufs["comp"][: self._n]
        hit = comp[touched]
        mask = np.isin(comp, hit[hit >= 0]) | (comp < 0)
        mask[touched] = True
        return np.flatnonzero(mask)

    def _recluster(self, region: np.ndarray, *, rescored: int) -> UpdateReport:
        """Merge the region again and map its clusters onto stable ids."""
        m = region.size
        if m == 0:
            return UpdateReport(rescored=rescored)
        edge_index, scores = self._pairs(region)
        names = self._bufs["names"][region]
        labels = np.asarray(self._merge(edge_index, scores, m, self.threshold_, names))
        labels = separate_groups(labels, edge_index, scores, self._bufs["groups"][region], names)
        comp = _components(edge_index, scores, self.threshold_, names, m)
        old = self._bufs["labels"][region]
        final, merged, split = self._assign_ids(labels, old, names >= 0)
        self._keep("labels", region)
        self._keep("comp", region)
        self._bufs["labels"][region] = final
        self._bufs["comp"][region] = self._next_comp + comp
        self._next_comp += int(comp.max()) + 1
        was = old >= 0
        moved = was & (final != old)
        if merged:
            keys = np.fromiter(merged.keys(), dtype=np.int64)
            vals = np.fromiter(merged.values(), dtype=np.int64)
            pos = np.searchsorted(keys, old).clip(0, keys.size - 1)
            via = moved & (keys[pos] == old) & (vals[pos] == final)
        else:
            via = np.zeros(m, dtype=bool)
        return UpdateReport(
            merged=merged, split=split, changed_faces=int(moved.sum()),
            merged_faces=int(via.sum()), rescored=int(rescored), region=int(m),
        )  # fmt: skip

    def _assign_ids(
        self, labels: np.ndarray, old: np.ndarray, named: np.ndarray
    ) -> tuple[np.ndarray, dict[int, int], dict[int, list[int]]]:
        """Give each new cluster an id: an old one where it takes over an old cluster.

        A new cluster's candidate is the old id among its faces with (named
        faces, most faces, smallest id) first; an old id claimed by several
        new clusters (a split) goes to the one with (named faces, most faces,
        oldest face) first. Other clusters get fresh ids.
        """
        labels = np.asarray(labels, dtype=np.int64)
        n_new = int(labels.max()) + 1
        has = old >= 0
        final_of = np.full(n_new, -1, dtype=np.int64)
        merged: dict[int, int] = {}
        split: dict[int, list[int]] = {}
        if has.any():
            span = int(old[has].max()) + 1
            key, inv, cnt = np.unique(
                labels[has] * span + old[has], return_inverse=True, return_counts=True
            )
            nnamed = np.bincount(inv.ravel(), weights=named[has], minlength=key.size) > 0
            pc, po = key // span, key % span
            order = np.lexsort((po, -cnt, ~nnamed, pc))
            first = order[np.r_[True, pc[order][1:] != pc[order][:-1]]]  # best old id per cluster
            c, o, k, nm = pc[first], po[first], cnt[first], nnamed[first]
            order = np.lexsort((c, -k, ~nm, o))
            win = order[np.r_[True, o[order][1:] != o[order][:-1]]]  # one cluster per old id
            final_of[c[win]] = o[win]
        fresh = final_of < 0
        final_of[fresh] = self._next_id + np.arange(int(fresh.sum()))
        self._next_id += int(fresh.sum())
        final = final_of[labels]
        if has.any():
            kept = np.zeros(span, dtype=bool)
            kept[final_of[final_of < span]] = True
            # where the faces of each old id went: the pair (old, cluster) with most faces
            order = np.lexsort((pc, -cnt, po))
            top = order[np.r_[True, po[order][1:] != po[order][:-1]]]
            gone = ~kept[po[top]]
            merged = dict(zip(po[top][gone].tolist(), final_of[pc[top][gone]].tolist()))
            multi = np.flatnonzero(np.bincount(po, minlength=span)[po] > 1)
            if multi.size:
                o_sel, f_sel = po[multi], final_of[pc[multi]]
                order = np.lexsort((f_sel, o_sel))
                o_sel, f_sel = o_sel[order], f_sel[order]
                bounds = np.flatnonzero(np.diff(o_sel)) + 1
                heads = o_sel[np.r_[0, bounds]].tolist()
                split = {h: g.tolist() for h, g in zip(heads, np.split(f_sel, bounds))}
        return final, merged, split


# ---------------------------------------------------------------------- helpers


def _components(
    edge_index: np.ndarray, scores: np.ndarray, threshold: float, names: np.ndarray, m: int
) -> np.ndarray:
    """Connected components of the kept links plus the links between faces of one name."""
    keep = scores >= threshold
    u, v = edge_index[0][keep], edge_index[1][keep]
    named = np.flatnonzero(names >= 0)
    if named.size:
        order = named[np.argsort(names[named], kind="stable")]
        g = names[order]
        start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
        head = np.repeat(order[start], np.diff(np.r_[start, g.size]))
        u, v = np.concatenate([u, head]), np.concatenate([v, order])
    graph = sp.csr_matrix((np.ones(u.size, dtype=np.bool_), (u, v)), shape=(m, m))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def _mark(n: int, rows: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def _no_triples() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, np.zeros(0, dtype=np.float32)


def _replace(report: UpdateReport, *, start: float, **changes: Any) -> UpdateReport:
    values = {**report.__dict__, **changes, "seconds": time.perf_counter() - start}
    return UpdateReport(**values)


def model_fingerprint(clusterer: Any) -> str:
    """SHA-256 of a fitted clusterer's weights and of the settings that shape its scores.

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> dlib = LinkageClusterer.pretrained("dlib-128")
    >>> digest = model_fingerprint(dlib)
    >>> len(digest), digest == model_fingerprint(dlib.set_params(merge="threshold"))
    (64, True)
    """
    check_is_fitted(clusterer, "model_")
    cfg = clusterer.resolved_params()
    settings = {
        "n_features_in_": int(clusterer.n_features_in_),
        "k_at_hop": list(cfg["k_at_hop"]),
        "active_connection": cfg["active_connection"],
        "n_neighbors": cfg["n_neighbors_predict"],
        "pivot_similarity": cfg["pivot_similarity"],
        "preprocessing": cfg["preprocessing"],
        "metric": cfg["metric"],
        "pool": cfg["pool"],
    }
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(clusterer.model_.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    mean = getattr(clusterer, "preprocessing_mean_", None)
    if mean is not None:
        h.update(np.asarray(mean, dtype=np.float32).tobytes())
    return h.hexdigest()


def _cut_rule() -> Rule:
    """The number part of the declared ``threshold`` rule (``"auto"`` has no meaning here)."""
    rule = PARAMS["threshold"]
    return next(r for r in (*getattr(rule, "rules", ()), rule) if isinstance(r, Number))


def _link_cut(value: Any) -> float:
    """A link threshold by the declared rule; ``"auto"`` refused with the reason."""
    if isinstance(value, str) and value == "auto":
        raise ValueError(
            "threshold='auto' is calibrated on labelled training data by "
            "LinkageClusterer.fit; an IncrementalClusterer has none: pass a number in "
            f"{_cut_rule().interval()} (or, at construction, leave threshold=None for the "
            "clusterer's cut)."
        )
    return float(_cut_rule()(value, "threshold"))


def _merge_function(clusterer: Any, cfg: dict[str, Any], merge: Any) -> MergeRule:
    """The merge to apply: a function as given, or a registry merge with names as constraints."""
    if callable(merge):
        return merge
    name = cfg["merge"] if merge is None else merge
    source = clusterer if name == cfg["merge"] else clone(clusterer).set_params(merge=name)
    return source.merge_rule(constrained=True)


def _qualname(fn: Any) -> str:
    """``module.name`` of a function, for messages."""
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else name


def _saved_settings(p: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The settings a state file holds, each checked by its rule (defaults for version 1)."""
    if header["format_version"] >= 2:
        missing = [key for key in _HEADER_V2 if key not in header]
        if missing:
            raise ValueError(
                f"{p} is an incomplete state file: missing header fields {', '.join(missing)}."
            )
    custom = header.get("custom_merge")
    try:
        if custom is not None and not isinstance(custom, str):
            raise ValueError(f"custom_merge must be a function's name or null, got {custom!r}.")
        merge = header.get("merge")
        return {
            "threshold": _link_cut(header["threshold"]),
            "backend": check_param("backend", header["backend"], PARAMS["incremental_backend"]),
            "search_k": check_param("search_k", header["search_k"]),
            "chunk_size": check_param("chunk_size", header.get("chunk_size")),
            "context": check_param("context", header.get("context", False)),
            "merge": None if merge is None else check_param("merge", merge),
            "custom_merge": custom,
        }
    except ValueError as exc:
        raise ValueError(f"{p} holds a bad setting: {exc}") from None
