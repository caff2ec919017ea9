"""int8 graph convolutions (``precision="int8"``), against an independent fp32 definition."""

import platform

import numpy as np
import pytest
import torch
from torch_geometric.nn import SAGEConv

from linkage_gcn import _int8
from linkage_gcn._int8 import Int8Sage, check_int8, int8_support

needs_int8 = pytest.mark.skipif(int8_support() is not None, reason=str(int8_support()))


def dense_sage_relu(conv, x, adj):
    """``ReLU(W_l (D^-1 A) x + b + W_r x)``, written out with dense matrices."""
    with torch.no_grad():
        agg = adj.to_dense() @ x
        return torch.relu(agg @ conv.lin_l.weight.T + conv.lin_l.bias + x @ conv.lin_r.weight.T)


def random_problem(n=120, d=64, out=32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    conv = SAGEConv(d, out)
    x = torch.relu(torch.randn(n, d, generator=gen))  # ReLU outputs: non-negative
    a = (torch.rand(n, n, generator=gen) < 0.05).float()
    adj = (a / a.sum(1, keepdim=True).clamp_min(1)).to_sparse_csr()
    return conv, x, adj


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64") or not torch.backends.mkldnn.is_available(),
    reason="oneDNN's int8 linear is checked on x86 builds with oneDNN",
)
def test_this_build_has_the_int8_kernel():
    # an x86 torch with oneDNN (CI's 2.13) has it: int8 tests must not skip silently there
    assert int8_support() is None


@needs_int8
@pytest.mark.parametrize("use_rows", [False, True])
def test_int8_sage_is_close_to_fp32(use_rows):
    conv, x, adj = random_problem()
    want = dense_sage_relu(conv, x, adj)
    rows = torch.tensor([0, 5, 5, 17, 119]) if use_rows else None
    sub = adj if rows is None else adj.to_dense()[rows].to_sparse_csr()  # (R, V) rows
    got = Int8Sage(conv)(x.clone(), sub, rows)
    if rows is not None:
        want = want[rows]
    assert got.shape == want.shape and got.dtype == torch.float32
    rel = (got - want).norm() / want.norm()
    assert rel < 0.02  # 8-bit weights, 7-bit inputs
    assert (got >= 0).all()  # ReLU fused


@needs_int8
def test_int8_sage_keeps_nan_visible_and_handles_zeros():
    conv, x, adj = random_problem()
    x[3, 4] = float("nan")
    hit = (adj.to_dense()[:, 3] > 0) | (torch.arange(120) == 3)  # row 3 and who aggregates it
    out = Int8Sage(conv)(x, adj)
    assert torch.isnan(out[hit]).all() and torch.isfinite(out[~hit]).all()
    zeros = Int8Sage(conv)(torch.zeros(120, 64), adj)
    torch.testing.assert_close(zeros, torch.relu(conv.lin_l.bias.detach()).expand(120, -1))
    assert repr(Int8Sage(conv)) == "Int8Sage(64, 32)"


def test_check_int8_names_the_problem(monkeypatch):
    with pytest.raises(ValueError, match="CPU only"):
        check_int8(torch.device("cuda"))
    monkeypatch.setattr(_int8, "int8_support", lambda: "no oneDNN here")
    with pytest.raises(RuntimeError, match="not available: no oneDNN here"):
        check_int8(torch.device("cpu"))


def test_link_scorer_refuses_int8_where_it_cannot_run(monkeypatch):
    from linkage_gcn.nn import LinkageGCN
    from linkage_gcn.training import predict_links

    monkeypatch.setattr(_int8, "int8_support", lambda: "no oneDNN here")
    x = torch.randn(20, 4)
    model = LinkageGCN(4, hidden_channels=(8, 8))
    with pytest.raises(RuntimeError, match="int8"):
        model.link_scorer(x, precision="int8")
    index = torch.stack([torch.roll(torch.arange(20), -s) for s in (1, 2, 3)], 1)
    with pytest.raises(RuntimeError, match="int8"):
        predict_links(model, x, index, k1=2, k2=1, active_connection=1, precision="int8")


def test_predict_links_int8_needs_a_plain_linkage_gcn():
    from linkage_gcn.nn import LinkageGCN
    from linkage_gcn.training import predict_links

    class Doubled(LinkageGCN):
        def forward(self, x, edge_index, hop1_index):
            return 2 * super().forward(x, edge_index, hop1_index)

    x = torch.randn(20, 4)
    index = torch.stack([torch.roll(torch.arange(20), -s) for s in (1, 2, 3)], 1)
    with pytest.raises(ValueError, match="plain LinkageGCN only"):
        predict_links(Doubled(4, hidden_channels=(8,)), x, index, k1=2, k2=1,
                      active_connection=1, precision="int8")  # fmt: skip


@needs_int8
def test_trained_model_scores_in_int8_close_to_fp32():
    from linkage_gcn import LinkageClusterer
    from linkage_gcn.datasets import make_identities
    from linkage_gcn.metrics import bcubed_fscore, edge_ap
    from linkage_gcn.model_selection import split_identities

    X, y = make_identities(120, max_size=20, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    est = LinkageClusterer(k_at_hop=(8, 4), active_connection=4, hidden_channels=(64, 64, 32),
                           epochs=4, lr=0.05, batch_size=8, random_state=0, threads=1,
                           verbose=False,
                           merge="threshold")  # fmt: skip
    est.fit(X[train], y[train])
    Xt, yt = X[test], y[test]
    edges, exact = est.predict_edges(Xt)
    assert exact.std() > 0.2  # a trained model: scores spread over [0, 1]
    edges8, approx = est.set_params(precision="int8").predict_edges(Xt)
    np.testing.assert_array_equal(edges, edges8)
    assert np.abs(approx - exact).mean() < 5e-3
    assert np.abs(approx - exact).max() < 0.05
    assert abs(edge_ap(yt, edges, approx) - edge_ap(yt, edges, exact)) < 5e-3
    labels8 = est.predict(Xt)
    labels = est.set_params(precision="fp32").predict(Xt)
    assert bcubed_fscore(labels, labels8)[2] > 0.98
