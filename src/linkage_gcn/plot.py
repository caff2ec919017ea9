"""Figures of a clustering run: cluster sizes, edge scores, B-Cubed by size, training.

matplotlib is the ``plot`` extra (``pip install 'linkage-gcn[plot]'``); it is
imported only when a figure is drawn, so this module imports without it. Each
``plot_*`` function draws on the :class:`~matplotlib.axes.Axes` it is given or
on a new :class:`matplotlib.figure.Figure` (never through :mod:`matplotlib.pyplot`:
no global figure is opened and nothing is shown) and returns the axes.
:func:`plot_report` writes the main figures of a fitted
:class:`~linkage_gcn.LinkageClusterer` on labelled test data as PNG files.

Examples
--------
>>> from linkage_gcn import plot
>>> ax = plot.plot_cluster_sizes([0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2])
>>> ax.get_xscale(), ax.get_yscale()
('log', 'log')
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import torch
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.utils.validation import check_is_fitted

from ._files import atomic_write
from ._validation import (
    as_tensor,
    check_features,
    check_int,
    check_labels,
    check_same_length,
    check_scores,
)
from .metrics import DEFAULT_SIZE_BINS, bcubed_by_identity_size, edge_labels

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "REPORT_FIGURES",
    "plot_bcubed_by_size",
    "plot_cluster_sizes",
    "plot_gamma_sweep",
    "plot_history",
    "plot_precision_recall",
    "plot_report",
    "plot_score_histogram",
    "report_paths",
    "require_matplotlib",
    "write_figures",
]

#: The files of :func:`plot_report` (figure -> file name); ``history`` only
#: when the clusterer has a training history.
REPORT_FIGURES: dict[str, str] = {
    "cluster_sizes": "cluster_sizes.png",
    "score_histogram": "score_histogram.png",
    "precision_recall": "precision_recall.png",
    "bcubed_by_size": "bcubed_by_size.png",
    "history": "history.png",
}

#: Line style of each sampler in :func:`plot_gamma_sweep`: RS dashed, RIWS solid.
LINE_STYLES = {"rs": "--", "riws": "-"}


def require_matplotlib() -> None:
    """Raise a helpful :class:`ImportError` when matplotlib (the ``plot`` extra) is missing.

    Examples
    --------
    >>> require_matplotlib()  # matplotlib is installed: nothing happens
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'linkage-gcn[plot]'") from exc


def _axes(ax: Optional[Axes]) -> Axes:
    """``ax``, or the axes of a new (pyplot-free) figure."""
    require_matplotlib()
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes (or None), got {type(ax).__name__}.")
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=(5.0, 3.6)).add_subplot()


# --------------------------------------------------------------------------- validation


def _labels(labels: Any, name: str, n_samples: Optional[int] = None) -> np.ndarray:
    """Non-empty identity labels (any comparable ids) as int64 codes."""
    y = check_labels(labels, name=name, n_samples=n_samples, encode=True)
    if y.shape[0] == 0:
        raise ValueError(f"{name} is empty; at least one item is needed.")
    return y


def _same(same: Any, n_edges: int) -> np.ndarray:
    """One boolean per edge (True, 1: same identity); NaN and other values refused."""
    t, _ = as_tensor(same, name="same")
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1 or t.shape[0] != n_edges:
        raise ValueError(
            f"same must have shape ({n_edges},), one flag per score, got shape {tuple(t.shape)}."
        )
    if t.dtype == torch.bool:
        return t.detach().cpu().numpy()
    if t.is_complex():
        raise ValueError(f"same must hold booleans, got dtype {t.dtype}.")
    v = t.detach().cpu().to(torch.float64).numpy()
    if np.isnan(v).any():
        raise ValueError(f"same contains {int(np.isnan(v).sum())} NaN value(s).")
    if not np.isin(v, (0.0, 1.0)).all():
        raise ValueError("same must hold booleans (or 0 and 1), one per edge.")
    return v == 1.0


def _scores(scores: Any, n_edges: Optional[int] = None) -> np.ndarray:
    """Finite float64 scores, at least one; ``n_edges``: one per edge of ``edge_index``."""
    s = check_scores(scores, n_edges=n_edges).detach().cpu().to(torch.float64).numpy()
    if s.size == 0:
        raise ValueError("scores is empty; at least one scored edge is needed.")
    return s


def _edges(scores: Any, same: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite float64 scores and their same-identity flags, at least one edge."""
    s = _scores(scores)
    return s, _same(same, s.shape[0])


def _both_classes(same: np.ndarray) -> None:
    """A precision-recall curve needs same-identity and different-identity edges."""
    n_pos = int(same.sum())
    if n_pos in (0, same.size):
        kind = "the same identity" if n_pos else "different identities"
        raise ValueError(
            f"all {same.size} edges join items of {kind}; the precision-recall curve needs "
            "both same-identity and different-identity edges."
        )


# --------------------------------------------------------------------------- figures


def _size_distribution(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster sizes present and the number of clusters of each."""
    sizes = np.unique(labels, return_counts=True)[1]
    return np.unique(sizes, return_counts=True)


def plot_cluster_sizes(
    labels_true: Any, labels_pred: Any = None, *, ax: Optional[Axes] = None
) -> Axes:
    """Log-log distribution of cluster sizes: how many clusters have each size.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,)
        Ground-truth identities (any comparable ids).
    labels_pred : array-like or torch.Tensor of shape (N,), optional
        Predicted clusters, drawn as a second (dashed) line.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        One line per labelling: x the cluster sizes present, y the number of
        clusters of that size.

    Raises
    ------
    ValueError
        On empty labels, NaN, or labellings of different lengths.

    Examples
    --------
    >>> ax = plot_cluster_sizes([0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2])
    >>> [(line.get_label(), [int(v) for v in line.get_xdata()], [int(v) for v in line.get_ydata()])
    ...  for line in ax.get_lines()]
    [('true (3 identities)', [1, 2, 3], [1, 1, 1]), ('predicted (3 clusters)', [2], [3])]
    """
    t = _labels(labels_true, "labels_true")
    p = None if labels_pred is None else _labels(labels_pred, "labels_pred")
    if p is not None:
        check_same_length(labels_true=t, labels_pred=p)
    ax = _axes(ax)
    lines = [(t, "o-", "true", "identities"), (p, "s--", "predicted", "clusters")]
    for y, style, word, what in lines:
        if y is not None:
            size, count = _size_distribution(y)
            ax.plot(size, count, style, label=f"{word} ({count.sum()} {what})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cluster size (items)")
    ax.set_ylabel("number of clusters")
    ax.legend()
    return ax


def plot_score_histogram(
    scores: Any, same: Any, *, bins: Union[int, Sequence[float]] = 50, ax: Optional[Axes] = None
) -> Axes:
    """Histograms of edge link scores, same-identity against different-identity pairs.

    Parameters
    ----------
    scores : array-like or torch.Tensor of shape (E,)
        Finite edge scores (link probabilities, cosines...).
    same : array-like or torch.Tensor of bool, shape (E,)
        Whether each edge joins two items of one identity
        (:func:`~linkage_gcn.metrics.edge_labels`).
    bins : int or sequence of float, default=50
        As :func:`numpy.histogram_bin_edges`: both histograms share the edges
        computed from all the scores.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        One bar histogram (a :class:`~matplotlib.container.BarContainer` in
        ``ax.containers``) per class present, same identity first; counts on a
        log scale since different-identity edges usually dominate.

    Raises
    ------
    ValueError
        On no edges, NaN or infinite scores, lengths that differ, ``same``
        holding other values than booleans (or 0 and 1), or bad ``bins``.
    TypeError
        When ``ax`` is not a matplotlib Axes.

    Examples
    --------
    >>> ax = plot_score_histogram([0.9, 0.8, 0.2, 0.1, 0.3], [1, 1, 0, 0, 0], bins=2)
    >>> [[int(bar.get_height()) for bar in c] for c in ax.containers]
    [[0, 2], [3, 0]]
    """
    s, y = _edges(scores, same)
    if isinstance(bins, (int, np.integer, bool, np.bool_)):
        bins = check_int(bins, "bins", minimum=1)
    try:
        edges = np.histogram_bin_edges(s, bins=bins)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"bins must be a number of bins >= 1, increasing bin edges or a numpy bin rule "
            f"such as 'auto', got {bins!r} ({exc})."
        ) from None
    ax = _axes(ax)
    for mask, name, color in ((y, "same identity", "C0"), (~y, "different identities", "C1")):
        if mask.any():
            label = f"{name} ({int(mask.sum())} edges)"
            ax.hist(s[mask], bins=edges, alpha=0.55, color=color, label=label, log=True)
    ax.set_xlabel("link score")
    ax.set_ylabel("edges (log scale)")
    ax.legend()
    return ax


def plot_precision_recall(scores: Any, same: Any, *, ax: Optional[Axes] = None) -> Axes:
    """Edge precision-recall curve, its average precision in the legend.

    Parameters
    ----------
    scores : array-like or torch.Tensor of shape (E,)
        Finite edge scores, higher meaning "same identity".
    same : array-like or torch.Tensor of bool, shape (E,)
        Whether each edge joins two items of one identity
        (:func:`~linkage_gcn.metrics.edge_labels`).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The curve of :func:`sklearn.metrics.precision_recall_curve` (x recall,
        y precision) labelled with the AP of
        :func:`sklearn.metrics.average_precision_score` (the value of
        :func:`~linkage_gcn.metrics.edge_ap`), and a dotted chance line at the
        share of same-identity edges.

    Raises
    ------
    ValueError
        As :func:`plot_score_histogram`, and when all edges have one label.

    Examples
    --------
    >>> ax = plot_precision_recall([0.9, 0.2, 0.4], [True, False, False])
    >>> [line.get_label() for line in ax.get_lines()]
    ['AP 1.0000', 'chance 0.3333']
    """
    s, y = _edges(scores, same)
    _both_classes(y)
    precision, recall, _ = precision_recall_curve(y, s)
    ap = float(average_precision_score(y, s))
    ax = _axes(ax)
    ax.plot(recall, precision, drawstyle="steps-post", label=f"AP {ap:.4f}")
    ax.axhline(y.mean(), linestyle=":", color="gray", label=f"chance {y.mean():.4f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("recall (same-identity edges)")
    ax.set_ylabel("precision")
    ax.legend(loc="lower left")
    return ax


#: The bars of :func:`plot_bcubed_by_size`: record key -> legend label.
_BCUBED_BARS = {"precision": "precision", "recall": "recall", "fscore": "F"}


def _identities(n: int) -> str:
    """``"1 id"``, ``"5 ids"``."""
    return f"{n} id" if n == 1 else f"{n} ids"


def plot_bcubed_by_size(
    labels_true: Any,
    labels_pred: Any,
    *,
    bins: Sequence[int] = DEFAULT_SIZE_BINS,
    ax: Optional[Axes] = None,
) -> Axes:
    """B-Cubed precision, recall and F by ground-truth identity size.

    Parameters
    ----------
    labels_true : array-like or torch.Tensor of shape (N,)
        Ground-truth identities.
    labels_pred : array-like or torch.Tensor of shape (N,)
        Predicted clusters.
    bins : sequence of int, default=(1, 2, 4, 11, 51)
        Identity-size lower bounds, as
        :func:`~linkage_gcn.metrics.bcubed_by_identity_size`.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        Three bar groups (``ax.containers``: precision, recall, F), one bar
        per non-empty size bin of
        :func:`~linkage_gcn.metrics.bcubed_by_identity_size`, ticks naming
        the bin and its number of identities.

    Raises
    ------
    ValueError
        On empty labels, NaN, labellings of different lengths or bad bins.

    Examples
    --------
    >>> ax = plot_bcubed_by_size([0, 1, 1, 2, 2, 2], [0, 1, 2, 3, 3, 3], bins=(1, 2, 3))
    >>> [round(float(bar.get_height()), 3) for bar in ax.containers[1]]  # recall
    [1.0, 0.5, 1.0]
    """
    rows = bcubed_by_identity_size(labels_true, labels_pred, bins=bins)
    ax = _axes(ax)
    x = np.arange(len(rows))
    width = 0.8 / len(_BCUBED_BARS)
    for k, (key, label) in enumerate(_BCUBED_BARS.items()):
        heights = [r[key] for r in rows]
        ax.bar(x + (k - 1) * width, heights, width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['sizes']}\n{_identities(r['n_identities'])}" for r in rows])
    ax.set_ylim(0.0, 1.2)
    ax.set_xlabel("identity size (items)")
    ax.set_ylabel("B-Cubed")
    ax.legend(loc="upper center", ncol=len(_BCUBED_BARS))
    return ax


def plot_gamma_sweep(
    records: Sequence[Mapping[str, Any]], *, metric: str = "edge_ap", ax: Optional[Axes] = None
) -> Axes:
    """Figure 3 of the RIWS paper: ``metric`` against the pool expansion gamma.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`~linkage_gcn.experiments.gamma_sweep` (keys
        ``method``, ``sampler``, ``gamma`` and ``metric``).
    metric : str, default="edge_ap"
        The record key drawn.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        One line per swept method (points at the gammas it was run at; RS
        dashed, RIWS solid), and the last top-k record as a horizontal
        dash-dot baseline when it is defined; titled with the subsets.

    Raises
    ------
    ValueError
        On no records, records that are not dicts or lack ``metric``,
        ``method``, ``gamma``; an undefined (NaN) value leaves a gap in its
        line.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.9},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 1.5, "edge_ap": 0.92}]
    >>> [(line.get_label(), [float(x) for x in line.get_xdata()])
    ...  for line in plot_gamma_sweep(recs).lines]
    [('RIWS', [1.5, 2.0]), ('L-GCN (baseline)', [0.0, 1.0])]
    """
    from .experiments.tables import sweep_cells  # lazily: experiments imports this module

    rows, gammas, cells, baseline = sweep_cells(records, metric)
    ax = _axes(ax)
    sampler = {r["method"]: r.get("sampler") for r in records}
    for row in rows:
        xs = [g for g in gammas if (row, g) in cells]
        ys = [cells[(row, g)] for g in xs]
        ax.plot(xs, ys, LINE_STYLES.get(sampler[row], "-"), marker="o", label=str(row))
    if baseline is not None and math.isfinite(baseline):
        ax.axhline(baseline, linestyle="-.", color="gray", label="L-GCN (baseline)")
    ax.set_xlabel("gamma (1-hop pool expansion)")
    ax.set_ylabel(_metric_label(metric))
    ax.set_title(" ".join(sorted({str(r.get("subset", "")) for r in records} - {""})))
    ax.grid(alpha=0.3)
    if ax.get_lines():
        ax.legend()
    return ax


def _history_column(history: Sequence[Mapping[str, Any]], key: str) -> Optional[np.ndarray]:
    """``key`` of every epoch as float64, ``None`` when some epoch lacks it."""
    if not all(key in h for h in history):
        return None
    try:
        values = np.array([h[key] for h in history], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"history holds a {key!r} that is not a number.") from None
    if not np.isfinite(values).all():
        raise ValueError(f"history holds a NaN or infinite {key!r}.")
    return values


def _check_history(history: Any) -> list[Mapping[str, Any]]:
    """A non-empty list of per-epoch dicts, each with a ``loss``."""
    if isinstance(history, Mapping) or not isinstance(history, Sequence) or not history:
        raise ValueError(
            "history must be a non-empty list of per-epoch dicts (LinkageClusterer.history_); "
            f"got {type(history).__name__}{' (empty)' if not history else ''}."
        )
    if not all(isinstance(h, Mapping) and "loss" in h for h in history):
        raise ValueError("every entry of history must be a dict with a 'loss'.")
    return list(history)


def plot_history(history: Sequence[Mapping[str, Any]], *, ax: Optional[Axes] = None) -> Axes:
    """Training curves: the loss per epoch, and link precision and recall on a twin axis.

    Parameters
    ----------
    history : list of dict
        ``LinkageClusterer.history_`` (or :func:`~linkage_gcn.training.train_linkage_gcn`'s
        records as dicts): per epoch ``loss`` and, when every epoch has them,
        ``precision`` and ``recall`` of the training links; ``epoch`` (from 0)
        when present, else the position.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The loss axes (x the epoch from 1); precision and recall are on its
        twin (``ax.figure.axes[-1]``), and the legend lists all three.

    Raises
    ------
    ValueError
        On an empty history, an entry without ``loss``, or NaN or non-numeric
        values.

    Examples
    --------
    >>> ax = plot_history([{"epoch": 0, "loss": 0.6, "precision": 0.5, "recall": 0.7},
    ...                    {"epoch": 1, "loss": 0.4, "precision": 0.6, "recall": 0.8}])
    >>> ax.lines[0].get_xdata().tolist(), ax.lines[0].get_ydata().tolist()
    ([1.0, 2.0], [0.6, 0.4])
    """
    history = _check_history(history)
    loss = _history_column(history, "loss")
    epochs = _history_column(history, "epoch")
    x = (np.arange(len(history)) if epochs is None else epochs) + 1.0
    curves = {k: _history_column(history, k) for k in ("precision", "recall")}
    ax = _axes(ax)
    handles = ax.plot(x, loss, "o-", color="C0", label="loss")
    if all(v is not None for v in curves.values()):
        twin = ax.twinx()
        for (key, values), (style, color) in zip(curves.items(), (("s--", "C1"), ("^--", "C2"))):
            handles += twin.plot(x, values, style, color=color, label=f"link {key}")
        twin.set_ylim(0.0, 1.05)
        twin.set_ylabel("link precision / recall")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss")
    ax.legend(handles=handles, loc="best")
    return ax


# --------------------------------------------------------------------------- files


def report_paths(directory: Union[str, Path], *, history: bool = True) -> list[Path]:
    """The files :func:`plot_report` writes in ``directory``.

    Examples
    --------
    >>> [p.name for p in report_paths("out", history=False)]
    ['cluster_sizes.png', 'score_histogram.png', 'precision_recall.png', 'bcubed_by_size.png']
    """
    names = [n for k, n in REPORT_FIGURES.items() if history or k != "history"]
    return [Path(directory) / n for n in names]


def _check_paths(directory: Path, paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse a directory that is a file, and existing figures unless ``overwrite``."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is not a directory; give a directory for the figures.")
    for p in paths:
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a directory; remove it or use another directory.")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it.")


def _save(fig: Figure, path: Path, overwrite: bool) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)


def write_figures(
    directory: Union[str, Path],
    labels_true: Any,
    labels_pred: Any,
    edge_index: Any,
    scores: Any,
    *,
    history: Optional[Sequence[Mapping[str, Any]]] = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write the figures of :func:`plot_report` from a clustering already computed.

    Parameters
    ----------
    directory : str or Path
        Where the PNG files go (:data:`REPORT_FIGURES`); created if missing.
    labels_true, labels_pred : array-like of shape (N,)
        Ground-truth identities and predicted clusters.
    edge_index : array-like of int, shape (2, E)
        The scored edges (:meth:`~linkage_gcn.LinkageClusterer.predict_edges`).
    scores : array-like of shape (E,)
        Their link scores.
    history : list of dict, optional
        A training history; ``history.png`` is drawn when it is non-empty.
    overwrite : bool, default=False
        Replace existing figures; otherwise any existing one is refused before
        anything is drawn.

    Returns
    -------
    list of pathlib.Path
        The files written, in :data:`REPORT_FIGURES` order.

    Raises
    ------
    ValueError
        Before anything is drawn: on labellings of different lengths, an
        ``edge_index`` that is not (2, E) item ids in ``[0, N)``, ``scores``
        that are not one finite score per edge, edges of one class only, or
        a bad ``history``.
    FileExistsError
        When a figure exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_figures(tmp, [0, 0, 1], [0, 0, 1], [[0, 0], [1, 2]], [0.9, 0.1])
    ...     [p.name for p in paths]
    ['cluster_sizes.png', 'score_histogram.png', 'precision_recall.png', 'bcubed_by_size.png']
    """
    d = Path(directory)
    paths = report_paths(d, history=bool(history))
    _check_paths(d, paths, overwrite)
    t = _labels(labels_true, "labels_true")
    p = _labels(labels_pred, "labels_pred", n_samples=t.shape[0])
    same = edge_labels(t, edge_index)
    s = _scores(scores, n_edges=same.shape[0])
    _both_classes(same)
    if history:
        history = _check_history(history)
    require_matplotlib()
    d.mkdir(parents=True, exist_ok=True)
    draw = [
        lambda ax: plot_cluster_sizes(t, p, ax=ax),
        lambda ax: plot_score_histogram(s, same, ax=ax),
        lambda ax: plot_precision_recall(s, same, ax=ax),
        lambda ax: plot_bcubed_by_size(t, p, ax=ax),
        lambda ax: plot_history(history, ax=ax),
    ]
    return [_save(fn(_axes(None)).figure, path, overwrite) for fn, path in zip(draw, paths)]


def plot_report(
    clusterer: Any,
    X: Any,
    labels_true: Any,
    directory: Union[str, Path],
    *,
    overwrite: bool = False,
    knn_index: Any = None,
) -> list[Path]:
    """Cluster labelled test data with a fitted clusterer and write its main figures.

    ``X`` is scored with :meth:`~linkage_gcn.LinkageClusterer.predict_edges`
    and clustered with :meth:`~linkage_gcn.LinkageClusterer.cluster_edges`
    (as :meth:`~linkage_gcn.LinkageClusterer.predict`), then
    :func:`write_figures` draws the cluster sizes, the score histogram, the
    precision-recall curve, B-Cubed by identity size and, when the clusterer
    has one, its training history.

    Parameters
    ----------
    clusterer : LinkageClusterer
        A fitted clusterer.
    X : array-like of shape (n_samples, n_features)
        Test embeddings.
    labels_true : array-like of shape (n_samples,)
        Their identities.
    directory : str or Path
        Where the PNG files go (:data:`REPORT_FIGURES`); created if missing.
    overwrite : bool, default=False
        Replace existing figures; otherwise an existing one is refused before
        anything is computed.
    knn_index : array-like of shape (n_samples, K), optional
        A precomputed kNN table of ``X`` (self excluded).

    Returns
    -------
    list of pathlib.Path
        The files written.

    Examples
    --------
    >>> import tempfile
    >>> from linkage_gcn import LinkageClusterer
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(40, max_size=10, random_state=0)
    >>> est = LinkageClusterer(k_at_hop=(4, 2), active_connection=2, hidden_channels=(16, 16),
    ...                        epochs=1, random_state=0, verbose=False).fit(X, y)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     [p.name for p in plot_report(est, X, y, tmp)][-1]
    'history.png'
    """
    d = Path(directory)
    history = list(getattr(clusterer, "history_", None) or [])
    _check_paths(d, report_paths(d, history=bool(history)), overwrite)
    check_is_fitted(clusterer)
    n = check_features(X, name="X", min_samples=2)[0].shape[0]
    y = _labels(labels_true, "labels_true", n_samples=n)
    require_matplotlib()
    edge_index, scores = clusterer.predict_edges(X, knn_index=knn_index)
    pred = clusterer.cluster_edges(edge_index, scores, len(X))
    return write_figures(d, y, pred, edge_index, scores, history=history, overwrite=overwrite)


def _metric_label(metric: str) -> str:
    """An axis label for a record key: ``"edge_ap"`` -> ``"edge AP"``."""
    words = metric.split("_")
    short = {"ap": "AP", "auc": "AUC", "nmi": "NMI", "f": "F"}
    return " ".join(short.get(w, w) for w in words)
