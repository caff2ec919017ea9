"""PyG transforms that bring RIWS to any GCN clustering model, without the IPS.

:class:`RIWSTransform` rewires the edges of a kNN graph
:class:`~torch_geometric.data.Data`: every pivot gets ``k`` edges to 1-hop
neighbours drawn by Reverse-Imbalance Weighted Sampling (Yang et al., eq. 4;
:class:`~linkage_gcn.samplers.RIWSSampler`) from its ``floor(gamma * k)``
nearest neighbours, labelled by whether both ends share an identity, with a
new draw at every call. A full-graph model (GCN-V/E style, GraphSAGE, ...)
trained on these edges gets RIWS's balanced, diverse neighbourhoods without
building Instance Pivot Subgraphs. :class:`AddKNNIndex` stores the kNN table
that RIWS reads (e.g. as a dataset's ``pre_transform``).
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.transforms import BaseTransform

from ._validation import (
    check_features,
    check_generator,
    check_in_options,
    check_int,
    check_labels,
    check_nodes,
)
from .knn import METRICS, check_knn_index, knn
from .samplers import Hop1Sampler, resolve_sampler

__all__ = ["FLOWS", "AddKNNIndex", "RIWSTransform"]

#: Edge directions, as in :func:`torch_geometric.nn.pool.knn_graph`.
FLOWS = ("source_to_target", "target_to_source")

#: Attributes of the old edges dropped when ``edge_index`` is rewired.
_OLD_EDGE_KEYS = ("edge_attr", "edge_weight")


def _check_key(key: Any, name: str) -> str:
    """An attribute name of a Data: a non-empty string."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"{name} must be the name of a Data attribute (a string), got {key!r}.")
    return key


def _check_data(data: Any, who: str) -> Data:
    if not isinstance(data, Data):
        raise TypeError(
            f"{who} expects a torch_geometric.data.Data (homogeneous graph), "
            f"got {type(data).__name__}."
        )
    return data


def _add_knn(data: Data, k: int, key: str, metric: str, *, cap: bool = False) -> Tensor:
    """Compute the kNN table of ``data.x`` and store it under ``key``."""
    if data.x is None:
        raise ValueError(
            f"data has no `{key}` kNN table and no node features `x` to compute it from."
        )
    x, _ = check_features(data.x, name="data.x", min_samples=2)
    if cap:  # tiny graphs: as wide as they allow; a sampler needing more says so
        k = min(k, x.shape[0] - 1)
    index, _ = knn(x, k, metric=metric)
    data[key] = index
    return index


class AddKNNIndex(BaseTransform):
    """Store the cosine (or L2) kNN table of ``data.x`` as ``data[key]``, shape (N, k).

    Rows are sorted by decreasing similarity, self excluded
    (:func:`linkage_gcn.knn.knn`). Use it as a dataset's ``pre_transform``
    so that :class:`RIWSTransform` finds the table instead of recomputing it
    on every access (a dataset hands its transform a fresh copy each time).
    A table already present is left as it is.

    Parameters
    ----------
    k : int
        Neighbours per node, at least the pool width of the sampler that
        reads the table (``floor(gamma * k)`` for RIWS), ``< N``.
    key : str, default="knn_index"
        Attribute receiving the table.
    metric : {"cosine", "l2"}, default="cosine"
        Similarity of :func:`linkage_gcn.knn.knn`.

    Examples
    --------
    >>> data = Data(x=torch.eye(4) + 0.1)
    >>> AddKNNIndex(2)(data).knn_index.shape
    torch.Size([4, 2])
    >>> AddKNNIndex(20)
    AddKNNIndex(k=20, key='knn_index', metric='cosine')
    """

    def __init__(self, k: int, *, key: str = "knn_index", metric: str = "cosine") -> None:
        self.k = check_int(k, "k", minimum=1)
        self.key = _check_key(key, "key")
        self.metric = check_in_options(metric, METRICS, "metric")

    def forward(self, data: Data) -> Data:
        """Add the kNN table to (a shallow copy of) ``data``."""
        data = _check_data(data, type(self).__name__)
        if self.key not in data:
            _add_knn(data, self.k, self.key, self.metric)
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(k={self.k}, key={self.key!r}, metric={self.metric!r})"


class RIWSTransform(BaseTransform):
    r"""Rewire a kNN graph's edges by RIWS (or any neighbour sampler), drawn anew at every call.

    The input :class:`~torch_geometric.data.Data` needs identity labels ``y``
    (N,) and a kNN table ``data[knn_key]`` (N, K), self excluded, by
    decreasing similarity. When the table is absent it is computed from
    ``x`` (:func:`linkage_gcn.knn.knn`, ``K`` = the sampler's pool width) and
    **cached on the given Data**, so calling the transform on the same
    object every epoch searches once. (A PyG dataset hands its transform a
    fresh copy at every access: give such a dataset the table, e.g. with
    ``pre_transform=AddKNNIndex(...)``.)

    The output is a shallow copy of the input with:

    - ``edge_index`` (2, P * k), ``torch.long``: for every pivot ``p`` (each
      of the P selected nodes, in order) and each of its ``k`` drawn 1-hop
      neighbours ``v`` (in order of decreasing similarity), one edge. With
      the default ``flow="source_to_target"`` the edge is ``v -> p``:
      ``edge_index[0]`` holds the neighbours, ``edge_index[1]`` the pivots,
      so that a :class:`~torch_geometric.nn.conv.MessagePassing` layer (whose
      messages go from ``edge_index[0]`` to ``edge_index[1]``) aggregates
      each pivot's drawn neighbourhood into the pivot, as in
      :func:`torch_geometric.nn.pool.knn_graph`. ``"target_to_source"``
      gives ``p -> v``.
    - ``edge_label`` (P * k,), ``torch.float``: 1.0 where ``y[v] == y[p]``
      (same identity), else 0.0, ready for
      :func:`torch.nn.functional.binary_cross_entropy_with_logits`
      (``.long()`` gives class ids for a cross-entropy). Set only when ``y``
      is present (a label-free sampler such as top-k works without it).

    The old ``edge_index`` is replaced (kept under ``keep_edges`` when
    given) and its ``edge_attr`` / ``edge_weight`` are removed. With
    ``edge_key="edge_label_index"`` the drawn edges become supervision edges
    instead, the PyG link-prediction convention, and ``edge_index`` (the
    message-passing graph) is left untouched.

    A whole kNN graph is meant to be one ``Data``: PyG's ``DataLoader``
    concatenates attributes whose name contains ``index`` along their last
    dimension, which does not suit an (N, K) ``knn_index``; do not collate
    several such graphs into one mini-batch.

    Parameters
    ----------
    k : int, default=10
        Edges (1-hop neighbours) per pivot.
    gamma : float, default=2.0
        RIWS pool expansion: neighbours are drawn from the
        ``floor(gamma * k)`` nearest; ``gamma = 1`` gives exactly the top-k
        (L-GCN) edges.
    sampler : str or Hop1Sampler, optional
        Who draws the neighbours: ``None`` is
        ``RIWSSampler(k, gamma)``; a name (``"riws"``, ``"rs"``, ``"topk"``)
        is built with ``k`` and ``gamma``; a
        :class:`~linkage_gcn.samplers.Hop1Sampler` object is used as it
        is, with its own ``k`` (``k`` and ``gamma`` are then ignored).
    knn_key : str, default="knn_index"
        Attribute holding the (N, K) kNN table, of an integer dtype (a
        floating table is refused, even of whole numbers), checked by
        :func:`linkage_gcn.knn.check_knn_index`.
    input_nodes : str or torch.Tensor, optional
        The pivots: a boolean node mask or node ids, given directly or as
        the name of an attribute of the data (e.g. ``"train_mask"``). By
        default every node. Neighbours are read from the kNN table whatever
        this says: build the table on the training nodes (e.g. on
        ``data.subgraph(train_mask)``) when other nodes must not be reached.
    edge_key : str, default="edge_index"
        Attribute receiving the drawn edges.
    keep_edges : str, optional
        Attribute under which the old ``data[edge_key]`` is kept.
    flow : {"source_to_target", "target_to_source"}
        Edge direction, see above.
    metric : {"cosine", "l2"}, default="cosine"
        Similarity used when the kNN table has to be computed.
    generator : torch.Generator, optional
        Source of randomness of every call, unless one is passed to the call
        itself. A generator makes a sequence of calls reproducible; each call
        still makes a new draw.

    Raises
    ------
    ValueError
        On a missing ``y`` (for a label-aware sampler), a missing kNN table
        without ``x``, a kNN table that is not integer ids in ``[0, N)`` with
        one row per node (:func:`linkage_gcn.knn.check_knn_index`) or is
        narrower than the sampler's pool, bad pivots, or labels of the wrong
        shape.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> X, y = make_identities(30, dim=16, max_size=20, random_state=0)
    >>> data = Data(x=torch.from_numpy(X), y=torch.from_numpy(y))
    >>> transform = RIWSTransform(k=5, gamma=2.0, generator=torch.Generator().manual_seed(0))
    >>> out = transform(data)  # computes data.knn_index (N, 10) once, caches it on data
    >>> data.knn_index.shape[1], out.edge_index.shape[1] == 5 * data.num_nodes
    (10, True)
    >>> bool((out.edge_index[1] == torch.arange(data.num_nodes).repeat_interleave(5)).all())
    True
    >>> bool((out.edge_label == (data.y[out.edge_index[0]] == data.y[out.edge_index[1]])).all())
    True
    >>> bool((transform(data).edge_index != out.edge_index).any())  # a new draw per call
    True
    >>> transform
    RIWSTransform(sampler=RIWSSampler(k=5, gamma=2.0), knn_key='knn_index', flow='source_to_target')
    """

    def __init__(
        self,
        k: int = 10,
        gamma: float = 2.0,
        *,
        sampler: Union[str, Hop1Sampler, None] = None,
        knn_key: str = "knn_index",
        input_nodes: Union[str, Tensor, None] = None,
        edge_key: str = "edge_index",
        keep_edges: Optional[str] = None,
        flow: str = "source_to_target",
        metric: str = "cosine",
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if isinstance(sampler, Hop1Sampler):
            self.sampler = sampler  # its own k and gamma apply
        else:
            self.sampler = resolve_sampler("riws" if sampler is None else sampler, k, gamma=gamma)
        self.sampler.pool_size()  # validates k and gamma now
        self.knn_key = _check_key(knn_key, "knn_key")
        if input_nodes is not None and not isinstance(input_nodes, (str, Tensor)):
            raise TypeError(
                "input_nodes must be an attribute name, a tensor of node ids or a boolean mask, "
                f"got {type(input_nodes).__name__}."
            )
        self.input_nodes = input_nodes
        self.edge_key = _check_key(edge_key, "edge_key")
        self.keep_edges = None if keep_edges is None else _check_key(keep_edges, "keep_edges")
        self.flow = check_in_options(flow, FLOWS, "flow")
        self.metric = check_in_options(metric, METRICS, "metric")
        self.generator = check_generator(generator)

    def __call__(self, data: Data, generator: Optional[torch.Generator] = None) -> Data:
        """Draw new edges for ``data`` (caching its kNN table on it first, when absent)."""
        data = _check_data(data, type(self).__name__)
        if self.knn_key not in data:
            _add_knn(data, self.sampler.pool_size(), self.knn_key, self.metric, cap=True)
        return self.forward(copy.copy(data), generator=generator)

    def forward(self, data: Data, generator: Optional[torch.Generator] = None) -> Data:
        """Rewire ``data`` in place (``__call__`` passes a shallow copy)."""
        data = _check_data(data, type(self).__name__)
        if self.knn_key not in data:
            _add_knn(data, self.sampler.pool_size(), self.knn_key, self.metric, cap=True)
        n_x = None if data.x is None else int(data.x.shape[0])
        table = check_knn_index(
            data[self.knn_key], n_x, name=f"data.{self.knn_key}", rows_of="data.x"
        )
        n = table.shape[0]
        y = _labels(data, n, table.device)
        if y is None and self.sampler.needs_labels:
            raise ValueError(
                f"{type(self).__name__} with {self.sampler!r} needs identity labels: "
                "the data has no `y`."
            )
        if generator is None:
            generator = self.generator
        check_generator(generator)
        hop1 = self.sampler.sample(table, y, generator=generator, name=f"data.{self.knn_key}")
        pivots = _pivots(self.input_nodes, data, n, table.device)
        hop1 = hop1[pivots]
        neighbour = hop1.reshape(-1)
        pivot = pivots.repeat_interleave(hop1.shape[1])
        if self.flow == "source_to_target":
            edge_index = torch.stack([neighbour, pivot])
        else:
            edge_index = torch.stack([pivot, neighbour])

        if self.keep_edges is not None and self.edge_key in data:
            data[self.keep_edges] = data[self.edge_key]
        if self.edge_key == "edge_index":
            for key in _OLD_EDGE_KEYS:
                if key in data:
                    del data[key]
        data[self.edge_key] = edge_index
        if y is not None:
            data.edge_label = (y[neighbour] == y[pivot]).float()
        return data

    def __repr__(self) -> str:
        extra = ""
        if self.input_nodes is not None:
            nodes = self.input_nodes
            desc = repr(nodes) if isinstance(nodes, str) else f"<{tuple(nodes.shape)} tensor>"
            extra += f", input_nodes={desc}"
        if self.edge_key != "edge_index":
            extra += f", edge_key={self.edge_key!r}"
        if self.keep_edges is not None:
            extra += f", keep_edges={self.keep_edges!r}"
        return (
            f"{type(self).__name__}(sampler={self.sampler!r}, knn_key={self.knn_key!r}, "
            f"flow={self.flow!r}{extra})"
        )


def _labels(data: Data, n: int, device: torch.device) -> Optional[Tensor]:
    """``data.y`` as (N,) int64 on ``device`` (:func:`check_labels`), or ``None`` when absent."""
    y = data.y if "y" in data else None
    if y is None:
        return None
    return check_labels(y, n_samples=n, name="data.y", return_tensor=True).to(device)


def _pivots(spec: Union[str, Tensor, None], data: Data, n: int, device: torch.device) -> Tensor:
    """Node ids of the pivots from ``None`` (all), a mask, ids, or an attribute name."""
    if spec is None:
        return torch.arange(n, device=device)
    name = "input_nodes"
    if isinstance(spec, str):
        if spec not in data:
            raise ValueError(f"input_nodes={spec!r} names no attribute of the data.")
        name, spec = f"data.{spec}", data[spec]
    return check_nodes(spec, n, name).to(device)
