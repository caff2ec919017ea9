"""Tests for linkage_gcn.metrics: every metric against a brute-force definition."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import (
    average_precision_score,
    normalized_mutual_info_score,
    roc_auc_score,
)

from linkage_gcn.metrics import (
    bcubed_by_identity_size,
    bcubed_fscore,
    contingency,
    edge_ap,
    edge_labels,
    edge_roc_auc,
    evaluate,
    format_report,
    nmi,
    pairwise_fscore,
)

METHODS = ("arithmetic", "geometric", "min", "max")
METRIC_KEYS = (
    "pairwise_precision",
    "pairwise_recall",
    "pairwise_fscore",
    "bcubed_precision",
    "bcubed_recall",
    "bcubed_fscore",
    "nmi",
)


# --------------------------------------------------------------------------- brute force


def _f(p, r):
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def brute_pairwise(t, p):
    """Count unordered pairs i < j one by one."""
    same_pred = same_true = both = 0
    n = len(t)
    for i in range(n):
        for j in range(i + 1, n):
            sp_, st = p[i] == p[j], t[i] == t[j]
            same_pred += sp_
            same_true += st
            both += sp_ and st
    prec = both / same_pred if same_pred else 1.0
    rec = both / same_true if same_true else 1.0
    return prec, rec, _f(prec, rec)


def brute_bcubed_items(t, p):
    """Per-item B-Cubed precision and recall, by looping over items."""
    t, p = np.asarray(t), np.asarray(p)
    prec, rec = [], []
    for i in range(len(t)):
        same_p, same_t = p == p[i], t == t[i]
        both = np.sum(same_p & same_t)
        prec.append(both / same_p.sum())
        rec.append(both / same_t.sum())
    return np.array(prec), np.array(rec)


def brute_bcubed(t, p):
    prec, rec = brute_bcubed_items(t, p)
    return prec.mean(), rec.mean(), _f(prec.mean(), rec.mean())


def random_case(rng, n):
    """A random labelling pair with few or many labels, negative ids included."""
    k_true = int(rng.choice([1, 2, 3, max(1, n // 3), n]))
    t = rng.integers(0, k_true, n) * int(rng.choice([1, -7, 13]))
    mode = rng.integers(3)
    if mode == 0:  # independent prediction
        p = rng.integers(-2, int(rng.choice([1, 3, n])), n)
    elif mode == 1:  # noisy copy of the truth
        p = np.where(rng.random(n) < 0.3, rng.integers(100, 100 + n, n), t)
    else:  # truth with clusters merged
        p = np.abs(t) % 2
    return t, p


def assert_triple(got, want):
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- brute-force parity


@pytest.mark.parametrize("seed", range(30))
def test_metrics_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    for n in (1, 2, int(rng.integers(3, 15)), int(rng.integers(15, 41))):
        t, p = random_case(rng, n)
        assert_triple(pairwise_fscore(t, p), brute_pairwise(t, p))
        assert_triple(bcubed_fscore(t, p), brute_bcubed(t, p))
        for method in METHODS:
            want = normalized_mutual_info_score(t, p, average_method=method)
            assert abs(nmi(t, p, average_method=method) - want) < 1e-10


@pytest.mark.parametrize("seed", range(10))
def test_pairwise_formula_equals_pair_count(seed):
    rng = np.random.default_rng(100 + seed)
    t, p = random_case(rng, 30)
    c = contingency(t, p)
    n = len(t)
    tk = int(np.sum(c.data**2)) - n
    pk = int(np.sum(np.asarray(c.sum(axis=0)) ** 2)) - n
    qk = int(np.sum(np.asarray(c.sum(axis=1)) ** 2)) - n
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    assert tk == 2 * sum(t[i] == t[j] and p[i] == p[j] for i, j in pairs)
    assert pk == 2 * sum(p[i] == p[j] for i, j in pairs)
    assert qk == 2 * sum(t[i] == t[j] for i, j in pairs)


# --------------------------------------------------------------------------- exact values


def test_known_values():
    t, p = [0, 0, 0, 1, 1], [0, 0, 1, 1, 1]
    # c = [[2, 1], [0, 2]]: B-Cubed P = (4/2 + 1/3 + 4/3) / 5 = 11/15 = R.
    assert_triple(bcubed_fscore(t, p), (11 / 15, 11 / 15, 11 / 15))
    # 4 predicted pairs, 4 true pairs, 2 shared.
    assert_triple(pairwise_fscore(t, p), (0.5, 0.5, 0.5))
    assert_triple(bcubed_fscore([0, 0, 1, 1], [0, 1, 2, 3]), (1.0, 0.5, 2 / 3))
    # truth {0,1,2}{3}, one cluster: B-Cubed P = (9/4 + 1/4) / 4, pairwise P = 3/6.
    assert_triple(bcubed_fscore([0, 0, 0, 1], [5, 5, 5, 5]), (10 / 16, 1.0, _f(10 / 16, 1.0)))
    assert_triple(pairwise_fscore([0, 0, 0, 1], [5, 5, 5, 5]), (0.5, 1.0, 2 / 3))


def test_contingency_table():
    c = contingency([3, 3, -1, 3], [0, 1, 1, 1])
    assert isinstance(c, sp.csr_matrix)
    assert c.dtype == np.int64
    np.testing.assert_array_equal(c.toarray(), [[0, 1], [1, 2]])
    assert c.nnz == 3


def test_perfect_clustering_scores_one():
    rng = np.random.default_rng(1)
    t = rng.integers(-5, 8, 50)
    p = t * 3 + 1000  # a relabelling of the truth
    assert pairwise_fscore(t, p) == (1.0, 1.0, 1.0)
    assert bcubed_fscore(t, p) == (1.0, 1.0, 1.0)
    for method in METHODS:
        assert nmi(t, p, average_method=method) == pytest.approx(1.0, abs=1e-12)
    m = evaluate(t, p)
    assert all(m[k] == pytest.approx(1.0, abs=1e-12) for k in METRIC_KEYS)


def test_all_predicted_singletons():
    t = np.array([0, 0, 0, 1, 1, 2])
    p = np.arange(6)
    assert pairwise_fscore(t, p) == (1.0, 0.0, 0.0)
    prec, rec, _ = bcubed_fscore(t, p)
    assert prec == 1.0
    assert rec == pytest.approx((3 * (1 / 3) + 2 * (1 / 2) + 1) / 6)
    m = evaluate(t, p)
    assert m["n_singletons"] == m["n_clusters"] == 6
    assert m["n_items_no_singletons"] == 0
    assert not any(k.endswith("_no_singletons") and k != "n_items_no_singletons" for k in m)


def test_one_big_cluster():
    t = np.array([0, 0, 0, 1, 1, 2])
    p = np.zeros(6, dtype=int)
    prec, rec, _ = pairwise_fscore(t, p)
    assert (prec, rec) == (pytest.approx((6 + 2) / 30), 1.0)
    prec, rec, _ = bcubed_fscore(t, p)
    assert (prec, rec) == (pytest.approx((9 + 4 + 1) / 36), 1.0)
    assert nmi(t, p) == 0.0


@pytest.mark.parametrize(
    ("t", "p", "pairwise"),
    [
        ([0, 1, 2], [0, 1, 2], (1.0, 1.0, 1.0)),  # both all singletons: perfect
        ([0, 1, 2], [0, 0, 0], (0.0, 1.0, 0.0)),  # no true pair
        ([4], [9], (1.0, 1.0, 1.0)),  # a single item
        ([0, 0], [1, 1], (1.0, 1.0, 1.0)),
    ],
)
def test_degenerate_cases_are_finite_and_warning_free(t, p, pairwise):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pairwise_fscore(t, p) == pairwise
        assert all(np.isfinite(bcubed_fscore(t, p)))
        for method in METHODS:
            assert nmi(t, p, average_method=method) == pytest.approx(
                normalized_mutual_info_score(t, p, average_method=method), abs=1e-12
            )
        m = evaluate(t, p)
    assert all(np.isfinite(v) for v in m.values())


# --------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("seed", range(5))
def test_label_and_order_permutation_invariance(seed):
    rng = np.random.default_rng(200 + seed)
    t, p = random_case(rng, 40)
    ids_t, ids_p = np.unique(t), np.unique(p)
    map_t = dict(zip(ids_t, rng.permutation(ids_t.size) * 5 - 17))
    map_p = dict(zip(ids_p, rng.permutation(ids_p.size) + 1000))
    t2 = np.array([map_t[x] for x in t])
    p2 = np.array([map_p[x] for x in p])
    order = rng.permutation(len(t))
    t2, p2 = t2[order], p2[order]
    assert_triple(pairwise_fscore(t2, p2), pairwise_fscore(t, p))
    assert_triple(bcubed_fscore(t2, p2), bcubed_fscore(t, p))
    assert nmi(t2, p2) == pytest.approx(nmi(t, p), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_swapping_arguments_swaps_precision_and_recall(seed):
    rng = np.random.default_rng(300 + seed)
    t, p = random_case(rng, 35)
    bp, br, bf = bcubed_fscore(t, p)
    assert_triple(bcubed_fscore(p, t), (br, bp, bf))
    pp, pr, pf = pairwise_fscore(t, p)
    assert_triple(pairwise_fscore(p, t), (pr, pp, pf))
    for method in METHODS:
        assert nmi(p, t, average_method=method) == pytest.approx(
            nmi(t, p, average_method=method), abs=1e-12
        )


# --------------------------------------------------------------------------- input types and errors


def test_input_kinds_agree():
    t = [3, 3, -2, -2, 7, 7, 7]
    p = [0, 0, 0, 1, 1, 1, 2]
    want = bcubed_fscore(np.array(t), np.array(p))
    variants = [
        (t, p),
        (torch.tensor(t), torch.tensor(p)),
        (np.array(t)[:, None], torch.tensor(p)[:, None]),
        (np.array(t, dtype=float), np.array(p, dtype=np.int32)),
    ]
    for a, b in variants:
        assert bcubed_fscore(a, b) == want
        assert evaluate(a, b)["bcubed_fscore"] == want[2]


def test_string_and_boolean_ids_are_encoded():
    names = np.array(["ann", "ann", "bob", "cy", "cy"])
    pred = [True, True, False, False, False]
    assert evaluate(names, pred) == evaluate([0, 0, 1, 2, 2], [1, 1, 0, 0, 0])
    assert edge_labels(names, [[0, 1], [1, 2]]).tolist() == [True, False]
    with pytest.raises(ValueError, match="labels_true mixes ids that cannot be compared"):
        bcubed_fscore(np.array(["a", 1, None], dtype=object), [0, 1, 2])


@pytest.mark.parametrize(
    ("t", "p", "match"),
    [
        ([0, 1, 2], [0, 1], "labels_true: 3, labels_pred: 2"),
        ([0.0, float("nan")], [0, 1], "labels_true contains NaN"),
        ([0, 1], [0.0, float("nan")], "labels_pred contains NaN"),
        (np.zeros((2, 1, 1)), [0, 1], r"labels_true must have shape \(N,\) or \(N, 1\)"),
        ([0, 1], np.zeros((2, 2)), r"labels_pred must have shape \(N,\) or \(N, 1\)"),
        ([0.5, 1.0], [0, 1], "labels_true must hold integer identities"),
        ([], [], "labels_true and labels_pred are empty"),
    ],
)
def test_bad_labels_raise(t, p, match):
    for fn in (pairwise_fscore, bcubed_fscore, nmi, evaluate, contingency, bcubed_by_identity_size):
        with pytest.raises(ValueError, match=match):
            fn(t, p)


def test_bad_average_method():
    with pytest.raises(ValueError, match="average_method"):
        nmi([0, 1], [0, 1], average_method="harmonic")
    with pytest.raises(ValueError, match="average_method"):
        evaluate([0, 1], [0, 1], average_method="mean")


# --------------------------------------------------------------------------- edges


def test_edge_labels():
    y = [7, 7, 3, -1]
    ei = np.array([[0, 0, 2, 3], [1, 2, 1, 3]])
    np.testing.assert_array_equal(edge_labels(y, ei), [True, False, False, True])
    np.testing.assert_array_equal(edge_labels(torch.tensor(y), torch.from_numpy(ei)), [1, 0, 0, 1])
    assert edge_labels(y, np.zeros((2, 0), dtype=int)).shape == (0,)
    assert edge_labels(y, ei).dtype == bool


def _random_edges(rng, n=60, e=400):
    labels = rng.integers(0, 8, n)
    ei = rng.integers(0, n, (2, e))
    same = labels[ei[0]] == labels[ei[1]]
    scores = same * 0.5 + rng.random(e)
    return labels, ei, scores, same


def test_edge_ap_and_auc_match_sklearn():
    rng = np.random.default_rng(7)
    labels, ei, scores, same = _random_edges(rng)
    assert edge_ap(labels, ei, scores) == pytest.approx(average_precision_score(same, scores))
    assert edge_roc_auc(labels, ei, scores) == pytest.approx(roc_auc_score(same, scores))
    ap_t = edge_ap(
        torch.tensor(labels), torch.tensor(ei), torch.tensor(scores, dtype=torch.float32)
    )
    assert ap_t == pytest.approx(average_precision_score(same, scores.astype(np.float32)))
    assert edge_ap(labels, ei, scores[:, None]) == edge_ap(labels, ei, scores)


@pytest.mark.parametrize(
    ("ei", "scores", "match"),
    [
        ([[0, 1], [1, 4]], [0.1, 0.2], r"outside \[0, 4\)"),
        ([[0, -1], [1, 2]], [0.1, 0.2], r"outside \[0, 4\)"),
        (
            [[0, 1, 2], [1, 2, 3], [0, 0, 0]],
            [0.1, 0.2, 0.3],
            r"edge_index must have shape \(2, E\)",
        ),
        ([[0.0, 2.0], [1.0, 3.0]], [0.1, 0.2], "edge_index must hold integer"),
        (
            [[0, 2], [1, 3]],
            [0.1, 0.2, 0.3],
            r"scores must have shape \(E,\) = \(2,\), one score per edge",
        ),
        ([[0, 2], [1, 3]], [0.1, float("nan")], "scores contains 1 NaN"),
        ([[0, 2], [1, 3]], [[0.1, 0.2]], r"scores must have shape \(E,\)"),
        ([[0, 0], [1, 1]], [0.1, 0.2], "all 2 edges join items of the same identity"),
        ([[0, 1], [2, 3]], [0.1, 0.2], "all 2 edges join items of different identities"),
        (np.zeros((2, 0), dtype=int), [], "no edges"),
    ],
)
def test_edge_errors(ei, scores, match):
    labels = [0, 0, 1, 2]
    for fn in (edge_ap, edge_roc_auc):
        with pytest.raises(ValueError, match=match):
            fn(labels, ei, scores)
    with pytest.raises(ValueError, match=match):
        evaluate(labels, labels, edge_index=ei, scores=scores)


# --------------------------------------------------------------------------- per identity size


def brute_by_size(t, p, bins):
    t = np.asarray(t)
    prec, rec = brute_bcubed_items(t, p)
    size = np.array([np.sum(t == x) for x in t])
    uppers = [*bins[1:], np.inf]
    rows = []
    for lo, hi in zip(bins, uppers):
        inside = (size >= lo) & (size < hi)
        if inside.any():
            rows.append(
                (inside.sum(), len(set(t[inside])), prec[inside].mean(), rec[inside].mean())
            )
    return rows


@pytest.mark.parametrize("seed", range(8))
def test_bcubed_by_identity_size_matches_brute_force(seed):
    rng = np.random.default_rng(400 + seed)
    sizes = rng.choice([1, 2, 3, 5, 12, 60], size=8)
    t = np.repeat(np.arange(8) - 3, sizes)
    p = np.where(rng.random(t.size) < 0.25, rng.integers(0, 20, t.size), t)
    rows = bcubed_by_identity_size(t, p)
    want = brute_by_size(t, p, (1, 2, 4, 11, 51))
    assert len(rows) == len(want)
    for row, (n_items, n_ids, prec, rec) in zip(rows, want):
        assert (row["n_items"], row["n_identities"]) == (n_items, n_ids)
        assert row["precision"] == pytest.approx(prec, abs=1e-12)
        assert row["recall"] == pytest.approx(rec, abs=1e-12)
        assert row["fscore"] == pytest.approx(_f(prec, rec), abs=1e-12)
    assert sum(r["n_items"] for r in rows) == t.size
    assert sum(r["n_identities"] for r in rows) == np.unique(t).size
    overall = bcubed_fscore(t, p)
    assert sum(r["n_items"] * r["precision"] for r in rows) / t.size == pytest.approx(overall[0])
    assert sum(r["n_items"] * r["recall"] for r in rows) / t.size == pytest.approx(overall[1])


def test_bcubed_by_identity_size_labels_and_bins():
    t = np.repeat([0, 1, 2, 3, 4], [1, 2, 4, 11, 51])
    rows = bcubed_by_identity_size(t, t)
    assert [r["sizes"] for r in rows] == ["1", "2-3", "4-10", "11-50", "51+"]
    assert [r["max_size"] for r in rows] == [1, 3, 10, 50, None]
    assert all(r["fscore"] == 1.0 for r in rows)
    # empty bins are left out; identities below bins[0] too
    rows = bcubed_by_identity_size([0, 0, 1, 2, 2, 2], [0, 0, 1, 2, 2, 2], bins=(2, 3, 100))
    assert [(r["sizes"], r["n_items"]) for r in rows] == [("2", 2), ("3-99", 3)]


@pytest.mark.parametrize("bins", [(), (0, 2), (1, 1, 3), (3, 2), (1.0, 2.0), [[1, 2]]])
def test_bcubed_by_identity_size_bad_bins(bins):
    with pytest.raises(ValueError, match="bins"):
        bcubed_by_identity_size([0, 1], [0, 1], bins=bins)


# --------------------------------------------------------------------------- evaluate and report


def test_evaluate_keys_and_values():
    rng = np.random.default_rng(11)
    t, p = random_case(rng, 40)
    p[:5] = 1000 + np.arange(5)  # make sure some singletons exist
    m = evaluate(t, p, remove_singletons=False)
    assert set(m) == {*METRIC_KEYS, "n_clusters", "n_singletons", "n_items"}
    assert m["n_items"] == 40
    assert m["n_clusters"] == np.unique(p).size
    _, counts = np.unique(p, return_counts=True)
    assert m["n_singletons"] == np.sum(counts == 1)
    assert_triple(
        [m["pairwise_precision"], m["pairwise_recall"], m["pairwise_fscore"]],
        pairwise_fscore(t, p),
    )
    assert_triple(
        [m["bcubed_precision"], m["bcubed_recall"], m["bcubed_fscore"]], bcubed_fscore(t, p)
    )
    assert m["nmi"] == nmi(t, p)
    assert evaluate(t, p, average_method="geometric")["nmi"] == nmi(
        t, p, average_method="geometric"
    )


@pytest.mark.parametrize("seed", range(5))
def test_evaluate_without_singletons_equals_filtered_subset(seed):
    rng = np.random.default_rng(500 + seed)
    t = rng.integers(0, 6, 40)
    p = np.where(rng.random(40) < 0.3, 100 + np.arange(40), t % 4)
    _, inv, counts = np.unique(p, return_inverse=True, return_counts=True)
    keep = counts[inv] >= 2
    m = evaluate(t, p)
    want = evaluate(t[keep], p[keep], remove_singletons=False)
    assert m["n_items_no_singletons"] == keep.sum()
    for k in METRIC_KEYS:
        assert m[f"{k}_no_singletons"] == pytest.approx(want[k], abs=1e-12)
    assert m["bcubed_fscore_no_singletons"] == pytest.approx(bcubed_fscore(t[keep], p[keep])[2])


def test_evaluate_with_edges():
    rng = np.random.default_rng(12)
    labels, ei, scores, same = _random_edges(rng)
    m = evaluate(labels, labels, edge_index=ei, scores=scores)
    assert m["edge_ap"] == pytest.approx(average_precision_score(same, scores))
    assert m["edge_roc_auc"] == pytest.approx(roc_auc_score(same, scores))
    with pytest.raises(ValueError, match="edge_index and scores must be given together"):
        evaluate(labels, labels, edge_index=ei)
    with pytest.raises(ValueError, match="edge_index and scores must be given together"):
        evaluate(labels, labels, scores=scores)


def test_format_report():
    rng = np.random.default_rng(13)
    labels, ei, scores, _ = _random_edges(rng)
    pred = labels % 3
    text = format_report(evaluate(labels, pred, edge_index=ei, scores=scores))
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("60 items, 3 predicted clusters (0 singletons)")
    assert "B-Cubed P/R/F" in lines[1] and "pairwise P/R/F" in lines[1] and "NMI" in lines[1]
    assert lines[2].startswith("without singletons (60 items)")
    assert lines[3].startswith("edges: AP ")
    assert len(format_report(evaluate(labels, pred, remove_singletons=False)).splitlines()) == 2
    text = format_report(evaluate([0, 0, 1], [0, 1, 2]))
    assert "no item left" in text


def test_scores_of_another_length_than_the_edges_name_edge_index():
    with pytest.raises(ValueError, match=r"scores must have shape \(E,\) = \(2,\), one score per "
                       r"edge of edge_index, got shape \(1,\)"):  # fmt: skip
        edge_ap([0, 0, 1], [[0, 1], [1, 2]], [0.5])
    with pytest.raises(ValueError, match="one score per edge of edge_index"):
        evaluate([0, 0, 1], [0, 0, 1], edge_index=[[0, 1], [1, 2]], scores=[0.5, 0.2, 0.1])


def test_format_report_needs_what_evaluate_returns():
    with pytest.raises(ValueError, match=r"metrics must be the dict evaluate\(\) returns; it lacks "
                       "'n_clusters'"):  # fmt: skip
        format_report({"n_items": 3})
    with pytest.raises(ValueError, match="it lacks 'n_items'"):
        format_report([1, 2])
