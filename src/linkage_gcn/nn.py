"""The L-GCN link classifier, built from PyG mean-aggregation message passing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral
from typing import Any, Optional

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from ._validation import check_bool, check_int, check_real

__all__ = ["LinkageGCN", "check_layer_sizes"]


def check_layer_sizes(hidden_channels: Any, name: str = "hidden_channels") -> list[int]:
    """Validate a sequence of layer sizes (positive integers, at least one).

    Examples
    --------
    >>> check_layer_sizes((64, 32))
    [64, 32]
    >>> check_layer_sizes(16)
    Traceback (most recent call last):
    ...
    ValueError: hidden_channels must be a sequence of layer sizes such as (512, 256), got ...
    """
    if isinstance(hidden_channels, (str, bytes)) or not isinstance(
        hidden_channels, (Sequence, np.ndarray)
    ):
        kind = type(hidden_channels).__name__
        one = (
            f"; write ({hidden_channels!r},) for one layer"
            if isinstance(hidden_channels, Integral)
            else ""
        )
        raise ValueError(
            f"{name} must be a sequence of layer sizes such as (512, 256), got the {kind} "
            f"{hidden_channels!r}{one}."
        )
    sizes = [check_int(h, f"{name}[{i}]", minimum=1) for i, h in enumerate(hidden_channels)]
    if not sizes:
        raise ValueError(f"{name} must name at least one layer size, got {hidden_channels!r}.")
    return sizes


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
        sizes = check_layer_sizes(hidden_channels)
        self.hidden_channels = sizes
        self.head_channels = sizes[-1] if head_channels is None else head_channels
        self.head_channels = check_int(self.head_channels, "head_channels", minimum=1)
        self.dropout = check_real(dropout, "dropout", minimum=0.0, maximum=1.0)
        if self.dropout == 1.0:
            raise ValueError("dropout must be a number in [0, 1), got 1.0 (it would drop all).")
        input_norm = check_bool(input_norm, "input_norm")
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

        Raises
        ------
        ValueError
            When the shapes do not fit (checked on shapes only, no pass over
            the values): ``x`` not (V, in_channels), ``edge_index`` not
            (2, E), ``hop1_index`` not 1-D.
        """
        self._check_shapes(x, edge_index, hop1_index)
        return self.head(self.embed(x, edge_index)[hop1_index])

    def _check_shapes(self, x: Tensor, edge_index: Tensor, hop1_index: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            got = x.shape[1] if x.dim() == 2 else f"a {x.dim()}-D tensor of shape {tuple(x.shape)}"
            hint = ""
            if x.dim() == 2 and x.shape[1] == self.in_channels - 1:
                hint = (
                    " (one short: was the model trained with pivot_similarity=True? build the "
                    "subgraphs with pivot_similarity=True too)"
                )
            elif x.dim() == 2 and x.shape[1] == self.in_channels + 1:
                hint = " (one too many: build the subgraphs with pivot_similarity=False)"
            raise ValueError(
                f"{type(self).__name__} expects x with {self.in_channels} features per node, "
                f"got {got}{hint}."
            )
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}.")
        if hop1_index.dim() != 1:
            raise ValueError(f"hop1_index must be 1-D, got shape {tuple(hop1_index.shape)}.")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, hidden_channels={self.hidden_channels}, "
            f"head_channels={self.head_channels}, dropout={self.dropout})"
        )
