"""Identity-disjoint splits, folds and imbalanced subsets, against independent definitions."""

from __future__ import annotations

import numpy as np
import pytest

from linkage_gcn.datasets import make_identities
from linkage_gcn.model_selection import identity_folds, make_imbalanced_subset, split_identities

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


# ------------------------------------------------------------------ identity_folds


def _snake_folds(y, n_folds, keys):
    """The definition, one identity at a time: by decreasing size (ties: ``keys``), snake order."""
    ids, counts = np.unique(y, return_counts=True)
    order = sorted(range(len(ids)), key=lambda g: (-counts[g], keys[g]))
    fold_of = {}
    for rank, g in enumerate(order):
        lap, pos = divmod(rank, n_folds)
        fold_of[ids[g]] = pos if lap % 2 == 0 else n_folds - 1 - pos
    return np.array([fold_of[label] for label in y.tolist()])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_identity_folds_match_the_snake_definition(seed, n_folds):
    rng = np.random.default_rng(seed)
    y = _random_labels(rng)
    if len(np.unique(y)) < n_folds:
        pytest.skip("too few identities")
    folds = identity_folds(y, n_folds, random_state=seed)
    keys = np.random.default_rng(seed).random(len(np.unique(y)))
    np.testing.assert_array_equal(folds, _snake_folds(y, n_folds, keys))
    assert folds.dtype == np.int64 and set(folds.tolist()) == set(range(n_folds))
    for label in np.unique(y):  # an identity is never split
        assert len(set(folds[y == label].tolist())) == 1


def test_identity_folds_balance_samples():
    y = np.repeat(np.arange(40), np.arange(40) % 7 + 1)
    counts = np.bincount(identity_folds(y, 4, random_state=0))
    assert counts.max() - counts.min() <= 7  # at most about one identity apart


@pytest.mark.parametrize(
    ("n_folds", "match"),
    [(1, "n_folds must be an integer >= 2"), (4, "n_folds must be an integer <= 3"),
     (2.0, "n_folds must be an integer"), (True, "n_folds must be an integer")],
)  # fmt: skip
def test_identity_folds_invalid(n_folds, match):
    with pytest.raises(ValueError, match=match):
        identity_folds(np.array([0, 0, 1, 2]), n_folds)


def test_identity_folds_need_two_identities():
    with pytest.raises(ValueError, match="2 identity-disjoint folds need at least 2 identities"):
        identity_folds(np.zeros(4, dtype=int), 2)


@pytest.mark.parametrize(
    "fn",
    [split_identities, lambda y, **kw: identity_folds(y, 2, **kw),
     lambda y, **kw: make_imbalanced_subset(y, 1, 1, **kw)],
    ids=["split_identities", "identity_folds", "make_imbalanced_subset"],
)  # fmt: skip
def test_bad_labels_and_random_state_are_named(fn):
    with pytest.raises(ValueError, match="y must hold integer identities"):
        fn(np.array([0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(N,\) or \(N, 1\)"):
        fn(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="y is None"):
        fn(None)
    y = np.array([0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match="random_state must be None, an int"):
        fn(y, random_state="a")
    with pytest.raises(ValueError, match="random_state must be a non-negative int seed"):
        fn(y, random_state=-3)
    # a Generator is advanced, a RandomState seeds a new one: both reproducible
    a = fn(y, random_state=np.random.RandomState(5))
    b = fn(y, random_state=np.random.RandomState(5))
    for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        np.testing.assert_array_equal(u, v)
