"""Training a :class:`~linkage_gcn.nn.LinkageGCN` and predicting link scores with it.

Both work on tensors on any device: move ``x``, ``knn_index`` and the model to
the GPU and everything runs there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import Tensor

from ._progress import progress
from ._validation import check_int, check_real
from .ips import build_ips
from .losses import resolve_loss
from .nn import LinkageGCN
from .samplers import NeighborSampler

__all__ = ["EpochStats", "predict_links", "train_linkage_gcn"]


@dataclass
class EpochStats:
    """What one training epoch measured on its own batches."""

    epoch: int
    loss: float
    precision: float
    recall: float
    positive_rate: float
    lr: float
    n_pairs: int
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class _Counts:
    """Running confusion counts of link predictions (argmax) against labels."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.pos = self.n = 0
        self.loss_sum = 0.0
        self.steps = 0

    def update(self, logits: Tensor, target: Tensor, loss: float) -> None:
        pred = logits.argmax(1).bool() if logits.dim() == 2 else logits > 0
        y = target.bool()
        self.tp += int((pred & y).sum())
        self.fp += int((pred & ~y).sum())
        self.fn += int((~pred & y).sum())
        self.pos += int(y.sum())
        self.n += int(y.numel())
        self.loss_sum += loss
        self.steps += 1

    def summary(self) -> dict[str, float]:
        return {
            "loss": self.loss_sum / max(self.steps, 1),
            "precision": self.tp / max(self.tp + self.fp, 1),
            "recall": self.tp / max(self.tp + self.fn, 1),
            "positive_rate": self.pos / max(self.n, 1),
        }


def train_linkage_gcn(
    model: LinkageGCN,
    x: Tensor,
    knn_index: Tensor,
    labels: Tensor,
    *,
    sampler: NeighborSampler,
    k2: int,
    active_connection: int,
    loss: Any = "ce",
    epochs: int = 4,
    batch_size: int = 16,
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    lr_decay: float = 0.1,
    generator: Optional[torch.Generator] = None,
    verbose: Optional[bool] = None,
    callback: Optional[Callable[[EpochStats], None]] = None,
    pivot_similarity: bool = False,
) -> list[EpochStats]:
    """Train ``model`` to predict pivot-to-1-hop links on the IPS of every node.

    The reference schedule: SGD with momentum and weight decay, ``lr``
    multiplied by ``lr_decay`` after each epoch; each epoch visits every node
    once as a pivot, in random order, ``batch_size`` IPS per step, with 1-hop
    sets drawn anew by ``sampler``.

    Parameters
    ----------
    model : LinkageGCN
        The network, already on the device of ``x``.
    x : torch.Tensor of shape (N, D)
        Features.
    knn_index : torch.LongTensor of shape (N, K)
        kNN table (self excluded), at least as wide as the sampler's pool.
    labels : torch.LongTensor of shape (N,)
        Identities.
    sampler : NeighborSampler
        Selects each pivot's 1-hop set (top-k, re-sampling, RIWS...).
    k2, active_connection : int
        2-hop neighbours per 1-hop node, and ``u`` of the IPS edges.
    loss : str or callable
        ``"ce"``, ``"cb"``, ``"focal"`` or ``(logits, target) -> loss``.
    epochs, batch_size : int
        Passes over the pivots, and IPS per optimisation step.
    lr, momentum, weight_decay, lr_decay : float
        SGD settings and the per-epoch learning-rate factor.
    generator : torch.Generator, optional
        Randomness of pivot order and sampling (on the CPU).
    verbose : bool, optional
        Progress bar with the running loss and link precision/recall.
    callback : callable, optional
        Called with the :class:`EpochStats` of each epoch.

    Returns
    -------
    list of EpochStats
    """
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    check_real(lr, "lr", minimum=0.0, inclusive=False)
    criterion = resolve_loss(loss)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=lr_decay)
    history = []
    n = x.shape[0]
    for epoch in range(epochs):
        model.train()
        hop1 = sampler.sample(knn_index, labels, generator=generator)
        order = torch.randperm(n, generator=generator).to(x.device)
        counts = _Counts()
        steps = range(0, n, batch_size)
        bar = progress(
            steps, desc=f"epoch {epoch + 1}/{epochs}", verbose=verbose, long=True, unit="step"
        )
        start = time.perf_counter()
        for i, step in enumerate(bar):
            pivots = order[step : step + batch_size]
            batch = build_ips(
                x, knn_index, pivots, hop1[pivots], k2=k2,
                active_connection=active_connection, labels=labels,
                pivot_similarity=pivot_similarity,
            )  # fmt: skip
            logits = model(batch.x, batch.edge_index, batch.hop1_index)
            target = batch.edge_label.long()
            if getattr(criterion, "uses_groups", False):
                value = criterion(logits, target, group=batch.batch[batch.hop1_index])
            else:
                value = criterion(logits, target)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            counts.update(logits.detach(), target, float(value.detach()))
            if hasattr(bar, "set_postfix") and i % 20 == 0:
                s = counts.summary()
                bar.set_postfix(loss=f"{s['loss']:.4f}", P=f"{s['precision']:.3f}",
                                R=f"{s['recall']:.3f}")  # fmt: skip
        stats = EpochStats(
            epoch=epoch, lr=optimizer.param_groups[0]["lr"], n_pairs=counts.n,
            seconds=time.perf_counter() - start, **counts.summary(),
        )  # fmt: skip
        scheduler.step()
        history.append(stats)
        if callback is not None:
            callback(stats)
    return history


@torch.no_grad()
def predict_links(
    model: LinkageGCN,
    x: Tensor,
    knn_index: Tensor,
    *,
    k1: int,
    k2: int,
    active_connection: int,
    batch_size: int = 256,
    verbose: Optional[bool] = None,
    pivot_similarity: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Score every node's links to its ``k1`` nearest neighbours.

    Every node is a pivot once; pivots are processed ``batch_size`` at a time,
    so memory stays bounded whatever ``N``.

    Returns
    -------
    src, dst : torch.LongTensor of shape (N * k1,)
        Directed pairs (pivot, neighbour).
    scores : torch.Tensor of shape (N * k1,)
        Link probabilities ``softmax(logits)[:, 1]``.
    """
    model.eval()
    n = x.shape[0]
    k1 = min(k1, knn_index.shape[1])
    hop1 = knn_index[:, :k1]
    scores = torch.empty(n, k1, device=x.device)
    steps = range(0, n, batch_size)
    long = n > 20 * batch_size
    for start in progress(steps, desc="scoring links", verbose=verbose, long=long, unit="batch"):
        pivots = torch.arange(start, min(start + batch_size, n), device=x.device)
        batch = build_ips(
            x, knn_index, pivots, hop1[pivots], k2=k2, active_connection=active_connection,
            pivot_similarity=pivot_similarity,
        )  # fmt: skip
        logits = model(batch.x, batch.edge_index, batch.hop1_index)
        scores[pivots] = torch.softmax(logits, dim=1)[:, 1].view(-1, k1)
    src = torch.arange(n, device=x.device).repeat_interleave(k1)
    return src, hop1.reshape(-1), scores.reshape(-1)
