import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from linkage_gcn.ips import IPSDataset, IPSTransform, build_ips, check_k_at_hop, iter_ips_batches
from linkage_gcn.knn import knn
from linkage_gcn.samplers import RIWSSampler, TopKSampler


def reference_ips(x, knn_index, pivot, hop1, k2, u, labels=None, pivot_similarity=False):
    """A straightforward per-pivot IPS, written from the L-GCN feeder's description."""
    k = knn_index.shape[1]
    hops1 = list(hop1)
    hops2 = set()
    for h in hops1:
        hops2.update(knn_index[h, : min(k2, k)].tolist())
    nodes = sorted({pivot} | set(hops1) | hops2)
    pos = {v: i for i, v in enumerate(nodes)}
    adj = set()
    for v in nodes:
        for w in knn_index[v, : min(u, k)].tolist():
            if w in pos and w != v:
                adj.add((pos[v], pos[w]))
                adj.add((pos[w], pos[v]))
    feats = x[nodes] - x[pivot]
    if pivot_similarity:
        cos = [
            float(
                np.dot(x[v], x[pivot]) / max(np.linalg.norm(x[v]) * np.linalg.norm(x[pivot]), 1e-12)
            )
            for v in nodes
        ]
        feats = np.concatenate([feats, np.array(cos, dtype=feats.dtype)[:, None]], axis=1)
    out = {
        "nodes": nodes,
        "x": feats,
        "edges": adj,
        "pivot": pos[pivot],
        "hop1": [pos[h] for h in hops1],
    }
    if labels is not None:
        out["edge_label"] = [bool(labels[h] == labels[pivot]) for h in hops1]
    return out


def random_graph(rng, n, k, d=4, duplicates=True):
    x = rng.standard_normal((n, d)).astype(np.float32)
    if duplicates and n >= 4:
        x[n // 2 :] = x[: n - n // 2]  # exact duplicate rows
    index, _ = knn(x, k)
    labels = rng.integers(0, max(1, n // 3), size=n)
    return x, index, labels


def assert_matches_reference(batch, x, index, pivots, hop1, k2, u, labels, sim=False):
    graphs = batch.to_data_list()
    assert len(graphs) == len(pivots)
    for g, p, h in zip(graphs, pivots, hop1):
        ref = reference_ips(x, index, int(p), h.tolist(), k2, u, labels, sim)
        assert g.n_id.tolist() == ref["nodes"]
        np.testing.assert_allclose(g.x.numpy(), ref["x"], atol=1e-6)
        assert set(map(tuple, g.edge_index.T.tolist())) == ref["edges"]
        assert g.edge_index.shape[1] == len(ref["edges"]), "edges must be de-duplicated"
        assert g.pivot_index.tolist() == [ref["pivot"]]
        assert g.hop1_index.tolist() == ref["hop1"]
        assert g.hop1_pivot_index.tolist() == [ref["pivot"]] * len(ref["hop1"])
        if labels is not None:
            assert g.edge_label.tolist() == ref["edge_label"]


@pytest.mark.parametrize("seed", range(8))
def test_batched_builder_equals_per_pivot_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 60))
    k = int(rng.integers(1, min(n - 1, 12) + 1))
    x, index, labels = random_graph(rng, n, k)
    k1 = int(rng.integers(1, k + 1))
    k2 = int(rng.integers(0, k + 3))  # may exceed the table width
    u = int(rng.integers(1, k + 3))
    sim = bool(seed % 2)
    pivots = rng.choice(n, size=min(n, 7), replace=False)
    hop1 = index[pivots, :k1]
    batch = build_ips(
        torch.from_numpy(x),
        torch.from_numpy(index),
        torch.from_numpy(pivots),
        torch.from_numpy(hop1),
        k2=k2,
        active_connection=u,
        labels=torch.from_numpy(labels),
        pivot_similarity=sim,
    )
    assert isinstance(batch, Batch)
    assert_matches_reference(batch, x, index, pivots, hop1, k2, u, labels, sim)


def test_repeated_hop1_entries_give_repeated_pairs(rng):
    x, index, labels = random_graph(rng, 20, 6)
    pivots = np.array([0, 5])
    hop1 = np.stack([index[0, [0, 0, 1]], index[5, [2, 2, 2]]])  # over-sampling by duplication
    batch = build_ips(
        *map(torch.from_numpy, (x, index, pivots, hop1)),
        k2=2,
        active_connection=3,
        labels=torch.from_numpy(labels),
    )
    assert batch.hop1_index.shape == (6,)
    # a repeated 1-hop node is one node of the graph, pointed at twice
    first, second = batch.to_data_list()
    assert first.hop1_index[0] == first.hop1_index[1] != first.hop1_index[2]
    assert len(set(second.hop1_index.tolist())) == 1
    for g in (first, second):
        assert len(set(g.n_id.tolist())) == g.num_nodes  # nodes are not duplicated
    assert_matches_reference(batch, x, index, pivots, hop1, 2, 3, labels)


def test_degree_zero_nodes_and_tiny_graph():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    index = torch.tensor([[1], [2], [1]])
    # u = 1: node 0 links to 1, 1 to 2, 2 to 1; IPS of pivot 0 with k2 = 0 is {0, 1}
    batch = build_ips(x, index, torch.tensor([0, 2]), index[[0, 2]], k2=0, active_connection=1)
    assert batch.to_data_list()[0].edge_index.tolist() == [[0, 1], [1, 0]]
    # a node whose neighbours are all outside the IPS has no edge, and that is fine
    batch = build_ips(x, index, torch.tensor([1]), torch.tensor([[2]]), k2=0, active_connection=1)
    assert batch.edge_index.tolist() == [[0, 1], [1, 0]]


def test_isolated_pivot_has_no_edges():
    x = torch.eye(4)
    index = torch.tensor([[2], [2], [3], [2]])
    # IPS of pivot 0 with hop1 {1}: 0's 1-NN (2) and 1's 1-NN (2) are outside: no edge at all
    batch = build_ips(x, index, torch.tensor([0]), torch.tensor([[1]]), k2=0, active_connection=1)
    assert batch.num_nodes == 2 and batch.edge_index.shape == (2, 0)


def test_collation_by_pyg_equals_the_batched_builder_on_every_key(rng):
    x, index, labels = random_graph(rng, 40, 8)
    pivots = torch.tensor([3, 17, 5, 39, 0, 22, 11])
    ds = IPSDataset(
        x, index, labels, k_at_hop=(4, 3), active_connection=3, pivots=pivots,
        pivot_similarity=True,
    )  # fmt: skip
    assert len(ds) == 7
    ref = reference_ips(x, index, 17, index[17, :4].tolist(), 3, 3, labels, True)
    assert ds[1].n_id.tolist() == ref["nodes"]
    assert ds[1].edge_label.tolist() == ref["edge_label"]
    # PyG's own DataLoader collates the items into exactly the fast path's batches
    loaded = list(DataLoader(ds, batch_size=3))
    assert [b.num_graphs for b in loaded] == [3, 3, 1]
    for b, positions in zip(loaded, ([0, 1, 2], [3, 4, 5], [6])):
        fast = ds.batch(positions)
        assert sorted(b.keys()) == sorted(fast.keys())
        assert "hop1_pivot_index" in fast.keys()
        for key in fast.keys():
            assert torch.equal(b[key], fast[key]), key
        # and the offsets point where they should: each pair's pivot is its graph's pivot
        assert torch.equal(fast.hop1_pivot_index, fast.pivot_index.repeat_interleave(4))
        assert torch.equal(fast.n_id[fast.pivot_index], pivots[positions])


def test_dataset_sampler_resample_and_repr(rng):
    x, index, labels = random_graph(rng, 40, 10)
    ds = IPSDataset(x, index, labels, k_at_hop=(4, 2), active_connection=2,
                    sampler=RIWSSampler(4, gamma=2.0))  # fmt: skip
    assert repr(ds) == (
        "IPSDataset(40, k_at_hop=(4, 2), active_connection=2, sampler=RIWSSampler(k=4, gamma=2.0))"
    )
    before = ds.hop1_.clone()
    ds.resample(torch.Generator().manual_seed(1))
    assert not torch.equal(before, ds.hop1_)
    # every 1-hop node is drawn from the pivot's 8 nearest (the RIWS pool)
    pool = torch.from_numpy(index[:, :8])
    assert bool((ds.hop1_.unsqueeze(2) == pool.unsqueeze(1)).any(2).all())
    assert ds[0].hop1_index.shape == (4,)


def test_iter_ips_batches_equals_build_ips(rng):
    x, index, labels = random_graph(rng, 23, 6)
    x_t, index_t, y_t = map(torch.from_numpy, (x, index, labels))
    hop1 = index_t[:, :3]
    batches = list(
        iter_ips_batches(x, index, hop1, k2=2, active_connection=2, batch_size=10, labels=labels,
                         pivot_similarity=True)
    )  # fmt: skip
    assert [b.num_graphs for b in batches] == [10, 10, 3]
    for b, start in zip(batches, (0, 10, 20)):
        p = torch.arange(start, min(start + 10, 23))
        ref = build_ips(x_t, index_t, p, hop1[p], k2=2, active_connection=2, labels=y_t,
                        pivot_similarity=True)  # fmt: skip
        for key in ref.keys():
            assert torch.equal(b[key], ref[key]), key
    assert batches[0].x.shape[1] == x.shape[1] + 1  # the pivot-similarity column
    mask = torch.zeros(23, dtype=torch.bool)
    mask[[4, 9]] = True
    (only,) = iter_ips_batches(x, index, hop1, k2=2, active_connection=2, batch_size=5, pivots=mask)
    assert only.n_id[only.pivot_index].tolist() == [4, 9]


def test_transform_on_knn_data(rng):
    x, index, labels = random_graph(rng, 30, 6)
    data = Data(
        x=torch.from_numpy(x), knn_index=torch.from_numpy(index), y=torch.from_numpy(labels)
    )
    data.pivot = torch.tensor([3, 4])
    out = IPSTransform(k_at_hop=(3, 2), active_connection=2)(data)
    assert out.num_graphs == 2
    assert_matches_reference(out, x, index, [3, 4], index[[3, 4], :3], 2, 2, labels)
    sim = IPSTransform(k_at_hop=(3, 2), active_connection=2, pivot_similarity=True)(data)
    assert_matches_reference(sim, x, index, [3, 4], index[[3, 4], :3], 2, 2, labels, True)
    assert repr(IPSTransform()) == (
        "IPSTransform(k_at_hop=(20, 5), active_connection=5, sampler=TopKSampler(k=20))"
    )


# ------------------------------------------------------------------------------ bad input

X4 = torch.eye(4)
KNN4 = torch.tensor([[1, 2], [0, 2], [3, 1], [2, 0]])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"pivots": torch.tensor([4])},
            r"pivots holds 1 node id\(s\) outside \[0, N = 4\), e.g. 4",
        ),
        ({"pivots": torch.tensor([-1])}, r"pivots holds .* e.g. -1"),
        ({"hop1": torch.tensor([[7]])}, r"hop1 holds 1 node id\(s\) outside .* e.g. 7"),
        ({"hop1": torch.tensor([[0]])}, "pivot 0 .* among its own 1-hop"),
        ({"knn_index": torch.tensor([[1, 2], [9, 2], [3, 1], [2, 0]])}, "knn_index holds .* 9"),
        ({"knn_index": KNN4[:3]}, r"knn_index must be a \(N, K\) table .*\(N = 4\)"),
        ({"knn_index": KNN4.float()}, "knn_index must hold integer node ids"),
        ({"pivots": torch.tensor([[0]])}, "pivots must be a non-empty 1-D"),
        ({"pivots": torch.tensor([], dtype=torch.long), "hop1": torch.zeros(0, 1)}, "non-empty"),
        ({"hop1": torch.tensor([1])}, r"hop1 must be a \(B, k1\) table"),
        ({"hop1": torch.tensor([[1], [2]])}, r"hop1 must be a \(B, k1\) table .*\(B = 1\)"),
        ({"x": torch.ones(4)}, r"x must be a 2-D \(N, D\) feature matrix"),
        ({"labels": torch.tensor([0, 1])}, "labels has 2 entries but 4"),
        ({"labels": torch.tensor([0.0, 1.5, 1.0, 1.0])}, "non-integer floats"),
        ({"k2": -1}, "k2 must be an integer >= 0"),
        ({"active_connection": 0}, "active_connection must be an integer >= 1"),
        ({"pivot_similarity": "yes"}, "pivot_similarity must be True or False"),
    ],
)
def test_build_ips_rejects_bad_input_before_work(kwargs, match):
    args = {"x": X4, "knn_index": KNN4, "pivots": torch.tensor([0]), "hop1": torch.tensor([[1]]),
            "k2": 1, "active_connection": 1, **kwargs}  # fmt: skip
    with pytest.raises(ValueError, match=match):
        build_ips(
            args.pop("x"), args.pop("knn_index"), args.pop("pivots"), args.pop("hop1"), **args
        )


def test_knn_row_out_of_range_would_have_leaked_into_the_next_graph():
    # node 2's row lists id 4 (= N): unchecked, key (graph 0) * 4 + 4 would be node 0 of graph 1
    index = torch.tensor([[1, 2], [2, 0], [4, 1], [2, 0]])
    with pytest.raises(ValueError, match=r"knn_index holds neighbour ids outside \[0, 4\)"):
        build_ips(X4, index, torch.tensor([0, 1]), torch.tensor([[2], [0]]), k2=1,
                  active_connection=2)  # fmt: skip


def test_iter_ips_batches_checks_when_called_not_when_iterated(rng):
    x, index, _ = random_graph(rng, 10, 3)
    with pytest.raises(ValueError, match="hop1 holds"):
        iter_ips_batches(x, index, index + 10, k2=1, active_connection=1, batch_size=4)
    with pytest.raises(ValueError, match=r"hop1 must be a \(N, k1\) table"):
        iter_ips_batches(x, index, index[:5], k2=1, active_connection=1, batch_size=4)
    with pytest.raises(ValueError, match="own 1-hop"):
        iter_ips_batches(x, index, np.arange(10)[:, None], k2=1, active_connection=1, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        iter_ips_batches(x, index, index, k2=1, active_connection=1, batch_size=0)
    with pytest.raises(ValueError, match=r"pivots holds 1 node id\(s\) outside \[0, 10\)"):
        iter_ips_batches(x, index, index, k2=1, active_connection=1, batch_size=2, pivots=[10])


def test_dataset_input_errors(rng):
    x, index, labels = random_graph(rng, 10, 3)
    with pytest.raises(ValueError, match="rows but x has"):
        IPSDataset(x, index[:5])
    with pytest.raises(ValueError, match="outside"):
        IPSDataset(x, index + 100)
    with pytest.raises(ValueError, match="among its own neighbours"):
        IPSDataset(x, np.arange(10)[:, None])
    with pytest.raises(ValueError, match="labels has 9 entries"):
        IPSDataset(x, index, labels[:9])
    with pytest.raises(ValueError, match="labels must hold integer identities"):
        IPSDataset(x, index, labels + 0.5)
    with pytest.raises(ValueError, match="k_at_hop"):
        check_k_at_hop(5)
    with pytest.raises(ValueError, match="NaN"):
        IPSDataset(np.full((10, 4), np.nan), index)
    with pytest.raises(ValueError, match=r"pivots holds 1 node id\(s\) outside \[0, 10\)"):
        IPSDataset(x, index, pivots=[3, 12])
    with pytest.raises(ValueError, match=r"6 .*neighbours per pivot|selects k=6"):
        IPSDataset(x, index, k_at_hop=(2, 1), sampler=TopKSampler(6))
    ds = IPSDataset(x, index, k_at_hop=(2, 1), active_connection=1)
    with pytest.raises(ValueError, match=r"positions holds 1 node id\(s\) outside \[0, 10\)"):
        ds.batch([10])
    with pytest.raises(IndexError):
        ds[10]  # PyG's own bounds check, as for any dataset


def test_transform_input_errors(rng):
    x, index, _ = random_graph(rng, 12, 4)
    data = Data(x=torch.from_numpy(x), knn_index=torch.from_numpy(index))
    t = IPSTransform(k_at_hop=(2, 1), active_connection=1)
    with pytest.raises(ValueError, match="needs a Data with `x` and"):
        t(Data(x=data.x))
    bad = data.clone()
    bad.pivot = torch.tensor([12])
    with pytest.raises(ValueError, match=r"data\.pivot holds 1 node id\(s\) outside \[0, 12\)"):
        t(bad)
    bad = data.clone()
    bad.y = torch.zeros(11, dtype=torch.long)
    with pytest.raises(ValueError, match=r"data\.y has 11 entries but 12"):
        t(bad)
    bad = data.clone()
    bad.knn_index = bad.knn_index.float()
    with pytest.raises(ValueError, match=r"data\.knn_index must hold integer neighbour ids"):
        t(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_gpu_equals_cpu_and_devices_must_agree(rng):
    x, index, labels = random_graph(rng, 30, 6)
    args = [torch.from_numpy(a) for a in (x, index, np.array([1, 7, 3]), index[[1, 7, 3], :3])]
    cpu = build_ips(*args, k2=2, active_connection=2, labels=torch.from_numpy(labels),
                    pivot_similarity=True)  # fmt: skip
    gpu = build_ips(*[a.cuda() for a in args], k2=2, active_connection=2,
                    labels=torch.from_numpy(labels).cuda(), pivot_similarity=True)  # fmt: skip
    for key in cpu.keys():
        assert gpu[key].is_cuda, key
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], msg=key)
    with pytest.raises(ValueError, match="pivots is on cpu but x is on cuda"):
        build_ips(args[0].cuda(), args[1].cuda(), args[2], args[3].cuda(), k2=2,
                  active_connection=2)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_ips_graph_has_the_structure_of_build_ips(seed):
    from linkage_gcn.ips import IPSGraph, build_ips_graph

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 50))
    k = int(rng.integers(1, min(n - 1, 10) + 1))
    x, index, _ = random_graph(rng, n, k)
    k1, k2, u = int(rng.integers(1, k + 1)), int(rng.integers(0, k + 3)), int(rng.integers(1, 5))
    pivots = torch.from_numpy(rng.choice(n, size=min(n, 6), replace=False))
    index_t = torch.from_numpy(index)
    hop1 = index_t[pivots, :k1]
    batch = build_ips(torch.from_numpy(x), index_t, pivots, hop1, k2=k2, active_connection=u)
    graph = build_ips_graph(index_t, pivots, hop1, k2=k2, active_connection=u)
    assert isinstance(graph, IPSGraph) and graph.num_nodes == batch.num_nodes
    assert torch.equal(graph.n_id, batch.n_id) and torch.equal(graph.batch, batch.batch)
    assert torch.equal(graph.pivot_index, batch.pivot_index)
    assert torch.equal(graph.hop1_index, batch.hop1_index)
    assert torch.equal(graph.edge_index(), batch.edge_index)
    # CSR rows: the neighbours of each node, sorted; D^-1 A averages them (degree 0 -> 0)
    assert graph.rowptr.shape == (graph.num_nodes + 1,) and int(graph.rowptr[-1]) == len(graph.col)
    h = torch.randn(graph.num_nodes, 3, dtype=torch.float64)
    mean = torch.zeros_like(h)
    src, dst = batch.edge_index
    mean.index_add_(0, src, h[dst])
    deg = torch.bincount(src, minlength=graph.num_nodes).clamp_min(1).unsqueeze(1)
    got = torch.sparse.mm(graph.mean_adjacency(torch.float64), h)
    torch.testing.assert_close(got, mean / deg)
