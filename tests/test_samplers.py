import itertools
import math

import numpy as np
import pytest
import torch

from linkage_gcn.samplers import (
    SAMPLERS,
    Hop1Sampler,
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


def fork_rs(row, labels, pivot, k, pool):
    """The paper's code (feeder_train.py, `resample`), one pivot, on a pool without the pivot."""
    cand = list(row[:pool])
    pos = [c for c in cand if labels[c] == labels[pivot]]
    neg = [c for c in cand if labels[c] != labels[pivot]]
    if not pos:
        return neg[:k]
    if not neg:
        return pos[:k]
    if len(pos) < k / 2:
        pos = (pos * math.ceil(k / 2 / len(pos)))[: int(k / 2)]
        return pos + neg[: math.ceil(k / 2)]
    if len(neg) < k / 2:
        neg = (neg * math.ceil(k / 2 / len(neg)))[: int(k / 2)]
        return neg + pos[: math.ceil(k / 2)]
    return pos[: math.ceil(k / 2)] + neg[: int(k / 2)]


def shared_pool_table(n_piv, pool_labels, pivot_label=0):
    """`n_piv` pivots whose kNN rows are the same candidates (labels `pool_labels`)."""
    m = len(pool_labels)
    pool = np.arange(n_piv, n_piv + m)
    labels = np.concatenate([np.full(n_piv, pivot_label), pool_labels])
    # the candidates' own rows: any valid ids (other candidates and pivot 0)
    cand_rows = np.array([[c for c in range(n_piv, n_piv + m) if c != i] + [0] for i in pool])
    index = np.concatenate([np.tile(pool, (n_piv, 1)), cand_rows])
    return index, labels


# ---------------------------------------------------------------- top-k


def test_topk_takes_the_first_columns(rng):
    index, _ = random_table(rng)
    np.testing.assert_array_equal(TopKSampler(7).sample(index), index[:, :7])
    # narrower table than k: every column
    np.testing.assert_array_equal(TopKSampler(100).sample(index), index)


# ---------------------------------------------------------------- RIWS


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
        index[i] = np.insert(others, rng.integers(0, 40), partner)
    hop1 = RIWSSampler(20, 2.0).sample(index, labels, torch.Generator().manual_seed(0))
    kept = (labels[hop1] == labels[:, None]).any(1).mean()
    # eq. 4: the lone positive has weight 1/2 against 39 negatives of 1/78 each; drawn
    # 20 times without replacement it is kept with probability > 0.99
    assert kept > 0.99
    # top-k keeps it only when it sits in the first half of the pool
    assert (labels[index[:, :20]] == labels[:, None]).any(1).mean() < 0.6


def test_riws_first_draw_follows_eq4():
    # k = 1: a single weighted draw per pivot, so selection frequencies must equal
    # eq. 4: 0.5 / |pos| for each same-identity candidate, 0.5 / |neg| for the others.
    n_piv = 40000
    index, labels = shared_pool_table(n_piv, [0, 0, 1, 1, 1, 1, 1, 1])
    hop1 = RIWSSampler(1, gamma=8.0).sample(index, labels, torch.Generator().manual_seed(0))
    freq = np.bincount(hop1[:n_piv, 0] - n_piv, minlength=8) / n_piv
    expected = np.array([0.25, 0.25] + [0.5 / 6] * 6)
    np.testing.assert_allclose(freq, expected, atol=0.01)


def successive_inclusion(prob, k):
    """Exact inclusion probability of each item when k items are drawn one after another
    without replacement, each draw proportional to `prob` among the items left (as
    numpy.random.choice(p=prob, replace=False) in the paper's code)."""
    m = len(prob)
    incl = np.zeros(m)
    for seq in itertools.permutations(range(m), k):
        p, left = 1.0, 1.0
        for i in seq:
            p *= prob[i] / left
            left -= prob[i]
        incl[list(seq)] += p
    return incl


@pytest.mark.parametrize("pool_labels,k", [([0, 0, 1, 1, 1, 1], 3), ([0, 1, 1, 1, 1, 1, 1, 1], 4)])
def test_riws_inclusion_frequencies_follow_eq4_draws(pool_labels, k):
    n_piv = 60000
    m = len(pool_labels)
    index, labels = shared_pool_table(n_piv, pool_labels)
    sampler = RIWSSampler(k, gamma=m / k)
    hop1 = sampler.sample(index, labels, torch.Generator().manual_seed(3))
    freq = np.bincount((hop1[:n_piv] - n_piv).ravel(), minlength=m) / n_piv
    pos = np.array(pool_labels) == 0
    prob = np.where(pos, 0.5 / pos.sum(), 0.5 / (~pos).sum())  # eq. 4
    expected = successive_inclusion(prob, k)
    assert expected.sum() == pytest.approx(k)
    np.testing.assert_allclose(freq, expected, atol=0.008)
    # and not the inclusion of a uniform draw (k / m each)
    assert np.abs(expected - k / m).max() > 0.05


def test_riws_balanced_pool_gives_about_half_positives():
    rng = np.random.default_rng(1)
    n = 1000
    labels = np.arange(n) % 2
    index = np.empty((n, 40), dtype=np.int64)
    # every pool exactly balanced: 20 positives, 20 negatives
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
    assert s.stochastic
    a = s.sample(index, labels, torch.Generator().manual_seed(5))
    b = s.sample(index, labels, torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(a, b)
    g = torch.Generator().manual_seed(5)
    assert not np.array_equal(s.sample(index, labels, g), s.sample(index, labels, g))


def test_riws_torch_in_torch_out(rng):
    index, labels = random_table(rng)
    gen = torch.Generator().manual_seed(2)
    out = RIWSSampler(10).sample(torch.from_numpy(index), torch.from_numpy(labels), gen)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.long
    ref = RIWSSampler(10).sample(index, labels, torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(out.numpy(), ref)


# ---------------------------------------------------------------- RS


@pytest.mark.parametrize("k,gamma", [(10, 1.2), (9, 1.2), (7, 2.0), (1, 2.0), (2, 1.0), (5, 1.0)])
@pytest.mark.parametrize("n_ids", [2, 8, 40, 150])
def test_resampler_fork_matches_the_papers_code(k, gamma, n_ids, rng):
    # n_ids 2: negatives often short; 40/150: positives short or absent (one-class pools)
    index, labels = random_table(rng, n=300, width=int(gamma * k) + 2, n_ids=n_ids)
    pool = math.floor(gamma * k + 1e-9)
    sampler = ReSampler(k, gamma=gamma)
    assert sampler.mode == "fork" and not sampler.stochastic
    hop1 = sampler.sample(index, labels)
    expected = np.array([fork_rs(row, labels, i, k, pool) for i, row in enumerate(index)])
    np.testing.assert_array_equal(hop1, expected)
    # deterministic: a generator changes nothing
    np.testing.assert_array_equal(
        sampler.sample(index, labels, torch.Generator().manual_seed(9)), expected
    )


def test_resampler_fork_cases_by_hand():
    # pivot 0 (label 0); pool 1..7 in that order
    index = np.array([[1, 2, 3, 4, 5, 6, 7]] + [[0, 1, 2, 3, 4, 5, 6]] * 7)
    index[1:] = [[j for j in range(8) if j != i][:7] for i in range(1, 8)]
    cases = {
        # labels of nodes 1..7 -> hop1 of pivot 0 with k = 5 (ceil 3, floor 2)
        (0, 1, 0, 1, 1, 0, 1): [1, 3, 6, 2, 4],  # neither short: 3 positives, 2 negatives
        (1, 1, 0, 1, 1, 1, 1): [3, 3, 1, 2, 4],  # positives short: 2 (repeated), then 3 negatives
        (0, 0, 0, 1, 0, 0, 0): [4, 4, 1, 2, 3],  # negatives short: 2 (repeated), then 3 positives
        (1, 1, 1, 1, 1, 1, 1): [1, 2, 3, 4, 5],  # no positive: the top 5
        (0, 0, 0, 0, 0, 0, 0): [1, 2, 3, 4, 5],  # no negative: the top 5
    }
    for pool_labels, expected in cases.items():
        labels = np.array((0, *pool_labels))
        out = ReSampler(5, gamma=1.4).sample(index, labels)
        assert out[0].tolist() == expected, pool_labels


def test_resampler_short_side_repeated_cyclically():
    labels = np.array([0, 0, 1, 1, 1, 1, 1])
    index = np.array([[1, 2, 3, 4, 5, 6]] + [[j for j in range(7) if j != i] for i in range(1, 7)])
    assert ReSampler(6, gamma=1.0).sample(index, labels)[0].tolist() == [1, 1, 1, 2, 3, 4]
    labels = np.array([0, 0, 0, 1, 1, 1, 1])  # two positives (1, 2) for 3 slots
    assert ReSampler(6, gamma=1.0).sample(index, labels)[0].tolist() == [1, 2, 1, 3, 4, 5]


def test_resampler_random_counts_and_members(rng):
    index, labels = random_table(rng, n=400, width=24, n_ids=8)
    for k in (10, 9):
        pool = math.floor(2.0 * k)
        hop1 = ReSampler(k, gamma=2.0, mode="random").sample(
            index, labels, torch.Generator().manual_seed(0)
        )
        fork = ReSampler(k, gamma=2.0).sample(index, labels)
        for i, (row, chosen, ref) in enumerate(zip(index, hop1, fork)):
            cand = row[:pool]
            is_pos = labels[cand] == labels[i]
            # the same number of positives as the paper's code
            assert (labels[chosen] == labels[i]).sum() == (labels[ref] == labels[i]).sum()
            assert set(chosen) <= set(cand)
            for side in (cand[is_pos], cand[~is_pos]):
                picked = [c for c in chosen if c in set(side)]
                if not picked or not is_pos.any() or is_pos.all():
                    continue
                counts = np.array([picked.count(c) for c in side])
                # under-sampled: no repeats; over-sampled: every candidate, as evenly as possible
                if len(picked) <= len(side):
                    assert counts.max() == 1
                else:
                    assert counts.min() >= 1 and counts.max() - counts.min() <= 1


def test_resampler_random_undersampling_is_uniform():
    # 3 positives, 9 negatives, k = 4: 2 of the 3 positives, 2 of the 9 negatives,
    # each candidate kept with probability 2/3 and 2/9
    n_piv = 30000
    pool_labels = [0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1]
    index, labels = shared_pool_table(n_piv, pool_labels)
    sampler = ReSampler(4, gamma=3.0, mode="random")
    assert sampler.stochastic
    hop1 = sampler.sample(index, labels, torch.Generator().manual_seed(0))
    freq = np.bincount((hop1[:n_piv] - n_piv).ravel(), minlength=12) / n_piv
    expected = np.where(np.array(pool_labels) == 0, 2 / 3, 2 / 9)
    np.testing.assert_allclose(freq, expected, atol=0.01)
    g = torch.Generator().manual_seed(1)
    assert not np.array_equal(sampler.sample(index, labels, g), sampler.sample(index, labels, g))


def test_resampler_repr_and_mode():
    assert repr(ReSampler(10)) == "ReSampler(k=10, gamma=1.2)"
    assert repr(ReSampler(10, mode="random")) == "ReSampler(k=10, gamma=1.2, mode='random')"
    with pytest.raises(ValueError, match="unknown mode 'shuffle'; choose one of 'fork', 'random'"):
        ReSampler(10, mode="shuffle").pool_size()


# ---------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    "sampler", [TopKSampler(5), RIWSSampler(5, 2.0), ReSampler(5, 2.0), ReSampler(5, mode="random")]
)
def test_bad_tables_are_clear_errors(sampler, rng):
    index, labels = random_table(rng, n=50, width=12)
    bad = index.copy()
    bad[7, 2] = 50
    with pytest.raises(ValueError, match=r"knn_index holds neighbour ids outside \[0, 50\).*row 7"):
        sampler.sample(bad, labels)
    bad[7, 2] = -1
    with pytest.raises(ValueError, match=r"outside \[0, 50\).*is -1"):
        sampler.sample(bad, labels)
    bad = index.copy()
    bad[3, 1] = 3
    with pytest.raises(ValueError, match="knn_index row 3 lists itself among its own neighbours"):
        sampler.sample(bad, labels)
    with pytest.raises(ValueError, match="knn_index must hold integer neighbour ids"):
        sampler.sample(index + 0.5, labels)
    with pytest.raises(ValueError, match=r"knn_index must hold integer neighbour ids, got dtype "
                       r"torch\.bool"):  # fmt: skip
        sampler.sample(index > 3, labels)
    with pytest.raises(TypeError, match="knn_index must be numeric"):
        sampler.sample(index.astype(str), labels)
    with pytest.raises(ValueError, match=r"2-D \(N, K\) table"):
        sampler.sample(index[0], labels)
    # whole floats are refused too: ids are never rounded (the one kNN-table rule)
    with pytest.raises(ValueError, match=r"got dtype torch\.float64 .*cast a table of whole"):
        sampler.sample(index.astype(float), labels)
    with pytest.raises(ValueError, match=r"got dtype torch\.float32"):
        sampler.sample(torch.from_numpy(index).float(), labels)
    # any integer dtype is fine, and gives the same draw
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    np.testing.assert_array_equal(
        sampler.sample(index.astype(np.int32), labels, gen()), sampler.sample(index, labels, gen())
    )
    # the name of the table in the messages is the caller's
    with pytest.raises(ValueError, match="--knn_path holds neighbour ids outside"):
        sampler.sample(np.where(index == 5, 99, index), labels, name="--knn_path")


@pytest.mark.parametrize("sampler", [TopKSampler(3), RIWSSampler(2, 2.0), ReSampler(3, 1.0)])
def test_only_the_columns_read_are_checked(sampler, rng):
    """Columns beyond the pool are never read, so they may hold anything (e.g. padding)."""
    index, labels = random_table(rng, n=30, width=8)
    padded = index.copy()
    padded[:, 4:] = -1
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    np.testing.assert_array_equal(
        sampler.sample(padded, labels, gen()), sampler.sample(index, labels, gen())
    )
    padded[:, sampler.pool_size() - 1] = -1  # the last column read
    with pytest.raises(ValueError, match=f"column {sampler.pool_size() - 1} is -1"):
        sampler.sample(padded, labels)


def test_numpy_in_numpy_out_tensor_in_tensor_out(rng):
    index, _ = random_table(rng, n=30, width=8)
    out = TopKSampler(3).sample(index)
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    t = TopKSampler(3).sample(torch.from_numpy(index).int())
    assert isinstance(t, torch.Tensor) and t.dtype == torch.long
    np.testing.assert_array_equal(t.numpy(), out)
    np.testing.assert_array_equal(out, index[:, :3])  # the definition of top-k
    # a table narrower than k: top-k takes what there is
    np.testing.assert_array_equal(TopKSampler(20).sample(index), index)


@pytest.mark.parametrize("sampler", [RIWSSampler(5, 2.0), ReSampler(5, 2.0)])
def test_bad_labels_are_clear_errors(sampler, rng):
    index, labels = random_table(rng, n=50, width=12)
    with pytest.raises(ValueError, match="non-integer floats"):
        sampler.sample(index, labels + 0.5)
    with pytest.raises(ValueError, match="labels has 3 entries but knn_index has 50 rows"):
        sampler.sample(index, labels[:3])
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) or \(N, 1\)"):
        sampler.sample(index, np.stack([labels, labels], 1))
    with pytest.raises(ValueError, match="labels contains NaN"):
        sampler.sample(index, np.where(labels == 0, np.nan, labels))
    with pytest.raises(ValueError, match="labels must hold integer identities"):
        sampler.sample(index, labels.astype(str))
    with pytest.raises(ValueError, match="needs identity labels"):
        sampler.sample(index)
    # whole floats and (N, 1) columns are fine
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ref = sampler.sample(index, labels, gen())
    np.testing.assert_array_equal(sampler.sample(index, labels.astype(float), gen()), ref)
    np.testing.assert_array_equal(sampler.sample(index, labels[:, None], gen()), ref)


def test_pool_wider_than_table_is_a_clear_error(rng):
    index, labels = random_table(rng, width=15)
    with pytest.raises(ValueError, match=r"knn_index has 15 neighbours per row but 20 are needed "
                       r"\(RIWSSampler\(k=10, gamma=2.0\) draws from the floor\(gamma \* k\) = 20"):
        RIWSSampler(10, 2.0).sample(index, labels)
    with pytest.raises(ValueError, match=r"15 neighbours per row but 18 .*k\) = 18"):
        ReSampler(9, 2.0).sample(index, labels)
    with pytest.raises(ValueError, match="gamma"):
        RIWSSampler(5, 0.5).sample(index, labels)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        TopKSampler(0).sample(index)


def test_resolve_sampler():
    assert repr(resolve_sampler("riws", 10, gamma=1.5)) == "RIWSSampler(k=10, gamma=1.5)"
    rs = resolve_sampler("rs", 10, gamma=1.2)
    assert repr(rs) == "ReSampler(k=10, gamma=1.2)" and rs.mode == "fork"
    assert repr(resolve_sampler("topk", 10, gamma=2.0)) == "TopKSampler(k=10)"
    s = RIWSSampler(10)
    assert resolve_sampler(s, 10, gamma=1.5) is s  # an object keeps its own parameters
    assert resolve_sampler(RIWSSampler(3), None).k == 3
    with pytest.raises(ValueError, match=r"RIWSSampler\(k=3, gamma=2.0\) selects k=3 .* k=10"):
        resolve_sampler(RIWSSampler(3), 10)
    with pytest.raises(ValueError, match=r"unknown sampler 'smote'.* or pass a Hop1Sampler"):
        resolve_sampler("smote", 10)
    with pytest.raises(ValueError, match="k is needed"):
        resolve_sampler("riws", None)


# ---------------------------------------------------------------- the old name


def test_neighbor_sampler_is_a_deprecated_alias_of_hop1_sampler():
    import linkage_gcn.samplers as samplers

    assert "NeighborSampler" not in samplers.__all__ and "Hop1Sampler" in samplers.__all__
    with pytest.warns(DeprecationWarning, match="NeighborSampler is deprecated.*Hop1Sampler"):
        old = samplers.NeighborSampler
    assert old is Hop1Sampler
    assert isinstance(TopKSampler(2), old)  # isinstance checks keep working
    with pytest.warns(DeprecationWarning):
        from linkage_gcn.samplers import NeighborSampler  # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'NoSuchSampler'"):
        samplers.NoSuchSampler  # noqa: B018


def test_hop1_sampler_base_and_registry():
    assert all(issubclass(cls, Hop1Sampler) for cls in SAMPLERS.values())
    with pytest.raises(NotImplementedError):
        Hop1Sampler(2).sample(np.array([[1], [0]]))
    assert repr(Hop1Sampler(3)) == "Hop1Sampler(k=3)"


def test_generator_and_parameters_are_checked_up_front(rng):
    index, labels = random_table(rng, n=30, width=8)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None, got int "
                       r"\(for a seed, pass torch.Generator\(\).manual_seed\(5\)\)"):  # fmt: skip
        RIWSSampler(2).sample(index, labels, generator=5)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        TopKSampler(2).sample(index, generator=np.random.default_rng(0))
    # resolve_sampler builds a sampler whose parameters are valid, or says why now
    with pytest.raises(ValueError, match="gamma must be a finite number, got 'x'"):
        resolve_sampler("riws", 2, gamma="x")
    with pytest.raises(ValueError, match="gamma must be a number in"):
        resolve_sampler("rs", 2, gamma=0.5)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        resolve_sampler("topk", 0)
    with pytest.raises(ValueError, match="unknown mode"):
        resolve_sampler(ReSampler(2, mode="shuffle"), 2)
