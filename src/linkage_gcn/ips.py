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

import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, Optional

import numpy as np
import torch
from torch_geometric.data import Batch, Data, Dataset
from torch_geometric.transforms import BaseTransform

from ._params import PARAMS, check_param, skip_validation, validate_params, validation_skipped
from ._validation import (
    ArrayLike,
    as_index,
    as_tensor,
    check_features,
    check_ids,
    check_labels,
    check_nodes,
)
from .knn import check_knn_index
from .samplers import Hop1Sampler, resolve_sampler
from .structure import StructureContext

__all__ = [
    "IPSDataset",
    "IPSGraph",
    "IPSTransform",
    "build_ips",
    "build_ips_graph",
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
    k1 = PARAMS["k1"](k_at_hop[0], "k_at_hop[0]")
    k2 = PARAMS["k2"](k_at_hop[1], "k_at_hop[1]")
    return k1, k2


@validate_params()
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
        Node features (floating point).
    knn_index : torch.LongTensor of shape (N, K)
        Neighbour ids sorted by decreasing similarity, self excluded.
    pivots : torch.LongTensor of shape (B,)
        Pivot ids, ``B >= 1``.
    hop1 : torch.LongTensor of shape (B, k1)
        The 1-hop neighbours chosen for each pivot (by a
        :class:`~linkage_gcn.samplers.Hop1Sampler`); repeated entries are
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
        (an extension of L-GCN, on in :class:`~linkage_gcn.LinkageClusterer`
        by default: the reference feeds ``x_v - x_p`` only). A model trained
        with it expects ``D + 1`` input features.

    Returns
    -------
    torch_geometric.data.Batch
        ``B`` graphs with ``x`` (pivot-relative features), ``edge_index``
        (symmetric, de-duplicated, no self-loops), ``n_id`` (global ids),
        ``pivot_index`` (B,), ``hop1_index`` (B * k1,) (positions of the
        labelled 1-hop pairs, ``k1`` per graph, in the order of ``hop1``),
        ``hop1_pivot_index`` (B * k1,) (the position of each pair's pivot)
        and, with labels, ``edge_label`` (B * k1,). The ``*_index``
        attributes are node positions, offset per graph as PyG's collation
        does, so ``to_data_list()`` gives the graphs one by one and
        collating them again gives this batch back.

    Raises
    ------
    ValueError
        On tensors of the wrong shape, dtype or device, pivots or 1-hop ids
        outside ``[0, N)``, a pivot among its own 1-hop neighbours, kNN rows
        (of the nodes read) holding ids outside ``[0, N)``, or bad ``k2`` /
        ``active_connection``. All checked before the subgraphs are built,
        at a cost proportional to the batch (``x`` itself is not scanned for
        NaN here: :class:`IPSDataset` and :func:`iter_ips_batches` check it
        once for all their batches). Inside
        :func:`~linkage_gcn._params.skip_validation` nothing is checked: the
        loops that validated their tables once build their batches so.

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
    if not validation_skipped():  # callers that checked their data once skip this
        x, knn_index, pivots, hop1, labels = _check_batch_inputs(
            x, knn_index, pivots, hop1, labels
        )
        _check_ids_read(knn_index, pivots, hop1, k2, active_connection)
    n, num_b = x.shape[0], pivots.shape[0]
    k1 = hop1.shape[1]
    keys, n_id, batch, pivot_index, hop1_index = _ips_nodes(knn_index, pivots, hop1, k2, n)
    pair = _ips_pairs(keys, n_id, batch, knn_index, n, active_connection)
    num_nodes = keys.shape[0]
    edge_index = torch.stack([pair // num_nodes, pair % num_nodes])
    hop1_pivot_index = pivot_index.repeat_interleave(k1)
    # index_select: advanced indexing of rows is several times slower on the CPU
    x_v, x_p = x.index_select(0, n_id), x.index_select(0, pivots.index_select(0, batch))
    feats = x_v - x_p
    if pivot_similarity:
        feats = torch.cat([feats, _cosine(x_v, x_p).unsqueeze(1)], dim=1)
    out = Batch(
        x=feats,
        edge_index=edge_index,
        n_id=n_id,
        batch=batch,
        ptr=_ptr(batch, num_b),
        pivot_index=pivot_index,
        hop1_index=hop1_index,
        hop1_pivot_index=hop1_pivot_index,
    )
    if labels is not None:
        out.edge_label = labels[n_id[hop1_index]] == labels[n_id[hop1_pivot_index]]
    _set_slices(out, num_b, k1)
    return out


def _as_ids(value: Any, name: str, device: torch.device) -> torch.Tensor:
    """An integer tensor of ids (whole floats refused too: ids are never truncated)."""
    t = as_index(value, name=name)
    if t.device != device:
        raise ValueError(f"{name} is on {t.device} but x is on {device}; move both to one device.")
    return t


def _check_x(x: Any, name: str = "x") -> torch.Tensor:
    """A 2-D floating tensor, shape and dtype only (no pass over the values)."""
    t, _ = as_tensor(x, name=name)
    if t.dim() != 2 or t.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D (N, D) feature matrix, got shape {tuple(t.shape)}.")
    return t if t.is_floating_point() else t.float()


def _check_batch_inputs(
    x: Any, knn_index: Any, pivots: Any, hop1: Any, labels: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Shapes, dtypes and devices of :func:`build_ips`'s tensors (no pass over values)."""
    x = _check_x(x)
    n, dev = x.shape[0], x.device
    knn_index = _as_ids(knn_index, "knn_index", dev)
    if knn_index.dim() != 2 or knn_index.shape[0] != n or knn_index.shape[1] == 0:
        raise ValueError(
            f"knn_index must be a (N, K) table with one row per row of x (N = {n}) and K >= 1, "
            f"got shape {tuple(knn_index.shape)}."
        )
    pivots = _as_ids(pivots, "pivots", dev)
    if pivots.dim() != 1 or pivots.shape[0] == 0:
        raise ValueError(f"pivots must be a non-empty 1-D tensor, got shape {tuple(pivots.shape)}.")
    hop1 = _as_ids(hop1, "hop1", dev)
    if hop1.dim() != 2 or hop1.shape[0] != pivots.shape[0] or hop1.shape[1] == 0:
        raise ValueError(
            f"hop1 must be a (B, k1) table with one row per pivot (B = {pivots.shape[0]}) and "
            f"k1 >= 1, got shape {tuple(hop1.shape)}."
        )
    if labels is not None:
        labels = check_labels(labels, n_samples=n, return_tensor=True).to(dev)
    return x, knn_index, pivots, hop1, labels


def _outside(t: torch.Tensor, n: int) -> torch.Tensor:
    return ((t < 0) | (t >= n)).any()


def _check_ids_read(
    knn_index: torch.Tensor, pivots: torch.Tensor, hop1: torch.Tensor, k2: int, u: int
) -> None:
    """Check every id :func:`build_ips` will read, with one host synchronisation.

    Pivots and 1-hop ids in ``[0, N)``, no pivot among its own 1-hop
    neighbours, and the kNN rows read (``max(k2, u)`` columns of pivots and
    1-hop nodes, ``u`` columns of 2-hop nodes) holding ids in ``[0, N)``:
    an id ``>= N`` there would silently join the next graph of the batch.
    """
    n, k = knn_index.shape
    w2, wu = min(k2, k), min(u, k)

    def safe(t: torch.Tensor) -> torch.Tensor:  # gathers for the check itself cannot fail
        return t.clamp(0, n - 1)

    near = knn_index[safe(torch.cat([pivots, hop1.reshape(-1)])), : max(w2, wu)]
    hop2 = knn_index[safe(hop1), :w2].reshape(-1)
    far = knn_index[safe(hop2), :wu]
    flags = torch.stack(
        [
            _outside(pivots, n),
            _outside(hop1, n),
            (hop1 == pivots.unsqueeze(1)).any(),
            _outside(near, n) | _outside(far, n),
        ]
    ).tolist()
    if flags[0]:
        _raise_outside(pivots, n, "pivots")
    if flags[1]:
        _raise_outside(hop1, n, "hop1")
    if flags[2]:
        row = int((hop1 == pivots.unsqueeze(1)).any(1).nonzero()[0, 0])
        raise ValueError(
            f"pivot {int(pivots[row])} (row {row} of hop1) is among its own 1-hop neighbours; "
            "exclude self from kNN rows."
        )
    if flags[3]:
        bad = torch.cat([near.reshape(-1), far.reshape(-1)])
        bad = bad[(bad < 0) | (bad >= n)]
        raise ValueError(
            f"knn_index holds neighbour ids outside [0, {n}) in the rows of this batch's "
            f"nodes, e.g. {int(bad[0])}; check it with linkage_gcn.knn.check_knn_index."
        )


def _raise_outside(t: torch.Tensor, n: int, name: str) -> None:
    """Raise the message of :func:`~linkage_gcn._validation.check_ids` for ids known bad."""
    check_ids(t, n, name=name, bound="N = ")
    raise AssertionError("unreachable: the ids were found outside [0, n)")  # pragma: no cover


def _ips_nodes(
    knn_index: torch.Tensor, pivots: torch.Tensor, hop1: torch.Tensor, k2: int, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The de-duplicated nodes of a batch of IPS: sorted keys, ids, graphs, pivot and 1-hop rows."""
    num_b, k1 = hop1.shape
    hop2 = knn_index[hop1, : min(k2, knn_index.shape[1])].reshape(num_b, -1)
    cand = torch.cat([pivots.unsqueeze(1), hop1, hop2], dim=1)  # (B, M)
    graph = torch.arange(num_b, device=knn_index.device).unsqueeze(1)
    keys, inverse = torch.unique(graph * n + cand, sorted=True, return_inverse=True)
    n_id, batch = keys % n, keys // n
    return keys, n_id, batch, inverse[:, 0], inverse[:, 1 : 1 + k1].reshape(-1)


class IPSGraph(NamedTuple):
    """A batch of IPS as bare tensors: node ids and a CSR adjacency, no features.

    The input of the fast paths (:meth:`linkage_gcn.nn.LinkageGCN.link_scorer`,
    the training step): it skips the ``(V, D)`` pivot-relative feature
    matrix and PyG's collation bookkeeping, and needs fewer host
    synchronisations than :func:`build_ips` (none outside the three
    dynamic-size steps: the node de-duplication, the edges inside each IPS
    and their de-duplication). Build it with :func:`build_ips_graph`.

    Attributes
    ----------
    n_id : torch.LongTensor of shape (V,)
        Global id of each node, graph after graph (the order of :func:`build_ips`).
    batch : torch.LongTensor of shape (V,)
        Graph (position of its pivot in ``pivots``) of each node.
    rowptr, col : torch.LongTensor of shapes (V + 1,) and (E,)
        Symmetric adjacency in CSR form: the neighbours of node ``i`` are
        ``col[rowptr[i]:rowptr[i + 1]]`` (sorted); the same edges as
        :func:`build_ips`'s ``edge_index``.
    pivot_index : torch.LongTensor of shape (B,)
        Position of each pivot.
    hop1_index : torch.LongTensor of shape (B * k1,)
        Positions of the labelled 1-hop nodes, ``k1`` per graph.
    """

    n_id: torch.Tensor
    batch: torch.Tensor
    rowptr: torch.Tensor
    col: torch.Tensor
    pivot_index: torch.Tensor
    hop1_index: torch.Tensor

    @property
    def num_nodes(self) -> int:
        """``V``, the number of nodes."""
        return int(self.n_id.shape[0])

    def edge_index(self) -> torch.Tensor:
        """The ``(2, E)`` edge list (row-major, as :func:`build_ips` gives it)."""
        deg = self.rowptr[1:] - self.rowptr[:-1]
        row = torch.repeat_interleave(
            torch.arange(self.num_nodes, device=self.col.device), deg, output_size=self.col.numel()
        )
        return torch.stack([row, self.col])

    def adj_t(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The adjacency as a sparse CSR tensor of ones, for PyG layers (``SAGEConv(x, adj_t)``).

        The edges are symmetric, so it is its own transpose.
        """
        ones = torch.ones(self.col.numel(), dtype=dtype, device=self.col.device)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                self.rowptr, self.col, ones, (self.num_nodes, self.num_nodes),
                check_invariants=False,
            )  # fmt: skip

    def features(
        self,
        x: torch.Tensor,
        pivots: torch.Tensor,
        pivot_similarity: bool = False,
        structure: Optional[StructureContext] = None,
    ) -> torch.Tensor:
        """The node features a link model reads, pair by pair (pivot, node).

        The pivot-relative features ``x_v - x_p`` (and ``cos(x_v, x_p)``) of
        :func:`build_ips`; with ``structure``, the embedder-independent
        features of :meth:`StructureContext.pair_features
        <linkage_gcn.structure.StructureContext.pair_features>` instead.
        ``pivots`` are the global ids the graph was built for.
        """
        if structure is not None:
            return structure.pair_features(self.n_id, pivots.index_select(0, self.batch))
        x_v = x.index_select(0, self.n_id)
        x_p = x.index_select(0, pivots.index_select(0, self.batch))
        feats = x_v - x_p
        if pivot_similarity:
            feats = torch.cat([feats, _cosine(x_v, x_p).unsqueeze(1)], dim=1)
        return feats

    def mean_adjacency(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """``D^-1 A`` as a sparse CSR tensor (rows of degree 0 are empty: they average to 0)."""
        deg = self.rowptr[1:] - self.rowptr[:-1]
        return _csr(self.rowptr, self.col, deg, self.num_nodes, dtype)


def _csr(
    rowptr: torch.Tensor, col: torch.Tensor, deg: torch.Tensor, v: int, dtype: torch.dtype
) -> torch.Tensor:
    """A CSR ``D^-1 A`` from its index arrays and the degrees ``deg`` (V,)."""
    inv = (1.0 / deg.clamp_min(1).to(dtype)).repeat_interleave(deg, output_size=col.numel())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rowptr, col, inv, (v, v), check_invariants=False)


def build_ips_graph(
    knn_index: torch.Tensor,
    pivots: torch.Tensor,
    hop1: torch.Tensor,
    *,
    k2: int,
    active_connection: int,
) -> IPSGraph:
    """The structure of :func:`build_ips`'s batch (ids, CSR edges), on validated inputs.

    No check is made here (it is meant for loops whose inputs were checked
    once: :func:`~linkage_gcn.training.predict_links`, the training loops);
    ``knn_index`` (N, K), ``pivots`` (B,) and ``hop1`` (B, k1) must satisfy
    :func:`build_ips`'s rules.

    Examples
    --------
    >>> knn_index = torch.tensor([[1, 2], [0, 3], [3, 1], [2, 1]])
    >>> pivots = torch.tensor([0, 2])
    >>> g = build_ips_graph(knn_index, pivots, knn_index[pivots, :1], k2=2, active_connection=1)
    >>> g.n_id.tolist(), g.rowptr.tolist(), g.col.tolist(), g.hop1_index.tolist()
    ([0, 1, 3, 1, 2, 3], [0, 1, 2, 2, 2, 3, 4], [1, 0, 5, 4], [1, 5])
    >>> g.edge_index().tolist()  # as build_ips gives it
    [[0, 1, 4, 5], [1, 0, 5, 4]]
    """
    n = knn_index.shape[0]
    keys, n_id, batch, pivot_index, hop1_index = _ips_nodes(knn_index, pivots, hop1, k2, n)
    pair = _ips_pairs(keys, n_id, batch, knn_index, n, active_connection)
    num_nodes = keys.shape[0]
    row, col = pair // num_nodes, pair % num_nodes
    rowptr = torch.searchsorted(row, torch.arange(num_nodes + 1, device=row.device))
    return IPSGraph(n_id, batch, rowptr, col, pivot_index, hop1_index)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


def _ips_pairs(keys, n_id, batch, knn_index, n, active_connection):
    """Symmetric u-NN edges inside each IPS as sorted keys ``src * V + dst`` (positions)."""
    num_nodes = keys.shape[0]
    u = min(active_connection, knn_index.shape[1])
    target = batch.unsqueeze(1) * n + knn_index[n_id, :u]  # (V, u) keys of u-NN
    pos = torch.searchsorted(keys, target).clamp_max(num_nodes - 1)
    src = torch.arange(num_nodes, device=keys.device).unsqueeze(1).expand_as(pos)
    inside = (keys[pos] == target) & (pos != src)  # one mask: inside the IPS, no self-loop
    src, dst = src[inside], pos[inside]
    return torch.unique(torch.cat([src * num_nodes + dst, dst * num_nodes + src]))


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
        "hop1_pivot_index": per_graph * k1,
    }
    incs = {
        "x": zeros,
        "n_id": zeros,
        "edge_index": ptr[:-1],
        "pivot_index": ptr[:-1],
        "hop1_index": ptr[:-1],
        "hop1_pivot_index": ptr[:-1],
    }
    if "edge_label" in out:
        slices["edge_label"] = per_graph * k1
        incs["edge_label"] = zeros
    out._slice_dict = {k: v.cpu() for k, v in slices.items()}
    out._inc_dict = {k: v.cpu() for k, v in incs.items()}
    out._num_graphs = num_graphs


def _check_hop1(hop1: Any, pivots: torch.Tensor, n: int, k1: Optional[int] = None) -> torch.Tensor:
    """A (N, k1) table of 1-hop ids (one row per node): ids in range, no pivot in its own row.

    Only the rows of ``pivots`` are checked, once (callers then build many
    batches from it without further checks).
    """
    hop1 = _as_ids(hop1, "hop1", pivots.device)
    if hop1.dim() != 2 or hop1.shape[0] != n or hop1.shape[1] == 0:
        raise ValueError(
            f"hop1 must be a (N, k1) table with one row per node (N = {n}) and k1 >= 1, got "
            f"shape {tuple(hop1.shape)}."
        )
    if k1 is not None and hop1.shape[1] != k1:
        raise ValueError(
            f"the sampler gave {hop1.shape[1]} 1-hop neighbours per pivot but k_at_hop[0] = {k1}."
        )
    rows = hop1[pivots]
    if bool(_outside(rows, n)):
        _raise_outside(rows, n, "hop1")
    own = (rows == pivots.unsqueeze(1)).any(1)
    if bool(own.any()):
        raise ValueError(
            f"node {int(pivots[own][0])} is among its own 1-hop neighbours in hop1; exclude self "
            "from kNN rows."
        )
    return hop1


@validate_params()
def iter_ips_batches(
    x: ArrayLike,
    knn_index: ArrayLike,
    hop1: ArrayLike,
    *,
    k2: int,
    active_connection: int,
    batch_size: int,
    labels: Optional[ArrayLike] = None,
    pivots: Optional[ArrayLike] = None,
    pivot_similarity: bool = False,
) -> Iterator[Batch]:
    """Yield :func:`build_ips` batches over ``pivots`` (default: every node, in order).

    Everything is validated once, when the function is called (not at each
    batch); memory is bounded by ``batch_size`` pivots at a time.

    Parameters
    ----------
    x : array-like or torch.Tensor of shape (N, D)
        Node features.
    knn_index : array-like or torch.Tensor of shape (N, K)
        Neighbour ids sorted by decreasing similarity, self excluded.
    hop1 : array-like or torch.Tensor of shape (N, k1)
        One row per node: ``hop1[p]`` is the 1-hop set of pivot ``p`` (e.g.
        ``knn_index[:, :k1]``, or a sampler's draw).
    k2, active_connection : int
        2-hop neighbours per 1-hop node, and ``u`` of the IPS edges.
    batch_size : int
        Pivots per batch.
    labels : array-like of shape (N,), optional
        Identities, giving each batch an ``edge_label``.
    pivots : array-like of int or bool mask, optional
        The pivots, by default every node.
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features,
        as :class:`~linkage_gcn.LinkageClusterer` does by default.

    Yields
    ------
    torch_geometric.data.Batch
        As :func:`build_ips`, on the device of ``x``.

    Examples
    --------
    >>> from linkage_gcn.knn import knn
    >>> x = torch.randn(10, 4)
    >>> index, _ = knn(x, 3)
    >>> batches = iter_ips_batches(x, index, index[:, :2], k2=2, active_connection=2,
    ...                            batch_size=4, pivot_similarity=True)
    >>> [(b.num_graphs, b.x.shape[1]) for b in batches]  # D + 1 features
    [(4, 5), (4, 5), (2, 5)]
    """
    x_t, _ = check_features(x, name="x")
    index = check_knn_index(knn_index, x_t.shape[0], device=x_t.device)
    n = x_t.shape[0]
    p = _check_pivots(pivots, n, x_t.device)
    hop1_t = _check_hop1(hop1, p, n)
    y = None
    if labels is not None:
        y = check_labels(labels, n_samples=n, return_tensor=True).to(x_t.device)

    def batches() -> Iterator[Batch]:
        for start in range(0, p.shape[0], batch_size):
            chunk = p[start : start + batch_size]
            with skip_validation():  # everything was checked once, above
                batch = build_ips(
                    x_t, index, chunk, hop1_t[chunk], k2=k2,
                    active_connection=active_connection, labels=y,
                    pivot_similarity=pivot_similarity,
                )  # fmt: skip
            yield batch

    return batches()


def _check_pivots(pivots: Any, n: int, device: torch.device, name: str = "pivots") -> torch.Tensor:
    if pivots is None:
        return torch.arange(n, device=device)
    return check_nodes(pivots, n, name).to(device)


class IPSDataset(Dataset):
    """A PyG dataset with one Instance Pivot Subgraph per pivot.

    Items collate with PyG's :class:`~torch_geometric.loader.DataLoader` into
    exactly the batch that :meth:`batch` builds at once (the ``*_index``
    attributes are offset per graph).

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
    sampler : Hop1Sampler, optional
        Selects the 1-hop sets (it must select ``k1``); by default the top
        ``k1`` (L-GCN). For a stochastic sampler call :meth:`resample` before
        each epoch.
    pivots : array-like of int or bool mask, optional
        The pivots, by default every node.
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features:
        the input of a model trained by :class:`~linkage_gcn.LinkageClusterer`
        with its default ``pivot_similarity=True``.

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
        sampler: Optional[Hop1Sampler] = None,
        pivots: Optional[ArrayLike] = None,
        pivot_similarity: bool = False,
    ) -> None:
        super().__init__(None)
        self.x_, _ = check_features(x, name="x")
        n = self.x_.shape[0]
        self.knn_index_ = check_knn_index(knn_index, n, device=self.x_.device)
        self.labels_ = None
        if labels is not None:
            self.labels_ = check_labels(labels, n_samples=n, return_tensor=True).to(self.x_.device)
        self.k1, self.k2 = check_k_at_hop(k_at_hop)
        self.active_connection = check_param("active_connection", active_connection)
        self.pivot_similarity = check_param("pivot_similarity", pivot_similarity)
        self.sampler = resolve_sampler("topk" if sampler is None else sampler, self.k1)
        self.pivots_ = _check_pivots(pivots, n, self.x_.device)
        self.hop1_ = None
        self.resample()

    def resample(self, generator: Optional[torch.Generator] = None) -> None:
        """Draw the 1-hop sets anew (once per epoch for a stochastic sampler)."""
        hop1 = self.sampler.sample(self.knn_index_, self.labels_, generator=generator)
        self.hop1_ = _check_hop1(hop1, self.pivots_, self.x_.shape[0], self.k1)

    def len(self) -> int:
        """Number of pivots."""
        return int(self.pivots_.shape[0])

    def get(self, idx: int) -> Data:
        """The IPS of the ``idx``-th pivot, as a :class:`~torch_geometric.data.Data`."""
        return self.batch([idx]).get_example(0)

    def batch(self, positions: ArrayLike) -> Batch:
        """The IPS of several pivots (positions into this dataset), built at once."""
        pos = check_nodes(positions, len(self), "positions").to(self.pivots_.device)
        if pos.numel() == 0:
            raise ValueError("positions is empty; give at least one position.")
        p = self.pivots_[pos]
        with skip_validation():  # the dataset's tables were checked once
            return build_ips(
                self.x_, self.knn_index_, p, self.hop1_[p], k2=self.k2,
                active_connection=self.active_connection, labels=self.labels_,
                pivot_similarity=self.pivot_similarity,
            )  # fmt: skip

    def __repr__(self) -> str:
        extra = ", pivot_similarity=True" if self.pivot_similarity else ""
        return (
            f"{type(self).__name__}({len(self)}, k_at_hop=({self.k1}, {self.k2}), "
            f"active_connection={self.active_connection}, sampler={self.sampler!r}{extra})"
        )


class IPSTransform(BaseTransform):
    """Turn a kNN graph :class:`~torch_geometric.data.Data` into the IPS of its pivots.

    The input (one whole kNN graph: do not collate several with PyG's
    ``DataLoader``, which concatenates ``*index`` attributes along their last
    dimension) needs ``x`` and a kNN table ``knn_index`` (N, K) (sorted by
    decreasing similarity, self excluded); ``y`` becomes ``edge_label`` when
    present; ``pivot`` (optional, node ids or a boolean mask) selects the
    pivots, by default every node. The output is the
    :class:`~torch_geometric.data.Batch` of :func:`build_ips`.

    Parameters
    ----------
    k_at_hop : (int, int)
        ``(k1, k2)``.
    active_connection : int
        ``u`` of the IPS edges.
    sampler : Hop1Sampler, optional
        Selects the 1-hop sets (it must select ``k1``); by default the top ``k1``.
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features, as
        :class:`~linkage_gcn.LinkageClusterer` does by default.

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
        sampler: Optional[Hop1Sampler] = None,
        pivot_similarity: bool = False,
    ) -> None:
        self.k_at_hop = check_k_at_hop(k_at_hop)
        self.active_connection = check_param("active_connection", active_connection)
        self.sampler = resolve_sampler("topk" if sampler is None else sampler, self.k_at_hop[0])
        self.pivot_similarity = check_param("pivot_similarity", pivot_similarity)

    def forward(self, data: Data) -> Batch:
        """Build the IPS batch of ``data``."""
        if not isinstance(data, Data):
            raise TypeError(
                f"IPSTransform expects a torch_geometric Data, got {type(data).__name__}."
            )
        if "knn_index" not in data or data.x is None:
            raise ValueError("IPSTransform needs a Data with `x` and a (N, K) `knn_index`.")
        x, _ = check_features(data.x, name="data.x")
        n = x.shape[0]
        index = check_knn_index(data.knn_index, n, name="data.knn_index", rows_of="data.x",
                                device=x.device)  # fmt: skip
        y = None
        if data.y is not None:
            y = check_labels(data.y, n_samples=n, name="data.y", return_tensor=True).to(x.device)
        pivots = _check_pivots(data.pivot if "pivot" in data else None, n, x.device, "data.pivot")
        if pivots.numel() == 0:
            raise ValueError("data.pivot selects no pivot.")
        hop1 = _check_hop1(self.sampler.sample(index, y), pivots, n, self.k_at_hop[0])
        with skip_validation():  # checked above, once
            return build_ips(
                x, index, pivots, hop1[pivots], k2=self.k_at_hop[1],
                active_connection=self.active_connection, labels=y,
                pivot_similarity=self.pivot_similarity,
            )  # fmt: skip

    def __repr__(self) -> str:
        extra = ", pivot_similarity=True" if self.pivot_similarity else ""
        return (
            f"{type(self).__name__}(k_at_hop={self.k_at_hop}, "
            f"active_connection={self.active_connection}, sampler={self.sampler!r}{extra})"
        )
