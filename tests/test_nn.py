import math

import pytest
import torch

from linkage_gcn._int8 import int8_support
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


def test_forward_is_the_head_on_the_1hop_rows_of_the_embedding():
    torch.manual_seed(0)
    model = LinkageGCN(5, hidden_channels=(8, 6)).eval()
    x = torch.randn(10, 5)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    hop1 = torch.tensor([3, 1, 3])  # repeated rows allowed
    h = model.embed(x, edge_index)
    lin1, prelu, lin2 = model.head
    a = prelu.weight
    z = h[hop1] @ lin1.weight.T + lin1.bias
    want = torch.where(z >= 0, z, a * z) @ lin2.weight.T + lin2.bias  # PReLU by hand
    torch.testing.assert_close(model(x, edge_index, hop1), want)
    for d in (3, 257):  # any input width
        out = LinkageGCN(d)(torch.randn(10, d), edge_index, hop1)
        assert out.shape == (3, 2)


def test_wrong_input_width_is_named_with_a_hint():
    model = LinkageGCN(6, hidden_channels=(4,))
    edge_index = torch.tensor([[0], [1]])
    hop1 = torch.tensor([1])
    with pytest.raises(ValueError, match=r"expects x with 6 features per node, got 5 .*pivot_sim"):
        model(torch.randn(3, 5), edge_index, hop1)
    with pytest.raises(ValueError, match=r"got 7 .*pivot_similarity=False"):
        model(torch.randn(3, 7), edge_index, hop1)
    with pytest.raises(ValueError, match=r"expects x with 6 features per node, got 2$|got 2\."):
        model(torch.randn(3, 2), edge_index, hop1)
    with pytest.raises(ValueError, match="a 1-D tensor"):
        model(torch.randn(6), edge_index, hop1)
    with pytest.raises(ValueError, match=r"edge_index must have shape \(2, E\)"):
        model(torch.randn(3, 6), edge_index.T.repeat(1, 3), hop1)
    with pytest.raises(ValueError, match="hop1_index must be 1-D"):
        model(torch.randn(3, 6), edge_index, hop1.view(1, 1))


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
        ({"in_channels": 4, "hidden_channels": 16}, r"got the int 16; write \(16,\)"),
        ({"in_channels": 4, "hidden_channels": "64"}, "sequence of layer sizes"),
        ({"in_channels": 4, "hidden_channels": (8, 0)}, r"hidden_channels\[1\] must be .* >= 1"),
        ({"in_channels": 4, "hidden_channels": (8.5,)}, r"hidden_channels\[0\] must be an int"),
        ({"in_channels": 4, "head_channels": 0}, "head_channels"),
        ({"in_channels": 4, "dropout": 1.5}, "dropout"),
        ({"in_channels": 4, "dropout": 1.0}, "drop all"),
        ({"in_channels": 4, "input_norm": "yes"}, "input_norm must be True or False"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinkageGCN(**kwargs)


def _model_with_statistics(d, hidden, input_norm=True, seed=0):
    """An eval model whose batch-norm shift/scale and biases are far from the identity."""
    torch.manual_seed(seed)
    model = LinkageGCN(d, hidden_channels=hidden, input_norm=input_norm).eval()
    with torch.no_grad():
        if input_norm:
            model.norm.running_mean.copy_(torch.randn(d))
            model.norm.running_var.copy_(torch.rand(d) + 0.5)
        for conv in model.convs:
            conv.lin_l.bias.normal_()
    return model


@pytest.mark.parametrize("pivot_similarity", [False, True])
@pytest.mark.parametrize("table", [False, True])
@pytest.mark.parametrize("hidden,input_norm", [((16,), True), ((16, 12, 8), True), ((8, 8), False)])
@pytest.mark.parametrize("k_at_hop,u", [((4, 3), 3), ((6, 0), 1), ((3, 8), 2)])
def test_link_scorer_equals_the_plain_forward(pivot_similarity, table, hidden, input_norm,
                                               k_at_hop, u):  # fmt: skip
    from linkage_gcn.ips import build_ips, build_ips_graph
    from linkage_gcn.knn import knn

    torch.manual_seed(1)
    x = torch.randn(80, 12) + 3.0  # off-centre features: the pivot shift matters
    index, _ = knn(x, 8)
    model = _model_with_statistics(12 + pivot_similarity, hidden, input_norm)
    (k1, k2), pivots = k_at_hop, torch.tensor([0, 7, 7, 31, 79, 50])
    hop1 = index[pivots, :k1]
    batch = build_ips(x, index, pivots, hop1, k2=k2, active_connection=u,
                      pivot_similarity=pivot_similarity)  # fmt: skip
    graph = build_ips_graph(index, pivots, hop1, k2=k2, active_connection=u)
    with torch.no_grad():
        plain = model(batch.x, batch.edge_index, batch.hop1_index)
    # u = 1 and k2 = 0 leave degree-0 nodes: they aggregate to 0 (no pivot shift either)
    scorer = model.link_scorer(x, pivot_similarity=pivot_similarity, table=table)
    fast = scorer.logits(graph)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    approx = model.link_scorer(x, pivot_similarity=pivot_similarity, precision="bf16")
    diff = (approx.logits(graph).softmax(1) - plain.softmax(1)).abs().max()
    assert diff < 2e-2
    if int8_support() is None:
        approx = model.link_scorer(x, pivot_similarity=pivot_similarity, precision="int8")
        diff = (approx.logits(graph).softmax(1) - plain.softmax(1)).abs().max()
        assert diff < 2e-2


@pytest.mark.parametrize("hidden,input_norm", [((16,), True), ((16, 12, 8), True), ((8, 8), False)])
@pytest.mark.parametrize("k_at_hop,u", [((4, 3), 3), ((6, 0), 1), ((3, 8), 2)])
def test_link_scorer_on_structure_features_equals_the_plain_forward(hidden, input_norm,
                                                                    k_at_hop, u):  # fmt: skip
    from linkage_gcn.ips import build_ips_graph
    from linkage_gcn.knn import knn
    from linkage_gcn.structure import N_STRUCTURE_FEATURES, StructureContext

    torch.manual_seed(2)
    x = torch.randn(90, 10)
    index, _ = knn(x, 8)
    ctx = StructureContext.build(x, index, k=6)
    model = _model_with_statistics(N_STRUCTURE_FEATURES, hidden, input_norm)
    (k1, k2), pivots = k_at_hop, torch.tensor([0, 7, 7, 31, 89, 50])
    graph = build_ips_graph(index, pivots, index[pivots, :k1], k2=k2, active_connection=u)
    # PyG's layers on the pair features of each node, the edge list (no fast path)
    feats = graph.features(x, pivots, structure=ctx)
    with torch.no_grad():
        plain = model(feats, graph.edge_index(), graph.hop1_index)
    fast = model.link_scorer(x, structure=ctx).logits(graph)
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
    approx = model.link_scorer(x, structure=ctx, precision="bf16").logits(graph)
    assert (approx.softmax(1) - plain.softmax(1)).abs().max() < 2e-2
    with pytest.raises(ValueError, match="per pair"):
        model.link_scorer(x, structure=ctx, table=True)
    with pytest.raises(ValueError, match=r"expects 12 input features.*structure features are"):
        _model_with_statistics(12, hidden).link_scorer(x, structure=ctx)


def test_rows_mean_adjacency_is_those_rows_of_the_mean_adjacency():
    from linkage_gcn.ips import build_ips_graph
    from linkage_gcn.knn import knn
    from linkage_gcn.nn import _mean_adjacency, _rows_mean_adjacency

    torch.manual_seed(0)
    x = torch.randn(60, 6)
    index, _ = knn(x, 6)
    pivots = torch.tensor([3, 9, 40])
    # u = 1 leaves nodes without neighbours in the IPS: rows of zeros
    graph = build_ips_graph(index, pivots, index[pivots, :4], k2=2, active_connection=1)
    deg = graph.rowptr[1:] - graph.rowptr[:-1]
    assert (deg == 0).any()
    full = _mean_adjacency(graph, deg, torch.float32).to_dense()
    rows = torch.cat([graph.hop1_index, torch.nonzero(deg == 0)[:1, 0], graph.hop1_index[:2]])
    got = _rows_mean_adjacency(graph, deg, rows, torch.float32)
    assert got.layout == torch.sparse_csr and got.shape == (rows.numel(), graph.num_nodes)
    torch.testing.assert_close(got.to_dense(), full[rows])


def test_padded_nodes_are_isolated_and_leave_the_real_rows_as_they_were():
    from linkage_gcn.ips import build_ips_graph
    from linkage_gcn.knn import knn
    from linkage_gcn.nn import _mean_adjacency, _pad_nodes

    torch.manual_seed(0)
    index, _ = knn(torch.randn(50, 6), 6)
    graph = build_ips_graph(index, torch.tensor([1, 8]), index[[1, 8], :4], k2=2,
                            active_connection=2)  # fmt: skip
    v = graph.num_nodes
    deg = graph.rowptr[1:] - graph.rowptr[:-1]
    x = torch.randn(v, 3)
    adj = _mean_adjacency(graph, deg, torch.float32)
    padded, px, pdeg, padj = _pad_nodes(graph, x, deg, adj, 16)
    assert padded.num_nodes % 16 == 0 and padded.num_nodes > v
    assert px.shape == (padded.num_nodes, 3) and torch.equal(px[:v], x) and not px[v:].any()
    dense = _mean_adjacency(padded, pdeg, torch.float32).to_dense()
    torch.testing.assert_close(dense[:v, :v], adj.to_dense())
    assert not dense[v:].any() and not dense[:, v:].any()
    torch.testing.assert_close(padj.to_dense(), dense)  # the padded adjacency, not rebuilt
    assert torch.equal(padded.hop1_index, graph.hop1_index)
    same, sx, _, sadj = _pad_nodes(padded, px, pdeg, padj, 16)
    assert same is padded and sx is px and sadj is padj  # already a multiple


def test_link_scorer_refuses_models_it_cannot_reproduce():
    class Custom(LinkageGCN):
        def forward(self, x, edge_index, hop1_index):
            return super().forward(x, edge_index, hop1_index) * 2

    x = torch.randn(5, 4)
    with pytest.raises(TypeError, match="unmodified LinkageGCN"):
        Custom(4, hidden_channels=(4,)).link_scorer(x)
    model = LinkageGCN(4, hidden_channels=(4,))
    with pytest.raises(ValueError, match=r"expects 4 input features .* x has 4 \+ 1"):
        model.link_scorer(x, pivot_similarity=True)
    with pytest.raises(ValueError, match="precision"):
        model.link_scorer(x, precision="fp16")
    scorer = model.link_scorer(x, table=True)
    assert not model.training  # switched to eval mode
    assert repr(scorer).startswith("LinkScorer(LinkageGCN(4, ") and "'all nodes'" in repr(scorer)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "tf32", "bf16"])
def test_link_scorer_on_gpu(precision):
    from linkage_gcn.ips import build_ips, build_ips_graph
    from linkage_gcn.knn import knn

    x = torch.randn(200, 32, device="cuda")
    index, _ = knn(x, 10)
    model = _model_with_statistics(33, (64, 64, 32)).cuda()
    pivots = torch.arange(0, 200, 3, device="cuda")
    hop1 = index[pivots, :6]
    batch = build_ips(x, index, pivots, hop1, k2=4, active_connection=4, pivot_similarity=True)
    graph = build_ips_graph(index, pivots, hop1, k2=4, active_connection=4)
    with torch.no_grad():
        plain = model(batch.x, batch.edge_index, batch.hop1_index).softmax(1)
    fast = model.link_scorer(x, pivot_similarity=True, precision=precision).logits(graph)
    tol = 1e-4 if precision == "fp32" else 2e-2
    assert (fast.softmax(1) - plain).abs().max() < tol


def test_forward_takes_a_csr_adjacency():
    from linkage_gcn.ips import build_ips_graph
    from linkage_gcn.knn import knn

    torch.manual_seed(0)
    x = torch.randn(40, 6)
    index, _ = knn(x, 5)
    pivots = torch.arange(0, 40, 4)
    graph = build_ips_graph(index, pivots, index[pivots, :3], k2=2, active_connection=2)
    feats = graph.features(x, pivots)
    model = _model_with_statistics(6, (8, 8))
    with torch.no_grad():
        want = model(feats, graph.edge_index(), graph.hop1_index)
        got = model(feats, graph.adj_t(), graph.hop1_index)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r"sparse adjacency must have shape \(V, V\)"):
        model(feats[:-1], graph.adj_t(), graph.hop1_index)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("sparse", [False, True])
def test_forward_computes_last_layer_on_hop1_rows_only_same_output(training, sparse):
    # forward skips the last layer's products on rows the head does not read: same logits
    # and gradients as the head over the full embedding
    torch.manual_seed(0)
    model = LinkageGCN(16, hidden_channels=(32, 32, 24)).train(training)
    x = torch.randn(40, 16)
    ei = torch.unique(torch.randint(0, 40, (2, 150)), dim=1)
    ei = torch.unique(torch.cat([ei, ei.flip(0)], 1), dim=1)
    adj = ei
    if sparse:
        ones = torch.ones(ei.shape[1])
        adj = torch.sparse_coo_tensor(ei.flip(0), ones, (40, 40)).coalesce().to_sparse_csr()
    hop1 = torch.tensor([0, 3, 17, 39])
    fast = model(x, adj, hop1)
    full = model.head(model.embed(x, adj)[hop1])
    assert torch.allclose(fast, full, atol=1e-6)
    (g_fast,) = torch.autograd.grad(fast.sum(), model.convs[-1].lin_l.weight)
    (g_full,) = torch.autograd.grad(full.sum(), model.convs[-1].lin_l.weight)
    assert torch.allclose(g_fast, g_full, atol=1e-6)


def test_forward_uses_a_subclass_embed():
    class Zero(LinkageGCN):
        def embed(self, x, edge_index):
            return torch.zeros(x.shape[0], self.hidden_channels[-1])

    model = Zero(8, hidden_channels=(16,)).eval()
    out = model(torch.randn(5, 8), torch.tensor([[0, 1], [1, 0]]), torch.tensor([0, 1]))
    assert torch.allclose(out, model.head(torch.zeros(2, 16)))
