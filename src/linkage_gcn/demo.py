"""Side-by-side comparison of a :class:`LinkageClusterer` with the kNN-threshold baseline.

Used by ``linkage-gcn demo`` (built-in synthetic data), the benchmark scripts
and the notebooks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._validation import check_features, normalize_rows
from .baselines import KNNThresholdClusterer
from .datasets import make_identities
from .estimator import LinkageClusterer
from .metrics import bcubed_by_identity_size, edge_ap, evaluate
from .model_selection import split_identities

__all__ = ["QUICK_PARAMS", "compare_with_baseline", "format_comparison", "run_demo"]

#: Estimator parameters of ``linkage-gcn demo --quick``: a narrow model on small
#: subgraphs, a smoke test rather than a model (its scores mean little).
QUICK_PARAMS: dict[str, Any] = {"k_at_hop": (10, 5), "hidden_channels": (64, 64)}


def compare_with_baseline(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    clusterer: Optional[LinkageClusterer] = None,
    *,
    baseline_k: int = 10,
) -> dict[str, Any]:
    """Fit ``clusterer`` and the baseline on train, cluster test, and measure both.

    Thresholds are chosen on the training identities only; test labels are
    used for scoring alone.

    Returns
    -------
    dict
        ``{"model": ..., "baseline": ...}``, each with ``metrics`` (from
        :func:`~linkage_gcn.metrics.evaluate`), ``by_size`` (from
        :func:`~linkage_gcn.metrics.bcubed_by_identity_size`), ``fit_seconds``,
        ``predict_seconds``, ``threshold``; the model's entry also holds its
        estimator, and both hold ``edge_ap`` on the model's scored pairs
        (the baseline's scores there being the cosine similarity).
    """
    clusterer = LinkageClusterer(random_state=0) if clusterer is None else clusterer
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    clusterer.fit(X_train, y_train)
    t1 = time.perf_counter()
    edge_index, scores = clusterer.predict_edges(X_test)
    pred = clusterer.cluster_edges(edge_index, scores, len(X_test))
    t2 = time.perf_counter()
    out["model"] = _entry(y_test, pred, t1 - t0, t2 - t1, clusterer.threshold_)
    out["model"]["edge_ap"] = edge_ap(y_test, edge_index, scores)
    out["model"]["estimator"] = clusterer
    base = KNNThresholdClusterer(k=baseline_k)
    t0 = time.perf_counter()
    base.fit(X_train, y_train)
    t1 = time.perf_counter()
    base_pred = base.predict(X_test)
    t2 = time.perf_counter()
    out["baseline"] = _entry(y_test, base_pred, t1 - t0, t2 - t1, base.threshold_)
    cos = _cosine(X_test, edge_index)
    out["baseline"]["edge_ap"] = edge_ap(y_test, edge_index, cos)
    out["n_edges"] = int(edge_index.shape[1])
    return out


def _cosine(X: np.ndarray, edge_index: np.ndarray) -> np.ndarray:
    """Cosine similarity of the pairs ``edge_index`` of rows of ``X``."""
    x, _ = check_features(X, name="X_test")
    xn = normalize_rows(
        x, "X_test has {count} all-zero row(s) (first: row {row}); their cosine is undefined."
    ).numpy()
    return (xn[edge_index[0]] * xn[edge_index[1]]).sum(1)


def _entry(
    y: np.ndarray, pred: np.ndarray, fit_s: float, predict_s: float, threshold: float
) -> dict[str, Any]:
    """One column of the comparison: metrics, metrics by identity size, timings."""
    return {
        "metrics": evaluate(y, pred),
        "by_size": bcubed_by_identity_size(y, pred),
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "threshold": threshold,
    }


def format_comparison(
    result: dict[str, Any], *, names: tuple[str, str] = ("LinkageClusterer", "kNN threshold")
) -> str:
    """A plain-text table of :func:`compare_with_baseline`'s result.

    Parameters
    ----------
    result : dict
        What :func:`compare_with_baseline` returned.
    names : tuple of str
        Column titles of the model and the baseline.

    Returns
    -------
    str
        The metrics side by side, then B-Cubed by identity size.
    """
    model, base = result["model"], result["baseline"]
    rows = [
        ("edge AP (same pairs)", "edge_ap", None),
        ("pairwise F", "metrics", "pairwise_fscore"),
        ("B-Cubed precision", "metrics", "bcubed_precision"),
        ("B-Cubed recall", "metrics", "bcubed_recall"),
        ("B-Cubed F", "metrics", "bcubed_fscore"),
        ("NMI", "metrics", "nmi"),
        ("clusters", "metrics", "n_clusters"),
        ("threshold (chosen on train)", "threshold", None),
        ("fit seconds", "fit_seconds", None),
        ("predict seconds", "predict_seconds", None),
    ]
    width = max(len(r[0]) for r in rows) + 2
    lines = [f"{'':<{width}}{names[0]:>18}{names[1]:>18}"]
    for label, key, sub in rows:
        a, b = (e[key] if sub is None else e[key][sub] for e in (model, base))
        lines.append(f"{label:<{width}}{_fmt(a):>18}{_fmt(b):>18}")
    lines.append("")
    lines.append("B-Cubed by identity size (precision / recall / F):")
    lines.append(f"{'sizes':<8}{'items':>7}{names[0]:>26}{names[1]:>26}")
    base_bins = {b["sizes"]: b for b in base["by_size"]}
    for m in model["by_size"]:
        b = base_bins[m["sizes"]]
        lines.append(f"{m['sizes']:<8}{m['n_items']:>7}{_prf(m):>26}{_prf(b):>26}")
    return "\n".join(lines)


def _prf(b: dict[str, Any]) -> str:
    """``"P / R / F"`` of one size bin."""
    return f"{b['precision']:.3f} / {b['recall']:.3f} / {b['fscore']:.3f}"


def _fmt(v: Any) -> str:
    """An integer as is, anything else with four decimals."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.4f}"


def run_demo(
    n_identities: int = 1200,
    *,
    epochs: int = 4,
    seed: int = 0,
    device: Any = "auto",
    verbose: Optional[bool] = None,
    plot: Union[str, Path, None] = None,
    overwrite: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """Train on synthetic long-tailed identities and cluster held-out ones; print the comparison.

    Parameters
    ----------
    n_identities : int, default=1200
        Identities of the synthetic data (:func:`~linkage_gcn.datasets.make_identities`,
        up to 200 samples each); half of them train, the other half are clustered.
    epochs : int, default=4
        Training epochs.
    seed : int, default=0
        Seed of the data, the split and the model.
    device : str or torch.device, default="auto"
        Where the model runs.
    verbose : bool, optional
        Progress bars (``None``: on a terminal).
    plot : str or Path, optional
        A directory where to write the model's figures on the held-out
        identities (:func:`~linkage_gcn.plot.plot_report`; needs matplotlib).
        Existing figures are refused before anything is computed.
    overwrite : bool, default=False
        Replace existing figures in ``plot``.
    **params
        Further :class:`LinkageClusterer` parameters, e.g. :data:`QUICK_PARAMS`.

    Returns
    -------
    dict
        The result of :func:`compare_with_baseline`, with ``"figures"`` (the
        files written) when ``plot`` is given.
    """
    if plot is not None:
        from .plot import _check_paths, report_paths, require_matplotlib

        _check_paths(Path(plot), report_paths(plot), overwrite)
        require_matplotlib()
    X, y = make_identities(n_identities, max_size=200, random_state=seed)
    train, test = split_identities(y, test_size=0.5, random_state=seed)
    print(
        f"built-in data: {len(X)} embeddings of {n_identities} synthetic identities "
        f"(dim {X.shape[1]}); training on {len(train)} of them, clustering the {len(test)} "
        "of identities never seen in training"
    )
    clusterer = LinkageClusterer(
        epochs=epochs, device=device, random_state=seed, verbose=verbose, **params
    )
    result = compare_with_baseline(X[train], y[train], X[test], y[test], clusterer)
    print(format_comparison(result))
    if plot is not None:
        from .plot import plot_report

        result["figures"] = plot_report(clusterer, X[test], y[test], plot, overwrite=overwrite)
        print(f"figures -> {plot}")
    return result
