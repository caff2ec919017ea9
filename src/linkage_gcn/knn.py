"""k-nearest-neighbour graphs: search backends and the reference self-first table format."""

from __future__ import annotations

import numpy as np
import torch

from ._validation import ArrayLike, as_tensor, to_like

__all__ = ["from_self_first", "to_self_first"]


def to_self_first(index: ArrayLike) -> ArrayLike:
    """Prepend each row's own id: (N, K) neighbours -> the reference (N, K+1) table.

    Parameters
    ----------
    index : array-like or torch.Tensor of shape (N, K)
        Neighbour ids, self excluded.

    Returns
    -------
    table : same kind as ``index``, shape (N, K + 1)
        Row ``i`` is ``[i, nn_1, ..., nn_K]``, the ``knn.npy`` format of L-GCN.

    Examples
    --------
    >>> to_self_first(np.array([[1, 2], [0, 2], [1, 0]]))
    array([[0, 1, 2],
           [1, 0, 2],
           [2, 1, 0]])
    """
    t, was_numpy = as_tensor(index, name="index", dtype=torch.long)
    if t.dim() != 2:
        raise ValueError(f"index must be 2-D (N, K), got shape {tuple(t.shape)}.")
    rows = torch.arange(t.shape[0], device=t.device).unsqueeze(1)
    return to_like(torch.cat([rows, t], dim=1), was_numpy)


def from_self_first(table: ArrayLike) -> ArrayLike:
    """Drop the leading self column of a reference (N, K+1) kNN table.

    Raises a :class:`ValueError` when a row does not start with its own id.

    Examples
    --------
    >>> from_self_first(np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]]))
    array([[1, 2],
           [0, 2],
           [1, 0]])
    """
    t, was_numpy = as_tensor(table, name="knn table", dtype=torch.long)
    if t.dim() != 2 or t.shape[1] < 2:
        raise ValueError(
            f"a kNN table must be 2-D (N, K+1) with K >= 1, got shape {tuple(t.shape)}."
        )
    rows = torch.arange(t.shape[0], device=t.device)
    bad = t[:, 0] != rows
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"kNN table is not self-first: row {first} starts with {int(t[first, 0])} "
            f"({int(bad.sum())} row(s) affected); each row i must be [i, nn_1, ..., nn_K]."
        )
    return to_like(t[:, 1:].contiguous(), was_numpy)
