r"""Training and scoring on several processes (GPUs or machines) with ``torch.distributed``.

Launch one process per device with ``torchrun`` (see ``docs/scaling.md``)::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d \
        --rdzv_endpoint host0:29500 examples/ddp_train.py

Each process calls :func:`init_distributed` (it reads the ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``... variables torchrun sets), then the same
functions with the same arguments:

- :func:`train_distributed` shards the pivots of every epoch across the ranks
  and wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel`
  (gradients averaged over the ranks at each step).
- :func:`predict_links_distributed` lets each rank score its share of the
  pivots and gathers the scores on every rank (or one), in the order
  :func:`~linkage_gcn.training.predict_links` gives them.

Without an initialised process group both run as one process (world size 1),
which is the single-process reference they are tested against.

What is equal to what
---------------------
Scoring: the gathered scores are *bitwise* those of one process running
:func:`predict_links_distributed` (or :func:`~linkage_gcn.training.predict_links`
with the same ``batch_size``): the ranks score whole batches of the
single-process run, with the same projection table.

Training: every epoch ``e`` draws the same global pivot permutation
(``torch.randperm`` seeded by ``seed`` and ``e``) and the same 1-hop sets
(the sampler seeded by ``seed`` and ``e``) on every rank; as
:class:`~torch.utils.data.distributed.DistributedSampler` does, rank ``r``
takes every ``W``-th pivot from position ``r``, so step ``i`` of the ``W``
ranks together covers exactly the pivots of step ``i`` of one process with
``batch_size * W``. DDP averages the ranks' gradients, which equals the
gradient of that single-process step when the loss is a mean over equally
many terms on every rank: ``"ce"``, ``"focal"`` (means over pairs) and
``"cb-graph"`` (a mean over subgraphs), with ``N`` a multiple of
``batch_size * W`` (otherwise the permutation is padded, as
DistributedSampler pads it, and the last step weighs the ranks equally).
It is not equal for ``"cb"`` (class balance over the whole batch), and a
model with an input batch norm normalises each rank's batch with its own
statistics. Equal then means: the same trajectory up to float rounding (the
sums are taken in another order), not bitwise.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn
from torch import distributed as dist

from ._progress import progress
from ._validation import (
    check_bool,
    check_features,
    check_in_options,
    check_int,
    check_labels,
    check_real,
)
from .ips import _check_hop1, _checked_knn_index
from .losses import resolve_loss
from .nn import PRECISIONS, _is_plain_linkage_gcn
from .samplers import NeighborSampler
from .training import (
    EpochStats,
    _check_model,
    _check_precision,
    _Counts,
    _diverged,
    _score_pivots,
    _train_forward,
    _use_table,
    default_inference_batch_size,
)

__all__ = [
    "epoch_generators",
    "init_distributed",
    "predict_links_distributed",
    "rank_pivots",
    "train_distributed",
    "world_size",
]

logger = logging.getLogger(__name__)


def _world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size() -> int:
    """The number of processes of the initialised process group; 1 without one.

    :class:`~linkage_gcn.LinkageClusterer` trains with :func:`train_distributed`
    and scores with :func:`predict_links_distributed` when it is above 1.

    Examples
    --------
    >>> world_size()
    1
    """
    return _world()[1]


def init_distributed(backend: Optional[str] = None) -> torch.device:
    """Join the process group torchrun describes in the environment; return this rank's device.

    ``backend`` defaults to ``"nccl"`` when CUDA is available, else
    ``"gloo"``. With CUDA, rank ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``.
    Without torchrun's variables (a plain ``python`` run) nothing is
    initialised and the CPU (or GPU 0) is returned: the functions of this
    module then run as one process.
    """
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return device


def epoch_generators(seed: int, epoch: int) -> tuple[torch.Generator, torch.Generator]:
    """The CPU generators of an epoch: ``(pivot order, 1-hop sampling)``, equal on every rank.

    Examples
    --------
    >>> a, _ = epoch_generators(0, 1)
    >>> b, _ = epoch_generators(0, 1)
    >>> torch.equal(torch.randperm(5, generator=a), torch.randperm(5, generator=b))
    True
    """
    base = (int(seed) * 1_000_003 + int(epoch)) * 2
    return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 1)


def rank_pivots(order: Tensor, rank: int, world_size: int) -> Tensor:
    """Rank ``rank``'s pivots of an epoch: every ``world_size``-th from position ``rank``.

    As :class:`~torch.utils.data.distributed.DistributedSampler`: ``order``
    is padded by repeating its start to a multiple of ``world_size``, so
    every rank gets the same count (and makes the same number of steps).

    Examples
    --------
    >>> order = torch.tensor([4, 0, 3, 1, 2])
    >>> rank_pivots(order, 0, 2).tolist(), rank_pivots(order, 1, 2).tolist()
    ([4, 3, 2], [0, 1, 4])
    """
    n = order.shape[0]
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank::world_size]


def train_distributed(
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
    seed: int = 0,
    verbose: Optional[bool] = None,
    callback: Optional[Callable[[EpochStats], None]] = None,
    pivot_similarity: bool = False,
) -> list[EpochStats]:
    """:func:`~linkage_gcn.training.train_linkage_gcn` with the pivots sharded across ranks.

    Call it on every rank with the same arguments (the whole ``x``,
    ``knn_index`` and ``labels`` on each rank's device: IPS reach any node).
    The model is wrapped in DistributedDataParallel for the run and
    returned to the caller trained, in place, equal on every rank.

    Parameters
    ----------
    model, x, knn_index, labels, sampler, k2, active_connection, loss
        As :func:`~linkage_gcn.training.train_linkage_gcn`.
    epochs : int
        Passes over all pivots (all ranks together).
    batch_size : int
        IPS per step *on each rank*: the global batch is ``batch_size *
        world_size`` (scale ``lr`` accordingly when changing the world size).
    lr, momentum, weight_decay, lr_decay : float
        SGD settings, as ``train_linkage_gcn``.
    seed : int
        Seeds each epoch's pivot permutation and 1-hop draw (the same on
        every rank, see :func:`epoch_generators`); seed the weight
        initialisation yourself, identically on every rank (DDP also
        broadcasts rank 0's weights when it wraps the model).
    verbose : bool, optional
        Progress bar on rank 0.
    callback : callable, optional
        Called on every rank with each epoch's :class:`EpochStats`, whose
        loss, precision and recall are over all ranks' pairs.
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features.

    Returns
    -------
    list of EpochStats

    Raises
    ------
    ValueError, TypeError
        On bad inputs, before training.
    FloatingPointError
        On every rank at once (the loss is all-reduced each step) when the
        loss becomes non-finite, before that step is applied.
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
    seed = check_int(seed, "seed", minimum=0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
    criterion = resolve_loss(loss)
    uses_groups = getattr(criterion, "uses_groups", False)
    rank, world = _world()
    sparse = _is_plain_linkage_gcn(model)
    net: nn.Module = model
    if world > 1:
        ids = [x.device.index] if x.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=lr_decay)
    n = x.shape[0]
    all_nodes = torch.arange(n, device=x.device)
    n_steps = math.ceil(math.ceil(n / world) / batch_size)
    history = []
    for epoch in range(epochs):
        net.train()
        order_gen, sample_gen = epoch_generators(seed, epoch)
        hop1 = _check_hop1(
            sampler.sample(knn_index, labels, generator=sample_gen), all_nodes, n, sampler.k
        )
        mine = rank_pivots(torch.randperm(n, generator=order_gen), rank, world).to(x.device)
        counts = _Counts(x.device)
        epoch_lr = optimizer.param_groups[0]["lr"]
        desc = f"epoch {epoch + 1}/{epochs}"
        show = verbose if rank == 0 else False
        bar = progress(range(n_steps), desc=desc, verbose=show, long=True, unit="step")
        start = time.perf_counter()
        try:
            for i in bar:
                pivots = mine[i * batch_size : (i + 1) * batch_size]
                logits, target, group = _train_forward(
                    net, x, knn_index, labels, pivots, hop1, k2, active_connection,
                    pivot_similarity, sparse,
                )  # fmt: skip
                if uses_groups:
                    value = criterion(logits, target, group=group)
                else:
                    value = criterion(logits, target)
                optimizer.zero_grad(set_to_none=True)
                value.backward()  # DDP all-reduces (averages) the gradients here
                mean_loss = value.detach().clone()
                if world > 1:
                    dist.all_reduce(mean_loss)
                    mean_loss /= world
                loss_value = float(mean_loss)  # the one host sync per step
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        _diverged(loss_value, epoch, epochs, i, n_steps, lr, epoch_lr)
                    )
                optimizer.step()
                counts.update(logits.detach(), target, loss_value)
        finally:
            bar.close()
        if world > 1:  # epoch statistics over all ranks
            total = torch.cat([counts.counts, counts.counts.new_tensor([counts.n])])
            dist.all_reduce(total)
            counts.counts, counts.n = total[:4], int(total[4])
        stats = EpochStats(
            epoch=epoch, lr=epoch_lr, n_pairs=counts.n,
            seconds=time.perf_counter() - start, **counts.summary(),
        )  # fmt: skip
        stats.extra["world_size"] = world
        scheduler.step()
        history.append(stats)
        if rank == 0:
            logger.info(
                "%s: loss %.4f, link P %.3f R %.3f, lr %.3g, %.1f s on %d rank(s)",
                desc, stats.loss, stats.precision, stats.recall, stats.lr, stats.seconds, world,
            )  # fmt: skip
        if callback is not None:
            callback(stats)
    return history


@torch.no_grad()
def predict_links_distributed(
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
    precision: str = "fp32",
    dst: Optional[int] = None,
) -> Optional[tuple[Tensor, Tensor, Tensor]]:
    """:func:`~linkage_gcn.training.predict_links` of all nodes, the pivots shared by the ranks.

    The batches of the single-process run (``batch_size`` pivots each, in
    order) are dealt to the ranks in contiguous runs; each rank scores its
    own, then the scores are gathered (a padded ``all_gather``, or
    ``gather`` to ``dst``). Call it on every rank with the same arguments;
    merge the result once (e.g. on rank 0).

    Parameters
    ----------
    model, x, knn_index, k1, k2, active_connection, batch_size, verbose,
    pivot_similarity, precision
        As :func:`~linkage_gcn.training.predict_links` (the same model and
        data on every rank).
    dst : int, optional
        Gather on this rank only (the others return ``None``); by default
        every rank gets the result.

    Returns
    -------
    (src, dst, scores) or None
        As ``predict_links``: bitwise equal to the single-process run with
        the same ``batch_size``.
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
    rank, world = _world()
    if dst is not None:
        dst = check_int(dst, "dst", minimum=0)
        if dst >= world:
            raise ValueError(f"dst must be a rank in [0, {world}), got {dst}.")
    n = x.shape[0]
    n_batches = math.ceil(n / batch_size)
    per_rank = math.ceil(n_batches / world)  # whole batches of the single-process run
    lo = min(rank * per_rank * batch_size, n)
    hi = min((rank + 1) * per_rank * batch_size, n)
    pivots = torch.arange(lo, hi, device=x.device)
    mine = _score_pivots(
        model, x, knn_index, pivots, k1=k1, k2=k2, active_connection=active_connection,
        batch_size=batch_size, verbose=verbose if rank == 0 else False,
        pivot_similarity=pivot_similarity, precision=precision,
        table=_use_table(model, x, n * k1),
    )  # fmt: skip
    if world > 1:
        width = per_rank * batch_size
        padded = mine.new_full((width, k1), float("nan"))
        padded[: hi - lo] = mine
        comm = padded.cpu() if dist.get_backend() == "gloo" else padded
        if dst is None:
            parts = [torch.empty_like(comm) for _ in range(world)]
            dist.all_gather(parts, comm)
        else:
            parts = [torch.empty_like(comm) for _ in range(world)] if rank == dst else None
            dist.gather(comm, parts, dst=dst)
            if rank != dst:
                return None
        scores = torch.cat(parts)[:n].to(x.device)
    else:
        scores = mine
    if bool(torch.isnan(scores).any()):
        raise FloatingPointError(
            "the model gave NaN link scores: its weights are not finite (a diverged training?)."
        )
    hop1 = knn_index[:, :k1]
    src = torch.arange(n, device=x.device).repeat_interleave(k1)
    return src, hop1.reshape(-1), scores.reshape(-1)
