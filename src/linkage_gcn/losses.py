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

from ._validation import as_tensor, check_in_options, check_real

__all__ = [
    "LOSSES",
    "ClassBalancedLoss",
    "FocalLoss",
    "class_balanced_loss",
    "cross_entropy_loss",
    "focal_loss",
    "resolve_loss",
]


def _column(values: Any, name: str) -> Tensor:
    """A tensor (numpy, lists and tensors alike; None and non-numbers refused), (E, 1) as (E,)."""
    t, _ = as_tensor(values, name=name)
    return t[:, 0] if t.dim() == 2 and t.shape[1] == 1 else t


def _check_target(target: Any, n: int) -> Tensor:
    """Binary targets (E,) or (E, 1) with values in {0, 1}, as a boolean (E,) tensor."""
    target = _column(target, "target")
    if target.is_complex():
        raise TypeError(f"target must hold 0 or 1, got dtype {target.dtype}.")
    if target.dim() != 1:
        raise ValueError(
            f"target must have shape (E,) (one 0/1 label per pair), got {tuple(target.shape)}."
        )
    if target.shape[0] != n:
        raise ValueError(f"target has {target.shape[0]} entries but logits has {n} rows.")
    if target.dtype == torch.bool:
        return target
    bad = (target != 0) & (target != 1)
    if bool(bad.any()):
        first = target[bad][0].item()
        raise ValueError(
            "target must hold 0 (different identity) or 1 (same identity), got "
            f"{int(bad.sum())} other value(s), e.g. {first!r}."
        )
    return target == 1


def _log_probs(logits: Tensor, target: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Log-probabilities of no-link and link, (E,) each, and the boolean targets (E,)."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}.")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}.")
    if logits.dim() == 2 and logits.shape[1] == 2:
        logp = F.log_softmax(logits, dim=1)
        log_neg, log_pos = logp[:, 0], logp[:, 1]
    elif logits.dim() == 1 or (logits.dim() == 2 and logits.shape[1] == 1):
        z = logits.reshape(-1)
        log_neg, log_pos = F.logsigmoid(-z), F.logsigmoid(z)
    else:
        raise ValueError(f"logits must have shape (E, 2) or (E,), got {tuple(logits.shape)}.")
    y = _check_target(target, log_pos.shape[0])
    finite = torch.isfinite(logits.detach())
    if not bool(finite.all()):
        raise ValueError(
            f"logits contains NaN or infinity ({int((~finite).sum())} non-finite value(s)); "
            "the model diverged or its input holds non-finite values."
        )
    return log_neg, log_pos, y


def _per_pair_ce(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy of every pair (E,) and the boolean targets (E,)."""
    log_neg, log_pos, y = _log_probs(logits, target)
    return -torch.where(y, log_pos, log_neg), y


def _check_group(group: Any, n: int) -> Tensor:
    """Subgraph ids (E,): non-negative integers, one per pair."""
    group = _column(group, "group")
    if group.dtype == torch.bool or group.is_floating_point() or group.is_complex():
        raise TypeError(f"group must hold integer subgraph ids, got dtype {group.dtype}.")
    if group.dim() != 1 or group.shape[0] != n:
        raise ValueError(
            f"group must have shape ({n},) (the subgraph of each pair), got {tuple(group.shape)}."
        )
    if n and int(group.min()) < 0:
        raise ValueError(f"group must hold non-negative subgraph ids, got {int(group.min())}.")
    return group.long()


def cross_entropy_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Plain cross-entropy averaged over pairs (the L-GCN loss).

    Parameters
    ----------
    logits : torch.Tensor of shape (E, 2) or (E,)
        Link logits.
    target : torch.Tensor of shape (E,)
        1 for a link (same identity), 0 otherwise.

    Raises
    ------
    ValueError
        When the shapes do not match, ``target`` holds a value other than 0
        or 1, or ``logits`` holds NaN or infinity.
    TypeError
        When ``logits`` is not a floating-point tensor.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    >>> round(cross_entropy_loss(logits, torch.tensor([1, 0])).item(), 4)
    0.6931
    """
    return _per_pair_ce(logits, target)[0].mean()


def class_balanced_loss(logits: Tensor, target: Tensor, group: Optional[Tensor] = None) -> Tensor:
    r"""Class-balance loss (Yang et al., equation 2).

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

    Parameters
    ----------
    logits : torch.Tensor of shape (E, 2) or (E,)
        Link logits.
    target : torch.Tensor of shape (E,)
        1 for a link (same identity), 0 otherwise.
    group : torch.Tensor of shape (E,), optional
        Non-negative integer subgraph id of each pair.

    Raises
    ------
    ValueError
        As :func:`cross_entropy_loss`; also when ``group`` has the wrong
        length or a negative id.
    TypeError
        When ``group`` is not an integer tensor.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 2.0], [0.0, -1.0], [0.0, 1.0]])
    >>> target = torch.tensor([1, 0, 0])
    >>> ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    >>> bool(torch.isclose(class_balanced_loss(logits, target), (ce[0] + ce[1:].mean()) / 2))
    True
    """
    ce, y = _per_pair_ce(logits, target)
    if group is not None:
        return _group_balanced(ce, y, _check_group(group, ce.shape[0]).to(ce.device))
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


#: Variants of the focal loss (see :func:`focal_loss`).
FOCAL_VARIANTS = ("standard", "fork")


def focal_loss(
    logits: Tensor,
    target: Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    variant: str = "standard",
) -> Tensor:
    r"""Focal loss for link prediction (Yang et al., equation 3; Lin et al. 2017).

    With :math:`p_P` the predicted probability of a link, :math:`p_N = 1 - p_P`
    and :math:`y` the target:

    - ``variant="standard"`` (eq. 3 as written):
      :math:`-y\,\alpha\,p_N^\gamma\log p_P - (1-y)(1-\alpha)\,p_P^\gamma\log p_N`;
      ``alpha`` weights the positive (same-identity) class, ``1 - alpha``
      the negative class, and gradients flow through the modulating factor.
    - ``variant="fork"`` (``FocalLoss1`` of the paper's code, the RIWS fork
      of L-GCN):
      :math:`2\,[-y\,(1-\alpha)\,\mathrm{sg}(p_N)^\gamma\log p_P
      - (1-y)\,\alpha\,\mathrm{sg}(p_P)^\gamma\log p_N]`, where
      :math:`\mathrm{sg}` stops the gradient: ``alpha`` weights the
      *negative* class (with the default 0.25, positives weigh 0.75), the
      modulating factor is a constant weight for back-propagation, and each
      pair's loss is doubled (the code returns ``2 * mean``).

    Parameters
    ----------
    logits : torch.Tensor of shape (E, 2) or (E,)
        Link logits.
    target : torch.Tensor of shape (E,)
        1 for a link (same identity), 0 otherwise.
    alpha : float
        Class weight, in [0, 1]: of the positive class for ``"standard"``,
        of the negative class for ``"fork"``.
    gamma : float
        Focusing parameter (>= 0); 0 gives alpha-weighted cross-entropy.
    reduction : {"mean", "sum", "none"}
        How to reduce the per-pair losses.
    variant : {"standard", "fork"}, default="standard"
        Which orientation of ``alpha`` and gradient rule, see above. The loss
        name ``"focal-fork"`` of :func:`resolve_loss` selects ``"fork"``.

    Raises
    ------
    ValueError
        As :func:`cross_entropy_loss`, or for a parameter out of range.

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> # p = 0.5: 0.25 * 0.5**2 * log(2)
    >>> round(focal_loss(logits, torch.tensor([1])).item(), 6)
    0.043322
    >>> # 2 * 0.75 * 0.5**2 * log(2)
    >>> round(focal_loss(logits, torch.tensor([1]), variant="fork").item(), 6)
    0.25993
    """
    alpha = check_real(alpha, "alpha", minimum=0.0, maximum=1.0)
    gamma = check_real(gamma, "gamma", minimum=0.0)
    reduction = check_in_options(reduction, ("mean", "sum", "none"), "reduction")
    variant = check_in_options(variant, FOCAL_VARIANTS, "variant")
    log_neg, log_pos, y = _log_probs(logits, target)
    log_p = torch.where(y, log_pos, log_neg)  # log-probability of the true class
    p_other = torch.where(y, log_neg, log_pos).exp()  # 1 - p_true, without cancellation
    if variant == "standard":
        w_pos, w_neg, scale = alpha, 1.0 - alpha, 1.0
    else:
        w_pos, w_neg, scale = 1.0 - alpha, alpha, 2.0
        p_other = p_other.detach()
    weight = torch.where(y, torch.full_like(log_p, w_pos), torch.full_like(log_p, w_neg))
    loss = -scale * weight * p_other.pow(gamma) * log_p
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`.

    Parameters
    ----------
    alpha : float
        Class weight: of positives for ``"standard"``, of negatives for
        ``"fork"``.
    gamma : float
        Focusing parameter (>= 0).
    reduction : {"mean", "sum", "none"}
        How to reduce the per-pair losses.
    variant : {"standard", "fork"}, default="standard"
        ``"fork"``: the paper's code (``alpha`` on negatives, modulating
        factor detached, doubled), see :func:`focal_loss`. Shown by ``repr``
        when not ``"standard"``.

    Examples
    --------
    >>> FocalLoss()
    FocalLoss(alpha=0.25, gamma=2.0)
    >>> FocalLoss(variant="fork")
    FocalLoss(alpha=0.25, gamma=2.0, variant='fork')
    """

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        reduction: str = "mean",
        variant: str = "standard",
    ) -> None:
        super().__init__()
        self.alpha = check_real(alpha, "alpha", minimum=0.0, maximum=1.0)
        self.gamma = check_real(gamma, "gamma", minimum=0.0)
        self.reduction = check_in_options(reduction, ("mean", "sum", "none"), "reduction")
        self.variant = check_in_options(variant, FOCAL_VARIANTS, "variant")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Compute the loss."""
        return focal_loss(logits, target, self.alpha, self.gamma, self.reduction, self.variant)

    def extra_repr(self) -> str:
        """Parameters shown by ``repr``."""
        extra = f"alpha={self.alpha}, gamma={self.gamma}"
        if self.reduction != "mean":
            extra += f", reduction={self.reduction!r}"
        if self.variant != "standard":
            extra += f", variant={self.variant!r}"
        return extra


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
    "focal-fork": lambda: FocalLoss(variant="fork"),
}


def resolve_loss(loss: Any) -> Callable[[Tensor, Tensor], Tensor]:
    """Turn a loss name or a callable ``(logits, target) -> loss`` into a loss.

    Names: ``"ce"`` (cross-entropy), ``"cb"`` (class balance over the
    batch), ``"cb-graph"`` (class balance inside each subgraph), ``"focal"``
    (eq. 3 as written: alpha 0.25 on positives, gamma 2), ``"focal-fork"``
    (the paper's code: alpha 0.25 on negatives, so positives weigh 0.75,
    modulating factor detached, loss doubled; see :func:`focal_loss`).

    Examples
    --------
    >>> resolve_loss("focal")
    FocalLoss(alpha=0.25, gamma=2.0)
    >>> resolve_loss("focal-fork")
    FocalLoss(alpha=0.25, gamma=2.0, variant='fork')
    >>> resolve_loss("hinge")
    Traceback (most recent call last):
    ...
    ValueError: unknown loss 'hinge'; choose one of 'ce', 'cb', 'cb-graph', 'focal', ...
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            choices = ", ".join(repr(k) for k in LOSSES)
            raise ValueError(f"unknown loss {loss!r}; choose one of {choices}, or pass a callable.")
        return LOSSES[loss]()
    if callable(loss):
        return loss
    raise ValueError(f"loss must be a name or a callable, got {type(loss).__name__}.")
