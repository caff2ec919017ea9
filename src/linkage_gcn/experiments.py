"""The experiments of the RIWS paper on imbalanced training subsets, as functions.

Yang et al., *GCN-Based Linkage Prediction for Face Clustering on Imbalanced
Datasets: An Empirical Study* compare, on (H m, S n) imbalanced training
subsets (the ``m`` largest identities kept whole, ``n`` samples of every
other one, :func:`~linkage_gcn.datasets.make_imbalanced_subset`), nine ways of
training L-GCN: its plain cross-entropy, two re-weighting losses, two
re-sampling strategies and their four combinations (Table 1: edge AP; Table 2:
edge AP and B-Cubed F), and the pool expansion ``gamma`` of plain
re-sampling and RIWS (Fig. 3). This module runs them:

- :data:`METHODS`: the nine methods of Table 1, in the paper's order;
  :data:`EXTRA_METHODS`: ``CBg+RIWS``, an extension of this package (class
  balance inside each subgraph), *not* a method of the paper;
- :func:`run_imbalance_grid`: every method on every subset, evaluated on an
  identity-disjoint held-out set; :func:`gamma_sweep`: Fig. 3;
- :func:`format_table`, :func:`format_markdown_table`, :func:`format_sweep`:
  the tables; :func:`plot_gamma_sweep`: the figure (needs matplotlib, the
  ``plot`` extra);
- :func:`default_grid` and :func:`load_data`: the data and settings of
  ``linkage-gcn imbalance``.

Every method shares the same base settings: the paper's L-GCN
(``pivot_similarity=False``, learning rate x0.1 after each epoch), all
trained with the same seed on the same subset, and scored on the same test
set: edge AP of the pooled link scores of
:meth:`~linkage_gcn.LinkageClusterer.predict_edges` (the merge stage left out,
as in the paper) and B-Cubed F of the clusters cut at the link threshold
calibrated on the *training* subset (``threshold="auto"``).

Default grid
------------
On the LFW dlib embeddings (``../shared/data/lfw-dlib``; train 6,615 faces of
2,998 people, the largest with 144 photos, 2,122 people with one; test 6,618
faces of 2,751 people), the paper's H 200-2000 of MS-Celeb-1M part0 scale to
``m`` = 10 (people with at least 42 photos, 675 faces) and 40 (at least 19,
1,449 faces), with the paper's smallest ``n`` = 3:

========== ======= ========== ========================================
subset     samples identities identities with a same-identity pair
========== ======= ========== ========================================
(H10, S3)  4,983   2,998      876
(H40, S3)  5,667   2,998      876
========== ======= ========== ========================================

S1 is left out of the defaults: it keeps no pair of any minority identity,
so only the ``m`` head identities give positive links and the tail becomes
pure distractors -- a different question from the paper's (S2 keeps one
pair per minority identity, S3 three). ``full=True`` runs ``m`` in {10, 20,
40, 80} x ``n`` in {2, 3} (the 4 x 2 shape of Table 1).

Base settings of the default grid: ``k_at_hop=(20, 5)``,
``active_connection=5`` (the reference test settings), ``hidden_channels=(256,
256, 128, 128)`` (half the reference width), 3 epochs (with the x0.1 decay a
4th epoch at lr 1e-5 changes little), batch 16, SGD lr 0.01. On the 2-core
CPU of the development machine, a run takes about 35 s to fit and 7 s to
score the 6,618 test faces, and the default command (2 subsets x 10 methods,
plus a sweep of 6 gammas x 2 samplers and the baseline on (H10, S3), 3 of
whose 13 runs are reused from the grid) took 18.5 minutes. On a CPU shared
with other jobs, ``--threads 1`` avoids torch threads waiting on each other.

``full=True`` uses the reference width (512, 512, 256, 256) and 4 epochs:
23-35 s an epoch when idle, some 2-3 minutes a run, 3-4 hours for its
8 x 10 + 10 runs.

Without the LFW folder the data are synthetic
(:func:`~linkage_gcn.datasets.make_identities` with 4,000 identities, largest
300, dimension 128, split in two halves of identities), with the same grid.
"""

from __future__ import annotations

import io as _io
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

import numpy as np

from ._files import atomic_write
from ._validation import check_in_options, check_int, check_real
from .datasets import (
    find_shared_lfw,
    load_lfw_dlib,
    make_identities,
    make_imbalanced_subset,
    split_identities,
)
from .metrics import edge_ap, edge_labels, evaluate

__all__ = [
    "DEFAULT_BASE_PARAMS",
    "EXTRA_METHODS",
    "FULL_BASE_PARAMS",
    "METHODS",
    "PAPER_SETTINGS",
    "QUICK_BASE_PARAMS",
    "default_grid",
    "describe_subsets",
    "format_markdown_table",
    "format_sweep",
    "format_table",
    "gamma_sweep",
    "load_data",
    "load_results",
    "plot_gamma_sweep",
    "require_matplotlib",
    "resolve_methods",
    "run_imbalance_grid",
    "save_results",
    "subset_name",
]

#: The nine methods of Table 1 (name -> LinkageClusterer parameters), in the
#: paper's order. ``CB``: class balance over the batch (the paper's code);
#: ``FL``: focal loss, alpha 0.25, gamma 2; ``RS``: half positives, half
#: negatives drawn from the ``floor(1.2 k1)`` nearest (gamma 1.2, the paper's
#: choice for RS); ``RIWS``: eq. 4 weights over the ``2 k1`` nearest (gamma 2.0).
METHODS: dict[str, dict[str, Any]] = {
    "L-GCN": {"sampler": "topk", "gamma": 1.0, "loss": "ce"},
    "CB": {"sampler": "topk", "gamma": 1.0, "loss": "cb"},
    "FL": {"sampler": "topk", "gamma": 1.0, "loss": "focal"},
    "RS": {"sampler": "rs", "gamma": 1.2, "loss": "ce"},
    "RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "ce"},
    "CB+RS": {"sampler": "rs", "gamma": 1.2, "loss": "cb"},
    "FL+RS": {"sampler": "rs", "gamma": 1.2, "loss": "focal"},
    "CB+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb"},
    "FL+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "focal"},
}

#: Methods of this package, not of the paper, run after :data:`METHODS` by
#: default. ``CBg+RIWS``: class balance inside each subgraph (every pivot
#: weighs the same) with RIWS, gamma 2.0.
EXTRA_METHODS: dict[str, dict[str, Any]] = {
    "CBg+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb-graph"},
}

#: What makes every method the paper's L-GCN variant: pivot-relative features
#: only, learning rate x0.1 after each epoch.
PAPER_SETTINGS: dict[str, Any] = {"pivot_similarity": False, "lr_decay": 0.1}

#: Base settings of the default grid (light: ~40 s a fit on 5K faces, 2 CPU cores).
DEFAULT_BASE_PARAMS: dict[str, Any] = {
    "k_at_hop": (20, 5),
    "active_connection": 5,
    "hidden_channels": (256, 256, 128, 128),
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.01,
    "threshold": "auto",
}

#: Base settings of ``default_grid(full=True)``: the reference network width, 4 epochs.
FULL_BASE_PARAMS: dict[str, Any] = {
    **DEFAULT_BASE_PARAMS,
    "hidden_channels": (512, 512, 256, 256),
    "epochs": 4,
}

#: A tiny model for smoke tests (``linkage-gcn imbalance --quick``).
QUICK_BASE_PARAMS: dict[str, Any] = {
    "k_at_hop": (4, 2),
    "active_connection": 2,
    "hidden_channels": (8,),
    "epochs": 1,
    "batch_size": 8,
    "lr": 0.01,
    "threshold": "auto",
}

#: Keys of ``base_params`` that belong to a method or to the run itself.
_RESERVED = ("sampler", "gamma", "loss", "random_state", "verbose")
#: Default pool expansions of the gamma sweep (Fig. 3).
DEFAULT_GAMMAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0)
_SYNTHETIC = {"n_identities": 4000, "max_size": 300, "dim": 128}
_SYNTHETIC_QUICK = {"n_identities": 60, "max_size": 20, "dim": 16}

Record = dict[str, Any]
Callback = Optional[Callable[[Record], None]]


# --------------------------------------------------------------------------- methods, subsets


def subset_name(majority_count: int, minority_size: int) -> str:
    """The paper's name of an imbalanced subset.

    Examples
    --------
    >>> subset_name(200, 3)
    '(H200, S3)'
    """
    return f"(H{int(majority_count)}, S{int(minority_size)})"


def _check_subset(subset: Any) -> tuple[int, int]:
    try:
        m, n = subset
    except (TypeError, ValueError):
        raise ValueError(
            f"a subset is a pair (majority_count, minority_size), got {subset!r}."
        ) from None
    return (
        check_int(m, "majority_count", minimum=0),
        check_int(n, "minority_size", minimum=1),
    )


def _check_subsets(subsets: Iterable[Any]) -> list[tuple[int, int]]:
    out = [_check_subset(s) for s in subsets]
    if not out:
        raise ValueError("subsets is empty; give at least one (majority_count, minority_size).")
    return out


def describe_subsets(
    y: Any, subsets: Iterable[Any], random_state: Optional[int] = 0
) -> list[dict[str, Any]]:
    """Sizes of the (H m, S n) subsets of a labelled set.

    Parameters
    ----------
    y : array-like of shape (N,)
        Identity labels of the training set.
    subsets : iterable of (int, int)
        ``(m, n)`` pairs.
    random_state : int or None
        Seed of :func:`~linkage_gcn.datasets.make_imbalanced_subset` (the
        sizes do not depend on it).

    Returns
    -------
    list of dict
        Per subset: ``subset`` (its name), ``n_samples``, ``n_identities``,
        ``n_majority_samples`` (in the ``m`` identities kept whole) and
        ``n_identities_with_pairs`` (identities with at least two samples,
        the only ones that give positive links).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
    >>> describe_subsets(y, [(1, 2)])[0]
    {'subset': '(H1, S2)', 'n_samples': 9, 'n_identities': 4, 'n_majority_samples': 4, \
'n_identities_with_pairs': 3}
    """
    y = np.asarray(y).reshape(-1)
    sizes = np.sort(np.unique(y, return_counts=True)[1])[::-1]
    out = []
    for m, n in _check_subsets(subsets):
        keep = make_imbalanced_subset(y, m, n, random_state=random_state)
        counts = np.unique(y[keep], return_counts=True)[1]
        out.append(
            {
                "subset": subset_name(m, n),
                "n_samples": int(keep.shape[0]),
                "n_identities": int(counts.shape[0]),
                "n_majority_samples": int(sizes[:m].sum()),
                "n_identities_with_pairs": int(np.sum(counts >= 2)),
            }
        )
    return out


def _all_methods() -> dict[str, dict[str, Any]]:
    return {**METHODS, **EXTRA_METHODS}


def resolve_methods(methods: Any = None) -> dict[str, dict[str, Any]]:
    """The parameters of methods given by name.

    Parameters
    ----------
    methods : None, str, list of str or mapping
        ``None``: all of :data:`METHODS` then :data:`EXTRA_METHODS`; names
        among them; or a mapping name -> parameters (used as is).

    Returns
    -------
    dict
        Name -> :class:`~linkage_gcn.LinkageClusterer` parameters (copies).

    Examples
    --------
    >>> resolve_methods(["RIWS"])
    {'RIWS': {'sampler': 'riws', 'gamma': 2.0, 'loss': 'ce'}}
    """
    known = _all_methods()
    if methods is None:
        return {k: dict(v) for k, v in known.items()}
    if isinstance(methods, Mapping):
        return {str(k): dict(v) for k, v in methods.items()}
    if isinstance(methods, str):
        methods = [methods]
    out = {}
    for name in methods:
        if name not in known:
            raise ValueError(f"unknown method {name!r}; choose among {', '.join(known)}.")
        out[name] = dict(known[name])
    if not out:
        raise ValueError("methods is empty; name at least one method.")
    return out


def _method_label(sampler: str, loss: str) -> str:
    """The name of the method with this sampler and loss, e.g. ``"RIWS"``."""
    for name, p in _all_methods().items():
        if p["sampler"] == sampler and p["loss"] == loss:
            return name
    return f"{sampler}/{loss}"


def _base_params(base_params: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    base = dict(DEFAULT_BASE_PARAMS if base_params is None else base_params)
    bad = sorted(set(base) & set(_RESERVED))
    if bad:
        raise ValueError(
            f"base_params must not set {', '.join(bad)}: the sampler, gamma and loss come "
            "from the method, the seed and verbosity from random_state and verbose."
        )
    return {**PAPER_SETTINGS, **base}


def _check_seed(random_state: Optional[int]) -> int:
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return check_int(random_state, "random_state", minimum=0)


# --------------------------------------------------------------------------- one run


def _cache_key(m: int, n: int, seed: int, params: Mapping[str, Any]) -> str:
    plain = _plain(dict(params))
    return json.dumps([m, n, seed, plain], sort_keys=True, default=repr)


def _safe_edge_ap(y: np.ndarray, edge_index: np.ndarray, scores: np.ndarray) -> float:
    """Edge AP, or NaN when the scored edges hold one class only (AP undefined)."""
    same = edge_labels(y, edge_index)
    if same.size == 0 or same.all() or not same.any():
        return math.nan
    return edge_ap(y, edge_index, scores)


def _fit_evaluate(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    params: Mapping[str, Any],
    seed: int,
    verbose: Optional[bool],
) -> Record:
    """Fit one LinkageClusterer, score the test set; the metrics of one run."""
    from .estimator import LinkageClusterer

    est = LinkageClusterer(**params, random_state=seed, verbose=verbose)
    t0 = time.perf_counter()
    est.fit(X_train, y_train)
    t1 = time.perf_counter()
    edge_index, scores = est.predict_edges(X_test)
    pred = est.cluster_edges(edge_index, scores, X_test.shape[0])
    t2 = time.perf_counter()
    m = evaluate(y_test, pred, remove_singletons=False)
    return {
        "edge_ap": _safe_edge_ap(y_test, edge_index, scores),
        "bcubed_fscore": m["bcubed_fscore"],
        "bcubed_precision": m["bcubed_precision"],
        "bcubed_recall": m["bcubed_recall"],
        "pairwise_fscore": m["pairwise_fscore"],
        "nmi": m["nmi"],
        "n_clusters": m["n_clusters"],
        "threshold": float(est.threshold_),
        "n_edges": int(edge_index.shape[1]),
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
    }


def _run(
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    subset: tuple[int, int],
    method: str,
    params: dict[str, Any],
    *,
    seed: int,
    from_paper: bool,
    verbose: Optional[bool],
    cache: Optional[dict[str, Record]],
) -> Record:
    """Fit ``params`` on the ``subset`` of the training set (or reuse a cached run)."""
    X_train, y_train, X_test, y_test = data
    m, n = subset
    key = _cache_key(m, n, seed, params)
    if cache is not None and key in cache:
        return {**cache[key], "method": method, "from_paper": from_paper, "reused": True}
    keep = make_imbalanced_subset(y_train, m, n, random_state=seed)
    record: Record = {
        "subset": subset_name(m, n),
        "majority_count": m,
        "minority_size": n,
        "method": method,
        "from_paper": from_paper,
        "sampler": params.get("sampler"),
        "gamma": float(params.get("gamma", 1.0)),
        "loss": params.get("loss"),
        "n_train": int(keep.shape[0]),
        "n_identities": int(np.unique(y_train[keep]).shape[0]),
        "n_test": int(X_test.shape[0]),
        "random_state": seed,
    }
    record.update(
        _fit_evaluate(X_train[keep], y_train[keep], X_test, y_test, params, seed, verbose)
    )
    record["params"] = _plain(dict(params))
    record["reused"] = False
    if cache is not None:
        cache[key] = record
    return record


def _report(record: Record, i: int, total: int) -> None:
    extra = " (reused)" if record.get("reused") else ""
    gamma = f" gamma={record['gamma']:g}" if record.get("sampler") in ("rs", "riws") else ""
    print(
        f"[{i}/{total}] {record['subset']} {record['method']}{gamma}: "
        f"edge AP {record['edge_ap']:.4f}  B-Cubed F {record['bcubed_fscore']:.4f}  "
        f"(n={record['n_train']}, fit {record['fit_seconds']:.1f}s, "
        f"predict {record['predict_seconds']:.1f}s){extra}",
        flush=True,
    )


def _as_data(X_train, y_train, X_test, y_test):
    X_train = np.asarray(X_train, dtype=np.float32)
    X_test = np.asarray(X_test, dtype=np.float32)
    y_train = np.asarray(y_train).reshape(-1)
    y_test = np.asarray(y_test).reshape(-1)
    if X_train.shape[0] != y_train.shape[0] or X_test.shape[0] != y_test.shape[0]:
        raise ValueError("X_train/y_train and X_test/y_test must have the same number of rows.")
    return X_train, y_train, X_test, y_test


# --------------------------------------------------------------------------- grid, sweep


def run_imbalance_grid(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    subsets: Iterable[Any] = ((10, 3), (40, 3)),
    methods: Any = None,
    base_params: Optional[Mapping[str, Any]] = None,
    random_state: Optional[int] = 0,
    verbose: Optional[bool] = None,
    callback: Callback = None,
    cache: Optional[dict[str, Record]] = None,
) -> list[Record]:
    """Train every method on every (H m, S n) subset; score each on the test set (Table 1/2).

    Parameters
    ----------
    X_train, y_train : array-like
        The labelled training set the subsets are drawn from.
    X_test, y_test : array-like
        The held-out set (identities disjoint from the training set), scored
        whole by every run.
    subsets : iterable of (int, int)
        ``(m, n)``: the ``m`` largest identities kept whole, ``n`` samples of
        each other one (:func:`~linkage_gcn.datasets.make_imbalanced_subset`).
    methods : None, list of str or mapping
        Names among :data:`METHODS` and :data:`EXTRA_METHODS` (``None``: all,
        the paper's nine first), or a mapping name -> parameters.
    base_params : mapping, optional
        :class:`~linkage_gcn.LinkageClusterer` parameters shared by every run
        (default :data:`DEFAULT_BASE_PARAMS`), on top of
        :data:`PAPER_SETTINGS`; must not set ``sampler``, ``gamma``, ``loss``,
        ``random_state`` or ``verbose``.
    random_state : int or None
        Seed of the subsets and of every fit (the same for all methods, so
        they differ by their method alone); ``None`` draws one.
    verbose : bool or None
        ``False``: silent. Otherwise one line per finished run; ``True`` also
        shows the estimator's progress bars (``None``: on a terminal).
    callback : callable, optional
        Called with each record as soon as it is finished (e.g. to save
        partial results).
    cache : dict, optional
        Finished runs by configuration; a run found there is not repeated
        (share one dict between this and :func:`gamma_sweep`).

    Returns
    -------
    list of dict
        One record per run: ``subset`` (e.g. ``"(H10, S3)"``),
        ``majority_count``, ``minority_size``, ``method``, ``from_paper``,
        ``sampler``, ``gamma``, ``loss``, ``n_train``, ``n_identities`` (of
        the subset), ``n_test``, ``random_state``, ``edge_ap`` (AP of the
        pooled test link scores against same-identity labels; NaN if
        undefined), ``bcubed_fscore``, ``bcubed_precision``,
        ``bcubed_recall``, ``pairwise_fscore``, ``nmi``, ``n_clusters`` (at
        the link ``threshold`` calibrated on the training subset),
        ``threshold``, ``n_edges``, ``fit_seconds``, ``predict_seconds``,
        ``params`` (the estimator's, JSON-ready) and ``reused``.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities, split_identities
    >>> X, y = make_identities(40, dim=8, max_size=12, random_state=0)
    >>> tr, te = split_identities(y, random_state=0)
    >>> recs = run_imbalance_grid(X[tr], y[tr], X[te], y[te], subsets=[(2, 2)],
    ...                           methods=["L-GCN", "RIWS"], base_params=QUICK_BASE_PARAMS,
    ...                           verbose=False)
    >>> [(r["subset"], r["method"]) for r in recs]
    [('(H2, S2)', 'L-GCN'), ('(H2, S2)', 'RIWS')]
    """
    data = _as_data(X_train, y_train, X_test, y_test)
    subsets = _check_subsets(subsets)
    chosen = resolve_methods(methods)
    base = _base_params(base_params)
    seed = _check_seed(random_state)
    total = len(subsets) * len(chosen)
    records = []
    for subset in subsets:
        for name, method_params in chosen.items():
            params = {**base, **method_params}
            record = _run(
                data, subset, name, params, seed=seed, from_paper=name in METHODS,
                verbose=verbose, cache=cache,
            )  # fmt: skip
            records.append(record)
            if verbose is not False:
                _report(record, len(records), total)
            if callback is not None:
                callback(record)
    return records


def gamma_sweep(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    subset: Any = (10, 3),
    gammas: Iterable[float] = DEFAULT_GAMMAS,
    samplers: Iterable[str] = ("rs", "riws"),
    loss: str = "ce",
    baseline: bool = True,
    base_params: Optional[Mapping[str, Any]] = None,
    random_state: Optional[int] = 0,
    verbose: Optional[bool] = None,
    callback: Callback = None,
    cache: Optional[dict[str, Record]] = None,
) -> list[Record]:
    """Edge AP against the pool expansion ``gamma`` of RS and RIWS (Fig. 3).

    Each sampler draws a pivot's ``k1`` 1-hop nodes from its
    ``floor(gamma * k1)`` nearest neighbours (the kNN table widens with
    ``gamma``); ``gamma = 1`` makes RIWS the top-k selection of L-GCN (its
    score there differs from the baseline's by the training randomness
    only), while RS at ``gamma = 1`` still balances the top ``k1``.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : array-like
        As :func:`run_imbalance_grid`.
    subset : (int, int)
        The (H m, S n) subset trained on.
    gammas : iterable of float
        Pool expansions, each >= 1.
    samplers : iterable of {"rs", "riws"}
        The re-sampling strategies swept.
    loss : str
        Loss of every run (``"ce"``: RS and RIWS alone, as Fig. 3).
    baseline : bool
        Also run L-GCN (top-k, cross-entropy), recorded with ``gamma = 1``
        and drawn as the baseline by :func:`plot_gamma_sweep`.
    base_params, random_state, verbose, callback, cache
        As :func:`run_imbalance_grid`.

    Returns
    -------
    list of dict
        Records as :func:`run_imbalance_grid`'s, the baseline first, then by
        sampler and gamma; ``method`` is ``"L-GCN"``, ``"RS"``, ``"RIWS"``
        (or the combination with ``loss``).
    """
    data = _as_data(X_train, y_train, X_test, y_test)
    subset = _check_subset(subset)
    gammas = [check_real(g, "gamma", minimum=1.0) for g in gammas]
    samplers = [check_in_options(s, ("rs", "riws"), "sampler") for s in samplers]
    if not gammas or not samplers:
        raise ValueError("gamma_sweep needs at least one gamma and one sampler.")
    base = _base_params(base_params)
    seed = _check_seed(random_state)
    runs = [("topk", 1.0)] if baseline else []
    runs += [(s, g) for s in samplers for g in gammas]
    records = []
    for sampler, gamma in runs:
        name = _method_label(sampler, "ce" if sampler == "topk" else loss)
        method_loss = "ce" if sampler == "topk" else loss
        params = {**base, "sampler": sampler, "gamma": gamma, "loss": method_loss}
        record = _run(
            data, subset, name, params, seed=seed, from_paper=name in METHODS,
            verbose=verbose, cache=cache,
        )  # fmt: skip
        records.append(record)
        if verbose is not False:
            _report(record, len(records), len(runs))
        if callback is not None:
            callback(record)
    return records


# --------------------------------------------------------------------------- tables


def _fmt(v: Optional[float], digits: int) -> str:
    if v is None:
        return "-"
    return "nan" if math.isnan(v) else f"{v:.{digits}f}"


def _best(values: Sequence[Optional[float]], lower: bool) -> Optional[float]:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return None
    return min(finite) if lower else max(finite)


def _pivot(
    records: Sequence[Record], row_key: str, col_key: str, metric: str
) -> tuple[list[str], list[Any], dict[tuple[str, Any], float]]:
    """Rows and columns in order of first appearance, and the cells (last record wins)."""
    rows: list[str] = []
    cols: list[Any] = []
    cells: dict[tuple[str, Any], float] = {}
    for r in records:
        if metric not in r:
            raise ValueError(f"records have no {metric!r}; choose a key such as 'edge_ap'.")
        row, col = r[row_key], r[col_key]
        if row not in rows:
            rows.append(row)
        if col not in cols:
            cols.append(col)
        cells[(row, col)] = float(r[metric]) if r[metric] is not None else math.nan
    return rows, cols, cells


def _table_cells(
    records: Sequence[Record], metric: str, avg: bool
) -> tuple[list[str], list[str], list[list[Optional[float]]], list[Optional[float]]]:
    """Row labels, column labels, values (None = missing) and the best of each column."""
    if not records:
        raise ValueError("no records to tabulate.")
    rows, cols, cells = _pivot(records, "method", "subset", metric)
    values = [[cells.get((r, c)) for c in cols] for r in rows]
    labels = list(cols)
    if avg:
        for line in values:
            present = [v for v in line if v is not None]
            line.append(float(np.mean(present)) if present else None)
        labels.append("Avg")
    lower = metric.endswith("seconds")
    best = [_best([line[j] for line in values], lower) for j in range(len(labels))]
    extra = {r["method"] for r in records if r.get("from_paper") is False}
    row_labels = [f"{r} (ext)" if r in extra else r for r in rows]
    return row_labels, labels, values, best


_EXT_NOTE = "(ext): an extension of linkage-gcn, not a method of the paper."


def format_table(
    records: Sequence[Record], metric: str = "edge_ap", *, digits: int = 4, avg: bool = True
) -> str:
    """A plain-text table in the shape of the paper's Table 1: methods x subsets, plus Avg.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`run_imbalance_grid` (or loaded from its JSON).
    metric : str
        The record key shown (``"edge_ap"``, ``"bcubed_fscore"``, ``"nmi"``...).
    digits : int
        Decimals.
    avg : bool
        Add the ``Avg`` column: the mean of a row over its subsets.

    Returns
    -------
    str
        One line per method, one column per subset in order of first
        appearance; the best value of each column is marked with ``*``
        (lowest for ``*_seconds``), a missing run shows ``-``, and methods
        that are not from the paper are marked ``(ext)``.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "subset": "(H10, S3)", "edge_ap": 0.90},
    ...         {"method": "L-GCN", "subset": "(H40, S3)", "edge_ap": 0.94},
    ...         {"method": "RIWS", "subset": "(H10, S3)", "edge_ap": 0.93},
    ...         {"method": "RIWS", "subset": "(H40, S3)", "edge_ap": 0.93}]
    >>> print(format_table(recs, digits=3))
    Method  (H10, S3)  (H40, S3)      Avg
    L-GCN     0.900      0.940 *  0.920
    RIWS      0.930 *    0.930    0.930 *
    """
    row_labels, labels, values, best = _table_cells(records, metric, avg)
    texts = [
        [
            _fmt(v, digits) + (" *" if v is not None and v == best[j] else "  ")
            for j, v in enumerate(line)
        ]
        for line in values
    ]
    width0 = max(len("Method"), *(len(r) for r in row_labels))
    widths = [max(len(labels[j]), *(len(t[j]) for t in texts)) for j in range(len(labels))]
    lines = [["Method".ljust(width0), *(c.rjust(w) for c, w in zip(labels, widths))]]
    lines += [
        [label.ljust(width0), *(t.rjust(w) for t, w in zip(line, widths))]
        for label, line in zip(row_labels, texts)
    ]
    out = ["  ".join(line).rstrip() for line in lines]
    if any(r.endswith("(ext)") for r in row_labels):
        out.append(_EXT_NOTE)
    return "\n".join(out)


def format_markdown_table(
    records: Sequence[Record], metric: str = "edge_ap", *, digits: int = 4, avg: bool = True
) -> str:
    """The table of :func:`format_table` in Markdown, the best of each column in bold.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "subset": "(H10, S3)", "edge_ap": 0.9},
    ...         {"method": "RIWS", "subset": "(H10, S3)", "edge_ap": 0.95}]
    >>> print(format_markdown_table(recs, digits=2))
    | Method | (H10, S3) | Avg |
    |---|---:|---:|
    | L-GCN | 0.90 | 0.90 |
    | RIWS | **0.95** | **0.95** |
    """
    row_labels, labels, values, best = _table_cells(records, metric, avg)
    out = [
        "| " + " | ".join(["Method", *labels]) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for label, line in zip(row_labels, values):
        cells = [
            f"**{_fmt(v, digits)}**" if v is not None and v == best[j] else _fmt(v, digits)
            for j, v in enumerate(line)
        ]
        out.append("| " + " | ".join([label, *cells]) + " |")
    if any(r.endswith("(ext)") for r in row_labels):
        out.extend(["", _EXT_NOTE])
    return "\n".join(out)


def _sweep_cells(
    records: Sequence[Record], metric: str
) -> tuple[list[str], list[float], dict[tuple[str, float], float], Optional[float]]:
    if not records:
        raise ValueError("no records to tabulate.")
    base = [r for r in records if r.get("sampler") == "topk"]
    swept = [r for r in records if r.get("sampler") != "topk"]
    rows, cols, cells = _pivot(swept, "method", "gamma", metric) if swept else ([], [], {})
    baseline = float(base[-1][metric]) if base else None
    return rows, sorted(cols), cells, baseline


def format_sweep(
    records: Sequence[Record],
    metric: str = "edge_ap",
    *,
    digits: int = 4,
    markdown: bool = False,
) -> str:
    """The gamma sweep as a table: one row per sampler, one column per gamma.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.9},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 1.0, "edge_ap": 0.91},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93}]
    >>> print(format_sweep(recs, digits=2))
    gamma  1.0   2.0
    RIWS   0.91  0.93
    L-GCN baseline (top-k): 0.90
    """
    rows, cols, cells, baseline = _sweep_cells(records, metric)
    head = ["gamma", *(f"{g:g}" if g != int(g) else f"{g:.1f}" for g in cols)]
    body = [[r, *(_fmt(cells.get((r, g)), digits) for g in cols)] for r in rows]
    note = None if baseline is None else f"L-GCN baseline (top-k): {_fmt(baseline, digits)}"
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(cols)]
        out += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(out + (["", note] if note else []))
    widths = [max(len(line[j]) for line in [head, *body]) for j in range(len(head))]
    out = ["  ".join(t.ljust(w) for t, w in zip(line, widths)).rstrip() for line in [head, *body]]
    return "\n".join(out + ([note] if note else []))


# --------------------------------------------------------------------------- results files


def _plain(v: Any) -> Any:
    """JSON-ready: tuples -> lists, numpy scalars -> Python, NaN -> None."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def save_results(
    path: Union[str, Path], results: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Write experiment results (records and settings) as JSON, atomically.

    Tuples become lists and NaN becomes ``null``; an existing file is
    replaced only with ``overwrite=True``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> _ = save_results(path, {"grid": [{"edge_ap": float("nan"), "k_at_hop": (20, 5)}]})
    >>> load_results(path)
    {'grid': [{'edge_ap': None, 'k_at_hop': [20, 5]}]}
    """
    text = json.dumps(_plain(results), indent=1) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def load_results(path: Union[str, Path]) -> dict[str, Any]:
    """Read a file written by :func:`save_results` (records can be re-tabulated)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such results file.")
    return json.loads(p.read_text())


# --------------------------------------------------------------------------- plot


def require_matplotlib() -> None:
    """Raise a helpful :class:`ImportError` when matplotlib (the ``plot`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'linkage-gcn[plot]'") from exc


def plot_gamma_sweep(
    records: Sequence[Record],
    path: Union[str, Path],
    *,
    metric: str = "edge_ap",
    title: Optional[str] = None,
    overwrite: bool = False,
) -> Path:
    """Draw Fig. 3: ``metric`` against gamma, RS dashed, RIWS solid, baseline dash-dot.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`gamma_sweep`.
    path : str or Path
        Image file; its suffix picks the format (``.png``, ``.pdf``, ``.svg``...).
    metric : str
        The record key drawn.
    title : str, optional
        Figure title (default: the subset).
    overwrite : bool
        Replace an existing file (refused otherwise, before anything is drawn).

    Returns
    -------
    pathlib.Path
        ``path``, written atomically.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it.")
    rows, cols, cells, baseline = _sweep_cells(records, metric)
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row in rows:
        xs = [g for g in cols if (row, g) in cells]
        style = "--" if row.endswith("RS") else "-"
        ax.plot(xs, [cells[(row, g)] for g in xs], style, marker="o", label=row)
    if baseline is not None:
        ax.axhline(baseline, linestyle="-.", color="gray", label="L-GCN (baseline)")
    ax.set_xlabel("gamma (1-hop pool expansion)")
    ax.set_ylabel(metric.replace("_", " "))
    subsets = sorted({str(r.get("subset", "")) for r in records} - {""})
    ax.set_title(title if title is not None else " ".join(subsets))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format=(p.suffix[1:] or "png"), dpi=120)
    return atomic_write(p, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)


# --------------------------------------------------------------------------- data, defaults


def default_grid(data: str = "auto", full: bool = False, *, quick: bool = False) -> dict[str, Any]:
    """The settings of ``linkage-gcn imbalance`` for a data set.

    Parameters
    ----------
    data : {"auto", "lfw", "synthetic"}
        ``"auto"``: LFW when :func:`~linkage_gcn.datasets.find_shared_lfw`
        finds it, synthetic otherwise.
    full : bool
        The larger grid: 8 subsets (``m`` in 10, 20, 40, 80; ``n`` in 2, 3)
        and :data:`FULL_BASE_PARAMS`.
    quick : bool
        A smoke test: :data:`QUICK_BASE_PARAMS`, two gammas, and (on
        synthetic data) small subsets of a small data set.

    Returns
    -------
    dict
        ``data`` (``"lfw"`` or ``"synthetic"``), ``subsets`` (list of
        ``(m, n)``), ``sweep_subset``, ``gammas``, ``methods`` (names: the
        paper's nine, then the extensions) and ``base_params``.

    Examples
    --------
    >>> grid = default_grid("lfw")
    >>> grid["subsets"], grid["sweep_subset"], len(grid["methods"])
    ([(10, 3), (40, 3)], (10, 3), 10)
    >>> grid["base_params"]["hidden_channels"], grid["base_params"]["epochs"]
    ((256, 256, 128, 128), 3)
    """
    data = check_in_options(data, ("auto", "lfw", "synthetic"), "data")
    if data == "auto":
        data = "lfw" if find_shared_lfw() is not None else "synthetic"
    if full:
        subsets = [(m, n) for m in (10, 20, 40, 80) for n in (2, 3)]
    else:
        subsets = [(10, 3), (40, 3)]
    base = dict(FULL_BASE_PARAMS if full else DEFAULT_BASE_PARAMS)
    gammas: tuple[float, ...] = DEFAULT_GAMMAS
    if quick:
        base = dict(QUICK_BASE_PARAMS)
        gammas = (1.0, 2.0)
        if data == "synthetic":
            subsets = [(2, 2), (5, 3)]
    return {
        "data": data,
        "subsets": subsets,
        "sweep_subset": subsets[0],
        "gammas": gammas,
        "methods": list(_all_methods()),
        "base_params": base,
    }


def load_data(
    data: str = "auto",
    data_path: Optional[Union[str, Path]] = None,
    *,
    random_state: int = 0,
    quick: bool = False,
) -> dict[str, Any]:
    """The training and test sets of the experiments.

    Parameters
    ----------
    data : {"auto", "lfw", "synthetic"}
        ``"lfw"``: the ``train/`` and ``test/`` halves (identity-disjoint) of
        the LFW dlib folder; ``"synthetic"``: long-tailed synthetic identities
        split in two halves by identity; ``"auto"``: LFW when ``data_path``
        is given or the folder is found, synthetic otherwise.
    data_path : str or Path, optional
        The ``lfw-dlib`` folder (default: :func:`~linkage_gcn.datasets.find_shared_lfw`).
    random_state : int
        Seed of the synthetic data and its split.
    quick : bool
        Small synthetic data (60 identities), for smoke tests.

    Returns
    -------
    dict
        ``data`` (``"lfw"`` or ``"synthetic"``), ``source`` (a description),
        ``X_train``, ``y_train``, ``X_test``, ``y_test``.
    """
    data = check_in_options(data, ("auto", "lfw", "synthetic"), "data")
    root = Path(data_path) if data_path is not None else None
    if data in ("auto", "lfw") and root is None:
        root = find_shared_lfw()
        if root is None and data == "lfw":
            raise FileNotFoundError(
                "no LFW dlib folder found: give its path (--data-path), set LINKAGE_GCN_LFW, "
                "or use the synthetic data (--data synthetic)."
            )
    if data == "lfw" or (data == "auto" and root is not None):
        X_train, y_train = load_lfw_dlib(root, "train")
        X_test, y_test = load_lfw_dlib(root, "test")
        return {"data": "lfw", "source": str(root), "X_train": X_train, "y_train": y_train,
                "X_test": X_test, "y_test": y_test}  # fmt: skip
    spec = _SYNTHETIC_QUICK if quick else _SYNTHETIC
    X, y = make_identities(**spec, random_state=random_state)
    train, test = split_identities(y, test_size=0.5, random_state=random_state)
    source = ", ".join(f"{k}={v}" for k, v in spec.items())
    return {"data": "synthetic", "source": f"make_identities({source}, seed {random_state})",
            "X_train": X[train], "y_train": y[train], "X_test": X[test],
            "y_test": y[test]}  # fmt: skip
