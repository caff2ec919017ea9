"""CPU threads of torch and faiss for the duration of a call, restored afterwards."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
from collections.abc import Callable, Iterator
from typing import Any, Optional

import torch

__all__ = ["cpu_threads", "with_threads"]

logger = logging.getLogger("linkage_gcn")


@contextlib.contextmanager
def cpu_threads(n: Optional[int]) -> Iterator[None]:
    """Use ``n`` CPU threads in torch (and faiss, when installed) inside the block.

    ``None`` changes nothing. On a machine shared with other jobs, torch's
    default (one thread per core) can make every thread wait on the others;
    one or two threads are then much faster.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with cpu_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
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


def with_threads(
    threads_of: Callable[[Any], Optional[int]],
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
