"""The face-clustering baselines, against independent definitions and the LFW yardsticks."""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.exceptions import NotFittedError

from linkage_gcn._params import PARAMS
from linkage_gcn.baselines import (
    LABEL_FREE_BASELINES,
    ChineseWhispersClusterer,
    DBSCANClusterer,
    FaceMapClusterer,
    HDBSCANClusterer,
    InfomapClusterer,
    KNNThresholdClusterer,
    _facemap_keep,
    hdbscan_defaults,
    immich_defaults,
    knn_edges,
    radius_edges,
)
from linkage_gcn.community import chinese_whispers, infomap
from linkage_gcn.datasets import make_identities
from linkage_gcn.metrics import bcubed_fscore, pairwise_fscore
from linkage_gcn.model_selection import split_identities

#: Euclidean cuts for the unit-norm synthetic identities (cosine 0.875 .. 0.395).
UNIT_GRID = np.round(np.arange(0.5, 1.1, 0.025), 4)


@pytest.fixture(scope="module")
def identities():
    """Synthetic long-tailed identities, split into train and held-out identities."""
    X, y = make_identities(150, random_state=0)
    train, test = split_identities(y, random_state=0)
    return X[train], y[train], X[test], y[test]


def first_appearance(labels):
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def components(n, i, j):
    graph = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return first_appearance(connected_components(graph, directed=False)[1])


def noise_as_singletons(labels):
    labels = labels.copy()
    noise = labels < 0
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return first_appearance(labels)


def all_pairs(X, cut, metric):
    """Pairs i < j linked at the cut, by brute force (a distance for l2, a cosine)."""
    if metric == "l2":
        d = cdist(X, X)
        i, j = np.nonzero(np.triu(d <= cut, 1))
        return i, j, d[i, j]
    cos = 1 - cdist(X, X, "cosine")
    i, j = np.nonzero(np.triu(cos >= cut, 1))
    return i, j, cos[i, j]


# --------------------------------------------------------------------------------------
# Edge builders


@pytest.mark.parametrize(("metric", "cut"), [("l2", 0.8), ("cosine", 0.6)])
def test_radius_edges_are_all_pairs_closer_than_the_cut(identities, metric, cut):
    X = identities[0][:300]
    edge_index, sim = radius_edges(X, cut, metric=metric)
    i, j, value = all_pairs(X.astype(np.float64), cut, metric)
    assert set(zip(*edge_index.tolist())) == set(zip(i.tolist(), j.tolist()))
    order = np.lexsort((j, i))
    expected = -value[order] if metric == "l2" else value[order]
    np.testing.assert_allclose(sim, expected, atol=1e-5)


def test_radius_edges_validates():
    with pytest.raises(ValueError, match="threshold"):
        radius_edges(np.eye(3), -0.1)
    with pytest.raises(ValueError, match="metric"):
        radius_edges(np.eye(3), 0.5, metric="manhattan")
    with pytest.raises(ValueError, match="all-zero"):
        radius_edges(np.zeros((3, 2)), 0.5, metric="cosine")


# --------------------------------------------------------------------------------------
# kNN threshold


def test_knn_threshold_equals_brute_force_knn_components(identities):
    X = identities[0].astype(np.float64)
    n, k = len(X), 10
    d = cdist(X, X)
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1)[:, :k]
    rows = np.repeat(np.arange(n), k)
    dist = d[rows, nbr.ravel()]
    for cut in (0.7, 0.8):
        keep = dist <= cut
        expected = components(n, rows[keep], nbr.ravel()[keep])
        got = KNNThresholdClusterer(k=k, threshold=cut, metric="l2").fit_predict(X)
        np.testing.assert_array_equal(got, expected)
        # on unit vectors a distance d is the cosine 1 - d^2 / 2
        cosine = KNNThresholdClusterer(k=k, threshold=1 - cut**2 / 2).fit_predict(X)
        np.testing.assert_array_equal(cosine, expected)


def test_knn_threshold_l2_cut_is_a_distance():
    with pytest.raises(ValueError, match="threshold"):
        KNNThresholdClusterer(threshold=-0.45, metric="l2").fit(np.eye(4))


# --------------------------------------------------------------------------------------
# Tuned on train identities, predicted on held-out ones


@pytest.mark.parametrize(
    ("make", "min_f"),
    [
        (lambda: KNNThresholdClusterer(k=10), 0.83),
        (lambda: KNNThresholdClusterer(k=10, metric="l2", grid=UNIT_GRID), 0.83),
        (lambda: ChineseWhispersClusterer(metric="cosine", random_state=0), 0.86),
        (lambda: ChineseWhispersClusterer(grid=UNIT_GRID, random_state=0), 0.86),
        (lambda: DBSCANClusterer(metric="cosine"), 0.83),
        (lambda: DBSCANClusterer(grid=UNIT_GRID), 0.83),
        (lambda: HDBSCANClusterer(), 0.82),
        (lambda: HDBSCANClusterer(metric="cosine"), 0.86),
    ],
)
def test_tuned_on_train_identities_clusters_held_out_ones(identities, make, min_f):
    X_train, y_train, X_test, y_test = identities
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the best cut is inside the default grid
        labels = model.fit(X_train, y_train).predict(X_test)
    assert labels.dtype == np.int64 and labels.shape == y_test.shape
    np.testing.assert_array_equal(labels, first_appearance(labels))
    assert bcubed_fscore(y_test, labels)[2] > min_f
    cut = getattr(model, model._cut + "_")
    if model.grid_ is not None:
        assert cut in model.grid_
        assert model.grid_scores_.shape == model.grid_.shape
        assert np.nanmax(model.grid_scores_) == model.grid_scores_[list(model.grid_).index(cut)]


def test_infomap_tuned_on_train_identities(identities):
    pytest.importorskip("infomap")
    X_train, y_train, X_test, y_test = identities
    model = InfomapClusterer(grid=UNIT_GRID, random_state=0).fit(X_train, y_train)
    assert bcubed_fscore(y_test, model.predict(X_test))[2] > 0.86
    cosine = InfomapClusterer(metric="cosine", random_state=0).fit(X_train, y_train)
    assert bcubed_fscore(y_test, cosine.predict(X_test))[2] > 0.8


# --------------------------------------------------------------------------------------
# Chinese whispers


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_cw_clusterer_is_chinese_whispers_on_all_close_pairs_with_self_loops(identities, metric):
    X = identities[0].astype(np.float64)
    cut = 0.8 if metric == "l2" else 0.68
    i, j, _ = all_pairs(X, cut, metric)
    n = len(X)
    edge_index = np.vstack([np.r_[i, np.arange(n)], np.r_[j, np.arange(n)]])
    expected = chinese_whispers(edge_index, None, n, random_state=3)
    got = ChineseWhispersClusterer(threshold=cut, metric=metric, random_state=3).fit_predict(X)
    np.testing.assert_array_equal(got, expected)


def test_cw_clusterer_options(identities):
    X, y = identities[0], identities[1]
    exact = ChineseWhispersClusterer(threshold=0.8, random_state=0).fit_predict(X)
    # a kNN candidate set holding every pair closer than the cut gives the same graph
    with_k = ChineseWhispersClusterer(threshold=0.8, k=len(X) - 1, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(with_k, exact)
    few = ChineseWhispersClusterer(threshold=0.8, k=5, random_state=0).fit_predict(X)
    assert few.max() >= exact.max()  # fewer edges, no fewer clusters
    weighted = ChineseWhispersClusterer(threshold=0.8, weighting="similarity", random_state=0)
    assert bcubed_fscore(y, weighted.fit_predict(X))[2] > 0.8
    loose = ChineseWhispersClusterer(threshold=0.8, self_loops=False, random_state=0)
    assert bcubed_fscore(y, loose.fit_predict(X))[2] > 0.8
    with pytest.raises(ValueError, match="weighting"):
        ChineseWhispersClusterer(threshold=0.8, weighting="cosine").fit(X)


def test_cw_clusterer_matches_dlib(identities):
    """dlib's own face clustering (opt-in: needs ``pip install dlib-bin``), same cuts.

    Clear groups: the same partition. Synthetic identities: Chinese whispers
    varies from run to run by a few hundredths there, so the mean over
    three data sets is compared.
    """
    dlib = pytest.importorskip("dlib")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(7), [12, 10, 8, 6, 4, 2, 1])
    X = rng.normal(size=(7, 16))[y] + rng.normal(scale=0.05, size=(y.size, 16))
    ref = dlib.chinese_whispers_clustering([dlib.vector(row.tolist()) for row in X], 0.5)
    got = ChineseWhispersClusterer(threshold=0.5, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(got, first_appearance(np.array(ref)))
    ours, theirs = [], []
    for data_seed in range(3):
        X, y = make_identities(150, random_state=data_seed)
        X = X.astype(np.float64)
        labels = dlib.chinese_whispers_clustering([dlib.vector(r.tolist()) for r in X], 0.8)
        theirs.append(bcubed_fscore(y, np.array(labels))[2])
        for seed in range(3):
            model = ChineseWhispersClusterer(threshold=0.8, random_state=seed)
            ours.append(bcubed_fscore(y, model.fit_predict(X))[2])
    assert abs(np.mean(ours) - np.mean(theirs)) < 0.03, (ours, theirs)


# --------------------------------------------------------------------------------------
# Infomap


def test_infomap_clusterer_is_infomap_on_the_knn_graph():
    pytest.importorskip("infomap")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8)) * 3
    y = np.repeat(np.arange(6), [12, 10, 8, 6, 4, 2])
    X = centres[y] + rng.normal(scale=0.2, size=(y.size, 8))
    cut, k = 1.2, 20
    # independent kNN graph: each point's k nearest, pairs once, closer than the cut
    d = cdist(X, X)
    np.fill_diagonal(d, np.inf)
    nbr = np.argsort(d, axis=1)[:, :k]
    pairs = {(min(a, b), max(a, b)) for a in range(len(X)) for b in nbr[a] if d[a, b] <= cut}
    i, j = np.array(sorted(pairs)).T
    expected = infomap(np.vstack([i, j]), 1 - d[i, j] / 2, len(X), random_state=0)
    got = InfomapClusterer(threshold=cut, k=k, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, first_appearance(y))
    again = InfomapClusterer(threshold=cut, k=k, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(again, got)


def test_infomap_clusterer_validates_and_needs_the_package(monkeypatch):
    pytest.importorskip("infomap")
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match="threshold"):
        InfomapClusterer(threshold=2.0).fit(X)
    with pytest.raises(ValueError, match="threshold"):
        InfomapClusterer(threshold=-0.2, metric="cosine").fit(X)
    monkeypatch.setitem(sys.modules, "infomap", None)
    with pytest.raises(ModuleNotFoundError, match=r"linkage-gcn\[infomap\]"):
        InfomapClusterer(threshold=0.5).fit(X)


# --------------------------------------------------------------------------------------
# DBSCAN and HDBSCAN


def test_dbscan_min_samples_1_is_components_of_all_close_pairs(identities):
    X = identities[0].astype(np.float64)
    for metric, eps in (("l2", 0.75), ("cosine", 0.3)):
        i, j, _ = all_pairs(X, eps if metric == "l2" else 1 - eps, metric)
        got = DBSCANClusterer(eps=eps, metric=metric).fit_predict(X)
        np.testing.assert_array_equal(got, components(len(X), i, j))


@pytest.mark.parametrize(("metric", "eps"), [("l2", 0.75), ("cosine", 0.3)])
def test_dbscan_equals_scikit_learn_with_noise_as_singletons(identities, metric, eps):
    X = identities[0]
    X = np.vstack([X, X[:5]])  # exact duplicates are neighbours at distance 0
    expected = DBSCAN(eps=eps, min_samples=3, metric="euclidean" if metric == "l2" else metric)
    expected = noise_as_singletons(expected.fit_predict(X))
    got = DBSCANClusterer(eps=eps, min_samples=3, metric=metric).fit_predict(X)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_hdbscan_equals_scikit_learn_with_noise_as_singletons(identities, metric):
    X = identities[0]
    expected = HDBSCAN(
        min_cluster_size=3,
        min_samples=2,
        metric="euclidean" if metric == "l2" else metric,
        copy=True,
    ).fit_predict(X)
    assert (expected < 0).any()  # there is noise to turn into singletons
    got = HDBSCANClusterer(min_cluster_size=3, min_samples=2, metric=metric).fit_predict(X)
    np.testing.assert_array_equal(got, noise_as_singletons(expected))


def test_hdbscan_epsilon_tuning_skips_values_scikit_learn_cannot_run(identities):
    X_train, y_train = identities[0], identities[1]
    grid = np.r_[0.0, UNIT_GRID]
    model = HDBSCANClusterer(cluster_selection_epsilon="auto", grid=grid).fit(X_train, y_train)
    assert np.isnan(model.grid_scores_).any() and not np.isnan(model.grid_scores_[0])
    assert model.cluster_selection_epsilon_ in grid[~np.isnan(model.grid_scores_)]


# --------------------------------------------------------------------------------------
# Label-free defaults: Immich's DBSCAN, scikit-learn's HDBSCAN, FaceMap


@pytest.fixture(scope="module")
def loose_identities():
    """Noisy identities: at cosine distance 0.5 some faces are in no dense region."""
    X, y = make_identities(40, max_size=20, spread=1.0, separation=2.0, nuisance=0.0,
                           random_state=0)  # fmt: skip
    return X, y


def test_immich_defaults_are_dbscan_cosine_05_min_3_with_noise_as_singletons(loose_identities):
    X = loose_identities[0].astype(np.float64)
    X = X * np.random.default_rng(0).uniform(0.5, 3.0, size=(len(X), 1))  # not unit rows
    X = np.vstack([X, 2.0 * X[:4]])  # same directions: cosine distance 0
    # independent: scikit-learn's DBSCAN on all cosine distances, noise relabelled
    expected = DBSCAN(eps=0.5, min_samples=3, metric="cosine").fit_predict(X)
    assert (expected < 0).any() and expected.max() >= 5
    model = immich_defaults()
    assert isinstance(model, DBSCANClusterer)
    assert model.get_params() == {**DBSCANClusterer().get_params(), "eps": 0.5,
                                  "min_samples": 3, "metric": "cosine"}  # fmt: skip
    got = model.fit_predict(X)  # no labels: nothing is tuned
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, noise_as_singletons(expected))
    assert model.eps_ == 0.5 and model.grid_ is None


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_hdbscan_defaults_are_scikit_learns_defaults_with_noise_as_singletons(
    loose_identities, metric
):
    X = loose_identities[0]
    # scikit-learn's own defaults (min_cluster_size=5, min_samples=None, "eom", epsilon 0);
    # its default metric is the Euclidean one
    expected = HDBSCAN(copy=True) if metric == "l2" else HDBSCAN(metric="cosine", copy=True)
    expected = expected.fit_predict(X)
    assert (expected < 0).any() and expected.max() >= 2
    model = hdbscan_defaults(metric) if metric == "l2" else hdbscan_defaults()
    got = model.fit_predict(X)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, noise_as_singletons(expected))


def test_label_free_baselines_run_by_name_without_labels(loose_identities):
    X, _ = loose_identities
    assert list(LABEL_FREE_BASELINES) == ["immich-defaults", "hdbscan-defaults", "facemap"]
    for name, make in LABEL_FREE_BASELINES.items():
        model = make()
        assert make() is not model and repr(clone(model)) == repr(model)
        if isinstance(model, FaceMapClusterer):
            pytest.importorskip("infomap")
            model.set_params(k=30, window_size=5, random_state=0)
        labels = model.fit_predict(X)  # no y
        assert labels.shape == (len(X),) and labels.dtype == np.int64, name
        np.testing.assert_array_equal(labels, first_appearance(labels))


def reference_facemap_keep(sims, omega):
    """FaceMap's outlier_detect as its authors wrote it, one row and one window at a time.

    On the transition probabilities p = s / sum(s); a reference of no spread scores 0.
    """
    keep = []
    for s in np.asarray(sims, dtype=np.float64):
        p = s / s.sum()
        d = p[:-1] - p[1:]
        z = np.zeros(d.size)
        for j in range(d.size - omega, -1, -1):
            q = j + (omega + 1) // 2
            if q >= d.size:  # the last window is the whole reference: its score is 0
                continue
            sigma = d[j:].std()
            z[q] = abs(d[j : j + omega].mean() - d[j:].mean()) / sigma if sigma > 0 else 0.0
        keep.append(int(np.argmax(z)) + 1)  # neighbours 0 .. q*
    return np.array(keep)


def test_facemap_cut_matches_a_slow_reference_on_hand_made_curves():
    head, tail = [0.95, 0.94, 0.93, 0.92, 0.91], [0.40, 0.39, 0.38, 0.37, 0.36, 0.35, 0.34]
    sims = np.array([
        head + tail,                                      # one sharp drop after 5 neighbours
        [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3],  # plateaus
        [0.99, 0.5] + [0.45 - 0.01 * t for t in range(10)],  # an early drop
        [0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8],  # no drop at all
    ])  # fmt: skip
    omega = 4
    expected = reference_facemap_keep(sims, omega)
    np.testing.assert_array_equal(_facemap_keep(sims, omega), expected)
    # row 0 by hand: drops d = 0.01 but d[4] = 0.51; the largest score is the first window
    # that holds the big drop (j = 1: |0.135 - 0.06| / 0.15 = 0.5), marked at its middle
    # q = 1 + 2: neighbours 0 .. 3 are kept. A flat curve keeps one (the argmax of zeros).
    assert expected.tolist() == [4, 5, 3, 1]
    # scale-free: the scores of s and of p = s / sum(s) are the same
    np.testing.assert_array_equal(_facemap_keep(7.5 * sims, omega), expected)


@pytest.mark.parametrize(("k", "omega"), [(30, 5), (40, 20), (7, 5), (12, 1)])
def test_facemap_cut_matches_the_slow_reference_on_random_curves(k, omega, monkeypatch):
    import linkage_gcn.baselines as baselines

    rng = np.random.default_rng(k)
    same = rng.uniform(0.7, 0.95, size=(60, k // 3))
    other = rng.uniform(0.05, 0.45, size=(60, k - k // 3))
    sims = np.vstack([
        -np.sort(-rng.uniform(0.1, 1.0, size=(60, k)), axis=1),   # no structure
        -np.sort(-np.hstack([same, other]), axis=1),             # a switch point
    ]).astype(np.float32)  # fmt: skip
    expected = reference_facemap_keep(sims, omega)
    np.testing.assert_array_equal(_facemap_keep(sims, omega), expected)
    monkeypatch.setattr(baselines, "_FACEMAP_BLOCK", 7)  # rows in blocks: the same
    np.testing.assert_array_equal(_facemap_keep(sims, omega), expected)
    assert (expected >= 1).all() and (expected <= k).all()


@pytest.fixture(scope="module")
def separated_identities():
    X, y = make_identities(20, min_size=10, max_size=30, spread=0.3, separation=2.0,
                           nuisance=0.0, random_state=0)  # fmt: skip
    return X, y


def test_facemap_is_infomap_on_the_pruned_knn_graph(separated_identities):
    pytest.importorskip("infomap")
    X, _ = separated_identities
    k, omega = 30, 5
    # independent: brute-force cosine kNN (the item itself left out), the reference cut,
    # weights p = s / sum(s) over the k neighbours, undirected Infomap
    x = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = x @ x.T
    np.fill_diagonal(cos, -np.inf)
    nbr = np.argsort(-cos, axis=1, kind="stable")[:, :k]
    sims = np.take_along_axis(cos, nbr, axis=1)
    assert (sims > 0).all()
    keep = reference_facemap_keep(sims, omega)
    p = sims / sims.sum(axis=1, keepdims=True)
    src = np.concatenate([np.full(c, i) for i, c in enumerate(keep)])
    dst = np.concatenate([nbr[i, :c] for i, c in enumerate(keep)])
    w = np.concatenate([p[i, :c] for i, c in enumerate(keep)])
    expected = infomap(np.vstack([src, dst]), w, len(X), random_state=0, num_trials=5)
    model = FaceMapClusterer(k=k, window_size=omega, random_state=0)
    got = model.fit_predict(X)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.int64 and model.n_features_in_ == X.shape[1]


def test_facemap_recovers_well_separated_identities(separated_identities):
    pytest.importorskip("infomap")
    X, y = separated_identities
    model = FaceMapClusterer(k=30, window_size=5, random_state=0)
    labels = model.fit_predict(X)  # no labels
    assert bcubed_fscore(y, labels)[2] > 0.9
    np.testing.assert_array_equal(model.fit(X).predict(X), labels)
    # the paper's defaults (k=256, window 20) on the same set, fewer neighbours than k
    assert FaceMapClusterer(random_state=0).fit_predict(X).shape == y.shape


def test_facemap_parameters_are_declared():
    declared = FaceMapClusterer._parameter_constraints
    assert set(declared) == set(FaceMapClusterer._get_param_names())
    rules = list(PARAMS.values())
    assert all(any(rule is r for r in rules) for rule in declared.values())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": 2.5}, "k must be an integer"),
        ({"k": 21}, r"k must be at least window_size \+ 2 = 22 .*got k=21"),
        ({"k": 9, "window_size": 8}, r"k must be at least window_size \+ 2 = 10 .*got k=9"),
        ({"window_size": 0}, "window_size must be an integer >= 1"),
        ({"num_trials": 0}, "num_trials must be an integer >= 1"),
        ({"random_state": "seed"}, "random_state must be None, an int"),
    ],
)
def test_facemap_bad_parameters_are_named(params, match, monkeypatch):
    import linkage_gcn.baselines as baselines

    def no_search(*args, **kwargs):
        raise AssertionError("searched before validating")

    monkeypatch.setattr(baselines, "knn", no_search)
    X = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match=match):
        FaceMapClusterer(**params).fit(X)


def test_facemap_bad_data_is_refused_with_a_clear_error(monkeypatch):
    pytest.importorskip("infomap")
    X, y = make_identities(12, random_state=0)
    model = FaceMapClusterer(k=30, window_size=5)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        model.fit(bad)
    with pytest.raises(ValueError, match=r"X must be a 2-D array.*1-D"):
        model.fit(X[:, 0])
    with pytest.raises(ValueError, match=r"1 all-zero row\(s\)"):
        model.fit(np.vstack([X, np.zeros(X.shape[1])]))
    with pytest.raises(ValueError, match=r"X has 7 rows.*window_size=5.*at least .* = 8"):
        model.fit(X[:7])
    with pytest.raises(ValueError, match=rf"y has {len(y) - 1} entries"):  # unused, but checked
        model.fit(X, y[:-1])
    with pytest.raises(NotFittedError):
        clone(model).predict(X)
    with pytest.raises(ValueError, match="features"):
        clone(model).fit(X).predict(X[:, :3])
    monkeypatch.setitem(sys.modules, "infomap", None)
    with pytest.raises(ModuleNotFoundError, match=r"linkage-gcn\[infomap\]"):
        FaceMapClusterer().fit(X)


# --------------------------------------------------------------------------------------
# scikit-learn behaviour shared by all


ALL = [
    KNNThresholdClusterer(threshold=0.7),
    ChineseWhispersClusterer(threshold=0.5, random_state=0),
    DBSCANClusterer(eps=0.5),
    HDBSCANClusterer(),
]


@pytest.mark.parametrize("model", ALL, ids=lambda m: type(m).__name__)
def test_sklearn_conventions(model):
    X = np.random.default_rng(0).normal(size=(30, 4))
    clone(model)
    assert type(model).__name__ in repr(model)
    with pytest.raises(NotFittedError):
        clone(model).predict(X)
    labels = clone(model).fit_predict(X)
    np.testing.assert_array_equal(labels, clone(model).fit(X).predict(X))
    with pytest.raises(ValueError, match="features"):
        clone(model).fit(X).predict(X[:, :3])
    with pytest.raises(ValueError, match="metric"):
        clone(model).set_params(metric="manhattan").fit(X)


@pytest.mark.parametrize(
    "model",
    [KNNThresholdClusterer(), ChineseWhispersClusterer(), DBSCANClusterer()],
    ids=lambda m: type(m).__name__,
)
def test_auto_needs_labels_and_warns_at_the_edge_of_the_grid(model):
    X = np.random.default_rng(0).normal(size=(30, 4))
    with pytest.raises(ValueError, match="needs labels"):
        clone(model).fit(X)
    y = np.arange(30)  # every item alone: the tightest cut wins
    grid = [0.1, 0.2, 0.3] if model.metric == "l2" else [0.99, 0.995, 0.999]
    if isinstance(model, KNNThresholdClusterer):
        grid = [0.2, 0.3, 0.999]
    with pytest.warns(UserWarning, match="edge of the grid"):
        clone(model).set_params(grid=grid).fit(X, y)


def test_knn_edges_unchanged():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    edge_index, sim = knn_edges(X, 1, metric="l2")
    assert edge_index.tolist() == [[0, 1], [1, 2]]
    np.testing.assert_allclose(sim, [-np.hypot(0.1, 0.1), -np.hypot(0.9, 0.9)])


# --------------------------------------------------------------------------------------
# Parameters: one declaration each; bad input refused by name before any work

CLASSES = [KNNThresholdClusterer, ChineseWhispersClusterer, InfomapClusterer, DBSCANClusterer,
           HDBSCANClusterer]  # fmt: skip


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_parameter_is_validated_from_its_declaration(cls):
    declared = cls._parameter_constraints
    assert set(declared) == set(cls._get_param_names())
    assert all(any(rule is r for r in PARAMS.values()) for rule in declared.values())


# (class, parameter, bad value, message); every one is refused by fit before any search
BAD_PARAMETERS = [
    (KNNThresholdClusterer, "k", 0, "k must be an integer >= 1"),
    (KNNThresholdClusterer, "threshold", 1.5, r"threshold must be a number in \[-1, 1\].*cosine"),
    (KNNThresholdClusterer, "threshold", np.nan, "threshold must be a finite number or 'auto'"),
    (KNNThresholdClusterer, "grid", [[0.5, 0.6]], "grid must be a non-empty 1-D sequence"),
    (ChineseWhispersClusterer, "threshold", -0.1, r"threshold must be a number in \[0, inf\).*l2"),
    (ChineseWhispersClusterer, "self_loops", "yes", "self_loops must be True or False"),
    (ChineseWhispersClusterer, "max_iter", -1, "max_iter must be an integer >= 0"),
    (ChineseWhispersClusterer, "n_blocks", 0, "n_blocks must be an integer >= 1"),
    (ChineseWhispersClusterer, "k", 0, "k must be an integer >= 1"),
    (ChineseWhispersClusterer, "weighting", "heavy", "unknown weighting 'heavy'"),
    (ChineseWhispersClusterer, "random_state", "seed", "random_state must be None, an int"),
    (InfomapClusterer, "num_trials", 0, "num_trials must be an integer >= 1"),
    (InfomapClusterer, "markov_time", 0, r"markov_time must be a number in \(0, inf\)"),
    (DBSCANClusterer, "eps", -1, "eps must be a number in"),
    (DBSCANClusterer, "min_samples", 0, "min_samples must be an integer >= 1"),
    (DBSCANClusterer, "n_jobs", "all", "n_jobs must be an integer"),
    (DBSCANClusterer, "n_jobs", 0, "n_jobs must be None or a non-zero integer"),
    (HDBSCANClusterer, "min_cluster_size", 1, "min_cluster_size must be an integer >= 2"),
    (HDBSCANClusterer, "cluster_selection_method", "tree", "unknown cluster_selection_method"),
    (HDBSCANClusterer, "cluster_selection_epsilon", "big", "cluster_selection_epsilon must be"),
]


@pytest.mark.parametrize(
    ("cls", "name", "value", "match"),
    BAD_PARAMETERS,
    ids=[f"{c.__name__}-{n}-{v!r}" for c, n, v, _ in BAD_PARAMETERS],
)
def test_bad_parameters_are_named(cls, name, value, match, monkeypatch):
    import linkage_gcn.baselines as baselines

    def no_search(*args, **kwargs):
        raise AssertionError("searched before validating")

    monkeypatch.setattr(baselines, "knn", no_search)
    monkeypatch.setattr(baselines, "_radius_pairs", no_search)
    X = np.random.default_rng(0).normal(size=(12, 3))
    params = {"threshold": 0.5} if "threshold" in cls._get_param_names() else {}
    if name == "markov_time":
        pytest.importorskip("infomap")
    with pytest.raises(ValueError, match=match):
        cls(**{**params, name: value}).fit(X)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_bad_data_is_refused_with_a_clear_error(cls):
    if cls is InfomapClusterer:
        pytest.importorskip("infomap")
    X, y = make_identities(12, random_state=0)
    model = cls().set_params(**{cls._cut: "auto"})
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        model.fit(bad, y)
    with pytest.raises(ValueError, match="at least 2"):
        model.fit(X[:1], y[:1])
    with pytest.raises(ValueError, match=rf"y has {len(y) - 1} entries but {len(y)}"):
        model.fit(X, y[:-1])
    with pytest.raises(ValueError, match=rf"y has {len(y) - 1} entries"):  # even when unused
        cls().set_params(**{cls._cut: 0.5}).fit(X, y[:-1])
    zero = np.vstack([X, np.zeros(X.shape[1])])
    with pytest.raises(ValueError, match=r"1 all-zero row\(s\) \(first: row \d+\)"):
        cls(metric="cosine").set_params(**{cls._cut: "auto"}).fit(zero, np.r_[y, -5])


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_string_identity_labels_are_taken_as_the_estimator_takes_them(cls):
    if cls is InfomapClusterer:
        pytest.importorskip("infomap")
    X, y = make_identities(15, random_state=1)
    names = np.array([f"person {i:02d}" for i in range(y.max() + 1)])[y]
    codes = np.unique(names, return_inverse=True)[1]  # independent: sorted names -> 0 .. C-1
    params = {cls._cut: "auto"}
    if cls().metric == "l2":  # unit-norm identities: their own distance grid
        params["grid"] = UNIT_GRID if cls is not HDBSCANClusterer else np.r_[0.0, UNIT_GRID]
    if "random_state" in cls._get_param_names():
        params["random_state"] = 0
    by_name = cls(**params).fit(X, names)
    by_code = cls(**params).fit(X, codes)
    assert getattr(by_name, cls._cut + "_") == getattr(by_code, cls._cut + "_")
    np.testing.assert_array_equal(by_name.grid_scores_, by_code.grid_scores_)
    np.testing.assert_array_equal(by_name.predict(X), by_code.predict(X))


def test_a_cut_outside_its_metric_is_refused():
    X = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"threshold must be a number in \[-1, 1\], got 5"):
        radius_edges(X, 5, metric="cosine")
    with pytest.raises(ValueError, match=r"eps must be a number in \[0, 2\], got 3.*cosine"):
        DBSCANClusterer(eps=3, metric="cosine").fit(X)
    with pytest.raises(ValueError, match=r"threshold must be a finite number, got nan"):
        KNNThresholdClusterer(grid=[0.5, np.nan]).fit(X, np.arange(10))


# --------------------------------------------------------------------------------------
# The LFW yardsticks of shared/data/README.md (raw dlib descriptors, cuts tuned on train)


@pytest.fixture(scope="module")
def lfw_raw(lfw_dir):
    sets = {}
    for subset in ("train", "test"):
        path = lfw_dir / subset / "features_raw.npy"
        if not path.exists():
            pytest.skip("the raw LFW dlib descriptors are not available")
        sets[subset] = (np.load(path), np.load(lfw_dir / subset / "labels.npy"))
    return sets


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "cut", "target", "pair_target"),
    [
        (lambda: KNNThresholdClusterer(k=10, metric="l2"), 0.45, 0.920, 0.870),
        (lambda: DBSCANClusterer(), 0.45, 0.918, 0.865),
        (lambda: HDBSCANClusterer(), 0.0, 0.927, 0.986),
        (lambda: ChineseWhispersClusterer(random_state=0), 0.475, 0.928, None),
        (lambda: InfomapClusterer(random_state=0), None, 0.933, None),
    ],
    ids=["threshold", "dbscan", "hdbscan", "chinese-whispers", "infomap"],
)
def test_lfw_yardsticks(lfw_raw, make, cut, target, pair_target):
    (X_train, y_train), (X_test, y_test) = lfw_raw["train"], lfw_raw["test"]
    model = make()
    if isinstance(model, InfomapClusterer):
        pytest.importorskip("infomap")
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fitted = time.perf_counter()
    labels = model.predict(X_test)
    done = time.perf_counter()
    tuned = getattr(model, model._cut + "_")
    p, r, f = bcubed_fscore(y_test, labels)
    pair_f = pairwise_fscore(y_test, labels)[2]
    print(
        f"\n{type(model).__name__}: cut {tuned:g}, B-Cubed P {p:.4f} R {r:.4f} F {f:.4f}, "
        f"pairwise F {pair_f:.4f}, fit {fitted - start:.1f} s, predict {done - fitted:.1f} s"
    )
    if cut is not None:
        assert tuned == pytest.approx(cut)
    else:  # Infomap: 0.4625 and 0.475 tie on train (F 0.9347 / 0.9343 with seed 0)
        assert tuned in (0.4625, 0.475)
    assert f == pytest.approx(target, abs=0.005)
    if pair_target is not None:
        assert pair_f == pytest.approx(pair_target, abs=0.005)


@pytest.mark.slow
def test_lfw_chinese_whispers_matches_dlib_figures(lfw_raw):
    """The README's dlib figures at fixed cuts, within 0.005 (dlib itself: 0.933, 0.928, 0.899)."""
    X, y = lfw_raw["test"]
    for cut, target in ((0.45, 0.933), (0.475, 0.928), (0.5, 0.899)):
        for seed in range(2):
            model = ChineseWhispersClusterer(threshold=cut, random_state=seed)
            assert bcubed_fscore(y, model.fit_predict(X))[2] == pytest.approx(target, abs=0.005)
