"""Instance Pivot Subgraphs (IPS): the local context L-GCN classifies links in.

An IPS of pivot ``p`` holds ``p``, its 1-hop neighbours and the ``k2`` nearest
neighbours of each 1-hop node (2-hop), de-duplicated. Node features are
relative to the pivot (``x_v - x_p``); each node links to those of its
``active_connection`` nearest neighbours that lie inside the IPS, symmetrised,
without self-loops (mean aggregation then gives the reference ``D^-1 A``). Only
the pivot-to-1-hop pairs are labelled and predicted.

:func:`build_ips` builds the IPS of a whole batch of pivots at once, with
tensor operations only (no Python loop per pivot or per node), on any device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Optional

import numpy as np
import torch
from torch_geometric.data import Batch, Data, Dataset
from torch_geometric.transforms import BaseTransform

from ._validation import ArrayLike, as_tensor, check_features, check_int, check_labels
from .knn import check_knn_index
from .samplers import NeighborSampler, TopKSampler

__all__ = [
    "IPSDataset",
    "IPSTransform",
    "build_ips",
    "check_k_at_hop",
    "check_knn_index",
    "iter_ips_batches",
]


def check_k_at_hop(k_at_hop: Any) -> tuple[int, int]:
    """Validate ``k_at_hop = (k1, k2)``: 1-hop and 2-hop neighbour counts.

    Examples
    --------
    >>> check_k_at_hop([20, 5])
    (20, 5)
    >>> check_k_at_hop([20])
    Traceback (most recent call last):
    ...
    ValueError: k_at_hop must be a pair (k1, k2) of positive integers, got [20].
    """
    if not isinstance(k_at_hop, (Sequence, np.ndarray)) or len(k_at_hop) != 2:
        raise ValueError(
            f"k_at_hop must be a pair (k1, k2) of positive integers, got {k_at_hop!r}."
        )
    k1 = check_int(k_at_hop[0], "k_at_hop[0]", minimum=1)
    k2 = check_int(k_at_hop[1], "k_at_hop[1]", minimum=0)
    return k1, k2


def build_ips(
    x: torch.Tensor,
    knn_index: torch.Tensor,
    pivots: torch.Tensor,
    hop1: torch.Tensor,
    *,
    k2: int,
    active_connection: int,
    labels: Optional[torch.Tensor] = None,
    pivot_similarity: bool = False,
) -> Batch:
    """Build the IPS of a batch of pivots as one PyG :class:`~torch_geometric.data.Batch`.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Node features.
    knn_index : torch.LongTensor of shape (N, K)
        Neighbour ids sorted by decreasing similarity, self excluded.
    pivots : torch.LongTensor of shape (B,)
        Pivot ids.
    hop1 : torch.LongTensor of shape (B, k1)
        The 1-hop neighbours chosen for each pivot (by a
        :class:`~linkage_gcn.samplers.NeighborSampler`); repeated entries are
        allowed (over-sampling) and give repeated labelled pairs.
    k2 : int
        2-hop neighbours per 1-hop node (at most ``K`` are used).
    active_connection : int
        ``u``: each node links to its ``u`` nearest neighbours inside the IPS
        (at most ``K``).
    labels : torch.LongTensor of shape (N,), optional
        Identities; when given, ``edge_label`` says whether each 1-hop node
        shares the pivot's identity.
    pivot_similarity : bool
        Append to each node's features its cosine similarity to the pivot
        (an extension of L-GCN: the reference feeds ``x_v - x_p`` only).

    Returns
    -------
    torch_geometric.data.Batch
        ``B`` graphs with ``x`` (pivot-relative features), ``edge_index``
        (symmetric, de-duplicated, no self-loops), ``n_id`` (global ids),
        ``pivot_index`` (B,), ``hop1_index`` (B * k1,) (positions of the
        labelled 1-hop pairs, ``k1`` per graph, in the order of ``hop1``),
        ``hop1_pivot`` (B * k1,) (the position of each pair's pivot) and,
        with labels, ``edge_label`` (B * k1,). ``to_data_list()`` gives the
        graphs one by one.

    Examples
    --------
    >>> x = torch.tensor([[0.0, 1.0], [0.1, 1.0], [1.0, 0.0], [1.0, 0.1]])
    >>> knn_index = torch.tensor([[1, 2], [0, 3], [3, 1], [2, 1]])
    >>> pivots = torch.tensor([0, 2])
    >>> batch = build_ips(x, knn_index, pivots, knn_index[pivots, :1], k2=2, active_connection=1)
    >>> batch.num_graphs, tuple(batch.x.shape)
    (2, (6, 2))
    >>> batch.n_id.tolist(), batch.pivot_index.tolist(), batch.hop1_index.tolist()
    ([0, 1, 3, 1, 2, 3], [0, 4], [1, 5])
    >>> batch.edge_index.tolist()
    [[0, 1, 4, 5], [1, 0, 5, 4]]
    """
    n, num_b = x.shape[0], pivots.shape[0]
    k1 = hop1.shape[1]
    if bool((hop1 == pivots.unsqueeze(1)).any()):
        raise ValueError("a pivot is among its own 1-hop neighbours; exclude self from kNN rows.")
    hop2 = knn_index[hop1, : min(k2, knn_index.shape[1])].reshape(num_b, -1)
    cand = torch.cat([pivots.unsqueeze(1), hop1, hop2], dim=1)  # (B, M)
    graph = torch.arange(num_b, device=x.device).unsqueeze(1)
    keys, inverse = torch.unique(graph * n + cand, sorted=True, return_inverse=True)
    n_id, batch = keys % n, keys // n
    edge_index = _ips_edges(keys, n_id, batch, knn_index, n, active_connection)
    pivot_index = inverse[:, 0]
    hop1_index = inverse[:, 1 : 1 + k1].reshape(-1)
    hop1_pivot = pivot_index.repeat_interleave(k1)
    feats = x[n_id] - x[pivots][batch]
    if pivot_similarity:
        feats = torch.cat([feats, _cosine(x[n_id], x[pivots][batch]).unsqueeze(1)], dim=1)
    out = Batch(
        x=feats,
        edge_index=edge_index,
        n_id=n_id,
        batch=batch,
        ptr=_ptr(batch, num_b),
        pivot_index=pivot_index,
        hop1_index=hop1_index,
        hop1_pivot=hop1_pivot,
    )
    if labels is not None:
        out.edge_label = labels[n_id[hop1_index]] == labels[n_id[hop1_pivot]]
    _set_slices(out, num_b, k1)
    return out


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def _ips_edges(keys, n_id, batch, knn_index, n, active_connection):
    """Symmetric u-NN edges between the nodes of each IPS (positions into ``keys``)."""
    num_nodes = keys.shape[0]
    u = min(active_connection, knn_index.shape[1])
    target = batch.unsqueeze(1) * n + knn_index[n_id, :u]  # (V, u) keys of u-NN
    pos = torch.searchsorted(keys, target).clamp_max(num_nodes - 1)
    inside = keys[pos] == target
    src = torch.arange(num_nodes, device=keys.device).unsqueeze(1).expand_as(pos)[inside]
    dst = pos[inside]
    keep = src != dst
    src, dst = src[keep], dst[keep]
    pair = torch.unique(torch.cat([src * num_nodes + dst, dst * num_nodes + src]))
    return torch.stack([pair // num_nodes, pair % num_nodes])


def _ptr(batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
    counts = torch.bincount(batch, minlength=num_graphs)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def _set_slices(out: Batch, num_graphs: int, k1: int) -> None:
    """Record PyG's collation bookkeeping so ``to_data_list`` and indexing work."""
    ptr = out.ptr
    dev = ptr.device
    edge_ptr = _ptr(out.batch[out.edge_index[0]], num_graphs)
    per_graph = torch.arange(num_graphs + 1, device=dev)
    zeros = torch.zeros(num_graphs, dtype=torch.long, device=dev)
    slices = {
        "x": ptr,
        "n_id": ptr,
        "edge_index": edge_ptr,
        "pivot_index": per_graph,
        "hop1_index": per_graph * k1,
        "hop1_pivot": per_graph * k1,
    }
    incs = {
        "x": zeros,
        "n_id": zeros,
        "edge_index": ptr[:-1],
        "pivot_index": ptr[:-1],
        "hop1_index": ptr[:-1],
        "hop1_pivot": ptr[:-1],
    }
    if "edge_label" in out:
        slices["edge_label"] = per_graph * k1
        incs["edge_label"] = zeros
    out._slice_dict = {k: v.cpu() for k, v in slices.items()}
    out._inc_dict = {k: v.cpu() for k, v in incs.items()}
    out._num_graphs = num_graphs


def iter_ips_batches(
    x: torch.Tensor,
    knn_index: torch.Tensor,
    hop1: torch.Tensor,
    *,
    k2: int,
    active_connection: int,
    batch_size: int,
    labels: Optional[torch.Tensor] = None,
    pivots: Optional[torch.Tensor] = None,
) -> Iterator[Batch]:
    """Yield :func:`build_ips` batches over ``pivots`` (default: every node, in order).

    ``hop1`` holds one row per node (``hop1[p]`` is used for pivot ``p``).
    Memory is bounded by ``batch_size`` pivots at a time.
    """
    if pivots is None:
        pivots = torch.arange(x.shape[0], device=x.device)
    for start in range(0, pivots.shape[0], batch_size):
        p = pivots[start : start + batch_size]
        yield build_ips(
            x, knn_index, p, hop1[p], k2=k2, active_connection=active_connection, labels=labels
        )


class IPSDataset(Dataset):
    """A PyG dataset with one Instance Pivot Subgraph per pivot.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (N, D)
        Node features.
    knn_index : array-like or torch.Tensor of shape (N, K)
        Neighbour ids sorted by decreasing similarity, self excluded (see
        :func:`linkage_gcn.knn.knn`).
    labels : array-like of shape (N,), optional
        Identities; gives each graph an ``edge_label``.
    k_at_hop : (int, int)
        ``(k1, k2)``: 1-hop neighbours per pivot, 2-hop neighbours per 1-hop node.
    active_connection : int
        ``u``, the nearest neighbours each node links to inside its IPS.
    sampler : NeighborSampler, optional
        Selects the 1-hop sets; by default the top ``k1`` (L-GCN). For a
        stochastic sampler call :meth:`resample` before each epoch.
    pivots : array-like of int, optional
        The pivots, by default every node.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> from linkage_gcn.knn import knn
    >>> X, y = make_identities(30, random_state=0)
    >>> index, _ = knn(X, 10)
    >>> ds = IPSDataset(X, index, y, k_at_hop=(5, 3), active_connection=3)
    >>> len(ds) == len(X), ds[0].hop1_index.shape
    (True, torch.Size([5]))
    """

    def __init__(
        self,
        x: ArrayLike,
        knn_index: ArrayLike,
        labels: Optional[ArrayLike] = None,
        *,
        k_at_hop: Sequence[int] = (20, 5),
        active_connection: int = 5,
        sampler: Optional[NeighborSampler] = None,
        pivots: Optional[ArrayLike] = None,
    ) -> None:
        super().__init__(None)
        self.x_, _ = check_features(x, name="x")
        index, _ = as_tensor(knn_index, name="knn_index", dtype=torch.long)
        self.knn_index_ = check_knn_index(index, self.x_.shape[0])
        self.labels_ = None
        if labels is not None:
            self.labels_ = torch.from_numpy(check_labels(labels, n_samples=self.x_.shape[0]))
        self.k1, self.k2 = check_k_at_hop(k_at_hop)
        self.active_connection = check_int(active_connection, "active_connection", minimum=1)
        self.sampler = sampler if sampler is not None else TopKSampler(self.k1)
        n = self.x_.shape[0]
        self.pivots_ = torch.arange(n) if pivots is None else as_tensor(pivots, name="pivots")[0]
        self.hop1_ = None
        self.resample()

    def resample(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw the 1-hop sets anew (once per epoch for a stochastic sampler)."""
        self.hop1_ = self.sampler.sample(self.knn_index_, self.labels_, generator=generator)

    def len(self) -> int:
        """Number of pivots."""
        return int(self.pivots_.shape[0])

    def get(self, idx: int) -> Data:
        """The IPS of the ``idx``-th pivot, as a :class:`~torch_geometric.data.Data`."""
        return self.batch([idx]).get_example(0)

    def batch(self, positions: ArrayLike) -> Batch:
        """The IPS of several pivots (positions into this dataset), built at once."""
        pos, _ = as_tensor(positions, name="positions", dtype=torch.long)
        p = self.pivots_[pos.reshape(-1)]
        return build_ips(
            self.x_,
            self.knn_index_,
            p,
            self.hop1_[p],
            k2=self.k2,
            active_connection=self.active_connection,
            labels=self.labels_,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)}, k_at_hop=({self.k1}, {self.k2}), "
            f"active_connection={self.active_connection}, sampler={self.sampler!r})"
        )


class IPSTransform(BaseTransform):
    """Turn a kNN graph :class:`~torch_geometric.data.Data` into the IPS of its pivots.

    The input (one whole kNN graph: do not collate several with PyG's
    ``DataLoader``, which concatenates ``*index`` attributes along their last
    dimension) needs ``x`` and a kNN table ``knn_index`` (N, K) (sorted by
    decreasing similarity, self excluded); ``y`` becomes ``edge_label`` when
    present; ``pivot`` (optional) selects the pivots, by default every node.
    The output is the :class:`~torch_geometric.data.Batch` of :func:`build_ips`.

    Examples
    --------
    >>> from torch_geometric.data import Data
    >>> x = torch.randn(8, 4)
    >>> from linkage_gcn.knn import knn
    >>> data = Data(x=x, knn_index=knn(x, 3)[0])
    >>> out = IPSTransform(k_at_hop=(2, 2), active_connection=2)(data)
    >>> out.num_graphs
    8
    """

    def __init__(
        self,
        k_at_hop: Sequence[int] = (20, 5),
        active_connection: int = 5,
        sampler: Optional[NeighborSampler] = None,
    ) -> None:
        self.k_at_hop = check_k_at_hop(k_at_hop)
        self.active_connection = check_int(active_connection, "active_connection", minimum=1)
        self.sampler = sampler if sampler is not None else TopKSampler(self.k_at_hop[0])

    def forward(self, data: Data) -> Batch:
        """Build the IPS batch of ``data``."""
        if "knn_index" not in data or data.x is None:
            raise ValueError("IPSTransform needs a Data with `x` and a (N, K) `knn_index`.")
        x, _ = check_features(data.x, name="data.x")
        index = check_knn_index(data.knn_index.long(), x.shape[0])
        y = data.y.reshape(-1).long() if data.y is not None else None
        hop1 = self.sampler.sample(index, y)
        pivots = data.pivot.long() if "pivot" in data else torch.arange(x.shape[0])
        return build_ips(
            x,
            index,
            pivots.to(x.device),
            hop1[pivots],
            k2=self.k_at_hop[1],
            active_connection=self.active_connection,
            labels=y,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(k_at_hop={self.k_at_hop}, "
            f"active_connection={self.active_connection}, sampler={self.sampler!r})"
        )
