"""Safe file writing: atomic, and never replacing a file unless asked."""

from __future__ import annotations

import contextlib
import errno
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

    Parameters
    ----------
    path : str or path-like
        The target file.
    write : callable
        Called once with a binary file object open for writing.
    overwrite : bool
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false (also when it appears
        during the write).
    FileNotFoundError
        When the directory of ``path`` does not exist.
    IsADirectoryError
        When ``path`` is a directory.
    OSError
        When the file cannot be written (permission denied, disk full,
        read-only file system): the same :class:`OSError` subclass and
        ``errno``, with a message naming ``path``.

    Notes
    -----
    A failed write leaves neither a partial file nor a temporary one behind.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = atomic_write(os.path.join(tmp, "a.txt"), lambda f: f.write(b"hi"),
    ...                         overwrite=False)
    ...     print(path.read_text(), sorted(os.listdir(tmp)))
    hi ['a.txt']
    """
    p = Path(path)
    if not overwrite and p.exists():
        raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it.")
    if p.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{p} is a directory; give a file name.")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{p.parent}: directory does not exist.")
    tmp = _temporary_sibling(p)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, p, overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        # permission denied, disk full, read-only file system, ...: name the target
        reason = exc.strerror or str(exc) or type(exc).__name__
        message = f"{p}: cannot write the file ({reason})"
        if exc.errno is None:
            raise type(exc)(message) from None
        raise type(exc)(exc.errno, message) from None
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists():
                os.unlink(tmp)
    return p
