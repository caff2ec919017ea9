"""Neighbour selection: which k nodes of a pivot's neighbourhood become its 1-hop set.

A sampler turns a kNN table into the (N, k) 1-hop neighbours of every pivot at
once. Selection is kept apart from subgraph construction
(:func:`linkage_gcn.ips.build_ips`), so any sampler plugs into any model that
consumes 1-hop sets.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Optional

import torch
from torch import Tensor

from ._validation import ArrayLike, as_tensor, check_int, check_real, to_like

__all__ = [
    "SAMPLERS",
    "NeighborSampler",
    "RIWSSampler",
    "ReSampler",
    "TopKSampler",
    "resolve_sampler",
]


class NeighborSampler:
    """Base class of 1-hop neighbour selectors.

    Subclasses implement :meth:`_sample` on tensors; :meth:`sample` validates
    the input and converts numpy in to numpy out.

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
        """Width of the kNN table this sampler reads (its candidate pool)."""
        return check_int(self.k, "k", minimum=1)

    def sample(
        self,
        knn_index: ArrayLike,
        labels: Optional[ArrayLike] = None,
        generator: Optional[torch.Generator] = None,
    ) -> ArrayLike:
        """Select the 1-hop neighbours of every pivot.

        Parameters
        ----------
        knn_index : array-like or torch.Tensor of shape (N, K)
            Neighbour ids sorted by decreasing similarity, self excluded.
        labels : array-like or torch.Tensor of shape (N,), optional
            Identity labels, needed by label-aware samplers.
        generator : torch.Generator, optional
            Source of randomness for stochastic samplers.

        Returns
        -------
        hop1 : same kind as ``knn_index``, int64, shape (N, k)
            Row ``i`` holds the 1-hop neighbours of pivot ``i``.
        """
        index, was_numpy = as_tensor(knn_index, name="knn_index", dtype=torch.long)
        if index.dim() != 2 or index.shape[1] == 0:
            raise ValueError(
                f"knn_index must be a 2-D (N, K) table with K >= 1, got shape {tuple(index.shape)}."
            )
        y = None
        if labels is not None:
            y, _ = as_tensor(labels, name="labels", dtype=torch.long)
            y = y.reshape(-1).to(index.device)
            if y.shape[0] != index.shape[0]:
                raise ValueError(
                    f"labels has {y.shape[0]} entries but knn_index has {index.shape[0]} rows."
                )
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


class TopKSampler(NeighborSampler):
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


class _PoolSampler(NeighborSampler):
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

    def _pool(self, knn_index: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """The candidate pool (N, P) and whether each candidate shares the pivot's identity."""
        size = self.pool_size()
        if knn_index.shape[1] < size:
            raise ValueError(
                f"{type(self).__name__}(k={self.k}, gamma={self.gamma}) draws from the "
                f"floor(gamma * k) = {size} nearest neighbours, but the kNN table has only "
                f"{knn_index.shape[1]} columns; build it with at least {size} neighbours."
            )
        pool = knn_index[:, :size]
        return pool, labels[pool] == labels.unsqueeze(1)

    def _params(self) -> dict[str, Any]:
        return {"k": self.k, "gamma": self.gamma}


def _uniform(shape: tuple[int, ...], generator: Optional[torch.Generator], device) -> Tensor:
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


class RIWSSampler(_PoolSampler):
    r"""Reverse-Imbalance Weighted Sampling (Yang et al., eq. 4).

    For each pivot, the candidate pool is its ``floor(gamma * k)`` nearest
    neighbours (eKNN, self excluded). Each candidate of the pivot's identity
    gets probability :math:`\frac{1}{2|pos|}`, each other candidate
    :math:`\frac{1}{2|neg|}`, and ``k`` candidates are drawn without
    replacement (Efraimidis-Spirakis keys, all pivots at once). When the pool
    holds one class only, the top ``k`` of the pool are taken. ``gamma = 1``
    is exactly the top-k (L-GCN) selection. A new draw is made at every call
    (every epoch). The chosen neighbours are returned in pool order (by
    decreasing similarity).

    Parameters
    ----------
    k : int
        1-hop neighbours per pivot.
    gamma : float
        Pool expansion factor, >= 1 (2.0 in the paper).

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


class ReSampler(_PoolSampler):
    """Plain re-sampling (RS, Yang et al. Fig. 1b): half positives, half negatives.

    From the ``floor(gamma * k)`` nearest neighbours, ``k // 2`` same-identity
    candidates are drawn by random under-sampling and ``k - k // 2`` others;
    a side with too few candidates is over-sampled by duplication (each of its
    candidates repeated as evenly as possible, in random order). When the pool
    holds one class only, the top ``k`` of the pool are taken. Repeated 1-hop
    entries give repeated labelled pairs in the IPS.

    Parameters
    ----------
    k : int
        1-hop neighbours per pivot.
    gamma : float
        Pool expansion factor, >= 1 (1.2 in the paper for RS).

    Examples
    --------
    >>> import numpy as np
    >>> knn_index = np.array([[1, 2, 3, 4], [0, 2, 3, 4], [3, 4, 0, 1], [2, 4, 0, 1], [3, 2, 0, 1]])
    >>> labels = np.array([0, 0, 1, 1, 1])
    >>> hop1 = ReSampler(4, gamma=1.0).sample(knn_index, labels, torch.Generator().manual_seed(0))
    >>> int((labels[hop1] == labels[:, None]).sum(1)[0])  # pivot 0: 2 positives (1 duplicated)
    2
    """

    def __init__(self, k: int, gamma: float = 1.2) -> None:
        super().__init__(k, gamma)

    def _sample(self, knn_index, labels, generator):
        pool, pos = self._pool(knn_index, labels)
        n, width = pool.shape
        k = self.k
        n_pos = pos.sum(1, keepdim=True)
        n_neg = width - n_pos
        # positives first, each side in random order
        u = _uniform((n, width), generator, pool.device)
        order = (u + (~pos).to(u.dtype) * 2).argsort(dim=1)
        j = torch.arange(k, device=pool.device).unsqueeze(0)
        half = k // 2
        slot = torch.where(
            j < half,
            j % n_pos.clamp_min(1),
            n_pos + (j - half) % n_neg.clamp_min(1),
        )
        one_class = (n_pos == 0) | (n_neg == 0)
        top = j.clamp_max(width - 1).expand(n, k)
        chosen = torch.where(one_class, top, order.gather(1, slot.clamp_max(width - 1)))
        return pool.gather(1, chosen)


#: Samplers selectable by name in :class:`linkage_gcn.LinkageClusterer`.
SAMPLERS: dict[str, type[NeighborSampler]] = {
    "topk": TopKSampler,
    "rs": ReSampler,
    "riws": RIWSSampler,
}


def resolve_sampler(sampler: Any, k: int, **kwargs: Any) -> NeighborSampler:
    """Turn a sampler name or object into a sampler selecting ``k`` neighbours.

    Parameters
    ----------
    sampler : str or NeighborSampler
        A name among :data:`SAMPLERS` or a sampler object (used as is).
    k : int
        1-hop neighbours per pivot, for a sampler given by name.
    **kwargs
        Extra parameters for a sampler given by name (e.g. ``gamma``).

    Examples
    --------
    >>> resolve_sampler("topk", 5)
    TopKSampler(k=5)
    """
    if isinstance(sampler, NeighborSampler):
        return sampler
    if isinstance(sampler, str) and sampler in SAMPLERS:
        cls = SAMPLERS[sampler]
        names = inspect.signature(cls).parameters
        accepted = {k_: v for k_, v in kwargs.items() if k_ in names}
        return cls(k, **accepted)
    choices = ", ".join(repr(s) for s in SAMPLERS)
    raise ValueError(
        f"unknown sampler {sampler!r}; choose one of {choices} or pass a NeighborSampler."
    )
