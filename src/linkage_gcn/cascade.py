"""The scoring cascade: a cheap link prior decides most links, the GCN scores the others.

Most links are decided before any graph convolution runs: a stranger far down a
face's neighbour list, a pair much closer than any stranger. A :class:`LinkPrior`
(a small MLP on the embedder-independent pair features of
:mod:`linkage_gcn.structure`, 14 numbers per link) learns the GCN's link
probability from the GCN's own scores on the training set. At predict time it
scores every link; a pivot whose links all fall outside the band
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
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .structure import N_STRUCTURE_FEATURES, StructureContext

__all__ = ["MIN_NODES", "TOLERANCE", "Cascade", "LinkPrior", "fit_cascade", "prior_features"]

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
#: Training of the prior: Adam steps over minibatches of this many links.
_STEPS, _BATCH, _LR = 600, 4096, 1e-2


class LinkPrior(nn.Module):
    """The GCN's link probability, approximately, from a link's structure features alone.

    ``sigmoid(MLP((f - mean) / scale))`` with two hidden layers of ``hidden``
    units, ``f`` the :data:`~linkage_gcn.structure.N_STRUCTURE_FEATURES`
    features of :meth:`StructureContext.pair_features
    <linkage_gcn.structure.StructureContext.pair_features>`.

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.

    Examples
    --------
    >>> prior = LinkPrior(hidden=8)
    >>> prior(torch.zeros(3, N_STRUCTURE_FEATURES)).shape
    torch.Size([3])
    """

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.hidden = int(hidden)
        self.register_buffer("mean", torch.zeros(N_STRUCTURE_FEATURES))
        self.register_buffer("scale", torch.ones(N_STRUCTURE_FEATURES))
        self.net = nn.Sequential(
            nn.Linear(N_STRUCTURE_FEATURES, hidden), nn.ReLU(),
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
    low, high : float
        A link whose prior score is at most ``low`` or at least ``high`` is
        decided by the prior; a pivot with any link strictly between them is
        scored by the GCN.
    skipped : float
        Share of the held-out training pivots the prior decided.
    lost : float
        B-Cubed F lost there against scoring every link (the largest over
        collections; negative: gained).
    """

    prior: LinkPrior
    low: float
    high: float
    skipped: float
    lost: float

    def __repr__(self) -> str:
        return (f"Cascade(low={self.low:g}, high={self.high:g}, skipped={self.skipped:.3f}, "
                f"lost={self.lost:.4f})")  # fmt: skip

    def prior_scores(self, context: StructureContext) -> Tensor:
        """The prior's ``(N, k)`` scores of every node's links to its ``k`` kNN neighbours.

        The links of ``context.knn_index``, their features read off the context
        (:meth:`~linkage_gcn.structure.StructureContext.link_features`).
        """
        return _prior_scores(self.prior, context)

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
        """What a checkpoint stores: the band, the figures and the prior's tensors."""
        return {"low": self.low, "high": self.high, "skipped": self.skipped, "lost": self.lost,
                "hidden": self.prior.hidden,
                "prior": {k: v.cpu() for k, v in self.prior.state_dict().items()}}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Cascade:
        """The cascade of :meth:`state` (a :class:`ValueError` names what is malformed)."""
        try:
            prior = LinkPrior(int(state["hidden"]))
            prior.load_state_dict(state["prior"])
            values = {k: float(state[k]) for k in ("low", "high", "skipped", "lost")}
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"malformed cascade: {exc}") from None
        if not 0.0 <= values["low"] <= values["high"] <= 1.0:
            raise ValueError(f"malformed cascade: band ({values['low']}, {values['high']}).")
        return cls(prior.eval(), **values)


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


def _chunked_link_features(context: StructureContext, rows: Tensor) -> Iterator[Tensor]:
    """The features of the kNN links of nodes ``rows``, chunk after chunk of links."""
    device = context.knn_index.device.type
    step = max(1, _CHUNK["cpu" if device == "cpu" else "other"] // context.k)
    return (context.link_features(rows[s : s + step]) for s in range(0, rows.shape[0], step))


@torch.no_grad()
def _prior_scores(prior: LinkPrior, context: StructureContext) -> Tensor:
    """``prior``'s ``(N, k)`` scores of the context's kNN links, features built in chunks."""
    n, k = context.knn_index.shape
    prior = prior.to(context.knn_index.device).eval()
    rows = torch.arange(n, device=context.knn_index.device)
    return torch.cat([prior(f) for f in _chunked_link_features(context, rows)]).view(n, k)


def _train_prior(features: Tensor, targets: Tensor, seed: int, hidden: int) -> LinkPrior:
    """Fit the prior to the GCN's probabilities (cross-entropy with soft targets)."""
    with torch.random.fork_rng(devices=[features.device] if features.is_cuda else []):
        torch.manual_seed(seed)
        prior = LinkPrior(hidden).to(features.device)
        prior.mean.copy_(features.mean(0))
        prior.scale.copy_(features.std(0).clamp_min(1e-6))
        opt = torch.optim.Adam(prior.parameters(), lr=_LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, _STEPS)
        n = features.shape[0]
        for _ in range(_STEPS):
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
) -> Optional[Cascade]:
    """Fit a cascade to a trained GCN's scores of its training set.

    Half the identities of each collection (drawn with ``random_state``) train
    the prior on the GCN's scores of their pivots' links; on the other half,
    every band of the grid is tried, and the one deciding the most held-out
    pivots whose clusters lose at most ``tolerance`` B-Cubed F, in every
    collection, against scoring every link is kept.

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

    Returns
    -------
    Cascade or None
        ``None`` when the held-out half is too small to choose a band on
        (fewer than 200 pivots or 10 identities), or no band decides any
        pivot within the tolerance.
    """
    n, k = hop1.shape
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
    device = hop1.device
    learn = torch.from_numpy(np.flatnonzero(~held)).to(device)
    with torch.no_grad():
        feats = torch.cat(list(_chunked_link_features(context, learn)))
    targets = scores.index_select(0, learn).reshape(-1).float().clamp(0.0, 1.0)
    prior = _train_prior(feats, targets, random_state, hidden)
    estimate = _prior_scores(prior, context)
    held_nodes = np.flatnonzero(held)
    held_t = torch.from_numpy(held_nodes).to(device)
    full = np.asarray(evaluate(held_nodes, scores), dtype=np.float64)
    best: Optional[tuple[float, float, float, float]] = None
    for low in _GRID:
        for high in (h for h in _GRID if h >= low):
            outside = (estimate <= low) | (estimate >= high)
            decided = outside.all(1)
            share = float(decided.index_select(0, held_t).float().mean())
            if best is not None and share <= best[2]:
                continue
            mixed = torch.where(decided.unsqueeze(1), estimate, scores)
            lost = float((full - np.asarray(evaluate(held_nodes, mixed))).max())
            if lost <= tolerance and share > 0:
                best = (low, high, share, lost)
    if best is None:
        logger.info("cascade: no band keeps the clusters within %.4f B-Cubed F; none fitted",
                    tolerance)  # fmt: skip
        return None
    cascade = Cascade(prior, *best)
    logger.info(
        "cascade: the link prior decides %.0f%% of held-out pivots (band %g-%g) for %+.4f "
        "B-Cubed F against scoring every link", 100 * cascade.skipped, cascade.low,
        cascade.high, -cascade.lost,
    )  # fmt: skip
    return cascade
