"""Training a :class:`~linkage_gcn.nn.LinkageGCN` and predicting link scores with it.

Both work on tensors on any device: move ``x``, ``knn_index`` and the model to
the GPU and everything runs there. Their inputs are validated once, before any
work; the loops then build the subgraphs without further checks.

Each training epoch logs one INFO line on the ``linkage_gcn.training``
logger as it ends (the library never configures logging: set up a handler,
e.g. ``logging.basicConfig(level=logging.INFO)``, to see them).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from ._int8 import check_int8
from ._progress import progress
from ._validation import (
    check_bool,
    check_features,
    check_in_options,
    check_int,
    check_labels,
    check_nodes,
    check_real,
)
from .ips import _build_ips, _check_hop1, _checked_knn_index, build_ips_graph
from .losses import resolve_loss
from .nn import PRECISIONS, _is_plain_linkage_gcn, _tf32
from .samplers import NeighborSampler

__all__ = [
    "EpochStats",
    "default_inference_batch_size",
    "predict_links",
    "train_linkage_gcn",
]

logger = logging.getLogger(__name__)


@dataclass
class EpochStats:
    """What one training epoch measured on its own batches.

    ``epoch`` counts from 0; ``loss`` is the mean of the per-step losses;
    ``precision`` and ``recall`` are those of the argmax link predictions on
    the labelled pairs seen; ``lr`` is the learning rate the epoch ran with.
    """

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
    """Running confusion counts of link predictions (argmax) against labels.

    The counts stay on the device (no host synchronisation per step); only
    :meth:`summary` reads them back.
    """

    def __init__(self, device: torch.device) -> None:
        self.counts = torch.zeros(4, dtype=torch.long, device=device)  # tp, fp, fn, pos
        self.n = 0
        self.loss_sum = 0.0
        self.steps = 0

    def update(self, logits: Tensor, target: Tensor, loss: float) -> None:
        pred = logits.argmax(1).bool() if logits.dim() == 2 else logits > 0
        y = target.bool()
        self.counts += torch.stack(
            [(pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum(), y.sum()]
        )
        self.n += y.numel()
        self.loss_sum += loss
        self.steps += 1

    def summary(self) -> dict[str, float]:
        tp, fp, fn, pos = self.counts.tolist()
        return {
            "loss": self.loss_sum / max(self.steps, 1),
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "positive_rate": pos / max(self.n, 1),
        }


def _check_model(model: Any, x: Tensor, pivot_similarity: bool) -> None:
    """The model takes ``(x, edge_index, hop1_index)``, sits on x's device, fits x's width."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module (a LinkageGCN), got {type(model).__name__}."
        )
    param = next(model.parameters(), None)
    if param is not None and param.device != x.device:
        raise ValueError(
            f"the model is on {param.device} but x is on {x.device}; move both to one device."
        )
    want = getattr(model, "in_channels", None)
    got = x.shape[1] + int(pivot_similarity)
    if isinstance(want, int) and want != got:
        extra = " (x's features + 1 for pivot_similarity)" if pivot_similarity else ""
        raise ValueError(
            f"the model expects {want} input features per node but the subgraphs will have "
            f"{got}{extra}; build it with in_channels={got} or change pivot_similarity."
        )


def _check_precision(precision: str, model: nn.Module, device: torch.device) -> None:
    """Raise a clear error when ``model`` cannot be scored in ``precision`` on ``device``.

    ``"int8"`` runs on the CPU only and through the fast path of a plain
    :class:`~linkage_gcn.nn.LinkageGCN` only; the other precisions run everywhere.

    Examples
    --------
    >>> _check_precision("int8", torch.nn.Linear(2, 2), torch.device("cpu"))
    Traceback (most recent call last):
    ...
    ValueError: precision='int8' scores a plain LinkageGCN only (through LinkScorer); ...
    """
    if precision != "int8":
        return
    if not _is_plain_linkage_gcn(model):
        raise ValueError(
            "precision='int8' scores a plain LinkageGCN only (through LinkScorer); score a "
            f"{type(model).__name__} in 'fp32', 'bf16' or 'tf32'."
        )
    check_int8(device)


def train_linkage_gcn(
    model: nn.Module,
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
        The network, already on the device of ``x``, with
        ``in_channels = D + pivot_similarity``.
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
        ``"ce"``, ``"cb"``, ``"cb-graph"``, ``"focal"`` or
        ``(logits, target) -> loss``.
    epochs, batch_size : int
        Passes over the pivots, and IPS per optimisation step.
    lr, momentum, weight_decay, lr_decay : float
        SGD settings and the per-epoch learning-rate factor.
    generator : torch.Generator, optional
        Randomness of pivot order and sampling (on the CPU).
    verbose : bool, optional
        Progress bar with the running loss and link precision/recall
        (``None``: on a terminal). Independently, each epoch logs one INFO
        line on the ``linkage_gcn.training`` logger.
    callback : callable, optional
        Called with the :class:`EpochStats` of each epoch.
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features.

    Returns
    -------
    list of EpochStats

    Raises
    ------
    ValueError, TypeError
        On bad inputs or settings, before training starts.
    FloatingPointError
        When the loss becomes NaN or infinite (the training diverged), at the
        first such step, before that step updates the weights; the message
        names the epoch and step.
    """
    pivot_similarity = check_bool(pivot_similarity, "pivot_similarity")
    x, _ = check_features(x, name="x")
    _check_model(model, x, pivot_similarity)
    knn_index = _checked_knn_index(knn_index, x)
    labels = check_labels(labels, n_samples=x.shape[0], return_tensor=True).to(x.device)
    if not isinstance(sampler, NeighborSampler):
        raise TypeError(f"sampler must be a NeighborSampler, got {type(sampler).__name__}.")
    k2 = check_int(k2, "k2", minimum=0)
    active_connection = check_int(active_connection, "active_connection", minimum=1)
    epochs = check_int(epochs, "epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    lr = check_real(lr, "lr", minimum=0.0, inclusive=False)
    momentum = check_real(momentum, "momentum", minimum=0.0)
    weight_decay = check_real(weight_decay, "weight_decay", minimum=0.0)
    lr_decay = check_real(lr_decay, "lr_decay", minimum=0.0, maximum=1.0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    criterion = resolve_loss(loss)
    uses_groups = getattr(criterion, "uses_groups", False)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=lr_decay)
    history = []
    n = x.shape[0]
    all_nodes = torch.arange(n, device=x.device)
    sparse = _is_plain_linkage_gcn(model)  # a plain LinkageGCN takes a CSR adj_t
    n_steps = math.ceil(n / batch_size)
    for epoch in range(epochs):
        model.train()
        hop1 = _check_hop1(
            sampler.sample(knn_index, labels, generator=generator), all_nodes, n, sampler.k
        )
        order = torch.randperm(n, generator=generator).to(x.device)
        counts = _Counts(x.device)
        epoch_lr = optimizer.param_groups[0]["lr"]
        desc = f"epoch {epoch + 1}/{epochs}"
        bar = progress(range(n_steps), desc=desc, verbose=verbose, long=True, unit="step")
        start = time.perf_counter()
        try:
            for i in bar:
                pivots = order[i * batch_size : (i + 1) * batch_size]
                logits, target, group = _train_forward(
                    model, x, knn_index, labels, pivots, hop1, k2, active_connection,
                    pivot_similarity, sparse,
                )  # fmt: skip
                if uses_groups:
                    value = criterion(logits, target, group=group)
                else:
                    value = criterion(logits, target)
                optimizer.zero_grad(set_to_none=True)
                value.backward()
                loss_value = float(value.detach())  # the one host sync per step
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        _diverged(loss_value, epoch, epochs, i, n_steps, lr, epoch_lr)
                    )
                optimizer.step()
                counts.update(logits.detach(), target, loss_value)
                if not bar.disable and i % 20 == 0:
                    s = counts.summary()
                    bar.set_postfix(loss=f"{s['loss']:.4f}", P=f"{s['precision']:.3f}",
                                    R=f"{s['recall']:.3f}", refresh=False)  # fmt: skip
        finally:
            bar.close()
        stats = EpochStats(
            epoch=epoch, lr=epoch_lr, n_pairs=counts.n,
            seconds=time.perf_counter() - start, **counts.summary(),
        )  # fmt: skip
        scheduler.step()
        history.append(stats)
        logger.info(
            "%s: loss %.4f, link P %.3f R %.3f, lr %.3g, %.1f s",
            desc, stats.loss, stats.precision, stats.recall, stats.lr, stats.seconds,
        )  # fmt: skip
        if callback is not None:
            callback(stats)
    return history


def _train_forward(
    model: nn.Module,
    x: Tensor,
    knn_index: Tensor,
    labels: Tensor,
    pivots: Tensor,
    hop1: Tensor,
    k2: int,
    active_connection: int,
    pivot_similarity: bool,
    sparse: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Logits, targets and subgraph of each labelled pair, for one training step.

    The subgraphs are built as bare tensors (:func:`~linkage_gcn.ips.build_ips_graph`:
    three host synchronisations, no PyG collation bookkeeping); a plain
    :class:`~linkage_gcn.nn.LinkageGCN` aggregates with a CSR ``adj_t``,
    another model gets the ``edge_index`` of :func:`~linkage_gcn.ips.build_ips`.
    """
    rows = hop1.index_select(0, pivots)
    graph = build_ips_graph(knn_index, pivots, rows, k2=k2, active_connection=active_connection)
    feats = graph.features(x, pivots, pivot_similarity)
    adjacency = graph.adj_t(feats.dtype) if sparse else graph.edge_index()
    logits = model(feats, adjacency, graph.hop1_index)
    k1 = rows.shape[1]
    target = labels.index_select(0, rows.reshape(-1)) == labels.index_select(
        0, pivots
    ).repeat_interleave(k1)
    group = torch.arange(pivots.shape[0], device=x.device).repeat_interleave(k1)
    return logits, target.long(), group


def _diverged(
    value: float, epoch: int, epochs: int, step: int, steps: int, lr: float, epoch_lr: float
) -> str:
    now = f", {epoch_lr:g} in this epoch" if epoch_lr != lr else ""
    return (
        f"training diverged: the loss is {value} at epoch {epoch + 1}/{epochs}, step "
        f"{step + 1}/{steps} (that step was not applied). Try a lower lr (lr={lr:g}{now}; e.g. "
        f"lr={lr / 10:g}) or another loss (e.g. 'ce' or 'cb')."
    )


#: Nodes per scoring batch that keep the activations in cache on a CPU (measured: the
#: throughput of [20,5] peaks at 16-32 pivots, that of [80,5] at 4-8), and enough work per
#: kernel launch on a GPU.
_BATCH_NODES = {"cpu": 4096, "cuda": 1 << 18}
#: Largest first-layer projection table (all N nodes) the fast path precomputes.
_TABLE_BYTES = 1 << 30


def default_inference_batch_size(k1: int, k2: int, device: Any = "cpu") -> int:
    """Pivots per scoring batch: about 4096 IPS nodes on a CPU, 262144 on a GPU.

    The forward pass slows down as a batch outgrows the CPU caches (on a
    2-core AMD EPYC, [20,5]: 189 pivots/s at 32 pivots per batch, 127 at
    256), while a GPU needs large batches to fill its cores. The bound
    ``k1 * (k2 + 1) + 1`` of the IPS size is used.

    Examples
    --------
    >>> default_inference_batch_size(20, 5), default_inference_batch_size(80, 5)
    (33, 8)
    >>> default_inference_batch_size(200, 10), default_inference_batch_size(20, 5, "cuda")
    (1, 2166)
    """
    k1 = check_int(k1, "k1", minimum=1)
    k2 = check_int(k2, "k2", minimum=0)
    kind = torch.device(device).type
    nodes = _BATCH_NODES.get(kind, _BATCH_NODES["cuda"])
    return max(1, nodes // (k1 * (k2 + 1) + 1))


@contextlib.contextmanager
def _autocast(precision: str, device: torch.device) -> Iterator[None]:
    """The arithmetic of the plain scoring path (models other than LinkageGCN)."""
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        with _tf32(precision == "tf32" and device.type == "cuda"):
            yield


@torch.no_grad()
def predict_links(
    model: nn.Module,
    x: Tensor,
    knn_index: Tensor,
    *,
    k1: int,
    k2: int,
    active_connection: int,
    batch_size: Optional[int] = None,
    verbose: Optional[bool] = None,
    pivot_similarity: bool = False,
    pivots: Optional[Tensor] = None,
    precision: str = "fp32",
) -> tuple[Tensor, Tensor, Tensor]:
    """Score every node's links to its ``k1`` nearest neighbours.

    Every node is a pivot once; pivots are processed ``batch_size`` at a time,
    so memory stays bounded whatever ``N``.

    A :class:`~linkage_gcn.nn.LinkageGCN` is scored through its eval-mode
    fast path (:class:`~linkage_gcn.nn.LinkScorer`: first layer from per-node
    projections, CSR aggregation, last layer on the 1-hop rows only; the same
    scores as its forward within float rounding); any other model through
    its forward on :func:`~linkage_gcn.ips.build_ips` batches. The loop makes
    no host synchronisation of its own (inputs are validated before it, the
    NaN check runs once after it).

    Parameters
    ----------
    model : LinkageGCN
        A trained network on the device of ``x`` (any module taking ``(x,
        edge_index, hop1_index)`` works, through the plain path).
    x : torch.Tensor of shape (N, D)
        Features.
    knn_index : torch.LongTensor of shape (N, K)
        kNN table (self excluded); the first ``min(k1, K)`` columns are scored.
    k1, k2, active_connection : int
        The IPS settings the model was trained with (``k1`` may differ).
    batch_size : int, optional
        Pivots per batch; by default :func:`default_inference_batch_size`
        (about 4096 IPS nodes per batch on a CPU, 262144 on a GPU).
    verbose : bool, optional
        Progress bar (``None``: on a terminal, for long work).
    pivot_similarity : bool
        Whether the model was trained with the pivot-similarity feature.
    pivots : torch.LongTensor of shape (P,), optional
        Score only the links of these pivots (e.g. the faces just added to a
        collection); by default every node, in order.
    precision : {"fp32", "bf16", "tf32", "int8"}
        ``"fp32"`` (default) is exact. ``"bf16"`` (bfloat16 layers; pays off
        on GPUs and CPUs with native bf16, it is slower on AVX2 CPUs),
        ``"tf32"`` (TF32 matrix products on CUDA; no effect on a CPU) and
        ``"int8"`` (oneDNN int8 products after the first layer; CPU only, a
        plain :class:`~linkage_gcn.nn.LinkageGCN` only; 1.4-1.8x faster on
        AVX2 CPUs) are approximate: link probabilities typically move by up
        to ~1e-2.

    Returns
    -------
    src, dst : torch.LongTensor of shape (P * k1,)
        Directed pairs (pivot, neighbour), ``P = N`` by default.
    scores : torch.Tensor of shape (P * k1,)
        Link probabilities ``softmax(logits)[:, 1]``.

    Raises
    ------
    ValueError, TypeError
        On bad inputs, before any scoring.
    FloatingPointError
        When the model produces NaN scores (non-finite weights).
    """
    pivot_similarity = check_bool(pivot_similarity, "pivot_similarity")
    precision = check_in_options(precision, PRECISIONS, "precision")
    x, _ = check_features(x, name="x")
    _check_model(model, x, pivot_similarity)
    _check_precision(precision, model, x.device)
    knn_index = _checked_knn_index(knn_index, x)
    k1 = min(check_int(k1, "k1", minimum=1), knn_index.shape[1])
    k2 = check_int(k2, "k2", minimum=0)
    active_connection = check_int(active_connection, "active_connection", minimum=1)
    if batch_size is None:
        batch_size = default_inference_batch_size(k1, k2, x.device)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    n = x.shape[0]
    if pivots is None:
        pivots = torch.arange(n, device=x.device)
    else:
        pivots = check_nodes(pivots, n, name="pivots").to(x.device)
    scores = _score_pivots(
        model, x, knn_index, pivots, k1=k1, k2=k2, active_connection=active_connection,
        batch_size=batch_size, verbose=verbose, pivot_similarity=pivot_similarity,
        precision=precision, table=_use_table(model, x, pivots.shape[0] * k1),
    )  # fmt: skip
    bad = torch.isnan(scores)
    if bool(bad.any()):
        raise FloatingPointError(
            f"the model gave NaN link scores for {int(bad.sum())} of {bad.numel()} pairs: its "
            "weights are not finite (a diverged training?)."
        )
    hop1 = knn_index[pivots, :k1]
    return pivots.repeat_interleave(k1), hop1.reshape(-1), scores.reshape(-1)


def _use_table(model: nn.Module, x: Tensor, n_pairs: int) -> bool:
    """Project all N nodes at once when the IPS cover about all of them and it fits."""
    if not _is_plain_linkage_gcn(model):
        return False
    width = 2 * model.convs[0].out_channels * x.element_size()
    return n_pairs >= x.shape[0] and x.shape[0] * width <= _TABLE_BYTES


def _score_pivots(
    model: nn.Module,
    x: Tensor,
    knn_index: Tensor,
    pivots: Tensor,
    *,
    k1: int,
    k2: int,
    active_connection: int,
    batch_size: int,
    verbose: Optional[bool],
    pivot_similarity: bool,
    precision: str,
    table: bool,
) -> Tensor:
    """The ``(P, k1)`` link probabilities of validated inputs (no host sync in the loop)."""
    model.eval()
    hop1 = knn_index[pivots, :k1]
    p = pivots.shape[0]
    scorer = None
    if _is_plain_linkage_gcn(model):
        scorer = model.link_scorer(
            x, pivot_similarity=pivot_similarity, table=table, precision=precision
        )
    scores = torch.empty(p, k1, device=x.device)
    steps = range(0, p, batch_size)
    long = p > 20 * batch_size
    for start in progress(steps, desc="scoring links", verbose=verbose, long=long, unit="batch"):
        rows = slice(start, min(start + batch_size, p))
        if scorer is not None:
            graph = build_ips_graph(
                knn_index, pivots[rows], hop1[rows], k2=k2, active_connection=active_connection
            )
            logits = scorer.logits(graph)
        else:
            batch = _build_ips(
                x, knn_index, pivots[rows], hop1[rows], k2=k2,
                active_connection=active_connection, pivot_similarity=pivot_similarity,
            )  # fmt: skip
            with _autocast(precision, x.device):
                logits = model(batch.x, batch.edge_index, batch.hop1_index)
        scores[rows] = torch.softmax(logits.float(), dim=1)[:, 1].view(-1, k1)
    return scores
