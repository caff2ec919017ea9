from __future__ import annotations

import time
import warnings
from collections import defaultdict

import numpy as np
import pytest
import torch

from linkage_gcn.merge import (
    attach_clusters,
    constrained_components,
    join_clusters,
    pool_pair_scores,
    propagate_labels,
    separate_groups,
    threshold_components,
)

# --------------------------------------------------------------------------------------
# A plain port of the reference (CDP / L-GCN utils/graph.py), used as the oracle.


class Data:
    """A vertex: a name and a set of linked vertices (``links`` returns a copy)."""

    def __init__(self, name):
        self.name = name
        self._links = set()

    @property
    def links(self):
        return set(self._links)

    def add_link(self, other):
        self._links.add(other)
        other._links.add(self)


def connected_components_constraint(nodes, max_sz, score_dict=None, th=None):
    result = []
    remain = set()
    nodes = set(nodes)
    while nodes:
        n = nodes.pop()
        group = {n}
        queue = [n]
        valid = True
        while queue:
            n = queue.pop(0)
            if th is not None:
                neighbors = {
                    link for link in n.links if score_dict[tuple(sorted([n.name, link.name]))] >= th
                }
            else:
                neighbors = n.links
            neighbors.difference_update(group)
            nodes.difference_update(neighbors)
            group.update(neighbors)
            queue.extend(neighbors)
            if (max_sz > 0 and len(group) > max_sz) or len(remain.intersection(neighbors)) > 0:
                valid = False
                remain.update(group)
                break
        if valid:
            result.append(group)
    return result, remain


def graph_propagation(edges, score, max_sz, step=0.1):
    """Reference propagation; also returns the number of threshold passes."""
    edges = np.sort(edges, axis=1)
    th = float(score.min())
    score_dict = {}
    for i, e in enumerate(edges):
        score_dict[int(e[0]), int(e[1])] = float(score[i])
    nodes = np.sort(np.unique(edges.flatten()))
    mapping = -1 * np.ones(nodes.max() + 1, dtype=int)
    mapping[nodes] = np.arange(nodes.shape[0])
    link_idx = mapping[edges]
    vertex = [Data(int(n)) for n in nodes]
    for link in link_idx:
        vertex[link[0]].add_link(vertex[link[1]])
    comps, remain = connected_components_constraint(vertex, max_sz)
    components = comps[:]
    passes = 0
    while remain:
        th = th + (1 - th) * step
        passes += 1
        comps, remain = connected_components_constraint(remain, max_sz, score_dict, th)
        components.extend(comps)
    return components, passes


# --------------------------------------------------------------------------------------
# Helpers


def canonical(labels):
    """Relabel 0..C-1 in order of first appearance."""
    mapping = {}
    return np.array([mapping.setdefault(x, len(mapping)) for x in labels], dtype=np.int64)


def components_to_labels(components, num_nodes):
    labels = np.full(num_nodes, -1, dtype=np.int64)
    for ci, comp in enumerate(components):
        for vertex in comp:
            assert labels[vertex.name] == -1, "a node is in two reference clusters"
            labels[vertex.name] = ci
    return labels


def random_pairs(rng, num_nodes, num_edges, self_loops=True):
    """Distinct unordered pairs in random orientation (optionally with self loops)."""
    u = rng.integers(0, num_nodes, num_edges)
    v = rng.integers(0, num_nodes, num_edges)
    if not self_loops:
        keep = u != v
        u, v = u[keep], v[keep]
    pairs = np.unique(np.sort(np.stack([u, v], 1), axis=1), axis=0)
    flip = rng.random(len(pairs)) < 0.5
    pairs[flip] = pairs[flip][:, ::-1]
    return np.ascontiguousarray(pairs.T)


def clustered_graph(rng, num_nodes, k):
    """A kNN-like graph over random identities: high scores inside, low across."""
    ident = rng.integers(0, max(1, num_nodes // 8), num_nodes)
    src = np.repeat(np.arange(num_nodes), k)
    dst = rng.integers(0, num_nodes, num_nodes * k)
    same = ident[src] == ident[dst]
    scores = np.where(same, rng.uniform(0.4, 0.999, src.size), rng.uniform(0, 0.7, src.size))
    return src, dst, scores


def union_find_labels(edge_index, scores, num_nodes, threshold):
    parent = list(range(num_nodes))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (a, b), s in zip(edge_index.T.tolist(), scores.tolist()):
        if s >= threshold:
            parent[find(a)] = find(b)
    return canonical([find(i) for i in range(num_nodes)])


def brute_pool(src, dst, scores, pool):
    per_direction = defaultdict(list)
    for a, b, s in zip(src.tolist(), dst.tolist(), scores.tolist()):
        if a != b:
            per_direction[a, b].append(s)
    reduce = np.mean if pool == "mean" else max
    per_pair = defaultdict(list)
    for (a, b), values in per_direction.items():
        per_pair[min(a, b), max(a, b)].append(reduce(values))
    keys = sorted(per_pair)
    edge_index = np.array(keys, dtype=np.int64).reshape(-1, 2).T
    return edge_index, np.array([reduce(per_pair[k]) for k in keys])


# --------------------------------------------------------------------------------------
# propagate_labels against the reference port


def _check_against_reference(edge_index, scores, num_nodes, max_size, step):
    labels, info = propagate_labels(
        edge_index,
        scores,
        num_nodes,
        max_size=max_size,
        step=step,
        max_iter=10_000,
        return_info=True,
    )
    assert labels.dtype == np.int64 and labels.shape == (num_nodes,)
    assert np.array_equal(labels, canonical(labels))
    assert not info["capped"]
    if edge_index.shape[1] == 0:
        assert np.array_equal(labels, np.arange(num_nodes))
        return
    comps, passes = graph_propagation(edge_index.T, scores, max_size, step=step)
    ref = components_to_labels(comps, num_nodes)
    present = ref >= 0
    assert np.array_equal(np.unique(edge_index), np.flatnonzero(present))
    assert np.array_equal(canonical(labels[present]), canonical(ref[present]))
    # nodes in no edge are singletons of their own
    isolated = labels[~present]
    assert len(set(isolated.tolist())) == isolated.size
    assert not set(isolated.tolist()) & set(labels[present].tolist())
    assert info["passes"] == passes
    assert sum(info["finalised"]) == num_nodes


@pytest.mark.parametrize("seed", range(40))
def test_propagate_matches_reference_random_graphs(seed):
    rng = np.random.default_rng(seed)
    for _ in range(6):
        num_nodes = int(rng.integers(1, 60))
        edge_index = random_pairs(rng, num_nodes, int(rng.integers(1, 3 * num_nodes + 2)))
        scores = rng.uniform(0, 0.999, edge_index.shape[1])
        max_size = int(rng.choice([0, 1, 2, 3, 4, 5, 8, 13, 1000]))
        step = float(rng.choice([0.1, 0.25, 0.5, 0.6, 0.9, 1.0]))
        _check_against_reference(edge_index, scores, num_nodes, max_size, step)


@pytest.mark.parametrize("seed", range(10))
def test_propagate_matches_reference_tied_scores(seed):
    # scores on a grid of eighths and step 0.5 from a minimum of 0 make thresholds 0.5,
    # 0.75, 0.875 that equal some scores exactly: the ``>=`` must agree.
    rng = np.random.default_rng(100 + seed)
    num_nodes = int(rng.integers(5, 80))
    edge_index = random_pairs(rng, num_nodes, 3 * num_nodes)
    scores = rng.integers(0, 8, edge_index.shape[1]) / 8
    scores[0] = 0.0
    for max_size in (1, 2, 3, 6):
        _check_against_reference(edge_index, scores, num_nodes, max_size, 0.5)


@pytest.mark.parametrize("seed", range(4))
def test_propagate_matches_reference_clustered_graphs(seed):
    rng = np.random.default_rng(200 + seed)
    num_nodes = 600
    src, dst, directed = clustered_graph(rng, num_nodes, 6)
    edge_index, scores = pool_pair_scores(src, dst, directed, num_nodes=num_nodes)
    for max_size, step in ((10, 0.6), (30, 0.1), (100, 0.5)):
        _check_against_reference(edge_index, scores, num_nodes, max_size, step)


def test_propagate_start_threshold_reproduces_reference_pooling():
    # test.py of L-GCN passes directed edges with pool='avg' inside graph_propagation:
    # its threshold starts from the lowest *directed* score.
    rng = np.random.default_rng(7)
    src, dst, directed = clustered_graph(rng, 300, 5)
    keep = src != dst
    src, dst, directed = src[keep], dst[keep], directed[keep]
    _, first = np.unique(src * 300 + dst, return_index=True)  # one entry per direction
    src, dst, directed = src[first], dst[first], directed[first]
    edge_index, pooled = pool_pair_scores(src, dst, directed, num_nodes=300)
    labels = propagate_labels(
        edge_index, pooled, 300, max_size=12, step=0.3, start_threshold=float(directed.min())
    )
    # the reference's score_dict with pool='avg', and th from the directed minimum
    score_dict = {}
    for a, b, s in zip(src.tolist(), dst.tolist(), directed.tolist()):
        key = (min(a, b), max(a, b))
        score_dict[key] = 0.5 * (score_dict[key] + s) if key in score_dict else s
    ref_edges = np.array(sorted(score_dict)).T
    assert np.array_equal(ref_edges, edge_index)
    ref_scores = np.array([score_dict[k] for k in sorted(score_dict)])
    np.testing.assert_allclose(ref_scores, pooled, rtol=0, atol=1e-15)
    vertex = {n: Data(n) for n in np.unique(ref_edges).tolist()}
    for a, b in ref_edges.T.tolist():
        vertex[a].add_link(vertex[b])
    comps, remain = connected_components_constraint(vertex.values(), 12)
    th = float(directed.min())
    while remain:
        th = th + (1 - th) * 0.3
        more, remain = connected_components_constraint(remain, 12, score_dict, th)
        comps.extend(more)
    ref = components_to_labels(comps, 300)
    present = ref >= 0
    assert np.array_equal(canonical(labels[present]), canonical(ref[present]))


def test_propagate_example_and_info():
    edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    scores = np.array([0.9, 0.8, 0.9, 0.7, 0.9, 0.8, 0.1])
    labels, info = propagate_labels(edge_index, scores, 8, max_size=3, return_info=True)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 3]
    assert info == {
        "passes": 1,
        "thresholds": [pytest.approx(0.64)],
        "finalised": [2, 6],
        "forced": 0,
        "largest_forced": 0,
        "capped": False,
        "num_clusters": 4,
    }
    # a component of exactly max_size is final in pass 0
    labels, info = propagate_labels(edge_index, scores, 8, max_size=6, return_info=True)
    assert labels.tolist() == [0, 0, 0, 0, 0, 0, 1, 2]
    assert info["passes"] == 0
    for no_limit in (None, 0, -5):
        assert propagate_labels(edge_index, scores, 8, max_size=no_limit).tolist() == [
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            2,
        ]


def test_propagate_numbering_by_smallest_node():
    edge_index = np.array([[5, 4], [3, 0]])
    labels = propagate_labels(edge_index, np.array([0.5, 0.5]), 6)
    assert labels.tolist() == [0, 1, 2, 3, 0, 3]


def test_propagate_no_edges_and_self_loops_only():
    assert propagate_labels(np.zeros((2, 0), dtype=np.int64), [], 4).tolist() == [0, 1, 2, 3]
    assert propagate_labels(np.zeros((2, 0)), np.zeros(0), 2).tolist() == [0, 1]
    labels = propagate_labels(np.array([[1, 2], [1, 2]]), np.array([0.3, 0.9]), 3, max_size=1)
    assert labels.tolist() == [0, 1, 2]


def test_propagate_duplicate_pairs_link_when_any_copy_passes():
    # triangle 0-1-2 over max_size=2; the pair (0, 1) twice, once strong, once weak
    edge_index = np.array([[0, 1, 1, 0], [1, 0, 2, 2]])
    scores = np.array([0.95, 0.1, 0.2, 0.2])
    labels = propagate_labels(edge_index, scores, 3, max_size=2, step=0.5)
    assert labels.tolist() == [0, 0, 1]


def test_propagate_torch_input_gives_numpy():
    edge_index = torch.tensor([[0, 1], [1, 2]])
    labels = propagate_labels(edge_index, torch.tensor([0.9, 0.2]), 4, max_size=2)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 1, 2]


def test_propagate_max_iter_cap_warns_and_finalises_components():
    # a 4-clique of score-1 edges (never cut) plus a weak tail 3-4
    clique = [(a, b) for a in range(4) for b in range(a + 1, 4)]
    edge_index = np.array([*clique, (3, 4)]).T
    scores = np.array([1.0] * len(clique) + [0.2])
    with pytest.warns(UserWarning, match=r"max_iter=3 .*4 node\(s\).*largest with 4 nodes"):
        labels, info = propagate_labels(
            edge_index, scores, 6, max_size=2, max_iter=3, return_info=True
        )
    assert labels.tolist() == [0, 0, 0, 0, 1, 2]
    assert info["capped"] and info["forced"] == 4 and info["largest_forced"] == 4
    assert info["passes"] == 3 and info["finalised"] == [1, 1, 0, 0]
    # max_iter=0: only pass 0, the rest finalised at "every edge"
    with pytest.warns(UserWarning, match="max_iter=0"):
        labels = propagate_labels(edge_index, scores, 6, max_size=2, max_iter=0)
    assert labels.tolist() == [0, 0, 0, 0, 0, 1]


def test_propagate_stops_when_threshold_cannot_rise():
    clique = [(a, b) for a in range(5) for b in range(a + 1, 5)]
    edge_index = np.array(clique).T
    scores = np.ones(len(clique))
    with pytest.warns(UserWarning, match="cannot rise"):
        labels, info = propagate_labels(
            edge_index, scores, 5, max_size=3, max_iter=1000, return_info=True
        )
    assert labels.tolist() == [0] * 5
    assert info["passes"] == 1 and info["thresholds"] == [1.0] and info["forced"] == 5


def test_propagate_no_warning_normally():
    rng = np.random.default_rng(3)
    src, dst, directed = clustered_graph(rng, 500, 5)
    edge_index, scores = pool_pair_scores(src, dst, directed, num_nodes=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        propagate_labels(edge_index, scores, 500, max_size=20)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_nodes": 0}, "num_nodes must be an integer >= 1"),
        ({"num_nodes": 2.5}, "num_nodes must be an integer"),
        ({"edge_index": np.array([[0, 1, 5], [1, 2, 0]])}, r"outside \[0, num_nodes=4\), e.g. 5"),
        ({"edge_index": np.array([[0, -1, 2], [1, 2, 0]])}, "1 node id"),
        ({"edge_index": np.array([[0, 1], [1, 2], [2, 3]])}, r"shape \(2, E\).*transpose"),
        ({"edge_index": np.array([0, 1, 2])}, r"shape \(2, E\)"),
        ({"edge_index": np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])}, "integer node ids"),
        ({"scores": np.array([0.1, 0.2])}, r"shape \(E,\) = \(3,\)"),
        ({"scores": np.array([0.1, np.nan, 0.2])}, "1 NaN"),
        ({"scores": np.array([0.1, 1.5, 0.2])}, r"\[0, 1\].*max 1.5"),
        ({"scores": np.array([-0.1, 0.5, 0.2])}, r"\[0, 1\]"),
        ({"step": 0}, r"step must be a number in \(0, 1\]"),
        ({"step": 1.5}, "step must be a number"),
        ({"step": float("nan")}, "step must be a finite number"),
        ({"max_iter": -1}, "max_iter must be an integer >= 0"),
        ({"max_size": 2.5}, "max_size must be an integer"),
        ({"start_threshold": 1.2}, "start_threshold"),
    ],
)
def test_propagate_errors(kwargs, match):
    args = {
        "edge_index": np.array([[0, 1, 2], [1, 2, 3]]),
        "scores": np.array([0.1, 0.5, 0.9]),
        "num_nodes": 4,
        **kwargs,
    }
    edge_index, scores, num_nodes = (
        args.pop("edge_index"),
        args.pop("scores"),
        args.pop("num_nodes"),
    )
    with pytest.raises(ValueError, match=match):
        propagate_labels(edge_index, scores, num_nodes, **args)


# --------------------------------------------------------------------------------------
# threshold_components


@pytest.mark.parametrize("seed", range(10))
def test_threshold_components_matches_union_find(seed):
    rng = np.random.default_rng(300 + seed)
    num_nodes = int(rng.integers(1, 120))
    num_edges = int(rng.integers(0, 3 * num_nodes))
    edge_index = rng.integers(0, num_nodes, (2, num_edges))  # duplicates and self loops too
    scores = rng.uniform(-1, 1, num_edges)
    for threshold in (-2.0, -0.3, 0.0, 0.4, 0.9, 2.0, *scores[:3].tolist()):
        labels = threshold_components(edge_index, scores, num_nodes, threshold)
        assert labels.dtype == np.int64
        assert np.array_equal(labels, union_find_labels(edge_index, scores, num_nodes, threshold))


def test_threshold_components_basics():
    edge_index = np.array([[0, 1, 3], [1, 2, 4]])
    scores = np.array([0.9, 0.3, 0.8])
    assert threshold_components(edge_index, scores, 6, 0.5).tolist() == [0, 0, 1, 2, 2, 3]
    assert threshold_components(edge_index, scores, 6, 0.3).tolist() == [0, 0, 0, 1, 1, 2]
    assert threshold_components(edge_index, scores, 6, 5).tolist() == list(range(6))
    empty = np.zeros((2, 0), dtype=np.int64)
    assert threshold_components(empty, np.zeros(0), 3, 0.5).tolist() == [0, 1, 2]
    labels = threshold_components(torch.tensor(edge_index), torch.tensor(scores), 6, 0.5)
    assert isinstance(labels, np.ndarray) and labels.tolist() == [0, 0, 1, 2, 2, 3]
    int32 = torch.tensor(edge_index, dtype=torch.int32)
    assert threshold_components(int32, scores.astype(np.float32), 6, 0.5).tolist()[:3] == [0, 0, 1]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.array([[0], [1]]), np.array([0.5]), 0, 0.5), "num_nodes must be an integer >= 1"),
        ((np.array([[0], [3]]), np.array([0.5]), 3, 0.5), "outside"),
        ((np.array([[0], [1]]), np.array([0.5, 0.2]), 3, 0.5), "scores must have shape"),
        ((np.array([[0], [1]]), np.array([np.nan]), 3, 0.5), "NaN"),
        ((np.array([[0], [1]]), np.array([np.inf]), 3, 0.5), "infinite"),
        ((np.array([[0], [1]]), np.array([0.5]), 3, float("nan")), "threshold must be a finite"),
        ((np.array([[0], [1]]), np.array([0.5]), 3, "0.5"), "threshold must be a finite"),
    ],
)
def test_threshold_components_errors(args, match):
    with pytest.raises(ValueError, match=match):
        threshold_components(*args)


# --------------------------------------------------------------------------------------
# pool_pair_scores


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize("seed", range(6))
def test_pool_matches_brute_force(pool, seed):
    rng = np.random.default_rng(400 + seed)
    num_nodes = int(rng.integers(1, 40))
    n = int(rng.integers(0, 200))
    src, dst = rng.integers(0, num_nodes, n), rng.integers(0, num_nodes, n)
    scores = rng.uniform(-2, 2, n)
    edge_index, pooled = pool_pair_scores(src, dst, scores, num_nodes=num_nodes, pool=pool)
    ref_index, ref_pooled = brute_pool(src, dst, scores, pool)
    assert edge_index.dtype == np.int64 and edge_index.shape == ref_index.shape
    assert np.array_equal(edge_index, ref_index)
    np.testing.assert_allclose(pooled, ref_pooled, rtol=1e-12, atol=1e-12)
    assert np.all(edge_index[0] < edge_index[1])


def test_pool_one_and_two_directions_and_self_pairs():
    src = np.array([0, 1, 2, 2, 3, 3])
    dst = np.array([1, 0, 3, 2, 1, 1])  # (0,1) both ways, (2,3) one way, self pair, (3,1) twice
    scores = np.array([0.2, 0.6, 0.7, 1.0, 0.1, 0.3])
    edge_index, mean = pool_pair_scores(src, dst, scores, num_nodes=4)
    assert edge_index.tolist() == [[0, 1, 2], [1, 3, 3]]
    np.testing.assert_allclose(mean, [0.4, 0.2, 0.7])
    _, best = pool_pair_scores(src, dst, scores, num_nodes=4, pool="max")
    np.testing.assert_allclose(best, [0.6, 0.3, 0.7])
    # a duplicated direction is averaged within its direction before the two are pooled
    _, mean = pool_pair_scores([0, 0, 0, 1], [1, 1, 1, 0], [0.0, 0.0, 0.0, 1.0], num_nodes=2)
    np.testing.assert_allclose(mean, [0.5])


def test_pool_knn_table_shape_and_types():
    knn = np.array([[1, 2], [0, 2], [1, 0]])
    sims = np.array([[0.9, 0.1], [0.7, 0.3], [0.5, 0.4]], dtype=np.float32)
    src = np.repeat(np.arange(3), 2).reshape(3, 2)
    edge_index, pooled = pool_pair_scores(src, knn, sims, num_nodes=3)
    assert edge_index.tolist() == [[0, 0, 1], [1, 2, 2]]
    assert pooled.dtype == np.float32
    np.testing.assert_allclose(pooled, [0.8, 0.25, 0.4], rtol=1e-6)
    t_index, t_pooled = pool_pair_scores(
        torch.from_numpy(src), torch.from_numpy(knn), torch.from_numpy(sims), num_nodes=3
    )
    assert isinstance(t_index, torch.Tensor) and t_index.dtype == torch.int64
    assert isinstance(t_pooled, torch.Tensor) and t_pooled.dtype == torch.float32
    assert t_index.tolist() == edge_index.tolist()
    # integer scores become float64; lists come back as numpy
    _, pooled = pool_pair_scores([0, 1], [1, 0], [1, 0], num_nodes=2)
    assert pooled.dtype == np.float64 and pooled.tolist() == [0.5]
    # a mix of numpy and torch comes back as torch
    mixed = pool_pair_scores(src, torch.from_numpy(knn), sims, num_nodes=3)
    assert all(isinstance(x, torch.Tensor) for x in mixed)


def test_pool_empty_and_all_self_pairs():
    edge_index, pooled = pool_pair_scores([], [], [], num_nodes=3)
    assert edge_index.shape == (2, 0) and pooled.shape == (0,)
    edge_index, pooled = pool_pair_scores([1, 2], [1, 2], [0.5, 0.5], num_nodes=3)
    assert edge_index.shape == (2, 0) and pooled.shape == (0,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pool_on_gpu():
    rng = np.random.default_rng(5)
    src, dst = rng.integers(0, 50, 500), rng.integers(0, 50, 500)
    scores = rng.uniform(0, 1, 500).astype(np.float32)
    ref = pool_pair_scores(src, dst, scores, num_nodes=50)
    gpu = pool_pair_scores(
        torch.from_numpy(src).cuda(),
        torch.from_numpy(dst).cuda(),
        torch.from_numpy(scores).cuda(),
        num_nodes=50,
    )
    assert gpu[0].is_cuda and gpu[1].is_cuda
    assert np.array_equal(gpu[0].cpu().numpy(), ref[0])
    np.testing.assert_allclose(gpu[1].cpu().numpy(), ref[1], rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (([0, 1], [1, 0], [0.5, 0.5]), {"num_nodes": 2, "pool": "avg"}, "unknown pool 'avg'"),
        (([0, 1], [1], [0.5, 0.5]), {"num_nodes": 2}, "same shape"),
        (([0, 1], [1, 2], [0.5, 0.5]), {"num_nodes": 2}, r"dst holds 1 node id.*e.g. 2"),
        (([0, -1], [1, 0], [0.5, 0.5]), {"num_nodes": 2}, "src holds"),
        (([0, 1], [1, 0], [0.5, np.nan]), {"num_nodes": 2}, "NaN"),
        (([0, 1], [1, 0], [0.5, np.inf]), {"num_nodes": 2}, "infinite"),
        (([0.0, 1.0], [1, 0], [0.5, 0.5]), {"num_nodes": 2}, "integer node ids"),
        (([0, 1], [1, 0], [0.5, 0.5]), {"num_nodes": 0}, "num_nodes must be an integer >= 1"),
    ],
)
def test_pool_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pool_pair_scores(*args, **kwargs)


# --------------------------------------------------------------------------------------
# Scale


@pytest.mark.benchmark  # prints timings (figures: docs/scaling.md)
def test_scale_million_edges():
    rng = np.random.default_rng(11)
    num_nodes, k = 200_000, 5
    src, dst, directed = clustered_graph(rng, num_nodes, k)
    t0 = time.perf_counter()
    edge_index, scores = pool_pair_scores(
        torch.from_numpy(src),
        torch.from_numpy(dst),
        torch.from_numpy(directed),
        num_nodes=num_nodes,
    )
    t1 = time.perf_counter()
    # 1M random edges as well, for a giant component that takes several passes
    random_edges = rng.integers(0, num_nodes, (2, 1_000_000))
    random_scores = rng.uniform(0, 1, 1_000_000)
    t2 = time.perf_counter()
    th_labels = threshold_components(random_edges, random_scores, num_nodes, 0.8)
    t3 = time.perf_counter()
    labels, info = propagate_labels(
        random_edges, random_scores, num_nodes, max_size=900, return_info=True
    )
    t4 = time.perf_counter()
    pooled_labels = propagate_labels(edge_index, scores, num_nodes, max_size=300)
    t5 = time.perf_counter()
    print(
        f"\npool 1M directed -> {scores.shape[0]} pairs: {t1 - t0:.2f}s; "
        f"threshold_components 1M edges: {t3 - t2:.2f}s ({th_labels.max() + 1} clusters); "
        f"propagate_labels 1M random edges: {t4 - t3:.2f}s ({info['passes']} passes, "
        f"{info['num_clusters']} clusters); propagate_labels pooled kNN: {t5 - t4:.2f}s"
    )
    assert labels.shape == pooled_labels.shape == (num_nodes,)
    assert np.bincount(labels).max() <= 900 and not info["capped"]


# --------------------------------------------------------------------------------------
# constrained_components (cannot-link / must-link from names)


def constrained_by_sets(edge_index, scores, num_nodes, threshold, names, must_link=True):
    """The definition, with explicit sets: take the kept links by decreasing score (ties by the
    smaller, then the larger node id) and merge the two clusters unless both hold a name and
    the names differ; with must_link, the nodes of a name start as one cluster."""
    names = [int(n) if n >= 0 else -1 for n in names]
    clusters = {i: {i} for i in range(num_nodes)}  # cluster key -> member set
    where = list(range(num_nodes))  # node -> cluster key

    def union(ka, kb):
        clusters[ka] |= clusters.pop(kb)
        for node in clusters[ka]:
            where[node] = ka

    def cluster_names(k):
        return {names[i] for i in clusters[k] if names[i] >= 0}

    if must_link:
        for i in range(num_nodes):
            for j in range(i):
                if names[i] >= 0 and names[i] == names[j] and where[i] != where[j]:
                    union(where[j], where[i])
    links = sorted(
        (-s, min(a, b), max(a, b))
        for (a, b), s in zip(edge_index.T.tolist(), scores.tolist())
        if s >= threshold
    )
    for _, a, b in links:
        ka, kb = where[a], where[b]
        if ka == kb:
            continue
        na, nb = cluster_names(ka), cluster_names(kb)
        if na and nb and na != nb:
            continue
        union(ka, kb)
    return canonical(where)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("must_link", [True, False])
def test_constrained_matches_set_definition(seed, must_link):
    rng = np.random.default_rng(900 + seed)
    num_nodes = int(rng.integers(2, 60))
    num_edges = int(rng.integers(0, 4 * num_nodes))
    edge_index = rng.integers(0, num_nodes, (2, num_edges))  # duplicates and self loops too
    scores = np.round(rng.uniform(0, 1, num_edges), 1)  # many ties
    names = np.where(rng.random(num_nodes) < 0.3, rng.integers(0, 4, num_nodes), -1)
    for threshold in (0.0, 0.3, 0.7):
        got = constrained_components(
            edge_index, scores, num_nodes, threshold, names, must_link=must_link
        )
        want = constrained_by_sets(edge_index, scores, num_nodes, threshold, names, must_link)
        assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", range(5))
def test_constrained_without_names_is_threshold_components(seed):
    rng = np.random.default_rng(950 + seed)
    num_nodes = int(rng.integers(1, 200))
    edge_index = rng.integers(0, num_nodes, (2, 3 * num_nodes))
    scores = rng.uniform(0, 1, 3 * num_nodes)
    for names in (None, np.full(num_nodes, -1), np.zeros(num_nodes, dtype=np.int64)):
        got = constrained_components(edge_index, scores, num_nodes, 0.5, names, must_link=False)
        assert np.array_equal(got, threshold_components(edge_index, scores, num_nodes, 0.5))


def test_constrained_rules():
    # 0 (A) - 1 - 2 - 3 (B), 4 (A) alone, 5 unnamed alone
    edge_index = np.array([[0, 1, 2], [1, 2, 3]])
    scores = np.array([0.9, 0.6, 0.8])
    names = np.array([0, -1, -1, 1, 0, -1])
    labels = constrained_components(edge_index, scores, 6, 0.5, names)
    assert labels.tolist() == [0, 0, 1, 1, 0, 2]  # must-link pulls 4 into A; 5 stays alone
    labels = constrained_components(edge_index, scores, 6, 0.5, names, must_link=False)
    assert labels.tolist() == [0, 0, 1, 1, 2, 3]
    # no cluster holds two names, whatever the threshold
    for threshold in (0.0, 0.5, 0.85):
        labels = constrained_components(edge_index, scores, 6, threshold, names)
        for c in np.unique(labels):
            assert len(set(names[(labels == c) & (names >= 0)].tolist())) <= 1
    # a refinement of the unconstrained components
    free = threshold_components(edge_index, scores, 6, 0.5)
    labels = constrained_components(edge_index, scores, 6, 0.5, names, must_link=False)
    assert all(len(set(free[labels == c].tolist())) == 1 for c in np.unique(labels))
    torch_labels = constrained_components(
        torch.tensor(edge_index), torch.tensor(scores), 6, 0.5, torch.tensor(names)
    )
    assert torch_labels.tolist() == [0, 0, 1, 1, 0, 2]


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (np.zeros(3, dtype=np.int64), "names has 3 entries but 4"),
        (np.full(4, 0.5), "names must hold integer identities"),
        (np.zeros((4, 2), dtype=np.int64), r"names must have shape \(N,\)"),
        (np.array(["a", "b", "a", "b"]), "names must hold integer identities"),
    ],
)
def test_constrained_errors(names, match):
    with pytest.raises(ValueError, match=match):
        constrained_components(np.array([[0], [1]]), np.array([0.5]), 4, 0.5, names)


def test_constrained_names_as_identity_labels():
    # names follow the package's label check: whole floats and an (N, 1) column are accepted
    edge_index, scores = np.array([[0, 1, 2], [1, 2, 3]]), np.array([0.9, 0.6, 0.8])
    want = constrained_components(edge_index, scores, 4, 0.5, np.array([0, -1, -1, 1]))
    assert want.tolist() == [0, 0, 1, 1]
    for names in (np.array([0.0, -1.0, -1.0, 1.0]), np.array([[0], [-5], [-1], [1]])):
        assert np.array_equal(constrained_components(edge_index, scores, 4, 0.5, names), want)


# --------------------------------------------------------------------------------------
# Boundaries: every merge function (and every callable of the registry) checks its edge set
# in one way, before any work, with a message naming the argument.


def _merge_functions():
    """(id, call(edge_index, scores, num_nodes, threshold, names), score name, uses threshold,
    uses names) for every public merge function and every callable of MERGES."""
    from linkage_gcn import community
    from linkage_gcn.merges import MERGES

    rows = [
        ("threshold_components", lambda e, s, n, t, m: threshold_components(e, s, n, t),
         "scores", True, False),
        ("constrained_components", lambda e, s, n, t, m: constrained_components(e, s, n, t, m),
         "scores", True, True),
        ("propagate_labels", lambda e, s, n, t, m: propagate_labels(e, s, n, max_size=2),
         "scores", False, False),
        ("chinese_whispers",
         lambda e, s, n, t, m: community.chinese_whispers(e, s, n, random_state=0),
         "weights", False, False),
        ("consensus_chinese_whispers",
         lambda e, s, n, t, m: community.consensus_chinese_whispers(e, s, n, random_state=0),
         "weights", False, False),
        ("constrained_chinese_whispers",
         lambda e, s, n, t, m: community.constrained_chinese_whispers(
             e, s, n, t, m, random_state=0),
         "scores", True, True),
        ("infomap", lambda e, s, n, t, m: community.infomap(e, s, n, random_state=0),
         "weights", False, False),
    ]  # fmt: skip
    for name, merge in MERGES.items():
        rows.append((f"MERGES[{name}].cluster",
                     lambda e, s, n, t, m, merge=merge: merge.cluster(e, s, n, t, random_state=0),
                     "scores", merge.uses_threshold, False))  # fmt: skip
        rows.append((f"MERGES[{name}].constrained",
                     lambda e, s, n, t, m, merge=merge: merge.constrained(
                         e, s, n, t, m, random_state=0),
                     "scores", True, True))  # fmt: skip
    return rows


MERGE_FUNCTIONS = _merge_functions()
BASE = {
    "edge_index": np.array([[0, 1, 2], [1, 2, 3]]),
    "scores": np.array([0.9, 0.8, 0.3]),
    "num_nodes": 4,
    "threshold": 0.5,
    "names": np.array([0, -1, -1, 1]),
}
BOUNDARIES = [
    # (case, argument, bad value, message; {S} stands for the score argument's name)
    ("scores too short", "scores", np.array([0.9, 0.8]), r"{S} must have shape \(E,\) = \(3,\)"),
    ("scores too long", "scores", np.array([0.9, 0.8, 0.3, 0.1]), r"{S} must have shape.*\(4,\)"),
    ("scores 2-D", "scores", np.ones((3, 2)), r"{S} must have shape \(E,\)"),
    ("scores NaN", "scores", np.array([0.9, np.nan, 0.3]), "{S} contains 1 NaN"),
    ("scores inf", "scores", np.array([0.9, np.inf, 0.3]), "{S} contains 1 infinite"),
    ("scores text", "scores", np.array(["a", "b", "c"]), "{S} must be numeric"),
    ("id >= num_nodes", "edge_index", np.array([[0, 1, 2], [1, 2, 4]]),
     r"edge_index holds 1 node id\(s\) outside \[0, num_nodes=4\), e.g. 4"),
    ("negative id", "edge_index", np.array([[0, -1, 2], [1, 2, 3]]),
     r"edge_index holds 1 node id\(s\) outside .*e.g. -1"),
    ("float ids", "edge_index", np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]),
     "edge_index must hold integer node ids"),
    ("(E, 2) edges", "edge_index", np.array([[0, 1], [1, 2], [2, 3]]),
     r"edge_index must have shape \(2, E\), got shape \(3, 2\); transpose"),
    ("1-D edges", "edge_index", np.array([0, 1, 2]), r"edge_index must have shape \(2, E\)"),
    ("edges None", "edge_index", None, "edge_index is None"),
    ("num_nodes 0", "num_nodes", 0, "num_nodes must be an integer >= 1, got 0"),
    ("num_nodes float", "num_nodes", 4.0, "num_nodes must be an integer, got 4.0"),
    ("num_nodes bool", "num_nodes", True, "num_nodes must be an integer"),
    ("num_nodes text", "num_nodes", "4", "num_nodes must be an integer"),
]  # fmt: skip
SCORE_BOUNDARIES = [("scores None", "scores", None, "scores is None")]
THRESHOLD_BOUNDARIES = [
    ("threshold NaN", "threshold", float("nan"), "threshold must be a finite number"),
    ("threshold None", "threshold", None, "threshold must be a finite number"),
    ("threshold text", "threshold", "0.5", "threshold must be a finite number"),
]
NAME_BOUNDARIES = [
    ("names too short", "names", np.array([0, -1, 1]), "names has 3 entries but 4"),
    ("names fractional", "names", np.array([0, 0.5, -1, 1]), "names must hold integer"),
    ("names text", "names", np.array(["a", "b", "c", "d"]), "names must hold integer"),
    ("names 2-D", "names", np.zeros((4, 2), dtype=int), r"names must have shape \(N,\)"),
]


def _boundary_cases():
    for fid, call, score_name, uses_threshold, uses_names in MERGE_FUNCTIONS:
        cases = list(BOUNDARIES)
        cases += SCORE_BOUNDARIES if score_name == "scores" else []
        cases += THRESHOLD_BOUNDARIES if uses_threshold else []
        cases += NAME_BOUNDARIES if uses_names else []
        for case, arg, value, message in cases:
            yield pytest.param(
                call, arg, value, message.replace("{S}", score_name), id=f"{fid}-{case}"
            )


def _call(call, **changes):
    args = {**BASE, **changes}
    return call(*(args[k] for k in ("edge_index", "scores", "num_nodes", "threshold", "names")))


@pytest.mark.parametrize(("call", "arg", "value", "message"), list(_boundary_cases()))
def test_every_merge_function_names_the_bad_argument(call, arg, value, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _call(call, **{arg: value})


@pytest.mark.parametrize(
    "call", [pytest.param(row[1], id=row[0]) for row in MERGE_FUNCTIONS]
)  # fmt: skip
def test_every_merge_function_accepts_the_base_case_and_checks_once(call, monkeypatch):
    pytest.importorskip("infomap")  # the infomap forms run it
    from linkage_gcn import merge

    seen = []
    rows = merge._edge_rows
    monkeypatch.setattr(merge, "_edge_rows", lambda *a: seen.append(1) or rows(*a))
    labels = _call(call)
    assert labels.dtype == np.int64 and labels.shape == (4,)
    assert len(seen) == 1  # one edge check per call, however the work is composed


@pytest.mark.parametrize(
    ("fn", "kwargs", "message"),
    [
        ("constrained_components", {"must_link": "yes"}, "must_link must be True or False"),
        ("propagate_labels", {"return_info": "yes"}, "return_info must be True or False"),
        ("propagate_labels", {"step": 0}, r"step must be a number in \(0, 1\]"),
        ("chinese_whispers", {"max_iter": -1}, "max_iter must be an integer >= 0"),
        ("chinese_whispers", {"n_blocks": 0}, "n_blocks must be an integer >= 1"),
        ("chinese_whispers", {"random_state": "seed"}, "random_state must be None, an int"),
        ("chinese_whispers", {"return_info": 1}, "return_info must be True or False"),
        ("consensus_chinese_whispers", {"n_runs": 0}, "n_runs must be an integer >= 1"),
        ("consensus_chinese_whispers", {"max_iter": 1.5}, "max_iter must be an integer"),
        ("consensus_chinese_whispers", {"n_blocks": 0}, "n_blocks must be an integer >= 1"),
        ("constrained_chinese_whispers", {"n_runs": 0}, "n_runs must be an integer >= 1"),
        ("infomap", {"num_trials": 0}, "num_trials must be an integer >= 1"),
        ("infomap", {"markov_time": 0}, r"markov_time must be a number in \(0, inf\)"),
        ("infomap", {"directed": "no"}, "directed must be True or False"),
        ("infomap", {"two_level": None}, "two_level must be True or False"),
        ("infomap", {"level": 1.0}, "level must be an integer"),
    ],
)
def test_merge_options_are_checked_before_work(fn, kwargs, message, monkeypatch):
    from linkage_gcn import community, merge

    module = merge if fn in merge.__all__ else community
    # no work may start: the components and the Infomap import fail the test if reached
    monkeypatch.setattr(merge, "_components", lambda *a: pytest.fail("work before checks"))
    monkeypatch.setattr(community, "_components", lambda *a: pytest.fail("work before checks"))
    monkeypatch.setattr(community, "_import_infomap", lambda: pytest.fail("import before checks"))
    args = [BASE["edge_index"], BASE["scores"], BASE["num_nodes"]]
    if fn in ("constrained_components", "constrained_chinese_whispers"):
        args += [BASE["threshold"], BASE["names"]]
    with pytest.raises(ValueError, match=message):
        getattr(module, fn)(*args, **kwargs)


@pytest.mark.parametrize(
    "call", [pytest.param(row[1], id=row[0]) for row in MERGE_FUNCTIONS]
)  # fmt: skip
def test_inside_skip_validation_the_edge_scans_are_skipped_with_the_same_result(call, monkeypatch):
    pytest.importorskip("infomap")
    from linkage_gcn import merge
    from linkage_gcn._params import skip_validation

    want = _call(call)
    monkeypatch.setattr(merge, "_edge_rows", lambda *a: pytest.fail("checked inside the skip"))
    monkeypatch.setattr(merge, "check_scores", lambda *a, **k: pytest.fail("checked"))
    with skip_validation():  # the caller (the estimator) has checked its edges
        got = _call(call, edge_index=torch.as_tensor(BASE["edge_index"], dtype=torch.int32))
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- join_clusters


def _cluster_names_reference(labels, clusters, names):
    """The name each cluster holds (-1: none), node by node."""
    name = {c: -1 for c in clusters}
    if names is not None:
        for node, nm in enumerate(names):
            if nm >= 0:
                name[labels[node]] = nm
    return name


def _unite_reference(labels, clusters, passing, name):
    """Union-find over ``passing`` (mean, a, b) by decreasing mean, never two names in one."""
    parent = {c: c for c in clusters}

    def find(c):
        while parent[c] != c:
            c = parent[c]
        return c

    for _, a, b in sorted(passing, key=lambda t: (-t[0], min(t[1], t[2]), max(t[1], t[2]))):
        ra, rb = find(a), find(b)
        if ra == rb or (name[ra] >= 0 and name[rb] >= 0 and name[ra] != name[rb]):
            continue
        parent[rb] = ra
        name[ra] = max(name[ra], name[rb])
    return np.array([find(c) for c in labels])


def _join_reference(labels, edge_index, scores, threshold, names=None):
    """join_clusters from its definition: loops over cluster pairs, then a union-find."""
    labels = np.asarray(labels)
    clusters = sorted(set(labels.tolist()))
    size = {c: int((labels == c).sum()) for c in clusters}
    links = defaultdict(list)
    for u, v, s in zip(edge_index[0], edge_index[1], scores):
        a, b = labels[u], labels[v]
        if a != b:
            links[min(a, b), max(a, b)].append(s)
    name = _cluster_names_reference(labels, clusters, names)
    passing = [
        (np.mean(ss), a, b) for (a, b), ss in links.items()
        if np.mean(ss) >= threshold and len(ss) >= min(size[a], size[b])
    ]  # fmt: skip
    return _unite_reference(labels, clusters, passing, name)


def _same_partition(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("seed", range(6))
def test_join_clusters_matches_definition(seed):
    rng = np.random.default_rng(seed)
    n = 60
    labels = rng.integers(0, 15, n)
    edge_index = rng.integers(0, n, (2, 400))
    scores = rng.random(400)
    for threshold in (0.3, 0.5, 0.7):
        got = join_clusters(labels, edge_index, scores, threshold)
        assert _same_partition(got, _join_reference(labels, edge_index, scores, threshold))
        names = np.where(rng.random(n) < 0.1, labels % 3, -1)
        # one name per cluster at most, as a constrained merge leaves them
        first = {c: names[labels == c].max() for c in set(labels.tolist())}
        names = np.where(names >= 0, [first[c] for c in labels], -1)
        got = join_clusters(labels, edge_index, scores, threshold, names=names)
        assert _same_partition(got, _join_reference(labels, edge_index, scores, threshold, names))
        for c in set(got.tolist()):  # no cluster holds two names
            assert len(set(names[(got == c) & (names >= 0)].tolist())) <= 1


def test_join_clusters_refines_never_splits():
    labels = np.array([0, 0, 1, 1, 2, 3])
    edge_index = np.array([[0, 1, 2], [2, 3, 4]])
    got = join_clusters(labels, edge_index, np.array([0.9, 0.9, 0.1]), 0.5)
    # 0-1 and 2-3 have two links between them, averaging 0.9; 4 and 5 keep apart
    assert got.tolist() == [0, 0, 0, 0, 1, 2]
    # one link is fewer than the two members of the smaller cluster: no join
    assert join_clusters(labels, edge_index[:, :1], np.array([0.9]), 0.5).tolist() == [
        0, 0, 1, 1, 2, 3,
    ]  # fmt: skip
    # a threshold above every mean leaves the clusters as they are (renumbered)
    assert join_clusters([5, 5, 7], np.array([[0], [2]]), np.array([0.4]), 0.5).tolist() == [
        0, 0, 1,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "args, match",
    [
        (([0, 1], [[0], [1]], [0.5], float("nan")), "threshold"),
        (([0, 1], [[0], [5]], [0.5], 0.5), "edge_index"),
        (([0, 1], [[0], [1]], [float("nan")], 0.5), "scores"),
        (([0.5, 1], [[0], [1]], [0.5], 0.5), "labels"),
    ],
)
def test_join_clusters_errors(args, match):
    with pytest.raises(ValueError, match=match):
        join_clusters(*args)


# -------------------------------------------------------------- attach_clusters


def _attach_reference(labels, edge_index, scores, threshold, names=None):
    """attach_clusters from its definition: each cluster's outside links by target, in loops."""
    labels = np.asarray(labels)
    clusters = sorted(set(labels.tolist()))
    size = {c: int((labels == c).sum()) for c in clusters}
    out = defaultdict(lambda: defaultdict(list))  # cluster -> target -> scores
    for u, v, s in zip(edge_index[0], edge_index[1], scores):
        a, b = labels[u], labels[v]
        if a != b:
            out[a][b].append(s)
            out[b][a].append(s)
    name = _cluster_names_reference(labels, clusters, names)
    passing = []
    for a, targets in out.items():
        leaving = sum(len(ss) for ss in targets.values())
        b = max(targets, key=lambda t: (len(targets[t]), np.mean(targets[t]), -t))
        mean = np.mean(targets[b])
        if 2 * len(targets[b]) >= leaving and size[b] > size[a] and mean >= threshold:
            passing.append((mean, a, b))
    return _unite_reference(labels, clusters, passing, name)


@pytest.mark.parametrize("seed", range(6))
def test_attach_clusters_matches_definition(seed):
    rng = np.random.default_rng(seed)
    n = 60
    # clusters of many sizes, so that pieces and larger clusters both occur
    labels = np.minimum(rng.geometric(0.15, n), 20)
    edge_index = rng.integers(0, n, (2, 300))
    scores = rng.random(300)
    for threshold in (0.2, 0.4, 0.6):
        got = attach_clusters(labels, edge_index, scores, threshold)
        assert _same_partition(got, _attach_reference(labels, edge_index, scores, threshold))
        names = np.where(rng.random(n) < 0.15, labels % 3, -1)
        first = {c: names[labels == c].max() for c in set(labels.tolist())}
        names = np.where(names >= 0, [first[c] for c in labels], -1)
        got = attach_clusters(labels, edge_index, scores, threshold, names=names)
        want = _attach_reference(labels, edge_index, scores, threshold, names)
        assert _same_partition(got, want)
        for c in set(got.tolist()):  # no cluster holds two names
            assert len(set(names[(got == c) & (names >= 0)].tolist())) <= 1


def test_attach_clusters_takes_pieces_into_the_cluster_their_links_lead_to():
    # cluster {0..3}; the piece {4, 5} has three links into it and one to the singleton 6
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    edge_index = np.array([[0, 1, 2, 0, 1, 2, 4, 5], [1, 2, 3, 4, 4, 4, 5, 6]])
    scores = np.array([0.9, 0.9, 0.9, 0.7, 0.7, 0.7, 0.9, 0.8])
    # {4, 5} joins {0..3} (3 of its 4 outside links, mean 0.7); 6 follows it (its one link)
    assert attach_clusters(labels, edge_index, scores, 0.6).tolist() == [0] * 7
    # a minority is not enough: with four more links from {4, 5} elsewhere, it stays out
    # (6 still joins it: {4, 5} is larger); 7 and 8 link to it too weakly
    more = np.concatenate([edge_index, [[4, 5, 4, 5], [7, 7, 8, 8]]], axis=1)
    got = attach_clusters(np.r_[labels, 3, 4], more, np.r_[scores, [0.1] * 4], 0.6)
    assert got.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 3]
    # too weak a mean: nothing moves (renumbered only)
    assert attach_clusters(labels + 5, edge_index, scores, 0.85).tolist() == [
        0, 0, 0, 0, 1, 1, 2,
    ]  # fmt: skip
    # an equal-sized neighbour is not "larger": two singletons stay apart
    assert attach_clusters([0, 1], [[0], [1]], [0.99], 0.5).tolist() == [0, 1]


@pytest.mark.parametrize(
    "args, match",
    [
        (([0, 1], [[0], [1]], [0.5], float("nan")), "threshold"),
        (([0, 1], [[0], [5]], [0.5], 0.5), "edge_index"),
        (([0, 1], [[0], [1]], [float("nan")], 0.5), "scores"),
        (([0.5, 1], [[0], [1]], [0.5], 0.5), "labels"),
        (([0, 1], [[0], [1]], [0.5], 0.5, [0]), "names"),
    ],
)
def test_attach_clusters_errors(args, match):
    with pytest.raises(ValueError, match=match):
        attach_clusters(*args)


# ---------------------------------------------------------------------- separate_groups


def _separate_reference(labels, edge_index, scores, groups, names=None):
    """Parts as explicit sets: a cluster holding a group twice is rebuilt from singletons."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    n = labels.size
    part = {i: {i} for i in range(n)}  # node -> the set of its part (shared objects)
    bad = {c for c in set(labels.tolist())
           if len([g for g in groups[labels == c] if g >= 0])
           != len({g for g in groups[labels == c] if g >= 0})}  # fmt: skip

    def join(i, j):
        merged = part[i] | part[j]
        for k in merged:
            part[k] = merged

    if names is not None:
        for i in range(n):
            for j in range(i):
                same = labels[i] == labels[j] and labels[i] in bad
                if names[i] >= 0 and names[i] == names[j] and same:
                    join(i, j)
    links = sorted(
        (-s, min(u, v), max(u, v)) for u, v, s in zip(*np.asarray(edge_index).tolist(), scores)
        if u != v and labels[u] == labels[v] and labels[u] in bad
    )  # fmt: skip
    for _, a, b in links:
        if part[a] is part[b]:
            continue
        ga = {groups[k] for k in part[a] if groups[k] >= 0}
        gb = {groups[k] for k in part[b] if groups[k] >= 0}
        if not ga & gb:
            join(a, b)
    out = [("kept", labels[i]) if labels[i] not in bad else ("part", min(part[i]))
           for i in range(n)]  # fmt: skip
    return np.unique(np.array([hash(o) for o in out]), return_inverse=True)[1]


@pytest.mark.parametrize("seed", range(6))
def test_separate_groups_matches_definition(seed):
    rng = np.random.default_rng(seed)
    n = 50
    labels = rng.integers(0, 6, n)
    edge_index = rng.integers(0, n, (2, 300))
    scores = rng.random(300).round(1)  # ties, broken by node ids
    groups = np.where(rng.random(n) < 0.6, rng.integers(0, 12, n), -1)
    got = separate_groups(labels, edge_index, scores, groups)
    assert _same_partition(got, _separate_reference(labels, edge_index, scores, groups))
    assert len(set(zip(got.tolist(), labels.tolist()))) == np.unique(got).size  # refines
    for c in set(got.tolist()):  # no part holds a group twice
        g = groups[(got == c) & (groups >= 0)]
        assert g.size == np.unique(g).size
    names = np.where(rng.random(n) < 0.15, rng.integers(0, 3, n), -1)
    got = separate_groups(labels, edge_index, scores, groups, names=names)
    assert _same_partition(got, _separate_reference(labels, edge_index, scores, groups, names))
    for nm in range(3):  # a name keeps its faces together inside a cluster
        for c in set(labels.tolist()):
            assert np.unique(got[(names == nm) & (labels == c)]).size <= 1


def test_separate_groups_cuts_the_weakest_link_and_keeps_the_rest():
    edge_index = np.array([[0, 1, 2, 4], [1, 2, 3, 5]])
    scores = np.array([0.9, 0.6, 0.8, 0.7])
    labels = [0, 0, 0, 0, 1, 1]
    got = separate_groups(labels, edge_index, scores, [7, -1, 7, -1, 3, -1])
    assert got.tolist() == [0, 0, 1, 1, 2, 2]
    # nothing to separate: the clusters as given (renumbered), whatever the links
    assert separate_groups([4, 4, 9], edge_index[:, :1], scores[:1], [1, 2, 1]).tolist() == [
        0, 0, 1,
    ]  # fmt: skip
    # a cluster with no link between two faces of one group leaves them apart, unlinked
    assert separate_groups([0, 0], np.zeros((2, 0), int), np.zeros(0), [5, 5]).tolist() == [0, 1]
    assert separate_groups([], np.zeros((2, 0), int), np.zeros(0), []).tolist() == []


@pytest.mark.parametrize(
    "args, match",
    [
        (([0, 1], [[0], [5]], [0.5], [0, 0]), "edge_index"),
        (([0, 1], [[0], [1]], [float("nan")], [0, 0]), "scores"),
        (([0, 1], [[0], [1]], [0.5], [0]), "groups"),
        (([0, 1], [[0], [1]], [0.5], [0.5, 1]), "groups"),
        (([0.5, 1], [[0], [1]], [0.5], [0, 0]), "labels"),
    ],
)
def test_separate_groups_errors(args, match):
    with pytest.raises(ValueError, match=match):
        separate_groups(*args)
