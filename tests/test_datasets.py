from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linkage_gcn.datasets import (
    LFW_ENV,
    find_shared_lfw,
    load_lfw_dlib,
    make_identities,
)

# ------------------------------------------------------------------ make_identities


def test_make_identities_shape_dtype_norm():
    X, y = make_identities(random_state=0)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.ndim == 2 and X.shape == (y.shape[0], 64)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)
    assert np.array_equal(np.unique(y), np.arange(200))


def test_make_identities_long_tail_defaults():
    for seed in range(3):
        _, y = make_identities(random_state=seed)
        sizes = np.bincount(y)
        assert sizes.max() == 100 and sizes.min() >= 1
        assert 0.4 <= np.mean(sizes <= 3) <= 0.7
        assert np.mean(sizes == 1) > 0.05
        assert np.sum(sizes >= 30) <= 10  # few large identities
        assert 800 <= y.shape[0] <= 1400


def test_make_identities_reproducible():
    X1, y1 = make_identities(30, dim=8, random_state=7)
    X2, y2 = make_identities(30, dim=8, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = make_identities(30, dim=8, random_state=8)
    assert X3.shape != X1.shape or not np.array_equal(X1, X3)
    Xa, _ = make_identities(30, dim=8, random_state=np.random.RandomState(3))
    Xb, _ = make_identities(30, dim=8, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(Xa, Xb)


def test_make_identities_no_global_seed():
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy global state
    make_identities(20, random_state=0)
    make_identities(20)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


def test_make_identities_rows_shuffled_and_ids_not_by_size():
    _, y = make_identities(random_state=0)
    assert not np.all(np.diff(y) >= 0)  # rows are not grouped by identity
    largest = {int(np.argmax(np.bincount(make_identities(random_state=s)[1]))) for s in range(5)}
    assert len(largest) > 1  # the id of the largest identity is random


def test_make_identities_parameters():
    _, y = make_identities(40, max_size=12, min_size=3, random_state=1)
    sizes = np.bincount(y)
    assert sizes.max() == 12 and sizes.min() >= 3
    X, y = make_identities(1, max_size=5, dim=3, random_state=0)
    assert X.shape == (5, 3) and set(y.tolist()) == {0}
    X, _ = make_identities(5, spread=0.0, random_state=0)
    assert X.shape[0] >= 5  # no noise: duplicates of the centres, still unit norm
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5)


def test_make_identities_difficulty():
    # neither trivial nor hopeless: nearest neighbours mostly, not always, share the identity
    X, y = make_identities(random_state=0)
    S = X @ X.T
    np.fill_diagonal(S, -2)
    nn = np.argsort(-S, axis=1)[:, :10]
    same = y[nn] == y[:, None]
    assert 0.85 < same[:, 0].mean() < 0.99
    assert 0.4 < same.mean() < 0.85
    # harder with less separation, easier with more
    X2, y2 = make_identities(random_state=0, separation=0.3)
    S2 = X2 @ X2.T
    np.fill_diagonal(S2, -2)
    assert (y2[S2.argmax(1)] == y2).mean() < same[:, 0].mean()


def test_make_identities_size_at_10k():
    X, _ = make_identities(2000, max_size=500, random_state=0)
    assert 5000 <= X.shape[0] <= 15000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_identities": 0},
        {"dim": 0},
        {"max_size": 0},
        {"min_size": 5, "max_size": 4},
        {"spread": -1.0},
        {"separation": float("nan")},
        {"family_size": 0.5},
        {"tail_exponent": -1},
        {"random_state": "seed"},
    ],
)
def test_make_identities_invalid(kwargs):
    with pytest.raises(ValueError):
        make_identities(**kwargs)


# ------------------------------------------------------------------ LFW


def test_lfw_subsets(lfw_dir):
    X, y = load_lfw_dlib(lfw_dir)
    assert X.shape == (13233, 128) and y.shape == (13233,) and X.dtype == np.float32
    Xtr, ytr = load_lfw_dlib(lfw_dir, subset="train")
    Xte, yte = load_lfw_dlib(lfw_dir, subset="test")
    assert Xtr.shape == (6615, 128) and Xte.shape == (6618, 128)
    assert len(np.unique(ytr)) == 2998 and len(np.unique(yte)) == 2751
    tr_rows = np.load(lfw_dir / "train" / "index.npy")
    te_rows = np.load(lfw_dir / "test" / "index.npy")
    np.testing.assert_array_equal(X[tr_rows], Xtr)
    assert np.intersect1d(y[tr_rows], y[te_rows]).size == 0
    # raw descriptors by default (norm about 1.42); the centred copy is unit-norm
    np.testing.assert_array_equal(Xte, np.load(lfw_dir / "test" / "features_raw.npy"))
    Xc, _ = load_lfw_dlib(lfw_dir, subset="test", features="centred")
    np.testing.assert_allclose(np.linalg.norm(Xc, axis=1), 1.0, rtol=1e-4)
    assert 1.3 < np.linalg.norm(Xte, axis=1).mean() < 1.5


def test_lfw_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        load_lfw_dlib(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="subset"):
        load_lfw_dlib(tmp_path, subset="val")


def _fake_lfw(folder: Path) -> Path:
    folder.mkdir(parents=True)
    np.save(folder / "features.npy", np.eye(2, dtype=np.float32))
    np.save(folder / "labels.npy", np.array([0, 1]))
    return folder


def test_find_shared_lfw_env(tmp_path, monkeypatch):
    fake = _fake_lfw(tmp_path / "lfw")
    monkeypatch.setenv(LFW_ENV, str(fake))
    assert find_shared_lfw() == fake
    monkeypatch.setenv(LFW_ENV, str(tmp_path / "wrong"))
    with pytest.warns(UserWarning, match=LFW_ENV):
        assert find_shared_lfw() is None


def test_find_shared_lfw_walks_up_from_cwd(tmp_path, monkeypatch):
    fake = _fake_lfw(tmp_path / "shared" / "data" / "lfw-dlib")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.delenv(LFW_ENV, raising=False)
    monkeypatch.chdir(deep)
    assert find_shared_lfw() == fake
    X, y = load_lfw_dlib(find_shared_lfw(), features="centred")
    assert X.shape == (2, 2) and y.tolist() == [0, 1]
    with pytest.raises(FileNotFoundError, match=r"features_raw\.npy"):
        load_lfw_dlib(find_shared_lfw())


def test_find_shared_lfw_real(lfw_dir, monkeypatch):
    monkeypatch.delenv(LFW_ENV, raising=False)
    found = find_shared_lfw()
    assert found is not None and (found / "features.npy").is_file()


# ------------------------------------------------------------------ moved names


@pytest.mark.parametrize("name", ["split_identities", "identity_folds", "make_imbalanced_subset"])
def test_moved_names_are_deprecated_aliases(name):
    import linkage_gcn.datasets as datasets
    import linkage_gcn.model_selection as model_selection

    assert name not in datasets.__all__
    with pytest.warns(DeprecationWarning, match=f"datasets.{name} is deprecated.*model_selection"):
        fn = getattr(datasets, name)
    assert fn is getattr(model_selection, name)
    with pytest.raises(AttributeError, match="no attribute 'no_such_helper'"):
        datasets.no_such_helper  # noqa: B018


def test_random_state_errors_name_the_argument():
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        make_identities(5, random_state="zero")
    with pytest.raises(ValueError, match="random_state must be a non-negative int seed, got -1"):
        make_identities(5, random_state=-1)
    a = make_identities(5, random_state=np.random.RandomState(0))
    b = make_identities(5, random_state=np.random.RandomState(0))
    np.testing.assert_array_equal(a[0], b[0])
