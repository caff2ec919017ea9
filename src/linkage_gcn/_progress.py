"""A thin progress-bar helper over :mod:`tqdm`."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any, Optional, TypeVar

# the notebook bar when ipywidgets is there; the text bar otherwise (tqdm.auto would warn on
# every import in a notebook without ipywidgets)
if importlib.util.find_spec("ipywidgets") is not None:  # pragma: no cover - depends on env
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

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
) -> tqdm:
    """Wrap ``iterable`` in a progress bar, shown or not.

    The bar is always a :class:`tqdm.tqdm` object, so that callers can call
    ``set_postfix`` and ``close`` whether it is shown or not (a hidden bar
    costs nothing and ignores them); check ``bar.disable`` before computing
    something only for the bar.

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
    tqdm.tqdm
        An iterable over ``iterable``'s items, with ``set_postfix`` and ``close``.

    Examples
    --------
    >>> bar = progress(range(3), verbose=False)
    >>> list(bar), bar.disable
    ([0, 1, 2], True)
    >>> bar.set_postfix(loss="0.1")  # ignored by a hidden bar
    """
    if verbose is False or (verbose is None and not long):
        disable: Optional[bool] = True
    else:
        disable = None if verbose is None else False  # None: tqdm hides the bar off a terminal
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, **kwargs)
