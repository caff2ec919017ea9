"""Chinese whispers and Infomap on weighted edge lists, against independent definitions."""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from linkage_gcn import community
from linkage_gcn.community import INFOMAP_INSTALL_HINT, chinese_whispers, infomap
from linkage_gcn.metrics import bcubed_fscore

# --------------------------------------------------------------------------------------
# Independent definitions


def sequential_cw(edges, weights, n, *, rounds, rng, same_draws_as_blocks=False):
    """Chinese whispers written from its definition, one node at a time.

    Every round visits the nodes in a random order; a node takes the label of
    largest summed weight among its edges (a self loop counts once, for its
    own label), ties broken at random. With ``same_draws_as_blocks`` it draws
    its randomness in the order the vectorised version does with one node per
    block (a permutation per round, then one uniform number per distinct
    neighbour label, in increasing label order), so both must agree exactly.
    """
    adj = defaultdict(list)
    for (a, b), w in zip(edges, weights):
        adj[a].append((b, w))
        if a != b:
            adj[b].append((a, w))
    labels = list(range(n))
    for _ in range(rounds):
        changed = 0
        for node in rng.permutation(n).tolist():
            if not adj[node]:
                continue
            sums = defaultdict(float)
            for other, w in adj[node]:
                sums[labels[other]] += w
            keys = sorted(sums)
            best = max(sums.values())
            if same_draws_as_blocks:
                draws = rng.random(len(keys))
                new = max((k for k in keys if sums[k] == best), key=lambda k: draws[keys.index(k)])
            else:
                new = rng.choice([k for k in keys if sums[k] == best])
            changed += new != labels[node]
            labels[node] = new
        if changed == 0:
            break
    return np.asarray(labels)


def block_cw(edges, weights, n, *, n_blocks, rng, max_iter=100):
    """Chinese whispers by blocks, written from its definition with plain Python containers.

    Every round draws a permutation of the nodes; position ``i`` goes to block
    ``i * n_blocks // n``. Block by block, each node of the block with an edge
    sums the weights of its neighbours' labels as the earlier blocks left
    them (a self loop counts once, for its own label); then one uniform draw
    per distinct label of each of these nodes, nodes and labels in increasing
    order; a node takes, among its labels of the largest sum (to within 1e-12,
    relative), the one of the largest draw. Returns the labels and the number
    changed in each round.
    """
    adj = defaultdict(list)
    for (a, b), w in zip(edges, weights):
        adj[a].append((b, w))
        if a != b:
            adj[b].append((a, w))
    n_blocks = min(n_blocks, n)
    labels, changed = list(range(n)), []
    for _ in range(max_iter):
        blocks = [[] for _ in range(n_blocks)]
        for i, node in enumerate(rng.permutation(n).tolist()):
            blocks[i * n_blocks // n].append(node)
        moved = 0
        for block in blocks:
            nodes = sorted(node for node in block if adj[node])
            if not nodes:
                continue
            sums = {}
            for node in nodes:
                sums[node] = defaultdict(float)
                for other, w in adj[node]:
                    sums[node][labels[other]] += w
            draws = iter(rng.random(sum(len(s) for s in sums.values())).tolist())
            new = {}
            for node in nodes:
                keys = sorted(sums[node])
                draw = {key: next(draws) for key in keys}
                best = max(sums[node].values())
                tied = [key for key in keys if sums[node][key] >= best - 1e-12 * abs(best)]
                new[node] = max(tied, key=draw.__getitem__)  # the first (smallest) of equal draws
            for node in nodes:
                moved += new[node] != labels[node]
                labels[node] = new[node]
        changed.append(moved)
        if moved == 0:
            break
    return np.asarray(labels), changed


def same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def cliques(sizes, *, weak=(), strong=1.0):
    """Edges of disjoint cliques of the given sizes, plus weak edges ``(i, j, w)``."""
    edges, weights, start = [], [], 0
    for size in sizes:
        for i in range(start, start + size):
            for j in range(i + 1, start + size):
                edges.append((i, j))
                weights.append(strong)
        start += size
    for i, j, w in weak:
        edges.append((i, j))
        weights.append(w)
    return np.array(edges).T, np.array(weights), start


def planted_partition(rng, sizes, p_in, p_out):
    """A random graph with dense groups (probability p_in) and sparse links between them."""
    y = np.repeat(np.arange(len(sizes)), sizes)
    n = y.size
    i, j = np.triu_indices(n, 1)
    p = np.where(y[i] == y[j], p_in, p_out)
    keep = rng.random(p.size) < p
    return np.vstack([i[keep], j[keep]]), y


# --------------------------------------------------------------------------------------
# Chinese whispers


def test_cw_two_cliques_weak_bridge_and_isolated_node():
    edge_index, w, n = cliques([4, 5], weak=[(3, 4, 0.2)])
    labels = chinese_whispers(edge_index, w, n + 1, random_state=0)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0] * 4 + [1] * 5 + [2]


@pytest.mark.parametrize("seed", range(5))
def test_cw_equals_sequential_definition_exactly_with_one_node_per_block(seed):
    rng = np.random.default_rng(100 + seed)
    n = 40
    edge_index, _ = planted_partition(rng, [12, 10, 8, 6, 4], 0.5, 0.05)
    weights = rng.integers(1, 4, edge_index.shape[1]).astype(float)  # sums without rounding
    loops = np.arange(0, n, 3)  # some self loops, and a few isolated nodes
    edge_index = np.hstack([edge_index, np.vstack([loops, loops])])
    weights = np.concatenate([weights, np.ones(loops.size)])
    ours = chinese_whispers(edge_index, weights, n, n_blocks=n, random_state=seed)
    ref = sequential_cw(
        edge_index.T.tolist(),
        weights.tolist(),
        n,
        rounds=100,
        rng=np.random.default_rng(seed),
        same_draws_as_blocks=True,
    )
    np.testing.assert_array_equal(ours, _first(ref))


@pytest.mark.parametrize("graph_seed", range(3))
def test_cw_blocks_find_the_same_clear_partition_as_the_sequential_version(graph_seed):
    """Dense groups, few stray edges: both find the planted groups in (nearly) every run.

    Chinese whispers itself merges two groups now and then (sequentially too,
    a few runs in a hundred here), so this compares how often each succeeds.
    """
    rng = np.random.default_rng(graph_seed)
    edge_index, y = planted_partition(rng, [30, 20, 15, 10, 8, 6], 0.9, 0.003)
    n, ones = y.size, [1.0] * edge_index.shape[1]
    ours = [chinese_whispers(edge_index, None, n, random_state=s) for s in range(20)]
    ref = [
        sequential_cw(edge_index.T.tolist(), ones, n, rounds=100, rng=np.random.default_rng(s))
        for s in range(20)
    ]
    ours_ok = np.mean([same_partition(labels, y) for labels in ours])
    ref_ok = np.mean([same_partition(labels, y) for labels in ref])
    assert ours_ok >= 0.85 and ref_ok >= 0.85
    assert abs(ours_ok - ref_ok) <= 0.15


def test_cw_quality_matches_sequential_on_a_noisy_graph():
    """On an ambiguous graph the partitions differ from run to run, their quality does not."""
    rng = np.random.default_rng(7)
    edge_index, y = planted_partition(rng, rng.integers(1, 25, 40), 0.3, 0.004)
    n, ones = y.size, [1.0] * edge_index.shape[1]
    ours = [
        bcubed_fscore(y, chinese_whispers(edge_index, None, n, random_state=s))[2] for s in range(5)
    ]
    ref = [
        bcubed_fscore(y, sequential_cw(edge_index.T.tolist(), ones, n, rounds=30, rng=rng))[2]
        for _ in range(5)
    ]
    assert abs(np.mean(ours) - np.mean(ref)) < 0.03


def test_cw_is_deterministic_given_random_state():
    rng = np.random.default_rng(3)
    edge_index, y = planted_partition(rng, rng.integers(1, 30, 40), 0.3, 0.01)
    a = chinese_whispers(edge_index, None, y.size, random_state=11)
    b = chinese_whispers(edge_index, None, y.size, random_state=11)
    np.testing.assert_array_equal(a, b)
    gen = np.random.default_rng(11)
    np.testing.assert_array_equal(chinese_whispers(edge_index, None, y.size, random_state=gen), a)


def test_cw_breaks_ties_at_random_not_by_smallest_label():
    # node 8 hangs between two cliques with equal weight: either side, depending on the seed
    edge_index, w, _ = cliques([4, 4], weak=[(8, 0, 1.0), (8, 4, 1.0)], strong=5.0)
    sides = {
        tuple(chinese_whispers(edge_index, w, 9, random_state=s)[[0, 4, 8]]) for s in range(40)
    }
    assert sides == {(0, 1, 0), (0, 1, 1)}


def test_cw_weights_decide_and_duplicates_add_up():
    # nodes 0 and 1 keep their labels (heavy self loops); node 2 joins the heavier side
    edge_index = np.array([[0, 1, 2, 0, 2], [0, 1, 0, 2, 1]])
    weights = np.array([10.0, 10.0, 1.0, 1.0, 1.5])  # 2-0 listed twice (1 + 1 > 1.5)
    for seed in range(5):
        assert chinese_whispers(edge_index, weights, 3, random_state=seed).tolist() == [0, 1, 0]
    weights[4] = 2.5
    assert chinese_whispers(edge_index, weights, 3, random_state=0).tolist() == [0, 1, 1]


def test_cw_isolated_nodes_self_loops_and_empty_graph():
    assert chinese_whispers(np.zeros((2, 0), dtype=int), None, 3).tolist() == [0, 1, 2]
    # a node with only a self loop stays alone; a pair without self loops ends together
    labels = chinese_whispers(np.array([[0, 1], [0, 2]]), None, 4, random_state=0)
    assert labels.tolist() == [0, 1, 1, 2]


def test_cw_max_iter_zero_and_info():
    edge_index, w, n = cliques([3, 3])
    assert chinese_whispers(edge_index, w, n, max_iter=0).tolist() == list(range(n))
    labels, info = chinese_whispers(edge_index, w, n, random_state=0, return_info=True)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert info["converged"] and info["changed"][-1] == 0
    assert info["rounds"] == len(info["changed"]) <= 100
    _, info = chinese_whispers(edge_index, w, n, max_iter=1, random_state=0, return_info=True)
    assert info["rounds"] == 1 and not info["converged"]


def test_cw_accepts_torch_and_numbers_labels_by_first_appearance():
    edge_index, w, n = cliques([2, 3])
    perm = np.array([4, 0, 3, 1, 2])  # the pair becomes {4, 0}, the triangle {3, 1, 2}
    labels = chinese_whispers(torch.as_tensor(perm[edge_index]), torch.as_tensor(w), n)
    assert labels.tolist() == [0, 1, 1, 1, 0]


def knn_like(rng, n, k=6, p_same=0.8):
    """A small kNN-like graph: groups of long-tailed sizes, k candidate neighbours per node."""
    sizes = np.minimum(1 + rng.poisson(30 * np.arange(1, n + 1) ** -0.85), 40)
    y = np.repeat(np.arange(sizes.size), sizes)[:n]
    start = np.r_[0, np.cumsum(np.bincount(y))[:-1]]
    size = np.bincount(y)
    node = np.repeat(np.arange(n), k)
    inside = rng.random(node.size) < p_same
    other = np.where(
        inside,
        start[y[node]] + rng.integers(0, 10**9, node.size) % size[y[node]],
        rng.integers(0, n, node.size),
    )
    keep = other != node
    return np.vstack([node[keep], other[keep]]), y


def edge_cases_graph(rng, n=90):
    """Groups plus self loops, a pair listed twice (both orientations) and isolated nodes."""
    edge_index, _ = planted_partition(rng, [20, 15, 12, 10, 8, 5, 3], 0.4, 0.03)
    edge_index = edge_index[:, edge_index.max(axis=0) < n - 4]  # the last four are isolated
    loops = np.arange(0, n - 4, 7)
    twice = edge_index[:, :5][::-1]
    return np.hstack([edge_index, np.vstack([loops, loops]), twice])


WEIGHTS = {
    "integers": lambda rng, e: rng.integers(1, 4, e).astype(float),  # sums without rounding
    "scores": lambda rng, e: rng.uniform(0.5, 1.0, e),
    "none": lambda rng, e: None,  # weight 1: ties everywhere in the first rounds
    "signed": lambda rng, e: rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0], e),
}


@pytest.mark.parametrize("weights", sorted(WEIGHTS))
@pytest.mark.parametrize("n_blocks", [1, 2, 3, 16, 90, 500])
def test_cw_equals_the_block_definition_exactly(n_blocks, weights):
    """Same draws, same order: the same labels and the same changes per round, any block count."""
    rng = np.random.default_rng(n_blocks)
    edge_index = edge_cases_graph(rng)
    w = WEIGHTS[weights](rng, edge_index.shape[1])
    for seed in range(3):
        ours, info = chinese_whispers(
            edge_index, w, 90, n_blocks=n_blocks, random_state=seed, return_info=True
        )
        ref, changed = block_cw(
            edge_index.T.tolist(),
            [1.0] * edge_index.shape[1] if w is None else w.tolist(),
            90,
            n_blocks=n_blocks,
            rng=np.random.default_rng(seed),
        )
        np.testing.assert_array_equal(ours, _first(ref))
        assert info["changed"] == changed
        assert info["rounds"] == len(changed)


@pytest.mark.parametrize("seed", range(3))
def test_cw_equals_the_block_definition_on_a_knn_like_graph_with_many_rounds(seed):
    rng = np.random.default_rng(seed)
    edge_index, _ = knn_like(rng, 1500)
    w = rng.uniform(0.0, 1.0, edge_index.shape[1])
    ours, info = chinese_whispers(edge_index, w, 1500, random_state=seed, return_info=True)
    ref, changed = block_cw(
        edge_index.T.tolist(), w.tolist(), 1500, n_blocks=16, rng=np.random.default_rng(seed)
    )
    np.testing.assert_array_equal(ours, _first(ref))
    assert info["changed"] == changed and info["rounds"] >= 5
    np.testing.assert_array_equal(ours, _first(ours))  # numbered by first appearance


def test_cw_recomputes_only_the_nodes_whose_neighbourhood_changed(monkeypatch):
    """Late rounds redo few nodes: the work per round falls with the labels that move."""
    rng = np.random.default_rng(0)
    edge_index, _ = knn_like(rng, 3000)
    w = rng.uniform(0.0, 1.0, edge_index.shape[1])
    expected, info = chinese_whispers(edge_index, w, 3000, random_state=1, return_info=True)
    redone = []
    original = sp.csr_matrix.sum_duplicates

    def spy(self):  # called once per block on the nodes it recomputes
        redone.append(self.shape[0])
        return original(self)

    monkeypatch.setattr(sp.csr_matrix, "sum_duplicates", spy)
    again = chinese_whispers(edge_index, w, 3000, random_state=1)
    np.testing.assert_array_equal(again, expected)
    assert info["rounds"] >= 6
    # the first round computes every node; all rounds together, far fewer than rounds * N
    assert 3000 <= sum(redone) < 0.5 * info["rounds"] * 3000


def test_cw_draws_depend_on_the_seed_and_the_generator_is_advanced():
    rng = np.random.default_rng(2)
    edge_index, _ = knn_like(rng, 400)
    runs = {tuple(chinese_whispers(edge_index, None, 400, random_state=s)) for s in range(6)}
    assert len(runs) > 1  # weight 1 and a noisy graph: the seed matters
    gen = np.random.default_rng(5)
    first = chinese_whispers(edge_index, None, 400, random_state=gen)
    second = chinese_whispers(edge_index, None, 400, random_state=gen)  # from a later state
    ref_gen = np.random.default_rng(5)
    edges, ones = edge_index.T.tolist(), [1.0] * edge_index.shape[1]
    ref_first, _ = block_cw(edges, ones, 400, n_blocks=16, rng=ref_gen)
    ref_second, _ = block_cw(edges, ones, 400, n_blocks=16, rng=ref_gen)
    np.testing.assert_array_equal(first, _first(ref_first))
    np.testing.assert_array_equal(second, _first(ref_second))
    assert not np.array_equal(first, second)


class EqualDraws(np.random.Generator):
    """A generator whose uniform draws are all equal: a tie goes to the smallest label."""

    def random(self, size=None):
        return np.full(size, 0.5)


def test_cw_equal_draws_go_to_the_smallest_tied_label():
    rng = np.random.default_rng(3)
    edge_index, _ = knn_like(rng, 300)
    for seed in range(3):
        equal = EqualDraws(np.random.PCG64(seed))
        ours = chinese_whispers(edge_index, None, 300, random_state=equal)
        ref, _ = block_cw(edge_index.T.tolist(), [1.0] * edge_index.shape[1], 300, n_blocks=16,
                          rng=EqualDraws(np.random.PCG64(seed)))  # fmt: skip
        np.testing.assert_array_equal(ours, _first(ref))


def test_cw_sums_equal_but_for_rounding_are_a_tie():
    # node 0: label of {1, 2} by 0.1 + 0.2 (0.30000000000000004), label of 3 by 0.3
    edge_index = np.array([[1, 3, 0, 0, 0], [2, 3, 1, 2, 3]])
    weights = np.array([20.0, 10.0, 0.1, 0.2, 0.3])
    sides = set()
    for seed in range(40):
        labels = chinese_whispers(edge_index, weights, 4, random_state=seed)
        assert labels[1] == labels[2] != labels[3]
        sides.add(int(labels[0] == labels[3]))
    assert sides == {0, 1}


def test_bench_merge_runs_and_finds_the_old_and_new_partitions_identical():
    """The benchmark's copy of the 0.2.0 implementation agrees with the package, in one run."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).parents[1] / "examples" / "benchmarks" / "bench_merge.py"
    run = subprocess.run(
        [sys.executable, str(script), "--edges", "3000", "20000"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("identical: True") == 4, run.stdout
    assert "identical: False" not in run.stdout


def test_ranges_helper():
    first, size = np.array([5, 0, 9], dtype=np.int32), np.array([2, 0, 3])
    assert community._ranges(first, size).tolist() == [5, 6, 9, 10, 11]
    assert community._ranges(first[:0], size[:0]).tolist() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"edge_index": np.zeros((3, 2), dtype=int)}, r"shape \(2, E\).*transpose"),
        ({"edge_index": np.array([[0], [5]])}, "outside"),
        ({"edge_index": np.array([[0], [-1]])}, "outside"),
        ({"edge_index": np.array([[0.0], [1.0]])}, "integer"),
        ({"weights": np.ones(2)}, r"shape \(E,\)"),
        ({"weights": np.array([np.nan])}, "NaN"),
        ({"weights": np.array([np.inf])}, "infinite"),
        ({"num_nodes": 0}, "num_nodes"),
        ({"num_nodes": True}, "num_nodes"),
        ({"max_iter": -1}, "max_iter"),
        ({"n_blocks": 0}, "n_blocks"),
    ],
)
def test_cw_validates_inputs(kwargs, message):
    args = {"edge_index": np.array([[0], [1]]), "weights": np.ones(1), "num_nodes": 3}
    args.update(kwargs)
    extra = {k: args.pop(k) for k in ("max_iter", "n_blocks") if k in args}
    with pytest.raises(ValueError, match=message):
        chinese_whispers(args["edge_index"], args["weights"], args["num_nodes"], **extra)


# --------------------------------------------------------------------------------------
# Infomap


def test_infomap_two_cliques_and_isolated_node():
    pytest.importorskip("infomap")
    edge_index, w, n = cliques([5, 6], weak=[(4, 5, 0.1)])
    labels = infomap(edge_index, w, n + 2, random_state=0)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0] * 5 + [1] * 6 + [2, 3]


def test_infomap_finds_planted_groups_deterministically(capfd):
    pytest.importorskip("infomap")
    rng = np.random.default_rng(0)
    edge_index, y = planted_partition(rng, [30, 20, 15, 10, 8, 5], 0.8, 0.005)
    a = infomap(edge_index, None, y.size, random_state=5)
    b = infomap(edge_index, None, y.size, random_state=5, num_trials=1)
    np.testing.assert_array_equal(a, b)
    assert bcubed_fscore(y, a)[2] > 0.95
    assert capfd.readouterr().out == ""  # silent


def test_infomap_self_loops_zero_weights_directed_and_torch():
    pytest.importorskip("infomap")
    edge_index, w, _ = cliques([4, 4])
    # self loops and zero-weight edges are dropped: node 8 and 9 stay alone
    extra = np.array([[8, 9, 0], [8, 0, 4]])
    labels = infomap(np.hstack([edge_index, extra]), np.r_[w, 1.0, 0.0, 0.0], 10, random_state=0)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2, 3]
    directed = infomap(
        torch.as_tensor(np.hstack([edge_index, edge_index[::-1]])),
        torch.as_tensor(np.r_[w, w]),
        8,
        directed=True,
        random_state=0,
    )
    assert directed.tolist() == [0] * 4 + [1] * 4


def test_infomap_refuses_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        infomap(np.array([[0], [1]]), np.array([-1.0]), 2)


def test_infomap_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "infomap", None)  # import infomap now raises ImportError
    with pytest.raises(ModuleNotFoundError, match="GPL") as err:
        infomap(np.array([[0], [1]]), None, 2)
    assert "pip install 'linkage-gcn[infomap]'" in str(err.value)
    assert "pip install 'linkage-gcn[infomap]'" in INFOMAP_INSTALL_HINT


def _first(labels):
    """Renumber labels 0..C-1 by first appearance."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def test_consensus_keeps_the_links_most_runs_agree_on(monkeypatch):
    # a path 0-1-2-3-4; three runs cut it at different places
    edge_index = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    runs = iter(
        [
            np.array([0, 0, 0, 1, 1]),  # cuts 2-3
            np.array([0, 0, 1, 1, 1]),  # cuts 1-2
            np.array([0, 0, 0, 1, 1]),  # cuts 2-3
        ]
    )
    monkeypatch.setattr(community, "_cw_labels", lambda *a, **k: (next(runs), []))
    labels = community.consensus_chinese_whispers(edge_index, None, 6, n_runs=3, random_state=0)
    # votes per edge: 0-1 3/3, 1-2 2/3, 2-3 1/3, 3-4 3/3; node 5 is in no edge
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])


def test_consensus_is_deterministic_and_finds_clear_communities():
    rng = np.random.default_rng(0)
    blocks = [np.arange(0, 30), np.arange(30, 50), np.arange(50, 56)]
    pairs = [np.array(np.triu_indices(b.size, 1)) + b[0] for b in blocks]
    edge_index = np.concatenate([*pairs, [[5, 40], [31, 52]]], axis=1)
    weights = np.concatenate([rng.uniform(0.8, 1.0, p.shape[1]) for p in pairs] + [[0.1, 0.1]])
    a = community.consensus_chinese_whispers(edge_index, weights, 57, n_runs=5, random_state=3)
    b = community.consensus_chinese_whispers(edge_index, weights, 57, n_runs=5, random_state=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.repeat([0, 1, 2, 3], [30, 20, 6, 1]))
    with pytest.raises(ValueError, match="n_runs"):
        community.consensus_chinese_whispers(edge_index, weights, 57, n_runs=0)


def test_consensus_is_the_majority_of_chinese_whispers_runs_seeded_as_documented():
    """One adjacency for all runs changes nothing: the runs are chinese_whispers' own."""
    rng = np.random.default_rng(4)
    edge_index, _ = knn_like(rng, 800)
    w = rng.uniform(0.5, 1.0, edge_index.shape[1])
    for seed in range(3):
        seeds = np.random.default_rng(seed)
        votes = np.zeros(edge_index.shape[1], dtype=np.int64)
        for _ in range(5):
            run_seed = int(seeds.integers(np.iinfo(np.int32).max))
            labels = chinese_whispers(edge_index, w, 800, n_blocks=8, random_state=run_seed)
            votes += labels[edge_index[0]] == labels[edge_index[1]]
        keep = 2 * votes > 5
        graph = sp.coo_matrix((np.ones(int(keep.sum())), tuple(edge_index[:, keep])), (800, 800))
        expected = _first(sp.csgraph.connected_components(graph, directed=False)[1])
        ours = community.consensus_chinese_whispers(
            edge_index, w, 800, n_runs=5, n_blocks=8, random_state=seed
        )
        np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize(("kwargs", "message"), [({"max_iter": -1}, "max_iter"),
                                                 ({"n_blocks": 0}, "n_blocks")])  # fmt: skip
def test_consensus_validates_its_run_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        community.consensus_chinese_whispers(np.array([[0], [1]]), None, 2, **kwargs)


@pytest.mark.parametrize("seed", range(4))
def test_constrained_chinese_whispers_never_joins_two_names_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    edge_index, _ = knn_like(rng, 600, p_same=0.6)  # many links between groups
    scores = rng.uniform(0.3, 1.0, edge_index.shape[1])
    names = np.full(600, -1)
    named = rng.choice(600, 60, replace=False)
    names[named] = rng.integers(0, 12, named.size)  # 12 people, 5 faces named each on average
    labels = community.constrained_chinese_whispers(
        edge_index, scores, 600, 0.5, names, random_state=seed
    )
    assert labels.shape == (600,) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, _first(labels))
    for cluster in np.unique(labels[named]):
        assert np.unique(names[named][labels[named] == cluster]).size == 1  # cannot-link
    for name in np.unique(names[named]):
        assert np.unique(labels[names == name]).size == 1  # must-link
    free = community.constrained_chinese_whispers(edge_index, scores, 600, 0.5, random_state=seed)
    mixed = [np.unique(names[named][free[named] == c]).size for c in np.unique(free[named])]
    assert max(mixed) > 1  # without the names, some cluster holds two: the constraint acts


def test_constrained_chinese_whispers_keeps_names_apart_and_together():
    # a 6-clique (nodes 0-5), a triangle (6-8), and a weak link 5-6 below the cut
    clique = np.array(np.triu_indices(6, 1))
    tri = np.array([[6, 6, 7], [7, 8, 8]])
    edge_index = np.concatenate([clique, tri, [[5], [6]]], axis=1)
    scores = np.concatenate([np.full(clique.shape[1] + 3, 0.9), [0.2]])
    free = community.constrained_chinese_whispers(edge_index, scores, 9, 0.5, random_state=0)
    keep = scores >= 0.5
    expected = community.consensus_chinese_whispers(
        edge_index[:, keep], scores[keep], 9, random_state=0
    )
    np.testing.assert_array_equal(free, expected)  # without names: the plain merge
    np.testing.assert_array_equal(free, [0] * 6 + [1] * 3)
    names = np.array([5, -1, -1, 7, -1, -1, 5, -1, -1])  # 0 and 6 share a name, 3 another
    labels = community.constrained_chinese_whispers(
        edge_index, scores, 9, 0.5, names, random_state=0
    )
    assert labels[0] != labels[3]  # cannot-link inside the merge
    assert labels[0] == labels[6]  # the same name is one person (must-link)
    np.testing.assert_array_equal(labels[[6, 7, 8]], labels[6])


def test_infomap_reads_its_results_whatever_was_imported_after_it():
    """faiss imported after infomap takes over their shared SWIG types (a segfault in 0.2.0)."""
    pytest.importorskip("infomap")
    pytest.importorskip("faiss")
    import subprocess
    import sys

    code = (
        "import numpy as np, infomap, faiss\n"
        "from linkage_gcn.community import infomap as run\n"
        "edge_index = np.array([[0, 1, 0, 3, 4, 3], [1, 2, 2, 4, 5, 5]])\n"
        "labels = run(edge_index, np.ones(6), 6, random_state=0)\n"
        "assert labels.tolist() == [0, 0, 0, 1, 1, 1], labels\n"
        "v = faiss.Int64Vector(); v.push_back(3)\n"
        "assert faiss.vector_to_array(v).tolist() == [3]  # faiss still reads its own\n"
        "index = faiss.IndexFlatIP(2); index.add(np.eye(2, dtype='float32'))\n"
        "assert index.search(np.eye(2, dtype='float32'), 1)[1].ravel().tolist() == [0, 1]\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
