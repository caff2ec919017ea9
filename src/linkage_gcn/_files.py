"""Safe file writing: atomic, and never replacing a file unless asked."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

__all__ = ["atomic_write"]

PathLike = Union[str, os.PathLike]


def _temporary_sibling(path: Path) -> Path:
    """Return a fresh hidden file name next to ``path``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``overwrite`` never replace a file."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # atomic and fails when ``path`` exists, even in a race
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True to replace it."
        ) from None
    except OSError:  # hard links unsupported on this file system
        if path.exists():
            raise FileExistsError(
                f"{path} already exists; pass overwrite=True to replace it."
            ) from None
        os.replace(tmp, path)
        return
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any], *, overwrite: bool) -> Path:
    """Write a file through ``write(fileobj)`` into a temporary sibling, then rename it.

    Refuses to replace an existing file unless ``overwrite``; a failed write
    leaves neither a partial file nor a temporary one behind.
    """
    p = Path(path)
    if not overwrite and p.exists():
        raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it.")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{p.parent}: directory does not exist.")
    tmp = _temporary_sibling(p)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, p, overwrite)
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                os.unlink(tmp)
    return p
