import copy

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import make_identities, split_identities
from linkage_gcn.knn import knn
from linkage_gcn.metrics import bcubed_fscore

TINY = dict(
    k_at_hop=(6, 3),
    active_connection=3,
    hidden_channels=(16, 16),
    epochs=1,
    batch_size=8,
    verbose=False,
)


@pytest.fixture(scope="module")
def data():
    X, y = make_identities(60, max_size=15, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    return X[train], y[train], X[test], y[test]


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return LinkageClusterer(random_state=0, **TINY).fit(X, y)


def test_fit_predict_shapes_and_types(fitted, data):
    X, _, Xt, _ = data
    labels = fitted.predict(Xt)
    assert (
        isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.shape == (len(Xt),)
    )
    assert labels.min() == 0 and labels.max() == len(np.unique(labels)) - 1
    edge_index, scores = fitted.predict_edges(Xt)
    assert edge_index.shape[0] == 2 and (edge_index[0] < edge_index[1]).all()
    assert scores.shape == (edge_index.shape[1],) and ((scores >= 0) & (scores <= 1)).all()
    assert fitted.labels_.shape == (len(X),)
    assert 0 < fitted.threshold_ < 1
    assert fitted.n_features_in_ == X.shape[1]
    assert len(fitted.history_) == 1 and {"loss", "precision", "recall"} <= set(fitted.history_[0])


def test_training_clusters_are_better_than_singletons():
    X, y = make_identities(200, max_size=30, random_state=1)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    est = LinkageClusterer(
        k_at_hop=(10, 5), active_connection=5, hidden_channels=(32, 32), epochs=3, lr=0.05,
        lr_decay=0.5, sampler="riws", loss="cb-graph", pivot_similarity=True, random_state=0,
        verbose=False,
    )  # fmt: skip
    pred = est.fit(X[train], y[train]).predict(X[test])
    singletons = bcubed_fscore(y[test], np.arange(len(test)))[2]
    assert bcubed_fscore(y[test], pred)[2] > singletons + 0.1


def test_reproducible_and_leaves_global_rng_alone(data):
    X, y, Xt, _ = data
    state = torch.get_rng_state()
    a = LinkageClusterer(random_state=3, sampler="riws", **TINY).fit(X, y)
    assert torch.equal(state, torch.get_rng_state())
    b = LinkageClusterer(random_state=3, sampler="riws", **TINY).fit(X, y)
    np.testing.assert_array_equal(a.predict_edges(Xt)[1], b.predict_edges(Xt)[1])
    assert a.threshold_ == b.threshold_


def test_fit_predict_returns_training_clusters(data):
    X, y, _, _ = data
    est = LinkageClusterer(random_state=0, **TINY)
    labels = est.fit_predict(X, y)
    np.testing.assert_array_equal(labels, est.labels_)


def test_string_labels_are_accepted(data):
    X, y, _, _ = data
    names = np.array([f"person_{v}" for v in y])
    a = LinkageClusterer(random_state=0, **TINY).fit(X, names)
    assert a.labels_.shape == (len(X),)


def test_precomputed_knn_index(data, fitted):
    _, _, Xt, _ = data
    index, _ = knn(Xt, 6)
    np.testing.assert_array_equal(fitted.predict(Xt, knn_index=index), fitted.predict(Xt))
    with pytest.raises(ValueError, match="knn_index has 2 neighbours per row but 6 are needed"):
        fitted.predict(Xt, knn_index=index[:, :2])
    with pytest.raises(ValueError, match="rows but x has"):
        fitted.predict(Xt, knn_index=index[:-1])


def test_single_sample_is_one_cluster(fitted, data):
    assert fitted.predict(data[2][:1]).tolist() == [0]


def test_params_clone_and_set_params():
    est = LinkageClusterer(k_at_hop=(10, 4), sampler="rs", loss="focal")
    params = est.get_params()
    assert params["k_at_hop"] == (10, 4) and params["sampler"] == "rs"
    cloned = clone(est)
    assert cloned.get_params() == params
    est.set_params(threshold=0.7)
    assert est.threshold == 0.7
    assert "sampler='rs'" in repr(est)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"sampler": "smote"}, "unknown sampler"),
        ({"loss": "hinge"}, "unknown loss"),
        ({"merge": "louvain"}, "unknown merge"),
        ({"metric": "cityblock"}, "unknown metric"),
        ({"pool": "median"}, "unknown pool"),
        ({"k_at_hop": (5,)}, "k_at_hop"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": "best"}, "threshold"),
        ({"epochs": 0}, "epochs"),
        ({"gamma": 0.5}, "gamma"),
        ({"n_neighbors": 3}, "narrower"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_parameters_are_named(params, match, data):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=match):
        LinkageClusterer(**{**TINY, **params}).fit(X, y)


def test_bad_input(fitted, data):
    X, y, Xt, _ = data
    est = LinkageClusterer(**TINY)
    with pytest.raises(ValueError, match="requires y"):
        est.fit(X)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="y has 5 entries"):
        est.fit(X, y[:5])
    with pytest.raises(ValueError, match="single identity"):
        est.fit(X, np.zeros(len(X), dtype=int))
    with pytest.raises(ValueError, match="features, but LinkageClusterer is expecting"):
        fitted.predict(Xt[:, :10])
    with pytest.raises(NotFittedError):
        LinkageClusterer().predict(Xt)


def test_save_and_load(tmp_path, fitted, data):
    Xt = data[2]
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = LinkageClusterer.load(path)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(loaded.predict(Xt), fitted.predict(Xt))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        fitted.save(path)
    assert path.read_bytes() == before  # nothing was lost
    fitted.save(path, overwrite=True)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        LinkageClusterer.load(junk)
    with pytest.raises(FileNotFoundError):
        LinkageClusterer.load(tmp_path / "missing.pt")
    with pytest.raises(NotFittedError):
        LinkageClusterer().save(tmp_path / "unfitted.pt")


@pytest.mark.parametrize("sampler", ["topk", "rs", "riws"])
@pytest.mark.parametrize("loss", ["ce", "cb", "cb-graph", "focal"])
def test_every_sampler_and_loss_trains(sampler, loss, data):
    X, y, Xt, _ = data
    est = LinkageClusterer(sampler=sampler, loss=loss, random_state=0, **TINY).fit(X, y)
    assert np.isfinite(est.history_[0]["loss"])
    assert est.predict(Xt).shape == (len(Xt),)


def test_propagation_merge(data, fitted):
    Xt = data[2]
    est = copy.deepcopy(fitted).set_params(merge="propagation", max_size=20, step=0.5)
    labels = est.predict(Xt)
    assert labels.shape == (len(Xt),)
    assert np.bincount(labels).max() <= 20


EXPECTED_FAILED_CHECKS = {
    "check_clustering": "fit needs identity labels y: a supervised clusterer",
    "check_estimators_dtypes": "all-zero rows have no cosine similarity: a clear error",
    "check_methods_sample_order_invariance": "cluster ids are arbitrary; numbering follows order",
    "check_methods_subset_invariance": "clusters of a subset differ from those of the whole set",
}


@parametrize_with_checks(
    [LinkageClusterer(random_state=0, **{**TINY, "k_at_hop": (4, 2), "active_connection": 2})],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
