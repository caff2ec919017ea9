import hashlib
import shutil

import numpy as np
import pytest

import linkage_gcn.pretrained as pretrained
from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw
from linkage_gcn.metrics import bcubed_fscore


def test_available_models_and_info():
    assert pretrained.available_models() == ["dlib-128"]
    info = pretrained.model_info("dlib-128")
    assert info.n_features == 128
    assert "face_recognition" in info.input
    with pytest.raises(ValueError, match=r"unknown pretrained model 'dlib-512'.*dlib-128"):
        pretrained.model_info("dlib-512")
    with pytest.raises(ValueError, match="unknown pretrained model"):
        LinkageClusterer.pretrained("nope")


def test_shipped_file_matches_its_checksum():
    path = pretrained.model_path("dlib-128")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == pretrained.model_info("dlib-128").sha256
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
