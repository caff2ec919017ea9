"""Node samplers for mini-batch loaders, at the level of identities.

:class:`RIWSNodeSampler` is the node-level half of reverse-imbalance
sampling: it draws the seed nodes (pivots) of a mini-batch loader so that a
rare identity is drawn as often as a large one, in the manner of PyG's
:class:`~torch_geometric.loader.ImbalancedSampler`. Pair it with
:class:`linkage_gcn.transforms.RIWSTransform`, which balances the edges
around each pivot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import WeightedRandomSampler
from torch_geometric.data import Data, InMemoryDataset

from ._validation import (
    check_bool,
    check_generator,
    check_int,
    check_labels,
    check_nodes,
    check_real,
)

__all__ = ["RIWSNodeSampler", "identity_balanced_weights"]


def identity_balanced_weights(labels: Any, power: float = 1.0) -> Tensor:
    r"""Per-node sampling weights ``1 / n_c ** power``, ``n_c`` the size of the node's identity.

    Identity ``c`` with ``n_c`` nodes then holds a share of the total weight
    proportional to :math:`n_c^{1 - power}`: ``power = 0`` is uniform over
    nodes (instance-balanced: identities in proportion to their size),
    ``power = 0.5`` is square-root sampling, ``power = 1`` gives every
    identity the same share (identity-balanced: a singleton is drawn as often
    as an identity of 500).

    Parameters
    ----------
    labels : array-like or torch.Tensor of shape (N,) or (N, 1)
        Non-negative integer identities (floats holding whole numbers are
        accepted).
    power : float, default=1.0
        Strength of the rebalancing, in ``[0, 1]``.

    Returns
    -------
    torch.Tensor of float64, shape (N,)

    Examples
    --------
    >>> identity_balanced_weights(torch.tensor([0, 0, 0, 1, 2, 2]))
    tensor([0.3333, 0.3333, 0.3333, 1.0000, 0.5000, 0.5000], dtype=torch.float64)
    >>> identity_balanced_weights([5, 5, 5, 5, 9], power=0.5)
    tensor([0.5000, 0.5000, 0.5000, 0.5000, 1.0000], dtype=torch.float64)
    """
    y = _node_labels(labels, "labels")
    power = check_real(power, "power", minimum=0.0, maximum=1.0)
    _, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    return counts.double().pow(-power)[inverse]


class RIWSNodeSampler(WeightedRandomSampler):
    r"""Draw nodes (or graphs) with identity-balanced, reverse-imbalance weights.

    Every node ``i`` among the input nodes gets the weight
    :math:`w_i = 1 / n_{y_i}^{power}`, where :math:`n_c` is the number of
    *input* nodes of identity ``c``, and ``num_samples`` positions are drawn
    with probability :math:`w_i / \sum_j w_j`
    (:class:`~torch.utils.data.WeightedRandomSampler`, with replacement by
    default). With ``power = 1`` each identity is drawn with the same
    probability, ``1 / (number of identities)``, whatever its size, so the
    pivots of a long-tailed set are no longer dominated by its largest
    identities; ``power = 0`` is uniform over nodes; values in between
    interpolate (the share of identity ``c`` is proportional to
    :math:`n_c^{1 - power}`; 0.5 is square-root sampling).

    As in :class:`~torch_geometric.loader.ImbalancedSampler`, the sampler
    yields *positions into* ``input_nodes`` (``0 .. len(input_nodes) - 1``),
    which is what :class:`~torch_geometric.loader.NeighborLoader` expects
    from its ``sampler``; :attr:`node_index` maps positions back to node ids.

    Parameters
    ----------
    dataset : Data, InMemoryDataset, sequence of Data, or labels
        A :class:`~torch_geometric.data.Data` (node level, uses ``data.y``),
        an :class:`~torch_geometric.data.InMemoryDataset` or a list of Data
        with one label per graph (graph level), or the labels themselves
        (node level; a tensor or array of shape (N,) or (N, 1)). Labels are
        non-negative integer identities.
    input_nodes : torch.Tensor, optional
        Node level only: the nodes to draw from, as node ids or a boolean
        mask over the N nodes (e.g. ``data.train_mask``), the same as given
        to the loader. By default every node. Identity sizes are counted
        among these nodes only.
    num_samples : int, optional
        Draws per epoch; by default the number of input nodes (or graphs).
    power : float, default=1.0
        Strength of the rebalancing in ``[0, 1]`` (see above).
    replacement : bool, default=True
        Draw with replacement (needed to over-sample rare identities).
    generator : torch.Generator, optional
        Source of randomness.

    Attributes
    ----------
    weights : torch.Tensor of float64, shape (len(input_nodes),)
        The per-position weights (unnormalised).
    node_index : torch.Tensor of int64
        Node (or graph) id of every position.
    num_identities : int
        Distinct identities among the input nodes.

    Raises
    ------
    ValueError
        On data without ``y``, labels that are not non-negative integers,
        labels whose number disagrees with the nodes or graphs, bad
        ``input_nodes`` (or ``input_nodes`` given with a dataset of graphs),
        or no node to draw from.

    Notes
    -----
    PyG 2.8's :class:`~torch_geometric.loader.NeighborLoader` accepts the
    sampler directly (``sampler=`` is passed on to
    :class:`~torch.utils.data.DataLoader`), but it samples neighbourhoods
    only with ``pyg-lib`` or ``torch-sparse`` installed::

        from torch_geometric.loader import NeighborLoader

        loader = NeighborLoader(
            data,
            input_nodes=data.train_mask,
            sampler=RIWSNodeSampler(data, input_nodes=data.train_mask),
            num_neighbors=[10, 10],
            batch_size=64,
        )

    Without them, draw the seed nodes with a plain
    :class:`~torch.utils.data.DataLoader` over the positions, as in the
    example below, and build each batch's graph yourself (e.g. with
    :class:`linkage_gcn.transforms.RIWSTransform` restricted to the seeds).

    Examples
    --------
    >>> from torch.utils.data import DataLoader
    >>> y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 2])  # identity 0 is 6 times bigger
    >>> data = Data(y=y, train_mask=torch.tensor([1, 1, 1, 1, 1, 1, 1, 0], dtype=torch.bool))
    >>> sampler = RIWSNodeSampler(data, input_nodes=data.train_mask, num_samples=6000,
    ...                           generator=torch.Generator().manual_seed(0))
    >>> sampler.weights
    tensor([0.1667, 0.1667, 0.1667, 0.1667, 0.1667, 0.1667, 1.0000], dtype=torch.float64)
    >>> loader = DataLoader(range(len(sampler.node_index)), sampler=sampler, batch_size=1000)
    >>> seeds = torch.cat([sampler.node_index[pos] for pos in loader])  # node ids
    >>> torch.bincount(y[seeds]).tolist()  # both identities about 3000 times
    [3005, 2995]
    >>> sampler
    RIWSNodeSampler(7, num_identities=2, num_samples=6000, power=1.0)
    """

    def __init__(
        self,
        dataset: Union[Data, InMemoryDataset, Sequence[Data], Tensor, np.ndarray],
        input_nodes: Optional[Tensor] = None,
        num_samples: Optional[int] = None,
        *,
        power: float = 1.0,
        replacement: bool = True,
        generator: Optional[torch.Generator] = None,
    ) -> None:
        y, node_index = _labels_and_index(dataset, input_nodes)
        if y.numel() == 0:
            raise ValueError(f"{type(self).__name__} has no node or graph to draw from.")
        num_samples = y.numel() if num_samples is None else num_samples
        num_samples = check_int(num_samples, "num_samples", minimum=1)
        self.power = check_real(power, "power", minimum=0.0, maximum=1.0)
        self.node_index = node_index
        self.num_identities = int(torch.unique(y).numel())
        weights = identity_balanced_weights(y, self.power)
        replacement = check_bool(replacement, "replacement")
        generator = check_generator(generator)
        super().__init__(weights, num_samples, replacement=replacement, generator=generator)

    def __repr__(self) -> str:
        extra = "" if self.replacement else ", replacement=False"
        return (
            f"{type(self).__name__}({len(self.weights)}, num_identities={self.num_identities}, "
            f"num_samples={self.num_samples}, power={self.power}{extra})"
        )


def _node_labels(labels: Any, name: str) -> Tensor:
    """Labels as a CPU (N,) int64 tensor of non-negative identities (:func:`check_labels`)."""
    return check_labels(labels, name=name, allow_negative=False, return_tensor=True).cpu()


def _labels_and_index(dataset: Any, input_nodes: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    """Labels of the items to draw from, and the node (or graph) id of each."""
    if isinstance(dataset, Data):
        if dataset.y is None:
            raise ValueError("the Data has no `y`: RIWSNodeSampler needs identity labels.")
        y = _node_labels(dataset.y, "data.y")
        if dataset.x is not None and dataset.x.shape[0] != y.numel():
            raise ValueError(
                f"data.y has {y.numel()} labels but data.x has {dataset.x.shape[0]} nodes."
            )
    elif isinstance(dataset, (Tensor, np.ndarray)):
        y = _node_labels(dataset, "labels")
    else:
        if input_nodes is not None:
            raise ValueError(
                "input_nodes only applies to node-level sampling (a Data or labels); "
                f"got a {type(dataset).__name__} of graphs."
            )
        y = _graph_labels(dataset)
        return y, torch.arange(y.numel())
    if input_nodes is None:
        return y, torch.arange(y.numel())
    index = check_nodes(input_nodes, y.numel(), "input_nodes").cpu()
    return y[index], index


def _graph_labels(dataset: Any) -> Tensor:
    """One label per graph of an InMemoryDataset or a sequence of Data."""
    if isinstance(dataset, InMemoryDataset):
        y = dataset.y
        if y is None:
            raise ValueError("the dataset has no `y`: RIWSNodeSampler needs identity labels.")
    elif isinstance(dataset, Sequence) or hasattr(dataset, "__getitem__"):
        ys = [getattr(data, "y", None) for data in dataset]
        if any(v is None for v in ys):
            raise ValueError("every graph needs a label `y` for RIWSNodeSampler.")
        y = torch.cat([torch.as_tensor(v).reshape(-1) for v in ys]) if ys else torch.empty(0)
    else:
        raise TypeError(
            "dataset must be a Data, an InMemoryDataset, a sequence of Data or a label tensor, "
            f"got {type(dataset).__name__}."
        )
    y = _node_labels(torch.as_tensor(y).reshape(-1), "dataset.y")
    if y.numel() != len(dataset):
        raise ValueError(
            f"graph-level sampling needs one label per graph: {len(dataset)} graphs but "
            f"{y.numel()} labels."
        )
    return y
