"""The package's file formats: the estimator checkpoint and the incremental state file.

Both are zip archives written atomically (never replacing a file unless
asked) and read through one ladder of checks, each failure a clear error
that names the file:

1. the path is not a file: :class:`FileNotFoundError` (no such file, or a
   directory); :class:`PermissionError` when it cannot be read;
2. an empty file, or not a zip archive at all: :class:`ValueError` saying
   what the file looks like (text, a pickle, a ``.npy`` array ...);
3. a zip archive whose end is missing (truncated), or whose entries fail
   their CRC-32 check (corrupted);
4. an archive of another kind or format (a bare ``state_dict``, an ``.npz``
   of other arrays, the other linkage-gcn format), naming what it looks like;
5. a newer format version than this library reads;
6. missing fields (checkpoint entries, state arrays or header fields).

**Checkpoint** (:meth:`LinkageClusterer.save <linkage_gcn.LinkageClusterer.save>`):
a :func:`torch.save` archive of one dict with the entries ``format``
(:data:`CHECKPOINT_FORMAT`), ``format_version`` (:data:`CHECKPOINT_VERSION`;
files without it are version 1), ``version`` (the linkage-gcn that wrote it)
and the estimator's own fields. Read with ``torch.load(weights_only=True)``
unless the file is trusted.

**State file** (:meth:`IncrementalClusterer.save
<linkage_gcn.IncrementalClusterer.save>`): an uncompressed ``.npz`` archive
(never pickled) of numeric arrays plus ``header``, a ``uint8`` array of UTF-8
JSON holding ``format`` (:data:`STATE_FORMAT`), ``format_version``
(:data:`STATE_VERSION`), ``linkage_gcn_version`` and the clusterer's own
fields.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import pickle
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._files import atomic_write
from ._version import __version__

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "STATE_FORMAT",
    "STATE_VERSION",
    "as_path",
    "check_file",
    "damaged_entry",
    "first_line",
    "looks_like",
    "read_checkpoint",
    "read_state",
    "reading",
    "write_checkpoint",
    "write_state",
]

PathLike = Union[str, os.PathLike]

#: Format name of a checkpoint (:meth:`LinkageClusterer.save`).
CHECKPOINT_FORMAT = "linkage-gcn-checkpoint"
#: Newest checkpoint format version this library writes and reads.
CHECKPOINT_VERSION = 1
#: Format name of an incremental state file (:meth:`IncrementalClusterer.save`).
STATE_FORMAT = "linkage-gcn-incremental"
#: Newest state format version this library writes and reads.
STATE_VERSION = 2

_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_HEAD_BYTES = 512  # enough to tell text from binary
_CHECKPOINT_KEYS = ("format", "format_version", "version")
_STATE_KEYS = ("format", "format_version", "linkage_gcn_version")


# --------------------------------------------------------------------------- the first rungs


def as_path(path: PathLike, name: str = "path") -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, refusing what is not a path.

    Parameters
    ----------
    path : str, bytes or path-like
    name : str
        The argument's name, for the message.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    TypeError
        When ``path`` is not a string, bytes or path-like object.

    Examples
    --------
    >>> as_path("a/b.npz").name
    'b.npz'
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or path-like object, got {type(path).__name__}.")
    return Path(path)


def first_line(exc: BaseException) -> str:
    r"""The first line of an exception's message, or its class name.

    Examples
    --------
    >>> first_line(ValueError("bad\nmore")), first_line(KeyError())
    ('bad', 'KeyError')
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def reading(p: Path, kind: str = "file") -> Iterator[None]:
    """Translate the low-level errors of reading ``p`` into messages that name it.

    Parameters
    ----------
    p : pathlib.Path
        The file being read.
    kind : str
        What it is, for the messages (``"file"``, ``".npz archive"`` ...).

    Raises
    ------
    FileNotFoundError
        No such file, or a directory.
    PermissionError
        The file cannot be read.
    ValueError
        Truncated or corrupt content (zip, zlib, pickle or end-of-file errors).
    OSError
        Any other reading error, with its ``errno``.

    Examples
    --------
    >>> with reading(Path("no/such.npy")):
    ...     open("no/such.npy", "rb")
    Traceback (most recent call last):
    FileNotFoundError: no/such.npy: no such file.
    """
    try:
        yield
    except PermissionError:
        raise PermissionError(f"{p}: permission denied; the file cannot be read.") from None
    except IsADirectoryError:
        raise FileNotFoundError(f"{p}: is a directory, not a file.") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: no such file.") from None
    except (EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{p}: truncated or corrupt {kind} ({first_line(exc)}).") from None
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{p}: not a valid {kind} ({first_line(exc)}).") from None
    except OSError as exc:
        raise OSError(
            exc.errno, f"{p}: the file cannot be read ({exc.strerror or first_line(exc)})."
        ) from None


def check_file(path: PathLike, *, name: str = "path", what: str = "file") -> tuple[Path, bytes]:
    """Check that ``path`` is a readable, non-empty file; return it and its first bytes.

    Parameters
    ----------
    path : str or path-like
    name : str
        The argument's name, for a :class:`TypeError`.
    what : str
        What the file should be (``"file"``, ``"checkpoint file"``,
        ``"state file"``), for the messages.

    Returns
    -------
    (pathlib.Path, bytes)
        The path and up to its first 512 bytes.

    Raises
    ------
    TypeError
        When ``path`` is not path-like.
    FileNotFoundError
        No such file, or a directory.
    PermissionError
        The file cannot be read.
    ValueError
        The file is empty.

    Examples
    --------
    >>> check_file("no/such.pt", what="checkpoint file")
    Traceback (most recent call last):
    FileNotFoundError: no/such.pt: no such checkpoint file.
    """
    p = as_path(path, name)
    if not p.is_file():
        problem = f"is a directory, not a {what}" if p.is_dir() else f"no such {what}"
        raise FileNotFoundError(f"{p}: {problem}.")
    with reading(p), open(p, "rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head:
        raise ValueError(f"{p}: the file is empty.")
    return p, head


def looks_like(head: bytes) -> str:
    r"""What a file that is not a zip archive looks like, from its first bytes.

    Examples
    --------
    >>> looks_like(b"id,label\n"), looks_like(b"\x93NUMPY\x01")
    ('a text file', 'a NumPy .npy array')
    """
    if head.startswith(b"\x80"):
        return (
            "a Python pickle (or a PyTorch file in the legacy format); pickles are never "
            "loaded (unpickling can run arbitrary code)"
        )
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy array"
    for magic, kind in ((b"\x89HDF", "an HDF5 file"), (b"\x1f\x8b", "a gzip file")):
        if head.startswith(magic):
            return kind
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # maybe cut inside a character: retry without the tail
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "a text file"
    return f"another kind of file (it starts with {head[:8]!r})"


def _ziplooks_like(names: list[str]) -> str:
    """What a zip archive looks like, from its entry names."""
    if "header.npy" in names:
        return "a linkage-gcn incremental state file (read it with IncrementalClusterer.load)"
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "a PyTorch file (read checkpoints with LinkageClusterer.load)"
    arrays = [n[: -len(".npy")] for n in names if n.endswith(".npy")]
    if arrays and len(arrays) == len(names):
        shown = ", ".join(arrays[:6]) + (", ..." if len(arrays) > 6 else "")
        return f"a NumPy .npz archive of the arrays {shown}"
    return f"a zip archive of {len(names)} entries"


def _zip_names(p: Path, head: bytes, what: str, container: str) -> list[str]:
    """Rungs 2-3 for both formats: the entry names of the zip archive ``p``."""
    if not head.startswith(_ZIP_MAGICS):
        raise ValueError(
            f"{p} is not a linkage-gcn {what}: not {container} but {looks_like(head)}."
        )
    try:
        with reading(p, "zip archive"), zipfile.ZipFile(p) as zf:
            return zf.namelist()
    except ValueError:
        raise ValueError(
            f"{p} is truncated: it starts as a zip archive ({container}) but its end is "
            "missing (an interrupted write, copy or download?)."
        ) from None


def damaged_entry(path: PathLike) -> Optional[str]:
    """Say which entry of a zip archive fails its CRC-32 check, or ``None``.

    :func:`torch.load` does not check the checksums itself. Entries stored
    without a checksum (``torch.serialization.set_crc32_options(False)``)
    are skipped. Reads the file once.

    Parameters
    ----------
    path : str or path-like
        A zip archive.

    Returns
    -------
    str or None
        The problem found (zip's own words), or ``None`` when every entry
        reads back intact.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "a.zip"
    ...     with zipfile.ZipFile(p, "w") as zf:
    ...         zf.writestr("a.txt", "hello " * 20)
    ...     ok = damaged_entry(p)
    ...     raw = bytearray(p.read_bytes()); raw[40] ^= 0xFF; _ = p.write_bytes(bytes(raw))
    ...     print(ok, "|", damaged_entry(p))
    None | Bad CRC-32 for file 'a.txt'
    """
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.CRC or not info.file_size:
                    with zf.open(info) as f:
                        while f.read(1 << 22):
                            pass
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        return f"{exc}".strip() or type(exc).__name__
    return None


def _check_version(p: Path, found: Any, what: str, newest: int) -> None:
    """Rung 5: a format version this library reads."""
    if isinstance(found, bool) or not isinstance(found, (int, np.integer)) or found < 1:
        raise ValueError(f"{p}: malformed {what}: format_version {found!r} is not a version.")
    if found > newest:
        raise ValueError(
            f"{p} has {what} format version {int(found)}; this linkage-gcn ({__version__}) "
            f"reads up to {newest}: upgrade linkage-gcn."
        )


def _check_present(
    p: Path, have: Iterable[str], required: Iterable[str], what: str, kind: str = ""
) -> None:
    """Rung 6: every required field is there."""
    have = set(have)
    missing = [key for key in required if key not in have]
    if missing:
        raise ValueError(f"{p} is an incomplete {what}: missing {kind}{', '.join(missing)}.")


def _reserved(given: Iterable[str], keys: tuple[str, ...], where: str) -> None:
    clash = sorted(set(given) & set(keys))
    if clash:
        raise ValueError(f"{where} must not hold {', '.join(clash)}: the archive writes them.")


# --------------------------------------------------------------------------- checkpoint


def write_checkpoint(path: PathLike, state: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Write a checkpoint: ``state`` plus the format entries, atomically.

    ``path``, ``overwrite``, the return value and the errors of writing are
    those of :func:`linkage_gcn._files.atomic_write` (never replacing a file
    unless ``overwrite=True``).

    Parameters
    ----------
    state : mapping
        The estimator's fields (anything :func:`torch.save` stores); the
        keys ``format``, ``format_version`` and ``version`` are added here:
        ``state`` holding one of them is a :class:`ValueError`.

    Examples
    --------
    >>> import tempfile, torch
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = write_checkpoint(Path(tmp) / "m.pt", {"w": torch.ones(2)})
    ...     back = read_checkpoint(p, required=("w",))
    >>> back["format"], back["format_version"], back["w"].tolist()
    ('linkage-gcn-checkpoint', 1, [1.0, 1.0])
    """
    import torch

    _reserved(state, _CHECKPOINT_KEYS, "a checkpoint's state")
    full = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "version": __version__,
        **state,
    }
    buffer = _io.BytesIO()
    torch.save(full, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)


def _torchlooks_like(state: Any) -> str:
    """What a :func:`torch.load` result that is no checkpoint looks like."""
    import torch

    if isinstance(state, dict):
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return "a bare state_dict (model weights only)"
        if isinstance(state.get("format"), str):
            return f"a {state['format']!r} file"
        keys = ", ".join(map(repr, list(state)[:6])) + (", ..." if len(state) > 6 else "")
        return f"a dict of {keys}" if state else "an empty dict"
    if isinstance(state, torch.Tensor):
        return f"a tensor of shape {tuple(state.shape)}"
    return f"a {type(state).__name__}"


def read_checkpoint(
    path: PathLike, *, trusted: bool = False, required: Iterable[str] = ()
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write_checkpoint`, checking every rung.

    Parameters
    ----------
    path : str or path-like
    trusted : bool
        Allow unpickling arbitrary Python objects (``weights_only=False``);
        never for files of unknown origin.
    required : iterable of str
        The entries the caller needs.

    Returns
    -------
    dict
        The stored dict, ``format_version`` filled in (1) for files written
        before it was recorded.

    Raises
    ------
    FileNotFoundError
        No such file, or a directory.
    ValueError
        Naming the file and the problem: empty, not a PyTorch archive (and
        what it looks like), truncated or corrupted, objects that need
        ``trusted=True``, a PyTorch file that is no linkage-gcn checkpoint
        (what it looks like), a newer format version, missing entries.

    Examples
    --------
    >>> read_checkpoint("no/such.pt")
    Traceback (most recent call last):
    FileNotFoundError: no/such.pt: no such checkpoint file.
    """
    import torch

    what, container = "checkpoint", "a PyTorch archive"
    p, head = check_file(path, what="checkpoint file")
    names = _zip_names(p, head, what, container)
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise ValueError(f"{p} is not a linkage-gcn {what}: it is {_ziplooks_like(names)}.")
    bad = damaged_entry(p)
    if bad:
        raise ValueError(f"{p} is truncated or corrupted: {bad}.")
    try:
        state = torch.load(p, map_location="cpu", weights_only=not trusted)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc):
            raise ValueError(f"{p} is corrupted: it could not be unpickled.") from exc
        found = re.search(r"GLOBAL (\S+)", str(exc))
        objects = f" ({found.group(1)})" if found else ""
        raise ValueError(
            f"{p} holds Python objects{objects} that safe loading refuses. If it holds a custom "
            "sampler or loss object and you trust the file, pass trusted=True."
        ) from exc
    except Exception as exc:  # zip entries missing or damaged: torch raises RuntimeError & co
        raise ValueError(
            f"{p} is truncated or corrupted ({type(exc).__name__}: {first_line(exc)[:200]})."
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{p} is a PyTorch file but not a linkage-gcn {what} (no format "
            f"{CHECKPOINT_FORMAT!r} entry): it looks like {_torchlooks_like(state)}; "
            "LinkageClusterer.load reads files written by LinkageClusterer.save."
        )
    state.setdefault("format_version", 1)  # files of linkage-gcn <= 0.2.0
    _check_version(p, state["format_version"], what, CHECKPOINT_VERSION)
    _check_present(p, state, required, what)
    return state


# --------------------------------------------------------------------------- state file


def write_state(
    path: PathLike,
    header: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a state file: ``arrays`` and the JSON ``header``, atomically.

    As :func:`write_checkpoint` for ``path`` (no ``.npz`` is appended),
    ``overwrite`` and the return value.

    Parameters
    ----------
    header : mapping
        JSON-serialisable fields; ``format``, ``format_version`` and
        ``linkage_gcn_version`` are added here.
    arrays : mapping of str to numpy.ndarray
        Numeric arrays, never pickled.

    Raises
    ------
    ValueError
        When ``header`` holds a format field, ``arrays`` an entry named
        ``header``, or an array holds Python objects.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = write_state(Path(tmp) / "s.npz", {"n": 2}, {"x": np.arange(2)})
    ...     header, arrays = read_state(p, required_arrays=("x",), required_header=("n",))
    >>> header["format"], header["n"], arrays["x"].tolist()
    ('linkage-gcn-incremental', 2, [0, 1])
    """
    _reserved(header, _STATE_KEYS, "a state's header")
    _reserved(arrays, ("header",), "a state's arrays")
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    objects = [name for name, a in arrays.items() if a.dtype.hasobject]
    if objects:
        raise ValueError(f"state arrays {objects} hold Python objects; store numeric arrays.")
    full = {
        "format": STATE_FORMAT,
        "format_version": STATE_VERSION,
        "linkage_gcn_version": __version__,
        **header,
    }
    encoded = np.frombuffer(json.dumps(full).encode(), dtype=np.uint8)
    buffer = _io.BytesIO()
    np.savez(buffer, header=encoded, **arrays)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)


def _decode_header(p: Path, z: Any, names: list[str]) -> dict[str, Any]:
    """Rung 4 for a state: the JSON header of the open ``.npz`` ``z``, or why it is no state."""
    what = "state file"
    if "header" not in z.files:
        raise ValueError(f"{p} is not a linkage-gcn {what}: it is {_ziplooks_like(names)}.")
    try:
        raw = z["header"]
    except ValueError as exc:  # allow_pickle=False refuses an object array
        raise ValueError(
            f"{p} is not a linkage-gcn {what}: its header holds pickled Python objects "
            f"(never loaded: unpickling can run arbitrary code; {first_line(exc)})."
        ) from None
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(
            f"{p} is not a linkage-gcn {what}: its header is a {raw.dtype} array of shape "
            f"{raw.shape}, not JSON text."
        )
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{p} is truncated or corrupted: its header is not JSON ({exc})."
        ) from None
    if not isinstance(header, dict) or header.get("format") != STATE_FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise ValueError(
            f"{p} is an .npz archive but not a linkage-gcn {what} (its header names format "
            f"{found!r}, not {STATE_FORMAT!r})."
        )
    return header


def read_state(
    path: PathLike,
    *,
    required_arrays: Iterable[str] = (),
    required_header: Iterable[str] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a state file written by :func:`write_state`, checking every rung.

    Parameters
    ----------
    path : str or path-like
    required_arrays : iterable of str
        The arrays the caller needs.
    required_header : iterable of str
        The header fields the caller needs.

    Returns
    -------
    header : dict
        The decoded JSON header (with its format fields).
    arrays : dict of str to numpy.ndarray
        Every array of the file but the header, loaded into memory.

    Raises
    ------
    FileNotFoundError
        No such file, or a directory.
    ValueError
        Naming the file and the problem: empty, not an ``.npz`` archive (and
        what it looks like), truncated or corrupted, an archive of other
        arrays or of another format, pickled objects, a newer format
        version, missing arrays or header fields.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = Path(tmp) / "s.npz"
    ...     np.savez(p, x=np.zeros(3))
    ...     read_state(p)
    Traceback (most recent call last):
    ValueError: ...s.npz is not a linkage-gcn state file: it is a NumPy .npz archive of ... x.
    """
    what, container = "state file", "an .npz archive"
    p, head = check_file(path, what=what)
    names = _zip_names(p, head, what, container)
    try:
        with reading(p, ".npz archive"), np.load(p, allow_pickle=False) as z:
            header = _decode_header(p, z, names)
            _check_version(p, header.get("format_version"), what, STATE_VERSION)
            _check_present(p, z.files, required_arrays, what, "arrays ")
            _check_present(p, header, required_header, what, "header fields ")
            arrays = {}
            for name in z.files:
                if name != "header":
                    arrays[name] = _load_array(p, z, name)
    except ValueError as exc:
        if str(exc).startswith(str(p)):
            raise
        raise ValueError(f"{p} is truncated or corrupted ({first_line(exc)}).") from None
    return header, arrays


def _load_array(p: Path, z: Any, name: str) -> np.ndarray:
    """One array of an open ``.npz``; pickled objects and damage -> ValueError naming ``p``."""
    try:
        return z[name]
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError):
        raise  # ``reading`` words these
    except Exception as exc:  # a damaged .npy header fails to parse: ValueError, SyntaxError ...
        text = first_line(exc)
        if "allow_pickle" in text or "Object arrays" in text:
            raise ValueError(
                f"{p}: array {name!r} holds pickled Python objects, which are never loaded "
                "(unpickling can run arbitrary code)."
            ) from None
        bad = damaged_entry(p)
        raise ValueError(
            f"{p} is truncated or corrupted: array {name!r}: {bad or text[:200]}."
        ) from None
