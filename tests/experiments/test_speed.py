"""The references of the speed benchmark: the dense 2019 design scores exactly like LinkageGCN."""

import pytest
import torch

from linkage_gcn.experiments.speed import DenseLGCN, fast_flops, sage_flops
from linkage_gcn.ips import build_ips
from linkage_gcn.knn import knn
from linkage_gcn.nn import LinkageGCN


def test_dense_design_gives_equal_scores():
    torch.manual_seed(0)
    x = torch.randn(60, 16)
    index, _ = knn(x, 6)
    model = LinkageGCN(16, hidden_channels=(32, 24)).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        model.norm.running_mean.copy_(torch.randn(16))
        model.norm.running_var.copy_(torch.rand(16) + 0.5)
    k1, k2 = 4, 3
    pivots = torch.arange(0, 60, 3)
    batch = build_ips(x, index, pivots, index[pivots, :k1], k2=k2, active_connection=3)
    with torch.no_grad():
        sparse = model(batch.x, batch.edge_index, batch.hop1_index)
        dense = DenseLGCN(model)(*DenseLGCN.densify(batch, k1, k2))
    torch.testing.assert_close(dense, sparse, rtol=1e-4, atol=1e-5)


def test_dense_design_needs_a_linkage_gcn():
    with pytest.raises(TypeError, match="model must be a LinkageGCN, got Linear"):
        DenseLGCN(torch.nn.Linear(2, 2))


def test_flop_count_of_one_layer():
    model = LinkageGCN(8, hidden_channels=(4,), head_channels=3)
    # one SAGE layer: two (8 x 4) products per node; head: (4 x 3) and (3 x 2) per pair
    assert sage_flops(model, 10, 2) == 2 * 2 * 10 * 8 * 4 + 2 * 2 * (4 * 3 + 3 * 2)


def test_fast_path_flop_count_skips_the_first_layer_and_trims_the_last():
    model = LinkageGCN(8, hidden_channels=(4, 6), head_channels=3)
    # layer 1: no product (per-node projections); layer 2 (last): on the 2 pair rows only
    want = 2 * 2 * 2 * 4 * 6 + 2 * 2 * (6 * 3 + 3 * 2)
    assert fast_flops(model, 10, 2) == want
    # three layers: the middle one on all nodes
    model = LinkageGCN(8, hidden_channels=(4, 5, 6), head_channels=3)
    want = 2 * 2 * 10 * 4 * 5 + 2 * 2 * 2 * 5 * 6 + 2 * 2 * (6 * 3 + 3 * 2)
    assert fast_flops(model, 10, 2) == want
