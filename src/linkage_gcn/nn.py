"""The L-GCN link classifier, built from PyG mean-aggregation message passing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from ._validation import check_int, check_real

__all__ = ["LinkageGCN"]


class LinkageGCN(nn.Module):
    r"""Graph convolution network that scores pivot-to-neighbour links.

    The reference L-GCN architecture: an input ``BatchNorm1d`` without affine
    parameters, then layers :math:`h_i' = \mathrm{ReLU}([h_i \,\|\,
    \mathrm{mean}_{j \in N(i)} h_j] W + b)`, exactly PyG's
    ``SAGEConv(aggr="mean", root_weight=True)`` (sizes D -> 512 -> 512 -> 256
    -> 256 by default), and a ``Linear -> PReLU -> Linear`` head giving two
    logits (no link, link) for each labelled 1-hop node.

    Parameters
    ----------
    in_channels : int
        Input feature dimension (any).
    hidden_channels : sequence of int
        Output size of each graph convolution layer.
    head_channels : int, optional
        Hidden size of the head; by default the last layer's size.
    dropout : float
        Dropout applied after each graph convolution (0 in the reference).
    input_norm : bool
        Whether to start with ``BatchNorm1d(in_channels, affine=False)``.

    Examples
    --------
    >>> model = LinkageGCN(128)
    >>> model
    LinkageGCN(128, hidden_channels=[512, 512, 256, 256], head_channels=256, dropout=0.0)
    >>> x = torch.randn(6, 128)
    >>> edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    >>> model(x, edge_index, torch.tensor([1, 2])).shape
    torch.Size([2, 2])
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: Sequence[int] = (512, 512, 256, 256),
        head_channels: Optional[int] = None,
        dropout: float = 0.0,
        input_norm: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels", minimum=1)
        sizes = [check_int(h, "hidden_channels", minimum=1) for h in hidden_channels]
        if not sizes:
            raise ValueError("hidden_channels must name at least one layer size.")
        self.hidden_channels = sizes
        self.head_channels = sizes[-1] if head_channels is None else head_channels
        check_int(self.head_channels, "head_channels", minimum=1)
        self.dropout = check_real(dropout, "dropout", minimum=0.0, maximum=1.0)
        self.norm = nn.BatchNorm1d(in_channels, affine=False) if input_norm else nn.Identity()
        dims = [in_channels, *sizes]
        self.convs = nn.ModuleList(
            SAGEConv(a, b, aggr="mean", root_weight=True) for a, b in zip(dims[:-1], dims[1:])
        )
        self.head = nn.Sequential(
            nn.Linear(sizes[-1], self.head_channels),
            nn.PReLU(self.head_channels),
            nn.Linear(self.head_channels, 2),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as the reference: Xavier-uniform over the stacked ``[W_root; W_neigh]``.

        The reference multiplies ``[h || mean(h)]`` by one (2 * in, out)
        matrix; PyG splits it into ``lin_r`` and ``lin_l``, so both get the
        bound of the stacked matrix. Biases start at 0.
        """
        for conv in self.convs:
            fan_in, fan_out = 2 * conv.in_channels, conv.out_channels
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            for lin in (conv.lin_l, conv.lin_r):
                nn.init.uniform_(lin.weight, -bound, bound)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        for layer in self.head:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
        if isinstance(self.norm, nn.BatchNorm1d):
            self.norm.reset_running_stats()

    def embed(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Node embeddings after the graph convolutions."""
        h = self.norm(x)
        for conv in self.convs:
            h = torch.relu(conv(h, edge_index))
            if self.dropout > 0:
                h = nn.functional.dropout(h, p=self.dropout, training=self.training)
        return h

    def forward(self, x: Tensor, edge_index: Tensor, hop1_index: Tensor) -> Tensor:
        """Link logits of the labelled 1-hop nodes.

        Parameters
        ----------
        x : torch.Tensor of shape (V, in_channels)
            Pivot-relative node features of a batch of IPS.
        edge_index : torch.LongTensor of shape (2, E)
            Symmetric IPS edges.
        hop1_index : torch.LongTensor of shape (P,)
            Positions of the 1-hop nodes whose link to their pivot is scored.

        Returns
        -------
        torch.Tensor of shape (P, 2)
            Logits; ``softmax(logits)[:, 1]`` is the link probability.
        """
        return self.head(self.embed(x, edge_index)[hop1_index])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, hidden_channels={self.hidden_channels}, "
            f"head_channels={self.head_channels}, dropout={self.dropout})"
        )
