"""Graph clustering of a weighted edge list: Chinese whispers and Infomap.

Two community-detection merges for link scores (learned ones, or a
similarity), the alternatives to the threshold-and-components merges of
:mod:`linkage_gcn.merge`:

* :func:`chinese_whispers`: Biemann's Chinese whispers as dlib runs it for
  face clustering (``dlib/clustering/chinese_whispers.h``), vectorised: no
  Python loop per node or per edge;
* :func:`infomap`: the map equation through the ``infomap`` package, an
  optional dependency (GPL-3.0): ``pip install linkage-gcn[infomap]``.

They follow the conventions of :mod:`linkage_gcn.merge` and check their
input with its edge check: an ``edge_index`` of shape (2, E) (numpy or
torch), one finite weight per edge (``weights=None``: weight 1),
``num_nodes`` given explicitly; labels come back as a numpy int64 array
numbered ``0 .. C-1`` in order of the smallest node of each cluster, and a
node in no edge is a cluster of its own.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import scipy.sparse as sp

from ._params import skip_validation
from ._validation import ArrayLike, RandomStateLike, as_generator, check_bool, check_int, check_real
from .merge import (
    _above,
    _check_names,
    _components,
    _constrained_labels,
    _Edges,
    _edges_numpy,
    _first_appearance,
    _name_links,
)

__all__ = [
    "INFOMAP_INSTALL_HINT",
    "chinese_whispers",
    "consensus_chinese_whispers",
    "constrained_chinese_whispers",
    "infomap",
]

#: What the ImportError of :func:`infomap` tells the user to run.
INFOMAP_INSTALL_HINT = (
    "pip install 'linkage-gcn[infomap]' (or pip install infomap); note that the infomap "
    "package is licensed GPL-3.0-or-later, which is why it is not a required dependency of "
    "this MIT-licensed library"
)


def chinese_whispers(
    edge_index: ArrayLike,
    weights: Optional[ArrayLike],
    num_nodes: int,
    *,
    max_iter: int = 100,
    n_blocks: int = 16,
    random_state: RandomStateLike = None,
    return_info: bool = False,
) -> Union[np.ndarray, tuple[np.ndarray, dict[str, Any]]]:
    """Chinese whispers graph clustering (Biemann 2006), as in dlib, vectorised.

    Every node starts with a label of its own. In each round, every node in
    turn, in a random order, takes the label with the largest summed weight
    among its incident edges (ties broken at random); a self loop adds its
    weight to the node's own current label. This is dlib's
    ``chinese_whispers`` (which face_recognition and dlib's
    ``chinese_whispers_clustering`` run on the graph of all pairs of faces
    closer than a cut, every edge of weight 1 and a self loop on every face).

    Vectorised: a round shuffles the nodes and cuts the shuffled order into
    ``n_blocks`` blocks of consecutive nodes; the nodes of one block take
    their new labels at once, and every block sees the labels set by the
    blocks before it. With one node per block this is exactly the
    sequential algorithm; with blocks of many nodes it reaches the same
    quality on face graphs (measured on LFW, see Notes). The rounds stop
    when one leaves every label unchanged (a fixed point), or after
    ``max_iter`` rounds.

    The edges become a CSR adjacency once; a block sums its nodes' label
    weights with scipy's sparse duplicate summing (each node's arcs, their
    columns replaced by the neighbours' labels: a sort of each node's few
    labels and a segment sum), and only for the nodes whose neighbourhood
    changed since their last update, or whose last update was a tie: any
    other node would find the same label again. Late rounds, where few
    labels move, cost little.

    Parameters
    ----------
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Undirected edges, either orientation. A pair listed twice counts
        twice (its weights add up, as in dlib); a self loop ``(i, i)``
        counts once, for node ``i``'s own current label.
    weights : array-like or torch.Tensor of float, shape (E,), or None
        Finite edge weights (link scores, similarities); ``None`` gives every
        edge weight 1 (dlib's face clustering). dlib accepts any finite
        weight, so does this; non-negative weights are the usual case.
    num_nodes : int
        Number of nodes N.
    max_iter : int
        Most rounds (each updates every node once); dlib runs 100 and has
        no early stop. ``0`` leaves every node a singleton.
    n_blocks : int
        Blocks per round: the nodes of one block are updated together. More
        blocks are closer to the sequential order and cost a few more array
        operations per round; ``1`` is synchronous label propagation, which
        oscillates (do not use it).
    random_state : None, int, numpy.random.Generator or RandomState
        Seed of the node order and of the tie-breaking; the result is
        deterministic given an int.
    return_info : bool
        Also return a dict of diagnostics.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)
        The final label of each node, renumbered as the module says.
    info : dict, only when ``return_info``
        ``"rounds"`` (rounds run), ``"converged"`` (whether the last round
        changed no label) and ``"changed"`` (labels changed in each round).

    Raises
    ------
    ValueError
        On an edge set that breaks the conventions (shape, ids, one finite
        weight per edge, ``num_nodes``), or an invalid ``max_iter``,
        ``n_blocks``, ``random_state`` or ``return_info``.

    See Also
    --------
    infomap : the map equation, better on graphs with many edges per node.
    linkage_gcn.merge.threshold_components : connected components.

    Notes
    -----
    Differences from dlib, all deliberate:

    * dlib picks ``N * num_iterations`` nodes at random *with* replacement;
      here a round is a random permutation, so every node is updated once per
      round;
    * dlib breaks a tie for the largest label weight in favour of the
      smallest label id; here at random, so that no node id is favoured;
    * dlib always runs its 100 rounds; here the rounds stop at a fixed point.

    The random draws are a permutation per round, then per block one
    uniform number per distinct label of each of its nodes (nodes, then
    labels, in increasing id; the largest draw among the tied labels wins),
    whether or not a node is recomputed. Skipping the nodes whose
    neighbourhood did not change leaves the result as it was: linkage-gcn
    0.2.0, which recomputed every node of every block, gives the same
    partition for the same ``random_state`` (up to the order in which a
    label's weights are added, which the tie tolerance of 1e-12, relative,
    absorbs). At a million nodes and 14M kNN-like edges, on one core, a run
    takes 4-5 s against 28 s for 0.2.0's, and the five-run merge of
    :func:`consensus_chinese_whispers` 20 s against 165 s
    (``examples/benchmarks/bench_merge.py``).

    Measured on the LFW dlib descriptors (test half, 6,618 faces, all pairs
    closer than a Euclidean cut plus self loops, weight 1, as dlib's
    ``chinese_whispers_clustering``), B-Cubed F of dlib itself / of a
    sequential Python version with random ties (five seeds) / of this
    function (three seeds): 0.933 / 0.931-0.932 / 0.932-0.934 at cut 0.45,
    0.928 / 0.928-0.931 / 0.927-0.931 at 0.475 and 0.899 / 0.899-0.902 /
    0.900-0.903 at 0.5, in 8-15 rounds, faster than dlib on the same edges
    (timings: ``docs/scaling.md``).

    Examples
    --------
    Two triangles joined by a weak edge; node 6 is in no edge.

    >>> edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    >>> weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    >>> chinese_whispers(edge_index, weights, 7, random_state=0)
    array([0, 0, 0, 1, 1, 1, 2])
    >>> labels, info = chinese_whispers(edge_index, None, 7, random_state=0, return_info=True)
    >>> info["converged"]
    True
    """
    u, v, w, num_nodes = _weighted(edge_index, weights, num_nodes)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    n_blocks = check_int(n_blocks, "n_blocks", minimum=1)
    rng = as_generator(random_state)
    return_info = check_bool(return_info, "return_info")
    raw, changed = _cw_labels(_adjacency(u, v, w, num_nodes), max_iter, n_blocks, rng)
    labels = _first_appearance(raw)
    if not return_info:
        return labels
    converged = not u.size or (bool(changed) and changed[-1] == 0)
    return labels, {"rounds": len(changed), "converged": converged, "changed": changed}


def infomap(
    edge_index: ArrayLike,
    weights: Optional[ArrayLike],
    num_nodes: int,
    *,
    random_state: RandomStateLike = None,
    num_trials: int = 1,
    two_level: bool = True,
    directed: bool = False,
    markov_time: float = 1.0,
    level: int = 1,
) -> np.ndarray:
    """Cluster a weighted graph with Infomap (the map equation).

    Runs the ``infomap`` package (Rosvall and Bergstrom's map equation; the
    merge of the face-clustering-by-Infomap line of work on a kNN graph)
    and returns its modules as cluster labels.

    Parameters
    ----------
    edge_index : array-like or torch.Tensor of int, shape (2, E)
        Edges. Undirected by default (either orientation; a pair listed
        twice has its weights added). Self loops are dropped: a node's own
        flow says nothing about its module, and Infomap versions differ in
        how they count it.
    weights : array-like or torch.Tensor of float, shape (E,), or None
        Non-negative finite weights (link scores, similarities), ``None`` for
        weight 1; edges of weight 0 are dropped.
    num_nodes : int
        Number of nodes N.
    random_state : None, int, numpy.random.Generator or RandomState
        Seeds Infomap (its ``seed`` is drawn from this): the result is
        deterministic given an int.
    num_trials : int
        Independent Infomap runs; the one with the shortest code length is
        kept (Infomap's ``--num-trials``; its default is 1). A single run can
        now and then land in a clearly worse partition: a few trials make the
        result stable at a few times the cost.
    two_level : bool
        Optimise a flat partition (Infomap's ``--two-level``), the usual
        choice for clustering; ``False`` finds a hierarchy and ``level``
        chooses the modules to return.
    directed : bool
        Treat each column as a directed link ``edge_index[0] ->
        edge_index[1]`` (e.g. a kNN graph, each item pointing to its
        neighbours; Infomap's ``--directed``).
    markov_time : float
        Infomap's ``--markov-time``: above 1 gives fewer, larger modules.
    level : int
        With ``two_level=False``, the level of the hierarchy returned: ``1``
        the top (coarsest) modules, ``-1`` the finest.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        Infomap's modules as labels; a node in no kept edge is a singleton.

    Raises
    ------
    ModuleNotFoundError
        When the ``infomap`` package is not installed (the message says how
        to install it).
    ValueError
        On an edge set that breaks the conventions, negative weights, or
        invalid options.

    See Also
    --------
    chinese_whispers : no extra dependency.

    Notes
    -----
    ``infomap`` is licensed GPL-3.0-or-later. It is imported only when this
    function runs, so linkage-gcn itself (MIT) neither requires nor links it;
    install the extra (``pip install 'linkage-gcn[infomap]'``) to use it.
    Infomap runs silently (no output on stdout). The links are handed to
    Infomap as one array where the installed version accepts it.

    Examples
    --------
    >>> edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    >>> weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    >>> infomap(edge_index, weights, 7, random_state=0)  # doctest: +SKIP
    array([0, 0, 0, 1, 1, 1, 2])
    """
    u, v, w, num_nodes = _weighted(edge_index, weights, num_nodes)
    if w.size and bool((w < 0).any()):
        raise ValueError(
            f"weights must be non-negative for Infomap, got {int((w < 0).sum())} negative "
            f"value(s) (min {float(w.min())!r})."
        )
    num_trials = check_int(num_trials, "num_trials", minimum=1)
    two_level = check_bool(two_level, "two_level")
    directed = check_bool(directed, "directed")
    markov_time = check_real(markov_time, "markov_time", minimum=0, inclusive=False)
    level = check_int(level, "level")
    rng = as_generator(random_state)
    module = _import_infomap()

    keep = (u != v) & (w > 0)
    u, v, w = u[keep], v[keep], w[keep]
    labels = np.full(num_nodes, -1, dtype=np.int64)
    if u.size:
        seed = int(rng.integers(1, 2**31 - 1))
        im = module.Infomap(
            two_level=two_level,
            directed=directed,
            markov_time=markov_time,
            num_trials=num_trials,
            seed=seed,
            silent=True,
        )
        _add_links(im, u, v, w)
        nodes, modules = _run_modules(im, level)
        labels[nodes] = modules - modules.min()
    alone = labels < 0
    labels[alone] = labels.max() + 1 + np.arange(int(alone.sum()))
    return _first_appearance(labels)


def consensus_chinese_whispers(
    edge_index: ArrayLike,
    weights: Optional[ArrayLike],
    num_nodes: int,
    *,
    n_runs: int = 5,
    random_state: RandomStateLike = None,
    max_iter: int = 100,
    n_blocks: int = 16,
) -> np.ndarray:
    """Chinese whispers made stable: the links that most of several runs agree on.

    A single run of :func:`chinese_whispers` depends on its node order: on a
    large identity held together by many similar links (hundreds of photos of
    one person) one order can split it in two halves, another not. This runs
    it ``n_runs`` times with different orders, keeps an edge when its two ends
    share a cluster in a strict majority of the runs, and returns the
    connected components of the kept edges. It costs ``n_runs`` runs (on one
    adjacency, built once) and needs no parameter beyond them.

    Parameters
    ----------
    edge_index, weights, num_nodes
        As :func:`chinese_whispers`.
    n_runs : int
        Runs to vote (odd numbers avoid ties; 1 is plain Chinese whispers,
        each cluster split into its connected pieces).
    random_state : None, int, numpy.random.Generator or RandomState
        Seeds the runs; deterministic given an int.
    max_iter, n_blocks
        Of each run, as :func:`chinese_whispers`.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)
        The connected components of the links the majority kept.

    Raises
    ------
    ValueError
        As :func:`chinese_whispers`, and on an ``n_runs`` below 1.

    Notes
    -----
    Measured on learned link scores of the LFW test half (6,618 faces): at
    cuts from 0.75 to 0.875, plain Chinese whispers gave B-Cubed F 0.923 to
    0.946 and pairwise F 0.769 to 0.988 depending on the run (one run split
    the 530 photos of the largest identity in two), five-run consensus 0.942
    to 0.945 and 0.981 to 0.986.

    Examples
    --------
    >>> edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    >>> weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.1])
    >>> consensus_chinese_whispers(edge_index, weights, 7, random_state=0)
    array([0, 0, 0, 1, 1, 1, 2])
    """
    u, v, w, num_nodes = _weighted(edge_index, weights, num_nodes)
    n_runs = check_int(n_runs, "n_runs", minimum=1)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    n_blocks = check_int(n_blocks, "n_blocks", minimum=1)
    rng = as_generator(random_state)
    graph = _adjacency(u, v, w, num_nodes)  # built once, for every run
    votes = np.zeros(u.size, dtype=np.int64)
    for _ in range(n_runs):
        seed = int(rng.integers(np.iinfo(np.int32).max))
        labels, _ = _cw_labels(graph, max_iter, n_blocks, np.random.default_rng(seed))
        votes += labels[u] == labels[v]
    keep = (2 * votes > n_runs) & (u != v)
    return _first_appearance(_components(u[keep], v[keep], num_nodes)[0])


def constrained_chinese_whispers(
    edge_index: ArrayLike,
    scores: ArrayLike,
    num_nodes: int,
    threshold: float,
    names: Optional[ArrayLike] = None,
    *,
    n_runs: int = 5,
    random_state: RandomStateLike = None,
) -> np.ndarray:
    """:func:`consensus_chinese_whispers` of the links above a cut, with names as constraints.

    The merge rule of ``LinkageClusterer(merge="chinese-whispers")`` when some
    items carry names (a person named by the user): first the components of
    :func:`~linkage_gcn.merge.constrained_components` at ``threshold``, where
    no union joins two different names (cannot-link, inside the merge);
    then Chinese whispers, ``n_runs`` runs voting, on the links scoring at
    least ``threshold`` inside each component, weighted by their scores (it can
    only split a component); last, the pieces that carry the same name are
    joined again, so a named item never leaves its person (must-link).
    Without names it equals ``consensus_chinese_whispers`` of the links
    scoring at least ``threshold``.

    Parameters
    ----------
    edge_index, scores, num_nodes, threshold, names
        As :func:`~linkage_gcn.merge.constrained_components` (``names``: one
        int per item, ``-1`` for no name).
    n_runs : int
        Chinese-whispers runs that vote.
    random_state : None, int, numpy.random.Generator or RandomState
        Seeds the runs.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)
        One label per node; no cluster holds two names, and the nodes of one
        name share a cluster.

    Raises
    ------
    ValueError
        As :func:`~linkage_gcn.merge.constrained_components`, or an ``n_runs``
        below 1.

    Examples
    --------
    Two triangles joined by a strong link, whose ends carry different names:

    >>> edge_index = np.array([[0, 0, 1, 3, 3, 4, 2], [1, 2, 2, 4, 5, 5, 3]])
    >>> scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.95])
    >>> constrained_chinese_whispers(edge_index, scores, 6, 0.5, random_state=0)
    array([0, 0, 0, 0, 0, 0])
    >>> names = np.array([-1, -1, 0, 1, -1, -1])
    >>> constrained_chinese_whispers(edge_index, scores, 6, 0.5, names, random_state=0)
    array([0, 0, 0, 1, 1, 1])
    """
    u, v, s, n = _above(_edges_numpy(edge_index, scores, num_nodes), threshold)
    group = _check_names(names, n)
    n_runs = check_int(n_runs, "n_runs", minimum=1)
    rng = as_generator(random_state)
    if group is not None and bool((group >= 0).any()):
        comp = _constrained_labels(_Edges(u, v, s, n), group, must_link=True)
        keep = comp[u] == comp[v]  # links inside the constrained components
        u, v, s = u[keep], v[keep], s[keep]
    with skip_validation():  # the edge set was checked once, above
        labels = consensus_chinese_whispers(np.stack([u, v]), s, n, n_runs=n_runs, random_state=rng)
    if group is None or not bool((group >= 0).any()):
        return labels
    # join the pieces that hold the same name (the constrained components keep names apart)
    head, tail = _name_links(group)
    joined, _ = _components(labels[head], labels[tail], int(labels.max()) + 1)
    return _first_appearance(joined[labels])


# ----------------------------------------------------------------------------- helpers


def _weighted(edge_index: ArrayLike, weights: Optional[ArrayLike], num_nodes: Any) -> _Edges:
    """The edge check of :mod:`linkage_gcn.merge` for ``weights`` (``None``: weight 1)."""
    return _edges_numpy(edge_index, weights, num_nodes, name="weights", optional=True)


def _adjacency(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int) -> sp.csr_matrix:
    """Both directions of every edge as CSR rows (a self loop once), weights as values.

    Row ``i`` holds node ``i``'s arcs, its neighbours as column ids in
    increasing order; a pair listed twice is one arc of the summed weight.
    Ids are int32 where they fit.
    """
    loop = u == v
    small = max(n, 2 * u.size) < np.iinfo(np.int32).max
    ids = np.int32 if small else np.int64
    src = np.concatenate([u, v[~loop]]).astype(ids, copy=False)
    dst = np.concatenate([v, u[~loop]]).astype(ids, copy=False)
    return sp.csr_matrix((np.concatenate([w, w[~loop]]), (src, dst)), shape=(n, n))


def _cw_labels(
    graph: sp.csr_matrix, max_iter: int, n_blocks: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[int]]:
    """Chinese whispers on the adjacency of :func:`_adjacency`: raw labels, changes per round.

    A round draws a permutation of the nodes and cuts it into ``n_blocks``
    blocks (position ``i`` of the permutation is in block ``i * n_blocks //
    N``); block by block, in order, every node of the block with an arc takes
    the label of largest summed weight among its arcs, from the labels as the
    blocks before left them, ties broken by one uniform draw per distinct label
    of each node of the block (nodes in increasing id, labels in increasing
    id; the largest draw among the tied labels wins, the smallest label among
    equal draws). The labels come back unnumbered (not renumbered).
    """
    n = graph.shape[0]
    labels = np.arange(n, dtype=graph.indices.dtype)
    changed: list[int] = []
    if graph.nnz == 0:
        return labels, changed
    n_blocks = min(n_blocks, n)
    # block b: the positions i of the permutation with i * n_blocks // n == b
    bounds = -(-np.arange(n_blocks + 1, dtype=np.int64) * n // n_blocks)
    degree = np.diff(graph.indptr)
    has_arcs = degree > 0
    every_node = bool(has_arcs.all())
    state = _CWState(
        stale=has_arcs.copy(),
        tie=np.zeros(n, dtype=bool),
        groups=np.zeros(n, dtype=np.int64),
        degree=degree,
    )
    for _ in range(max_iter):
        order = rng.permutation(n)
        moved = 0
        for b in range(n_blocks):
            rows = np.sort(order[bounds[b] : bounds[b + 1]])
            if not every_node:
                rows = rows[has_arcs[rows]]
            if rows.size:
                moved += _cw_block(graph, rows, labels, state, rng)
        changed.append(moved)
        if moved == 0:
            break
    return labels, changed


class _CWState(NamedTuple):
    """What each node's last update found, so that an unchanged neighbourhood is not redone.

    ``stale``: a neighbour's label changed since (or never updated);
    ``tie``: it found two or more labels of the largest weight; ``groups``:
    the distinct labels among its arcs (its share of the block's draws);
    ``degree``: its arcs.
    """

    stale: np.ndarray
    tie: np.ndarray
    groups: np.ndarray
    degree: np.ndarray


def _cw_block(
    graph: sp.csr_matrix,
    rows: np.ndarray,
    labels: np.ndarray,
    state: _CWState,
    rng: np.random.Generator,
) -> int:
    """Update the nodes ``rows`` (increasing ids, each with an arc) at once; labels in place.

    A node whose neighbours kept their labels since its last update, and
    which found no tie then, would find the same label and the same number of
    distinct labels again: only the others (``redo``) are computed, from
    their arcs' weights summed per neighbour's label (:func:`_label_weights`).
    The block's draws are taken as the sequential
    definition takes them, computed or not. Returns the number of labels
    changed.
    """
    redo_at = np.flatnonzero(state.stale[rows] | state.tie[rows])
    redo = rows[redo_at]
    new = np.empty(0, dtype=labels.dtype)
    tied_rows = np.empty(0, dtype=np.int64)
    if redo.size:
        label, sums, count = _label_weights(graph, redo, labels, state.degree[redo])
        starts = np.cumsum(count) - count
        best = np.repeat(np.maximum.reduceat(sums, starts), count)
        # sums of the same weights in another order may differ in the last bits
        tied = sums >= best - 1e-12 * np.abs(best)
        n_tied = np.add.reduceat(tied, starts, dtype=np.int64)
        # the first tied label of each node: its new label unless it has a tie
        new = label[np.flatnonzero(tied)[np.cumsum(n_tied) - n_tied]]
        tied_rows = np.flatnonzero(n_tied > 1)
        state.groups[redo] = count
        state.tie[redo] = n_tied > 1
        state.stale[redo] = False
    total = int(state.groups[rows].sum())
    if tied_rows.size == 0:
        rng.random(total)  # the block's draws, which decide nothing here
    else:
        draws = rng.random(total)
        # the draws of a tied node's labels: its offset among the block's nodes, then in order
        offset = np.cumsum(state.groups[rows]) - state.groups[rows]
        first, size = starts[tied_rows], count[tied_rows]
        group = _ranges(first, size)
        draw = np.repeat(offset[redo_at[tied_rows]] - first, size) + group
        priority = np.where(tied[group], draws[draw], -1.0)
        ends = np.cumsum(size)
        top = np.repeat(np.maximum.reduceat(priority, ends - size), size)
        # the first label of the largest draw (two equal draws: probability ~1e-16)
        win = np.flatnonzero(priority == top)
        first_win = win[np.searchsorted(win, ends - size)]
        new[tied_rows] = label[group[first_win]]
    if redo.size == 0:
        return 0
    move = labels[redo] != new
    moved = redo[move]
    if moved.size:
        labels[moved] = new[move]
        # every neighbour of a node that changed must look again (a self loop: the node itself)
        state.stale[graph.indices[_ranges(graph.indptr[moved], state.degree[moved])]] = True
    return int(moved.size)


#: Arcs from which a block's label weights are summed by scipy's per-row sort (below: numpy).
_SCIPY_ARCS = 50_000


def _label_weights(
    graph: sp.csr_matrix, rows: np.ndarray, labels: np.ndarray, degree: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct labels among each row's arcs (increasing), their summed weights, counts.

    Rows in the order given, each with an arc. Few arcs: one stable sort by
    (row, label) in numpy (scipy's per-call overhead would dominate); many:
    scipy's ``sum_duplicates`` (a sort of each row's few labels and a segment
    sum), faster than one large sort.
    """
    at = _ranges(graph.indptr[rows], degree)  # the rows' arcs, row by row
    if at.size >= _SCIPY_ARCS:
        indptr = np.concatenate([[0], np.cumsum(degree)])
        weights = sp.csr_matrix(
            (graph.data[at], labels[graph.indices[at]], indptr), shape=(rows.size, graph.shape[1])
        )
        weights.sum_duplicates()
        return weights.indices, weights.data, np.diff(weights.indptr)
    row = np.repeat(np.arange(rows.size, dtype=np.int64), degree)
    label = labels[graph.indices[at]]
    order = np.argsort(row * graph.shape[0] + label, kind="stable")
    at, row, label = at[order], row[order], label[order]
    head = np.ones(label.size, dtype=bool)
    head[1:] = (label[1:] != label[:-1]) | (row[1:] != row[:-1])
    first = np.flatnonzero(head)
    count = np.bincount(row[first], minlength=rows.size)
    return label[first], np.add.reduceat(graph.data[at], first), count


def _ranges(first: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The concatenated ranges ``first[k] .. first[k] + size[k] - 1`` (int64)."""
    first = first.astype(np.int64, copy=False)
    size = size.astype(np.int64, copy=False)
    return np.repeat(first - (np.cumsum(size) - size), size) + np.arange(int(size.sum()))


def _import_infomap() -> Any:
    try:
        import infomap as module
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"linkage_gcn.community.infomap needs the optional infomap package: "
            f"{INFOMAP_INSTALL_HINT}."
        ) from exc
    return module


def _add_links(im: Any, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> None:
    """Give Infomap the links: as one (E, 3) array where supported, else link by link."""
    try:
        im.add_links(np.column_stack([u, v, w]).astype(np.float64))
    except (TypeError, ValueError):  # pragma: no cover - infomap < 2.15 iterates over tuples
        im.add_links(zip(u.tolist(), v.tolist(), w.tolist()))


def _own_swig_types() -> None:
    """Make infomap's Python classes wrap the C++ types it shares with other SWIG packages.

    SWIG-built packages (infomap, faiss) share one runtime type table, and
    the package imported last registers its classes for the C++ types they
    both use (iterators, vectors). Read through faiss's classes, infomap's
    results fail (``'Float64Vector' object is not iterable``) or crash the
    interpreter (faiss's iterator releases the GIL). Registering infomap's
    own classes again, just before reading its results, works whatever the
    import order; faiss keeps working under infomap's classes.
    """
    shadow = sys.modules.get("infomap._swig")
    core = getattr(shadow, "_infomap", None)
    if core is None:  # pragma: no cover - another infomap layout: nothing to reclaim
        return
    for name, cls in vars(shadow).items():
        register = getattr(core, f"{name}_swigregister", None)
        if isinstance(cls, type) and callable(register):
            register(cls)


def _run_modules(im: Any, level: int) -> tuple[np.ndarray, np.ndarray]:
    """Run Infomap (quietly) and return its node ids and their module ids as arrays."""
    with contextlib.redirect_stdout(io.StringIO()):
        result = im.run()
    _own_swig_types()
    if result is not None and callable(getattr(result, "modules", None)):
        modules = result.modules(level)  # infomap >= 2.15
    else:  # pragma: no cover - older infomap 2.x
        modules = im.get_modules(level)
    nodes = np.fromiter(modules.keys(), dtype=np.int64, count=len(modules))
    ids = np.fromiter(modules.values(), dtype=np.int64, count=len(modules))
    return nodes, ids
