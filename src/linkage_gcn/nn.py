"""The L-GCN link classifier, built from PyG mean-aggregation message passing."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import scatter

from ._int8 import Int8Sage, check_int8
from ._validation import check_bool, check_in_options, check_int, check_real
from .structure import N_STRUCTURE_FEATURES, StructureContext

if TYPE_CHECKING:  # pragma: no cover
    from .ips import IPSGraph

__all__ = ["PRECISIONS", "LinkScorer", "LinkageGCN", "check_layer_sizes"]

#: Arithmetic of the inference path: exact fp32 (default), bfloat16 (CPU/GPU), TF32 (GPU),
#: int8 (CPU).
PRECISIONS = ("fp32", "bf16", "tf32", "int8")


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
            h = self._activate(conv(h, edge_index))
        return h

    def forward(self, x: Tensor, edge_index: Tensor, hop1_index: Tensor) -> Tensor:
        """Link logits of the labelled 1-hop nodes.

        Parameters
        ----------
        x : torch.Tensor of shape (V, in_channels)
            Pivot-relative node features of a batch of IPS.
        edge_index : torch.LongTensor of shape (2, E), or a sparse (V, V) tensor
            Symmetric IPS edges, as an edge list or as a sparse adjacency
            ``adj_t`` (e.g. :meth:`~linkage_gcn.ips.IPSGraph.adj_t`, CSR:
            faster mean aggregation, the same output).
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
            the values): ``x`` not (V, in_channels), ``edge_index`` neither
            (2, E) nor a sparse (V, V), ``hop1_index`` not 1-D.
        """
        self._check_shapes(x, edge_index, hop1_index)
        if type(self).embed is not LinkageGCN.embed:  # a subclass's own embedding
            return self.head(self.embed(x, edge_index)[hop1_index])
        # the head reads the 1-hop rows only: the last layer is computed on those rows
        h = self.norm(x)
        for conv in self.convs[:-1]:
            h = self._activate(conv(h, edge_index))
        return self.head(self._activate(_sage_rows(self.convs[-1], h, edge_index, hop1_index)))

    def _activate(self, h: Tensor) -> Tensor:
        h = torch.relu(h)
        if self.dropout > 0:
            h = nn.functional.dropout(h, p=self.dropout, training=self.training)
        return h

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
        if edge_index.layout != torch.strided:
            v = x.shape[0]
            if tuple(edge_index.shape) != (v, v):
                raise ValueError(
                    f"a sparse adjacency must have shape (V, V) = ({v}, {v}), got "
                    f"{tuple(edge_index.shape)}."
                )
        elif edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}.")
        if hop1_index.dim() != 1:
            raise ValueError(f"hop1_index must be 1-D, got shape {tuple(hop1_index.shape)}.")

    def link_scorer(
        self,
        x: Tensor,
        *,
        pivot_similarity: bool = False,
        table: bool = False,
        precision: str = "fp32",
        structure: Optional[StructureContext] = None,
    ) -> LinkScorer:
        """The eval-mode fast path: a :class:`LinkScorer` over the features ``x``.

        See :class:`LinkScorer` (it gives the logits of :meth:`forward` with
        less work); the model must be in eval mode and must not be changed
        while the scorer is used.
        """
        return LinkScorer(
            self, x, pivot_similarity=pivot_similarity, table=table, precision=precision,
            structure=structure,
        )  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, hidden_channels={self.hidden_channels}, "
            f"head_channels={self.head_channels}, dropout={self.dropout})"
        )


@contextlib.contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """Let CUDA fp32 matrix products use TF32 inside the block (restored after)."""
    if not enabled:
        yield
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9
        old, matmul.fp32_precision = matmul.fp32_precision, "tf32"
        try:
            yield
        finally:
            matmul.fp32_precision = old
    else:  # pragma: no cover - older torch
        old, matmul.allow_tf32 = matmul.allow_tf32, True
        try:
            yield
        finally:
            matmul.allow_tf32 = old


def _is_plain_linkage_gcn(model: Any) -> bool:
    """Whether ``model`` computes exactly :class:`LinkageGCN`'s forward (nothing overridden)."""
    if not isinstance(model, LinkageGCN):
        return False
    cls = type(model)
    if cls.forward is not LinkageGCN.forward or cls.embed is not LinkageGCN.embed:
        return False
    norm = model.norm
    if isinstance(norm, nn.BatchNorm1d):
        if norm.affine or norm.running_mean is None or norm.running_var is None:
            return False
    elif not isinstance(norm, nn.Identity):
        return False
    for conv in model.convs:
        if not (
            type(conv) is SAGEConv
            and conv.aggr == "mean"
            and conv.root_weight
            and not conv.normalize
            and not conv.project
            and conv.lin_l.bias is not None
        ):
            return False
    return True


class LinkScorer:
    r"""Eval-mode link logits of a :class:`LinkageGCN`, computed with less work.

    The same logits as ``model(batch.x, batch.edge_index, batch.hop1_index)``
    on the batch :func:`~linkage_gcn.ips.build_ips` builds (equal within
    float rounding in fp32), from the bare structure
    :func:`~linkage_gcn.ips.build_ips_graph` gives. Three savings:

    - The input batch norm (eval mode, no affine part) and the first layer
      are linear in the pivot-relative features :math:`x_v - x_p`, so with
      :math:`s = \sqrt{\sigma^2 + \epsilon}` and :math:`W' = W
      \operatorname{diag}(1/s)`, node :math:`v` of the IPS of pivot
      :math:`p` gets

      .. math::

          h^{(1)}_v = A_v - A_p + \bar B_v - [d_v > 0] (B_p + W'_l \mu)
          - W'_r \mu + b + c_v w'_{r,c} + \bar c_v w'_{l,c}

      with per-node projections :math:`A = X W_r'^\top`,
      :math:`B = X W_l'^\top` computed once per node (once for all ``N``
      when ``table`` is on, else once per batch for its distinct nodes),
      :math:`\bar B_v` their mean over the IPS neighbours of ``v`` (0 for a
      node of degree :math:`d_v = 0`, as PyG's mean), and the rank-1 terms of
      the pivot-similarity column :math:`c` when the model uses it. No
      ``(V, D)`` feature matrix is built and no ``V x D x H`` product is
      computed.
    - Mean aggregation is one CSR sparse-dense product (``torch.sparse.mm``
      of ``D^{-1} A``) instead of a gather-scatter over the edge list, and
      each layer is two fused ``addmm`` calls.
    - The last graph convolution is computed only on the 1-hop rows (the
      only ones the head reads).

    A model trained on the structure features (``structure`` given) reads
    per-pair features, which no per-node table can hold: its first layer
    aggregates the ``(V, F)`` pair features of each batch in their own
    narrow width (the batch norm folded into its weights, as above), and
    the layers after it take the same path as a coordinate model's, in
    every ``precision``.

    Parameters
    ----------
    model : LinkageGCN
        An unmodified :class:`LinkageGCN` (a subclass that overrides
        ``forward`` or ``embed`` is refused: score it with its own forward),
        switched to eval mode here.
    x : torch.Tensor of shape (N, D)
        All node features, on the model's device.
    pivot_similarity : bool
        Whether the model takes the pivot-similarity column (``in_channels
        = D + 1``).
    table : bool
        ``True``: project all ``N`` nodes once, here (``N x 2 H`` floats, 4
        KiB per node for ``H = 512``; worth it when the pivots' subgraphs
        cover most nodes). ``False``: project the distinct nodes of each
        batch when it is scored (:func:`~linkage_gcn.training.predict_links`
        chooses).
    precision : {"fp32", "bf16", "tf32", "int8"}
        ``"fp32"``: exact (equal to the plain forward within float
        rounding). ``"bf16"`` runs the layers in bfloat16 (fast on GPUs and
        on CPUs with AVX-512-BF16/AMX; slower elsewhere), ``"tf32"`` lets
        CUDA matrix products use TF32 (no effect on the CPU) and ``"int8"``
        runs the layers after the first as oneDNN int8 products (CPU only;
        1.4-1.8x faster scoring on AVX2 CPUs, see ``docs/scaling.md``): all
        three are approximate (link probabilities typically within 1e-2).

    Examples
    --------
    >>> from linkage_gcn.ips import build_ips, build_ips_graph
    >>> from linkage_gcn.knn import knn
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(30, 8)
    >>> index, _ = knn(x, 5)
    >>> model = LinkageGCN(8, hidden_channels=(16, 16)).eval()
    >>> pivots = torch.arange(10)
    >>> batch = build_ips(x, index, pivots, index[pivots, :3], k2=2, active_connection=2)
    >>> graph = build_ips_graph(index, pivots, index[pivots, :3], k2=2, active_connection=2)
    >>> fast = model.link_scorer(x, table=True).logits(graph)
    >>> with torch.no_grad():
    ...     plain = model(batch.x, batch.edge_index, batch.hop1_index)
    >>> torch.allclose(fast, plain, atol=1e-5)
    True
    """

    def __init__(
        self,
        model: LinkageGCN,
        x: Tensor,
        *,
        pivot_similarity: bool = False,
        table: bool = False,
        precision: str = "fp32",
        structure: Optional[StructureContext] = None,
    ) -> None:
        if not _is_plain_linkage_gcn(model):
            raise TypeError(
                "LinkScorer needs an unmodified LinkageGCN (BatchNorm1d(affine=False) or no "
                f"input norm, mean SAGEConv layers); got {type(model).__name__}."
            )
        self.pivot_similarity = check_bool(pivot_similarity, "pivot_similarity")
        self.precision = check_in_options(precision, PRECISIONS, "precision")
        if self.precision == "int8":
            check_int8(x.device)
        model.eval()
        self.model = model
        self.structure = structure
        weight = model.convs[0].lin_r.weight
        d = x.shape[1] if structure is None else N_STRUCTURE_FEATURES
        if structure is not None and (self.pivot_similarity or table):
            raise ValueError(
                "the structure features are per pair (pivot, node): pivot_similarity and "
                "table apply to the embeddings' coordinates only."
            )
        if d + int(self.pivot_similarity) != model.in_channels:
            what = "x has" if structure is None else "the structure features are"
            raise ValueError(
                f"the model expects {model.in_channels} input features per node, {what} {d}"
                f"{' + 1 (pivot_similarity)' if self.pivot_similarity else ''}."
            )
        self.x = x.to(weight.dtype)
        self.dtype = torch.bfloat16 if self.precision == "bf16" else weight.dtype
        with torch.no_grad():
            self._fold(model, d)
            # centring does not change A_v - A_p; it keeps the projections small, so their
            # difference loses fewer bits than the raw features' would
            self.center = self.x.mean(0)
            self.norms = self.x.norm(dim=1) if self.pivot_similarity else None
            self.table: Optional[tuple[Tensor, Tensor]] = None
            if check_bool(table, "table"):
                self.table = self._project(self.x)
        self.int8: Optional[list[Int8Sage]] = None
        if self.precision == "int8":
            self.int8 = [Int8Sage(conv) for conv in model.convs[1:]]

    def _fold(self, model: LinkageGCN, d: int) -> None:
        """Fold the eval batch norm into the first layer's weights."""
        conv = model.convs[0]
        w_r, w_l = conv.lin_r.weight, conv.lin_l.weight
        norm = model.norm
        if isinstance(norm, nn.BatchNorm1d):
            mu = norm.running_mean.to(w_r.dtype)
            inv = torch.rsqrt(norm.running_var.to(w_r.dtype) + norm.eps)
        else:
            mu = torch.zeros(w_r.shape[1], dtype=w_r.dtype, device=w_r.device)
            inv = torch.ones_like(mu)
        w_r, w_l = w_r * inv, w_l * inv  # W diag(1/s)
        self.w_feat = torch.cat([w_r[:, :d], w_l[:, :d]]).t().contiguous()  # (D, 2H)
        self.hidden = w_r.shape[0]
        bias = conv.lin_l.bias - w_r @ mu
        if conv.lin_r.bias is not None:  # pragma: no cover - SAGEConv's lin_r has no bias
            bias = bias + conv.lin_r.bias
        self.bias = bias
        self.shift_l = w_l @ mu  # subtracted where the node has neighbours
        self.w_sim = torch.stack([w_r[:, d], w_l[:, d]]) if self.pivot_similarity else None

    def _project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``A`` and ``B`` (each ``(len(x), H)``) of the rows of ``x`` (centred), in chunks."""
        h = self.hidden
        a = torch.empty(x.shape[0], h, dtype=x.dtype, device=x.device)
        b = torch.empty_like(a)
        w_r, w_l = self.w_feat[:, :h], self.w_feat[:, h:]
        for start in range(0, x.shape[0], 65536):
            rows = slice(start, start + 65536)
            chunk = x[rows] - self.center
            torch.mm(chunk, w_r, out=a[rows])
            torch.mm(chunk, w_l, out=b[rows])
        return a, b

    @torch.no_grad()
    def logits(self, graph: IPSGraph) -> Tensor:
        """Link logits ``(B * k1, 2)`` of the 1-hop nodes of ``graph``.

        ``graph`` is the :class:`~linkage_gcn.ips.IPSGraph` of some pivots'
        IPS over the ``x`` given at construction.
        """
        with _tf32(self.precision == "tf32" and self.x.is_cuda):
            return self._logits(graph)

    def _logits(self, graph: IPSGraph) -> Tensor:
        if self.structure is None:
            x, adj, deg = self._first_layer(graph)
        else:
            x, adj, deg = self._first_layer_structure(graph)
        x = x.to(self.dtype)
        if self.precision in ("bf16", "int8") and x.device.type == "cpu":
            # oneDNN builds a kernel per matrix shape: rows padded to a few sizes are reused
            graph, x, deg, adj = _pad_nodes(graph, x, deg, adj, _ROW_BUCKET)
        hop1 = graph.hop1_index
        convs = self.model.convs
        if len(convs) == 1:
            x = x.index_select(0, hop1)
        else:
            for i, conv in enumerate(convs[1:], start=2):
                rows = hop1 if i == len(convs) else None
                if self.int8 is not None:
                    sub = adj if rows is None else _rows_mean_adjacency(graph, deg, rows, x.dtype)
                    x = self.int8[i - 2](x, sub, rows)
                else:
                    x = _sage_mean(conv, x, graph, deg, rows, adj, self.dtype)
        head = self.model.head
        return head(x.to(head[0].weight.dtype))

    def _first_layer_structure(self, graph: IPSGraph) -> tuple[Tensor, Tensor, Tensor]:
        """The first layer on the pair features (``ReLU`` applied), ``D^-1 A`` and the degrees.

        ``h_v = F_v W_r' + mean_j(F_j) W_l' + b - W_r' mu - [d_v > 0] W_l' mu``, the
        batch norm folded as for the coordinates: the features are averaged in
        their own narrow width, then projected.
        """
        pivot_ids = graph.n_id.index_select(0, graph.pivot_index)
        feats = graph.features(self.x, pivot_ids, structure=self.structure)
        feats = feats.to(self.w_feat.dtype)
        deg = graph.rowptr[1:] - graph.rowptr[:-1]
        adj = _mean_adjacency(graph, deg, feats.dtype)
        h = self.hidden
        correction = torch.stack([self.bias, self.bias - self.shift_l])
        out = correction.index_select(0, (deg > 0).long())
        out.addmm_(feats, self.w_feat[:, :h])
        out.addmm_(torch.sparse.mm(adj, feats), self.w_feat[:, h:])
        return torch.relu_(out), adj, deg

    def _first_layer(self, graph: IPSGraph) -> tuple[Tensor, Tensor, Tensor]:
        """The first layer from the per-node projections (``ReLU`` applied), ``D^-1 A``, degrees."""
        # index_select throughout: advanced indexing of rows is several times slower on the CPU
        n_id, batch = graph.n_id, graph.batch
        pivot_ids = n_id.index_select(0, graph.pivot_index)  # (B,) global ids
        if self.table is not None:
            a, b = self.table[0], self.table[1]
            a_v, b_v = a.index_select(0, n_id), b.index_select(0, n_id)
            a_p, b_p = a.index_select(0, pivot_ids), b.index_select(0, pivot_ids)
        else:
            uniq, inverse = torch.unique(n_id, return_inverse=True)
            a, b = self._project(self.x.index_select(0, uniq))
            at_pivot = inverse.index_select(0, graph.pivot_index)
            a_v, b_v = a.index_select(0, inverse), b.index_select(0, inverse)
            a_p, b_p = a.index_select(0, at_pivot), b.index_select(0, at_pivot)
        deg = graph.rowptr[1:] - graph.rowptr[:-1]
        adj = _mean_adjacency(graph, deg, a_v.dtype)
        if self.w_sim is not None:
            sim = self._similarity(n_id, pivot_ids.index_select(0, batch))
            b_v = torch.addr(b_v, sim, self.w_sim[1])  # B_v + c_v w_lc
            a_v = torch.addr(a_v, sim, self.w_sim[0])
        # h1 = A_v + mean_j(B_j + c_j w_lc) + (bias - A_p) - [d_v > 0](B_p + W_l' mu): the
        # per-graph corrections of nodes with and without neighbours, gathered at once
        correction = torch.cat([self.bias - a_p, self.bias - a_p - b_p - self.shift_l])
        which = batch + (deg > 0).long() * pivot_ids.shape[0]
        out = torch.sparse.mm(adj, b_v)
        out += a_v
        out += correction.index_select(0, which)
        return torch.relu_(out), adj, deg

    def _similarity(self, n_id: Tensor, pivot_of: Tensor) -> Tensor:
        """``cos(x_v, x_p)`` of every node (as :func:`~linkage_gcn.ips.build_ips`)."""
        x, norms = self.x, self.norms
        dots = (x.index_select(0, n_id) * x.index_select(0, pivot_of)).sum(1)
        return dots / (norms.index_select(0, n_id) * norms.index_select(0, pivot_of)).clamp_min(
            1e-12
        )

    def __repr__(self) -> str:
        table = "all nodes" if self.table is not None else "per batch"
        return (
            f"{type(self).__name__}({self.model!r}, pivot_similarity={self.pivot_similarity}, "
            f"table={table!r}, precision={self.precision!r})"
        )


#: Row multiple of the padded layers of bf16 and int8 on the CPU (:func:`_pad_nodes`).
_ROW_BUCKET = 256


def _pad_nodes(
    graph: IPSGraph, x: Tensor, deg: Tensor, adj: Tensor, multiple: int
) -> tuple[IPSGraph, Tensor, Tensor, Tensor]:
    """``graph``, ``x``, ``deg`` and the CSR ``adj`` with isolated nodes appended up to a multiple.

    oneDNN's bf16 and int8 products build (JIT) a kernel for each new matrix shape, and
    each batch of IPS has its own node count: without padding, a batch costs ten times a
    repeated shape's product on an AMX CPU. The appended nodes have no edges (they average
    to 0 and no real node reads them) and are never among the scored 1-hop rows.
    """
    pad = -x.shape[0] % multiple
    if pad == 0:
        return graph, x, deg, adj
    rowptr = torch.cat([graph.rowptr, graph.rowptr[-1:].expand(pad)])
    graph = graph._replace(
        n_id=torch.nn.functional.pad(graph.n_id, (0, pad)),
        batch=torch.nn.functional.pad(graph.batch, (0, pad)),
        rowptr=rowptr,
    )
    v = graph.num_nodes
    with warnings.catch_warnings():  # the same entries, empty rows appended
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        adj = torch.sparse_csr_tensor(rowptr, adj.col_indices(), adj.values(), (v, v),
                                      check_invariants=False)  # fmt: skip
    x = torch.nn.functional.pad(x, (0, 0, 0, pad))
    return graph, x, torch.nn.functional.pad(deg, (0, pad)), adj


def _mean_adjacency(graph: IPSGraph, deg: Tensor, dtype: torch.dtype) -> Tensor:
    from .ips import _csr

    return _csr(graph.rowptr, graph.col, deg, graph.num_nodes, dtype)


def _rows_mean_adjacency(graph: IPSGraph, deg: Tensor, rows: Tensor, dtype: torch.dtype) -> Tensor:
    """The ``(R, V)`` CSR rows ``rows`` of ``D^-1 A`` (a row per entry of ``rows``).

    Its size is read on the host: meant for the CPU, where that costs nothing.
    """
    count = deg.index_select(0, rows)
    rowptr = torch.zeros(rows.shape[0] + 1, dtype=graph.rowptr.dtype, device=rows.device)
    torch.cumsum(count, 0, out=rowptr[1:])
    starts = graph.rowptr.index_select(0, rows) - rowptr[:-1]
    pos = torch.arange(int(rowptr[-1]), device=rows.device)
    pos += starts.repeat_interleave(count, output_size=pos.numel())
    col = graph.col.index_select(0, pos)
    inv = (1.0 / count.clamp_min(1).to(dtype)).repeat_interleave(count, output_size=pos.numel())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            rowptr, col, inv, (rows.shape[0], graph.num_nodes), check_invariants=False
        )


def _sage_mean(
    conv: SAGEConv,
    x: Tensor,
    graph: IPSGraph,
    deg: Tensor,
    rows: Optional[Tensor],
    adj: Tensor,
    dtype: torch.dtype,
) -> Tensor:
    """``ReLU(lin_l(mean_j x_j) + lin_r(x))`` on all nodes, or only on ``rows``.

    ``adj`` is the batch's ``D^-1 A``, built once; when its dtype is not ``x``'s (bf16
    layers: CSR products need fp32 on the CPU) the aggregations convert around it. A
    layer that narrows (``out < in``) projects before it aggregates, on all nodes.
    """
    w_l, w_r, b = (t.to(dtype) for t in (conv.lin_l.weight, conv.lin_r.weight, conv.lin_l.bias))
    if rows is not None and x.device.type == "cpu":  # aggregate the needed rows only
        agg = _spmm(_rows_mean_adjacency(graph, deg, rows, adj.dtype), x)
        x = x.index_select(0, rows)
    elif rows is None and conv.out_channels < conv.in_channels:
        # project, then aggregate in the narrower output width: mean_j(W_l x_j)
        out = torch.addmm(b, x, w_r.t())
        out += _spmm(adj, torch.mm(x, w_l.t()))
        return torch.relu_(out)
    else:
        agg = _spmm(adj, x)
        if rows is not None:  # on a GPU: no host read of the rows' edge count
            agg, x = agg.index_select(0, rows), x.index_select(0, rows)
    out = torch.addmm(b, agg, w_l.t())
    out.addmm_(x, w_r.t())
    return torch.relu_(out)


def _spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` in ``x``'s dtype, computed in ``adj``'s."""
    if adj.dtype == x.dtype:
        return torch.sparse.mm(adj, x)
    return torch.sparse.mm(adj, x.to(adj.dtype)).to(x.dtype)


def _sage_rows(conv: SAGEConv, x: Tensor, edge_index: Tensor, rows: Tensor) -> Tensor:
    """``SAGEConv(aggr="mean")(x, edge_index)[rows]``, the products on ``rows`` only.

    ``edge_index`` is an edge list (messages flow from ``edge_index[0]`` to
    ``edge_index[1]``, as PyG) or a sparse ``adj_t`` of ones (rows aggregate).
    """
    if edge_index.layout != torch.strided:
        adj = edge_index.to_sparse_csr() if edge_index.layout != torch.sparse_csr else edge_index
        deg = (adj.crow_indices()[1:] - adj.crow_indices()[:-1]).clamp_min(1)
        agg = torch.sparse.mm(adj, x) / deg.unsqueeze(1).to(x.dtype)
    else:
        agg = scatter(x.index_select(0, edge_index[0]), edge_index[1], dim=0,
                      dim_size=x.shape[0], reduce="mean")  # fmt: skip
    out = conv.lin_l(agg.index_select(0, rows))
    return out + conv.lin_r(x.index_select(0, rows))
