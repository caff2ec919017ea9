import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch_geometric.data import Data, InMemoryDataset

from linkage_gcn.loader import RIWSNodeSampler, identity_balanced_weights


def long_tailed(n_ids=20, seed=0):
    """Identity i has about 100 / (i + 1) nodes, in random order."""
    sizes = [max(1, 100 // (i + 1)) for i in range(n_ids)]
    y = torch.repeat_interleave(torch.arange(n_ids), torch.tensor(sizes))
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))]


def test_weights_are_one_over_identity_size():
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    expected = torch.tensor([1 / 3, 1 / 3, 1 / 3, 1.0, 1 / 2, 1 / 2], dtype=torch.float64)
    assert torch.allclose(RIWSNodeSampler(y).weights, expected)
    assert torch.allclose(identity_balanced_weights(y), expected)
    # power interpolates: 0 is uniform, 0.5 square root
    assert torch.equal(RIWSNodeSampler(y, power=0.0).weights, torch.ones(6, dtype=torch.float64))
    assert torch.allclose(RIWSNodeSampler(y, power=0.5).weights, expected.sqrt())


def test_identity_sizes_counted_among_input_nodes():
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    s = RIWSNodeSampler(y, input_nodes=torch.tensor([0, 3, 4, 5]))
    assert torch.allclose(s.weights, torch.tensor([1.0, 0.5, 0.5, 1.0], dtype=torch.float64))
    assert s.num_identities == 3


def test_identities_drawn_about_equally():
    y = long_tailed()
    s = RIWSNodeSampler(y, num_samples=100_000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(y[torch.tensor(list(s))], minlength=20).double()
    # 5000 expected per identity; sd about 70
    assert float((counts / 5000 - 1).abs().max()) < 0.06
    # whereas uniform node sampling follows the sizes (largest identity ~ 100x the smallest)
    u = RIWSNodeSampler(
        y, num_samples=100_000, power=0.0, generator=torch.Generator().manual_seed(0)
    )
    uc = torch.bincount(y[torch.tensor(list(u))], minlength=20).double()
    assert float(uc.max() / uc.min()) > 10


def test_positions_index_into_input_nodes_index_and_mask():
    y = long_tailed()
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(len(y), generator=g) < 0.5
    ids = mask.nonzero().view(-1)
    for nodes in (mask, ids):
        data = Data(y=y, train_mask=mask)
        s = RIWSNodeSampler(data, input_nodes=nodes, generator=torch.Generator().manual_seed(1))
        pos = torch.tensor(list(s))
        assert len(pos) == len(ids)  # num_samples defaults to the number of input nodes
        assert int(pos.min()) >= 0 and int(pos.max()) < len(ids)
        assert torch.equal(s.node_index, ids)
        assert bool(mask[s.node_index[pos]].all())  # mapped back: only input nodes
    # unsorted ids keep their order, as NeighborLoader's input_nodes
    s = RIWSNodeSampler(y, input_nodes=torch.tensor([5, 1, 9]))
    assert torch.equal(s.node_index, torch.tensor([5, 1, 9]))


def test_positions_through_a_dataloader():
    y = long_tailed()
    s = RIWSNodeSampler(Data(y=y), num_samples=64, generator=torch.Generator().manual_seed(0))
    batches = list(DataLoader(range(len(s.node_index)), sampler=s, batch_size=16))
    assert [len(b) for b in batches] == [16, 16, 16, 16]


class Graphs(InMemoryDataset):
    def __init__(self, data_list):
        super().__init__(None)
        self.data, self.slices = self.collate(data_list)


def graphs(labels):
    return [Data(x=torch.ones(2, 1), y=torch.tensor([c])) for c in labels]


def test_accepts_data_labels_numpy_and_graph_datasets():
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    ref = RIWSNodeSampler(y).weights
    assert torch.equal(RIWSNodeSampler(Data(y=y)).weights, ref)
    assert torch.equal(RIWSNodeSampler(Data(x=torch.ones(6, 2), y=y.view(-1, 1))).weights, ref)
    assert torch.equal(RIWSNodeSampler(y.numpy()).weights, ref)
    assert torch.equal(RIWSNodeSampler(y.float()).weights, ref)
    assert torch.equal(RIWSNodeSampler(graphs(y.tolist())).weights, ref)  # list of Data
    assert torch.equal(RIWSNodeSampler(Graphs(graphs(y.tolist()))).weights, ref)  # dataset
    assert len(list(RIWSNodeSampler(graphs(y.tolist())))) == 6


def test_num_samples_and_replacement():
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    assert RIWSNodeSampler(y).num_samples == 6
    assert len(list(RIWSNodeSampler(y, num_samples=50))) == 50
    drawn = list(RIWSNodeSampler(y, replacement=False))
    assert sorted(drawn) == list(range(6))


def test_reproducible_with_a_generator():
    y = long_tailed()
    a = list(RIWSNodeSampler(y, generator=torch.Generator().manual_seed(5)))
    b = list(RIWSNodeSampler(y, generator=torch.Generator().manual_seed(5)))
    assert a == b


def test_errors():
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="no `y`"):
        RIWSNodeSampler(Data(x=torch.ones(3, 2)))
    with pytest.raises(ValueError, match="negative identities"):
        RIWSNodeSampler(torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match="integer identities"):
        RIWSNodeSampler(torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match="integer identities"):
        RIWSNodeSampler(torch.tensor([True, False]))
    with pytest.raises(ValueError, match="shape"):
        RIWSNodeSampler(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="outside"):
        RIWSNodeSampler(y, input_nodes=torch.tensor([3]))
    with pytest.raises(ValueError, match="one entry per node"):
        RIWSNodeSampler(y, input_nodes=torch.tensor([True, False]))
    with pytest.raises(ValueError, match="only applies to node-level"):
        RIWSNodeSampler(graphs([0, 1]), input_nodes=torch.tensor([0]))
    with pytest.raises(ValueError, match="one label per graph"):
        RIWSNodeSampler([Data(y=torch.tensor([0, 1]))])
    with pytest.raises(ValueError, match="every graph needs a label"):
        RIWSNodeSampler([Data(x=torch.ones(1, 1))])
    with pytest.raises(ValueError, match="has no node or graph"):
        RIWSNodeSampler(y, input_nodes=torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="power"):
        RIWSNodeSampler(y, power=2.0)
    with pytest.raises(ValueError, match="num_samples"):
        RIWSNodeSampler(y, num_samples=0)
    with pytest.raises(ValueError, match=r"labels but data\.x has"):
        RIWSNodeSampler(Data(x=torch.ones(4, 1), y=y))
    with pytest.raises(TypeError, match="dataset must be"):
        RIWSNodeSampler(42)


def test_repr():
    y = torch.tensor([0, 0, 1, 2, 2, 2])
    assert repr(RIWSNodeSampler(y)) == (
        "RIWSNodeSampler(6, num_identities=3, num_samples=6, power=1.0)"
    )
    assert repr(RIWSNodeSampler(y, num_samples=3, power=0.5, replacement=False)) == (
        "RIWSNodeSampler(6, num_identities=3, num_samples=3, power=0.5, replacement=False)"
    )


def test_numpy_labels_not_modified():
    y = np.array([0, 0, 1])
    RIWSNodeSampler(y)
    assert y.tolist() == [0, 0, 1]


def test_replacement_and_generator_are_checked():
    y = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="replacement must be True or False, got 'no'"):
        RIWSNodeSampler(y, replacement="no")
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator or None, got int"):
        RIWSNodeSampler(y, generator=5)
    assert RIWSNodeSampler(y, replacement=np.bool_(False)).replacement is False
