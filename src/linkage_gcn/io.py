"""Reading and writing the data formats of the reference implementations.

Two families of files are supported.

**L-GCN reference trio** (``Zhongdao/gcn_clustering``):

- ``features.npy``: ``(N, D)`` float features;
- ``labels.npy``: ``(N,)`` or ``(N, 1)`` integer identities;
- ``knn.npy``: ``(N, K + 1)`` integer table whose row ``i`` is
  ``[i, nn_1, ..., nn_K]`` (the node itself first).

**learn-to-cluster (LTC)** (``yl-1993/learn-to-cluster``, the MS-Celeb-1M and
DeepFashion clustering benchmarks):

- ``features/<name>.bin``: raw little-endian float32 rows of a known
  dimension ``D`` (256 for the MS-Celeb-1M features), no header;
- ``labels/<name>.meta``: one integer label per line;
- ``knns/<name>/faiss_k_<K>.npz``: ``np.savez_compressed(path, data=knns)``
  with ``knns`` of shape ``(N, 2, K)``: ``knns[i, 0]`` the neighbour ids
  (stored as floats), ``knns[i, 1]`` the cosine distances ``1 - similarity``,
  normally nearest first, the node itself first with distance 0. Like LTC's
  own loader, :func:`load_ltc_knn` sorts each row by distance (stably) unless
  told not to.

In memory the package uses a kNN graph as ``index`` ``(N, K)`` int64 with the
node itself left out (and, for LTC, ``similarity`` ``(N, K)`` float32); the
column left out follows :func:`linkage_gcn.knn.drop_self`.

Loaders check their arguments and what they read before returning it, and
fail early with a message that names the file and the problem:

- :class:`FileNotFoundError`: no such file, or a directory where a file is
  expected;
- :class:`PermissionError`: the file exists but cannot be read;
- :class:`TypeError`: a path that is not a string or path-like;
- :class:`ValueError`: everything about the content: an empty, truncated or
  corrupt file (``.npy``, ``.npz``), an archive without the expected array,
  a file that is not NumPy data at all (text, a Python pickle), pickled
  object arrays (never unpickled, since that can run arbitrary code), a
  wrong dtype or shape, no rows, NaN or infinity, ids or labels that are
  not whole numbers (whole-valued floats such as ``3.0`` are accepted, never
  truncated), ids out of range, files that disagree on ``N``.

Writers never overwrite an existing file unless ``overwrite=True``,
write exactly the path given (no ``.npy``/``.npz`` suffix is appended) and
write atomically: the data goes to a temporary file in the target directory
that is then renamed over the target, so a crash never leaves a half-written
file behind.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ._archive import as_path as _as_path
from ._archive import check_file as _existing_file
from ._archive import first_line as _first_line
from ._archive import looks_like
from ._archive import reading as _reading
from ._files import atomic_write
from ._validation import ArrayLike, check_features, check_int, check_labels
from .knn import check_knn_index, drop_self, from_self_first, to_self_first

__all__ = [
    "atomic_write",
    "load_bin_features",
    "load_features",
    "load_knn",
    "load_labels",
    "load_ltc",
    "load_ltc_knn",
    "load_meta_labels",
    "load_reference",
    "save_bin_features",
    "save_features",
    "save_knn",
    "save_labels",
    "save_ltc_knn",
    "save_meta_labels",
]

PathLike = Union[str, os.PathLike]

#: Rows checked at a time for NaN/Inf, so that a memory-mapped file of
#: millions of rows is never materialised as one boolean array.
_CHUNK_ROWS = 1 << 16

#: Largest id a float32 represents exactly; beyond it LTC ids are stored as float64.
_FLOAT32_EXACT = 1 << 24


# --------------------------------------------------------------------------- helpers


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")

#: Largest whole number a float64 holds exactly: larger float ids or labels are refused.
_FLOAT64_EXACT = 1 << 53


def _kind_of(p: Path, head: bytes) -> str:
    """``"npy"`` or ``"npz"`` from a file's first bytes; a clear error for anything else."""
    if head.startswith(_NPY_MAGIC):
        return "npy"
    if head.startswith(_ZIP_MAGICS):
        return "npz"
    if len(head) < len(_NPY_MAGIC) and _NPY_MAGIC.startswith(head):
        raise ValueError(f"{p}: truncated .npy file ({len(head)} bytes).")
    if len(head) < 4 and any(m.startswith(head) for m in _ZIP_MAGICS):
        raise ValueError(f"{p}: truncated .npz archive ({len(head)} bytes).")
    raise ValueError(f"{p}: not a NumPy .npy/.npz file but {looks_like(head)}.")


def _numpy_load_error(p: Path, kind: str, exc: ValueError) -> ValueError:
    """The error to raise for a :class:`ValueError` of :func:`numpy.load`."""
    text = _first_line(exc)
    if any(s in text for s in ("allow_pickle", "Object arrays", "Python objects")):
        return ValueError(
            f"{p}: holds an array of pickled Python objects (dtype object), which is "
            "refused: unpickling can run arbitrary code (allow_pickle=False). Save a "
            "numeric array instead."
        )
    return ValueError(f"{p}: truncated or corrupt {kind} ({text}).")


def _load_npy(path: PathLike, *, name: str = "path", mmap: bool = False) -> np.ndarray:
    """Load one numeric array from a ``.npy`` file, refusing pickles, archives and damage."""
    p, head = _existing_file(path, name=name)
    if _kind_of(p, head) == "npz":
        raise ValueError(
            f"{p}: is an .npz archive; expected a single .npy array (save it with numpy.save)."
        )
    with _reading(p, ".npy file"):
        try:
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as exc:
            raise _numpy_load_error(p, ".npy file", exc) from None


def _check_not_empty(arr: np.ndarray, name: str, what: str) -> None:
    """Raise when ``arr`` has no rows."""
    if arr.ndim >= 1 and arr.shape[0] == 0:
        raise ValueError(f"{name}: holds no {what} (shape {arr.shape}).")


def _check_finite(arr: np.ndarray, name: str, what: str = "features") -> None:
    """Raise when ``arr`` holds NaN or infinity, scanning it in blocks of rows."""
    if arr.dtype.kind not in "fc":
        return
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        bad = ~np.isfinite(arr[start : start + _CHUNK_ROWS])
        if bad.any():
            rows = bad.reshape(bad.shape[0], -1).any(axis=1)
            row = start + int(np.flatnonzero(rows)[0])
            raise ValueError(f"{name}: {what} contain NaN or infinity (first in row {row}).")


def _check_whole(arr: np.ndarray, name: str, what: str) -> None:
    """Raise when a float array holds values that are not whole numbers (or not exact)."""
    if arr.dtype.kind != "f":
        return
    _check_finite(arr, name, what)
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = arr[start : start + _CHUNK_ROWS]
        bad = (block != np.round(block)) | (np.abs(block) > _FLOAT64_EXACT)
        if bad.any():
            pos = np.argwhere(bad)[0]
            raise ValueError(
                f"{name}: {what} must be whole numbers, found {block[tuple(pos)].item()!r} in row "
                f"{start + int(pos[0])} (values are never truncated)."
            )


def _check_dtype(arr: np.ndarray, name: str, what: str, kinds: str) -> None:
    """Raise when ``arr``'s dtype is not of one of ``kinds`` (numpy kind letters)."""
    if arr.dtype.kind not in kinds:
        expected = "real numbers" if "b" in kinds else "integers (or whole-valued floats)"
        raise ValueError(f"{name}: {what} must be {expected}, got dtype {arr.dtype}.")


def _as_features(arr: np.ndarray, name: str) -> np.ndarray:
    """Validate a loaded feature matrix and return it as float32 (N, D)."""
    _check_dtype(arr, name, "features", "biuf")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name}: features must be a non-empty 2-D (N, D) array, got shape {arr.shape}."
        )
    _check_finite(arr, name)
    return arr.astype(np.float32, copy=False)


def _as_ids(arr: np.ndarray, name: str) -> np.ndarray:
    """Return integer (or whole-valued float) neighbour ids as int64."""
    _check_dtype(arr, name, "neighbour ids", "iuf")
    _check_whole(arr, name, "neighbour ids")
    return arr.astype(np.int64, copy=False)


def _as_labels(arr: np.ndarray, name: str, n_samples: Optional[int]) -> np.ndarray:
    """Validate loaded labels (N,) or (N, 1): integers or whole-valued floats, as int64."""
    _check_dtype(arr, name, "labels", "iuf")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name}: labels must have shape (N,) or (N, 1), got shape {arr.shape}.")
    _check_not_empty(arr, name, "labels")
    _check_whole(arr, name, "labels")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: labels must fit in int64, found {int(arr.max())}.")
    return check_labels(arr, n_samples=n_samples, name=str(name))


def _check_rows(name: str, n: int, n_ref: Optional[int], ref_name: Optional[str]) -> None:
    """Raise when a file's row count differs from ``n_ref`` (the rows of ``ref_name``)."""
    if n_ref is None or n == n_ref:
        return
    other = f"{n_ref} were expected" if ref_name is None else f"{ref_name} has {n_ref}"
    raise ValueError(f"{name} has {n} rows but {other}.")


def _check_n_samples(n_samples: Optional[int]) -> Optional[int]:
    """Validate the optional ``n_samples`` argument of the loaders."""
    return None if n_samples is None else check_int(n_samples, "n_samples", minimum=1)


def _checked_index(index: ArrayLike, name: str, rows_of: Optional[str] = None) -> np.ndarray:
    """A neighbour-id table (self excluded) checked by :func:`~linkage_gcn.knn.check_knn_index`."""
    return check_knn_index(index, name=name, rows_of=rows_of or "the table").numpy()


# --------------------------------------------------------------------------- L-GCN trio


def load_features(path: PathLike, *, mmap: bool = False) -> np.ndarray:
    """Load a ``features.npy`` matrix.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file, shape ``(N, D)``.
    mmap : bool, default=False
        Memory-map the file read-only instead of reading it into memory. A
        float32 file then comes back as a read-only :class:`numpy.memmap`
        (other dtypes are converted, which reads them). The NaN/Inf check
        scans it in blocks of rows either way.

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, D)

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist or is a directory.
    PermissionError
        When the file cannot be read.
    TypeError
        When ``path`` is not a string or path-like.
    ValueError
        When the file is empty, truncated, corrupt, not a ``.npy`` array or
        holds pickled objects, or the array is not a non-empty 2-D real
        matrix free of NaN and infinity.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_features(os.path.join(tmp, "features.npy"), np.eye(2))
    ...     X = load_features(path)
    >>> X.dtype, X.shape
    (dtype('float32'), (2, 2))
    """
    return _as_features(_load_npy(path, mmap=mmap), str(path))


def load_labels(path: PathLike, n_samples: Optional[int] = None) -> np.ndarray:
    """Load a ``labels.npy`` vector of shape ``(N,)`` or ``(N, 1)``.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file.
    n_samples : int, optional
        Expected number of labels.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError
        As :func:`load_features`.
    ValueError
        As :func:`load_features` for the file; for the array, when it is
        empty, not ``(N,)`` or ``(N, 1)``, not integers or whole-valued floats
        (``3.0`` is read as ``3``; ``2.5``, NaN and infinity are refused, never
        truncated) or not ``n_samples`` long.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_labels(os.path.join(tmp, "labels.npy"), [[3], [1], [3]])
    ...     print(load_labels(path))
    [3 1 3]
    """
    n_samples = _check_n_samples(n_samples)
    return _as_labels(_load_npy(path), str(path), n_samples)


def load_knn(path: PathLike, n_samples: Optional[int] = None, *, mmap: bool = False) -> np.ndarray:
    """Load a self-first ``knn.npy`` table and drop its self column.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` file, shape ``(N, K + 1)``, row ``i`` = ``[i, nn_1, ..., nn_K]``.
    n_samples : int, optional
        Expected number of rows (the number of feature rows); neighbour ids
        must lie in ``[0, n_samples)``. By default the table's own row count.
    mmap : bool, default=False
        Memory-map the file while validating it.

    Returns
    -------
    index : numpy.ndarray of int64, shape (N, K)
        Neighbour ids, self excluded.

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError
        As :func:`load_features`.
    ValueError
        As :func:`load_features` for the file; for the table, when it is not
        2-D with at least one row and two columns, an id is not a whole number
        (NaN, infinity, ``1.5``; whole-valued floats are accepted), a row does
        not start with its own id, an id is out of range or the row count
        differs from ``n_samples``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "knn.npy")
    ...     _ = save_knn(path, [[1, 2], [0, 2], [1, 0]])
    ...     print(np.load(path)[1])
    ...     print(load_knn(path))
    [1 0 2]
    [[1 2]
     [0 2]
     [1 0]]
    """
    return _read_knn(path, _check_n_samples(n_samples), None, mmap=mmap)


def _read_knn(
    path: PathLike, n: Optional[int], ref_name: Optional[str], *, mmap: bool
) -> np.ndarray:
    """:func:`load_knn` of ``n`` rows (those of ``ref_name``, or given), checked in that order."""
    name = str(path)
    arr = _load_npy(path, mmap=mmap)
    _check_dtype(arr, name, "neighbour ids", "iuf")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ValueError(
            f"{name}: a kNN table must be 2-D (N, K+1) with N >= 1 and K >= 1, got shape "
            f"{arr.shape}."
        )
    table = _as_ids(arr, name)
    _check_rows(name, arr.shape[0], n, ref_name)
    try:
        index = from_self_first(table)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    return _checked_index(index, name, ref_name)


def load_reference(
    feat_path: PathLike,
    knn_path: Optional[PathLike] = None,
    labels_path: Optional[PathLike] = None,
    *,
    mmap: bool = False,
) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Load the L-GCN trio ``features.npy``, ``knn.npy``, ``labels.npy``, checked together.

    Parameters
    ----------
    feat_path : str or path-like
        ``features.npy``.
    knn_path, labels_path : str or path-like, optional
        ``knn.npy`` and ``labels.npy``; skipped when ``None``.
    mmap : bool, default=False
        Memory-map the features and the kNN table (see :func:`load_features`).

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, D)
    index : numpy.ndarray of int64, shape (N, K), or None
        Neighbour ids with the self column removed.
    labels : numpy.ndarray of int64, shape (N,), or None

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError, ValueError
        As the loaders of each file (the message names the file), or when the
        files disagree on ``N``.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = save_features(os.path.join(tmp, "features.npy"), np.eye(3))
    ...     k = save_knn(os.path.join(tmp, "knn.npy"), [[1], [0], [1]])
    ...     y = save_labels(os.path.join(tmp, "labels.npy"), [0, 0, 1])
    ...     X, index, labels = load_reference(f, k, y)
    >>> X.shape, index.shape, labels.tolist()
    ((3, 3), (3, 1), [0, 0, 1])
    """
    X = load_features(_as_path(feat_path, "feat_path"), mmap=mmap)
    labels = _labels_of(X, feat_path, labels_path, "labels_path", load_labels)
    index = None
    if knn_path is not None:
        index = _read_knn(_as_path(knn_path, "knn_path"), len(X), str(feat_path), mmap=mmap)
    return X, index, labels


def _labels_of(
    X: np.ndarray,
    feat_path: PathLike,
    path: Optional[PathLike],
    name: str,
    load: Callable[[Path], np.ndarray],
) -> Optional[np.ndarray]:
    """The labels file ``path`` (argument ``name``) read by ``load``, one per row of ``X``."""
    if path is None:
        return None
    path = _as_path(path, name)
    labels = load(path)
    _check_rows(str(path), labels.shape[0], len(X), str(feat_path))
    return labels


def save_features(path: PathLike, X: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write a feature matrix to ``path`` as ``.npy`` (float32, float64 kept as is).

    Parameters
    ----------
    path : str or path-like
        Target file, written exactly as named (no suffix is appended).
    X : array-like or torch.Tensor of shape (N, D)
        Finite features.
    overwrite : bool, default=False
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_features(os.path.join(tmp, "features.npy"), [[0.0, 1.0]])
    ...     try:
    ...         save_features(path, [[1.0, 0.0]])
    ...     except FileExistsError:
    ...         print("refused")
    refused
    """
    t, _ = check_features(X, name="X")
    arr = t.detach().cpu().numpy()
    return atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False), overwrite=overwrite)


def save_labels(path: PathLike, labels: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write integer labels to ``path`` as an int64 ``(N,)`` ``.npy`` file.

    See :func:`save_features` for ``path``, ``overwrite`` and the return value.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_labels(os.path.join(tmp, "labels.npy"), [2, 0, 2])
    ...     print(np.load(path).dtype)
    int64
    """
    arr = check_labels(labels, name="labels")
    return atomic_write(path, lambda f: np.save(f, arr, allow_pickle=False), overwrite=overwrite)


def save_knn(path: PathLike, index: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write (N, K) neighbour ids as the reference self-first ``(N, K + 1)`` ``knn.npy``.

    ``index`` (array-like or tensor of shape (N, K)) holds integer neighbour
    ids in ``[0, N)``, self excluded, as
    :func:`linkage_gcn.knn.check_knn_index` checks them. See
    :func:`save_features` for ``path``, ``overwrite`` and the return value.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_knn(os.path.join(tmp, "knn.npy"), [[1], [0]])
    ...     print(np.load(path))
    [[0 1]
     [1 0]]
    """
    table = to_self_first(_checked_index(index, "index"))
    return atomic_write(path, lambda f: np.save(f, table, allow_pickle=False), overwrite=overwrite)


# --------------------------------------------------------------------------- LTC format


def load_bin_features(path: PathLike, dim: int, *, mmap: bool = False) -> np.ndarray:
    """Load an LTC ``.bin`` file of raw little-endian float32 rows of length ``dim``.

    Parameters
    ----------
    path : str or path-like
        The ``.bin`` file (no header).
    dim : int
        Feature dimension (256 for the LTC MS-Celeb-1M features).
    mmap : bool, default=False
        Return a read-only :class:`numpy.memmap` instead of reading the file.

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, dim)

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError
        As :func:`load_features`.
    ValueError
        When ``dim`` is not a positive integer, the file size is not a
        positive multiple of ``4 * dim`` bytes, or the features hold NaN or
        infinity.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_bin_features(os.path.join(tmp, "part0.bin"), np.ones((3, 4)))
    ...     print(os.path.getsize(path), load_bin_features(path, dim=4).shape)
    48 (3, 4)
    """
    dim = check_int(dim, "dim", minimum=1)
    p, _ = _existing_file(path)
    size = p.stat().st_size
    row_bytes = 4 * dim
    if size == 0 or size % row_bytes:
        raise ValueError(
            f"{p}: size {size} bytes is not a positive multiple of 4 * dim = {row_bytes} "
            f"(float32 rows of {dim} values); is dim right?"
        )
    n = size // row_bytes
    with _reading(p, ".bin file"):
        if mmap:
            arr = np.memmap(p, dtype="<f4", mode="r", shape=(n, dim))
        else:
            arr = np.fromfile(p, dtype="<f4").reshape(n, dim)
        return _as_features(arr, str(p))


def save_bin_features(path: PathLike, X: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write features as an LTC ``.bin`` file of raw little-endian float32 rows.

    See :func:`save_features` for ``path``, ``overwrite`` and the return value.
    The dimension is not stored: pass it to :func:`load_bin_features`.
    """
    t, _ = check_features(X, name="X", dtype=torch.float32)
    arr = t.detach().cpu().numpy().astype("<f4", copy=False)
    return atomic_write(path, arr.tofile, overwrite=overwrite)


def load_meta_labels(path: PathLike, n_samples: Optional[int] = None) -> np.ndarray:
    """Load an LTC ``.meta`` file: one integer label per line.

    ``n_samples``, the return value and the errors about the path are those
    of :func:`load_labels`; ``path`` is a text file.

    Raises
    ------
    ValueError
        When the file is empty or not text, a line holds anything but one
        integer (whole-valued floats such as ``3.0`` are accepted; ``2.5``,
        ``nan`` are refused, never truncated) or there are not ``n_samples``
        labels. Blank lines and ``#`` comments are skipped.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_meta_labels(os.path.join(tmp, "part0.meta"), [4, 4, 0])
    ...     print(path.read_text().split(), load_meta_labels(path))
    ['4', '4', '0'] [4 4 0]
    """
    n_samples = _check_n_samples(n_samples)
    p, _ = _existing_file(path)
    with _reading(p, ".meta file"):
        raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{p}: not a text file of labels (byte {exc.start} is not UTF-8 text)."
        ) from None
    return _as_labels(_parse_meta(text, p), str(p), n_samples)


def _parse_meta(text: str, p: Path) -> np.ndarray:
    """Parse one label per line: integers, or whole-valued floats checked later."""
    problem = None
    for dtype in (np.int64, np.float64):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                arr = np.loadtxt(io.StringIO(text), dtype=dtype, ndmin=1, comments="#")
        except ValueError as exc:
            problem = problem or _first_line(exc)
            continue
        if arr.size == 0:
            raise ValueError(f"{p}: holds no labels.")
        if arr.ndim != 1:
            raise ValueError(
                f"{p}: expected one integer label per line, got {arr.shape[1]} values per line."
            )
        return arr
    raise ValueError(f"{p}: expected one integer label per line ({problem}).")


def save_meta_labels(path: PathLike, labels: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write labels as an LTC ``.meta`` file, one integer per line.

    See :func:`save_features` for ``path``, ``overwrite`` and the return value.
    """
    arr = check_labels(labels, name="labels")
    return atomic_write(path, lambda f: np.savetxt(f, arr, fmt="%d"), overwrite=overwrite)


def load_ltc_knn(
    path: PathLike, n_samples: Optional[int] = None, *, sort: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Load an LTC ``faiss_k_*.npz`` kNN file.

    The archive holds ``data`` of shape ``(N, 2, K)``: neighbour ids and
    cosine distances ``1 - similarity``. Like LTC's loader
    (``knns2ordered_nbrs(knns, sort=True)``), each row is first sorted by
    increasing distance, here with a stable sort so that ties keep their
    stored order. Then one column per row is dropped by the rule of
    :func:`linkage_gcn.knn.drop_self`: the row's own id at its first
    occurrence (wherever exact duplicates put it), else the last, farthest
    column; every row keeps ``K - 1`` neighbours.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file (a plain ``.npy`` with the same array is accepted).
    n_samples : int, optional
        Expected number of rows; ids must lie in ``[0, n_samples)``.
    sort : bool, default=True
        Sort each row by distance before dropping the self column; ``False``
        keeps the stored order (for files known to be sorted, or to study
        the order a search wrote).

    Returns
    -------
    index : numpy.ndarray of int64, shape (N, K - 1)
    similarity : numpy.ndarray of float32, shape (N, K - 1)
        ``1 - distance``.

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError
        As :func:`load_features`.
    ValueError
        When the file is empty, truncated or corrupt, an archive holds no
        array named ``data`` (nor a single array), the array holds pickled
        objects (ragged object arrays, as LTC's hnsw search writes, are
        refused) or is not numeric ``(N, 2, K)`` with ``N >= 1`` and
        ``K >= 2``, an id is not a whole number in range (including ``-1``
        placeholders for missing neighbours) or a distance is not finite.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "faiss_k_2.npz")
    ...     _ = save_ltc_knn(path, [[1], [0]], [[0.75], [0.75]])
    ...     print(np.load(path)["data"][0])
    ...     index, sim = load_ltc_knn(path)
    [[0.   1.  ]
     [0.   0.25]]
    >>> index.tolist(), sim.tolist()
    ([[1], [0]], [[0.75], [0.75]])

    A row stored out of order is sorted first:

    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "faiss_k_3.npz")
    ...     np.savez(path, data=np.array([[[2, 0, 1], [0.5, 0.0, 0.25]],
    ...                                   [[1, 0, 2], [0.0, 0.25, 0.5]],
    ...                                   [[2, 1, 0], [0.0, 0.5, 0.75]]]))
    ...     print(load_ltc_knn(path)[0].tolist(), load_ltc_knn(path, sort=False)[0].tolist())
    [[1, 2], [0, 2], [1, 0]] [[2, 1], [0, 2], [1, 0]]
    """
    n_samples = _check_n_samples(n_samples)
    p, head = _existing_file(path)
    return _split_ltc_knn(_read_ltc_array(p, head), str(p), n_samples, None, sort=sort)


def _read_ltc_array(p: Path, head: bytes) -> np.ndarray:
    """Read the ``data`` array of an LTC ``.npz`` archive (or a plain ``.npy``)."""
    kind = _kind_of(p, head)
    what = ".npz archive" if kind == "npz" else ".npy file"
    with _reading(p, what):
        try:
            loaded = np.load(p, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded
            with loaded as archive:
                keys = list(archive.keys())
                if "data" not in keys and len(keys) != 1:
                    raise ValueError(
                        f"{p}: expected an array named 'data' (or a single array), found "
                        f"{keys if keys else 'an empty archive'}."
                    )
                return archive["data" if "data" in keys else keys[0]]
        except ValueError as exc:
            if str(exc).startswith(f"{p}: "):
                raise
            raise _numpy_load_error(p, what, exc) from None


def _split_ltc_knn(
    arr: np.ndarray, name: str, n: Optional[int], ref_name: Optional[str], *, sort: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an LTC ``(N, 2, K)`` array, sort its rows and split ids from similarities."""
    if arr.dtype.kind not in "iuf" or arr.ndim != 3 or arr.shape[1] != 2 or arr.shape[2] < 2:
        raise ValueError(
            f"{name}: expected a numeric (N, 2, K) kNN array with K >= 2, got shape "
            f"{arr.shape} and dtype {arr.dtype}."
        )
    _check_not_empty(arr, name, "kNN rows")
    ids = _as_ids(arr[:, 0, :], name)
    dist = arr[:, 1, :]
    _check_finite(dist, name, "distances")
    _check_rows(name, arr.shape[0], n, ref_name)
    if sort:
        order = np.argsort(dist, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
    index, dist = drop_self(ids, dist)
    return _checked_index(index, name, ref_name), (1.0 - dist).astype(np.float32)


def save_ltc_knn(
    path: PathLike,
    index: ArrayLike,
    similarity: ArrayLike,
    *,
    compressed: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a kNN graph as an LTC ``faiss_k_*.npz`` file.

    Each row is stored self first (distance 0) followed by the given
    neighbours, so a graph of ``K`` neighbours becomes ``faiss_k_<K+1>``.
    Values are float32 (float64 when ``N > 2**24``, so that ids stay exact).
    See :func:`save_knn` for ``index`` and :func:`save_features` for
    ``path``, ``overwrite`` and the return value.

    Parameters
    ----------
    similarity : array-like of shape (N, K)
        Cosine similarities; stored as distances ``1 - similarity``.
    compressed : bool, default=True
        Compress the archive, as LTC does (``np.savez_compressed``); several
        times slower to write than ``False``, and both load the same way.
    """
    ids = _checked_index(index, "index")
    sim, _ = check_features(similarity, name="similarity", dtype=torch.float64)
    sim = sim.detach().cpu().numpy()
    if sim.shape != ids.shape:
        raise ValueError(f"similarity has shape {sim.shape} but index has shape {ids.shape}.")
    n = ids.shape[0]
    dtype = np.float32 if n <= _FLOAT32_EXACT else np.float64
    data = np.empty((n, 2, ids.shape[1] + 1), dtype=dtype)
    data[:, 0, 0] = np.arange(n)
    data[:, 0, 1:] = ids
    data[:, 1, 0] = 0.0
    data[:, 1, 1:] = 1.0 - sim
    savez = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: savez(f, data=data), overwrite=overwrite)


def load_ltc(
    feat_path: PathLike,
    meta_path: Optional[PathLike] = None,
    knn_path: Optional[PathLike] = None,
    dim: int = 256,
    *,
    normalize: bool = False,
    mmap: bool = False,
    sort: bool = True,
) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Load an LTC data set (``.bin`` features, ``.meta`` labels, ``.npz`` kNN), checked together.

    Parameters
    ----------
    feat_path : str or path-like
        ``features/<name>.bin``.
    meta_path : str or path-like, optional
        ``labels/<name>.meta``.
    knn_path : str or path-like, optional
        ``knns/<name>/faiss_k_<K>.npz``.
    dim : int, default=256
        Feature dimension.
    normalize : bool, default=False
        L2-normalise the rows, as LTC's own loader does by default (this
        reads a memory-mapped file into memory).
    mmap : bool, default=False
        Memory-map the features (see :func:`load_bin_features`).
    sort : bool, default=True
        Sort each kNN row by distance (see :func:`load_ltc_knn`).

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, dim)
    index : numpy.ndarray of int64, shape (N, K - 1), or None
    similarity : numpy.ndarray of float32, shape (N, K - 1), or None
    labels : numpy.ndarray of int64, shape (N,), or None

    Raises
    ------
    FileNotFoundError, PermissionError, TypeError, ValueError
        As :func:`load_reference`.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     f = save_bin_features(os.path.join(tmp, "a.bin"), [[3.0, 4.0], [1.0, 0.0]])
    ...     m = save_meta_labels(os.path.join(tmp, "a.meta"), [0, 1])
    ...     X, index, sim, labels = load_ltc(f, m, dim=2, normalize=True)
    >>> X.tolist(), index, labels.tolist()
    ([[0.6, 0.8], [1.0, 0.0]], None, [0, 1])
    """
    X = load_bin_features(_as_path(feat_path, "feat_path"), dim, mmap=mmap)
    n = X.shape[0]
    if normalize:
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.float32(1e-12))
    labels = _labels_of(X, feat_path, meta_path, "meta_path", load_meta_labels)
    index = similarity = None
    if knn_path is not None:
        p, head = _existing_file(knn_path, name="knn_path")
        index, similarity = _split_ltc_knn(_read_ltc_array(p, head), str(p), n, str(feat_path),
                                           sort=sort)  # fmt: skip
    return X, index, similarity, labels
