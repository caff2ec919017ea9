"""The scoring cascade: a cheap link prior decides most links, the GCN scores the others.

Most links are decided before any graph convolution runs: a stranger far down a
face's neighbour list, a pair much closer than any stranger. A :class:`LinkPrior`
(a small MLP on the embedder-independent pair features of
:mod:`linkage_gcn.structure`, 14 numbers per link) learns the GCN's link
probability from the GCN's own scores on the training set. A second pass
reads those first scores around each link (its reverse link, the paths
through shared neighbours, each end's mean:
:meth:`~linkage_gcn.structure.StructureContext.score_features`), one step of
message passing over the whole kNN graph, and scores it again. At predict time
the prior scores every link; a pivot whose links all fall outside the band
``(low, high)`` keeps the prior's scores, and only the other pivots' subgraphs
are built and scored by the GCN. The band is chosen at fit time on identities
the prior did not learn from, as the widest whose clusters (the model's merge at
its cuts) lose at most :data:`TOLERANCE` B-Cubed F against scoring every link.

:class:`Cascade` holds the prior and the band (the estimator's ``cascade_``);
:func:`fit_cascade` fits both; :meth:`Cascade.split` says which pivots the GCN
must score. Everything runs on the device of its tensors.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .structure import N_SCORE_FEATURES, N_STRUCTURE_FEATURES, StructureContext

__all__ = [
    "MIN_NODES",
    "TOLERANCE",
    "Cascade",
    "CascadeView",
    "LinkPrior",
    "fit_cascade",
    "prior_features",
]

logger = logging.getLogger(__name__)

#: Most B-Cubed F the cascade may lose on held-out training identities (each collection).
TOLERANCE = 5e-4
#: Collections smaller than this are scored by the GCN alone: the savings are small there,
#: and the collection statistics the prior reads are noisy on few faces.
MIN_NODES = 500
#: Band edges tried by :func:`fit_cascade`: ``low`` and ``high`` from this grid, ``low <= high``.
_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
#: Fewest held-out pivots and identities a band is chosen on (fewer: no cascade).
_MIN_PIVOTS, _MIN_IDENTITIES = 200, 10
#: Links whose features and prior scores are computed at once (bounds memory at any size):
#: on a CPU few enough that the prior's activations stay in cache (2x faster than 2**18).
_CHUNK = {"cpu": 1 << 16, "other": 1 << 20}
#: Training of each pass of the prior: Adam steps over minibatches of this many links, at
#: most :data:`_PASSES_OVER` passes over the links (a small training set needs fewer steps).
_STEPS, _BATCH, _LR = 600, 4096, 1e-2
_PASSES_OVER, _MIN_STEPS = 30, 100


class LinkPrior(nn.Module):
    """The GCN's link probability, approximately, from a link's own features.

    ``sigmoid(MLP((f - mean) / scale))`` with two hidden layers of ``hidden``
    units, ``f`` the :data:`~linkage_gcn.structure.N_STRUCTURE_FEATURES`
    features of :meth:`StructureContext.pair_features
    <linkage_gcn.structure.StructureContext.pair_features>` (the first pass),
    followed by the :data:`~linkage_gcn.structure.N_SCORE_FEATURES` features of
    :meth:`~linkage_gcn.structure.StructureContext.score_features` (the second).

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.
    in_features : int
        Width of ``f``.

    Examples
    --------
    >>> prior = LinkPrior(hidden=8)
    >>> prior(torch.zeros(3, N_STRUCTURE_FEATURES)).shape
    torch.Size([3])
    """

    def __init__(self, hidden: int = 64, in_features: int = N_STRUCTURE_FEATURES) -> None:
        super().__init__()
        self.hidden, self.in_features = int(hidden), int(in_features)
        self.register_buffer("mean", torch.zeros(self.in_features))
        self.register_buffer("scale", torch.ones(self.in_features))
        self.net = nn.Sequential(
            nn.Linear(self.in_features, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1),
        )  # fmt: skip

    def logits(self, features: Tensor) -> Tensor:
        """Link logits ``(E,)`` of features ``(E, N_STRUCTURE_FEATURES)``."""
        return self.net((features - self.mean) / self.scale).squeeze(1)

    def forward(self, features: Tensor) -> Tensor:
        """Link probabilities ``(E,)``."""
        return torch.sigmoid(self.logits(features))


@dataclass
class Cascade:
    """A fitted cascade: the link prior and the band of links it leaves to the GCN.

    Attributes
    ----------
    prior : LinkPrior
        The first pass, on each link's structure features.
    low, high : float
        A link whose prior score is at most ``low`` or at least ``high`` is
        decided by the prior; a pivot with any link strictly between them is
        scored by the GCN.
    skipped : float
        Share of the held-out training pivots the prior decided.
    lost : float
        B-Cubed F lost there against scoring every link (the largest over
        collections; negative: gained).
    second : LinkPrior, optional
        The second pass, on the structure features followed by the score
        features of the first pass's scores (``None``: one pass, as in
        cascades saved before it).
    """

    prior: LinkPrior
    low: float
    high: float
    skipped: float
    lost: float
    second: Optional[LinkPrior] = None

    def __repr__(self) -> str:
        return (f"Cascade(low={self.low:g}, high={self.high:g}, skipped={self.skipped:.3f}, "
                f"lost={self.lost:.4f}, passes={1 + (self.second is not None)})")  # fmt: skip

    def prior_scores(self, context: StructureContext) -> Tensor:
        """The prior's ``(N, k)`` scores of every node's links to its ``k`` kNN neighbours.

        The links of ``context.knn_index``, their features read off the context
        (:meth:`~linkage_gcn.structure.StructureContext.link_features`); with a
        second pass, its scores, which read the first pass's
        (:meth:`~linkage_gcn.structure.StructureContext.score_features`).
        """
        first = _prior_scores(self.prior, context)
        return first if self.second is None else _prior_scores(self.second, context, first)

    def split(self, prior: Tensor) -> Tensor:
        """The pivots ``(P,)`` the GCN must score: those with a link inside the band.

        Examples
        --------
        >>> cascade = Cascade(LinkPrior(4), low=0.2, high=0.8, skipped=0.5, lost=0.0)
        >>> cascade.split(torch.tensor([[0.1, 0.9], [0.1, 0.5], [0.05, 0.2]])).tolist()
        [1]
        """
        return ((prior > self.low) & (prior < self.high)).any(1).nonzero().view(-1)

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores: the band, the figures and the passes' tensors."""
        out = {"low": self.low, "high": self.high, "skipped": self.skipped, "lost": self.lost,
               "hidden": self.prior.hidden, "prior": _tensors(self.prior)}  # fmt: skip
        if self.second is not None:
            out["second"] = {"hidden": self.second.hidden, "prior": _tensors(self.second)}
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cascade:
        """The cascade of :meth:`state` (a :class:`ValueError` names what is malformed)."""
        try:
            prior = _pass_of(state, N_STRUCTURE_FEATURES)
            second = state.get("second")
            if second is not None:
                second = _pass_of(second, N_STRUCTURE_FEATURES + N_SCORE_FEATURES)
            values = {k: float(state[k]) for k in ("low", "high", "skipped", "lost")}
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            raise ValueError(f"malformed cascade: {exc}") from None
        if not 0.0 <= values["low"] <= values["high"] <= 1.0:
            raise ValueError(f"malformed cascade: band ({values['low']}, {values['high']}).")
        return cls(prior, **values, second=second)


def _tensors(prior: LinkPrior) -> dict[str, Tensor]:
    return {k: v.cpu() for k, v in prior.state_dict().items()}


def _pass_of(state: dict[str, Any], in_features: int) -> LinkPrior:
    """One pass of a saved cascade (``state["hidden"]``, ``state["prior"]``)."""
    prior = LinkPrior(int(state["hidden"]), in_features)
    prior.load_state_dict(state["prior"])
    return prior.eval()


@dataclass(frozen=True)
class CascadeView:
    """Some of the training rows as a collection of their own, which the band must hold on.

    A subsample has its own kNN lists and statistics, so its structure
    features, and the prior's scores, differ from those of the same rows
    in the whole set: :func:`fit_cascade` scores each view with the priors
    it tries and keeps a band only if it loses at most the tolerance there
    too.

    Attributes
    ----------
    rows : numpy.ndarray of shape (M,)
        The training rows the view holds (ids into the training set), in
        the order of its nodes: whether they are held out follows them.
    context : StructureContext
        The view's own (its kNN table, of the GCN's width ``k``).
    scores : torch.Tensor of shape (M, k)
        The GCN's probabilities of the view's links.
    evaluate : callable
        As ``fit_cascade``'s, on the view's node ids.
    """

    rows: np.ndarray
    context: StructureContext
    scores: Tensor
    evaluate: Callable[[np.ndarray, Tensor], Sequence[float]]


def prior_features(context: StructureContext, pivots: Tensor, nodes: Tensor) -> Tensor:
    """The prior's input ``(E, N_STRUCTURE_FEATURES)`` of links ``pivots[i] -> nodes[i]``.

    Examples
    --------
    >>> from linkage_gcn.knn import knn
    >>> x = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    >>> index, _ = knn(x, 5)
    >>> ctx = StructureContext.build(x, index, k=5)
    >>> prior_features(ctx, torch.tensor([0, 1]), index[[0, 1], 0]).shape
    torch.Size([2, 14])
    """
    return context.pair_features(nodes, pivots)


def _chunked_link_features(
    context: StructureContext, rows: Tensor, first: Optional[Tensor] = None
) -> Iterator[Tensor]:
    """The features of the kNN links of nodes ``rows``, chunk after chunk of links.

    With ``first`` (a first pass's ``(N, k)`` scores), the second pass's:
    the structure features followed by the score features of ``first``.
    """
    device = context.knn_index.device.type
    step = max(1, _CHUNK["cpu" if device == "cpu" else "other"] // context.k)
    for s in range(0, rows.shape[0], step):
        chunk = rows[s : s + step]
        own = context.link_features(chunk)
        yield own if first is None else torch.cat([own, context.score_features(first, chunk)], 1)


@torch.no_grad()
def _prior_scores(
    prior: LinkPrior, context: StructureContext, first: Optional[Tensor] = None
) -> Tensor:
    """``prior``'s ``(N, k)`` scores of the context's kNN links, features built in chunks.

    ``first``: the first pass's scores, when ``prior`` is the second pass.
    """
    n, k = context.knn_index.shape
    device = context.knn_index.device
    prior = prior.to(device).eval()
    # written in place: a list of small outputs between the chunks' large activations
    # fragments the CPU heap (3.5 GB of resident memory more at a million faces)
    out = torch.empty(n * k, device=device)
    start = 0
    for f in _chunked_link_features(context, torch.arange(n, device=device), first):
        out[start : start + f.shape[0]] = prior(f)
        start += f.shape[0]
    return out.view(n, k)


def _train_prior(features: Tensor, targets: Tensor, seed: int, hidden: int) -> LinkPrior:
    """Fit a pass to the GCN's probabilities (cross-entropy with soft targets)."""
    with torch.random.fork_rng(devices=[features.device] if features.is_cuda else []):
        torch.manual_seed(seed)
        prior = LinkPrior(hidden, features.shape[1]).to(features.device)
        prior.mean.copy_(features.mean(0))
        prior.scale.copy_(features.std(0).clamp_min(1e-6))
        opt = torch.optim.Adam(prior.parameters(), lr=_LR)
        n = features.shape[0]
        steps = min(_STEPS, max(_MIN_STEPS, math.ceil(_PASSES_OVER * n / _BATCH)))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            batch = torch.randint(n, (min(_BATCH, n),), device=features.device)
            loss = nn.functional.binary_cross_entropy_with_logits(
                prior.logits(features.index_select(0, batch)), targets.index_select(0, batch)
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return prior.eval()


def fit_cascade(
    context: StructureContext,
    hop1: Tensor,
    scores: Tensor,
    labels: np.ndarray,
    evaluate: Callable[[np.ndarray, Tensor], Sequence[float]],
    *,
    collections: Optional[np.ndarray] = None,
    random_state: int = 0,
    hidden: int = 64,
    tolerance: float = TOLERANCE,
    passes: int = 2,
    views: Sequence[CascadeView] = (),
) -> Optional[Cascade]:
    """Fit a cascade to a trained GCN's scores of its training set.

    Half the identities of each collection (drawn with ``random_state``) train
    the prior on the GCN's scores of their pivots' links (the first pass, then
    the second on the first's scores of every link); on the other half,
    every band of the grid is tried with the one-pass and with the two-pass
    scores, and the prior and band deciding the most held-out pivots whose
    clusters lose at most ``tolerance`` B-Cubed F, in every collection,
    against scoring every link are kept; with ``views``, in each view too.

    Parameters
    ----------
    context : StructureContext
        The training set's (its collections', when several).
    hop1 : torch.LongTensor of shape (N, k)
        Each node's scored neighbours (the GCN's ``k1`` first kNN columns):
        the context's kNN table.
    scores : torch.Tensor of shape (N, k)
        The GCN's probabilities of those links.
    labels : numpy.ndarray of shape (N,)
        Identities.
    evaluate : callable
        ``evaluate(nodes, scores) -> F per collection``: the B-Cubed F of the
        model's merge at its cuts on the subgraph of held-out ``nodes`` (an
        array of node ids), with ``scores`` ``(N, k)`` in place of the GCN's.
    collections : numpy.ndarray of shape (N,), optional
        The collection of each node.
    random_state : int
        Seeds the identity split and the prior's training.
    hidden : int
        The prior's width.
    tolerance : float
        Most B-Cubed F the band may lose on the held-out identities.
    passes : {1, 2}
        Whether a second pass is tried (kept when it decides more pivots).
    views : sequence of CascadeView
        Subsets of the training rows, each as a collection of its own (e.g.
        random quarters and halves): a band must hold on their held-out
        rows as well.

    Returns
    -------
    Cascade or None
        ``None`` when the held-out half is too small to choose a band on
        (fewer than 200 pivots or 10 identities), or no band decides any
        pivot within the tolerance.
    """
    n, k = hop1.shape
    if passes not in (1, 2):
        raise ValueError(f"passes must be 1 or 2, got {passes!r}.")
    if tuple(context.knn_index.shape) != (n, k):
        raise ValueError(
            f"hop1 must be the context's kNN table, of shape {tuple(context.knn_index.shape)}; "
            f"got {(n, k)}."
        )
    rng = np.random.default_rng(random_state)
    groups = np.zeros(n, dtype=np.int64) if collections is None else np.asarray(collections)
    held = np.zeros(n, dtype=bool)
    for c in np.unique(groups):
        ids = np.unique(labels[groups == c])
        out = rng.permutation(ids)[: ids.size // 2]
        held |= (groups == c) & np.isin(labels, out)
    if held.sum() < _MIN_PIVOTS or np.unique(labels[held]).size < _MIN_IDENTITIES:
        logger.info("cascade: too few training identities to choose a band on; none fitted")
        return None
    for v in views:
        m = v.context.num_nodes
        if v.rows.shape != (m,) or tuple(v.scores.shape) != tuple(v.context.knn_index.shape):
            raise ValueError(
                f"a view's rows {v.rows.shape} and scores {tuple(v.scores.shape)} must match "
                f"its context ({m} nodes, kNN table {tuple(v.context.knn_index.shape)})."
            )
        if m and not 0 <= v.rows.min() <= v.rows.max() < n:
            raise ValueError(f"a view's rows must be training rows, in [0, {n}).")
    views = [v for v in views if held[v.rows].any()]
    device = hop1.device
    learn = torch.from_numpy(np.flatnonzero(~held)).to(device)
    with torch.no_grad():
        feats = torch.cat(list(_chunked_link_features(context, learn)))
    targets = scores.index_select(0, learn).reshape(-1).float().clamp(0.0, 1.0)
    prior = _train_prior(feats, targets, random_state, hidden)
    first = _prior_scores(prior, context)
    firsts = [_prior_scores(prior, v.context) for v in views]
    candidates: list[tuple[Optional[LinkPrior], list[Tensor]]] = [(None, [first, *firsts])]
    if passes == 2:
        with torch.no_grad():
            feats = torch.cat(list(_chunked_link_features(context, learn, first)))
        second = _train_prior(feats, targets, random_state + 1, hidden)
        again = [_prior_scores(second, c, f) for c, f in
                 zip([context, *(v.context for v in views)], [first, *firsts])]  # fmt: skip
        candidates.append((second, again))
    del feats
    # the whole set, then each view: its held-out nodes, GCN scores, evaluation
    sets = [(np.flatnonzero(held), scores, evaluate)]
    sets += [(np.flatnonzero(held[v.rows]), v.scores, v.evaluate) for v in views]
    full = [np.asarray(ev(nodes, s), dtype=np.float64) for nodes, s, ev in sets]
    held_t = torch.from_numpy(sets[0][0]).to(device)
    best: Optional[tuple[float, float, float, float]] = None
    kept: Optional[LinkPrior] = None
    for second, estimates in candidates:  # one pass or two: the one deciding more is kept
        for low in _GRID:
            for high in (h for h in _GRID if h >= low):
                decided = [((e <= low) | (e >= high)).all(1) for e in estimates]
                share = float(decided[0].index_select(0, held_t).float().mean())
                if best is not None and share <= best[2]:
                    continue
                lost = max(
                    float((f - np.asarray(ev(nodes, torch.where(d[:, None], e, s)))).max())
                    for (nodes, s, ev), f, d, e in zip(sets, full, decided, estimates)
                )
                if lost <= tolerance and share > 0:
                    best, kept = (low, high, share, lost), second
    if best is None:
        logger.info("cascade: no band keeps the clusters within %.4f B-Cubed F; none fitted",
                    tolerance)  # fmt: skip
        return None
    cascade = Cascade(prior, *best, second=kept)
    logger.info(
        "cascade: the link prior decides %.0f%% of held-out pivots (band %g-%g) for %+.4f "
        "B-Cubed F against scoring every link", 100 * cascade.skipped, cascade.low,
        cascade.high, -cascade.lost,
    )  # fmt: skip
    return cascade
