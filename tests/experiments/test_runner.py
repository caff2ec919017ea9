import math

import numpy as np
import pytest

from linkage_gcn import LinkageClusterer
from linkage_gcn.experiments import (
    METHODS,
    PAPER_SETTINGS,
    QUICK_BASE_PARAMS,
    gamma_sweep,
    run_imbalance_grid,
)
from linkage_gcn.experiments.methods import all_methods
from linkage_gcn.experiments.results import to_json_ready
from linkage_gcn.experiments.runner import _safe_edge_ap, progress_line
from linkage_gcn.metrics import edge_ap, evaluate
from linkage_gcn.model_selection import make_imbalanced_subset

from .conftest import GRID_METHODS, GRID_SUBSETS

QUICK = QUICK_BASE_PARAMS


def test_grid_order_and_description(data, grid):
    _, y_train, _, y_test = data
    assert [(r["majority_count"], r["minority_size"], r["method"]) for r in grid] == [
        (*s, m) for s in GRID_SUBSETS for m in GRID_METHODS
    ]
    for r in grid:
        m, n = r["majority_count"], r["minority_size"]
        keep = make_imbalanced_subset(y_train, m, n, random_state=0)
        assert r["subset"] == f"(H{m}, S{n})" and r["random_state"] == 0
        assert r["n_train"] == len(keep) and r["n_identities"] == len(np.unique(y_train[keep]))
        assert r["n_test"] == len(y_test) and r["reused"] is False
        assert r["from_paper"] is (r["method"] in METHODS)
        est = LinkageClusterer(**PAPER_SETTINGS, **QUICK, **all_methods()[r["method"]])
        expected = {
            k: v for k, v in est.get_params().items() if k not in ("random_state", "verbose")
        }
        assert r["params"] == to_json_ready(expected)
        assert (r["sampler"], r["gamma"], r["loss"]) == (
            r["params"]["sampler"],
            r["params"]["gamma"],
            r["params"]["loss"],
        )
    assert grid[2]["loss"] == "cb-graph" and grid[2]["from_paper"] is False


def test_methods_differ_by_their_method_alone(grid):
    def shared(r):
        return {k: v for k, v in r["params"].items() if k not in ("sampler", "gamma", "loss")}

    assert all(shared(r) == shared(grid[0]) for r in grid)
    assert len({(r["sampler"], r["gamma"], r["loss"]) for r in grid}) == len(GRID_METHODS)


def test_grid_record_is_an_independent_fit(data, grid):
    X_train, y_train, X_test, y_test = data
    record = grid[4]  # RIWS on (H5, S3)
    keep = make_imbalanced_subset(y_train, 5, 3, random_state=0)
    est = LinkageClusterer(**PAPER_SETTINGS, **QUICK, **METHODS["RIWS"], random_state=0,
                           verbose=False).fit(X_train[keep], y_train[keep])  # fmt: skip
    edge_index, scores = est.predict_edges(X_test)
    metrics = evaluate(y_test, est.cluster_edges(edge_index, scores, len(y_test)))
    assert record["edge_ap"] == pytest.approx(edge_ap(y_test, edge_index, scores), abs=1e-12)
    for k in ("bcubed_fscore", "bcubed_precision", "bcubed_recall", "pairwise_fscore", "nmi"):
        assert record[k] == pytest.approx(metrics[k], abs=1e-12), k
    assert record["n_clusters"] == metrics["n_clusters"]
    assert record["threshold"] == est.threshold_ and record["n_edges"] == edge_index.shape[1]
    assert record["fit_seconds"] > 0 and record["predict_seconds"] > 0


def test_edge_ap_is_nan_when_undefined():
    edges = np.array([[0, 1], [1, 2]])
    assert math.isnan(_safe_edge_ap(np.array([0, 1, 2]), edges, np.array([0.2, 0.9])))
    assert math.isnan(_safe_edge_ap(np.array([0, 0, 0]), edges, np.array([0.2, 0.9])))
    assert math.isnan(_safe_edge_ap(np.array([0, 0]), np.zeros((2, 0), int), np.zeros(0)))
    assert _safe_edge_ap(np.array([0, 0, 1]), edges, np.array([0.9, 0.2])) == 1.0


def test_seed_callback_and_progress(data, capsys):
    calls = []
    kwargs = dict(subsets=[(2, 2)], methods=["RS"], base_params=QUICK, random_state=3)
    a = run_imbalance_grid(*data, **kwargs, verbose=None, callback=calls.append)
    assert calls == a and a[0]["random_state"] == 3
    assert capsys.readouterr().out == progress_line(a[0], 1, 1) + "\n"
    b = run_imbalance_grid(*data, **kwargs, verbose=False)
    assert capsys.readouterr().out == ""
    assert a[0]["edge_ap"] == b[0]["edge_ap"] and a[0]["threshold"] == b[0]["threshold"]


def test_progress_line():
    r = {"subset": "(H2, S2)", "method": "L-GCN", "sampler": "topk", "gamma": 1.0,
         "edge_ap": 0.91234, "bcubed_fscore": 0.5, "n_train": 7, "fit_seconds": 2.04,
         "predict_seconds": 0.26, "reused": False}  # fmt: skip
    assert progress_line(r, 2, 9) == (
        "[2/9] (H2, S2) L-GCN: edge AP 0.9123  B-Cubed F 0.5000  (n=7, fit 2.0s, predict 0.3s)"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_params": {"loss": "ce"}}, "base_params must not set loss"),
        ({"subsets": [2]}, "pair"),
        ({"subsets": [(2, 2), (10_000, 2)]}, "majority_count"),
        ({"methods": {"ok": METHODS["L-GCN"], "bad": {"loss": "hinge"}}}, "unknown loss"),
        ({"methods": {"bad": {**METHODS["RS"], "gamma": 0.5}}}, "gamma"),
        ({"methods": {"bad": {**METHODS["RS"], "random_state": 1}}}, "must not set random_state"),
        ({"random_state": -1}, "random_state"),
    ],
)
def test_grid_rejects_before_any_run(data, kwargs, match, capsys):
    calls = []
    kwargs = {"subsets": [(2, 2)], "methods": ["L-GCN"], "base_params": QUICK, **kwargs}
    with pytest.raises(ValueError, match=match):
        run_imbalance_grid(*data, **kwargs, callback=calls.append)
    assert calls == [] and capsys.readouterr().out == ""


def test_grid_rejects_bad_data(data):
    X_train, y_train, X_test, y_test = data
    with pytest.raises(ValueError, match="y_train has"):
        run_imbalance_grid(X_train, y_train[:-1], X_test, y_test)
    with pytest.raises(ValueError, match="features"):
        run_imbalance_grid(X_train, y_train, X_test[:, :8], y_test)
    with pytest.raises(ValueError, match="2-D"):
        run_imbalance_grid(X_train[0], y_train[:1], X_test, y_test)


def test_gamma_sweep_and_cache(data):
    cache = {}
    (riws,) = run_imbalance_grid(*data, subsets=[(2, 2)], methods=["RIWS"], base_params=QUICK,
                                 verbose=False, cache=cache)  # fmt: skip
    recs = gamma_sweep(*data, subset=(2, 2), gammas=(1.0, 2.0), base_params=QUICK,
                       verbose=False, cache=cache)  # fmt: skip
    assert [(r["method"], r["sampler"], r["gamma"], r["loss"]) for r in recs] == [
        ("L-GCN", "topk", 1.0, "ce"), ("RS", "rs", 1.0, "ce"), ("RS", "rs", 2.0, "ce"),
        ("RIWS", "riws", 1.0, "ce"), ("RIWS", "riws", 2.0, "ce"),
    ]  # fmt: skip
    assert [r["reused"] for r in recs] == [False, False, False, False, True]
    assert {k: v for k, v in recs[-1].items() if k != "reused"} == {
        k: v for k, v in riws.items() if k != "reused"
    }
    assert all(r["n_train"] == riws["n_train"] and r["from_paper"] for r in recs)
    # the pool widens with gamma: RS at gamma 1 and 2 are different runs
    assert recs[1]["params"]["gamma"] == 1.0 and recs[2]["params"]["gamma"] == 2.0


def test_cache_is_keyed_by_data_seed_and_parameters(data):
    X_train, y_train, X_test, y_test = data
    cache = {}
    kwargs = dict(subsets=[(2, 2)], methods=["L-GCN"], verbose=False, cache=cache)
    run_imbalance_grid(*data, base_params=QUICK, **kwargs)
    assert run_imbalance_grid(*data, base_params=QUICK, **kwargs)[0]["reused"]
    other_test = run_imbalance_grid(X_train, y_train, X_test[:-5], y_test[:-5],
                                    base_params=QUICK, **kwargs)  # fmt: skip
    other_seed = run_imbalance_grid(*data, base_params=QUICK, random_state=1, **kwargs)
    other_lr = run_imbalance_grid(*data, base_params={**QUICK, "lr": 0.02}, **kwargs)
    assert not any(r[0]["reused"] for r in (other_test, other_seed, other_lr))
    assert len(cache) == 4


def test_gamma_sweep_with_the_forks_focal_loss(data):
    recs = gamma_sweep(*data, subset=(2, 2), gammas=(2.0,), loss="focal-fork", baseline=False,
                       base_params=QUICK, verbose=False)  # fmt: skip
    assert [(r["method"], r["from_paper"]) for r in recs] == [("FL+RS", True), ("FL+RIWS", True)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"samplers": ("topk",)}, "unknown sampler"),
        ({"gammas": (0.5,)}, "gamma"),
        ({"gammas": ()}, "at least one gamma"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"subset": (2,)}, "pair"),
    ],
)
def test_gamma_sweep_rejects_before_any_run(data, kwargs, match):
    calls = []
    with pytest.raises(ValueError, match=match):
        gamma_sweep(*data, base_params=QUICK, callback=calls.append, **{"subset": (2, 2), **kwargs})
    assert calls == []
