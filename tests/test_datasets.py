from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linkage_gcn.datasets import (
    LFW_ENV,
    find_shared_lfw,
    load_lfw_dlib,
    make_identities,
    make_imbalanced_subset,
    split_identities,
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


# ------------------------------------------------------------------ make_imbalanced_subset


def _brute_force_subset_counts(y, m, n):
    """Expected kept count per identity, by a plain loop over identities."""
    sizes = {}
    for label in y.tolist():
        sizes[label] = sizes.get(label, 0) + 1
    ordered = sorted(sizes, key=lambda label: (-sizes[label], label))
    expected = {}
    for rank, label in enumerate(ordered):
        expected[label] = sizes[label] if rank < m else min(sizes[label], n)
    return expected


def _random_labels(rng):
    n_ids = int(rng.integers(5, 60))
    sizes = np.minimum(rng.zipf(1.6, size=n_ids), 80)
    labels = rng.choice(1000, size=n_ids, replace=False)  # arbitrary, non-contiguous ids
    y = np.repeat(labels, sizes)
    return rng.permutation(y)


@pytest.mark.parametrize("seed", range(12))
def test_imbalanced_subset_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = _random_labels(rng)
    n_ids = len(np.unique(y))
    for m in {0, 1, n_ids // 3, n_ids}:
        for n in (1, 3, 5):
            keep = make_imbalanced_subset(y, m, n, random_state=seed)
            assert keep.dtype == np.int64
            assert np.all(np.diff(keep) > 0) and keep.min() >= 0 and keep.max() < len(y)
            labels, counts = np.unique(y[keep], return_counts=True)
            got = dict(zip(labels.tolist(), counts.tolist()))
            expected = _brute_force_subset_counts(y, m, n)
            assert got == expected
            whole = {label for label, c in expected.items() if c == np.sum(y == label)}
            big = {label for label in expected if np.sum(y == label) > n}
            assert len(big & whole) <= m  # only the top m identities larger than n stay whole


def test_imbalanced_subset_ties_by_label():
    y = np.array([5, 5, 2, 2, 9, 9, 1])
    keep = make_imbalanced_subset(y, 2, 1, random_state=0)
    assert sorted(np.unique(y[keep], return_counts=True)[1].tolist()) == [1, 1, 2, 2]
    kept = y[keep]
    assert np.sum(kept == 2) == 2 and np.sum(kept == 5) == 2 and np.sum(kept == 9) == 1


def test_imbalanced_subset_reproducible_and_random():
    y = np.repeat(np.arange(10), 20)
    a = make_imbalanced_subset(y, 2, 3, random_state=0)
    b = make_imbalanced_subset(y, 2, 3, random_state=0)
    c = make_imbalanced_subset(y, 2, 3, random_state=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_imbalanced_subset_uniform_draw():
    y = np.array([0] * 10 + [1] * 4)
    hits = np.zeros(len(y))
    rng = np.random.default_rng(0)
    for _ in range(400):
        hits[make_imbalanced_subset(y, 0, 2, random_state=rng)] += 1
    freq = hits / 400
    np.testing.assert_allclose(freq[:10], 0.2, atol=0.08)
    np.testing.assert_allclose(freq[10:], 0.5, atol=0.1)


def test_imbalanced_subset_column_labels_and_all_kept():
    y = np.array([[0], [0], [1]])
    assert make_imbalanced_subset(y, 2, 1).tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("m", "n", "match"),
    [
        (4, 3, "exceeds the number of identities"),
        (-1, 3, "majority_count"),
        (1, 0, "minority_size"),
        (1.5, 3, "majority_count"),
    ],
)
def test_imbalanced_subset_invalid(m, n, match):
    y = np.array([0, 1, 2, 2])
    with pytest.raises(ValueError, match=match):
        make_imbalanced_subset(y, m, n)


# ------------------------------------------------------------------ split_identities


def test_split_identities_disjoint_and_sized():
    _, y = make_identities(random_state=0)
    for test_size in (0.2, 0.5, 0.8):
        train, test = split_identities(y, test_size, random_state=0)
        assert np.intersect1d(y[train], y[test]).size == 0
        np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
        assert abs(len(test) / len(y) - test_size) <= np.bincount(y).max() / len(y)
        assert train.dtype == test.dtype == np.int64


def test_split_identities_int_is_identity_count():
    y = np.repeat(np.arange(8), [5, 1, 1, 2, 3, 1, 1, 9])
    train, test = split_identities(y, 3, random_state=2)
    assert len(np.unique(y[test])) == 3 and len(np.unique(y[train])) == 5


def test_split_identities_reproducible():
    y = np.repeat(np.arange(30), 3)
    a = split_identities(y, random_state=4)
    b = split_identities(y, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_split_identities_both_sides_nonempty():
    y = np.array([0] * 50 + [1])
    for size in (0.01, 0.99):
        train, test = split_identities(y, size, random_state=0)
        assert len(train) > 0 and len(test) > 0


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, 0, 3, True, "half"])
def test_split_identities_invalid(test_size):
    with pytest.raises(ValueError):
        split_identities(np.array([0, 1, 2]), test_size)


def test_split_identities_single_identity():
    with pytest.raises(ValueError, match="at least 2 identities"):
        split_identities(np.zeros(5, dtype=int))


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
