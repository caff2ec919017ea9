"""CPU threads of torch and faiss for the duration of a call, restored afterwards.

``threads="auto"`` (the estimator's default, ``--threads auto`` on the command
line) is one rule, :func:`default_threads`: the CPUs this process may use
(its affinity mask and its cgroup's CPU quota), less those that other
processes keep busy now (measured over a fifth of a second, reused for ten
seconds), at least one. On a machine shared with other jobs, a thread per core makes every
parallel region wait for the threads the other jobs hold back; one thread per
free core does not. ``"auto"`` defers to a choice made elsewhere: an enclosing
:func:`cpu_threads` with a number, ``OMP_NUM_THREADS`` in the environment, or
``torch.set_num_threads`` called after linkage-gcn was imported.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional, Union

import torch

__all__ = ["available_cpus", "cpu_threads", "default_threads", "with_threads"]

logger = logging.getLogger("linkage_gcn")

#: torch's thread count when linkage-gcn was imported: a different one later was set by hand.
_TORCH_AT_IMPORT = torch.get_num_threads()
#: (wall, CPU) seconds of this process when linkage-gcn was imported.
_CLOCKS_AT_IMPORT = (time.monotonic(), time.process_time())
#: The last choice of :func:`default_threads` and when it was made: reused for a few seconds.
_LAST: list = [None, 0.0]
_REUSE_SECONDS = 10.0
#: The thread count of an enclosing ``cpu_threads(n)`` with a number (``None``: none).
_PINNED: contextvars.ContextVar[Optional[int]] = contextvars.ContextVar("_PINNED", default=None)


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask, capped by its cgroup's quota.

    Examples
    --------
    >>> 1 <= available_cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(n, quota)) if quota is not None else max(1, n)


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> Optional[int]:
    """The CPU quota of this process's cgroup (v2 ``cpu.max``, v1 ``cfs_quota_us``), rounded up."""
    for quota_file, period_file in (
        (root / "cpu.max", None),
        (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"),
    ):  # fmt: skip
        try:
            text = quota_file.read_text().split()
            if period_file is None:
                quota, period = text[0], text[1]
            else:
                quota, period = text[0], period_file.read_text().split()[0]
        except (OSError, IndexError):
            continue
        if quota in ("max", "-1"):
            return None
        try:
            return max(1, math.ceil(int(quota) / int(period)))
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _cpu_ticks(cpus: set[int], stat: Path = Path("/proc/stat")) -> Optional[tuple[int, int]]:
    """(all, idle) clock ticks of the CPUs ``cpus`` since boot, from ``/proc/stat``."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    total = idle = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        ticks = [int(f) for f in fields[:8]]
        total += sum(ticks)
        idle += ticks[3] + ticks[4]  # idle, iowait
    return (total, idle) if total else None


def _busy_now(window: float = 0.2) -> Optional[float]:
    """CPUs of this process's set kept busy by other processes over ``window`` seconds."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    first, own = _cpu_ticks(cpus), time.process_time()
    if first is None:
        return None
    time.sleep(window)
    second, own = _cpu_ticks(cpus), time.process_time() - own
    if second is None or second[0] <= first[0]:
        return None
    busy = 1.0 - (second[1] - first[1]) / (second[0] - first[0])
    return max(0.0, busy * len(cpus) - own / window)


def _busy_elsewhere() -> float:
    """CPUs kept busy by other processes, now.

    On Linux, measured over a fifth of a second from ``/proc/stat`` on the
    CPUs this process may use, less this process's own CPU time; elsewhere
    the 1-minute load average less this process's share since linkage-gcn
    was imported (it lags: a process that just ended still counts).
    """
    now = _busy_now()
    if now is not None:
        return now
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    wall, cpu = _CLOCKS_AT_IMPORT
    own = (time.process_time() - cpu) / max(time.monotonic() - wall, 60.0)
    return max(0.0, load - own)


def default_threads() -> int:
    """The thread count of ``threads="auto"``: the free CPUs this process may use, at least 1.

    ``available_cpus() - round(load of other processes)``, clipped to
    ``[1, available_cpus()]``.

    Examples
    --------
    >>> 1 <= default_threads() <= available_cpus()
    True
    """
    now = time.monotonic()
    if _LAST[0] is not None and now - _LAST[1] < _REUSE_SECONDS:
        return _LAST[0]
    cpus = available_cpus()
    chosen = int(min(cpus, max(1, cpus - round(_busy_elsewhere()))))
    _LAST[:] = [chosen, now]
    return chosen


def _chosen_elsewhere() -> bool:
    """Whether the thread count was chosen outside ``"auto"`` (environment, by hand, a caller)."""
    return (
        _PINNED.get() is not None
        or bool(os.environ.get("OMP_NUM_THREADS"))
        or torch.get_num_threads() != _TORCH_AT_IMPORT
    )


@contextlib.contextmanager
def cpu_threads(n: Union[int, str, None]) -> Iterator[None]:
    """Use ``n`` CPU threads in torch (and faiss, when installed) inside the block.

    ``None`` changes nothing; ``"auto"`` uses :func:`default_threads` unless
    the count was chosen elsewhere (an enclosing ``cpu_threads`` with a
    number, ``OMP_NUM_THREADS``, ``torch.set_num_threads`` after import), in
    which case it changes nothing either.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1
    >>> with cpu_threads(1), cpu_threads("auto"):  # an enclosing number wins
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None or (n == "auto" and _chosen_elsewhere()):
        yield
        return
    pinned = None
    if n == "auto":
        n = default_threads()
        if n < available_cpus():
            logger.debug("using %d of %d CPU threads (other processes keep %.1f busy)", n,
                        available_cpus(), _busy_elsewhere())  # fmt: skip
    else:
        pinned = _PINNED.set(int(n))
    previous = torch.get_num_threads()
    faiss = None
    if importlib.util.find_spec("faiss") is not None:
        import faiss

        faiss_previous = faiss.omp_get_max_threads()
    torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    logger.debug("using %d CPU thread(s) for torch%s", n, " and faiss" if faiss else "")
    try:
        yield
    finally:
        torch.set_num_threads(previous)
        if faiss is not None:
            faiss.omp_set_num_threads(faiss_previous)
        if pinned is not None:
            _PINNED.reset(pinned)


def with_threads(
    threads_of: Callable[[Any], Union[int, str, None]],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate methods to run inside ``cpu_threads(threads_of(self))``.

    Shared by the estimator (its ``threads`` parameter) and the incremental
    clusterer (its clusterer's).
    """

    def decorate(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with cpu_threads(threads_of(self)):
                return method(self, *args, **kwargs)

        return wrapper

    return decorate
