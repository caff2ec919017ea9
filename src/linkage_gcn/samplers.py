"""Neighbour selection: which k nodes of a pivot's neighbourhood become its 1-hop set.

A sampler turns a kNN table into the (N, k) 1-hop neighbours of every pivot at
once. Selection is kept apart from subgraph construction
(:func:`linkage_gcn.ips.build_ips`), so any sampler plugs into any model that
consumes 1-hop sets.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ._validation import ArrayLike, as_tensor, check_int, to_like

__all__ = ["NeighborSampler", "TopKSampler", "resolve_sampler"]


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


#: Samplers selectable by name in :class:`linkage_gcn.LinkageClusterer`.
SAMPLERS: dict[str, type[NeighborSampler]] = {"topk": TopKSampler}


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
        accepted = {k_: v for k_, v in kwargs.items() if k_ in cls.__init__.__code__.co_varnames}
        return cls(k, **accepted)
    choices = ", ".join(repr(s) for s in SAMPLERS)
    raise ValueError(
        f"unknown sampler {sampler!r}; choose one of {choices} or pass a NeighborSampler."
    )
