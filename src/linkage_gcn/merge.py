"""Turn predicted link scores into clusters.

Three steps of the L-GCN / CDP inference pipeline, vectorised so that they
scale to millions of edges (no Python loop per node or per edge):

* :func:`pool_pair_scores` pools the directed scores ``pivot -> neighbour``
  into one score per unordered pair (mean or max of the two directions);
* :func:`threshold_components` keeps the pairs scoring at least a threshold
  and returns the connected components;
* :func:`join_clusters` joins the clusters of a merge whose links to each
  other score high on average (average linkage between clusters, a second
  cut that mends people split by the first);
* :func:`attach_clusters` attaches each piece whose links leaving it mostly
  go to one larger cluster (a person's odd photos, left out of their main
  cluster), when those links score high enough on average;
* :func:`separate_groups` splits the clusters holding two nodes of one group
  (the faces of one photo) along their weakest links, so that no cluster
  holds a group twice (a cannot-link between every two nodes of a group);
* :func:`propagate_labels` is the reference pseudo-label propagation
  (``graph_propagation`` of CDP and L-GCN): components larger than
  ``max_size`` are cut again and again with a rising threshold.

Conventions shared by these and the merges of :mod:`linkage_gcn.community`:

* an edge set is an ``edge_index`` of shape (2, E) (the PyTorch Geometric
  convention; a numpy integer array or a torch long tensor) with one score per
  edge, and the number of nodes ``num_nodes`` is always given explicitly;
* every function checks its edge set in one way, before any work: a
  ``num_nodes`` that is an integer >= 1, an ``edge_index`` of shape (2, E)
  holding integer ids in ``[0, num_nodes)``, one finite score per edge (NaN
  and infinity refused); a :class:`ValueError` names the argument at fault;
* cluster labels are a numpy int64 array of shape (num_nodes,), numbered
  ``0 .. C-1`` in the order of their smallest node id (node 0 is in cluster 0,
  the smallest node outside cluster 0 starts cluster 1, and so on), so equal
  partitions give equal arrays;
* every node gets a label: a node in no edge is a cluster of its own.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from ._params import check_param, validation_skipped
from ._validation import (
    ArrayLike,
    as_tensor,
    check_bool,
    check_edge_index,
    check_ids,
    check_int,
    check_labels,
    check_real,
    check_scores,
    to_like,
)

__all__ = [
    "POOLS",
    "attach_clusters",
    "check_step",
    "constrained_components",
    "join_clusters",
    "pool_pair_scores",
    "propagate_labels",
    "separate_groups",
    "threshold_components",
]

#: Pooling operations of :func:`pool_pair_scores`.
POOLS = ("mean", "max")

#: Largest ``num_nodes`` whose pair keys ``i * num_nodes + j`` fit in int64.
_MAX_PAIR_NODES = 3_037_000_499


def pool_pair_scores(
    src: ArrayLike,
    dst: ArrayLike,
    scores: ArrayLike,
    *,
    num_nodes: int,
    pool: str = "mean",
) -> tuple[ArrayLike, ArrayLike]:
    """Pool directed link scores into one score per unordered pair.

    Every node is a pivot once at inference, so a pair ``{i, j}`` can be scored
    twice: as ``i -> j`` (pivot ``i``) and as ``j -> i`` (pivot ``j``). This
    gives each pair the mean (the reference's ``pool='avg'``) or the max of its
    directed scores.

    Parameters
    ----------
    src, dst : array-like or torch.Tensor of int, any shape
        Pivot and neighbour ids, in ``[0, num_nodes)``. All three inputs must
        have the same shape; they are flattened, so an (N, k) table of
        predictions can be passed as is.
    scores : array-like or torch.Tensor of float, same shape
        Directed scores, any finite values (probabilities, logits, cosines).
    num_nodes : int
        Number of nodes N.
    pool : {"mean", "max"}
        ``"mean"``: the mean of the two directions (a pair seen in one
        direction only keeps that score). ``"max"``: the larger one.

    Returns
    -------
    edge_index : same kind as the inputs, int64, shape (2, E')
        One column per unordered pair, with ``edge_index[0] < edge_index[1]``,
        sorted lexicographically.
    pooled : same kind as the inputs, float, shape (E',)
        The pooled scores, in the dtype of ``scores`` (integer or boolean
        scores become float64).

    Raises
    ------
    ValueError
        On inputs of different shapes, ids outside ``[0, num_nodes)``, NaN or
        infinite scores, a ``num_nodes`` that is not an integer >= 1, or an
        unknown ``pool``.

    Notes
    -----
    * Self pairs (``src == dst``) are dropped.
    * Duplicate directed entries (the same ``i -> j`` more than once) are
      first averaged (``"mean"``) or maxed (``"max"``) within their direction,
      then the two directions are pooled, so repeating one direction does not
      outweigh the other. The reference never has duplicates; for its sequential
      ``0.5 * (old + new)`` update the result is the same whenever each
      direction appears at most once.
    * Torch tensors are pooled with torch operations on their device (the
      device of the first tensor among ``src, dst, scores``) and come back as
      tensors there; if no input is a tensor, numpy arrays come back. On a GPU,
      a mean over three or more entries of one direction may differ in the
      last bit between runs (floating-point sums in a different order).

    Examples
    --------
    >>> src = np.array([0, 1, 0, 2, 2])
    >>> dst = np.array([1, 0, 2, 2, 3])
    >>> scores = np.array([0.9, 0.5, 0.4, 1.0, 0.8])
    >>> edge_index, pooled = pool_pair_scores(src, dst, scores, num_nodes=4)
    >>> edge_index
    array([[0, 0, 2],
           [1, 2, 3]])
    >>> pooled
    array([0.7, 0.4, 0.8])
    >>> pool_pair_scores(src, dst, scores, num_nodes=4, pool="max")[1]
    array([0.9, 0.4, 0.8])
    """
    pool = check_param("pool", pool)
    num_nodes = _check_num_nodes(num_nodes)
    (s_t, d_t, w_t), as_numpy = _same_device(src=src, dst=dst, scores=scores)
    if not (s_t.shape == d_t.shape == w_t.shape):
        raise ValueError(
            "src, dst and scores must have the same shape, got "
            f"{tuple(s_t.shape)}, {tuple(d_t.shape)} and {tuple(w_t.shape)}."
        )
    s_t = check_ids(s_t.reshape(-1), num_nodes, name="src", bound="num_nodes=")
    d_t = check_ids(d_t.reshape(-1), num_nodes, name="dst", bound="num_nodes=")
    w_t = check_scores(w_t.reshape(-1), name="scores")
    keep = s_t != d_t
    s_t, d_t, w_t = s_t[keep], d_t[keep], w_t[keep]
    directed, w_t = _pool_by_key(s_t * num_nodes + d_t, w_t, pool)
    s_t, d_t = directed // num_nodes, directed % num_nodes
    pairs, w_t = _pool_by_key(
        torch.minimum(s_t, d_t) * num_nodes + torch.maximum(s_t, d_t), w_t, pool
    )
    edge_index = torch.stack([pairs // num_nodes, pairs % num_nodes])
    return to_like(edge_index, as_numpy), to_like(w_t, as_numpy)


def threshold_components(
    edge_index: ArrayLike,
    scores: ArrayLike,
    num_nodes: int,
    threshold: float,
) -> np.ndarray:
    """Cluster by keeping the edges scoring at least ``threshold``: connected components.

    Parameters
    ----------
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Edges (either orientation; duplicates and self loops are harmless).
    scores : array-like or torch.Tensor of float, shape (E,)
        Edge scores, any finite values (a duplicated pair is linked when any
        of its copies passes).
    num_nodes : int
        Number of nodes N.
    threshold : float
        Keep the edges with ``score >= threshold``. Any finite number: one
        above every score leaves N singletons, one at or below every score
        gives the plain connected components of the graph.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        The connected components of the kept edges, one label per node
        (numbered as the module's conventions say).

    Raises
    ------
    ValueError
        On an edge set that breaks the module's conventions (shape, ids, one
        finite score per edge, ``num_nodes``) or a non-finite ``threshold``.

    Examples
    --------
    >>> edge_index = np.array([[0, 1, 3], [1, 2, 4]])
    >>> scores = np.array([0.9, 0.3, 0.8])
    >>> threshold_components(edge_index, scores, 6, 0.5)
    array([0, 0, 1, 2, 2, 3])
    >>> threshold_components(edge_index, scores, 6, 0.2)
    array([0, 0, 0, 1, 1, 2])
    """
    u, v, _, n = _above(_edges_numpy(edge_index, scores, num_nodes), threshold)
    return _first_appearance(_components(u, v, n)[0])


def constrained_components(
    edge_index: ArrayLike,
    scores: ArrayLike,
    num_nodes: int,
    threshold: float,
    names: Optional[ArrayLike] = None,
    *,
    must_link: bool = True,
) -> np.ndarray:
    """Threshold merge with cannot-link (and must-link) constraints from named nodes.

    The links scoring at least ``threshold`` are taken in decreasing order of
    score (ties: by the smaller then the larger node id of the pair) and each
    unites the clusters of its two nodes, as Kruskal's union-find does,
    **unless both clusters carry a name and the names differ**: such a union
    is refused, so no cluster ever holds two names. With ``must_link`` the
    nodes sharing a name start in one cluster (as if linked with score
    ``+inf``). Without names the result is exactly
    :func:`threshold_components`.

    Parameters
    ----------
    edge_index, scores, num_nodes, threshold
        As :func:`threshold_components`.
    names : array-like of int, shape (N,), optional
        A name (person) id per node, ``-1`` (any negative) for an unnamed
        node (integers, or floats holding whole numbers, as identity labels
        everywhere in the package). ``None``: no constraint.
    must_link : bool
        Put the nodes sharing a name in one cluster even when no kept link
        joins them (``False``: they only never meet a different name).

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        One label per node; no cluster holds two names.

    Raises
    ------
    ValueError
        As :func:`threshold_components`, and on ``names`` that are not one
        integer per node, or a ``must_link`` that is not a boolean.

    Notes
    -----
    Vectorised where the constraints cannot matter: the connected components
    of the kept links (plus the must-links) holding at most one distinct name
    are final clusters at once; only the components holding two or more
    names are merged link by link, in a loop over their links. Unnamed nodes
    between two named groups join the group they are linked to most strongly
    (the first link taken), which is what a person-naming interface wants.

    Examples
    --------
    Two named nodes (0 and 3) joined through unnamed ones; the weakest link
    on the chain between them is the one refused:

    >>> edge_index = np.array([[0, 1, 2], [1, 2, 3]])
    >>> scores = np.array([0.9, 0.6, 0.8])
    >>> constrained_components(edge_index, scores, 4, 0.5)
    array([0, 0, 0, 0])
    >>> constrained_components(edge_index, scores, 4, 0.5, names=[0, -1, -1, 1])
    array([0, 0, 1, 1])
    """
    edges = _above(_edges_numpy(edge_index, scores, num_nodes), threshold)
    group = _check_names(names, edges.n)
    return _constrained_labels(edges, group, check_bool(must_link, "must_link"))


def join_clusters(
    labels: ArrayLike,
    edge_index: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    names: Optional[ArrayLike] = None,
) -> np.ndarray:
    """Join clusters whose links to each other score ``threshold`` or more on average.

    A merge at a high link cut keeps people apart but splits the largest of
    them into pieces: a piece has many links to the rest of its person, each
    scoring just under the cut. This second cut looks at clusters, not links:
    two clusters ``A`` and ``B`` are joined when the mean score of all the
    scored links between them is at least ``threshold`` **and** there are at
    least as many of those links as the smaller cluster has members
    (``min(|A|, |B|)``), so that one strong link between two people does not
    join them (average linkage, where the merge's cut is single linkage). The
    joins are taken once, as the connected components of the cluster pairs
    that pass.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        The clusters of a merge (any integer ids).
    edge_index, scores
        The scored links the merge clustered, all of them (those below its
        cut too), as :func:`threshold_components`.
    threshold : float
        The cut on the mean link score between two clusters.
    names : array-like of int, shape (N,), optional
        Name ids (``-1`` for unnamed), as :func:`constrained_components`:
        two clusters holding different names are never joined.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        The joined clusters, numbered as the module's conventions say.

    Raises
    ------
    ValueError
        On an edge set that breaks the module's conventions, ``labels`` that
        are not one integer per node, or a non-finite ``threshold``.

    Examples
    --------
    Nodes 0-1 and 2-3 are two clusters with four links between them
    averaging 0.7; the singleton 4 has one link, scoring 0.9, to node 3 (as
    many links as it has members):

    >>> edge_index = np.array([[0, 0, 1, 1, 3], [2, 3, 2, 3, 4]])
    >>> scores = np.array([0.8, 0.6, 0.7, 0.7, 0.9])
    >>> join_clusters([0, 0, 1, 1, 2], edge_index, scores, 0.65)
    array([0, 0, 0, 0, 0])
    >>> join_clusters([0, 0, 1, 1, 2], edge_index, scores, 0.75)
    array([0, 0, 1, 1, 1])
    >>> join_clusters([0, 0, 1, 1, 2], edge_index, scores, 0.65, names=[0, -1, 1, -1, -1])
    array([0, 0, 1, 1, 1])
    """
    comp = _first_appearance(np.asarray(check_labels(labels, name="labels"), dtype=np.int64))
    edges = _edges_numpy(edge_index, scores, max(comp.size, 1))
    threshold = check_real(threshold, "threshold")
    group = _check_names(names, edges.n)
    n_clusters = int(comp.max()) + 1 if comp.size else 0
    a, b = comp[edges.u], comp[edges.v]
    between = a != b
    lo, hi = np.minimum(a, b)[between], np.maximum(a, b)[between]
    pair, inverse = np.unique(lo * n_clusters + hi, return_inverse=True)
    count = np.bincount(inverse, minlength=pair.size)
    mean = np.bincount(inverse, edges.s[between], minlength=pair.size) / np.maximum(count, 1)
    sizes = np.bincount(comp, minlength=n_clusters)
    ca, cb = pair // max(n_clusters, 1), pair % max(n_clusters, 1)
    keep = (mean >= threshold) & (count >= np.minimum(sizes[ca], sizes[cb]))
    return _unite_clusters(comp, ca[keep], cb[keep], mean[keep], threshold, group)


def attach_clusters(
    labels: ArrayLike,
    edge_index: ArrayLike,
    scores: ArrayLike,
    threshold: float,
    names: Optional[ArrayLike] = None,
) -> np.ndarray:
    """Attach each cluster to the larger cluster that holds most of its outside links.

    A person's odd photos (profile, poor light, another decade) score below a
    merge's cut against each of their own neighbours, so they end as
    singletons or small pieces beside the person's main cluster, although
    nearly all their links lead into it. :func:`join_clusters` cannot take
    them without joining whole clusters at the same low average. This rule
    looks from the piece instead: a cluster ``A`` is attached to the cluster
    ``B`` that holds the **majority** of the scored links leaving ``A`` (at
    least half of them) when ``B`` is larger than ``A`` and those links
    average ``threshold`` or more. A stranger beside a large cluster has
    links to it too, but the link model scores them low. Attachments are
    taken once, as the connected components of the cluster pairs that pass
    (a piece of a piece reaches the main cluster).

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        The clusters of a merge (any integer ids).
    edge_index, scores
        The scored links the merge clustered, all of them (those below its
        cut too), as :func:`threshold_components`.
    threshold : float
        The cut on the mean score of a piece's links to the cluster it joins.
    names : array-like of int, shape (N,), optional
        Name ids (``-1`` for unnamed), as :func:`constrained_components`:
        two clusters holding different names are never put together.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        The clusters after attachment, numbered as the module's conventions say.

    Raises
    ------
    ValueError
        On an edge set that breaks the module's conventions, ``labels`` that
        are not one integer per node, or a non-finite ``threshold``.

    Examples
    --------
    Nodes 0-3 are one cluster. The singleton 4 has three links into it
    (mean 0.6) and one to the singleton 5; the singleton 6 has one link into
    it, scoring 0.3:

    >>> edge_index = np.array([[0, 1, 2, 0, 1, 2, 4, 6], [1, 2, 3, 4, 4, 4, 5, 0]])
    >>> scores = np.array([0.95, 0.95, 0.95, 0.6, 0.6, 0.6, 0.2, 0.3])
    >>> attach_clusters([0, 0, 0, 0, 1, 2, 3], edge_index, scores, 0.5)
    array([0, 0, 0, 0, 0, 1, 2])
    >>> attach_clusters([0, 0, 0, 0, 1, 2, 3], edge_index, scores, 0.7)
    array([0, 0, 0, 0, 1, 2, 3])
    >>> names = [0, -1, -1, -1, 1, -1, -1]
    >>> attach_clusters([0, 0, 0, 0, 1, 2, 3], edge_index, scores, 0.5, names=names)
    array([0, 0, 0, 0, 1, 2, 3])
    """
    comp = _first_appearance(np.asarray(check_labels(labels, name="labels"), dtype=np.int64))
    edges = _edges_numpy(edge_index, scores, max(comp.size, 1))
    threshold = check_real(threshold, "threshold")
    group = _check_names(names, edges.n)
    n_clusters = int(comp.max()) + 1 if comp.size else 0
    a, b = comp[edges.u], comp[edges.v]
    out = a != b
    # each link leaving a cluster, seen from both of its ends
    src, dst = np.concatenate([a[out], b[out]]), np.concatenate([b[out], a[out]])
    s = np.concatenate([edges.s[out], edges.s[out]])
    pair, inverse = np.unique(src * max(n_clusters, 1) + dst, return_inverse=True)
    count = np.bincount(inverse, minlength=pair.size)
    mean = np.bincount(inverse, s, minlength=pair.size) / np.maximum(count, 1)
    ca, cb = pair // max(n_clusters, 1), pair % max(n_clusters, 1)
    leaving = np.bincount(src, minlength=n_clusters)
    sizes = np.bincount(comp, minlength=n_clusters)
    # the majority cluster of each piece: the most links, then the higher mean (one per piece)
    order = np.lexsort((-mean, -count, ca))
    first = order[np.r_[True, ca[order][1:] != ca[order][:-1]]] if order.size else order
    keep = first[
        (2 * count[first] >= leaving[ca[first]])
        & (sizes[cb[first]] > sizes[ca[first]])
        & (mean[first] >= threshold)
    ]
    return _unite_clusters(comp, ca[keep], cb[keep], mean[keep], threshold, group)


def separate_groups(
    labels: ArrayLike,
    edge_index: ArrayLike,
    scores: ArrayLike,
    groups: ArrayLike,
    names: Optional[ArrayLike] = None,
) -> np.ndarray:
    """Split the clusters that hold two nodes of one group, along their weakest links.

    A group is a set of nodes known to be different people, such as the faces
    of one photo: every two nodes of a group are a cannot-link. Each cluster
    of ``labels`` holding a group twice is merged again from its own nodes:
    the links between its nodes (all of them, under any cut) are taken in
    decreasing order of score (ties: by the smaller then the larger node id)
    and each unites two parts **unless the parts share a group**, as
    Kruskal's union-find does. The nodes sharing a name start in one part
    (a name given by a person outranks the group: a mirror or a collage holds
    one person twice). Other clusters are kept as they are: the result refines
    ``labels``.

    Parameters
    ----------
    labels : array-like of int, shape (N,)
        The clusters of a merge (any integer ids).
    edge_index, scores
        The scored links, as :func:`threshold_components` (all of them: a
        cluster joined by :func:`join_clusters` holds links under the cut).
    groups : array-like of int, shape (N,)
        A group id per node, ``-1`` (any negative) for a node in no group.
    names : array-like of int, shape (N,), optional
        Name ids (``-1`` for unnamed), as :func:`constrained_components`.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        The clusters, numbered as the module's conventions say; no cluster
        holds two nodes of one group unless a name joins them.

    Raises
    ------
    ValueError
        On an edge set that breaks the module's conventions, or ``labels``,
        ``groups`` or ``names`` that are not one integer per node.

    Notes
    -----
    Vectorised where nothing is to split: the clusters holding no group
    twice are found at once; only the links inside the others are taken one
    by one (a loop over them, with each part's groups kept as a set).

    Examples
    --------
    Nodes 0 and 2 come from one photo; the chain 0-1-2 is cut at its weakest
    link, and node 3 stays with the part it is most strongly linked to:

    >>> edge_index = np.array([[0, 1, 2], [1, 2, 3]])
    >>> scores = np.array([0.9, 0.6, 0.8])
    >>> separate_groups([0, 0, 0, 0], edge_index, scores, groups=[7, -1, 7, -1])
    array([0, 0, 1, 1])
    """
    comp = _first_appearance(np.asarray(check_labels(labels, name="labels"), dtype=np.int64))
    edges = _edges_numpy(edge_index, scores, max(comp.size, 1))
    group = np.array(check_labels(groups, n_samples=comp.size, name="groups"), dtype=np.int64)
    name = _check_names(names, comp.size)
    member = np.flatnonzero(group >= 0)
    if member.size < 2:
        return comp
    # clusters holding one group twice: equal (cluster, group) pairs
    order = member[np.lexsort((group[member], comp[member]))]
    c, g = comp[order], group[order]
    twice = c[1:][(c[1:] == c[:-1]) & (g[1:] == g[:-1])]
    if twice.size == 0:
        return comp
    bad = np.zeros(int(comp.max()) + 1, dtype=bool)
    bad[twice] = True
    sel = np.flatnonzero(bad[comp])
    local = np.full(comp.size, -1, dtype=np.int64)
    local[sel] = np.arange(sel.size)
    u, v, s = edges.u, edges.v, edges.s
    inside = bad[comp[u]] & (comp[u] == comp[v]) & (u != v)
    a, b = np.minimum(u, v)[inside], np.maximum(u, v)[inside]
    rank = np.lexsort((b, a, -s[inside]))
    if name is not None:  # a name holds inside its cluster: key (cluster, name)
        name = np.where(name >= 0, comp * (int(name.max()) + 1) + name, -1)[sel]
    root = _group_union_find(local[a[rank]], local[b[rank]], group[sel], name)
    out = comp.copy()
    out[sel] = comp.max() + 1 + root
    return _first_appearance(out)


def propagate_labels(
    edge_index: ArrayLike,
    scores: ArrayLike,
    num_nodes: int,
    *,
    max_size: Optional[int] = 900,
    step: float = 0.6,
    max_iter: int = 100,
    start_threshold: Optional[float] = None,
    return_info: bool = False,
) -> Union[np.ndarray, tuple[np.ndarray, dict[str, Any]]]:
    """Pseudo-label propagation: cut large components with a rising threshold.

    The merge of L-GCN and CDP (``graph_propagation``). Pass 0 takes every
    edge whatever its score: each connected component of at most ``max_size``
    nodes becomes a final cluster, the nodes of larger components remain. Each
    following pass raises the threshold, ``th = th + (1 - th) * step``
    (starting from the lowest score), and computes the connected components of
    the remaining nodes using only the edges between them that score at least
    ``th``; again the components of at most ``max_size`` nodes are final. This
    repeats until no node remains.

    Parameters
    ----------
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Undirected pairs, normally the output of :func:`pool_pair_scores`.
        Either orientation is accepted; a pair given several times is linked
        in a pass when any of its copies passes the threshold. Self loops link
        nothing.
    scores : array-like or torch.Tensor of float, shape (E,)
        Link scores in ``[0, 1]``.
    num_nodes : int
        Number of nodes N.
    max_size : int or None
        Largest final cluster (a component of exactly ``max_size`` nodes is
        final). ``None`` or ``<= 0``: no limit, so pass 0 finalises every
        connected component. The reference defaults: L-GCN 900, LTC 300 on
        MS-Celeb-1M and 50 on DeepFashion.
    step : float
        In ``(0, 1]``: how far each pass moves the threshold towards 1.
        The reference uses 0.6 (0.5 on DeepFashion).
    max_iter : int
        Most threshold passes after pass 0 (``>= 0``). Nodes still in a
        component larger than ``max_size`` after them are finalised as the
        connected components at the last threshold, whatever their size, with
        a :class:`UserWarning`. The same happens earlier when the threshold can
        no longer rise in floating point (it reached 1): every later pass
        would repeat the last one.
    start_threshold : float, optional
        The ``th`` the first threshold pass rises from, in ``[0, 1]``; by
        default the lowest of ``scores``. The reference L-GCN ``test.py`` pools
        the directed scores inside ``graph_propagation``, so its ``th`` starts
        from the lowest *directed* score: pass that to reproduce it exactly.
    return_info : bool
        Also return a dict of diagnostics.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)
        One label per node; no cluster is larger than ``max_size`` unless
        the passes stopped (see ``max_iter``).
    info : dict, only when ``return_info``
        ``"passes"`` (threshold passes run after pass 0), ``"thresholds"``
        (the threshold of each), ``"finalised"`` (nodes finalised by pass 0,
        1, ...; pass 0 includes the nodes in no edge), ``"forced"`` (nodes
        finalised regardless of size when the passes stopped, 0 normally),
        ``"largest_forced"`` (the largest such cluster, 0 when none),
        ``"capped"`` (whether that happened) and ``"num_clusters"``.

    Raises
    ------
    ValueError
        On an edge set that breaks the module's conventions, scores outside
        ``[0, 1]`` (the threshold update assumes the scale of a probability),
        ``step`` outside ``(0, 1]``, ``max_iter < 0`` or a ``start_threshold``
        outside ``[0, 1]``.

    Warns
    -----
    UserWarning
        When the passes stop with nodes still in components larger than
        ``max_size`` (see ``max_iter``).

    Notes
    -----
    Deliberate differences from the reference code:

    * nodes in no edge are singletons (the reference leaves them out);
    * the reference has no iteration cap and loops forever when a component
      larger than ``max_sz`` is held together by edges of score 1 (LTC caps
      at ``max_iter`` passes and then puts every remaining node into one
      cluster); here the passes stop as described under ``max_iter``;
    * a pair given twice with different scores is linked when its best copy
      passes (the reference looks up the score of the last copy);
    * thresholds are computed and compared in float64;
    * ``max_size <= 0`` means no limit (as in the LTC version; the L-GCN
      version would loop forever).

    The reference finds components with a breadth-first search that stops
    early on a component larger than ``max_sz`` or one touching a node already
    set aside. That search yields exactly the connected components of the
    thresholded graph on the remaining nodes (its search can follow edges
    into clusters finalised earlier, but those score below the current
    threshold, since it only rises), so plain connected components give the
    same partition. Its ``Data.links`` returns a copy of the link set, so the
    in-place ``difference_update`` in the search does not delete edges; a port
    that returned the stored set itself would lose edges after pass 0 and get
    results that depend on set order.

    Examples
    --------
    Two triangles joined by a weak edge: too large together for
    ``max_size=3``, so the weak edge is cut at the first threshold
    (``0.1 + 0.9 * 0.6 = 0.64``); node 6 is in no edge.

    >>> edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    >>> scores = np.array([0.9, 0.8, 0.9, 0.7, 0.9, 0.8, 0.1])
    >>> labels, info = propagate_labels(
    ...     edge_index, scores, 7, max_size=3, return_info=True
    ... )
    >>> labels
    array([0, 0, 0, 1, 1, 1, 2])
    >>> info["passes"], info["thresholds"], info["finalised"]
    (1, [0.64], [1, 6])
    >>> propagate_labels(edge_index, scores, 7, max_size=None)
    array([0, 0, 0, 0, 0, 0, 1])
    """
    u, v, s, num_nodes = _edges_numpy(edge_index, scores, num_nodes, unit_interval=True)
    limit = _size_limit(max_size)
    step = check_param("step", step)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    return_info = check_bool(return_info, "return_info")
    if start_threshold is None:
        th = float(s.min()) if s.size else 0.0
    else:
        th = check_real(start_threshold, "start_threshold", minimum=0, maximum=1)

    labels = np.full(num_nodes, -1, dtype=np.int64)
    nodes = np.arange(num_nodes, dtype=np.int64)
    comp, n_comp = _components(u, v, num_nodes)
    final = _small(comp, n_comp, limit)
    labels[final] = comp[final]
    offset = n_comp
    thresholds: list[float] = []
    finalised = [int(final.sum())]
    nodes, comp, u, v, s = _drop_final(final, nodes, comp, u, v, s)
    while nodes.size and len(thresholds) < max_iter:
        new_th = th + (1.0 - th) * step
        if thresholds and new_th == th:
            break  # the threshold is stuck: every further pass would repeat the last one
        th = new_th
        keep = s >= th
        u, v, s = u[keep], v[keep], s[keep]
        comp, n_comp = _components(u, v, nodes.size)
        final = _small(comp, n_comp, limit)
        labels[nodes[final]] = offset + comp[final]
        offset += n_comp
        thresholds.append(th)
        finalised.append(int(final.sum()))
        nodes, comp, u, v, s = _drop_final(final, nodes, comp, u, v, s)

    largest = int(np.bincount(comp).max()) if nodes.size else 0
    if nodes.size:
        labels[nodes] = offset + comp
        _warn_forced(nodes.size, largest, limit, thresholds, max_iter)
    labels = _first_appearance(labels)
    if not return_info:
        return labels
    info = {
        "passes": len(thresholds),
        "thresholds": thresholds,
        "finalised": finalised,
        "forced": int(nodes.size),
        "largest_forced": largest,
        "capped": bool(nodes.size),
        "num_clusters": int(labels.max()) + 1,
    }
    return labels, info


# ----------------------------------------------------------------------------- helpers


def _same_device(**arrays: Any) -> tuple[list[torch.Tensor], bool]:
    """Tensors of all inputs on the first tensor's device, and whether all were numpy."""
    converted = [as_tensor(a, name=name) for name, a in arrays.items()]
    devices = [t.device for t, was_numpy in converted if not was_numpy]
    device = devices[0] if devices else torch.device("cpu")
    return [t.to(device) for t, _ in converted], not devices


def _check_num_nodes(num_nodes: Any) -> int:
    """The one ``num_nodes`` rule of the merges: an integer >= 1 (pair keys fit in int64)."""
    return check_int(num_nodes, "num_nodes", minimum=1, maximum=_MAX_PAIR_NODES)


def _edge_rows(edge_index: ArrayLike, num_nodes: int) -> torch.Tensor:
    """An ``edge_index`` of shape (2, E) with ids in ``[0, num_nodes)``; int64 out."""
    return check_edge_index(edge_index, num_nodes, bound="num_nodes=")


class _Edges(NamedTuple):
    """A validated edge set: rows ``u``, ``v`` (int64), scores ``s`` (float64), ``n`` nodes."""

    u: np.ndarray
    v: np.ndarray
    s: np.ndarray
    n: int


def _edges_numpy(
    edge_index: ArrayLike,
    scores: Optional[ArrayLike],
    num_nodes: Any,
    *,
    name: str = "scores",
    unit_interval: bool = False,
    optional: bool = False,
) -> _Edges:
    """The one check of an edge set of the merges, as numpy arrays.

    ``num_nodes`` an integer >= 1, ``edge_index`` of shape (2, E) holding
    integer ids in ``[0, num_nodes)``, one finite score per edge
    (:func:`~linkage_gcn._validation.check_scores`, in ``[0, 1]`` with
    ``unit_interval``); with ``optional``, ``scores=None`` gives every edge 1.
    Inside :func:`~linkage_gcn._params.skip_validation` (a caller that has
    checked the edge set once, such as a merge composed of others) it only
    converts.
    """
    if validation_skipped():
        e = _numpy(edge_index, "edge_index", np.int64)
        s = np.ones(e.shape[1]) if scores is None and optional else _numpy(scores, name, np.float64)
        return _Edges(e[0], e[1], s.reshape(-1), int(num_nodes))
    n = _check_num_nodes(num_nodes)
    e = _numpy(_edge_rows(edge_index, n), "edge_index", np.int64)
    if scores is None and optional:
        s = np.ones(e.shape[1], dtype=np.float64)
    else:
        w = check_scores(scores, name=name, n_edges=e.shape[1], unit_interval=unit_interval)
        s = _numpy(w, name, np.float64)
    return _Edges(e[0], e[1], s, n)


def _numpy(x: ArrayLike, name: str, dtype: Any) -> np.ndarray:
    """``x`` as a numpy array of ``dtype`` (from the CPU; no copy when it already is one)."""
    return as_tensor(x, name=name)[0].detach().cpu().numpy().astype(dtype, copy=False)


def _above(edges: _Edges, threshold: Any) -> _Edges:
    """The edges scoring at least ``threshold`` (a finite number, checked)."""
    keep = edges.s >= check_real(threshold, "threshold")
    return _Edges(edges.u[keep], edges.v[keep], edges.s[keep], edges.n)


def _pool_by_key(
    keys: torch.Tensor, values: torch.Tensor, pool: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique ``keys`` and the mean or max of the ``values`` sharing each."""
    uniq, inverse = torch.unique(keys, sorted=True, return_inverse=True)
    out = torch.zeros(uniq.numel(), dtype=values.dtype, device=values.device)
    if pool == "max":
        out.scatter_reduce_(0, inverse, values, reduce="amax", include_self=False)
        return uniq, out
    counts = torch.zeros_like(out).scatter_add_(0, inverse, torch.ones_like(values))
    return uniq, out.scatter_add_(0, inverse, values) / counts


def _components(u: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Label the connected components of the graph on ``n`` nodes with edges ``(u, v)``."""
    if u.size == 0:
        return np.arange(n, dtype=np.int64), n
    graph = sp.csr_matrix((np.ones(u.size, dtype=np.bool_), (u, v)), shape=(n, n))
    n_comp, comp = connected_components(graph, directed=False)
    return comp.astype(np.int64, copy=False), int(n_comp)


def _unite_clusters(
    comp: np.ndarray, ca: np.ndarray, cb: np.ndarray, weight: np.ndarray, threshold: float,
    group: Optional[np.ndarray],
) -> np.ndarray:  # fmt: skip
    """Node labels after uniting the cluster pairs ``(ca, cb)`` of ``comp`` (names kept apart).

    Without names, the connected components of the pairs; with names (checked, one per
    node), :func:`constrained_components` on the pairs weighted by ``weight`` (all at
    least ``threshold``), so that no cluster ends with two names.
    """
    n_clusters = int(comp.max()) + 1 if comp.size else 0
    if group is None:
        return _first_appearance(_components(ca, cb, n_clusters)[0][comp])
    # one name per cluster at most (the merge's constraint); -1 for an unnamed cluster
    cluster_name = np.full(n_clusters, -1, dtype=np.int64)
    named = group >= 0
    cluster_name[comp[named]] = group[named]
    united = constrained_components(
        np.stack([ca, cb]), weight, max(n_clusters, 1), threshold,
        cluster_name if n_clusters else None, must_link=False,
    )  # fmt: skip
    return _first_appearance(united[comp])


def _check_names(names: Optional[ArrayLike], num_nodes: int) -> Optional[np.ndarray]:
    """Name ids, one per node (the package's label check): int64 (N,), negatives -> -1."""
    if names is None:
        return None
    group = np.array(check_labels(names, n_samples=num_nodes, name="names"), dtype=np.int64)
    group[group < 0] = -1
    return group


def _constrained_labels(edges: _Edges, group: Optional[np.ndarray], must_link: bool) -> np.ndarray:
    """:func:`constrained_components` of validated, kept edges and checked names."""
    u, v, s, num_nodes = edges
    if group is None:
        return _first_appearance(_components(u, v, num_nodes)[0])
    mu, mv = _name_links(group) if must_link else (u[:0], v[:0])
    comp, n_comp = _components(np.concatenate([u, mu]), np.concatenate([v, mv]), num_nodes)
    named = np.flatnonzero(group >= 0)
    if named.size == 0:
        return _first_appearance(comp)
    width = int(group.max()) + 1
    pairs = np.unique(comp[named] * width + group[named])  # (component, name) pairs
    per_comp = np.bincount(pairs // width, minlength=n_comp)  # distinct names per component
    if not bool((per_comp > 1).any()):
        return _first_appearance(comp)
    conflicted = per_comp[comp] > 1
    sel = np.flatnonzero(conflicted)
    local = np.full(num_nodes, -1, dtype=np.int64)
    local[sel] = np.arange(sel.size)
    inside = conflicted[u]  # a kept link lies inside one component
    lu, lv, ls = local[u[inside]], local[v[inside]], s[inside]
    root = _constrained_union_find(lu, lv, ls, group[sel], must_link)
    labels = comp.copy()
    labels[sel] = n_comp + root
    return _first_appearance(labels)


def _name_links(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Star edges joining every named node to the first node of its name."""
    named = np.flatnonzero(group >= 0)
    if named.size == 0:
        return named, named
    order = named[np.argsort(group[named], kind="stable")]
    g = group[order]
    start = np.r_[0, np.flatnonzero(np.diff(g)) + 1]
    head = np.repeat(order[start], np.diff(np.r_[start, g.size]))
    return head, order


def _find(parent: list[int], i: int) -> int:
    """The root of ``i`` in a union-find forest (path halving)."""
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _constrained_union_find(
    u: np.ndarray, v: np.ndarray, s: np.ndarray, group: np.ndarray, must_link: bool
) -> np.ndarray:
    """Kruskal's union-find over links in decreasing score, refusing two different names.

    Runs only on the components that hold two or more names (a loop over their
    links); returns the root of every node, ``0 .. n-1`` positions.
    """
    n = group.size
    parent = list(range(n))
    name = group.tolist()
    if must_link:
        head, tail = _name_links(group)
        for a, b in zip(head.tolist(), tail.tolist()):
            parent[b] = a
    a, b = np.minimum(u, v), np.maximum(u, v)
    order = np.lexsort((b, a, -s))

    for i, j in zip(a[order].tolist(), b[order].tolist()):
        ri, rj = _find(parent, i), _find(parent, j)
        if ri == rj:
            continue
        ni, nj = name[ri], name[rj]
        if ni >= 0 and nj >= 0 and ni != nj:
            continue  # cannot-link: two different names
        if ri > rj:
            ri, rj = rj, ri
            ni, nj = nj, ni
        parent[rj] = ri
        if ni < 0:
            name[ri] = nj
    return np.array([_find(parent, i) for i in range(n)], dtype=np.int64)


def _group_union_find(
    a: np.ndarray, b: np.ndarray, group: np.ndarray, name: Optional[np.ndarray]
) -> np.ndarray:
    """Union-find over ordered links refusing to unite two parts sharing a group.

    The nodes sharing a name are united first, whatever their groups. Returns
    the root of every node (``0 .. n-1`` positions).
    """
    n = group.size
    parent = list(range(n))
    held: list[set[int]] = [{g} if g >= 0 else set() for g in group.tolist()]

    def unite(ri: int, rj: int) -> None:
        if len(held[ri]) < len(held[rj]):
            ri, rj = rj, ri
        parent[rj] = ri
        held[ri] |= held[rj]
        held[rj] = set()

    if name is not None:
        head, tail = _name_links(name)
        for i, j in zip(head.tolist(), tail.tolist()):
            ri, rj = _find(parent, i), _find(parent, j)
            if ri != rj:
                unite(ri, rj)
    for i, j in zip(a.tolist(), b.tolist()):
        ri, rj = _find(parent, i), _find(parent, j)
        if ri != rj and held[ri].isdisjoint(held[rj]):
            unite(ri, rj)
    return np.array([_find(parent, i) for i in range(n)], dtype=np.int64)


def _small(comp: np.ndarray, n_comp: int, limit: Optional[int]) -> np.ndarray:
    """Mask of the nodes whose component has at most ``limit`` nodes (all when no limit)."""
    if limit is None:
        return np.ones(comp.size, dtype=bool)
    return np.bincount(comp, minlength=n_comp)[comp] <= limit


def _drop_final(final, nodes, comp, u, v, s):
    """Keep the non-final nodes, renumbering the edges between them to ``0 .. R-1``."""
    rest = ~final
    new_id = np.cumsum(rest) - 1
    keep = rest[u] & rest[v]
    return nodes[rest], comp[rest], new_id[u[keep]], new_id[v[keep]], s[keep]


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Renumber labels ``0 .. C-1`` in order of the first node carrying each."""
    if labels.size == 0:
        return labels.astype(np.int64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size, dtype=np.int64)
    return rank[inverse.reshape(-1)]


def _size_limit(max_size: Optional[int]) -> Optional[int]:
    if max_size is None:
        return None
    max_size = check_int(max_size, "max_size")
    return max_size if max_size > 0 else None


def check_step(step: Any, name: str = "step") -> float:
    """Validate the ``step`` of :func:`propagate_labels`: a number in ``(0, 1]``.

    Examples
    --------
    >>> check_step(0.6)
    0.6
    >>> check_step(0)
    Traceback (most recent call last):
    ...
    ValueError: step must be a number in (0, 1], got 0; the threshold would never rise.
    """
    step = check_real(step, name, minimum=0, maximum=1)
    if step == 0:
        raise ValueError(
            f"{name} must be a number in (0, 1], got 0; the threshold would never rise."
        )
    return step


def _warn_forced(
    n_nodes: int, largest: int, limit: Optional[int], thresholds: list[float], max_iter: int
) -> None:
    last = f"{thresholds[-1]!r}" if thresholds else "none (pass 0, every edge)"
    why = (
        f"after max_iter={max_iter} threshold passes"
        if len(thresholds) >= max_iter
        else f"because the threshold cannot rise above {thresholds[-1]!r}"
    )
    warnings.warn(
        f"propagate_labels stopped {why} with {n_nodes} node(s) still in components larger "
        f"than max_size={limit}; they were finalised as the connected components at the last "
        f"threshold ({last}), the largest with {largest} nodes. Raise max_iter or step, "
        "or max_size.",
        UserWarning,
        stacklevel=3,
    )
