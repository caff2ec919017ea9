import hashlib
import shutil

import numpy as np
import pytest

import linkage_gcn.pretrained as pretrained
from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw
from linkage_gcn.metrics import bcubed_fscore


def test_available_models_and_info():
    assert pretrained.available_models() == ["dlib-128", "face-any"]
    info = pretrained.model_info("dlib-128")
    assert info.n_features == 128
    assert "face_recognition" in info.input
    with pytest.raises(ValueError, match=r"unknown pretrained model 'dlib-512'.*dlib-128"):
        pretrained.model_info("dlib-512")
    with pytest.raises(ValueError, match="unknown pretrained model"):
        LinkageClusterer.pretrained("nope")


@pytest.mark.parametrize("name", ["dlib-128", "face-any"])
def test_shipped_file_matches_its_checksum(name):
    path = pretrained.model_path(name)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == pretrained.model_info(name).sha256
    assert path.stat().st_size < 6 * 2**20  # a few MB inside the wheel


def test_pretrained_loads_fitted_with_its_settings():
    est = LinkageClusterer.pretrained("dlib-128", threads=1, device="cpu")
    assert est.n_features_in_ == 128
    assert est.threads == 1
    # the choices measured on real faces travel inside the checkpoint
    assert est.preprocessing == "none"
    assert est.merge == "chinese-whispers"
    assert 0.0 < est.threshold_ < 1.0
    assert est.model_.training is False
    with pytest.raises(ValueError, match="128"):
        est.predict(np.zeros((30, 64), dtype=np.float32))


def test_damaged_file_is_refused(tmp_path, monkeypatch):
    src = pretrained.model_path("dlib-128")
    bad = tmp_path / src.name
    shutil.copy(src, bad)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "_HERE", tmp_path)
    with pytest.raises(OSError, match="checksum"):
        LinkageClusterer.pretrained("dlib-128")
    bad.unlink()
    with pytest.raises(FileNotFoundError, match="missing from this installation"):
        LinkageClusterer.pretrained("dlib-128")


def test_pretrained_clusters_raw_dlib_descriptors():
    root = find_shared_lfw()
    if root is None:
        pytest.skip("../shared/data/lfw-dlib is absent")
    X = np.load(root / "test" / "features_raw.npy")
    y = np.load(root / "test" / "labels.npy")
    # the largest identities' faces plus some of everyone else: a quick, varied subset
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(len(X), 600, replace=False))
    est = LinkageClusterer.pretrained("dlib-128", threads=1, verbose=False)
    labels = est.predict(X[rows])
    assert labels.shape == (600,)
    # trained on all of LFW (these faces included): a smoke check of the input path, not a
    # quality figure (the model card gives the held-out figures)
    assert bcubed_fscore(y[rows], labels)[2] > 0.9


def test_face_any_takes_any_width_and_scale():
    info = pretrained.model_info("face-any")
    assert info.n_features is None and info.card == "docs/any_face.md"
    est = LinkageClusterer.pretrained("face-any", threads=1, verbose=False)
    assert est.features == "structure" and est.metric == "cosine"
    # its cluster cuts, chosen on its folds, travel inside it
    assert est.join_threshold == est.attach_threshold == "auto"
    assert est.attach_cut() == est.attach_threshold_ is not None
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((12, 512))
    y = np.repeat(np.arange(12), 8)
    X = centres[y] + 0.6 * rng.standard_normal((96, 512))
    labels = est.predict(X)
    # the same faces scaled and rotated into another basis: the same clusters
    q, _ = np.linalg.qr(rng.standard_normal((512, 512)))
    np.testing.assert_array_equal(est.predict(7.0 * X @ q), labels)
    assert bcubed_fscore(y, labels)[2] > 0.9
    with pytest.raises(ValueError, match="takes 128"):
        LinkageClusterer(teacher="dlib-128").fit(X)


@pytest.mark.parametrize("embedder", ["dlib", "sface"])
def test_face_any_clusters_held_out_faces_of_two_face_models(embedder):
    root = find_shared_lfw()
    if root is None or not (root.parent / "lfw-sface").is_dir():
        pytest.skip("../shared/data/lfw-dlib and lfw-sface are absent")
    rows = np.load(root / "test" / "index.npy")
    features = (
        np.load(root / "features_raw.npy") if embedder == "dlib"
        else np.load(root.parent / "lfw-sface" / "features.npy")
    )  # fmt: skip
    X, y = features[rows], np.load(root / "labels.npy")[rows]
    keep = np.sort(np.random.default_rng(0).choice(len(X), 1500, replace=False))
    est = LinkageClusterer.pretrained("face-any", threads=1, verbose=False)
    labels = est.predict(X[keep])
    # trained on the train halves only: these people are unseen (docs/any_face.md has the
    # full-half figures); the floor is far below them and above the label-free tools
    floor = {"dlib": 0.93, "sface": 0.97}[embedder]
    assert bcubed_fscore(y[keep], labels)[2] > floor
