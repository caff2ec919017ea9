"""Training a :class:`~linkage_gcn.nn.LinkageGCN` and predicting link scores with it.

Both work on tensors on any device: move ``x``, ``knn_index`` and the model to
the GPU and everything runs there. Both serve one process or all the
processes of a ``torch.distributed`` group (launched by ``torchrun``; see
:mod:`linkage_gcn.distributed`): one process is world size 1 of the same
loop. Their settings are validated once, before any work, from the
declarations of :data:`linkage_gcn._params.PARAMS`; their data too, unless
the caller runs them inside :func:`~linkage_gcn._params.skip_validation`
(the estimator, which has checked it). The loops then build the subgraphs
without further checks.

Each training epoch logs one INFO line on the ``linkage_gcn.training``
logger as it ends, and long epochs a progress line every half minute when no
progress bar is shown (the library never configures logging: set up a
handler, e.g. ``logging.basicConfig(level=logging.INFO)``, to see them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from torch import Tensor, nn

from ._files import atomic_write
from ._int8 import check_int8
from ._params import (
    PARAMS,
    Check,
    Integer,
    validate_params,
    validation_skipped,
)
from ._progress import progress
from ._validation import check_features, check_labels, check_nodes
from .distributed import (
    _all_max,
    _all_sum,
    _check_dst,
    _from_rank0,
    _gather_rows,
    _world,
    epoch_generators,
    rank_pivots,
)
from .ips import _check_hop1, build_ips_graph
from .knn import check_knn_index
from .losses import resolve_loss
from .nn import _is_plain_linkage_gcn, _tf32
from .samplers import Hop1Sampler
from .structure import N_STRUCTURE_FEATURES, StructureContext

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


def _check_model(
    model: Any, x: Tensor, pivot_similarity: bool, structure: Optional[StructureContext] = None
) -> None:
    """The model takes ``(x, edge_index, hop1_index)``, sits on x's device, fits x's width.

    With ``structure`` (of ``x``'s nodes, on its device) the model reads the
    structure features instead of ``x``'s coordinates.
    """
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
    if structure is not None:
        if not isinstance(structure, StructureContext):
            raise TypeError(
                f"structure must be a StructureContext, got {type(structure).__name__}."
            )
        if structure.num_nodes != x.shape[0] or structure.x.device != x.device:
            raise ValueError(
                f"structure describes {structure.num_nodes} nodes on {structure.x.device}, but "
                f"x has {x.shape[0]} on {x.device}: build it from this x and kNN table."
            )
        if pivot_similarity:
            raise ValueError(
                "pivot_similarity adds a feature to the embeddings' coordinates; the structure "
                "features already hold the pivot similarity: pass one or the other."
            )
        if isinstance(want, int) and want != N_STRUCTURE_FEATURES:
            raise ValueError(
                f"the model expects {want} input features per node but the structure features "
                f"are {N_STRUCTURE_FEATURES}; build it with in_channels={N_STRUCTURE_FEATURES}."
            )
        return
    got = x.shape[1] + int(pivot_similarity)
    if isinstance(want, int) and want != got:
        extra = " (x's features + 1 for pivot_similarity)" if pivot_similarity else ""
        raise ValueError(
            f"the model expects {want} input features per node but the subgraphs will have "
            f"{got}{extra}; build it with in_channels={got} or change pivot_similarity."
        )


def _check_precision(
    precision: str,
    model: nn.Module,
    device: torch.device,
    structure: Optional[StructureContext] = None,
) -> None:
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
    if structure is not None:
        raise ValueError(
            "precision='int8' scores the embeddings' coordinates through LinkScorer; a model "
            "on the structure features scores in 'fp32', 'bf16' or 'tf32'."
        )
    if not _is_plain_linkage_gcn(model):
        raise ValueError(
            "precision='int8' scores a plain LinkageGCN only (through LinkScorer); score a "
            f"{type(model).__name__} in 'fp32', 'bf16' or 'tf32'."
        )
    check_int8(device)


def _sampler_object(value: Any, name: str) -> Hop1Sampler:
    if not isinstance(value, Hop1Sampler):
        raise TypeError(f"{name} must be a Hop1Sampler, got {type(value).__name__}.")
    return value


def _callable(value: Any, name: str) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__}.")
    return value


def _generator(value: Any, name: str) -> torch.Generator:
    if not isinstance(value, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator, got {type(value).__name__}.")
    return value


def _file_path(value: Any, name: str) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or Path), got {type(value).__name__}.")
    path = Path(value)
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a directory; give a file name.")
    if not path.parent.is_dir():
        raise ValueError(
            f"{name}={str(path)!r}: the directory {str(path.parent)!r} does not exist."
        )
    return path


@validate_params(
    sampler=Check(_sampler_object, "a Hop1Sampler"),
    seed=Integer(0, optional=True),
    generator=Check(_generator, "a torch.Generator", optional=True),
    callback=Check(_callable, "a callable", optional=True),
    resume=Check(_file_path, "a file path", optional=True),
)
def train_linkage_gcn(
    model: nn.Module,
    x: Tensor,
    knn_index: Tensor,
    labels: Tensor,
    *,
    sampler: Hop1Sampler,
    k2: int,
    active_connection: int,
    loss: Any = "ce",
    epochs: int = 4,
    batch_size: int = 16,
    lr: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    lr_decay: float = 0.1,
    seed: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
    verbose: Optional[bool] = None,
    callback: Optional[Callable[[EpochStats], None]] = None,
    pivot_similarity: bool = False,
    resume: Optional[Union[str, os.PathLike]] = None,
    structure: Optional[StructureContext] = None,
) -> list[EpochStats]:
    """Train ``model`` to predict pivot-to-1-hop links on the IPS of every node.

    The reference schedule: SGD with momentum and weight decay, ``lr``
    multiplied by ``lr_decay`` after each epoch; each epoch visits every node
    once as a pivot, in random order, ``batch_size`` IPS per step, with 1-hop
    sets drawn anew by ``sampler``.

    One process or many: under an initialised ``torch.distributed`` process
    group (see :mod:`linkage_gcn.distributed`) call it on every rank with the
    same arguments (the whole ``x``, ``knn_index`` and ``labels`` on each
    rank's device: IPS reach any node). Each rank then takes every
    ``W``-th pivot of the epoch's permutation (:func:`~linkage_gcn.distributed.rank_pivots`),
    the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
    for the run (and returned trained, in place, equal on every rank), the
    loss and the link counts are all-reduced, and rank 0 alone logs. One
    process is the world of size 1 of the same loop.

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
    sampler : Hop1Sampler
        Selects each pivot's 1-hop set (top-k, re-sampling, RIWS...).
    k2, active_connection : int
        2-hop neighbours per 1-hop node, and ``u`` of the IPS edges.
    loss : str or callable
        ``"ce"``, ``"cb"``, ``"cb-graph"``, ``"focal"``, ``"focal-fork"`` or
        ``(logits, target) -> loss``.
    epochs : int
        Passes over the pivots (all ranks together).
    batch_size : int
        IPS per optimisation step *on each rank*: the global batch is
        ``batch_size * world_size`` (scale ``lr`` when changing the world size).
    lr, momentum, weight_decay, lr_decay : float
        SGD settings and the per-epoch learning-rate factor.
    seed : int, optional
        The randomness of the run: epoch ``e`` draws its pivot permutation,
        its 1-hop sets and the model's random numbers (dropout) from
        generators seeded by ``seed`` and ``e`` alone
        (:func:`~linkage_gcn.distributed.epoch_generators`), the same on every
        rank. A run is thus reproducible epoch by epoch, and ``resume`` can
        continue it exactly. Training leaves torch's global random state as it
        found it; seed the weight initialisation yourself (identically on
        every rank: DDP also broadcasts rank 0's weights when it wraps the
        model).
    generator : torch.Generator, optional
        For callers of earlier releases: the seed is drawn from it once (so
        two generators seeded alike give the same run). Pass ``seed`` or
        ``generator``, not both; without either the seed is drawn from
        torch's global generator (reproducible under ``torch.manual_seed``;
        under a process group rank 0's draw is used).
    verbose : bool, optional
        Progress bar with the running loss and link precision/recall, on rank
        0 (``None``: on a terminal). Independently, each epoch logs one INFO
        line on the ``linkage_gcn.training`` logger, and an epoch run without
        a bar logs its progress there every 30 s.
    callback : callable, optional
        Called on every rank with the :class:`EpochStats` of each epoch run
        (whose loss, precision and recall are over all ranks' pairs).
    pivot_similarity : bool
        Append each node's cosine similarity to its pivot to its features.
    resume : str or path-like, optional
        A resume file for long trainings. After each finished epoch it is
        written (atomically, by rank 0) with the model weights, the optimizer
        and scheduler states, the history, the seed and a fingerprint of the
        settings and the data shape. When it exists as training starts (on
        every rank: a file system they all read), training continues after
        its last finished epoch, loading the weights into ``model``, and
        gives the result of an uninterrupted run (the history holds the
        earlier epochs too; ``callback`` sees only the epochs run now). A
        file written for other settings or data, or not a resume file, is
        refused with a :class:`ValueError`, never ignored or overwritten.
        When training completes, the file is removed.
    structure : StructureContext, optional
        Feed the model the embedder-independent features of
        :mod:`linkage_gcn.structure` (built from ``x`` and ``knn_index``)
        instead of ``x``'s coordinates; the model then has
        ``in_channels = N_STRUCTURE_FEATURES``.

    Returns
    -------
    list of EpochStats
        One per epoch (``extra["world_size"]`` records the world size).

    Raises
    ------
    ValueError, TypeError
        On bad inputs or settings (or a ``resume`` file that does not match
        them), before training starts, on every rank.
    FloatingPointError
        When the loss or the logits become NaN or infinite (the training
        diverged), at the first such step, before that step updates the
        weights, on every rank at once; the message names the epoch and step,
        the ``lr`` and ``loss`` in use and what to try.

    Examples
    --------
    >>> from linkage_gcn.datasets import make_identities
    >>> from linkage_gcn.knn import knn
    >>> from linkage_gcn.nn import LinkageGCN
    >>> from linkage_gcn.samplers import TopKSampler
    >>> X, y = make_identities(20, random_state=0)
    >>> x, labels = torch.from_numpy(X), torch.from_numpy(y)
    >>> index, _ = knn(x, 6)
    >>> _ = torch.manual_seed(0)
    >>> model = LinkageGCN(x.shape[1], hidden_channels=(16,))
    >>> history = train_linkage_gcn(model, x, index, labels, sampler=TopKSampler(4), k2=2,
    ...                             active_connection=2, epochs=2, seed=0, verbose=False)
    >>> [h.epoch for h in history], history[1].lr
    ([0, 1], 0.001)
    """
    rank, world = _world()
    if not validation_skipped():
        x, _ = check_features(x, name="x")
        knn_index = check_knn_index(knn_index, x.shape[0], device=x.device)
        labels = check_labels(labels, n_samples=x.shape[0], return_tensor=True).to(x.device)
    _check_model(model, x, pivot_similarity, structure)
    if seed is not None and generator is not None:
        raise ValueError(
            "pass seed or generator, not both (the generator only serves to draw a seed)."
        )
    seed_given = seed is not None or generator is not None
    if seed is None:
        drawn = torch.randint(1 << 31, (1,), generator=generator)
        seed = _from_rank0(int(drawn), x.device)
    criterion = resolve_loss(loss)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=lr_decay)
    settings = dict(
        k2=k2, active_connection=active_connection, loss=loss, epochs=epochs,
        batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
        lr_decay=lr_decay, pivot_similarity=pivot_similarity,
    )  # fmt: skip
    history: list[EpochStats] = []
    start = 0
    if resume is not None:
        state = _Resume(resume, _fingerprint(model, x, knn_index, sampler, world, **settings))
        start, history, seed = state.load(model, optimizer, scheduler, seed, seed_given, x.device)
    net: nn.Module = model
    if world > 1:
        ids = [x.device.index] if x.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    for epoch in range(start, epochs):
        stats = _train_epoch(
            net, model, x, knn_index, labels, sampler, criterion, optimizer, epoch=epoch,
            seed=seed, verbose=verbose, structure=structure, **settings,
        )  # fmt: skip
        scheduler.step()
        history.append(stats)
        if rank == 0:
            on = f" on {world} ranks" if world > 1 else ""
            logger.info(
                "epoch %d/%d: loss %.4f, link P %.3f R %.3f, lr %.3g, %.1f s%s",
                epoch + 1, epochs, stats.loss, stats.precision, stats.recall, stats.lr,
                stats.seconds, on,
            )  # fmt: skip
            if resume is not None:
                state.save(model, optimizer, scheduler, seed, history)
        if callback is not None:
            callback(stats)
    if resume is not None and rank == 0:
        state.remove()
    return history


def _train_epoch(
    net: nn.Module,
    model: nn.Module,
    x: Tensor,
    knn_index: Tensor,
    labels: Tensor,
    sampler: Hop1Sampler,
    criterion: Callable[..., Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    epoch: int,
    seed: int,
    verbose: Optional[bool],
    structure: Optional[StructureContext] = None,
    **settings: Any,
) -> EpochStats:
    """One epoch of this rank's pivots (``model`` is ``net`` unwrapped from DDP)."""
    rank, world = _world()
    epochs, batch_size = settings["epochs"], settings["batch_size"]
    n = x.shape[0]
    order_gen, sample_gen = epoch_generators(seed, epoch)
    hop1 = _check_hop1(
        sampler.sample(knn_index, labels, generator=sample_gen),
        torch.arange(n, device=x.device), n, sampler.k,
    )  # fmt: skip
    mine = rank_pivots(torch.randperm(n, generator=order_gen), rank, world).to(x.device)
    model_seed = int(torch.randint(1 << 62, (1,), generator=order_gen)) + rank
    n_steps = math.ceil(mine.shape[0] / batch_size)
    uses_groups = getattr(criterion, "uses_groups", False)
    sparse = _is_plain_linkage_gcn(model)  # a plain LinkageGCN takes a CSR adj_t
    counts = _Counts(x.device)
    epoch_lr = optimizer.param_groups[0]["lr"]
    desc = f"epoch {epoch + 1}/{epochs}"
    bar = progress(
        range(n_steps), desc=desc, verbose=verbose if rank == 0 else False, long=True,
        unit="step", logger=logger if rank == 0 else None,
    )  # fmt: skip
    start = time.perf_counter()
    net.train()
    try:
        with _seeded(model_seed, x.device):
            for i in bar:
                pivots = mine[i * batch_size : (i + 1) * batch_size]
                logits, target, group = _train_forward(
                    net, x, knn_index, labels, pivots, hop1, settings["k2"],
                    settings["active_connection"], settings["pivot_similarity"], sparse,
                    structure,
                )  # fmt: skip
                value = _loss_of(criterion, uses_groups, logits, target, group)
                # the one host sync per step: the mean loss over the ranks, before backward,
                # so that a divergence stops every rank at the same step
                loss_value = float(_all_sum(value.detach().clone()) / world)
                if not math.isfinite(loss_value):
                    raise FloatingPointError(
                        _diverged(loss_value, epoch, epochs, i, n_steps, settings, epoch_lr)
                    )
                optimizer.zero_grad(set_to_none=True)
                value.backward()  # DDP all-reduces (averages) the gradients here
                optimizer.step()
                counts.update(logits.detach(), target, loss_value)
                if not bar.disable and i % 20 == 0:
                    s = counts.summary()
                    bar.set_postfix(loss=f"{s['loss']:.4f}", P=f"{s['precision']:.3f}",
                                    R=f"{s['recall']:.3f}", refresh=False)  # fmt: skip
    finally:
        bar.close()
    total = _all_sum(torch.cat([counts.counts, counts.counts.new_tensor([counts.n])]))
    counts.counts, counts.n = total[:4], int(total[4])  # the epoch's statistics over all ranks
    return EpochStats(
        epoch=epoch, lr=epoch_lr, n_pairs=counts.n, seconds=time.perf_counter() - start,
        extra={"world_size": world}, **counts.summary(),
    )  # fmt: skip


def _loss_of(
    criterion: Callable[..., Tensor], uses_groups: bool, logits: Tensor, target: Tensor,
    group: Tensor,
) -> Tensor:  # fmt: skip
    """The step's loss; NaN when the logits are not finite (the losses refuse them)."""
    try:
        if uses_groups:
            return criterion(logits, target, group=group)
        return criterion(logits, target)
    except ValueError:
        if bool(torch.isfinite(logits.detach()).all()):
            raise  # another problem than a divergence
        return logits.new_full((), float("nan"))


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run with torch's default generators (CPU, and ``device``'s) seeded; restore them after."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        for index in devices:
            torch.cuda.default_generators[index].manual_seed(seed)
        yield


#: Marks a resume file of :func:`train_linkage_gcn` (and its layout version).
_RESUME_FORMAT = "linkage_gcn.resume/1"


def _loss_name(loss: Any) -> str:
    """``'ce'`` for a name, the name of a function, the repr of a loss object."""
    if isinstance(loss, str):
        return repr(loss)
    name = getattr(loss, "__name__", None)
    return name if isinstance(name, str) else repr(loss)


def _fingerprint(
    model: nn.Module, x: Tensor, knn_index: Tensor, sampler: Hop1Sampler, world: int,
    **settings: Any,
) -> dict[str, Any]:  # fmt: skip
    """What a resumed training must share with the one that wrote the file (plain types)."""
    weights = model.state_dict()
    return {
        "model": f"{type(model).__name__} with {sum(t.numel() for t in weights.values())} "
        f"values in {len(weights)} tensors",
        "n_samples": int(x.shape[0]),
        "n_features": int(x.shape[1]),
        "knn_index width": int(knn_index.shape[1]),
        "k_at_hop": [int(sampler.k), int(settings["k2"])],
        "sampler": repr(sampler),
        **{k: v for k, v in settings.items() if k not in ("k2", "loss")},
        "loss": _loss_name(settings["loss"]),
        "world_size": int(world),
    }


class _Resume:
    """The resume file of one training: read once at the start, written after each epoch."""

    _KEYS = ("epoch", "seed", "fingerprint", "model", "optimizer", "scheduler", "history")

    def __init__(self, path: Path, fingerprint: dict[str, Any]) -> None:
        self.path, self.fingerprint = path, fingerprint

    def _refuse(self, problem: str) -> ValueError:
        return ValueError(
            f"resume file {str(self.path)!r} {problem}; this training will not overwrite it: "
            "remove it to start afresh, or pass another resume path."
        )

    def load(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        seed: int,
        seed_given: bool,
        device: torch.device,
    ) -> tuple[int, list[EpochStats], int]:
        """``(first epoch to run, history so far, seed)``; the states loaded; the same on all ranks.

        Every rank reads the file; a rank that cannot, or that sees another
        epoch than the others, makes every rank raise (none is left waiting).
        """
        error: Optional[ValueError] = None
        start, history = 0, []
        try:
            if self.path.exists():
                start, history, seed = self._read(model, optimizer, scheduler, seed, seed_given)
        except ValueError as exc:
            error = exc
        flags = _all_max(torch.tensor([int(error is not None), start, -start], device=device))
        if error is not None:
            raise error
        if bool(flags[0]):
            raise self._refuse("cannot be resumed from on another rank (its error says why)")
        if int(flags[1]) != -int(flags[2]):
            raise self._refuse(
                f"holds other epochs on other ranks ({-int(flags[2])} to {int(flags[1])} "
                "finished): keep it on a file system that every rank reads"
            )
        if start:
            logger.info(
                "resuming from %s: %d of %d epoch(s) finished", self.path, start,
                self.fingerprint["epochs"],
            )  # fmt: skip
        return start, history, seed

    def _read(
        self, model: nn.Module, optimizer: Any, scheduler: Any, seed: int, seed_given: bool
    ) -> tuple[int, list[EpochStats], int]:
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # not a torch file, truncated, or holding other objects
            raise self._refuse(f"cannot be read ({type(exc).__name__}: {exc})") from exc
        if not isinstance(state, dict) or state.get("format") != _RESUME_FORMAT:
            raise self._refuse("is not a resume file of train_linkage_gcn")
        missing = [k for k in self._KEYS if k not in state]
        if missing:
            raise self._refuse(f"is damaged: it lacks {', '.join(missing)}")
        stored = state["fingerprint"]
        if not isinstance(stored, dict):
            raise self._refuse("is damaged: its fingerprint is not a mapping")
        differs = [
            f"{key} is {stored.get(key)!r} there, {value!r} here"
            for key, value in self.fingerprint.items()
            if stored.get(key) != value
        ]
        if seed_given and state["seed"] != seed:
            differs.append(f"seed is {state['seed']!r} there, {seed!r} here")
        if differs:
            raise self._refuse("was written by another training: " + "; ".join(differs))
        epoch, rows = state["epoch"], state["history"]
        if not isinstance(epoch, int) or not 0 < epoch <= stored["epochs"] or len(rows) != epoch:
            raise self._refuse(f"is damaged: {epoch!r} finished epochs, {len(rows)} in its history")
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            history = [EpochStats(**row) for row in rows]
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise self._refuse(f"is damaged ({type(exc).__name__}: {exc})") from exc
        return epoch, history, int(state["seed"])

    def save(
        self, model: nn.Module, optimizer: Any, scheduler: Any, seed: int,
        history: list[EpochStats],
    ) -> None:  # fmt: skip
        """Write the state after the last finished epoch (atomically: never a partial file)."""
        state = {
            "format": _RESUME_FORMAT,
            "epoch": len(history),
            "seed": int(seed),
            "fingerprint": self.fingerprint,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": [dataclasses.asdict(h) for h in history],
        }
        atomic_write(self.path, lambda f: torch.save(state, f), overwrite=True)

    def remove(self) -> None:
        """The training completed: the file is no longer needed."""
        self.path.unlink(missing_ok=True)


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
    structure: Optional[StructureContext] = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Logits, targets and subgraph of each labelled pair, for one training step.

    The subgraphs are built as bare tensors (:func:`~linkage_gcn.ips.build_ips_graph`:
    three host synchronisations, no PyG collation bookkeeping); a plain
    :class:`~linkage_gcn.nn.LinkageGCN` aggregates with a CSR ``adj_t``,
    another model gets the ``edge_index`` of :func:`~linkage_gcn.ips.build_ips`.
    """
    rows = hop1.index_select(0, pivots)
    graph = build_ips_graph(knn_index, pivots, rows, k2=k2, active_connection=active_connection)
    logits = _forward(model, graph, x, pivots, pivot_similarity, structure, sparse)
    k1 = rows.shape[1]
    target = labels.index_select(0, rows.reshape(-1)) == labels.index_select(
        0, pivots
    ).repeat_interleave(k1)
    group = torch.arange(pivots.shape[0], device=x.device).repeat_interleave(k1)
    return logits, target.long(), group


def _forward(
    model: nn.Module,
    graph: Any,
    x: Tensor,
    pivots: Tensor,
    pivot_similarity: bool,
    structure: Optional[StructureContext],
    sparse: bool,
) -> Tensor:
    """The model's logits on an IPS graph: its features, then a CSR ``adj_t`` or ``edge_index``."""
    feats = graph.features(x, pivots, pivot_similarity, structure)
    adjacency = graph.adj_t(feats.dtype) if sparse else graph.edge_index()
    return model(feats, adjacency, graph.hop1_index)


def _diverged(
    value: float, epoch: int, epochs: int, step: int, steps: int, settings: dict[str, Any],
    epoch_lr: float,
) -> str:  # fmt: skip
    """The message of a diverged training: where, with which ``lr`` and ``loss``, what to try.

    Examples
    --------
    >>> print(_diverged(float("nan"), 0, 4, 2, 10, {"lr": 1e6, "loss": "ce"}, 1e6))
    training diverged: the loss is nan at epoch 1/4, step 3/10 (that step was not applied), \
with lr=1e+06 and loss='ce'. Try a lower lr (e.g. lr=100000) or another loss (e.g. loss='cb').
    """
    lr, loss = settings["lr"], settings["loss"]
    now = f" ({epoch_lr:g} in this epoch)" if epoch_lr != lr else ""
    other = "'cb'" if loss == "ce" else "'ce'"
    return (
        f"training diverged: the loss is {value} at epoch {epoch + 1}/{epochs}, step "
        f"{step + 1}/{steps} (that step was not applied), with lr={lr:g}{now} and "
        f"loss={_loss_name(loss)}. Try a lower lr (e.g. lr={lr / 10:g}) or another loss "
        f"(e.g. loss={other})."
    )


#: Nodes per scoring batch that keep the activations in the caches of a CPU (the throughput
#: falls as a batch outgrows them: figures in docs/scaling.md), for layers of
#: :data:`_BATCH_WIDTH` channels (a narrower model takes proportionally more), and enough
#: work per kernel launch on a GPU.
_BATCH_NODES = {"cpu": 4096, "cuda": 1 << 18}
#: The layer width :data:`_BATCH_NODES` was measured at on the CPU (the reference's 512).
_BATCH_WIDTH = 512
#: Largest first-layer projection table (all N nodes) the fast path precomputes.
_TABLE_BYTES = 1 << 30


def _as_device(value: Any, name: str) -> torch.device:
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{name} must be a torch.device or its name, got {value!r}.") from exc


@validate_params(
    device=Check(_as_device, "a torch.device or its name"), width=Integer(1, optional=True)
)
def default_inference_batch_size(
    k1: int, k2: int, device: Any = "cpu", width: Optional[int] = None
) -> int:
    """Pivots per scoring batch: about 4096 IPS nodes on a CPU, 262144 on a GPU.

    The forward pass slows down as a batch outgrows the CPU caches, while a
    GPU needs large batches to fill its cores (measured throughputs per
    batch size: docs/scaling.md). On a CPU, a model whose widest layer has
    ``width`` channels, fewer than 512, takes ``512 / width`` times the
    nodes: its activations fill the same bytes. The bound ``k1 * (k2 + 1) + 1``
    of the IPS size is used.

    Examples
    --------
    >>> default_inference_batch_size(20, 5), default_inference_batch_size(80, 5)
    (33, 8)
    >>> default_inference_batch_size(200, 10), default_inference_batch_size(20, 5, "cuda")
    (1, 2166)
    >>> default_inference_batch_size(20, 5, width=256)  # face-any's layers
    67
    """
    nodes = _BATCH_NODES.get(device.type, _BATCH_NODES["cuda"])
    if device.type == "cpu" and width is not None and width < _BATCH_WIDTH:
        nodes = nodes * _BATCH_WIDTH // width
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


@validate_params(batch_size=PARAMS["inference_batch_size"], dst=Integer(0, optional=True))
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
    dst: Optional[int] = None,
    structure: Optional[StructureContext] = None,
) -> Optional[tuple[Tensor, Tensor, Tensor]]:
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

    One process or many: under an initialised ``torch.distributed`` process
    group, call it on every rank with the same arguments. The batches of the
    single-process run are dealt to the ranks in contiguous runs, each rank
    scores its own, and the scores are gathered on every rank (or on
    ``dst``): bitwise those of one process with the same ``batch_size``.

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
        Progress bar on rank 0 (``None``: on a terminal, for long work; off a
        terminal long scoring logs its progress on ``linkage_gcn.progress``).
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
        plain :class:`~linkage_gcn.nn.LinkageGCN` only; faster on AVX2 CPUs,
        see docs/scaling.md) are approximate: link probabilities typically
        move by up to ~1e-2.
    dst : int, optional
        Under a process group: gather the scores on this rank only (the
        others return ``None``); by default every rank gets them.
    structure : StructureContext, optional
        For a model trained on the structure features: the context of ``x``
        and ``knn_index`` (:meth:`StructureContext.build
        <linkage_gcn.structure.StructureContext.build>`). Scored through the
        plain path.

    Returns
    -------
    src, dst : torch.LongTensor of shape (P * k1,)
        Directed pairs (pivot, neighbour), ``P = N`` by default.
    scores : torch.Tensor of shape (P * k1,)
        Link probabilities ``softmax(logits)[:, 1]``. ``None`` instead of the
        triple on the ranks other than ``dst``.

    Raises
    ------
    ValueError, TypeError
        On bad inputs, before any scoring.
    FloatingPointError
        When the model produces NaN scores (non-finite weights).
    """
    rank, world = _world()
    dst = _check_dst(dst)
    if not validation_skipped():
        x, _ = check_features(x, name="x")
        knn_index = check_knn_index(knn_index, x.shape[0], device=x.device)
        if pivots is not None:
            pivots = check_nodes(pivots, x.shape[0], name="pivots").to(x.device)
    _check_model(model, x, pivot_similarity, structure)
    _check_precision(precision, model, x.device, structure)
    k1 = min(k1, knn_index.shape[1])
    if batch_size is None:
        batch_size = default_inference_batch_size(k1, k2, x.device, _widest_layer(model))
    if pivots is None:
        pivots = torch.arange(x.shape[0], device=x.device)
    p = pivots.shape[0]
    share = math.ceil(math.ceil(p / batch_size) / world) * batch_size  # whole batches per rank
    scores = _score_pivots(
        model, x, knn_index, pivots[rank * share : (rank + 1) * share], k1=k1, k2=k2,
        active_connection=active_connection, batch_size=batch_size,
        verbose=verbose if rank == 0 else False, pivot_similarity=pivot_similarity,
        precision=precision, table=_use_table(model, x, p * k1),
        logger="linkage_gcn.progress" if rank == 0 else None, structure=structure,
    )  # fmt: skip
    scores = _gather_rows(scores, share, dst)
    if scores is None:
        return None
    scores = scores[:p]
    bad = torch.isnan(scores)
    if bool(bad.any()):
        raise FloatingPointError(
            f"the model gave NaN link scores for {int(bad.sum())} of {bad.numel()} pairs: its "
            "weights are not finite (a diverged training?)."
        )
    hop1 = knn_index[pivots, :k1]
    return pivots.repeat_interleave(k1), hop1.reshape(-1), scores.reshape(-1)


def _widest_layer(model: nn.Module) -> Optional[int]:
    """The widest graph convolution of a plain LinkageGCN (``None`` for other models)."""
    if not _is_plain_linkage_gcn(model):
        return None
    return max(conv.out_channels for conv in model.convs)


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
    logger: Optional[str],
    structure: Optional[StructureContext] = None,
) -> Tensor:
    """The ``(P, k1)`` link probabilities of validated inputs (no host sync in the loop)."""
    model.eval()
    hop1 = knn_index[pivots, :k1]
    p = pivots.shape[0]
    scorer = None
    sparse = _is_plain_linkage_gcn(model)
    if sparse:  # the fast path of a plain LinkageGCN, on coordinates or structure features
        scorer = model.link_scorer(
            x, pivot_similarity=pivot_similarity, table=table and structure is None,
            precision=precision, structure=structure,
        )  # fmt: skip
    scores = torch.empty(p, k1, device=x.device)
    steps = range(0, p, batch_size)
    long = p > 20 * batch_size
    bar = progress(
        steps, desc="scoring links", verbose=verbose, long=long, unit="batch", logger=logger
    )
    for start in bar:
        rows = slice(start, min(start + batch_size, p))
        graph = build_ips_graph(
            knn_index, pivots[rows], hop1[rows], k2=k2, active_connection=active_connection
        )
        if scorer is not None:
            logits = scorer.logits(graph)
        else:
            with _autocast(precision, x.device):
                logits = _forward(
                    model, graph, x, pivots[rows], pivot_similarity, structure, sparse
                )
        scores[rows] = torch.softmax(logits.float(), dim=1)[:, 1].view(-1, k1)
    return scores
