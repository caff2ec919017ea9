"""Structure features: link inputs that mean the same in every embedding space.

A link model fed the embeddings' coordinates (``x_v - x_p``) learns one face
model's space: its similarity scale, its density, its dimension. The features
here describe a pair (pivot ``p``, node ``v``) of an Instance Pivot Subgraph by
what any face model's embeddings share instead:

* the cosine similarity of the pair **standardised against the collection's
  own strangers**: ``z = (cos - loc) / scale``, where ``loc`` and ``scale``
  are the mean and standard deviation of the strangers among random pairs of
  the collection: the lower component of a two-normal mixture fitted to their
  cosines, since random pairs are nearly all different people in a long-tailed
  set but up to half one person in a family library (:func:`similarity_scale`).
  A verification threshold set at a
  false-accept rate is a cut on this scale; its raw cosine differs from one
  face model to the next.
* the same similarity **against each end's own neighbourhood** (FaceMap's
  per-node view): the gap to the pivot's and to the node's nearest and
  ``k``-th nearest neighbours, and **against the size of the collection**
  (``sqrt(2 ln N)``, the expected largest of ``N`` standard normal
  similarities: a collection ten times larger has closer strangers);
* **reciprocal ranks**: where ``v`` stands in ``p``'s ``k`` nearest
  neighbours and ``p`` in ``v``'s;
* **kNN-list overlap**: the Jaccard index of the two ``k``-NN lists (each
  with its own node);
* **local density** of both ends: the standardised similarity of their
  nearest and ``k``-th nearest neighbours;
* whether ``v`` is the pivot itself.

None of them depends on the coordinates, the dimension or the similarity scale
of the face model, so one network trained on several face models takes the
embeddings of another as they are, with no labels and no retraining
(:meth:`LinkageClusterer.pretrained("face-any") <linkage_gcn.LinkageClusterer.pretrained>`).

:class:`StructureContext` holds what a collection needs (unit rows, its kNN
table, its per-node standardisation) and computes the features of any batch
of pairs with tensor operations only, on any device. Several collections can
share one context (their kNN tables must not cross): each is standardised on
its own.

Examples
--------
>>> import torch
>>> from linkage_gcn.knn import knn
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(60, 16, generator=g)
>>> index, _ = knn(x, 5)
>>> ctx = StructureContext.build(x, index, k=5)
>>> ctx
StructureContext(num_nodes=60, k=5, collections=1)
>>> feats = ctx.pair_features(torch.tensor([3, 4]), torch.tensor([3, 3]))
>>> tuple(feats.shape) == (2, N_STRUCTURE_FEATURES)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from ._validation import check_features, check_int
from .knn import check_knn_index

__all__ = [
    "FEATURES",
    "N_SCORE_FEATURES",
    "N_STRUCTURE_FEATURES",
    "SCORE_FEATURE_NAMES",
    "STRUCTURE_FEATURE_NAMES",
    "StructureContext",
    "similarity_scale",
]

#: How a link model sees a pair: ``"embedding"`` (the pivot-relative
#: coordinates ``x_v - x_p`` of L-GCN, tied to one face model) or
#: ``"structure"`` (this module's features, for any face model).
FEATURES = ("embedding", "structure")

#: The structure features of a pair (pivot ``p``, node ``v``), in order.
STRUCTURE_FEATURE_NAMES = (
    "z(p, v)",
    "z(p, v) - z(p, 1st)",
    "z(p, v) - z(v, 1st)",
    "z(p, v) - z(p, k-th)",
    "z(p, v) - z(v, k-th)",
    "z(p, v) - sqrt(2 ln N)",
    "rank of v among p's k-NN",
    "rank of p among v's k-NN",
    "Jaccard of the k-NN lists",
    "z(p, 1st)",
    "z(v, 1st)",
    "z(p, k-th)",
    "z(v, k-th)",
    "v is p",
)
#: How many structure features a pair has (a structure model's ``in_channels``).
N_STRUCTURE_FEATURES = len(STRUCTURE_FEATURE_NAMES)

#: What a first scoring of every kNN link ``s`` says about a link ``(p, v)``
#: (:meth:`StructureContext.score_features`): a shared neighbour ``r`` is one of both
#: lists, each with its own node (scored 1), as in the Jaccard overlap.
SCORE_FEATURE_NAMES = (
    "s(p, v)",
    "s(v, p) (0 when p is not among v's k-NN)",
    "sum over shared neighbours r of s(p, r) s(v, r), over k + 1",
    "max over shared neighbours r of min(s(p, r), s(v, r))",
    "mean of s(p, .)",
    "mean of s(v, .)",
)
#: How many score features a link has.
N_SCORE_FEATURES = len(SCORE_FEATURE_NAMES)

#: Random pairs drawn per collection to estimate its strangers' similarity.
_PAIRS = 200_000
#: Standardised similarities are divided by this, to keep inputs near unit range.
_Z_UNIT = 5.0
_MAD_TO_SD = 1.4826
#: Expectation-maximisation steps of the strangers' fit (:func:`similarity_scale`).
_EM_STEPS = 60
#: Histogram bins the strangers' fit runs on (:func:`similarity_scale`).
_BINS = 2048
#: Least share of the pairs the strangers' component must hold, and fewest pairs the
#: mixture is fitted on (below either: the mean and sd of all pairs).
_MIN_STRANGERS, _MIN_PAIRS = 0.2, 200
#: Fewest standard deviations of the strangers between the two fitted components for
#: the upper one to count as same-person pairs (:func:`similarity_scale`).
_SEPARATION = 1.5


def _unit(x: Tensor) -> Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def similarity_scale(
    x: Tensor, *, n_pairs: int = _PAIRS, generator: Optional[torch.Generator] = None
) -> tuple[float, float]:
    """The location and scale of the cosine between strangers of a collection.

    The cosine over ``n_pairs`` random pairs ``i != j`` (all pairs when there
    are fewer) is a mixture: pairs of different people, and pairs of one
    person, which sit higher. Their share is small in a long-tailed
    collection (1 % in LFW) but not in a family library, where a few people
    own every photo (15 % with 24 people, 57 % with two): a median and MAD
    over all pairs then drift towards the same-person pairs, and every
    similarity reads as weaker than it is. So the strangers are fitted as the
    lower component of a two-component normal mixture (:data:`_EM_STEPS`
    expectation-maximisation steps from the median and MAD); its mean and
    standard deviation are returned. When the upper component is not apart
    from it (means fewer than :data:`_SEPARATION` of its standard deviations
    apart: no same-person pairs to speak of), holds less than a fifth of the
    pairs, or there are fewer than 200 pairs, the mean and standard deviation
    of all pairs are.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Embeddings (any scale: rows are normalised here), ``N >= 2``.
    n_pairs : int
        Random pairs drawn.
    generator : torch.Generator, optional
        Seeds the draw (a fixed seed by default, so that a collection is
        always standardised the same way).

    Returns
    -------
    loc, scale : float

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> loc, scale = similarity_scale(torch.randn(500, 64, generator=g))
    >>> abs(loc) < 0.02, 0.1 < scale < 0.15  # random 64-D directions: sd 1/sqrt(64)
    (True, True)
    """
    x, _ = check_features(x, name="x", min_samples=2)
    n = x.shape[0]
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    u = _unit(x.float())
    if n * (n - 1) // 2 <= n_pairs:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        i = torch.randint(n, (n_pairs,), generator=generator)
        j = (i + torch.randint(1, n, (n_pairs,), generator=generator)) % n
    i, j = i.to(u.device), j.to(u.device)
    s = _row_dots(u, i, j).double()
    loc, scale = _stranger_component(s)
    return float(loc), max(float(scale), 1e-6)


def _stranger_component(s: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and sd of the lower component of a two-normal mixture fitted to ``s``.

    The fit runs on a :data:`_BINS`-bin histogram of ``s`` (bin centres
    weighted by their counts): the same fit to a fraction of the bin width,
    at a cost that does not grow with the number of pairs.
    """
    med = s.median()
    mad = (_MAD_TO_SD * (s - med).abs().median()).clamp_min(1e-6)
    lo, hi = s.min(), s.max()
    width = ((hi - lo) / _BINS).clamp_min(1e-12)
    bins = ((s - lo) / width).long().clamp(0, _BINS - 1)
    count = torch.zeros(_BINS, dtype=s.dtype, device=s.device)
    count.index_add_(0, bins, torch.ones_like(s))
    centre = lo + (torch.arange(_BINS, dtype=s.dtype, device=s.device) + 0.5) * width
    weight = torch.tensor([0.9, 0.1], dtype=s.dtype, device=s.device)
    mean = torch.stack([med, med + 3 * mad])
    sd = torch.stack([mad, mad])
    for _ in range(_EM_STEPS):  # fixed steps: no host read
        logp = weight.log() - sd.log() - 0.5 * ((centre[:, None] - mean) / sd) ** 2
        resp = torch.softmax(logp, dim=1) * count[:, None]
        mass = resp.sum(0).clamp_min(1e-12)
        weight = (mass / mass.sum()).clamp_min(1e-12)
        mean = (resp * centre[:, None]).sum(0) / mass
        sd = ((resp * (centre[:, None] - mean) ** 2).sum(0) / mass).sqrt().clamp_min(1e-6)
    low = mean.argmin()
    apart = (
        ((mean[1 - low] - mean[low]) >= _SEPARATION * sd[low])
        & (weight[low] >= _MIN_STRANGERS)
        & (s.numel() >= _MIN_PAIRS)
    )
    return (
        torch.where(apart, mean[low], s.mean()),
        torch.where(apart, sd[low], s.std() if s.numel() > 1 else mad),
    )


#: Floats of each side gathered at once by :func:`_row_dots`: a CPU chunk stays in its
#: core's cache (3-4x faster than one gather of 200,000 512-D rows), a GPU's is large.
_GATHER = {"cpu": 1 << 18, "other": 1 << 26}


def _row_dots(u: Tensor, i: Tensor, j: Tensor) -> Tensor:
    """``(M,)`` dot products of rows ``u[i[m]]`` and ``u[j[m]]``, in cache-sized chunks."""
    out = torch.empty(i.shape[0], dtype=u.dtype, device=u.device)
    step = max(1, _GATHER["cpu" if u.device.type == "cpu" else "other"] // u.shape[1])
    for start in range(0, i.shape[0], step):  # chunks of pairs, not a loop per pair
        a = u.index_select(0, i[start : start + step]).unsqueeze(1)
        b = u.index_select(0, j[start : start + step]).unsqueeze(2)
        out[start : start + a.shape[0]] = torch.bmm(a, b).view(-1)
    return out


def _knn_cosines(u: Tensor, index: Tensor) -> Tensor:
    """``(N, k)`` cosines of unit rows ``u`` to their neighbours ``index``."""
    n, k = index.shape
    rows = torch.arange(n, device=index.device).repeat_interleave(k)
    return _row_dots(u, rows, index.reshape(-1)).view(n, k)


def _check_similarity(similarity: Any, shape: torch.Size, k: int, device: Any) -> Tensor:
    """The first ``k`` columns of kNN similarities of a table of ``shape``, checked."""
    sims = torch.as_tensor(similarity, device=device)
    if tuple(sims.shape) != tuple(shape) or not sims.is_floating_point():
        raise ValueError(
            f"similarity must be a float array of the kNN table's shape {tuple(shape)}, got "
            f"{tuple(sims.shape)} {sims.dtype}."
        )
    sims = sims[:, :k].float().contiguous()
    if not bool(torch.isfinite(sims).all()):
        raise ValueError("similarity holds NaN or infinity.")
    if bool((sims.abs() > 1 + 1e-4).any()):
        raise ValueError(
            "similarity must hold the cosine similarities of the kNN table (values in [-1, 1]); "
            "a search with metric='l2' gives minus distances: pass none."
        )
    return sims


@dataclass(frozen=True)
class StructureContext:
    """A collection (or several) as the structure features see it.

    Build it with :meth:`build`; :meth:`pair_features` gives the features of
    any pairs of its nodes.

    Attributes
    ----------
    x : torch.Tensor of shape (N, D)
        Unit rows.
    knn_index : torch.LongTensor of shape (N, k)
        The ``k`` nearest neighbours of each node (self excluded).
    loc, scale : torch.Tensor of shape (N,)
        The standardisation of each node's collection (:func:`similarity_scale`).
    knn_similarity : torch.Tensor of shape (N, k)
        Cosine similarity of each node to each of its ``k`` neighbours.
    z_first, z_last : torch.Tensor of shape (N,)
        Standardised similarity of each node's nearest and ``k``-th nearest neighbour.
    size_z : torch.Tensor of shape (N,)
        ``sqrt(2 ln N_c)`` of each node's collection of ``N_c`` nodes.
    n_collections : int
    sorted_index : torch.IntTensor of shape (N, k + 1)
        Derived from ``knn_index``: each node's kNN list with the node itself,
        in increasing id order, so that list overlaps and ranks are binary
        searches (``O(k log k)`` per pair, not ``O(k**2)``).
    sorted_column : torch.ShortTensor of shape (N, k + 1)
        Derived: the column of each ``sorted_index`` entry in ``knn_index``
        (``k`` for the node itself).
    """

    x: Tensor
    knn_index: Tensor
    knn_similarity: Tensor
    loc: Tensor
    scale: Tensor
    z_first: Tensor
    z_last: Tensor
    size_z: Tensor
    n_collections: int
    sorted_index: Tensor = field(init=False, repr=False)
    sorted_column: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.knn_index.shape[0]
        own = torch.arange(n, device=self.knn_index.device)[:, None]
        ids, column = torch.cat([self.knn_index, own], dim=1).sort(dim=1)
        object.__setattr__(self, "sorted_index", ids.int())
        object.__setattr__(self, "sorted_column", column.short())

    @classmethod
    def build(
        cls,
        x: Any,
        knn_index: Any,
        *,
        k: int,
        collections: Optional[Any] = None,
        similarity: Optional[Any] = None,
    ) -> StructureContext:
        """The context of embeddings ``x`` and their kNN table.

        Parameters
        ----------
        x : torch.Tensor of shape (N, D)
            Embeddings, as the face model gives them (any scale, any ``D``).
        knn_index : torch.LongTensor of shape (N, K)
            Neighbours by decreasing cosine similarity, self excluded; the
            first ``min(k, K)`` columns are read. With ``collections``, no
            row may name a node of another collection.
        k : int
            Width of the kNN lists the features read (ranks, overlap,
            ``k``-th neighbour): use the same at training and at prediction.
        collections : torch.LongTensor of shape (N,), optional
            Collection id of each node (``0..C-1``); each is standardised on
            its own. One collection by default.
        similarity : torch.Tensor of shape (N, K), optional
            The cosine similarities of ``knn_index`` (what
            :func:`~linkage_gcn.knn.knn` returns with ``metric="cosine"``):
            read instead of recomputed, so that the features of the kNN links
            (:meth:`link_features`) cost the same at any ``D``. Computed from
            ``x`` when omitted.

        Returns
        -------
        StructureContext

        Raises
        ------
        ValueError
            On non-finite or badly shaped inputs, similarities outside
            ``[-1, 1]``, a kNN table crossing collections, or a collection of
            fewer than two nodes.
        """
        x, _ = check_features(x, name="x", min_samples=2)
        knn_index = check_knn_index(knn_index, x.shape[0], device=x.device)
        k = min(check_int(k, "k", minimum=1), knn_index.shape[1])
        n = x.shape[0]
        u = _unit(x.float())
        index = knn_index[:, :k].contiguous()
        if similarity is not None:  # checked before the expensive steps
            sims_given = _check_similarity(similarity, knn_index.shape, k, x.device)
        if collections is None:
            coll = torch.zeros(n, dtype=torch.long, device=x.device)
        else:
            coll = torch.as_tensor(collections, device=x.device)
            if coll.shape != (n,) or coll.dtype not in (torch.int32, torch.int64):
                raise ValueError(
                    f"collections must be an integer array of shape ({n},), got "
                    f"{tuple(coll.shape)} {coll.dtype}."
                )
            coll = coll.long()
            if bool((coll.index_select(0, index.reshape(-1)).view(n, k) != coll[:, None]).any()):
                raise ValueError(
                    "knn_index links nodes of different collections: search each collection's "
                    "neighbours within it."
                )
        ids, coll = torch.unique(coll, return_inverse=True)
        c = ids.shape[0]
        sizes = torch.bincount(coll, minlength=c)
        if bool((sizes < 2).any()):
            raise ValueError("every collection needs at least two nodes.")
        loc = torch.empty(c, device=x.device)
        scale = torch.empty(c, device=x.device)
        order = torch.argsort(coll, stable=True)
        start = 0
        for ci, size in enumerate(sizes.tolist()):  # one pass per collection, not per node
            rows = order[start : start + size]
            start += size
            loc[ci], scale[ci] = similarity_scale(u.index_select(0, rows))
        loc_n, scale_n = loc.index_select(0, coll), scale.index_select(0, coll)
        sims = _knn_cosines(u, index) if similarity is None else sims_given
        size_z = torch.sqrt(2 * torch.log(sizes.double())).float().index_select(0, coll)
        return cls(
            x=u, knn_index=index, knn_similarity=sims, loc=loc_n, scale=scale_n,
            z_first=(sims[:, 0] - loc_n) / scale_n, z_last=(sims[:, -1] - loc_n) / scale_n,
            size_z=size_z, n_collections=c,
        )  # fmt: skip

    @property
    def num_nodes(self) -> int:
        """``N``."""
        return int(self.x.shape[0])

    @property
    def k(self) -> int:
        """Width of the kNN lists read."""
        return int(self.knn_index.shape[1])

    def pair_features(self, node: Tensor, pivot: Tensor) -> Tensor:
        """The :data:`N_STRUCTURE_FEATURES` features of pairs ``(pivot[i], node[i])``.

        Parameters
        ----------
        node, pivot : torch.LongTensor of shape (V,)
            Global ids, of one collection pair by pair.

        Returns
        -------
        torch.Tensor of shape (V, N_STRUCTURE_FEATURES)
            In the order of :data:`STRUCTURE_FEATURE_NAMES`.
        """
        u = self.x
        cos = _row_dots(u, node, pivot)
        list_p = self.sorted_index.index_select(0, pivot)
        return self._features(node, pivot, cos, self._rank(list_p, pivot, node), list_p)

    def link_features(self, rows: Optional[Tensor] = None) -> Tensor:
        """The features of the kNN links ``i -> knn_index[i, j]`` of nodes ``rows``.

        The same as :meth:`pair_features` of those pairs, without touching the
        embeddings: the similarities are :attr:`knn_similarity` and the ranks
        the columns, so the cost does not grow with ``D``.

        Parameters
        ----------
        rows : torch.LongTensor of shape (R,), optional
            Nodes whose links are wanted (all by default).

        Returns
        -------
        torch.Tensor of shape (R * k, N_STRUCTURE_FEATURES)
            Row-major: the ``k`` links of ``rows[0]``, then those of ``rows[1]``...

        Examples
        --------
        >>> from linkage_gcn.knn import knn
        >>> x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
        >>> index, sim = knn(x, 4)
        >>> ctx = StructureContext.build(x, index, k=4, similarity=sim)
        >>> rows = torch.tensor([0, 5])
        >>> same = ctx.pair_features(index[rows].reshape(-1), rows.repeat_interleave(4))
        >>> torch.allclose(ctx.link_features(rows), same, atol=1e-5)
        True
        """
        k, device = self.k, self.knn_index.device
        if rows is None:
            rows = torch.arange(self.num_nodes, device=device)
        pivot = rows.repeat_interleave(k)
        node = self.knn_index.index_select(0, rows).reshape(-1)
        cos = self.knn_similarity.index_select(0, rows).reshape(-1)
        column = torch.arange(k, device=device).repeat(rows.numel())
        rank_v = (k - column.to(self.x.dtype)) / k
        return self._features(node, pivot, cos, rank_v)

    def score_features(self, scores: Tensor, rows: Optional[Tensor] = None) -> Tensor:
        """What scores of every kNN link say about the kNN links of nodes ``rows``.

        One step of message passing over the kNN graph, in the order of
        :data:`SCORE_FEATURE_NAMES`: a link's own score, its reverse link's,
        the support of the two-step paths through the neighbours both lists
        share, and how strongly each end links at all. A second link scorer
        reading them sees each link's neighbourhood, as a graph convolution
        over the link's subgraph does, at the cost of a list overlap.

        Parameters
        ----------
        scores : torch.Tensor of shape (N, k)
            A score in ``[0, 1]`` of every link ``i -> knn_index[i, j]``.
        rows : torch.LongTensor of shape (R,), optional
            Nodes whose links are wanted (all by default).

        Returns
        -------
        torch.Tensor of shape (R * k, N_SCORE_FEATURES)
            Row-major, as :meth:`link_features`.

        Examples
        --------
        >>> from linkage_gcn.knn import knn
        >>> x = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
        >>> index, _ = knn(x, 4)
        >>> ctx = StructureContext.build(x, index, k=4)
        >>> feats = ctx.score_features(torch.full((40, 4), 0.5))
        >>> tuple(feats.shape), float(feats[0, 0]), float(feats[0, 4])
        ((160, 6), 0.5, 0.5)
        """
        k, n, device = self.k, self.num_nodes, self.knn_index.device
        if tuple(scores.shape) != (n, k) or not scores.is_floating_point():
            raise ValueError(
                f"scores must be a float tensor of the kNN table's shape {(n, k)}, got "
                f"{tuple(scores.shape)} {scores.dtype}."
            )
        if rows is None:
            rows = torch.arange(n, device=device)
        s = scores.to(self.x.dtype)
        pivot = rows.repeat_interleave(k)
        node = self.knn_index.index_select(0, rows).reshape(-1)
        list_p = self.sorted_index.index_select(0, pivot)
        list_v = self.sorted_index.index_select(0, node)
        rows_p = self._in_list_order(s, rows)
        s_p = rows_p.repeat_interleave(k, dim=0)
        s_v = self._in_list_order(s, node)
        found = torch.searchsorted(list_v, list_p).clamp_max(k)
        shared = list_v.gather(1, found) == list_p
        via_v = s_v.gather(1, found)
        paths = torch.where(shared, s_p * via_v, 0.0).sum(1) / (k + 1)
        strongest = torch.where(shared, torch.minimum(s_p, via_v), 0.0).amax(1)
        # p's own entry of its list (column k): found in v's list iff p is v's neighbour
        own_p = self.sorted_column.index_select(0, pivot) == k
        back = torch.where(shared & own_p, via_v, 0.0).sum(1)
        # each list's entries are its k scores and the node's own 1
        mean_p = ((rows_p.sum(1) - 1) / k).repeat_interleave(k)
        return torch.stack(
            [s.index_select(0, rows).reshape(-1), back, paths, strongest, mean_p,
             (s_v.sum(1) - 1) / k], dim=1,
        )  # fmt: skip

    def _in_list_order(self, scores: Tensor, ids: Tensor) -> Tensor:
        """``(len(ids), k + 1)`` link scores of nodes ``ids`` in :attr:`sorted_index` order."""
        own = torch.ones(ids.shape[0], 1, dtype=scores.dtype, device=scores.device)
        column = self.sorted_column.index_select(0, ids).long()
        return torch.cat([scores.index_select(0, ids), own], dim=1).gather(1, column)

    def _features(
        self, node: Tensor, pivot: Tensor, cos: Tensor, rank_v: Tensor,
        list_p: Optional[Tensor] = None,
    ) -> Tensor:  # fmt: skip
        """The features of pairs whose cosines ``cos`` and ranks ``rank_v`` are known."""
        u, k = self.x, self.k
        loc, scale = self.loc.index_select(0, pivot), self.scale.index_select(0, pivot)
        z = (cos - loc) / scale
        zp1, zv1 = self.z_first.index_select(0, pivot), self.z_first.index_select(0, node)
        zpk, zvk = self.z_last.index_select(0, pivot), self.z_last.index_select(0, node)
        if list_p is None:
            list_p = self.sorted_index.index_select(0, pivot)
        list_v = self.sorted_index.index_select(0, node)
        rank_p = self._rank(list_v, node, pivot)
        # each list holds distinct ids: the overlap is how many of p's entries v's holds
        found = torch.searchsorted(list_v, list_p).clamp_max(k)
        inter = (list_v.gather(1, found) == list_p).sum(1).to(u.dtype)
        jaccard = inter / (2 * (k + 1) - inter)
        same = (node == pivot).to(u.dtype)
        zs = torch.stack(
            [z, z - zp1, z - zv1, z - zpk, z - zvk, z - self.size_z.index_select(0, pivot),
             zp1, zv1, zpk, zvk], dim=1,
        ) / _Z_UNIT  # fmt: skip
        return torch.cat(
            [zs[:, :6], rank_v[:, None], rank_p[:, None], jaccard[:, None], zs[:, 6:],
             same[:, None]], dim=1,
        )  # fmt: skip

    def _rank(self, lists: Tensor, owner: Tensor, target: Tensor) -> Tensor:
        """``(k - j) / k`` where ``target[i]`` is ``owner[i]``'s ``j``-th neighbour, else 0.

        ``lists`` are the owners' rows of :attr:`sorted_index`; an owner itself
        (column ``k``) reads 0, as a node absent from the list.
        """
        k = self.k
        at = torch.searchsorted(lists, target[:, None].to(lists.dtype)).clamp_max(k)
        hit = lists.gather(1, at).squeeze(1) == target
        column = self.sorted_column.view(-1).index_select(0, owner * (k + 1) + at.squeeze(1))
        return torch.where(hit, (k - column.to(self.x.dtype)) / k, 0.0)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(num_nodes={self.num_nodes}, k={self.k}, "
            f"collections={self.n_collections})"
        )
