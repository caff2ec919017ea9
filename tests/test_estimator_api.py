"""The estimator's public collaborator API and its boundaries on small or odd inputs."""

import copy
import importlib.util
import logging

import numpy as np
import pytest
import torch

from linkage_gcn import LinkageClusterer
from linkage_gcn import estimator as estimator_module
from linkage_gcn._params import PARAMS, validation_skipped
from linkage_gcn.datasets import make_identities
from linkage_gcn.merge import constrained_components, threshold_components
from linkage_gcn.preprocessing import apply_preprocessing
from linkage_gcn.samplers import TopKSampler

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
    X, y = make_identities(40, max_size=12, random_state=1)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return LinkageClusterer(random_state=0, merge="threshold", **TINY).fit(X, y)


def test_resolved_params_follow_the_declarations():
    est = LinkageClusterer(k_at_hop=[10, 4], active_connection=3, sampler="riws", gamma=2.5)
    cfg = est.resolved_params()
    for name in est.get_params():
        assert name in cfg
    assert (cfg["k1"], cfg["k2"], cfg["k_at_hop"]) == (10, 4, (10, 4))
    assert cfg["device"] == torch.device("cpu") or cfg["device"].type == "cuda"
    # the sampler's pool sets the fit width, the k1 nearest the predict width
    assert cfg["n_neighbors_fit"] == 25 and cfg["n_neighbors_predict"] == 10
    assert cfg["sampler"].pool_size() == 25
    with pytest.raises(ValueError, match="lr_decay"):
        LinkageClusterer(lr_decay=1.5).resolved_params()
    with pytest.raises(ValueError, match=PARAMS["lr_decay"].interval().replace("[", r"\[")):
        LinkageClusterer(lr_decay=-1).resolved_params()


def test_preprocess_is_what_predict_feeds_the_model(data):
    X, y = data
    est = LinkageClusterer(random_state=0, preprocessing="center-l2", **TINY).fit(X, y)
    out = est.preprocess(X[:5])
    mean = torch.from_numpy(est.preprocessing_mean_)
    expected = apply_preprocessing(torch.from_numpy(X[:5]).float(), "center-l2", mean)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="features"):
        est.preprocess(X[:5, :3])
    with pytest.raises(ValueError, match="NaN"):
        est.preprocess(np.full((2, X.shape[1]), np.nan))


def test_link_threshold_is_the_cut_predict_uses(fitted):
    est = copy.deepcopy(fitted)
    assert est.link_threshold() == est.threshold_
    est.set_params(threshold=0.8)
    assert est.link_threshold() == 0.8
    with pytest.raises(ValueError, match="threshold"):
        est.set_params(threshold=1.5).link_threshold()


def test_merge_rule_is_the_registry_merge(fitted, data):
    X, _ = data
    edge_index, scores = fitted.predict_edges(X)
    rule = fitted.merge_rule()
    np.testing.assert_array_equal(
        rule(edge_index, scores, len(X), 0.6), threshold_components(edge_index, scores, len(X), 0.6)
    )
    names = np.full(len(X), -1)
    names[:2] = [0, 1]
    constrained = fitted.merge_rule(constrained=True)
    np.testing.assert_array_equal(
        constrained(edge_index, scores, len(X), 0.6, names),
        constrained_components(edge_index, scores, len(X), 0.6, names),
    )
    # the same cut and merge as predict
    cut = fitted.link_threshold()
    np.testing.assert_array_equal(
        rule(edge_index, scores, len(X), cut), fitted.cluster_edges(edge_index, scores, len(X))
    )


def test_collaborators_run_without_revalidation(data, monkeypatch):
    X, y = data
    seen = []
    real = estimator_module.train_linkage_gcn

    def spy(*args, **kwargs):
        seen.append(validation_skipped())
        return real(*args, **kwargs)

    monkeypatch.setattr(estimator_module, "train_linkage_gcn", spy)
    LinkageClusterer(random_state=0, **TINY).fit(X, y)
    assert seen == [True] and not validation_skipped()


def test_a_small_labelled_set_trains_on_the_hops_it_holds():
    X, y = make_identities(3, min_size=2, max_size=2, random_state=0)  # six faces
    est = LinkageClusterer(
        k_at_hop=(8, 3), active_connection=5, sampler="topk", hidden_channels=(8,), epochs=1,
        random_state=0, verbose=False,
    )  # fmt: skip
    with pytest.warns(UserWarning) as caught:
        est.fit(X, y)
    message = str(caught[0].message)
    assert "X has 6 samples, so each has 5 neighbours" in message
    assert "with k_at_hop=(5, 3) instead of k_at_hop=(8, 3);" in message  # only what changed
    assert est.get_params()["k_at_hop"] == (8, 3)  # the parameter is untouched
    assert est.predict(X).shape == (6,)


def test_a_small_set_shrinks_the_pool_of_riws():
    X, y = make_identities(4, min_size=3, max_size=3, random_state=0)  # twelve faces
    est = LinkageClusterer(
        k_at_hop=(10, 3), sampler="riws", gamma=2.0, active_connection=3, hidden_channels=(8,),
        epochs=1, random_state=0, verbose=False,
    )  # fmt: skip
    # 11 neighbours each: floor(2 * k1) <= 11 -> k1 = 5
    with pytest.warns(UserWarning, match=r"k_at_hop=\(5, 3\)"):
        est.fit(X, y)


def test_a_set_too_small_for_a_sampler_object_is_refused_before_work(monkeypatch):
    X, y = make_identities(3, min_size=2, max_size=2, random_state=0)

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(estimator_module, "train_linkage_gcn", no_work)
    est = LinkageClusterer(k_at_hop=(8, 3), sampler=TopKSampler(8), hidden_channels=(8,))
    with pytest.raises(ValueError, match=r"X has 6 samples, so each has 5 neighbours.*TopK"):
        est.fit(X, y)


def test_a_set_too_small_for_any_pool_is_refused():
    X, _ = make_identities(1, min_size=1, max_size=1, random_state=0)
    X2 = np.vstack([X, X[:1] + 0.1])
    est = LinkageClusterer(k_at_hop=(8, 3), sampler="riws", gamma=2.0, hidden_channels=(8,))
    with pytest.raises(ValueError, match=r"2 samples.*even with k_at_hop\[0\] = 1"):
        est.fit(X2, [0, 1])


def test_a_missing_optional_merge_package_is_named_before_any_work(data, monkeypatch):
    X, y = data
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "infomap" else real(name, *a)
    )

    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(estimator_module, "knn", no_work)
    with pytest.raises(ValueError, match=r"merge='infomap' needs the optional 'infomap'"):
        LinkageClusterer(merge="infomap", **TINY).fit(X, y)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda e, s, n: (e, s[:-1], n), "scores"),
        (lambda e, s, n: (e, np.where(np.arange(s.size) == 0, np.nan, s), n), "NaN"),
        (lambda e, s, n: (e, s, int(e.max())), "outside"),
        (lambda e, s, n: (e[:1], s, n), "edge_index"),
    ],
)
def test_cluster_edges_refuses_inconsistent_links(edit, match, fitted, data):
    X, _ = data
    edge_index, scores = fitted.predict_edges(X)
    e, s, n = edit(edge_index, scores, len(X))
    with pytest.raises(ValueError, match=match):
        fitted.cluster_edges(e, s, n)


def test_fit_logs_its_stages(data, caplog):
    X, y = data
    with caplog.at_level(logging.INFO, logger="linkage_gcn"):
        LinkageClusterer(random_state=0, **TINY).fit(X, y)
    text = caplog.text
    assert "fit: " in text and "merged" in text
