import numpy as np
import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from linkage_gcn.ips import IPSDataset, IPSTransform, build_ips, check_k_at_hop
from linkage_gcn.knn import knn


def reference_ips(x, knn_index, pivot, hop1, k2, u, labels=None):
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


def assert_matches_reference(batch, x, index, pivots, hop1, k2, u, labels):
    graphs = batch.to_data_list()
    assert len(graphs) == len(pivots)
    for g, p, h in zip(graphs, pivots, hop1):
        ref = reference_ips(x, index, int(p), h.tolist(), k2, u, labels)
        assert g.n_id.tolist() == ref["nodes"]
        np.testing.assert_allclose(g.x.numpy(), ref["x"], atol=1e-6)
        assert set(map(tuple, g.edge_index.T.tolist())) == ref["edges"]
        assert g.edge_index.shape[1] == len(ref["edges"]), "edges must be de-duplicated"
        assert g.pivot_index.tolist() == [ref["pivot"]]
        assert g.hop1_index.tolist() == ref["hop1"]
        assert g.hop1_pivot.tolist() == [ref["pivot"]] * len(ref["hop1"])
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
    )
    assert isinstance(batch, Batch)
    assert_matches_reference(batch, x, index, pivots, hop1, k2, u, labels)


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
    assert batch.n_id.unique().numel() <= batch.n_id.numel()
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
    index = torch.tensor([[1], [2], [3], [2]])
    batch = build_ips(x, index, torch.tensor([0]), torch.tensor([[1]]), k2=0, active_connection=1)
    # 0 -> 1 is an edge (0's 1-NN is 1); 1's 1-NN (2) is outside
    assert batch.edge_index.tolist() == [[0, 1], [1, 0]]
    batch = build_ips(x, index, torch.tensor([3]), torch.tensor([[2]]), k2=0, active_connection=1)
    assert batch.edge_index.tolist() == [[0, 1], [1, 0]]


def test_pivot_in_its_own_hop1_is_rejected():
    x = torch.eye(3)
    index = torch.tensor([[1, 2], [0, 2], [0, 1]])
    with pytest.raises(ValueError, match="own 1-hop"):
        build_ips(x, index, torch.tensor([0]), torch.tensor([[0]]), k2=1, active_connection=1)


def test_dataset_items_match_batch_and_pyg_loader(rng):
    x, index, labels = random_graph(rng, 40, 8)
    ds = IPSDataset(x, index, labels, k_at_hop=(4, 3), active_connection=3)
    assert len(ds) == 40
    assert "IPSDataset(40, k_at_hop=(4, 3)" in repr(ds)
    item = ds[7]
    ref = reference_ips(x, index, 7, index[7, :4].tolist(), 3, 3, labels)
    assert item.n_id.tolist() == ref["nodes"]
    assert item.edge_label.tolist() == ref["edge_label"]
    # PyG's own DataLoader collates the items into the same batches as the fast path
    loaded = next(iter(DataLoader(ds, batch_size=5)))
    fast = ds.batch(range(5))
    for key in ("x", "edge_index", "n_id", "pivot_index", "hop1_index", "edge_label"):
        assert torch.equal(loaded[key], fast[key]), key


def test_transform_on_knn_data(rng):
    from torch_geometric.data import Data

    x, index, labels = random_graph(rng, 30, 6)
    data = Data(
        x=torch.from_numpy(x), knn_index=torch.from_numpy(index), y=torch.from_numpy(labels)
    )
    data.pivot = torch.tensor([3, 4])
    out = IPSTransform(k_at_hop=(3, 2), active_connection=2)(data)
    assert out.num_graphs == 2
    assert_matches_reference(out, x, index, [3, 4], index[[3, 4], :3], 2, 2, labels)
    assert repr(IPSTransform()).startswith("IPSTransform(k_at_hop=(20, 5)")


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
    with pytest.raises(ValueError, match="k_at_hop"):
        check_k_at_hop(5)
    with pytest.raises(ValueError, match="NaN"):
        IPSDataset(np.full((10, 4), np.nan), index)
