"""Link-classification losses for imbalanced linkage labels.

All losses take either the (E, 2) logits of :class:`~linkage_gcn.nn.LinkageGCN`
(column 1 = link) or (E,) binary logits, and (E,) targets in {0, 1}
(1 = same identity as the pivot).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ._validation import check_in_options, check_real

__all__ = [
    "LOSSES",
    "ClassBalancedLoss",
    "FocalLoss",
    "class_balanced_loss",
    "cross_entropy_loss",
    "focal_loss",
    "resolve_loss",
]


def _log_probs(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Log-probabilities of no-link and link, (E,) each, for (E, 2) or (E,) logits."""
    if logits.dim() == 2 and logits.shape[1] == 2:
        logp = F.log_softmax(logits, dim=1)
        log_neg, log_pos = logp[:, 0], logp[:, 1]
    elif logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1):
        z = logits.reshape(-1)
        log_neg, log_pos = F.logsigmoid(-z), F.logsigmoid(z)
    else:
        raise ValueError(f"logits must have shape (E, 2) or (E,), got {tuple(logits.shape)}.")
    if target.shape[0] != log_pos.shape[0]:
        raise ValueError(
            f"target has {target.shape[0]} entries but logits has {log_pos.shape[0]} rows."
        )
    return log_neg, log_pos


def _per_pair_ce(logits: Tensor, target: Tensor) -> Tensor:
    log_neg, log_pos = _log_probs(logits, target)
    y = target.reshape(-1).bool()
    return -torch.where(y, log_pos, log_neg)


def cross_entropy_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Plain cross-entropy averaged over pairs (the L-GCN loss).

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    >>> round(cross_entropy_loss(logits, torch.tensor([1, 0])).item(), 4)
    0.6931
    """
    return _per_pair_ce(logits, target).mean()


def class_balanced_loss(logits: Tensor, target: Tensor, group: Optional[Tensor] = None) -> Tensor:
    r"""Class-balance loss (Yang et al., eq. 2).

    :math:`(\frac{1}{N_P}\sum_{y=1} \mathrm{CE} + \frac{1}{N_N}\sum_{y=0}
    \mathrm{CE}) / 2`: the mean cross-entropy over positive pairs and over
    negative pairs, averaged. When the batch holds one class only, the mean of
    that class (the RIWS fork's code adds 0 for the missing class instead,
    which halves the loss of such batches).

    With ``group`` (the subgraph of each pair), the balance is made inside
    each subgraph, as the paper's text describes it ("balance the weights of
    positive and negative samples in each subgraph"), and the subgraphs are
    averaged: every pivot then weighs the same, whatever the size of its
    identity.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 2.0], [0.0, -1.0], [0.0, 1.0]])
    >>> target = torch.tensor([1, 0, 0])
    >>> ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    >>> bool(torch.isclose(class_balanced_loss(logits, target), (ce[0] + ce[1:].mean()) / 2))
    True
    """
    ce = _per_pair_ce(logits, target)
    y = target.reshape(-1).bool()
    if group is not None:
        return _group_balanced(ce, y, group.reshape(-1))
    parts = [ce[mask].mean() for mask in (y, ~y) if bool(mask.any())]
    if not parts:
        return ce.sum()  # empty batch: zero, keeps the graph
    return torch.stack(parts).mean()


def _group_balanced(ce: Tensor, y: Tensor, group: Tensor) -> Tensor:
    """Mean over groups of (mean CE of positives + mean CE of negatives) / classes present."""
    if ce.numel() == 0:
        return ce.sum()
    n_groups = int(group.max()) + 1
    cls = group * 2 + y.long()  # (group, class) cells
    count = torch.bincount(cls, minlength=2 * n_groups).to(ce.dtype)
    total = torch.zeros(2 * n_groups, dtype=ce.dtype, device=ce.device).index_add(0, cls, ce)
    cell_mean = (total / count.clamp_min(1)).view(n_groups, 2)
    present = (count > 0).view(n_groups, 2).to(ce.dtype)
    per_group = cell_mean.sum(1) / present.sum(1).clamp_min(1)
    return per_group[present.sum(1) > 0].mean()


def focal_loss(
    logits: Tensor,
    target: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
) -> Tensor:
    r"""Focal loss for link prediction (Yang et al., eq. 3; Lin et al. 2017).

    :math:`-y\,\alpha(1-p_P)^\gamma\log p_P - (1-y)(1-\alpha)(1-p_N)^\gamma\log p_N`,
    with ``alpha`` weighting the positive (same-identity) class and
    ``1 - alpha`` the negative class.

    Parameters
    ----------
    logits : torch.Tensor of shape (E, 2) or (E,)
        Link logits.
    target : torch.Tensor of shape (E,)
        1 for a link (same identity), 0 otherwise.
    alpha : float
        Weight of the positive class, in [0, 1].
    gamma : float
        Focusing parameter (>= 0); 0 gives alpha-weighted cross-entropy.
    reduction : {"mean", "sum", "none"}
        How to reduce the per-pair losses.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> # p = 0.5: 0.25 * 0.5**2 * log(2)
    >>> round(focal_loss(logits, torch.tensor([1])).item(), 6)
    0.043322
    """
    alpha = check_real(alpha, "alpha", minimum=0.0, maximum=1.0)
    gamma = check_real(gamma, "gamma", minimum=0.0)
    reduction = check_in_options(reduction, ("mean", "sum", "none"), "reduction")
    log_neg, log_pos = _log_probs(logits, target)
    y = target.reshape(-1).bool()
    log_p = torch.where(y, log_pos, log_neg)  # log-probability of the true class
    weight = torch.where(y, torch.full_like(log_p, alpha), torch.full_like(log_p, 1 - alpha))
    loss = -weight * (1 - log_p.exp()).pow(gamma) * log_p
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`.

    Examples
    --------
    >>> FocalLoss()
    FocalLoss(alpha=0.25, gamma=2.0)
    """

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.alpha = check_real(alpha, "alpha", minimum=0.0, maximum=1.0)
        self.gamma = check_real(gamma, "gamma", minimum=0.0)
        self.reduction = check_in_options(reduction, ("mean", "sum", "none"), "reduction")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss."""
        return focal_loss(logits, target, self.alpha, self.gamma, self.reduction)

    def extra_repr(self) -> str:
        """Parameters shown by ``repr``."""
        return f"alpha={self.alpha}, gamma={self.gamma}"


class ClassBalancedLoss(nn.Module):
    """Module form of :func:`class_balanced_loss`.

    Parameters
    ----------
    per_graph : bool
        Balance the classes inside each subgraph (the training loop passes
        each pair's subgraph as ``group``) instead of over the whole batch.

    Examples
    --------
    >>> ClassBalancedLoss()
    ClassBalancedLoss(per_graph=False)
    """

    def __init__(self, per_graph: bool = False) -> None:
        super().__init__()
        self.per_graph = bool(per_graph)

    @property
    def uses_groups(self) -> bool:
        """Whether the training loop should pass ``group=`` (the subgraph of each pair)."""
        return self.per_graph

    def forward(self, logits: Tensor, target: Tensor, group: Optional[Tensor] = None) -> Tensor:
        """Compute the loss."""
        return class_balanced_loss(logits, target, group if self.per_graph else None)

    def extra_repr(self) -> str:
        """Parameters shown by ``repr``."""
        return f"per_graph={self.per_graph}"


class CrossEntropyLoss(nn.Module):
    """Module form of :func:`cross_entropy_loss` (accepts (E, 2) or (E,) logits)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss."""
        return cross_entropy_loss(logits, target)


#: Losses selectable by name in :class:`linkage_gcn.LinkageClusterer`.
LOSSES: dict[str, Callable[[], nn.Module]] = {
    "ce": CrossEntropyLoss,
    "cb": ClassBalancedLoss,
    "cb-graph": lambda: ClassBalancedLoss(per_graph=True),
    "focal": FocalLoss,
}


def resolve_loss(loss: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """Turn a loss name or a callable ``(logits, target) -> loss`` into a loss.

    Names: ``"ce"`` (cross-entropy), ``"cb"`` (class balance over the
    batch), ``"cb-graph"`` (class balance inside each subgraph), ``"focal"``.

    Examples
    --------
    >>> resolve_loss("focal")
    FocalLoss(alpha=0.25, gamma=2.0)
    >>> resolve_loss("hinge")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'hinge'; choose one of 'ce', 'cb', 'cb-graph', 'focal', or pass a ...
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            choices = ", ".join(repr(k) for k in LOSSES)
            raise ValueError(f"unknown loss {loss!r}; choose one of {choices}, or pass a callable.")
        return LOSSES[loss]()
    if callable(loss):
        return loss
    raise ValueError(f"loss must be a name or a callable, got {type(loss).__name__}.")
