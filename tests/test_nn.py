import math

import pytest
import torch

from linkage_gcn.nn import LinkageGCN


def dense_reference_layer(x, edge_index, w_root, w_neigh, bias):
    """The L-GCN layer: ReLU([x || D^-1 A x] @ W + b), with a dense adjacency."""
    n = x.shape[0]
    a = torch.zeros(n, n)
    a[edge_index[1], edge_index[0]] = 1.0
    deg = a.sum(1, keepdim=True)
    agg = (a / deg.clamp_min(1)) @ x  # degree-0 rows aggregate to 0 (the RIWS fork's clamp)
    w = torch.cat([w_root.T, w_neigh.T], dim=0)  # stacked (2 * in, out)
    return torch.relu(torch.cat([x, agg], dim=1) @ w + bias)


def test_layers_equal_the_reference_dense_formulation():
    torch.manual_seed(0)
    model = LinkageGCN(6, hidden_channels=(5, 4), head_channels=3).eval()
    x = torch.randn(7, 6)
    edge_index = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])  # node 5, 6: degree 0
    h = model.norm(x)
    for conv in model.convs:
        ref = dense_reference_layer(
            h, edge_index, conv.lin_r.weight, conv.lin_l.weight, conv.lin_l.bias
        )
        h = torch.relu(conv(h, edge_index))
        torch.testing.assert_close(h, ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(model.embed(x, edge_index), h)


def test_forward_shapes_and_any_input_dim():
    for d in (3, 128, 257):
        model = LinkageGCN(d)
        out = model(torch.randn(10, d), torch.tensor([[0, 1], [1, 0]]), torch.tensor([1, 2, 3]))
        assert out.shape == (3, 2)


def test_architecture_matches_reference():
    model = LinkageGCN(512)
    assert [(c.in_channels, c.out_channels) for c in model.convs] == [
        (512, 512),
        (512, 512),
        (512, 256),
        (256, 256),
    ]
    assert all(c.aggr == "mean" and c.root_weight for c in model.convs)
    assert isinstance(model.norm, torch.nn.BatchNorm1d) and not model.norm.affine
    assert [type(m).__name__ for m in model.head] == ["Linear", "PReLU", "Linear"]
    assert model.head[-1].out_features == 2
    # Xavier-uniform bound of the stacked (2 * in, out) matrix, zero bias
    conv = model.convs[0]
    bound = math.sqrt(6 / (2 * 512 + 512))
    assert conv.lin_l.weight.abs().max() <= bound and conv.lin_r.weight.abs().max() <= bound
    assert conv.lin_l.weight.abs().max() > 0.9 * bound
    assert torch.all(conv.lin_l.bias == 0)


def test_configurable_and_repr():
    model = LinkageGCN(16, hidden_channels=(32,), head_channels=8, dropout=0.2, input_norm=False)
    assert repr(model) == "LinkageGCN(16, hidden_channels=[32], head_channels=8, dropout=0.2)"
    assert isinstance(model.norm, torch.nn.Identity)
    assert len(model.convs) == 1


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"in_channels": 0}, "in_channels"),
        ({"in_channels": 4, "hidden_channels": ()}, "at least one"),
        ({"in_channels": 4, "dropout": 1.5}, "dropout"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinkageGCN(**kwargs)
