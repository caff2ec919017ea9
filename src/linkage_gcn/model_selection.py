"""Model selection on identities: identity-disjoint splits, folds and imbalanced subsets.

Each function takes identity labels and returns positions (or a fold per
sample), never data, in the manner of :mod:`sklearn.model_selection`:

- :func:`split_identities`: an identity-disjoint train/test split;
- :func:`identity_folds`: identity-disjoint cross-validation folds of similar
  size (the ``calibration="cv"`` folds of :class:`~linkage_gcn.LinkageClusterer`);
- :func:`make_imbalanced_subset`: the (H m, S n) imbalanced training subset
  of the RIWS paper (which samples to train on).

These lived in :mod:`linkage_gcn.datasets` up to 0.2; the old names there are
deprecated aliases for one release.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, Union

import numpy as np

from ._validation import RandomStateLike, as_generator, check_int, check_labels, check_real

__all__ = ["identity_folds", "make_imbalanced_subset", "split_identities"]


def _size_ranks(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(inverse, counts, rank)``: identity of each sample, sizes, size rank.

    ``rank[g]`` is 0 for the largest identity; ties go to the smaller label.
    """
    uniq, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    order = np.lexsort((uniq, -counts))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    return inverse.reshape(-1), counts, rank


def _rank_within_identity(inverse: np.ndarray, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Position of each sample inside its identity when ordered by ``keys``."""
    perm = np.lexsort((keys, inverse))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    within = np.empty_like(perm)
    within[perm] = np.arange(perm.shape[0]) - starts[inverse[perm]]
    return within


def make_imbalanced_subset(
    y: Any,
    majority_count: int,
    minority_size: int,
    random_state: RandomStateLike = None,
) -> np.ndarray:
    """Select the (H m, S n) imbalanced subset of the RIWS paper.

    Identities are sorted by size, largest first; the top ``m`` are kept
    whole (the majority classes) and ``n`` samples, drawn at random without
    replacement, are kept from every other identity (all of it when it has
    at most ``n``). Identities of equal size are ordered by label value,
    smaller first, so the majority set does not depend on the random state.

    Parameters
    ----------
    y : array-like of shape (N,) or (N, 1)
        Integer identity labels.
    majority_count : int
        ``m``, the number of identities kept whole; at most the number of
        identities (a larger value raises :class:`ValueError`).
    minority_size : int
        ``n >= 1``, the samples kept from each other identity.
    random_state : None, int, numpy.random.Generator or RandomState
        Source of randomness for the minority samples.

    Returns
    -------
    numpy.ndarray of int64
        Sorted positions into ``y`` of the kept samples.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3])
    >>> keep = make_imbalanced_subset(y, majority_count=1, minority_size=1, random_state=0)
    >>> np.bincount(y[keep]).tolist()
    [3, 1, 1, 1]
    """
    y = check_labels(y, name="y")
    inverse, counts, rank = _size_ranks(y)
    m = check_int(majority_count, "majority_count", minimum=0)
    if m > counts.shape[0]:
        raise ValueError(
            f"majority_count={m} exceeds the number of identities ({counts.shape[0]})."
        )
    n = check_int(minority_size, "minority_size", minimum=1)
    keys = as_generator(random_state).random(y.shape[0])
    within = _rank_within_identity(inverse, counts, keys)
    keep = (rank[inverse] < m) | (within < n)
    return np.flatnonzero(keep).astype(np.int64)


def _check_test_size(test_size: Any, n_groups: int) -> tuple[bool, float]:
    """Validate ``test_size``; return ``(is_count, value)``."""
    if n_groups < 2:
        raise ValueError(f"an identity-disjoint split needs at least 2 identities, got {n_groups}.")
    if isinstance(test_size, Integral) and not isinstance(test_size, bool):
        return True, check_int(test_size, "test_size", minimum=1, maximum=n_groups - 1)
    if isinstance(test_size, Real) and not isinstance(test_size, bool):
        return False, check_real(test_size, "test_size", minimum=0, maximum=1, inclusive=False)
    raise ValueError(
        f"test_size must be a float in (0, 1) or an int number of identities, got {test_size!r}."
    )


def split_identities(
    y: Any,
    test_size: Union[float, int] = 0.5,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split samples into train and test sets with no identity on both sides.

    Identities are shuffled and taken whole into the test set.

    Parameters
    ----------
    y : array-like of shape (N,) or (N, 1)
        Integer identity labels.
    test_size : float or int, default=0.5
        A float in (0, 1) is the target fraction of *samples* in the test set:
        the shuffled identities are cut where the test share comes closest to
        it (approximate, since identities stay whole). An int is the exact
        number of *identities* in the test set. Both sides always get at least
        one identity.
    random_state : None, int, numpy.random.Generator or RandomState
        Source of randomness.

    Returns
    -------
    train_idx, test_idx : numpy.ndarray of int64
        Sorted positions into ``y``.

    Examples
    --------
    >>> y = np.repeat(np.arange(10), 2)
    >>> train, test = split_identities(y, test_size=0.3, random_state=0)
    >>> len(train), len(test), bool(np.intersect1d(y[train], y[test]).size)
    (14, 6, False)
    """
    y = check_labels(y, name="y")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    is_count, size = _check_test_size(test_size, counts.shape[0])
    order = as_generator(random_state).permutation(counts.shape[0])
    if is_count:
        n_test = int(size)
    else:
        cum = np.cumsum(counts[order])[:-1]  # test share of the first 1..G-1 identities
        n_test = int(np.argmin(np.abs(cum - size * y.shape[0]))) + 1
    in_test = np.zeros(counts.shape[0], dtype=bool)
    in_test[order[:n_test]] = True
    mask = in_test[inverse.reshape(-1)]
    return np.flatnonzero(~mask).astype(np.int64), np.flatnonzero(mask).astype(np.int64)


def identity_folds(y: Any, n_folds: int, random_state: RandomStateLike = None) -> np.ndarray:
    """Assign every sample to one of ``n_folds`` identity-disjoint folds of similar size.

    Identities are dealt to the folds in order of decreasing size (random order
    among equal sizes), in a snake order (0, 1, ..., k-1, k-1, ..., 0, ...), so
    that every fold gets large and small identities alike and about the same
    number of samples; an identity is never split.

    Parameters
    ----------
    y : array-like of shape (N,)
        Identity labels.
    n_folds : int
        Number of folds (at least 2, at most the number of identities).
    random_state : None, int, numpy.random.Generator or RandomState
        Order among identities of equal size.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)
        The fold of each sample.

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3])
    >>> folds = identity_folds(y, 2, random_state=0)
    >>> np.bincount(folds).tolist()
    [5, 4]
    >>> all(len(set(folds[y == i])) == 1 for i in range(4))
    True
    """
    y = check_labels(y, name="y")
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    n_folds = check_int(n_folds, "n_folds", minimum=2, maximum=max(counts.shape[0], 2))
    if counts.shape[0] < n_folds:
        raise ValueError(f"{n_folds} identity-disjoint folds need at least {n_folds} identities.")
    keys = as_generator(random_state).random(counts.shape[0])
    order = np.lexsort((keys, -counts))  # largest first, random among equal sizes
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    lap, pos = np.divmod(rank, n_folds)
    fold = np.where(lap % 2 == 0, pos, n_folds - 1 - pos)
    return fold[inverse.reshape(-1)].astype(np.int64)
