import copy
import logging
import zipfile

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch_geometric.loader import DataLoader

from linkage_gcn import LinkageClusterer
from linkage_gcn import estimator as estimator_module
from linkage_gcn.datasets import make_identities
from linkage_gcn.ips import IPSDataset, iter_ips_batches
from linkage_gcn.knn import knn
from linkage_gcn.merge import pool_pair_scores, threshold_components
from linkage_gcn.metrics import bcubed_fscore
from linkage_gcn.model_selection import split_identities

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
    with pytest.raises(ValueError, match="rows but X has"):
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
        ({"max_size": 2.5}, "max_size must be an integer"),
        ({"max_size": "900"}, "max_size must be an integer"),
        ({"step": 0}, r"step must be a number in \(0, 1\]"),
        ({"step": 1.5}, "step must be a number"),
        ({"merge": "propagation", "step": -0.1}, "step"),
        ({"hidden_channels": 16}, r"hidden_channels must be a sequence .* write \(16,\)"),
        ({"hidden_channels": "64"}, "hidden_channels must be a sequence of layer sizes"),
        ({"hidden_channels": (16, 0)}, r"hidden_channels\[1\] must be an integer >= 1"),
        ({"dropout": 1.0}, "dropout"),
        ({"pivot_similarity": "yes"}, "pivot_similarity must be True or False"),
        ({"verbose": "loud"}, "verbose must be True or False"),
        ({"random_state": "seed"}, "random_state must be None, an int"),
        ({"knn_backend": "annoy"}, "unknown knn_backend"),
        ({"inference_batch_size": 0}, "inference_batch_size"),
        ({"precision": "fp16"}, "unknown precision"),
        ({"lr": 0}, "lr"),
        ({"lr_decay": 2}, "lr_decay"),
    ],
)
def test_bad_parameters_are_named_before_any_work(params, match, data, monkeypatch):
    X, y, _, _ = data

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the parameters were checked")

    for name in ("knn", "train_linkage_gcn", "predict_links"):
        monkeypatch.setattr(estimator_module, name, no_work)
    with pytest.raises(ValueError, match=match):
        LinkageClusterer(**{**TINY, **params}).fit(X, y)


def test_every_parameter_has_a_validation_rule():
    # a new parameter needs its declaration in linkage_gcn._params.PARAMS
    from linkage_gcn._params import PARAMS

    params = set(LinkageClusterer().get_params())
    assert params <= set(PARAMS), sorted(params - set(PARAMS))


@pytest.mark.parametrize(
    "params", [{"max_size": 2.5}, {"step": 0}, {"hidden_channels": 16}, {"threshold": "best"}]
)
def test_bad_parameters_are_named_at_predict_too(params, fitted, data):
    est = copy.deepcopy(fitted).set_params(**params)
    name = next(iter(params))
    with pytest.raises(ValueError, match=name):
        est.predict(data[2])


def test_bad_input(fitted, data):
    X, y, Xt, _ = data
    est = LinkageClusterer(**TINY)
    with pytest.raises(ValueError, match="needs a teacher"):
        LinkageClusterer(teacher=None, **TINY).fit(X)
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
    with pytest.raises(ValueError, match="X is None"):
        fitted.predict(None)
    with pytest.raises(ValueError, match="X is None"):
        fitted.predict_edges(None)
    with pytest.raises(ValueError, match="X is None"):
        est.fit(None, y)
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) or \(N, 1\)"):
        est.fit(X, np.stack([y, y], 1))
    with pytest.raises(ValueError, match="y mixes ids that cannot be compared"):
        est.fit(X, np.array([1, "a"] * (len(X) // 2) + [2] * (len(X) % 2), dtype=object))


def test_diverging_training_is_named(data):
    X, y, _, _ = data

    def nan_loss(logits, target):
        return logits.sum() * float("nan")

    est = LinkageClusterer(loss=nan_loss, **TINY)
    with pytest.raises(FloatingPointError, match=r"epoch 1/1, step 1/.*lower lr .*another loss"):
        est.fit(X, y)
    assert not hasattr(est, "model_")


def test_float_labels_must_be_whole_numbers(data, monkeypatch):
    X, y, _, _ = data
    with pytest.raises(ValueError, match=r"y must hold integer identities, got non-integer floats"):
        LinkageClusterer(**TINY).fit(X, y + 0.5)  # never truncated into the wrong identities
    ints = LinkageClusterer(random_state=0, **TINY).fit(X, y)
    floats = LinkageClusterer(random_state=0, **TINY).fit(X, y.astype(np.float64))
    column = LinkageClusterer(random_state=0, **TINY).fit(X, torch.from_numpy(y)[:, None])
    np.testing.assert_array_equal(ints.labels_, floats.labels_)
    np.testing.assert_array_equal(ints.labels_, column.labels_)


def test_estimator_scores_equal_the_public_blocks(fitted, data):
    """The defaults (pivot_similarity=True) can be fed through the public IPS blocks."""
    Xt = data[2]
    k1, k2 = fitted.k_at_hop
    u = fitted.active_connection
    index, _ = knn(Xt, max(k1, k2, u))
    want_edges, want_scores = fitted.predict_edges(Xt)
    model = fitted.model_.eval()
    x = torch.from_numpy(Xt)
    batches = {
        "iter_ips_batches": iter_ips_batches(
            x, index, index[:, :k1], k2=k2, active_connection=u, batch_size=32,
            pivot_similarity=True,
        ),
        "IPSDataset + PyG DataLoader": DataLoader(
            IPSDataset(Xt, index, k_at_hop=(k1, k2), active_connection=u, pivot_similarity=True),
            batch_size=32,
        ),
    }  # fmt: skip
    for how, loader in batches.items():
        src, dst, scores = [], [], []
        with torch.no_grad():
            for b in loader:
                logits = model(b.x, b.edge_index, b.hop1_index)
                src.append(b.n_id[b.hop1_pivot_index])
                dst.append(b.n_id[b.hop1_index])
                scores.append(torch.softmax(logits, 1)[:, 1])
        edges, pooled = pool_pair_scores(
            torch.cat(src), torch.cat(dst), torch.cat(scores), num_nodes=len(Xt)
        )
        np.testing.assert_array_equal(edges.numpy(), want_edges, err_msg=how)
        np.testing.assert_allclose(pooled.numpy(), want_scores, atol=1e-6, err_msg=how)


def test_info_log_of_each_stage(data, caplog):
    X, y, Xt, _ = data
    caplog.set_level(logging.INFO, logger="linkage_gcn")
    est = LinkageClusterer(random_state=0, **{**TINY, "epochs": 2}).fit(X, y)
    ours = ("linkage_gcn.estimator", "linkage_gcn.training")
    messages = [r.getMessage() for r in caplog.records if r.name in ours]
    assert messages[0].startswith(f"fit: {len(X)} samples, {X.shape[1]} features")
    assert [m.split(":")[0] for m in messages[1:3]] == ["epoch 1/2", "epoch 2/2"]
    assert messages[3].startswith(f"scored {len(X) * 6} links of {len(X)} items")
    assert messages[4].startswith(f"link cut calibrated on training set: {est.threshold_:.4f}")
    n_clusters = est.labels_.max() + 1
    assert messages[5].startswith(f"merged {len(X)} items into {n_clusters} clusters")
    caplog.clear()
    est.predict(Xt)
    messages = [r.getMessage() for r in caplog.records if r.name in ours]
    assert [m.split(" ")[0] for m in messages] == ["scored", "merged"]


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
    with pytest.raises(FileNotFoundError):
        LinkageClusterer.load(tmp_path / "missing.pt")
    with pytest.raises(NotFittedError):
        LinkageClusterer().save(tmp_path / "unfitted.pt")


def _edited_checkpoint(tmp_path, fitted, name, edit):
    """Save ``fitted``, edit the stored dict with ``edit(state)``, save it as ``name``."""
    path = tmp_path / name
    fitted.save(tmp_path / "good.pt", overwrite=True)
    state = torch.load(tmp_path / "good.pt", weights_only=True)
    edit(state)
    torch.save(state, path)
    return path


def _corrupt(path):
    """Zero the middle of the archive, keeping its zip directory readable."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)  # the largest weight tensor
    start = info.header_offset + 100
    raw[start : start + 200] = bytes(200)
    path.write_bytes(bytes(raw))


def test_bad_checkpoints_are_named(tmp_path, fitted):
    fitted.save(tmp_path / "good.pt")
    good = (tmp_path / "good.pt").read_bytes()
    cases = {}

    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    cases[path] = "not a PyTorch archive"
    path = tmp_path / "truncated.pt"
    path.write_bytes(good[: len(good) // 2])
    cases[path] = "is truncated: it starts as a zip archive"
    path = tmp_path / "corrupted.pt"
    path.write_bytes(good)
    _corrupt(path)
    cases[path] = "truncated or corrupted: Bad CRC-32"
    path = tmp_path / "weights.pt"
    torch.save(fitted.model_.state_dict(), path)
    cases[path] = "not a linkage-gcn checkpoint .*bare state_dict"
    path = tmp_path / "other.pt"
    torch.save({"format": "something-else", "params": {}}, path)
    cases[path] = "not a linkage-gcn checkpoint"

    def drop(*keys):
        return lambda state: [state.pop(k) for k in keys]

    def set_(key, value):
        return lambda state: state.__setitem__(key, value)

    def set_param(key, value):
        return lambda state: state["params"].__setitem__(key, value)

    edits = {
        "missing.pt": (drop("threshold_", "labels_"), "incomplete .*missing threshold_, labels_"),
        "params.pt": (set_param("colour", "red"), r"parameters .* does not know: \['colour'\]"),
        "shape.pt": (set_param("hidden_channels", (8, 8)), "weights do not fit .*size mismatch"),
        "layers.pt": (set_param("hidden_channels", (16,)), "weights do not fit .*Unexpected key"),
        "width.pt": (set_("n_features_in_", 7), "weights do not fit .*7 input features"),
        "field.pt": (set_("n_features_in_", "many"), "malformed .*n_features_in_"),
        "hidden.pt": (set_param("hidden_channels", 16), "malformed .*hidden_channels"),
    }
    for name, (edit, match) in edits.items():
        cases[_edited_checkpoint(tmp_path, fitted, name, edit)] = match
    for path, match in cases.items():
        with pytest.raises(ValueError, match=match) as info:
            LinkageClusterer.load(path)
        assert str(path) in str(info.value), path.name


def test_custom_objects_need_trusted(tmp_path, fitted):
    from linkage_gcn.samplers import TopKSampler

    est = copy.deepcopy(fitted).set_params(sampler=TopKSampler(6))
    est.save(tmp_path / "custom.pt")
    with pytest.raises(ValueError, match=r"TopKSampler.*pass trusted=True"):
        LinkageClusterer.load(tmp_path / "custom.pt")
    assert repr(LinkageClusterer.load(tmp_path / "custom.pt", trusted=True).sampler) == (
        "TopKSampler(k=6)"
    )


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


# check_clustering and check_requires_y_none pass since fit(X) self-trains without labels
EXPECTED_FAILED_CHECKS = {
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


def test_preprocessing_is_fitted_applied_and_saved(tmp_path, data):
    X, y, _, _ = data
    shifted = X + 5.0  # far from the origin: centring changes the geometry
    small = dict(TINY, random_state=0)
    est = LinkageClusterer(preprocessing="center-l2", **small).fit(shifted, y)
    np.testing.assert_allclose(est.preprocessing_mean_, shifted.mean(0), rtol=1e-5)
    # the same as feeding the preprocessed copy to a model without preprocessing
    mean = shifted.mean(0)
    pre = (shifted - mean) / np.linalg.norm(shifted - mean, axis=1, keepdims=True)
    plain = LinkageClusterer(**small).fit(pre, y)
    e1, s1 = est.predict_edges(shifted[:150])
    e2, s2 = plain.predict_edges(pre[:150])
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_allclose(s1, s2, rtol=1e-4, atol=1e-5)
    loaded = LinkageClusterer.load(est.save(tmp_path / "m.pt"))
    np.testing.assert_allclose(loaded.preprocessing_mean_, est.preprocessing_mean_)
    np.testing.assert_array_equal(loaded.predict(shifted[:150]), est.predict(shifted[:150]))
    assert LinkageClusterer(**small).fit(X, y).preprocessing_mean_ is None


def test_preprocessing_option_is_checked(data):
    with pytest.raises(ValueError, match="preprocessing"):
        LinkageClusterer(preprocessing="zscore").fit(data[0], data[1])


def test_threshold_set_after_fit_takes_effect(fitted, data):
    _, _, Xt, _ = data
    est = copy.deepcopy(fitted).set_params(merge="threshold")
    edge_index, scores = est.predict_edges(Xt)
    for threshold in (0.0, 0.5, 1.0):
        est.set_params(threshold=threshold)
        np.testing.assert_array_equal(
            est.predict(Xt), threshold_components(edge_index, scores, len(Xt), threshold)
        )
    assert est.threshold_ == fitted.threshold_  # the fitted calibration is kept


def test_cv_calibration_scores_each_fold_with_a_model_that_never_saw_it(data, monkeypatch):
    X, y, _, _ = data
    seen = []
    real_train = LinkageClusterer._train

    def spy_train(self, x, index, labels, cfg, seed, **kwargs):
        seen.append(("train", x.shape[0], set(labels.tolist())))
        return real_train(self, x, index, labels, cfg, seed, **kwargs)

    def spy_calibrate(self, scored, cfg, where):
        seen.append(("calibrate", scored, where))
        return 0.5, None, None

    monkeypatch.setattr(LinkageClusterer, "_train", spy_train)
    monkeypatch.setattr(LinkageClusterer, "_calibrate", spy_calibrate)
    params = {**TINY, "calibration": "cv", "cv_folds": 3}
    est = LinkageClusterer(random_state=0, **params).fit(X, y)
    assert est.threshold_ == 0.5
    trains = [s for s in seen if s[0] == "train"]
    ((_, scored, where),) = [s for s in seen if s[0] == "calibrate"]
    assert len(trains) == 4 and trains[0][1] == len(X)  # the final model, then 3 fold models
    assert where == "3 identity-disjoint folds" and len(scored) == 3
    held_ids = [set(fold_labels.tolist()) for _, _, fold_labels in scored]
    for (_, _, fit_ids), held in zip(trains[1:], held_ids):
        assert not fit_ids & held  # the fold was never seen by its model
        assert fit_ids | held == set(y.tolist())
    assert sum(len(fold_labels) for _, _, fold_labels in scored) == len(X)


@pytest.mark.parametrize("merge", ["chinese-whispers", "threshold", "infomap"])
def test_merges_cluster_the_links_above_the_cut(merge, fitted, data):
    from linkage_gcn import community

    if merge == "infomap":
        pytest.importorskip("infomap")
    _, _, Xt, _ = data
    est = copy.deepcopy(fitted).set_params(merge=merge, threshold=0.6, merge_runs=3)
    edge_index, scores = est.predict_edges(Xt)
    keep = scores >= 0.6
    expected = {
        "threshold": lambda: threshold_components(edge_index, scores, len(Xt), 0.6),
        "chinese-whispers": lambda: community.consensus_chinese_whispers(
            edge_index[:, keep], scores[keep], len(Xt), n_runs=3, random_state=0
        ),
        "infomap": lambda: community.infomap(
            edge_index[:, keep], scores[keep], len(Xt), random_state=0, num_trials=3
        ),
    }[merge]()
    np.testing.assert_array_equal(est.predict(Xt), expected)


def test_family_view_keeps_the_people_with_many_faces_per_collection():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 3, 3, 3, 4])
    groups = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    rows, fam = estimator_module._family_view(labels, groups, 3, 2)
    # person 0 of collection 1 is another person than person 0 of collection 0
    np.testing.assert_array_equal(rows, [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(fam, [0] * 6 + [1] * 6)
    # a view of one person, or of too few rows, is left out
    rows, fam = estimator_module._family_view(labels, groups, 3, 7)
    assert rows.size == 0
    rows, fam = estimator_module._family_view(labels[:7], None, 3, 2)
    np.testing.assert_array_equal(rows, np.arange(6))
    assert fam is None


def spy_on_calibration(monkeypatch) -> list:
    """What ``_calibrate`` is given, call by call (it returns fixed cuts)."""
    seen = []

    def spy_calibrate(self, scored, cfg, where):
        seen.append((scored, where))
        return 0.5, None, None

    monkeypatch.setattr(LinkageClusterer, "_calibrate", spy_calibrate)
    return seen


def test_cv_family_also_scores_each_folds_people_with_many_faces(monkeypatch):
    X, y = make_identities(30, min_size=8, max_size=16, random_state=0)
    seen = spy_on_calibration(monkeypatch)
    params = {**TINY, "calibration": "cv", "cv_folds": 3, "cv_family": 10}
    LinkageClusterer(random_state=0, **params).fit(X, y)
    ((scored, where),) = seen
    assert "family views" in where
    assert len(scored) == 6  # each fold, then its family view
    folds, families = scored[0::2], scored[1::2]
    sizes = np.bincount(y)
    for (_, _, fold_labels), (edge_index, scores, family_labels) in zip(folds, families):
        # the family view: the fold's people with 10 faces or more, and no one else
        many = {i for i in set(fold_labels.tolist()) if sizes[i] >= 10}
        assert set(family_labels.tolist()) == many
        assert edge_index.max() < len(family_labels) and len(scores) == edge_index.shape[1]


def test_size_view_draws_a_fraction_of_each_collection():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], [40, 20, 8])
    rows, sub = estimator_module._size_view(groups, 68, 0.5, 5, rng)
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    assert np.bincount(groups[rows]).tolist() == [20, 10]  # collection 2: 4 rows < 5, left out
    np.testing.assert_array_equal(sub, groups[rows])  # renumbered 0..C'-1
    rows, sub = estimator_module._size_view(None, 30, 0.25, 2, rng)
    assert rows.size == 8 and sub is None and rows.max() < 30
    rows, _ = estimator_module._size_view(None, 30, 0.1, 4, rng)
    assert rows.size == 0


def test_cv_sizes_also_scores_subsamples_of_each_fold(monkeypatch):
    X, y = make_identities(30, min_size=8, max_size=16, random_state=0)
    seen = spy_on_calibration(monkeypatch)
    params = {**TINY, "calibration": "cv", "cv_folds": 3, "cv_sizes": (0.5, 0.75)}
    LinkageClusterer(random_state=0, **params).fit(X, y)
    ((scored, where),) = seen
    assert "subsamples" in where and len(scored) == 9  # each fold, then its two subsamples
    for full, *subs in zip(scored[0::3], scored[1::3], scored[2::3]):
        n = len(full[2])
        for (edge_index, scores, sub_labels), fraction in zip(subs, (0.5, 0.75)):
            assert len(sub_labels) == round(fraction * n)
            assert set(sub_labels.tolist()) <= set(full[2].tolist())  # the fold's people
            assert edge_index.max() < len(sub_labels) and len(scores) == edge_index.shape[1]
    for bad in ((0.5, 1.0), 0.0, "half", [[0.5]]):
        with pytest.raises(ValueError, match="cv_sizes"):
            LinkageClusterer(**{**params, "cv_sizes": bad}).fit(X, y)


def test_cv_calibration_needs_enough_identities():
    X, y = make_identities(5, min_size=4, max_size=4, random_state=0)
    with pytest.raises(ValueError, match="cv_folds"):
        LinkageClusterer(**{**TINY, "calibration": "cv"}).fit(X, y)


def test_threads_apply_during_the_call_only(data, monkeypatch):
    X, y, Xt, _ = data
    seen = []
    real = estimator_module.LinkageClusterer._score

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(estimator_module.LinkageClusterer, "_score", spy)
    before = torch.get_num_threads()
    est = LinkageClusterer(random_state=0, threads=1, **TINY).fit(X, y)
    est.predict(Xt)
    assert seen == [1] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        LinkageClusterer(threads=0, **TINY).fit(X, y)


def test_precision_bf16_scores_close_to_fp32(fitted, data):
    est = copy.deepcopy(fitted)
    X_test = data[2]
    labels32 = est.predict(X_test)
    labels16 = est.set_params(precision="bf16").predict(X_test)
    # bf16 moves scores by ~1e-2: a few links near the cut may flip, most clusters stay
    agree = bcubed_fscore(labels32, labels16)[2]
    assert agree > 0.9


def _setter(key, value, inside=None):
    """An edit for ``_edited_checkpoint``: set ``state[key]`` (or ``state[inside][key]``)."""

    def edit(state):
        (state if inside is None else state[inside])[key] = value

    return edit


def test_checkpoint_with_a_nan_preprocessing_mean_is_refused_at_load(tmp_path, data):
    X, y, _, _ = data
    est = LinkageClusterer(preprocessing="center-l2", random_state=0, **TINY).fit(X + 5.0, y)
    def nan_mean(state):
        state["preprocessing_mean_"][3] = np.nan

    path = _edited_checkpoint(tmp_path, est, "nan_mean.pt", nan_mean)
    with pytest.raises(ValueError, match="preprocessing_mean_ holds 1 NaN") as info:
        LinkageClusterer.load(path)
    assert str(path) in str(info.value)
    path = _edited_checkpoint(tmp_path, est, "no_mean.pt", _setter("preprocessing_mean_", None))
    with pytest.raises(ValueError, match=r"needs the training mean .* of shape \(\d+,\)"):
        LinkageClusterer.load(path)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("threshold_", float("nan"), "threshold_ must be a finite number"),
        ("threshold_", 1.5, r"threshold_ must be a number in \[0, 1\]"),
        ("threshold_", -0.1, r"threshold_ must be a number in \[0, 1\]"),
        ("n_features_in_", -3, "n_features_in_ must be an integer >= 1"),
        ("labels_", torch.tensor([0.5, 1.0]), "labels_ must hold integer identities"),
        ("labels_", torch.tensor([True, False]), "labels_ must hold integer identities"),
        ("labels_", torch.tensor([0, -2]), "labels_ must hold cluster ids >= 0"),
        ("history_", "abc", "history_ must be a list of per-epoch dicts"),
        ("history_", None, "history_ must be a list of per-epoch dicts"),
        ("params", [1, 2], "params must be a dict of parameter names"),
        ("state_dict", None, "state_dict must be a dict of tensors"),
    ],
)
def test_malformed_checkpoint_fields_are_named(tmp_path, fitted, key, value, match):
    path = _edited_checkpoint(tmp_path, fitted, "bad.pt", _setter(key, value))
    with pytest.raises(ValueError, match=match) as info:
        LinkageClusterer.load(path)
    assert str(path) in str(info.value)


def test_checkpoint_parameters_are_checked_at_load(tmp_path, fitted):
    for name, value, match in [("merge", 5, "unknown merge 5"),
                               ("k_at_hop", (0,), "k_at_hop must be"),
                               ("epochs", 0, "epochs must be")]:  # fmt: skip
        path = _edited_checkpoint(tmp_path, fitted, f"{name}.pt", _setter(name, value, "params"))
        with pytest.raises(ValueError, match=f"malformed checkpoint parameter: {match}") as info:
            LinkageClusterer.load(path)
        assert str(path) in str(info.value)
    # a device of another machine loads; set_params changes it
    path = _edited_checkpoint(tmp_path, fitted, "gpu.pt", _setter("device", "cuda:7", "params"))
    assert LinkageClusterer.load(path).device == "cuda:7"


def test_checkpoint_with_non_finite_weights_is_refused_at_load(tmp_path, fitted):
    def poison(state):
        name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
        state["state_dict"][name].view(-1)[0] = float("inf")

    path = _edited_checkpoint(tmp_path, fitted, "inf.pt", poison)
    with pytest.raises(ValueError, match="holds NaN or infinity") as info:
        LinkageClusterer.load(path)
    assert str(path) in str(info.value)


def test_checkpoint_records_its_format_and_a_directory_is_named(tmp_path, fitted):
    from linkage_gcn._version import __version__

    state = torch.load(fitted.save(tmp_path / "m.pt"), weights_only=True)
    assert (state["format"], state["format_version"], state["version"]) == (
        "linkage-gcn-checkpoint", 1, __version__,
    )  # fmt: skip
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(FileNotFoundError, match="is a directory, not a checkpoint file"):
        LinkageClusterer.load(tmp_path / "folder.pt")
    path = _edited_checkpoint(tmp_path, fitted, "v9.pt", _setter("format_version", 9))
    with pytest.raises(ValueError, match=r"format version 9.*upgrade linkage-gcn"):
        LinkageClusterer.load(path)


def test_join_threshold_is_calibrated_applied_and_saved(tmp_path, fitted, data):
    from linkage_gcn.merge import join_clusters

    X, y, Xt, _ = data
    est = copy.deepcopy(fitted).set_params(merge="threshold")
    assert est.join_cut() is None  # off by default
    edge_index, scores = est.predict_edges(Xt)
    plain = est.predict(Xt)
    est.set_params(join_threshold=0.6)
    assert est.join_cut() == 0.6
    np.testing.assert_array_equal(
        est.predict(Xt), join_clusters(plain, edge_index, scores, 0.6)
    )
    # the merge rule (the incremental clusterer's) joins too
    rule = est.merge_rule()
    np.testing.assert_array_equal(
        rule(edge_index, scores, len(Xt), est.link_threshold()), est.predict(Xt)
    )
    # "auto": the pair of cuts with the best B-Cubed F on the training scores, saved
    auto = LinkageClusterer(**{**fitted.get_params(), "join_threshold": "auto"}).fit(X, y)
    assert auto.join_threshold_ in (None, 0.5, 0.6, 0.7, 0.8, 0.9)
    e, s = auto.predict_edges(X)
    best = bcubed_fscore(y, auto.cluster_edges(e, s, len(X)))[2]
    for join in (None, 0.5, 0.7, 0.9):
        trial = copy.deepcopy(auto).set_params(join_threshold=join)
        assert bcubed_fscore(y, trial.cluster_edges(e, s, len(X)))[2] <= best + 1e-12
    path = auto.save(tmp_path / "joined.pt")
    loaded = LinkageClusterer.load(path)
    assert loaded.join_threshold_ == auto.join_threshold_
    np.testing.assert_array_equal(loaded.predict(Xt), auto.predict(Xt))
    with pytest.raises(ValueError, match="join_threshold"):
        LinkageClusterer(join_threshold=1.5).resolved_params()


def test_attach_threshold_is_calibrated_applied_and_saved(tmp_path, fitted, data):
    from linkage_gcn.merge import attach_clusters, join_clusters

    X, y, Xt, _ = data
    est = copy.deepcopy(fitted).set_params(merge="threshold")
    assert est.attach_cut() is None  # off by default
    edge_index, scores = est.predict_edges(Xt)
    plain = est.predict(Xt)
    est.set_params(attach_threshold=0.4)
    assert est.attach_cut() == 0.4
    np.testing.assert_array_equal(
        est.predict(Xt), attach_clusters(plain, edge_index, scores, 0.4)
    )
    # after the join, in that order; the merge rule (the incremental clusterer's) too
    est.set_params(join_threshold=0.6)
    want = attach_clusters(join_clusters(plain, edge_index, scores, 0.6), edge_index, scores, 0.4)
    np.testing.assert_array_equal(est.predict(Xt), want)
    rule = est.merge_rule()
    np.testing.assert_array_equal(rule(edge_index, scores, len(Xt), est.link_threshold()), want)
    # "auto": the best of the grid on the training scores (no better fixed piece cut), saved
    auto = LinkageClusterer(**{**fitted.get_params(), "attach_threshold": "auto"}).fit(X, y)
    assert auto.attach_threshold_ in (None, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    e, s = auto.predict_edges(X)
    best = bcubed_fscore(y, auto.cluster_edges(e, s, len(X)))[2]
    for attach in (None, 0.3, 0.5, 0.8):
        trial = copy.deepcopy(auto).set_params(attach_threshold=attach)
        assert bcubed_fscore(y, trial.cluster_edges(e, s, len(X)))[2] <= best + 1e-12
    loaded = LinkageClusterer.load(auto.save(tmp_path / "attached.pt"))
    assert loaded.attach_threshold_ == auto.attach_threshold_
    np.testing.assert_array_equal(loaded.predict(Xt), auto.predict(Xt))
    with pytest.raises(ValueError, match="attach_threshold"):
        LinkageClusterer(attach_threshold=-0.1).resolved_params()


def test_fit_without_labels_self_trains_from_the_teacher(tmp_path, fitted, data):
    _, _, Xt, _ = data
    teacher_params = fitted.get_params()
    est = LinkageClusterer(teacher=fitted, max_rounds=1, random_state=0, **TINY).fit(Xt)
    assert fitted.get_params() == teacher_params  # the caller's teacher is left as it was
    (round1,) = est.self_training_
    teacher_clusters = fitted.predict(Xt)
    assert round1["pseudo_identities"] == np.unique(teacher_clusters).size
    assert round1["agreement_with_previous"] is None
    # the cut: the one whose clusters agree best with the teacher's (no label read)
    e, s = est.predict_edges(Xt)
    agreement = bcubed_fscore(teacher_clusters, est.cluster_edges(e, s, len(Xt)))[2]
    for cut in (0.1, 0.3, 0.5, 0.7, 0.9):
        trial = copy.deepcopy(est).set_params(threshold=cut)
        assert bcubed_fscore(teacher_clusters, trial.cluster_edges(e, s, len(Xt)))[2] <= (
            agreement + 1e-12
        )
    loaded = LinkageClusterer.load(est.save(tmp_path / "self.pt"))
    assert loaded.self_training_ == est.self_training_
    # a labelled fit records no rounds
    assert fitted.self_training_ == []


def test_fit_without_labels_errors(fitted, data):
    _, _, Xt, _ = data
    with pytest.raises(ValueError, match="teacher"):
        LinkageClusterer(teacher="dlib-512").fit(Xt)
    with pytest.raises(ValueError, match="teacher"):
        LinkageClusterer(teacher=object()).fit(Xt)
    with pytest.raises(ValueError, match="takes 128"):
        LinkageClusterer(teacher="dlib-128", **TINY).fit(Xt)  # 64-D rows
    with pytest.raises(ValueError, match="collections= needs y"):
        LinkageClusterer(teacher=fitted, **TINY).fit(Xt, collections=np.zeros(len(Xt)))
    with pytest.raises(ValueError, match="no pseudo-identities"):
        # a teacher whose cut leaves only singletons
        LinkageClusterer(teacher=copy.deepcopy(fitted).set_params(threshold=1.0), **TINY).fit(Xt)
