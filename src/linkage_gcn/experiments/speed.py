"""The reference points of the speed benchmark: the dense 2019 design and FLOP counts.

``examples/benchmarks/bench_speed.py`` times the stages of scoring against
two references kept here, so that tests check them without importing a
script:

- :class:`DenseLGCN`: the weights of a :class:`~linkage_gcn.nn.LinkageGCN`
  applied the way the reference code of L-GCN (2019) does it, every IPS
  zero-padded to ``k1 * (k2 + 1) + 1`` nodes with a dense row-normalised
  adjacency and ``bmm`` aggregation; it scores exactly like the model;
- :func:`sage_flops`, :func:`fast_flops`: the multiply-add FLOPs of the plain
  forward and of the products the eval fast path
  (:meth:`~linkage_gcn.nn.LinkageGCN.link_scorer`) computes, from which the
  benchmark reports achieved GFLOP/s.

Examples
--------
>>> from linkage_gcn.nn import LinkageGCN
>>> model = LinkageGCN(8, hidden_channels=(4,), head_channels=3)
>>> sage_flops(model, n_nodes=10, n_pairs=2)
1352.0
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..nn import LinkageGCN

__all__ = ["DenseLGCN", "fast_flops", "sage_flops"]


class DenseLGCN(nn.Module):
    """The 2019 design: zero-padded dense IPS, ``bmm`` mean aggregation, same weights.

    Parameters
    ----------
    model : LinkageGCN
        The model whose weights are applied (its BatchNorm, SAGE layers and head).

    Examples
    --------
    >>> from linkage_gcn.ips import build_ips
    >>> from linkage_gcn.knn import knn
    >>> x = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    >>> index, _ = knn(x, 4)
    >>> model = LinkageGCN(8, hidden_channels=(16,)).eval()
    >>> pivots = torch.arange(0, 30, 5)
    >>> batch = build_ips(x, index, pivots, index[pivots, :3], k2=2, active_connection=2)
    >>> with torch.no_grad():
    ...     dense = DenseLGCN(model)(*DenseLGCN.densify(batch, 3, 2))
    ...     sparse = model(batch.x, batch.edge_index, batch.hop1_index)
    >>> bool(torch.allclose(dense, sparse, atol=1e-5))
    True
    """

    def __init__(self, model: LinkageGCN) -> None:
        super().__init__()
        if not isinstance(model, LinkageGCN):
            raise TypeError(f"model must be a LinkageGCN, got {type(model).__name__}.")
        self.model = model

    @staticmethod
    def densify(batch: Any, k1: int, k2: int) -> tuple[Tensor, Tensor, Tensor]:
        """Dense (B, M, D) features, (B, M, M) ``D^-1 A`` and (B, k1) 1-hop positions.

        ``M = k1 * (k2 + 1) + 1``, the most nodes an IPS can hold; ``batch``
        is a batch of :func:`~linkage_gcn.ips.build_ips` with ``k1`` 1-hop
        neighbours per pivot.
        """
        from torch_geometric.utils import to_dense_adj, to_dense_batch

        max_nodes = k1 * (k2 + 1) + 1
        feats, _ = to_dense_batch(batch.x, batch.batch, max_num_nodes=max_nodes)
        adj = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=max_nodes)
        adj = adj / adj.sum(-1, keepdim=True).clamp_min(1)
        local = batch.hop1_index - batch.ptr[batch.batch[batch.hop1_index]]
        return feats, adj, local.view(-1, k1)

    def forward(self, feats: Tensor, adj: Tensor, hop1_pos: Tensor) -> Tensor:
        """The (B * k1, 2) link logits of the 1-hop nodes of every IPS."""
        m = self.model
        h = m.norm(feats.reshape(-1, feats.shape[-1])).view_as(feats)
        for conv in m.convs:
            agg = torch.bmm(adj, h)
            h = torch.relu(conv.lin_r(h) + conv.lin_l(agg))
        idx = hop1_pos.unsqueeze(-1).expand(-1, -1, h.shape[-1])
        return m.head(h.gather(1, idx).reshape(-1, h.shape[-1]))


def _head_flops(model: LinkageGCN, n_pairs: int) -> float:
    """FLOPs of the head: (last hidden x head) and (head x 2) per pair."""
    h = model.head_channels
    return 2.0 * n_pairs * (model.hidden_channels[-1] * h + h * 2)


def sage_flops(model: LinkageGCN, n_nodes: int, n_pairs: int) -> float:
    """Multiply-add FLOPs of the linear layers of one plain forward (2 per multiply-add).

    Every SAGE layer makes two products (root and neighbours) per node;
    the head runs on the ``n_pairs`` 1-hop rows.

    Examples
    --------
    >>> model = LinkageGCN(8, hidden_channels=(4,), head_channels=3)
    >>> sage_flops(model, 10, 2) == 2 * 2 * 10 * 8 * 4 + 2 * 2 * (4 * 3 + 3 * 2)
    True
    """
    flops = sum(2.0 * 2 * n_nodes * c.in_channels * c.out_channels for c in model.convs)
    return flops + _head_flops(model, n_pairs)


def fast_flops(model: LinkageGCN, n_nodes: int, n_pairs: int) -> float:
    """FLOPs of the products the fast path (``LinkScorer``) computes per batch.

    No product in the first layer (its per-node projections are computed
    once for all N, timed apart), the middle layers on all nodes, the last
    layer and the head on the 1-hop rows only.

    Examples
    --------
    >>> model = LinkageGCN(8, hidden_channels=(4, 6), head_channels=3)
    >>> fast_flops(model, 10, 2) == 2 * 2 * 2 * 4 * 6 + 2 * 2 * (6 * 3 + 3 * 2)
    True
    """
    convs = list(model.convs)
    flops = 0.0
    for i, conv in enumerate(convs[1:], start=2):
        rows = n_pairs if i == len(convs) else n_nodes
        flops += 2.0 * 2 * rows * conv.in_channels * conv.out_channels
    return flops + _head_flops(model, n_pairs)
