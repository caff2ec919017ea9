import numpy as np
import pytest
import torch

from linkage_gcn.samplers import (
    ReSampler,
    RIWSSampler,
    TopKSampler,
    resolve_sampler,
)


def random_table(rng, n=200, width=40, n_ids=20):
    """A kNN-like table (self excluded) and labels."""
    labels = rng.integers(0, n_ids, size=n)
    index = np.stack(
        [rng.choice(np.delete(np.arange(n), i), width, replace=False) for i in range(n)]
    )
    return index, labels


def test_topk_takes_the_first_columns(rng):
    index, _ = random_table(rng)
    np.testing.assert_array_equal(TopKSampler(7).sample(index), index[:, :7])
    # narrower table than k: every column
    assert TopKSampler(100).sample(index).shape == (200, 40)


@pytest.mark.parametrize("k,gamma", [(10, 2.0), (5, 1.5), (20, 2.0), (7, 3.3)])
def test_riws_pool_membership_and_no_duplicates(k, gamma, rng):
    index, labels = random_table(rng, width=int(k * gamma) + 3)
    hop1 = RIWSSampler(k, gamma).sample(index, labels, torch.Generator().manual_seed(1))
    pool = int(np.floor(gamma * k))
    assert hop1.shape == (len(index), k)
    for row, chosen in zip(index, hop1):
        assert set(chosen) <= set(row[:pool])
        assert len(set(chosen)) == k
        # returned in pool order (decreasing similarity)
        pos = [list(row).index(c) for c in chosen]
        assert pos == sorted(pos)


def test_riws_gamma_one_is_topk(rng):
    index, labels = random_table(rng)
    out = RIWSSampler(12, gamma=1.0).sample(index, labels, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(out, index[:, :12])


def test_riws_keeps_rare_positives():
    # every pivot's pool of 40 holds exactly one positive (at a random place)
    rng = np.random.default_rng(0)
    n = 2000
    labels = np.arange(n) // 2  # pairs of identical identity
    index = np.empty((n, 40), dtype=np.int64)
    for i in range(n):
        partner = i ^ 1
        others = rng.choice(np.setdiff1d(np.arange(n), [i, partner]), 39, replace=False)
        row = np.insert(others, rng.integers(0, 40), partner)
        index[i] = row
    hop1 = RIWSSampler(20, 2.0).sample(index, labels, torch.Generator().manual_seed(0))
    kept = (labels[hop1] == labels[:, None]).any(1).mean()
    assert kept > 0.99
    # top-k would keep it only when it sits in the first half of the pool
    assert (labels[index[:, :20]] == labels[:, None]).any(1).mean() < 0.6


def test_riws_balanced_pool_gives_about_half_positives():
    rng = np.random.default_rng(1)
    n = 1000
    labels = np.arange(n) % 2
    index = np.stack([rng.choice(np.delete(np.arange(n), i), 40, replace=False) for i in range(n)])
    # make every pool exactly balanced: 20 positives, 20 negatives
    for i in range(n):
        same = np.flatnonzero(labels == labels[i])
        same = same[same != i]
        diff = np.flatnonzero(labels != labels[i])
        index[i] = np.concatenate(
            [rng.choice(same, 20, replace=False), rng.choice(diff, 20, replace=False)]
        )
    hop1 = RIWSSampler(20, 2.0).sample(index, labels, torch.Generator().manual_seed(0))
    frac = (labels[hop1] == labels[:, None]).mean()
    assert abs(frac - 0.5) < 0.02


def test_riws_first_draw_follows_eq4():
    # k = 1: a single weighted draw per pivot, so selection frequencies must equal
    # eq. 4: 0.5 / |pos| for each same-identity candidate, 0.5 / |neg| for the others.
    n_piv = 40000
    pool = np.arange(n_piv, n_piv + 8)  # 8 candidate nodes shared by every pivot
    labels = np.concatenate([np.zeros(n_piv, dtype=int), [0, 0, 1, 1, 1, 1, 1, 1]])
    index = np.concatenate([np.tile(pool, (n_piv, 1)), np.tile(np.arange(8), (8, 1))])
    hop1 = RIWSSampler(1, gamma=8.0).sample(index, labels, torch.Generator().manual_seed(0))
    freq = np.bincount(hop1[:n_piv, 0] - n_piv, minlength=8) / n_piv
    expected = np.array([0.25, 0.25] + [0.5 / 6] * 6)
    np.testing.assert_allclose(freq, expected, atol=0.01)


def test_riws_one_class_pool_takes_topk(rng):
    index, _ = random_table(rng)
    labels = np.zeros(len(index), dtype=int)  # everything positive
    out = RIWSSampler(10, 2.0).sample(index, labels, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(out, index[:, :10])
    labels = np.arange(len(index))  # everything negative
    out = RIWSSampler(10, 2.0).sample(index, labels, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(out, index[:, :10])


def test_riws_reproducible_and_fresh_per_call(rng):
    index, labels = random_table(rng)
    s = RIWSSampler(10)
    a = s.sample(index, labels, torch.Generator().manual_seed(5))
    b = s.sample(index, labels, torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(a, b)
    g = torch.Generator().manual_seed(5)
    assert not np.array_equal(s.sample(index, labels, g), s.sample(index, labels, g))


def test_riws_torch_in_torch_out(rng):
    index, labels = random_table(rng)
    out = RIWSSampler(10).sample(torch.from_numpy(index), torch.from_numpy(labels))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.long


def test_pool_wider_than_table_is_a_clear_error(rng):
    index, labels = random_table(rng, width=15)
    with pytest.raises(ValueError, match=r"floor\(gamma \* k\) = 20 nearest neighbours.*only 15"):
        RIWSSampler(10, 2.0).sample(index, labels)
    with pytest.raises(ValueError, match="needs identity labels"):
        RIWSSampler(5, 2.0).sample(index)
    with pytest.raises(ValueError, match="gamma"):
        RIWSSampler(5, 0.5).sample(index, labels)
    with pytest.raises(ValueError, match="labels has 3 entries"):
        RIWSSampler(5).sample(index, labels[:3])


def test_resampler_half_and_half(rng):
    index, labels = random_table(rng, n=400, width=24, n_ids=8)
    hop1 = ReSampler(10, gamma=2.0).sample(index, labels, torch.Generator().manual_seed(0))
    pos_in_pool = (labels[index[:, :20]] == labels[:, None]).sum(1)
    both = (pos_in_pool > 0) & (pos_in_pool < 20)
    is_pos = labels[hop1] == labels[:, None]
    assert (is_pos[both].sum(1) == 5).all()
    for row, chosen, n_pos in zip(index, hop1, pos_in_pool):
        assert set(chosen) <= set(row[:20])
        if 5 <= n_pos <= 15:  # enough on both sides: no duplicates
            assert len(set(chosen)) == 10


def test_resampler_oversamples_short_side_by_duplication():
    labels = np.array([0, 0, 1, 1, 1, 1, 1])
    index = np.array([[1, 2, 3, 4, 5, 6]] + [[0, 2, 3, 4, 5, 6]] * 6)
    hop1 = ReSampler(6, gamma=1.0).sample(index, labels, torch.Generator().manual_seed(0))
    assert hop1[0].tolist().count(1) == 3  # the single positive, duplicated to fill k/2
    negatives = [v for v in hop1[0].tolist() if v != 1]
    assert len(set(negatives)) == 3 and set(negatives) <= {2, 3, 4, 5, 6}


def test_resolve_sampler():
    assert repr(resolve_sampler("riws", 10, gamma=1.5)) == "RIWSSampler(k=10, gamma=1.5)"
    assert repr(resolve_sampler("rs", 10, gamma=1.2)) == "ReSampler(k=10, gamma=1.2)"
    assert repr(resolve_sampler("topk", 10, gamma=2.0)) == "TopKSampler(k=10)"
    s = RIWSSampler(3)
    assert resolve_sampler(s, 10) is s
    with pytest.raises(ValueError, match="unknown sampler 'smote'"):
        resolve_sampler("smote", 10)
