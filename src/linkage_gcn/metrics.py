"""Clustering and edge metrics: pairwise, B-Cubed, NMI, edge AP and ROC AUC.

Every clustering metric is computed from the sparse contingency table
``c_ij = |G_i ∩ P_j|`` (ground-truth identity ``i``, predicted cluster ``j``),
built once with :func:`numpy.unique` and :class:`scipy.sparse.coo_matrix`: the
cost grows with the number of items (a sort) and of non-empty cells, never with
the product of identities and clusters (timings: ``docs/scaling.md``).

Arguments follow scikit-learn's order ``(labels_true, labels_pred)``. Labels may
be numpy arrays, lists or torch tensors of shape ``(N,)`` or ``(N, 1)`` holding
any integer ids (negative ones included; floats only when whole numbers) or
other comparable ids such as strings. They and the edge scores are validated
by :func:`linkage_gcn._validation.check_labels` and ``check_scores``, shared
with the rest of the package.

Conventions for degenerate inputs (no metric ever returns NaN):

* pairwise precision is ``1.0`` when no two items share a predicted cluster
  (no predicted pair, so no wrong one), and pairwise recall is ``1.0`` when no
  two items share an identity; B-Cubed is always defined for ``N >= 1``;
* an F-score is ``0.0`` when precision and recall are both ``0``;
* NMI follows :func:`sklearn.metrics.normalized_mutual_info_score`: ``1.0``
  when both labellings are a single cluster, ``0.0`` when the mutual
  information is ``0``.
"""

from __future__ import annotations

from math import log
from typing import Any, Optional, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ._validation import (
    check_edge_index,
    check_in_options,
    check_labels,
    check_same_length,
    check_scores,
)

__all__ = [
    "bcubed_by_identity_size",
    "bcubed_fscore",
    "contingency",
    "edge_ap",
    "edge_labels",
    "edge_roc_auc",
    "evaluate",
    "format_report",
    "nmi",
    "pairwise_fscore",
]

AVERAGE_METHODS = ("arithmetic", "geometric", "min", "max")
DEFAULT_SIZE_BINS = (1, 2, 4, 11, 51)


# --------------------------------------------------------------------------- validation


def _check_pair(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate two labellings of the same N >= 1 items and return them as int64."""
    t = check_labels(labels_true, name="labels_true", encode=True)
    p = check_labels(labels_pred, name="labels_pred", encode=True)
    if check_same_length(labels_true=t, labels_pred=p) == 0:
        raise ValueError("labels_true and labels_pred are empty; at least one item is needed.")
    return t, p


def _check_bins(bins: Sequence[int]) -> np.ndarray:
    """Validate strictly increasing identity-size lower bounds >= 1."""
    b = np.asarray(bins)
    if b.ndim != 1 or b.size == 0 or b.dtype.kind not in "iu":
        raise ValueError(f"bins must be a non-empty 1-D sequence of integers, got {bins!r}.")
    if b[0] < 1 or np.any(np.diff(b) <= 0):
        raise ValueError(f"bins must be strictly increasing identity sizes >= 1, got {bins!r}.")
    return b.astype(np.int64)


# --------------------------------------------------------------------------- contingency


def _contingency(t: np.ndarray, p: np.ndarray) -> sp.csr_matrix:
    """Contingency table of two validated int64 labellings (rows: true, columns: predicted)."""
    classes, ti = np.unique(t, return_inverse=True)
    clusters, pi = np.unique(p, return_inverse=True)
    ones = np.ones(t.shape[0], dtype=np.int64)
    shape = (classes.size, clusters.size)
    c = sp.coo_matrix((ones, (ti.ravel(), pi.ravel())), shape=shape).tocsr()
    c.sum_duplicates()
    return c


def contingency(labels_true: Any, labels_pred: Any) -> sp.csr_matrix:
    """Sparse contingency table ``c_ij = |G_i ∩ P_j|`` of two labellings.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.

    Returns
    -------
    scipy.sparse.csr_matrix of int64, shape (n_identities, n_clusters)
        Row ``i`` is the ``i``-th smallest true label, column ``j`` the
        ``j``-th smallest predicted label; only non-zero counts are stored.

    Examples
    --------
    >>> contingency([0, 0, 0, 1, 1], [5, 5, -1, -1, -1]).toarray()
    array([[1, 2],
           [2, 0]])
    """
    return _contingency(*_check_pair(labels_true, labels_pred))


def _sizes(c: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Identity sizes ``|G_i|`` (row sums) and cluster sizes ``|P_j|`` (column sums)."""
    return np.asarray(c.sum(axis=1)).ravel(), np.asarray(c.sum(axis=0)).ravel()


def _nonzero(c: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row ids, column ids and counts of the stored (non-zero) entries."""
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    return rows, c.indices, c.data


# --------------------------------------------------------------------------- metrics


def _ratio(num: float, den: float) -> float:
    """``num / den``, or ``1.0`` for an empty denominator (nothing to get wrong)."""
    return 1.0 if den == 0 else float(num) / float(den)


def _f(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall, ``0.0`` when both are ``0``."""
    total = precision + recall
    return 0.0 if total == 0 else 2.0 * precision * recall / total


def _pairwise_from(c: sp.csr_matrix) -> tuple[float, float, float]:
    """Pairwise precision, recall and F of a contingency table."""
    rows, cols = _sizes(c)
    n = int(rows.sum())
    tk = int(np.sum(c.data * c.data)) - n
    pk = int(np.sum(cols * cols)) - n
    qk = int(np.sum(rows * rows)) - n
    precision, recall = _ratio(tk, pk), _ratio(tk, qk)
    return precision, recall, _f(precision, recall)


def _bcubed_from(c: sp.csr_matrix) -> tuple[float, float, float]:
    """B-Cubed precision, recall and F of a contingency table."""
    rows, cols = _sizes(c)
    i, j, counts = _nonzero(c)
    sq = counts.astype(np.float64) ** 2
    n = float(rows.sum())
    precision = float(np.sum(sq / cols[j])) / n
    recall = float(np.sum(sq / rows[i])) / n
    return precision, recall, _f(precision, recall)


def _entropy(sizes: np.ndarray) -> float:
    """Entropy (nats) of a labelling given its cluster sizes, as scikit-learn computes it."""
    if sizes.size == 1:
        return 0.0
    s = sizes.astype(np.float64)
    total = s.sum()
    return float(-np.sum((s / total) * (np.log(s) - log(total))))


def _mutual_info(c: sp.csr_matrix) -> float:
    """Mutual information (nats) of a contingency table, as scikit-learn computes it."""
    rows, cols = _sizes(c)
    if rows.size == 1 or cols.size == 1:
        return 0.0
    i, j, counts = _nonzero(c)
    total = float(counts.sum())
    nm = counts / total
    log_outer = -np.log(rows[i] * cols[j]) + log(rows.sum()) + log(cols.sum())
    mi = nm * (np.log(counts) - log(total)) + nm * log_outer
    mi = np.where(np.abs(mi) < np.finfo(np.float64).eps, 0.0, mi)
    return max(float(mi.sum()), 0.0)


def _generalized_mean(a: float, b: float, method: str) -> float:
    """Return the ``min``, ``geometric``, ``arithmetic`` or ``max`` mean of two entropies."""
    if method == "min":
        return min(a, b)
    if method == "max":
        return max(a, b)
    if method == "geometric":
        return float(np.sqrt(a * b))
    return (a + b) / 2.0


def _nmi_from(c: sp.csr_matrix, average_method: str) -> float:
    """Normalised mutual information of a contingency table (scikit-learn semantics)."""
    rows, cols = _sizes(c)
    if rows.size == cols.size == 1:
        return 1.0
    mi = _mutual_info(c)
    if mi == 0:
        return 0.0
    return mi / _generalized_mean(_entropy(rows), _entropy(cols), average_method)


def pairwise_fscore(labels_true: Any, labels_pred: Any) -> tuple[float, float, float]:
    """Pairwise precision, recall and F-score (the learn-to-cluster definition).

    With ``tk = sum c_ij^2 - N`` (ordered pairs of distinct items sharing both
    identity and cluster), ``pk = sum_j |P_j|^2 - N`` and ``qk = sum_i |G_i|^2 - N``:
    precision ``tk / pk``, recall ``tk / qk``, F their harmonic mean.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.

    Returns
    -------
    precision, recall, fscore : float
        Precision is ``1.0`` when every predicted cluster is a singleton (no
        predicted pair), recall is ``1.0`` when every identity is a singleton,
        F is ``0.0`` when precision and recall are both ``0``.

    Examples
    --------
    >>> pairwise_fscore([0, 0, 0, 1, 1], [0, 0, 1, 1, 1])
    (0.5, 0.5, 0.5)
    >>> pairwise_fscore([0, 0, 1], [0, 1, 2])
    (1.0, 0.0, 0.0)
    """
    return _pairwise_from(contingency(labels_true, labels_pred))


def bcubed_fscore(labels_true: Any, labels_pred: Any) -> tuple[float, float, float]:
    """B-Cubed precision, recall and F-score.

    Precision ``(1/N) sum_ij c_ij^2 / |P_j|`` is the mean, over items, of the
    share of the item's cluster that has its identity; recall
    ``(1/N) sum_ij c_ij^2 / |G_i|`` the mean share of its identity found in its
    cluster. Swapping the arguments swaps precision and recall.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.

    Returns
    -------
    precision, recall, fscore : float

    Examples
    --------
    >>> bcubed_fscore([0, 0, 0, 1, 1], [0, 0, 1, 1, 1])
    (0.733, 0.733, 0.733)
    >>> bcubed_fscore([0, 0, 1, 1], [0, 1, 2, 3])
    (1.0, 0.5, 0.667)
    """
    return _bcubed_from(contingency(labels_true, labels_pred))


def nmi(labels_true: Any, labels_pred: Any, *, average_method: str = "arithmetic") -> float:
    """Normalised mutual information, equal to scikit-learn's to rounding error.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.
    average_method : {"arithmetic", "geometric", "min", "max"}
        How the two entropies are averaged in the normaliser. ``"arithmetic"``
        is scikit-learn's default since 0.22; ``"geometric"`` reproduces
        2019-era published numbers.

    Returns
    -------
    float
        In ``[0, 1]``: ``1.0`` when both labellings are one single cluster,
        ``0.0`` when the mutual information is ``0``.

    Examples
    --------
    >>> nmi([0, 0, 1, 1], [5, 5, 7, 7])
    1.0
    >>> nmi([0, 0, 0, 1, 1], [0, 0, 1, 1, 1], average_method="geometric")
    0.4325
    """
    method = check_in_options(average_method, AVERAGE_METHODS, "average_method")
    return _nmi_from(contingency(labels_true, labels_pred), method)


# --------------------------------------------------------------------------- per identity size


def _size_range(lo: int, hi: Optional[int]) -> str:
    """Readable label of the identity sizes ``[lo, hi)``: ``"1"``, ``"2-3"`` or ``"51+"``."""
    if hi is None:
        return f"{lo}+"
    return str(lo) if hi - 1 == lo else f"{lo}-{hi - 1}"


def _bin_row(lo: int, hi: Optional[int], sums: np.ndarray, n_ids: int) -> dict[str, Any]:
    """One result row from per-bin sums ``(n_items, precision sum, recall sum)``."""
    n_items, p_sum, r_sum = sums
    precision, recall = float(p_sum / n_items), float(r_sum / n_items)
    return {
        "sizes": _size_range(lo, hi),
        "min_size": lo,
        "max_size": None if hi is None else hi - 1,
        "n_identities": n_ids,
        "n_items": round(n_items),
        "precision": precision,
        "recall": recall,
        "fscore": _f(precision, recall),
    }


def bcubed_by_identity_size(
    labels_true: Any,
    labels_pred: Any,
    bins: Sequence[int] = DEFAULT_SIZE_BINS,
) -> list[dict[str, Any]]:
    """B-Cubed precision, recall and F per range of ground-truth identity size.

    Shows where a clusterer loses: identities with two or three photos are
    usually split far more than the big ones.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.
    bins : sequence of int
        Strictly increasing lower bounds of identity size: the default
        ``(1, 2, 4, 11, 51)`` gives sizes ``[1, 2)``, ``[2, 4)``, ``[4, 11)``,
        ``[11, 51)`` and ``[51, inf)``. Identities smaller than ``bins[0]``
        are left out.

    Returns
    -------
    list of dict
        One dict per non-empty bin (empty bins are left out), in size order,
        with keys ``"sizes"`` (such as ``"2-3"`` or ``"51+"``), ``"min_size"``,
        ``"max_size"`` (``None`` for the open-ended last bin),
        ``"n_identities"``, ``"n_items"``, and ``"precision"`` and ``"recall"``:
        the per-item B-Cubed precision and recall averaged over the items whose
        identity size falls in the bin (the clusters are the full predicted
        clusters). ``"fscore"`` is their harmonic mean. Weighting the bins by
        ``n_items`` gives back :func:`bcubed_fscore`'s precision and recall.

    Examples
    --------
    >>> rows = bcubed_by_identity_size([0, 1, 1, 2, 2, 2], [0, 1, 2, 3, 3, 3], bins=(1, 2, 3))
    >>> [(r["sizes"], r["n_items"], round(r["recall"], 3)) for r in rows]
    [('1', 1, 1.0), ('2', 2, 0.5), ('3+', 3, 1.0)]
    """
    t, p = _check_pair(labels_true, labels_pred)
    edges = _check_bins(bins)
    c = _contingency(t, p)
    rows, cols = _sizes(c)
    i, j, counts = _nonzero(c)
    sq = counts.astype(np.float64) ** 2
    row_bin = np.searchsorted(edges, rows, side="right") - 1
    entry_bin, keep = row_bin[i], row_bin[i] >= 0
    nb = edges.size
    n_ids = np.bincount(row_bin[row_bin >= 0], minlength=nb)
    sums = np.stack(
        [
            np.bincount(entry_bin[keep], weights=w[keep], minlength=nb)
            for w in (counts.astype(np.float64), sq / cols[j], sq / rows[i])
        ],
        axis=1,
    )
    uppers = [*(int(e) for e in edges[1:]), None]
    return [
        _bin_row(int(edges[k]), uppers[k], sums[k], int(n_ids[k]))
        for k in range(nb)
        if n_ids[k] > 0
    ]


# --------------------------------------------------------------------------- edges


def edge_labels(labels: Any, edge_index: Any) -> np.ndarray:
    """Whether each edge joins two items of the same identity.

    Parameters
    ----------
    labels : array-like or torch.Tensor of shape (N,) or (N, 1)
        Identities of the items.
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Source and target item ids (PyG convention), in ``[0, N)``.

    Returns
    -------
    numpy.ndarray of bool, shape (E,)

    Examples
    --------
    >>> edge_labels([7, 7, 3], [[0, 0, 2], [1, 2, 1]])
    array([ True, False, False])
    """
    y = check_labels(labels, name="labels", encode=True)
    ei = check_edge_index(edge_index, y.shape[0], what="item id").cpu().numpy()
    return y[ei[0]] == y[ei[1]]


def _edge_targets(labels_true: Any, edge_index: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate edges and scores; return same-identity labels (both classes present) and scores."""
    y = edge_labels(check_labels(labels_true, name="labels_true", encode=True), edge_index)
    s = check_scores(scores, n_edges=y.shape[0]).cpu().to(torch.float64).numpy()
    n_pos = int(y.sum())
    if y.size == 0:
        raise ValueError("edge_index has no edges; AP and ROC AUC are undefined.")
    if n_pos in (0, y.size):
        kind = "the same identity" if n_pos else "different identities"
        raise ValueError(
            f"all {y.size} edges join items of {kind}; AP and ROC AUC need both "
            "same-identity and different-identity edges."
        )
    return y, s


#: The edge metrics (:func:`edge_ap`, :func:`edge_roc_auc`, :func:`evaluate`'s keys):
#: key -> ``(same-identity labels, scores) -> float``.
_EDGE_METRICS = {
    "edge_ap": lambda y, s: float(average_precision_score(y, s)),
    "edge_roc_auc": lambda y, s: float(roc_auc_score(y, s)),
}


def edge_ap(labels_true: Any, edge_index: Any, scores: Any) -> float:
    """Average precision of edge scores against same-identity edge labels.

    The RIWS paper's edge metric: it judges the linkage scores with the merge
    stage left out.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Scored edges (PyG convention), item ids in ``[0, N)``.
    scores : array-like or torch.Tensor of shape (E,) or (E, 1)
        Finite scores, higher meaning "same identity".

    Returns
    -------
    float
        :func:`sklearn.metrics.average_precision_score` of the scores.

    Raises
    ------
    ValueError
        When shapes disagree, ids are out of range, scores are not finite, or
        all edges have the same label (AP is then undefined).

    Examples
    --------
    >>> edge_ap([0, 0, 1], [[0, 0, 1], [1, 2, 2]], [0.9, 0.2, 0.4])
    1.0
    """
    return _EDGE_METRICS["edge_ap"](*_edge_targets(labels_true, edge_index, scores))


def edge_roc_auc(labels_true: Any, edge_index: Any, scores: Any) -> float:
    """Area under the ROC curve of edge scores against same-identity edge labels.

    Parameters
    ----------
    labels_true, edge_index, scores
        As :func:`edge_ap`.

    Returns
    -------
    float
        :func:`sklearn.metrics.roc_auc_score` of the scores.

    Raises
    ------
    ValueError
        As :func:`edge_ap`.

    Examples
    --------
    >>> edge_roc_auc([0, 0, 1], [[0, 0, 1], [1, 2, 2]], [0.9, 0.5, 0.5])
    1.0
    """
    return _EDGE_METRICS["edge_roc_auc"](*_edge_targets(labels_true, edge_index, scores))


# --------------------------------------------------------------------------- evaluate


def _cluster_metrics(c: sp.csr_matrix, average_method: str) -> dict[str, float]:
    """Pairwise, B-Cubed and NMI of one contingency table."""
    pp, pr, pf = _pairwise_from(c)
    bp, br, bf = _bcubed_from(c)
    return {
        "pairwise_precision": pp,
        "pairwise_recall": pr,
        "pairwise_fscore": pf,
        "bcubed_precision": bp,
        "bcubed_recall": br,
        "bcubed_fscore": bf,
        "nmi": _nmi_from(c, average_method),
    }


def _without_singletons(c: sp.csr_matrix, average_method: str) -> dict[str, float]:
    """Metrics on the items of predicted clusters of size >= 2, keys suffixed."""
    _, cols = _sizes(c)
    sub = c[:, cols >= 2]
    sub = sub[sub.getnnz(axis=1) > 0]
    n_kept = int(sub.sum())
    out: dict[str, float] = {"n_items_no_singletons": n_kept}
    if n_kept:
        metrics = _cluster_metrics(sub.tocsr(), average_method)
        out.update({f"{k}_no_singletons": v for k, v in metrics.items()})
    return out


def evaluate(
    labels_true: Any,
    labels_pred: Any,
    *,
    edge_index: Any = None,
    scores: Any = None,
    remove_singletons: bool = True,
    average_method: str = "arithmetic",
) -> dict[str, float]:
    """All clustering metrics at once, from one contingency table.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,) or (N, 1)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,) or (N, 1)
        Predicted clusters.
    edge_index : array-like or torch.Tensor of int, shape (2, E), optional
        Scored edges; give together with ``scores`` to add ``edge_ap`` and
        ``edge_roc_auc``.
    scores : array-like or torch.Tensor of shape (E,), optional
        Edge scores, see :func:`edge_ap`.
    remove_singletons : bool
        Also report the metrics on the items whose predicted cluster has at
        least two members, as the reference codes do.
    average_method : {"arithmetic", "geometric", "min", "max"}
        NMI normaliser, see :func:`nmi`.

    Returns
    -------
    dict
        ``pairwise_precision``, ``pairwise_recall``, ``pairwise_fscore``,
        ``bcubed_precision``, ``bcubed_recall``, ``bcubed_fscore``, ``nmi``,
        ``n_clusters`` (predicted), ``n_singletons`` (predicted clusters of
        size 1) and ``n_items``. With ``remove_singletons``, also
        ``n_items_no_singletons`` and the seven metrics again with suffix
        ``_no_singletons``; those seven are left out when every predicted
        cluster is a singleton (nothing remains to score). With edges,
        ``edge_ap`` and ``edge_roc_auc``.

    Examples
    --------
    >>> m = evaluate([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 2])
    >>> m["bcubed_fscore"], m["n_clusters"], m["n_singletons"]
    (0.778, 3, 1)
    >>> m["bcubed_fscore_no_singletons"], m["n_items_no_singletons"]
    (0.733, 5)
    """
    t, p = _check_pair(labels_true, labels_pred)
    method = check_in_options(average_method, AVERAGE_METHODS, "average_method")
    if (edge_index is None) != (scores is None):
        raise ValueError("edge_index and scores must be given together (or neither).")
    c = _contingency(t, p)
    _, cols = _sizes(c)
    out = _cluster_metrics(c, method)
    out.update(n_clusters=int(cols.size), n_singletons=int(np.sum(cols == 1)), n_items=t.size)
    if remove_singletons:
        out.update(_without_singletons(c, method))
    if edge_index is not None:
        y, s = _edge_targets(t, edge_index, scores)
        out.update({key: metric(y, s) for key, metric in _EDGE_METRICS.items()})
    return out


def _prf(metrics: dict[str, float], prefix: str, suffix: str) -> str:
    """``"P/R/F 0.904 / 0.843 / 0.873"`` for one metric family."""
    vals = (metrics[f"{prefix}_{k}{suffix}"] for k in ("precision", "recall", "fscore"))
    return "P/R/F " + " / ".join(f"{v:.3f}" for v in vals)


def _metric_line(metrics: dict[str, float], suffix: str) -> str:
    """B-Cubed, pairwise and NMI on one line, for keys ending in ``suffix``."""
    return (
        f"B-Cubed {_prf(metrics, 'bcubed', suffix)} | "
        f"pairwise {_prf(metrics, 'pairwise', suffix)} | "
        f"NMI {metrics[f'nmi{suffix}']:.3f}"
    )


#: The keys :func:`format_report` always reads.
_REPORT_KEYS = (
    "n_items",
    "n_clusters",
    "n_singletons",
    "nmi",
    *(f"{m}_{k}" for m in ("bcubed", "pairwise") for k in ("precision", "recall", "fscore")),
)


def format_report(metrics: dict[str, float]) -> str:
    """Summarise :func:`evaluate`'s output in a few human-readable lines.

    Parameters
    ----------
    metrics : dict
        As returned by :func:`evaluate`; the optional parts (no-singleton
        metrics, edge metrics) are shown when present.

    Returns
    -------
    str
        A few lines, without a trailing newline.

    Examples
    --------
    >>> print(format_report(evaluate([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 2])))
    6 items, 3 predicted clusters (1 singletons)
    B-Cubed P/R/F 0.778 / 0.778 / 0.778 | pairwise P/R/F 0.500 / 0.500 / 0.500 | NMI 0.685
    without singletons (5 items): B-Cubed P/R/F 0.733 / 0.733 / 0.733 | pairwise ... | NMI 0.433
    """
    missing = [k for k in _REPORT_KEYS if not isinstance(metrics, dict) or k not in metrics]
    if missing:
        raise ValueError(
            "metrics must be the dict evaluate() returns; it lacks "
            f"{', '.join(map(repr, missing))}."
        )
    lines = [
        f"{metrics['n_items']} items, {metrics['n_clusters']} predicted clusters "
        f"({metrics['n_singletons']} singletons)",
        _metric_line(metrics, ""),
    ]
    if "nmi_no_singletons" in metrics:
        n_kept = metrics["n_items_no_singletons"]
        lines.append(
            f"without singletons ({n_kept} items): {_metric_line(metrics, '_no_singletons')}"
        )
    elif "n_items_no_singletons" in metrics:
        lines.append("without singletons: no item left (every predicted cluster is a singleton)")
    if "edge_ap" in metrics:
        lines.append(f"edges: AP {metrics['edge_ap']:.4f} | ROC AUC {metrics['edge_roc_auc']:.4f}")
    return "\n".join(lines)
