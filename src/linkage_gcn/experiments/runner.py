"""The runs: every method on every subset (Tables 1 and 2), and the gamma sweep (Figure 3).

Every run trains one :class:`~linkage_gcn.LinkageClusterer` on an (H m, S n)
subset of the training set and scores it on the whole held-out set, whose
identities are disjoint from the training set's. All runs of a call share
the base settings (:data:`~linkage_gcn.experiments.PAPER_SETTINGS`, the
paper's L-GCN: pivot-relative features only, learning rate x0.1 after each
epoch, on top of the grid's base settings), the seed and, for a given
subset, the training samples, so that two methods differ by their method
alone. A run records:

- edge AP: the average precision of the pooled link scores of
  :meth:`~linkage_gcn.LinkageClusterer.predict_edges` on the test set
  against same-identity labels (the merge stage left out, as in the paper);
  NaN when the scored pairs hold one class only;
- B-Cubed, pairwise F and NMI of the test clusters cut at the link threshold
  calibrated on the *training* subset (``threshold="auto"`` in the default
  settings).

A ``cache`` dict shared between calls skips the runs it already holds (same
data, subset, seed and parameters): the gamma sweep reuses the grid's runs
of the same configuration.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

from .._validation import check_in_options, check_int, check_labels, check_real
from ..estimator import LinkageClusterer
from ..metrics import edge_ap, edge_labels, evaluate
from ..model_selection import make_imbalanced_subset
from .defaults import DEFAULT_BASE_PARAMS, DEFAULT_GAMMAS, DEFAULT_SUBSETS
from .methods import METHODS, PAPER_SETTINGS, method_label, resolve_methods
from .results import to_json_ready
from .subsets import check_subset, check_subsets, subset_name

__all__ = ["Record", "gamma_sweep", "progress_line", "run_imbalance_grid"]

#: One finished run (see :func:`run_imbalance_grid` for its keys).
Record = dict[str, Any]
Callback = Optional[Callable[[Record], None]]
Data = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

#: Parameters set by the method (sampler, gamma, loss) or by the call (seed, verbosity).
_METHOD_KEYS = ("sampler", "gamma", "loss")
_CALL_KEYS = ("random_state", "verbose")
#: Record keys copied from :func:`~linkage_gcn.metrics.evaluate`.
_CLUSTER_METRICS = (
    "bcubed_fscore", "bcubed_precision", "bcubed_recall", "pairwise_fscore", "nmi", "n_clusters",
)  # fmt: skip


class _Run(NamedTuple):
    """One configuration to run: a subset, a method name and the estimator's parameters."""

    subset: tuple[int, int]
    method: str
    params: dict[str, Any]


# --------------------------------------------------------------------------- checks


def _check_data(X_train: Any, y_train: Any, X_test: Any, y_test: Any) -> Data:
    """The four arrays: 2-D float32 features, int64 labels, as many rows as labels."""
    out = []
    for X, y, side in ((X_train, y_train, "train"), (X_test, y_test, "test")):
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"X_{side} must be a non-empty 2-D array, got shape {X.shape}.")
        out += [X, check_labels(y, n_samples=X.shape[0], name=f"y_{side}")]
    if out[0].shape[1] != out[2].shape[1]:
        raise ValueError(
            f"X_train has {out[0].shape[1]} features but X_test has {out[2].shape[1]}."
        )
    return out[0], out[1], out[2], out[3]


def _base_params(base_params: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """:data:`PAPER_SETTINGS` under ``base_params`` (default :data:`DEFAULT_BASE_PARAMS`)."""
    base = dict(DEFAULT_BASE_PARAMS if base_params is None else base_params)
    bad = sorted(set(base) & {*_METHOD_KEYS, *_CALL_KEYS})
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


def _full_params(params: Mapping[str, Any], seed: int, verbose: Optional[bool]) -> dict[str, Any]:
    """Every parameter of the run's estimator, checked: a bad one fails before any training."""
    bad = sorted(set(params) & set(_CALL_KEYS))
    if bad:
        raise ValueError(f"a method must not set {', '.join(bad)}; pass them to the call.")
    est = LinkageClusterer(**params, random_state=seed, verbose=verbose)
    est.resolved_params()  # validates every parameter (and the merge's extra) now
    return est.get_params(deep=False)


def _from_paper(method: str, params: Mapping[str, Any]) -> bool:
    """Whether the run is the paper's method of that name (any gamma: Fig. 3 sweeps it)."""
    paper = METHODS.get(method)
    return paper is not None and all(params.get(k) == paper[k] for k in ("sampler", "loss"))


# --------------------------------------------------------------------------- cache


def _fingerprint(data: Data) -> str:
    """A digest of the arrays, so that a cache never mixes runs on different data."""
    h = hashlib.blake2b(digest_size=16)
    for a in data:
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _cache_key(fingerprint: str, subset: tuple[int, int], params: Mapping[str, Any]) -> str:
    """The configuration of a run as a string (objects without JSON form by ``repr``)."""
    plain = to_json_ready(dict(params))
    return json.dumps([fingerprint, *subset, plain], sort_keys=True, default=repr)


# --------------------------------------------------------------------------- one run


def _safe_edge_ap(y: np.ndarray, edge_index: np.ndarray, scores: np.ndarray) -> float:
    """Edge AP, or NaN when the scored edges hold one class only (AP undefined)."""
    same = edge_labels(y, edge_index)
    if same.size == 0 or same.all() or not same.any():
        return math.nan
    return edge_ap(y, edge_index, scores)


def _fit_evaluate(params: Mapping[str, Any], data: Data, keep: np.ndarray) -> dict[str, Any]:
    """Fit on the ``keep`` rows of the training set, score the test set: the run's metrics."""
    X_train, y_train, X_test, y_test = data
    est = LinkageClusterer(**params)
    t0 = time.perf_counter()
    est.fit(X_train[keep], y_train[keep])
    t1 = time.perf_counter()
    edge_index, scores = est.predict_edges(X_test)
    pred = est.cluster_edges(edge_index, scores, X_test.shape[0])
    t2 = time.perf_counter()
    m = evaluate(y_test, pred, remove_singletons=False)
    return {
        "edge_ap": _safe_edge_ap(y_test, edge_index, scores),
        **{k: m[k] for k in _CLUSTER_METRICS},
        "threshold": float(est.threshold_),
        "n_edges": int(edge_index.shape[1]),
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
    }


def _without(params: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in keys}


def _name(value: Any) -> str:
    """A sampler or loss as a string: its name, or the ``repr`` of an object."""
    return value if isinstance(value, str) else repr(value)


def _describe_run(
    run: _Run, params: Mapping[str, Any], y_subset: np.ndarray, n_test: int
) -> Record:
    """What a run is, before it runs: subset, method, sizes; ``params``: the estimator's."""
    m, n = run.subset
    return {
        "subset": subset_name(m, n),
        "majority_count": m,
        "minority_size": n,
        "method": run.method,
        "from_paper": _from_paper(run.method, params),
        "sampler": _name(params["sampler"]),
        "gamma": float(params["gamma"]),
        "loss": _name(params["loss"]),
        "n_train": int(y_subset.shape[0]),
        "n_identities": int(np.unique(y_subset).shape[0]),
        "n_test": n_test,
        "random_state": params["random_state"],
    }


def progress_line(record: Mapping[str, Any], i: int, total: int) -> str:
    """The line printed when run ``i`` of ``total`` is finished.

    Examples
    --------
    >>> r = {"subset": "(H2, S2)", "method": "RS", "sampler": "rs", "gamma": 1.2,
    ...      "edge_ap": 0.9, "bcubed_fscore": float("nan"), "n_train": 50,
    ...      "fit_seconds": 1.23, "predict_seconds": 0.5, "reused": True}
    >>> progress_line(r, 1, 3)
    '[1/3] (H2, S2) RS gamma=1.2: edge AP 0.9000  B-Cubed F nan  (n=50, fit 1.2s, predict 0.5s) \
(reused)'
    """
    gamma = f" gamma={record['gamma']:g}" if record.get("sampler") in ("rs", "riws") else ""
    return (
        f"[{i}/{total}] {record['subset']} {record['method']}{gamma}: "
        f"edge AP {record['edge_ap']:.4f}  B-Cubed F {record['bcubed_fscore']:.4f}  "
        f"(n={record['n_train']}, fit {record['fit_seconds']:.1f}s, "
        f"predict {record['predict_seconds']:.1f}s)" + (" (reused)" if record.get("reused") else "")
    )


def _run_all(
    data: Data,
    runs: Sequence[_Run],
    *,
    seed: int,
    verbose: Optional[bool],
    callback: Callback,
    cache: Optional[dict[str, Record]],
) -> list[Record]:
    """Check every run, then run them in order (reusing ``cache``); one record each."""
    y_train = data[1]
    keeps = {
        s: make_imbalanced_subset(y_train, *s, random_state=seed) for s in {r.subset for r in runs}
    }
    configs = [_full_params(r.params, seed, verbose) for r in runs]
    fingerprint = _fingerprint(data) if cache is not None else ""
    records: list[Record] = []
    for run, params in zip(runs, configs):
        record = _describe_run(run, params, y_train[keeps[run.subset]], int(data[3].shape[0]))
        key = _cache_key(fingerprint, run.subset, {**params, "verbose": None})
        if cache is not None and key in cache:
            record = {**cache[key], **record, "reused": True}
        else:
            record.update(_fit_evaluate(params, data, keeps[run.subset]))
            record.update(params=to_json_ready(_without(params, _CALL_KEYS)), reused=False)
            if cache is not None:
                cache[key] = dict(record)
        records.append(record)
        if verbose is not False:
            print(progress_line(record, len(records), len(runs)), flush=True)
        if callback is not None:
            callback(record)
    return records


# --------------------------------------------------------------------------- grid, sweep


def run_imbalance_grid(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    subsets: Iterable[Any] = DEFAULT_SUBSETS,
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
        each other one (:func:`~linkage_gcn.model_selection.make_imbalanced_subset`).
    methods : None, list of str or mapping
        Names among :data:`~linkage_gcn.experiments.METHODS` and
        :data:`~linkage_gcn.experiments.EXTRA_METHODS` (``None``: all, the
        paper's nine first), or a mapping name -> parameters.
    base_params : mapping, optional
        :class:`~linkage_gcn.LinkageClusterer` parameters shared by every run
        (default :data:`~linkage_gcn.experiments.DEFAULT_BASE_PARAMS`), on top
        of :data:`~linkage_gcn.experiments.PAPER_SETTINGS`; must not set
        ``sampler``, ``gamma``, ``loss``, ``random_state`` or ``verbose``.
    random_state : int or None
        Seed of the subsets and of every fit (the same for all methods, so
        they differ by their method alone); ``None`` draws one.
    verbose : bool or None
        ``False``: silent. Otherwise one line per finished run
        (:func:`progress_line`); ``True`` also shows the estimator's progress
        bars (``None``: on a terminal).
    callback : callable, optional
        Called with each record as soon as it is finished (e.g. to save
        partial results).
    cache : dict, optional
        Finished runs by configuration (data, subset, seed, parameters); a run
        found there is not repeated (share one dict between this and
        :func:`gamma_sweep`).

    Returns
    -------
    list of dict
        One record per run, by subset then method: ``subset`` (e.g.
        ``"(H10, S3)"``), ``majority_count``, ``minority_size``, ``method``,
        ``from_paper`` (the paper's method of that name), ``sampler``,
        ``gamma``, ``loss``, ``n_train``, ``n_identities`` (of the subset),
        ``n_test``, ``random_state``, ``edge_ap`` (AP of the pooled test link
        scores against same-identity labels; NaN if undefined),
        ``bcubed_fscore``, ``bcubed_precision``, ``bcubed_recall``,
        ``pairwise_fscore``, ``nmi``, ``n_clusters`` (at the link
        ``threshold`` calibrated on the training subset), ``threshold``,
        ``n_edges``, ``fit_seconds``, ``predict_seconds``, ``params`` (every
        parameter of the estimator but the seed and verbosity, JSON-ready) and
        ``reused`` (taken from ``cache``).

    Raises
    ------
    ValueError
        Before any training, for bad data, subsets, methods or parameters.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> from linkage_gcn.model_selection import split_identities
    >>> from linkage_gcn.experiments import QUICK_BASE_PARAMS
    >>> X, y = make_identities(40, dim=8, max_size=12, random_state=0)
    >>> tr, te = split_identities(y, random_state=0)
    >>> recs = run_imbalance_grid(X[tr], y[tr], X[te], y[te], subsets=[(2, 2)],
    ...                           methods=["L-GCN", "RIWS"], base_params=QUICK_BASE_PARAMS,
    ...                           verbose=False)
    >>> [(r["subset"], r["method"], r["params"]["sampler"]) for r in recs]
    [('(H2, S2)', 'L-GCN', 'topk'), ('(H2, S2)', 'RIWS', 'riws')]
    """
    data = _check_data(X_train, y_train, X_test, y_test)
    chosen = resolve_methods(methods)
    base = _base_params(base_params)
    runs = [
        _Run(subset, name, {**base, **params})
        for subset in check_subsets(subsets)
        for name, params in chosen.items()
    ]
    return _run_all(data, runs, seed=_check_seed(random_state), verbose=verbose,
                    callback=callback, cache=cache)  # fmt: skip


def gamma_sweep(
    X_train: Any,
    y_train: Any,
    X_test: Any,
    y_test: Any,
    *,
    subset: Any = DEFAULT_SUBSETS[0],
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
    """Edge AP against the pool expansion ``gamma`` of RS and RIWS (Figure 3).

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
        Loss of every swept run (``"ce"``: RS and RIWS alone, as Fig. 3).
    baseline : bool
        Also run L-GCN (top-k, cross-entropy), recorded with ``gamma = 1``
        and drawn as the baseline by
        :func:`~linkage_gcn.experiments.plot_gamma_sweep`.
    base_params, random_state, verbose, callback, cache
        As :func:`run_imbalance_grid`.

    Returns
    -------
    list of dict
        Records as :func:`run_imbalance_grid`'s, the baseline first, then by
        sampler and gamma; ``method`` names the sampler and loss, whatever
        the gamma (:func:`~linkage_gcn.experiments.methods.method_label`):
        ``"L-GCN"``, ``"RS"``, ``"RIWS"``, or with ``loss="focal-fork"``
        ``"FL+RS"``, ``"FL+RIWS"``.
    """
    data = _check_data(X_train, y_train, X_test, y_test)
    subset = check_subset(subset)
    gammas = [check_real(g, "gamma", minimum=1.0) for g in gammas]
    samplers = [check_in_options(s, ("rs", "riws"), "sampler") for s in samplers]
    if not gammas or not samplers:
        raise ValueError("gamma_sweep needs at least one gamma and one sampler.")
    base = _base_params(base_params)
    configs = [("topk", 1.0, "ce")] if baseline else []
    configs += [(s, g, loss) for s in samplers for g in gammas]
    runs = [
        _Run(subset, method_label(s, lo), {**base, "sampler": s, "gamma": g, "loss": lo})
        for s, g, lo in configs
    ]
    return _run_all(data, runs, seed=_check_seed(random_state), verbose=verbose,
                    callback=callback, cache=cache)  # fmt: skip
