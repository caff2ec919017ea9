import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Data, HeteroData, InMemoryDataset

from linkage_gcn.knn import knn
from linkage_gcn.samplers import ReSampler, RIWSSampler, TopKSampler
from linkage_gcn.transforms import AddKNNIndex, RIWSTransform


def make_data(n=120, n_ids=8, dim=12, seed=0, width=30):
    """Clustered features, labels and a (N, width) cosine kNN table."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_ids, (n,), generator=g)
    centres = torch.randn(n_ids, dim, generator=g)
    x = centres[y] + 0.8 * torch.randn(n, dim, generator=g)
    data = Data(x=x, y=y)
    if width:
        data.knn_index = knn(x, width)[0]
    return data


def per_pivot(out, k):
    """(P, k) neighbours and (P,) pivots of a source_to_target output."""
    src, dst = out.edge_index
    return src.view(-1, k), dst.view(-1, k)[:, 0]


@pytest.mark.parametrize("k,gamma", [(10, 2.0), (5, 1.5), (7, 3.3)])
def test_edges_in_pool_k_per_pivot_no_duplicates(k, gamma):
    data = make_data(width=int(k * gamma) + 2)
    out = RIWSTransform(k, gamma, generator=torch.Generator().manual_seed(1))(data)
    n = data.num_nodes
    assert out.edge_index.shape == (2, n * k)
    assert out.edge_index.dtype == torch.long
    nbrs, pivots = per_pivot(out, k)
    assert torch.equal(pivots, torch.arange(n))
    pool = data.knn_index[:, : math.floor(gamma * k)]
    assert bool((nbrs.unsqueeze(2) == pool.unsqueeze(1)).any(2).all())  # within the pool
    assert bool((nbrs.sort(1).values.diff(dim=1) != 0).all())  # no duplicate per pivot
    assert not bool((nbrs == pivots.unsqueeze(1)).any())  # no self-loop


def test_edge_label_is_same_identity_float():
    data = make_data()
    out = RIWSTransform(5)(data)
    src, dst = out.edge_index
    assert out.edge_label.dtype == torch.float
    assert torch.equal(out.edge_label, (data.y[src] == data.y[dst]).float())
    assert 0 < float(out.edge_label.mean()) < 1  # both kinds of edges are present


def test_riws_balances_labels_compared_with_topk():
    data = make_data(n=300, n_ids=4)  # large identities: top-k edges mostly positive
    riws = RIWSTransform(10, 2.0, generator=torch.Generator().manual_seed(0))(data)
    topk = RIWSTransform(10, sampler="topk")(data)
    assert abs(riws.edge_label.mean() - 0.5) < abs(topk.edge_label.mean() - 0.5)


def test_fresh_draw_per_call_and_reproducible():
    data = make_data()
    t = RIWSTransform(5, generator=torch.Generator().manual_seed(3))
    a, b = t(data).edge_index, t(data).edge_index
    assert not torch.equal(a, b)
    # the same seed replays the same sequence of draws
    t2 = RIWSTransform(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t2(data).edge_index, a)
    assert torch.equal(t2(data).edge_index, b)
    # a generator given to the call wins over the transform's
    c = t(data, generator=torch.Generator().manual_seed(9)).edge_index
    d = RIWSTransform(5)(data, generator=torch.Generator().manual_seed(9)).edge_index
    assert torch.equal(c, d)


def test_same_draw_as_the_sampler():
    data = make_data()
    out = RIWSTransform(5, 2.0)(data, generator=torch.Generator().manual_seed(4))
    hop1 = RIWSSampler(5, 2.0).sample(data.knn_index, data.y, torch.Generator().manual_seed(4))
    assert torch.equal(out.edge_index[0], hop1.reshape(-1))


@pytest.mark.parametrize(
    "transform",
    [
        RIWSTransform(6, gamma=1.0),
        RIWSTransform(6, sampler=TopKSampler(6)),
        RIWSTransform(6, 3.0, sampler="topk"),
    ],
)
def test_gamma_one_and_topk_give_the_top_k_edges(transform):
    data = make_data()
    out = transform(data)
    nbrs, _ = per_pivot(out, 6)
    assert torch.equal(nbrs, data.knn_index[:, :6])


def test_other_samplers_plug_in():
    data = make_data()
    out = RIWSTransform(sampler=ReSampler(6, gamma=1.2))(data, torch.Generator().manual_seed(0))
    assert out.edge_index.shape == (2, 6 * data.num_nodes)
    # RS: half positives per pivot (duplicated when short) when the pool holds both classes
    pool = data.knn_index[:, :7]
    pos = data.y[pool] == data.y.unsqueeze(1)
    both = pos.any(1) & ~pos.all(1)
    n_pos = out.edge_label.view(-1, 6).sum(1)
    assert bool((n_pos[both] == 3).all())
    assert repr(RIWSTransform(6, 1.2, sampler="rs").sampler) == "ReSampler(k=6, gamma=1.2)"


def test_missing_y_is_a_clear_error_but_topk_works_without_labels():
    data = make_data()
    del data.y
    with pytest.raises(ValueError, match="needs identity labels: the data has no `y`"):
        RIWSTransform(5)(data)
    out = RIWSTransform(5, sampler="topk")(data)
    assert out.edge_index.shape == (2, 5 * data.num_nodes)
    assert "edge_label" not in out


def test_knn_computed_when_absent_and_cached_on_the_input():
    data = make_data(width=0)
    assert "knn_index" not in data
    out = RIWSTransform(5, 2.0)(data)
    expected = knn(data.x, 10)[0]
    assert torch.equal(data.knn_index, expected)  # cached on the given Data
    assert torch.equal(out.knn_index, expected)
    # a second call reuses it (same object)
    table = data.knn_index
    RIWSTransform(5, 2.0)(data)
    assert data.knn_index is table


def test_custom_knn_key_and_narrow_table_error():
    data = make_data(width=8)
    with pytest.raises(ValueError, match="floor\\(gamma \\* k\\) = 10"):
        RIWSTransform(5, 2.0)(data)
    data.my_knn = data.knn_index
    del data.knn_index
    out = RIWSTransform(4, 2.0, knn_key="my_knn")(data)
    assert out.edge_index.shape[1] == 4 * data.num_nodes


def test_input_mask_respected():
    data = make_data()
    mask = torch.zeros(data.num_nodes, dtype=torch.bool)
    mask[::3] = True
    data.train_mask = mask
    for spec in ("train_mask", mask, mask.nonzero().view(-1)):
        out = RIWSTransform(5, input_nodes=spec)(data, torch.Generator().manual_seed(0))
        _, pivots = per_pivot(out, 5)
        assert torch.equal(pivots, mask.nonzero().view(-1))
        assert out.edge_index.shape[1] == 5 * int(mask.sum())
    ids = torch.tensor([7, 2])
    out = RIWSTransform(5, input_nodes=ids)(data)
    assert torch.equal(per_pivot(out, 5)[1], ids)  # order of the ids kept


def test_flow_target_to_source():
    data = make_data()
    g = torch.Generator
    a = RIWSTransform(5)(data, g().manual_seed(0)).edge_index
    b = RIWSTransform(5, flow="target_to_source")(data, g().manual_seed(0)).edge_index
    assert torch.equal(a.flip(0), b)


def test_edge_key_keep_edges_and_old_edge_attributes():
    data = make_data()
    data.edge_index = torch.tensor([[0, 1], [1, 0]])
    data.edge_attr = torch.ones(2, 3)
    out = RIWSTransform(5, keep_edges="knn_edge_index")(data)
    assert torch.equal(out.knn_edge_index, data.edge_index)
    assert "edge_attr" not in out
    assert "edge_attr" in data  # the input is not modified
    sup = RIWSTransform(5, edge_key="edge_label_index")(data)
    assert torch.equal(sup.edge_index, data.edge_index)  # message-passing graph untouched
    assert torch.equal(sup.edge_attr, data.edge_attr)
    assert sup.edge_label_index.shape == (2, 5 * data.num_nodes)
    assert sup.edge_label.shape == (5 * data.num_nodes,)


class OneGraph(InMemoryDataset):
    def __init__(self, data, transform=None, pre_transform=None):
        super().__init__(None, transform=transform)
        if pre_transform is not None:
            data = pre_transform(data)
        self.data, self.slices = self.collate([data])


def test_works_as_a_dataset_transform():
    data = make_data(width=0)
    ds = OneGraph(
        data,
        transform=RIWSTransform(5, generator=torch.Generator().manual_seed(0)),
        pre_transform=AddKNNIndex(10),
    )
    first, second = ds[0], ds[0]
    assert first.edge_index.shape == (2, 5 * data.num_nodes)
    assert not torch.equal(first.edge_index, second.edge_index)  # a new draw per access
    assert torch.equal(first.knn_index, knn(data.x, 10)[0])


def test_labels_as_column_and_whole_floats():
    data = make_data()
    ref = RIWSTransform(5)(data, torch.Generator().manual_seed(0))
    data.y = data.y.view(-1, 1).float()
    out = RIWSTransform(5)(data, torch.Generator().manual_seed(0))
    assert torch.equal(out.edge_index, ref.edge_index)
    assert torch.equal(out.edge_label, ref.edge_label)


def test_errors():
    data = make_data()
    with pytest.raises(ValueError, match="unknown flow"):
        RIWSTransform(5, flow="both")
    with pytest.raises(ValueError, match="gamma"):
        RIWSTransform(5, gamma=0.5)
    with pytest.raises(ValueError, match="unknown sampler"):
        RIWSTransform(5, sampler="random")
    with pytest.raises(TypeError, match="homogeneous"):
        RIWSTransform(5)(HeteroData())
    bad = data.clone()
    bad.y = bad.y[:-1]
    with pytest.raises(ValueError, match=r"data\.y has 119 entries but 120"):
        RIWSTransform(5)(bad)
    bad = data.clone()
    bad.y = bad.y.float() + 0.5
    with pytest.raises(ValueError, match="integer identities"):
        RIWSTransform(5)(bad)
    with pytest.raises(ValueError, match="outside"):
        RIWSTransform(5, input_nodes=torch.tensor([data.num_nodes]))(data)
    with pytest.raises(ValueError, match="one entry per node"):
        RIWSTransform(5, input_nodes=torch.ones(3, dtype=torch.bool))(data)
    with pytest.raises(ValueError, match="names no attribute"):
        RIWSTransform(5, input_nodes="train_mask")(data)
    bad = data.clone()
    bad.knn_index[0, 0] = 0  # self in its own row
    with pytest.raises(ValueError, match="own neighbours"):
        RIWSTransform(5)(bad)
    with pytest.raises(ValueError, match="no node features"):
        RIWSTransform(5)(Data(y=torch.zeros(3, dtype=torch.long)))


def test_repr():
    assert repr(RIWSTransform()) == (
        "RIWSTransform(sampler=RIWSSampler(k=10, gamma=2.0), knn_key='knn_index', "
        "flow='source_to_target')"
    )
    assert repr(RIWSTransform(4, sampler="topk", input_nodes="train_mask", keep_edges="old")) == (
        "RIWSTransform(sampler=TopKSampler(k=4), knn_key='knn_index', flow='source_to_target', "
        "input_nodes='train_mask', keep_edges='old')"
    )
    assert repr(AddKNNIndex(20, metric="l2")) == "AddKNNIndex(k=20, key='knn_index', metric='l2')"


def test_numpy_knn_table_accepted():
    data = make_data()
    ref = RIWSTransform(5)(data, torch.Generator().manual_seed(0))
    data.knn_index = data.knn_index.numpy().astype(np.int32)
    out = RIWSTransform(5)(data, torch.Generator().manual_seed(0))
    assert out.edge_index.dtype == torch.long
    assert torch.equal(out.edge_index, ref.edge_index)  # the same draw as from the tensor
    data.knn_index = data.knn_index.astype(np.float64)
    with pytest.raises(ValueError, match=r"data\.knn_index must hold integer neighbour ids"):
        RIWSTransform(5)(data)  # never truncated into other ids, even whole floats


def test_knn_table_errors_name_the_attribute():
    data = make_data()
    RIWSTransform(5)(data)  # caches data.knn_index
    bad = data.clone()
    bad.knn_index = bad.knn_index[:-1]
    with pytest.raises(ValueError, match=r"data\.knn_index has 119 rows but data\.x has 120"):
        RIWSTransform(5)(bad)
    bad = data.clone()
    bad.knn_index[4, 7] = 120
    with pytest.raises(ValueError, match=r"data\.knn_index holds neighbour ids outside \[0, 120\)"
                       r".*row 4, column 7"):  # fmt: skip
        RIWSTransform(5)(bad)
    bad = data.clone()
    bad.knn_index = bad.knn_index[:, :6]
    with pytest.raises(ValueError, match=r"data\.knn_index has 6 neighbours per row but 10 are"):
        RIWSTransform(5)(bad)
    bad = Data(y=data.y, knn_index=data.knn_index.clone())  # no x: the table's rows count
    bad.knn_index[0, 0] = 200
    with pytest.raises(ValueError, match=r"outside \[0, 120\)"):
        RIWSTransform(5)(bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_gpu():
    data = make_data().to("cuda")
    out = RIWSTransform(5)(data, torch.Generator().manual_seed(0))
    assert out.edge_index.device.type == "cuda"
    assert out.edge_label.device.type == "cuda"


def test_settings_are_checked_at_construction():
    with pytest.raises(TypeError, match="key must be the name of a Data attribute"):
        AddKNNIndex(2, key=5)
    with pytest.raises(TypeError, match="knn_key must be the name of a Data attribute"):
        RIWSTransform(2, knn_key=None)
    with pytest.raises(TypeError, match="edge_key must be the name"):
        RIWSTransform(2, edge_key="")
    with pytest.raises(TypeError, match="keep_edges must be the name"):
        RIWSTransform(2, keep_edges=3)
    with pytest.raises(TypeError, match="input_nodes must be an attribute name, a tensor"):
        RIWSTransform(2, input_nodes=[0, 1])
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator or None, got int"):
        RIWSTransform(2, generator=5)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        RIWSTransform(5)(make_data(), generator=7)
