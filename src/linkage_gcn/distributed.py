r"""The process-group plumbing of training and scoring on several processes (``torch.distributed``).

Launch one process per device with ``torchrun`` (see ``docs/scaling.md``)::

    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_backend c10d \
        --rdzv_endpoint host0:29500 examples/ddp_train.py

Each process calls :func:`init_distributed` (it reads the ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``... variables torchrun sets), then the same
functions with the same arguments: :func:`~linkage_gcn.training.train_linkage_gcn`
and :func:`~linkage_gcn.training.predict_links` serve one process or many
(the single process is world size 1 of the same loop):

- training shards the pivots of every epoch across the ranks
  (:func:`rank_pivots`, with the generators of :func:`epoch_generators`) and
  wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel`
  (gradients averaged over the ranks at each step; the loss and the
  confusion counts all-reduced; logging on rank 0);
- scoring lets each rank score a contiguous run of the single-process
  batches and gathers the scores on every rank (or on ``dst``), in the
  order one process gives them.

This module holds the plumbing only (the world, the seeds, the shards, the
collectives); ``train_distributed`` and ``predict_links_distributed`` remain
for one release as deprecated doors to the unified functions.

What is equal to what
---------------------
Scoring: the gathered scores are *bitwise* those of one process with the same
``batch_size``: the ranks score whole batches of the single-process run, with
the same projection table.

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
statistics, and dropout draws other masks. Equal then means: the same
trajectory up to float rounding (the sums are taken in another order), not
bitwise.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Optional

import torch
from torch import Tensor
from torch import distributed as dist

from ._validation import check_int

__all__ = [
    "epoch_generators",
    "init_distributed",
    "predict_links_distributed",
    "rank_pivots",
    "train_distributed",
    "world_size",
]


def _world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def world_size() -> int:
    """The number of processes of the initialised process group; 1 without one.

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
    initialised and the CPU (or GPU 0) is returned: training and scoring
    then run as one process.
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
    base = (int(seed) * 1_000_003 + int(epoch)) * 2 % (1 << 63)  # within manual_seed's range
    return torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 1)


def rank_pivots(order: Tensor, rank: int, world_size: int) -> Tensor:
    """Rank ``rank``'s pivots of an epoch: every ``world_size``-th from position ``rank``.

    As :class:`~torch.utils.data.distributed.DistributedSampler`: ``order``
    is padded by repeating its start to a multiple of ``world_size``, so
    every rank gets the same count (and makes the same number of steps).

    Raises
    ------
    ValueError
        When ``world_size`` is not a positive integer, or ``rank`` is not in
        ``[0, world_size)``.

    Examples
    --------
    >>> order = torch.tensor([4, 0, 3, 1, 2])
    >>> rank_pivots(order, 0, 2).tolist(), rank_pivots(order, 1, 2).tolist()
    ([4, 3, 2], [0, 1, 4])
    >>> rank_pivots(order, 2, 2)
    Traceback (most recent call last):
    ...
    ValueError: rank must be in [0, world_size) = [0, 2), got 2.
    """
    world_size = check_int(world_size, "world_size", minimum=1)
    rank = check_int(rank, "rank")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size) = [0, {world_size}), got {rank}.")
    n = order.shape[0]
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = torch.cat([order, order[: total - n]])
    return order[rank::world_size]


def _all_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over the ranks, in place (nothing to do for one process)."""
    if _world()[1] > 1:
        dist.all_reduce(t)
    return t


def _all_max(t: Tensor) -> Tensor:
    """The element-wise maximum of ``t`` over the ranks, in place (``t`` for one process)."""
    if _world()[1] > 1:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def _from_rank0(value: int, device: torch.device) -> int:
    """Rank 0's ``value`` on every rank (``value`` itself for one process)."""
    if _world()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.long, device=device)
    dist.broadcast(t, 0)
    return int(t)


def _check_dst(dst: Optional[int]) -> Optional[int]:
    """``dst`` a rank of the group (or ``None``)."""
    world = _world()[1]
    if dst is not None and not 0 <= dst < world:
        raise ValueError(f"dst must be a rank in [0, {world}), got {dst}.")
    return dst


def _gather_rows(part: Tensor, rows: int, dst: Optional[int]) -> Optional[Tensor]:
    """Every rank's ``part`` (at most ``rows`` rows), padded to ``rows`` and stacked in rank order.

    On every rank with ``dst=None`` (``all_gather``), else on ``dst`` only
    (``gather``; the others get ``None``).
    The padding holds NaN; the caller keeps the rows it needs. For one
    process: ``part`` itself.
    """
    rank, world = _world()
    if world == 1:
        return part
    padded = part.new_full((rows, *part.shape[1:]), float("nan"))
    padded[: part.shape[0]] = part
    comm = padded.cpu() if dist.get_backend() == "gloo" else padded
    if dst is None:
        parts = [torch.empty_like(comm) for _ in range(world)]
        dist.all_gather(parts, comm)
    else:
        parts = [torch.empty_like(comm) for _ in range(world)] if rank == dst else None
        dist.gather(comm, parts, dst=dst)
        if rank != dst:
            return None
    return torch.cat(parts).to(part.device)


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"linkage_gcn.distributed.{old} is deprecated and will be removed in the next release: "
        f"call linkage_gcn.training.{new}, which serves one process or many.",
        DeprecationWarning,
        stacklevel=3,
    )


def train_distributed(*args: Any, seed: int = 0, **kwargs: Any) -> Any:
    """Deprecated: :func:`~linkage_gcn.training.train_linkage_gcn` (it shards the pivots itself).

    The same call, with ``seed`` defaulting to 0 as it did here.
    """
    _deprecated("train_distributed", "train_linkage_gcn")
    from .training import train_linkage_gcn  # training imports this module

    return train_linkage_gcn(*args, seed=seed, **kwargs)


def predict_links_distributed(*args: Any, **kwargs: Any) -> Any:
    """Deprecated: :func:`~linkage_gcn.training.predict_links` (it shards and gathers itself)."""
    _deprecated("predict_links_distributed", "predict_links")
    from .training import predict_links  # training imports this module

    return predict_links(*args, **kwargs)
