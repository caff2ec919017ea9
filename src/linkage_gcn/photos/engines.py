"""The clustering behind the photo pipeline: a growing library, or re-clustering with stable ids.

:func:`make_engine` picks, for a fitted :class:`~linkage_gcn.LinkageClusterer`:

* :class:`IncrementalEngine`: an :class:`~linkage_gcn.incremental.IncrementalClusterer`
  (new faces scored locally, ids kept, names as cannot-link constraints, its
  own state file), whenever it takes the model;
* :class:`RefitEngine` otherwise (models it does not take, such as
  ``features="structure"`` ones): every change clusters all faces again with
  the model (:meth:`~linkage_gcn.LinkageClusterer.predict_edges` and its merge
  in the form with names as constraints) and gives each new cluster the id of
  the old cluster holding most of its faces (a named one first), so that ids
  stay and merges and splits are reported as the growing library reports them.

Both answer the same calls (``add``, ``remove``, ``name``, ``links``,
``save``/``load``) and return :class:`~linkage_gcn.incremental.UpdateReport`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ..incremental import IncrementalClusterer, UpdateReport, model_fingerprint
from ..merge import separate_groups

__all__ = ["IncrementalEngine", "RefitEngine", "make_engine", "match_ids"]


class IncrementalEngine:
    """A photo library's faces in an :class:`~linkage_gcn.incremental.IncrementalClusterer`.

    Parameters
    ----------
    library : IncrementalClusterer
    """

    kind = "incremental"

    def __init__(self, library: IncrementalClusterer) -> None:
        self.library = library

    def __repr__(self) -> str:
        return f"IncrementalEngine({self.library!r})"

    def __len__(self) -> int:
        return len(self.library)

    @property
    def face_ids_(self) -> np.ndarray:
        """Face ids, storage order."""
        return self.library.face_ids_

    @property
    def labels_(self) -> np.ndarray:
        """Person (cluster) id of each face."""
        return self.library.labels_

    @property
    def names_(self) -> np.ndarray:
        """Name of each face or ``None``."""
        return self.library.names_

    @property
    def threshold(self) -> float:
        """The link cut in use."""
        return float(self.library.threshold_)

    def add(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> UpdateReport:
        """Add faces (embeddings as the face model returns them); faces of one group apart."""
        return self.library.add(X, groups)

    def remove(self, face_ids: np.ndarray) -> UpdateReport:
        """Drop faces."""
        return self.library.remove(face_ids) if len(face_ids) else UpdateReport()

    def name(self, face_ids: np.ndarray, names: Sequence[Optional[str]]) -> UpdateReport:
        """Name faces (``None`` removes a name)."""
        return self.library.name(face_ids, list(names)) if len(face_ids) else UpdateReport()

    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """The scored links: pairs of face ids (2, E) and their pooled scores."""
        edge_index, scores = self.library.pair_scores()
        return self.library.face_ids_[edge_index], np.asarray(scores, np.float32)

    def save(self, path: Path) -> None:
        """Write the state (a new file)."""
        self.library.save(path)

    @classmethod
    def load(cls, path: Path, clusterer: Any) -> IncrementalEngine:
        """Read a state written by :meth:`save` for the same model."""
        return cls(IncrementalClusterer.load(path, clusterer))


class RefitEngine:
    """A photo library's faces clustered again as a whole on every change, ids matched.

    Parameters
    ----------
    clusterer : LinkageClusterer
        A fitted clusterer; its link cut and its merge (with names as
        constraints) apply.

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> from linkage_gcn.datasets import make_identities
    >>> X, _ = make_identities(20, dim=128, random_state=0)
    >>> engine = RefitEngine(LinkageClusterer.pretrained("dlib-128"))
    >>> first = engine.add(X[:30])
    >>> report = engine.add(X[30:])
    >>> report.face_ids[:3].tolist(), len(engine) == len(X)
    ([30, 31, 32], True)
    """

    kind = "refit"

    def __init__(self, clusterer: Any) -> None:
        self.clusterer = clusterer
        self.fingerprint_ = model_fingerprint(clusterer)
        self._rule = clusterer.merge_rule(constrained=True)
        self._threshold = float(clusterer.link_threshold())
        n_features = int(clusterer.n_features_in_)
        self._x = np.zeros((0, n_features), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._labels = np.zeros(0, np.int64)
        self._codes = np.zeros(0, np.int64)
        self._groups = np.zeros(0, np.int64)
        self._name_list: list[str] = []
        self._edges = np.zeros((2, 0), np.int64)
        self._scores = np.zeros(0, np.float32)
        self._next_face = 0
        self._next_id = 0

    def __repr__(self) -> str:
        return (f"RefitEngine(n_faces={len(self)}, n_clusters={np.unique(self._labels).size}, "
                f"threshold={self._threshold:.4g})")  # fmt: skip

    def __len__(self) -> int:
        return int(self._ids.size)

    @property
    def face_ids_(self) -> np.ndarray:
        """Face ids, storage order."""
        return self._ids.copy()

    @property
    def labels_(self) -> np.ndarray:
        """Person (cluster) id of each face."""
        return self._labels.copy()

    @property
    def names_(self) -> np.ndarray:
        """Name of each face or ``None``."""
        return np.array([None, *self._name_list], dtype=object)[self._codes + 1]

    @property
    def threshold(self) -> float:
        """The link cut in use."""
        return self._threshold

    def add(self, X: np.ndarray, groups: Optional[np.ndarray] = None) -> UpdateReport:
        """Add faces and cluster everything again; ids kept by overlap; groups kept apart."""
        start = time.perf_counter()
        X = np.asarray(X, np.float32)
        if X.ndim != 2 or X.shape[1] != self._x.shape[1]:
            raise ValueError(f"expected embeddings of shape (n, {self._x.shape[1]}), got "
                             f"{X.shape}.")  # fmt: skip
        g = np.full(len(X), -1, np.int64) if groups is None else np.asarray(groups, np.int64)
        if g.shape != (len(X),):
            raise ValueError(f"groups has shape {g.shape}; expected ({len(X)},).")
        new = self._next_face + np.arange(len(X), dtype=np.int64)
        self._x = np.concatenate([self._x, X])
        self._ids = np.concatenate([self._ids, new])
        old = np.concatenate([self._labels, np.full(len(X), -1, np.int64)])
        self._codes = np.concatenate([self._codes, np.full(len(X), -1, np.int64)])
        self._groups = np.concatenate([self._groups, g.clip(-1)])
        self._next_face += len(X)
        self._score()
        report = self._recluster(old, start)
        return _with(report, face_ids=new, labels=self._labels[-len(X):].copy() if len(X) else
                     np.zeros(0, np.int64))  # fmt: skip

    def remove(self, face_ids: np.ndarray) -> UpdateReport:
        """Drop faces and cluster the others again."""
        start = time.perf_counter()
        face_ids = np.asarray(face_ids, np.int64)
        if face_ids.size == 0:
            return UpdateReport()
        keep = ~np.isin(self._ids, face_ids)
        if (~keep).sum() != np.unique(face_ids).size:
            raise ValueError("unknown face ids: " + str(np.setdiff1d(face_ids, self._ids)[:5]))
        gone = np.setdiff1d(self._labels[~keep], self._labels[keep])
        self._x, self._ids, self._codes = self._x[keep], self._ids[keep], self._codes[keep]
        self._groups = self._groups[keep]
        old = self._labels[keep]
        self._labels = old.copy()
        self._score()
        return _with(self._recluster(old, start), removed=gone.tolist())

    def name(self, face_ids: np.ndarray, names: Sequence[Optional[str]]) -> UpdateReport:
        """Name faces (``None`` removes a name) and merge again (no scoring)."""
        start = time.perf_counter()
        face_ids = np.asarray(face_ids, np.int64)
        if face_ids.size == 0:
            return UpdateReport()
        pos = np.searchsorted(self._ids, face_ids).clip(0, max(len(self) - 1, 0))
        if len(self) == 0 or (self._ids[pos] != face_ids).any():
            raise ValueError("unknown face ids: " + str(np.setdiff1d(face_ids, self._ids)[:5]))
        for p, name in zip(pos.tolist(), names):
            if name is None:
                self._codes[p] = -1
                continue
            if name not in self._name_list:
                self._name_list.append(name)
            self._codes[p] = self._name_list.index(name)
        return self._recluster(self._labels.copy(), start)

    def links(self) -> tuple[np.ndarray, np.ndarray]:
        """The scored links: pairs of face ids (2, E) and their pooled scores."""
        return self._ids[self._edges], self._scores.copy()

    def _score(self) -> None:
        n = len(self)
        if n < 2:
            self._edges, self._scores = np.zeros((2, 0), np.int64), np.zeros(0, np.float32)
            return
        edges, scores = self.clusterer.predict_edges(self._x)
        self._edges = np.asarray(edges, np.int64)
        self._scores = np.asarray(scores, np.float32)

    def _recluster(self, old: np.ndarray, start: float) -> UpdateReport:
        n = len(self)
        if n == 0:
            self._labels = np.zeros(0, np.int64)
            return UpdateReport(seconds=time.perf_counter() - start)
        if n == 1:
            raw = np.zeros(1, np.int64)
        else:
            raw = np.asarray(
                self._rule(self._edges, self._scores, n, self._threshold, self._codes), np.int64
            )
            raw = separate_groups(raw, self._edges, self._scores, self._groups, self._codes)
        labels, merged, split, self._next_id = match_ids(raw, old, self._codes >= 0,
                                                         self._next_id)  # fmt: skip
        self._labels = labels
        was = old >= 0
        return UpdateReport(merged=merged, split=split,
                            changed_faces=int((was & (labels != old)).sum()), rescored=n,
                            region=n, seconds=time.perf_counter() - start)  # fmt: skip

    def save(self, path: Path) -> None:
        """Write the state (a new file; embeddings, ids, names, scored links)."""
        from .._archive import write_state

        write_state(path, {"kind": "photos-refit", "fingerprint": self.fingerprint_,
                           "names": self._name_list, "next_face_id": self._next_face,
                           "next_cluster_id": self._next_id},
                    {"x": self._x, "face_ids": self._ids, "labels": self._labels,
                     "names": self._codes, "edges": self._edges, "scores": self._scores,
                     "groups": self._groups},
                    )  # fmt: skip

    @classmethod
    def load(cls, path: Path, clusterer: Any) -> RefitEngine:
        """Read a state written by :meth:`save`; refused for another model."""
        from .._archive import read_state

        header, a = read_state(path, required_arrays=("x", "face_ids", "labels", "names",
                                                      "edges", "scores"),
                               required_header=("kind", "fingerprint", "names"))  # fmt: skip
        engine = cls(clusterer)
        if header["kind"] != "photos-refit" or header["fingerprint"] != engine.fingerprint_:
            raise ValueError(f"{path} holds the state of another model or kind; it cannot be "
                             "read with this one.")  # fmt: skip
        engine._x, engine._ids, engine._labels = a["x"], a["face_ids"], a["labels"]
        engine._codes, engine._edges, engine._scores = a["names"], a["edges"], a["scores"]
        engine._groups = a.get("groups", np.full(len(engine._ids), -1, np.int64))
        if engine._groups.shape != engine._ids.shape:
            raise ValueError(f"{path} is not a consistent state: groups and face ids differ "
                             "in length.")  # fmt: skip
        engine._name_list = list(header["names"])
        engine._next_face, engine._next_id = header["next_face_id"], header["next_cluster_id"]
        return engine


def _with(report: UpdateReport, **changes: Any) -> UpdateReport:
    return UpdateReport(**{**report.__dict__, **changes})


def match_ids(
    labels: np.ndarray, old: np.ndarray, named: np.ndarray, next_id: int
) -> tuple[np.ndarray, dict[int, int], dict[int, list[int]], int]:
    """Give new clusters the ids of the old clusters they continue.

    Pairs (new cluster, old id) are taken by decreasing overlap, those
    holding a named face first, then by the smaller old id; each new cluster
    takes at most one old id and each old id goes to at most one new
    cluster. Other new clusters get fresh ids from ``next_id``.

    Parameters
    ----------
    labels : numpy.ndarray of int, shape (n,)
        The new clustering (any numbering).
    old : numpy.ndarray of int, shape (n,)
        Each face's previous id, ``-1`` for new faces.
    named : numpy.ndarray of bool, shape (n,)
        Faces carrying a name.
    next_id : int
        The first fresh id.

    Returns
    -------
    ids : numpy.ndarray of int64
        The id of each face.
    merged : dict of int to int
        Old ids that no cluster kept -> the id now holding most of their faces.
    split : dict of int to list of int
        Old ids whose faces now carry several ids -> those ids.
    next_id : int
        The next fresh id.

    Examples
    --------
    >>> ids, merged, split, nxt = match_ids(np.array([5, 5, 5, 7, 7]),
    ...                                     np.array([0, 0, 1, 1, -1]),
    ...                                     np.zeros(5, bool), 2)
    >>> ids.tolist(), merged, split, nxt
    ([0, 0, 0, 1, 1], {}, {1: [0, 1]}, 2)
    """
    labels, old = np.asarray(labels, np.int64), np.asarray(old, np.int64)
    uniq, lab = np.unique(labels, return_inverse=True)
    lab = lab.ravel()
    final_of = np.full(uniq.size, -1, np.int64)
    has = old >= 0
    merged: dict[int, int] = {}
    split: dict[int, list[int]] = {}
    if has.any():
        pairs, inv, counts = np.unique(np.stack([lab[has], old[has]], 1), axis=0,
                                       return_inverse=True, return_counts=True)  # fmt: skip
        nnamed = np.bincount(inv.ravel(), weights=named[has], minlength=len(pairs)) > 0
        order = np.lexsort((pairs[:, 1], -counts, ~nnamed))
        taken: set[int] = set()
        for c, o in pairs[order].tolist():
            if final_of[c] < 0 and o not in taken:
                final_of[c] = o
                taken.add(o)
    fresh = final_of < 0
    final_of[fresh] = next_id + np.arange(int(fresh.sum()))
    next_id += int(fresh.sum())
    ids = final_of[lab]
    if has.any():
        # where each old id's faces went: the pair with most faces
        pc, po = final_of[pairs[:, 0]], pairs[:, 1]
        order = np.lexsort((pc, -counts, po))
        top = order[np.r_[True, po[order][1:] != po[order][:-1]]]
        kept = np.isin(po[top], final_of)
        merged = {int(o): int(c) for o, c, k in zip(po[top], pc[top], kept) if not k}
        for o in np.unique(po).tolist():
            targets = np.unique(pc[po == o])
            if targets.size > 1:
                split[int(o)] = targets.tolist()
    return ids, merged, split, next_id


def make_engine(clusterer: Any, kind: str = "auto") -> Union[IncrementalEngine, RefitEngine]:
    """An :class:`IncrementalEngine` when the model allows it, else a :class:`RefitEngine`.

    Parameters
    ----------
    clusterer : LinkageClusterer
        A fitted clusterer.
    kind : {"auto", "incremental", "refit"}
        ``"auto"``: incremental where :class:`~linkage_gcn.incremental.IncrementalClusterer`
        takes the model; the others force one (``"incremental"`` raises
        where it does not).

    Examples
    --------
    >>> from linkage_gcn import LinkageClusterer
    >>> make_engine(LinkageClusterer.pretrained("dlib-128")).kind
    'incremental'
    """
    if kind == "refit":
        return RefitEngine(clusterer)
    try:
        return IncrementalEngine(IncrementalClusterer(clusterer))
    except ValueError as exc:
        if kind == "incremental" or "not supported" not in str(exc):
            raise
        return RefitEngine(clusterer)


def load_engine(kind: str, path: Path, clusterer: Any) -> Union[IncrementalEngine, RefitEngine]:
    """Read an engine's state of ``kind`` (``"incremental"`` or ``"refit"``)."""
    cls = {"incremental": IncrementalEngine, "refit": RefitEngine}.get(kind)
    if cls is None:
        raise ValueError(f"unknown clustering state kind {kind!r}.")
    return cls.load(path, clusterer)
