"""A thin progress-bar helper over :mod:`tqdm`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Optional, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress"]


def progress(
    iterable: Iterable[T],
    *,
    total: Optional[int] = None,
    desc: Optional[str] = None,
    verbose: Optional[bool] = None,
    long: bool = True,
    **kwargs: Any,
) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar.

    Parameters
    ----------
    iterable : iterable
        What to iterate.
    total : int, optional
        Number of items, when ``iterable`` has no length.
    desc : str, optional
        Label of the bar.
    verbose : bool or None
        ``True`` always shows the bar, ``False`` never does; ``None`` (auto)
        shows it when the work is ``long`` and standard error is a terminal.
    long : bool
        Whether the caller expects the work to be long (used when ``verbose``
        is ``None``).
    **kwargs
        Passed to :class:`tqdm.tqdm`.

    Returns
    -------
    iterator
        ``iterable``, maybe wrapped in a :class:`tqdm.tqdm` bar.

    Examples
    --------
    >>> list(progress(range(3), verbose=False))
    [0, 1, 2]
    """
    if verbose is False or (verbose is None and not long):
        return iter(iterable)
    disable = None if verbose is None else False  # None: tqdm hides the bar off a terminal
    return iter(tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, **kwargs))
