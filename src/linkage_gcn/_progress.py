"""Progress of long work: a :mod:`tqdm` bar on a terminal, periodic log lines elsewhere.

Redirected to a file (a batch job, ``nohup``, a notebook's captured output),
a progress bar shows nothing; long work then reports on a logger instead:
one INFO line after :data:`LOG_FIRST` seconds, then one every
:data:`LOG_EVERY` seconds, with the items done, the rate and the time left,
and a closing line once the work ends (only for work that logged a line:
short work stays silent). Nothing is logged when the logger is not enabled
for INFO (the library never configures logging).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any, Optional, TypeVar, Union

# the notebook bar when ipywidgets is there; the text bar otherwise (tqdm.auto would warn on
# every import in a notebook without ipywidgets)
if importlib.util.find_spec("ipywidgets") is not None:  # pragma: no cover - depends on env
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

T = TypeVar("T")

__all__ = ["LOG_EVERY", "LOG_FIRST", "progress"]

#: Seconds before the first progress line of hidden long work.
LOG_FIRST = 10.0
#: Seconds between the next progress lines.
LOG_EVERY = 30.0


def progress(
    iterable: Iterable[T],
    *,
    total: Optional[int] = None,
    desc: Optional[str] = None,
    verbose: Optional[bool] = None,
    long: bool = True,
    logger: Union[logging.Logger, str, None] = "linkage_gcn.progress",
    **kwargs: Any,
) -> tqdm:
    """Wrap ``iterable`` in a progress bar, shown or not, and log its progress when hidden.

    The bar is always a :class:`tqdm.tqdm` object, so that callers can call
    ``set_postfix`` and ``close`` whether it is shown or not (a hidden bar
    costs nothing and ignores them); check ``bar.disable`` before computing
    something only for the bar.

    When the bar is hidden (off a terminal, or ``verbose=False``) and the
    work is ``long`` (or ``verbose=True``), the iteration logs INFO lines on
    ``logger``: the first after :data:`LOG_FIRST` seconds, then one every
    :data:`LOG_EVERY` seconds (``desc: done/total unit (percent), rate
    unit/s, ETA``), and a closing line when the iterable is exhausted, if a
    line was logged before. The cost per item is one clock read.

    Parameters
    ----------
    iterable : iterable
        What to iterate.
    total : int, optional
        Number of items, when ``iterable`` has no length.
    desc : str, optional
        Label of the bar and of the log lines.
    verbose : bool or None
        ``True`` always shows the bar, ``False`` never does; ``None`` (auto)
        shows it when the work is ``long`` and standard error is a terminal.
    long : bool
        Whether the caller expects the work to be long (used when ``verbose``
        is ``None``, and for the log lines).
    logger : logging.Logger, str or None
        Where the progress lines go (a logger or its name; by default
        ``linkage_gcn.progress``); ``None`` logs nothing (e.g. on the ranks
        other than 0).
    **kwargs
        Passed to :class:`tqdm.tqdm` (``unit`` also names the items in the
        log lines).

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
    bar = tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, **kwargs)
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    if bar.disable and (long or verbose) and log is not None and log.isEnabledFor(logging.INFO):
        unit = kwargs.get("unit", "it")
        bar.iterable = _logged(iterable, bar.total, desc or "progress", unit, log)
    return bar


def _logged(
    iterable: Iterable[T], total: Optional[int], desc: str, unit: str, log: logging.Logger
) -> Iterator[T]:
    """Yield ``iterable``'s items, logging the progress every :data:`LOG_EVERY` seconds."""
    start = time.monotonic()
    due = start + LOG_FIRST
    done, lines = 0, 0
    for item in iterable:
        yield item
        done += 1
        now = time.monotonic()
        if now >= due:
            log.info("%s", _line(desc, done, total, unit, now - start))
            lines += 1
            due = now + LOG_EVERY
    if lines:
        elapsed = time.monotonic() - start
        rate = done / elapsed if elapsed > 0 else float("inf")
        log.info(
            "%s: done, %d %s in %s (%.3g %s/s)", desc, done, unit, _duration(elapsed), rate, unit
        )


def _line(desc: str, done: int, total: Optional[int], unit: str, elapsed: float) -> str:
    """``"desc: 12/40 step (30%), 1.2 step/s, ETA 23 s"`` (no ETA without a total).

    Examples
    --------
    >>> _line("epoch 1/4", 12, 40, "step", 10.0)
    'epoch 1/4: 12/40 step (30%), 1.2 step/s, ETA 23 s'
    >>> _line("kNN search", 5, None, "chunk", 100.0)
    'kNN search: 5 chunk, 0.05 chunk/s'
    """
    rate = done / elapsed if elapsed > 0 else float("inf")
    if not total:
        return f"{desc}: {done} {unit}, {rate:.3g} {unit}/s"
    eta = (total - done) / rate if rate > 0 else float("inf")
    return (
        f"{desc}: {done}/{total} {unit} ({100 * done / total:.0f}%), {rate:.3g} {unit}/s, "
        f"ETA {_duration(eta)}"
    )


def _duration(seconds: float) -> str:
    """``"23 s"``, ``"4 min 05 s"``, ``"2 h 03 min"``.

    Examples
    --------
    >>> _duration(23.4), _duration(245), _duration(7380), _duration(float("inf"))
    ('23 s', '4 min 05 s', '2 h 03 min', 'unknown')
    """
    if seconds != seconds or seconds == float("inf"):
        return "unknown"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
