"""The (H m, S n) imbalanced training subsets: names, checks, sizes.

A subset ``(m, n)`` keeps the ``m`` largest identities of the training set
whole and ``n`` samples of every other one
(:func:`~linkage_gcn.model_selection.make_imbalanced_subset`); the paper names it
``(Hm, Sn)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

import numpy as np

from .._validation import check_int, check_labels
from ..model_selection import make_imbalanced_subset

__all__ = ["check_subset", "check_subsets", "describe_subsets", "subset_name"]


def subset_name(majority_count: int, minority_size: int) -> str:
    """The paper's name of an imbalanced subset.

    Examples
    --------
    >>> subset_name(200, 3)
    '(H200, S3)'
    """
    return f"(H{int(majority_count)}, S{int(minority_size)})"


def check_subset(subset: Any) -> tuple[int, int]:
    """Validate one ``(majority_count, minority_size)`` pair: ``m >= 0``, ``n >= 1``.

    Examples
    --------
    >>> check_subset([10, 3])
    (10, 3)
    >>> check_subset((10, 0))
    Traceback (most recent call last):
    ...
    ValueError: minority_size must be an integer >= 1, got 0.
    """
    if isinstance(subset, str):  # "10:3" or "(H10, S3)" would unpack into characters
        subset = None
    try:
        m, n = subset
    except (TypeError, ValueError):
        raise ValueError(
            f"a subset is a pair (majority_count, minority_size), got {subset!r}."
        ) from None
    return (
        check_int(m, "majority_count", minimum=0),
        check_int(n, "minority_size", minimum=1),
    )


def check_subsets(subsets: Iterable[Any]) -> list[tuple[int, int]]:
    """Validate a non-empty collection of subsets (see :func:`check_subset`).

    Examples
    --------
    >>> check_subsets([(10, 3), (40, 3)])
    [(10, 3), (40, 3)]
    """
    if isinstance(subsets, str) or not isinstance(subsets, Iterable):
        raise ValueError(f"subsets must be a list of (m, n) pairs, got {subsets!r}.")
    out = [check_subset(s) for s in subsets]
    if not out:
        raise ValueError("subsets is empty; give at least one (majority_count, minority_size).")
    return out


def describe_subsets(
    y: Any, subsets: Iterable[Any], random_state: Optional[int] = 0
) -> list[dict[str, Any]]:
    """Sizes of the (H m, S n) subsets of a labelled set.

    Parameters
    ----------
    y : array-like of shape (N,)
        Identity labels of the training set.
    subsets : iterable of (int, int)
        ``(m, n)`` pairs.
    random_state : int or None
        Seed of :func:`~linkage_gcn.model_selection.make_imbalanced_subset` (the
        sizes do not depend on it).

    Returns
    -------
    list of dict
        Per subset: ``subset`` (its name), ``n_samples``, ``n_identities``,
        ``n_majority_samples`` (in the ``m`` identities kept whole) and
        ``n_identities_with_pairs`` (identities with at least two samples,
        the only ones that give positive links).

    Examples
    --------
    >>> y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
    >>> describe_subsets(y, [(1, 2)])[0]
    {'subset': '(H1, S2)', 'n_samples': 9, 'n_identities': 4, 'n_majority_samples': 4, \
'n_identities_with_pairs': 3}
    """
    y = check_labels(y, name="y")
    sizes = np.sort(np.unique(y, return_counts=True)[1])[::-1]
    return [_describe(y, sizes, m, n, random_state) for m, n in check_subsets(subsets)]


def _describe(
    y: np.ndarray, sizes: np.ndarray, m: int, n: int, random_state: Optional[int]
) -> dict[str, Any]:
    keep = make_imbalanced_subset(y, m, n, random_state=random_state)
    counts = np.unique(y[keep], return_counts=True)[1]
    return {
        "subset": subset_name(m, n),
        "n_samples": int(keep.shape[0]),
        "n_identities": int(counts.shape[0]),
        "n_majority_samples": int(sizes[:m].sum()),
        "n_identities_with_pairs": int(np.sum(counts >= 2)),
    }
