"""Neighbour selection: which k nodes of a pivot's neighbourhood become its 1-hop set.

A sampler turns a kNN table into the (N, k) 1-hop neighbours of every pivot at
once. Selection is kept apart from subgraph construction
(:func:`linkage_gcn.ips.build_ips`), so any sampler plugs into any model that
consumes 1-hop sets. :class:`Hop1Sampler` is their base class (called
``NeighborSampler`` up to 0.2; that name, which PyG's
:class:`torch_geometric.loader.NeighborSampler` also bears, remains as a
deprecated alias for one release).
"""

from __future__ import annotations

import inspect
import math
import warnings
from typing import Any, Optional

import torch
from torch import Tensor

from ._validation import (
    ArrayLike,
    check_generator,
    check_in_options,
    check_int,
    check_labels,
    check_real,
    to_like,
)
from .knn import check_knn_index

__all__ = [
    "SAMPLERS",
    "Hop1Sampler",
    "RIWSSampler",
    "ReSampler",
    "TopKSampler",
    "resolve_sampler",
]

#: Old names kept for one release: old name -> new name (access warns).
_DEPRECATED = {"NeighborSampler": "Hop1Sampler"}


def __getattr__(name: str) -> Any:
    """Deprecated aliases: ``NeighborSampler`` is :class:`Hop1Sampler` (warns)."""
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        warnings.warn(
            f"linkage_gcn.samplers.{name} is deprecated and will be removed in the next "
            f"release; use linkage_gcn.samplers.{new} (the same class; the old name collides "
            "with torch_geometric.loader.NeighborSampler).",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_labels(labels: Any, n: int, device: torch.device, table: str) -> Tensor:
    """Integer identity labels of shape (N,) or (N, 1), as an int64 (N,) tensor on ``device``."""
    y = check_labels(labels, name="labels", allow_negative=True, return_tensor=True)
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but {table} has {n} rows.")
    return y.to(device)


class Hop1Sampler:
    """Base class of 1-hop neighbour selectors: a kNN table in, a (N, k) 1-hop set out.

    The name says what it gives: the 1-hop set (``hop1``) of every pivot,
    which :func:`linkage_gcn.ips.build_ips` turns into an Instance Pivot
    Subgraph. (It was ``NeighborSampler`` up to 0.2, a name PyG gives to a
    subgraph loader; the old name is a deprecated alias.) Subclasses
    implement :meth:`_sample` on tensors; :meth:`sample` validates the input
    with :func:`linkage_gcn.knn.check_knn_index` and converts numpy in to
    numpy out.

    Parameters
    ----------
    k : int
        1-hop neighbours per pivot.
    """

    #: Whether the selection uses identity labels (training-time only).
    needs_labels: bool = False
    #: Whether two calls can give different selections (drawn anew each epoch).
    stochastic: bool = False

    def __init__(self, k: int) -> None:
        self.k = k

    def pool_size(self) -> int:
        """Width of the kNN table this sampler reads (its candidate pool).

        Also validates the sampler's parameters.
        """
        return check_int(self.k, "k", minimum=1)

    def _required_width(self, pool: int) -> tuple[Optional[int], str]:
        """The fewest kNN columns :meth:`sample` accepts, and why (``None``: any width)."""
        return None, ""

    def sample(
        self,
        knn_index: ArrayLike,
        labels: Optional[ArrayLike] = None,
        generator: Optional[torch.Generator] = None,
        *,
        name: str = "knn_index",
    ) -> ArrayLike:
        """Select the 1-hop neighbours of every pivot.

        Parameters
        ----------
        knn_index : array-like or torch.Tensor of int, shape (N, K)
            Neighbour ids sorted by decreasing similarity, self excluded,
            each in ``[0, N)`` (row ``i`` lists the neighbours of node ``i``).
            Ids must have an integer dtype: floating tables are refused even
            when they hold whole numbers (ids are never rounded; cast with
            ``.astype(int)`` / ``.long()``).
        labels : array-like or torch.Tensor of shape (N,) or (N, 1), optional
            Integer identity labels, needed by label-aware samplers (floats
            are accepted when they hold whole numbers).
        generator : torch.Generator, optional
            Source of randomness for stochastic samplers.
        name : str, default="knn_index"
            What error messages call the table (an attribute, a flag, a file).

        Returns
        -------
        hop1 : same kind as ``knn_index``, int64, shape (N, k)
            Row ``i`` holds the 1-hop neighbours of pivot ``i``.

        Raises
        ------
        ValueError
            When ``knn_index`` is not a 2-D table of integer ids (floating,
            boolean or complex dtypes included), holds an id outside
            ``[0, N)`` or a row's own id in the columns the sampler reads, is
            narrower than the sampler's pool; when ``labels`` are missing for
            a label-aware sampler, have the wrong length or shape, or hold
            non-integer values; when a parameter of the sampler is invalid.
        TypeError
            When ``knn_index`` or ``labels`` is not numeric, or ``generator``
            is not a :class:`torch.Generator`.
        """
        pool = self.pool_size()  # validates the parameters first
        check_generator(generator)
        min_width, why = self._required_width(pool)
        was_numpy = not isinstance(knn_index, Tensor)
        index = check_knn_index(knn_index, name=name, width=pool, min_width=min_width, why=why)
        y = None
        if labels is not None:
            y = _check_labels(labels, index.shape[0], index.device, name)
        elif self.needs_labels:
            raise ValueError(f"{type(self).__name__} needs identity labels to sample.")
        return to_like(self._sample(index, y, generator), was_numpy)

    def _sample(
        self,
        knn_index: torch.Tensor,
        labels: Optional[torch.Tensor],
        generator: Optional[torch.Generator],
    ) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    def _params(self) -> dict[str, Any]:
        return {"k": self.k}


class TopKSampler(Hop1Sampler):
    """The L-GCN selection: the ``k`` nearest neighbours of each pivot.

    When the kNN table is narrower than ``k`` (tiny data sets), all of its
    columns are used.

    Examples
    --------
    >>> import numpy as np
    >>> TopKSampler(2).sample(np.array([[1, 2, 3], [0, 2, 3], [3, 1, 0], [2, 0, 1]]))
    array([[1, 2],
           [0, 2],
           [3, 1],
           [2, 0]])
    >>> TopKSampler(2)
    TopKSampler(k=2)
    """

    def _sample(self, knn_index, labels, generator):
        k = self.pool_size()
        return knn_index[:, :k].contiguous()


class _PoolSampler(Hop1Sampler):
    """A label-aware sampler drawing from the ``floor(gamma * k)`` nearest neighbours (eKNN)."""

    needs_labels = True
    stochastic = True

    def __init__(self, k: int, gamma: float = 2.0) -> None:
        super().__init__(k)
        self.gamma = gamma

    def pool_size(self) -> int:
        """``floor(gamma * k)``: the width of the candidate pool (eKNN)."""
        k = check_int(self.k, "k", minimum=1)
        gamma = check_real(self.gamma, "gamma", minimum=1.0)
        return math.floor(gamma * k + 1e-9)

    def _required_width(self, pool: int) -> tuple[Optional[int], str]:
        """The whole pool: ``floor(gamma * k)`` columns."""
        return pool, f"{self!r} draws from the floor(gamma * k) = {pool} nearest neighbours"

    def _pool(self, knn_index: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The candidate pool (N, P) and whether each candidate shares the pivot's identity."""
        pool = knn_index[:, : self.pool_size()]
        return pool, labels[pool] == labels.unsqueeze(1)

    def _params(self) -> dict[str, Any]:
        return {"k": self.k, "gamma": self.gamma}


def _uniform(shape: tuple[int, ...], generator: Optional[torch.Generator], device) -> Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


class RIWSSampler(_PoolSampler):
    r"""Reverse-Imbalance Weighted Sampling (Yang et al., equation 4).

    For each pivot, the candidate pool is its ``floor(gamma * k)`` nearest
    neighbours (eKNN, self excluded). Each candidate of the pivot's identity
    gets probability :math:`\frac{1}{2|pos|}`, each other candidate
    :math:`\frac{1}{2|neg|}`, and ``k`` candidates are drawn without
    replacement (Efraimidis-Spirakis keys, all pivots at once; the same
    distribution as successive draws, ``numpy.random.choice(..., p=...,
    replace=False)`` in the paper's code). When the pool holds one class
    only, the top ``k`` of the pool are taken. ``gamma = 1`` is exactly the
    top-k (L-GCN) selection. A new draw is made at every call (every
    epoch). The chosen neighbours are returned in pool order (by decreasing
    similarity).

    Parameters
    ----------
    k : int
        1-hop neighbours per pivot.
    gamma : float
        Pool expansion factor, >= 1 (2.0 in the paper).

    Notes
    -----
    Deliberate difference from the paper's code (the RIWS fork of L-GCN):
    there the kNN row includes the pivot at position 0, so its pool, the
    first ``int(gamma * k)`` entries of that row, holds
    ``floor(gamma * k) - 1`` candidates. Here the kNN table excludes the
    pivot and the pool holds ``floor(gamma * k)`` candidates, so that
    ``gamma = 1`` gives exactly the ``k`` nearest neighbours (the fork cannot
    draw ``k`` distinct nodes from ``k - 1`` candidates) and ``gamma`` means
    the same for every ``k``. To reproduce the fork's pool for a given ``k``,
    pass ``gamma = (floor(gamma_fork * k) - 1) / k``.

    Examples
    --------
    >>> import numpy as np
    >>> knn_index = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [3, 4, 0, 1], [2, 4, 0, 1], [3, 2, 0, 1]])
    >>> labels = np.array([0, 0, 1, 1, 1])
    >>> g = torch.Generator().manual_seed(0)
    >>> hop1 = RIWSSampler(2, gamma=2.0).sample(knn_index, labels, generator=g)
    >>> hop1.shape
    (5, 2)
    >>> RIWSSampler(10)
    RIWSSampler(k=10, gamma=2.0)
    """

    def _sample(self, knn_index, labels, generator):
        pool, pos = self._pool(knn_index, labels)
        k = min(self.k, pool.shape[1])
        n_pos = pos.sum(1, keepdim=True)
        n_neg = pool.shape[1] - n_pos
        weight = torch.where(pos, 0.5 / n_pos.clamp_min(1), 0.5 / n_neg.clamp_min(1))
        # Weighted sampling without replacement: the k smallest Exp(1) / w keys.
        u = _uniform(tuple(pool.shape), generator, pool.device).clamp_min(1e-12)
        keys = -torch.log(u) / weight
        one_class = (n_pos == 0) | (n_neg == 0)
        rank = torch.arange(pool.shape[1], device=pool.device, dtype=keys.dtype)
        keys = torch.where(one_class, rank.expand_as(keys), keys)  # top-k of the pool
        chosen = keys.topk(k, dim=1, largest=False).indices.sort(dim=1).values
        return pool.gather(1, chosen)


#: Modes of :class:`ReSampler`.
RS_MODES = ("fork", "random")


class ReSampler(_PoolSampler):
    """Plain re-sampling (RS, Yang et al., Figure 1b): half positives, half negatives.

    The candidates are the ``floor(gamma * k)`` nearest neighbours of the
    pivot (the pool, in order of decreasing similarity); positives share the
    pivot's identity, negatives do not. Of the ``k`` 1-hop slots,
    ``ceil(k / 2)`` go to positives and ``floor(k / 2)`` to negatives, except
    when the positives are the short side (fewer than ``k / 2``): then the
    positives get ``floor(k / 2)`` and the negatives ``ceil(k / 2)`` (the
    counts of the paper's code; they differ for odd ``k`` only). A side with
    fewer candidates than its slots is over-sampled by duplication, its
    candidates repeated cyclically. When the pool holds one class only, the
    top ``k`` of the pool are taken. Repeated 1-hop entries give repeated
    labelled pairs in the IPS.

    Parameters
    ----------
    k : int
        1-hop neighbours per pivot.
    gamma : float
        Pool expansion factor, >= 1 (1.2 in the paper for RS).
    mode : {"fork", "random"}, default="fork"
        How each side is filled.

        - ``"fork"`` (the paper's code, deterministic): the nearest
          candidates of each side, the short side repeated cyclically in pool
          order. The same selection at every call (every epoch).
        - ``"random"``: each side under-sampled at random (a new draw at
          every call), the short side repeated as evenly as possible in a
          random order; the counts per side are those of ``"fork"``.

    Notes
    -----
    The 1-hop set lists the short side first (positives first when neither
    is short), as the paper's code does. As for :class:`RIWSSampler`, the
    pool holds ``floor(gamma * k)`` candidates, self excluded, where the
    paper's code holds ``floor(gamma * k) - 1`` (its kNN row includes the
    pivot).

    Examples
    --------
    >>> import numpy as np
    >>> knn_index = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [3, 4, 0, 1], [2, 4, 0, 1], [3, 2, 0, 1]])
    >>> labels = np.array([0, 0, 1, 1, 1])
    >>> ReSampler(4, gamma=1.0).sample(knn_index, labels)  # pivot 0: its one positive twice
    array([[1, 1, 2, 3],
           [0, 0, 2, 3],
           [3, 4, 0, 1],
           [2, 4, 0, 1],
           [3, 2, 0, 1]])
    >>> ReSampler(4, gamma=1.0)
    ReSampler(k=4, gamma=1.0)
    >>> ReSampler(4, mode="random")
    ReSampler(k=4, gamma=1.2, mode='random')
    """

    def __init__(self, k: int, gamma: float = 1.2, mode: str = "fork") -> None:
        super().__init__(k, gamma)
        self.mode = mode

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        """Whether two calls can differ: only in ``mode="random"``."""
        return self.mode == "random"

    def pool_size(self) -> int:
        """``floor(gamma * k)``: the width of the candidate pool (eKNN)."""
        check_in_options(self.mode, RS_MODES, "mode")
        return super().pool_size()

    def _sample(self, knn_index, labels, generator):
        pool, pos = self._pool(knn_index, labels)
        n, width = pool.shape
        k = self.k
        n_pos = pos.sum(1, keepdim=True)
        n_neg = width - n_pos
        # the candidates of each side, positives first: in pool order, or shuffled
        side_key = (~pos).to(torch.float64) * 2
        if self.mode == "random":
            side_key = side_key + _uniform((n, width), generator, pool.device).to(side_key.dtype)
        order = side_key.argsort(dim=1, stable=True)
        # slots per side, and which side comes first (the short one)
        pos_short = 2 * n_pos < k
        neg_short = ~pos_short & (2 * n_neg < k)
        k_pos = torch.where(pos_short, k // 2, k - k // 2)
        first_neg = neg_short
        n_first = torch.where(first_neg, k - k_pos, k_pos)
        j = torch.arange(k, device=pool.device).unsqueeze(0)
        in_first = j < n_first
        is_neg = in_first == first_neg  # slot holds a negative
        within = torch.where(in_first, j, j - n_first)
        size = torch.where(is_neg, n_neg, n_pos).clamp_min(1)
        slot = torch.where(is_neg, n_pos, 0) + within % size  # position in `order`
        one_class = (n_pos == 0) | (n_neg == 0)
        chosen = torch.where(one_class, j.expand(n, k), order.gather(1, slot.clamp_max(width - 1)))
        return pool.gather(1, chosen)

    def _params(self) -> dict[str, Any]:
        params = super()._params()
        if self.mode != "fork":
            params["mode"] = self.mode
        return params


#: Samplers selectable by name in :class:`linkage_gcn.LinkageClusterer`.
SAMPLERS: dict[str, type[Hop1Sampler]] = {
    "topk": TopKSampler,
    "rs": ReSampler,
    "riws": RIWSSampler,
}


def resolve_sampler(sampler: Any, k: Optional[int], **kwargs: Any) -> Hop1Sampler:
    """Turn a sampler name or object into a sampler selecting ``k`` neighbours.

    Parameters
    ----------
    sampler : str or Hop1Sampler
        A name among :data:`SAMPLERS` or a sampler object (used as is).
    k : int or None
        1-hop neighbours per pivot. A sampler given by name is built with
        it; a sampler object must select exactly ``k`` neighbours (``None``
        accepts the object's own ``k``).
    **kwargs
        Extra parameters for a sampler given by name (e.g. ``gamma``);
        ignored for a sampler object, whose own parameters apply.

    Raises
    ------
    ValueError
        For an unknown name, a sampler object whose ``k`` is not ``k``, or a
        parameter the sampler refuses (checked now, before any sampling).

    Examples
    --------
    >>> resolve_sampler("topk", 5)
    TopKSampler(k=5)
    >>> resolve_sampler(RIWSSampler(10), 20)
    Traceback (most recent call last):
    ...
    ValueError: the sampler RIWSSampler(k=10, gamma=2.0) selects k=10 neighbours per pivot but ...
    """
    if isinstance(sampler, Hop1Sampler):
        if k is not None and sampler.k != k:
            raise ValueError(
                f"the sampler {sampler!r} selects k={sampler.k} neighbours per pivot but "
                f"k={k} are needed (e.g. k_at_hop[0]); build it with k={k}, or pass its name."
            )
        sampler.pool_size()  # its parameters, now
        return sampler
    if isinstance(sampler, str) and sampler in SAMPLERS:
        if k is None:
            raise ValueError(f"k is needed to build the sampler {sampler!r} by name.")
        cls = SAMPLERS[sampler]
        names = inspect.signature(cls).parameters
        accepted = {k_: v for k_, v in kwargs.items() if k_ in names}
        built = cls(k, **accepted)
        built.pool_size()  # validates k and the extra parameters now
        return built
    choices = ", ".join(repr(s) for s in SAMPLERS)
    raise ValueError(
        f"unknown sampler {sampler!r}; choose one of {choices} or pass a Hop1Sampler."
    )
