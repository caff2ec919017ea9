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
  nearest first, the node itself normally first with distance 0.

In memory the package uses a kNN graph as ``index`` ``(N, K)`` int64 with the
node itself left out (and, for LTC, ``similarity`` ``(N, K)`` float32).

Loaders validate what they read and raise a :class:`ValueError` naming the
file and the problem; a missing file raises :class:`FileNotFoundError` with
its path. Writers never overwrite an existing file unless ``overwrite=True``,
write exactly the path given (no ``.npy``/``.npz`` suffix is appended) and
write atomically: the data goes to a temporary file in the target directory
that is then renamed over the target, so a crash never leaves a half-written
file behind.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ._files import atomic_write
from ._validation import ArrayLike, check_features, check_int, check_labels
from .knn import from_self_first, to_self_first

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


def _existing_file(path: PathLike) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, raising when it is not a file."""
    p = Path(path)
    if not p.is_file():
        what = "is a directory, not a file" if p.is_dir() else "no such file"
        raise FileNotFoundError(f"{p}: {what}.")
    return p


def _load_npy(path: PathLike, *, mmap: bool = False) -> np.ndarray:
    """Load one array from a ``.npy`` file, refusing pickled objects."""
    p = _existing_file(path)
    try:
        arr = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{p}: not a readable numeric .npy array ({exc}).") from exc
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{p}: expected a single .npy array, got an .npz archive.")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    """Raise when ``arr`` holds NaN or infinity, scanning it in blocks of rows."""
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        bad = ~np.isfinite(arr[start : start + _CHUNK_ROWS])
        if bad.any():
            row = start + int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(f"{name}: features contain NaN or infinity (first in row {row}).")


def _as_features(arr: np.ndarray, name: str) -> np.ndarray:
    """Validate a loaded feature matrix and return it as float32 (N, D)."""
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name}: features must be a non-empty 2-D (N, D) array, got shape {arr.shape}."
        )
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: features must be numeric, got dtype {arr.dtype}.")
    _check_finite(arr, name)
    return arr.astype(np.float32, copy=False)


def _as_ids(arr: np.ndarray, name: str) -> np.ndarray:
    """Return integer (or whole-valued float) neighbour ids as int64."""
    if arr.dtype.kind == "f":
        if not (np.isfinite(arr).all() and np.array_equal(arr, np.round(arr))):
            raise ValueError(f"{name}: neighbour ids must be whole numbers.")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: neighbour ids must be integers, got dtype {arr.dtype}.")
    return arr.astype(np.int64, copy=False)


def _check_id_range(index: np.ndarray, n: int, name: str) -> None:
    """Raise when a neighbour id falls outside ``[0, n)``, naming the first bad row."""
    if index.size == 0:
        return
    bad = (index < 0) | (index >= n)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: neighbour ids must be in [0, {n}), found {int(index[row, col])} in row "
            f"{int(row)} ({int(bad.sum())} bad id(s))."
        )


def _check_rows(name: str, n: int, ref_name: str, n_ref: int) -> None:
    """Raise when two files disagree on the number of rows."""
    if n != n_ref:
        raise ValueError(f"{name} has {n} rows but {ref_name} has {n_ref}.")


def _check_index(index: ArrayLike, name: str = "index") -> np.ndarray:
    """Validate an in-memory (N, K) neighbour-id matrix (self excluded)."""
    if isinstance(index, torch.Tensor):
        index = index.detach().cpu().numpy()
    arr = np.asarray(index)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-D (N, K) array with K >= 1, got shape {arr.shape}.")
    arr = _as_ids(arr, name)
    _check_id_range(arr, arr.shape[0], name)
    return arr


def _drop_self(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own id (its first occurrence), or its last column when absent."""
    n, k = ids.shape
    is_self = ids == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    drop = np.where(has_self, is_self.argmax(axis=1), k - 1)
    keep = np.ones((n, k), dtype=bool)
    keep[np.arange(n), drop] = False
    return ids[keep].reshape(n, k - 1), sims[keep].reshape(n, k - 1)


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
        When ``path`` does not exist.
    ValueError
        When the array is not a non-empty 2-D numeric matrix or holds NaN or
        infinity.

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

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_labels(os.path.join(tmp, "labels.npy"), [[3], [1], [3]])
    ...     print(load_labels(path))
    [3 1 3]
    """
    arr = _load_npy(path)
    return check_labels(arr, n_samples=n_samples, name=str(path))


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
    ValueError
        When the table is not 2-D with at least two columns, a row does not
        start with its own id, an id is out of range or the row count
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
    name = str(path)
    arr = _load_npy(path, mmap=mmap)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(
            f"{name}: a kNN table must be 2-D (N, K+1) with K >= 1, got shape {arr.shape}."
        )
    if n_samples is not None:
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        if arr.shape[0] != n_samples:
            raise ValueError(f"{name} has {arr.shape[0]} rows but {n_samples} were expected.")
    table = _as_ids(arr, name)
    try:
        index = from_self_first(table)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    _check_id_range(index, table.shape[0], name)
    return index


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
    ValueError
        When a file is invalid or the files disagree on ``N``.

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
    X = load_features(feat_path, mmap=mmap)
    n = X.shape[0]
    index = labels = None
    if labels_path is not None:
        labels = load_labels(labels_path)
        _check_rows(str(labels_path), labels.shape[0], str(feat_path), n)
    if knn_path is not None:
        index = load_knn(knn_path, mmap=mmap)
        _check_rows(str(knn_path), index.shape[0], str(feat_path), n)
    return X, index, labels


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

    Parameters
    ----------
    path : str or path-like
        Target file, written exactly as named.
    index : array-like or torch.Tensor of shape (N, K)
        Neighbour ids in ``[0, N)``, self excluded.
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
    ...     path = save_knn(os.path.join(tmp, "knn.npy"), [[1], [0]])
    ...     print(np.load(path))
    [[0 1]
     [1 0]]
    """
    table = to_self_first(_check_index(index))
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
    ValueError
        When the file size is not a positive multiple of ``4 * dim`` bytes,
        or the features hold NaN or infinity.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_bin_features(os.path.join(tmp, "part0.bin"), np.ones((3, 4)))
    ...     print(os.path.getsize(path), load_bin_features(path, dim=4).shape)
    48 (3, 4)
    """
    p = _existing_file(path)
    dim = check_int(dim, "dim", minimum=1)
    size = p.stat().st_size
    row_bytes = 4 * dim
    if size == 0 or size % row_bytes:
        raise ValueError(
            f"{p}: size {size} bytes is not a positive multiple of 4 * dim = {row_bytes} "
            f"(float32 rows of {dim} values); is dim right?"
        )
    n = size // row_bytes
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

    Parameters
    ----------
    path : str or path-like
        The text file.
    n_samples : int, optional
        Expected number of labels.

    Returns
    -------
    labels : numpy.ndarray of int64, shape (N,)

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = save_meta_labels(os.path.join(tmp, "part0.meta"), [4, 4, 0])
    ...     print(path.read_text().split(), load_meta_labels(path))
    ['4', '4', '0'] [4 4 0]
    """
    p = _existing_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            arr = np.loadtxt(p, dtype=np.int64, ndmin=1)
    except ValueError as exc:
        raise ValueError(f"{p}: expected one integer label per line ({exc})") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{p}: expected one integer label per line, got shape {arr.shape}.")
    return check_labels(arr, n_samples=n_samples, name=str(p))


def save_meta_labels(path: PathLike, labels: ArrayLike, *, overwrite: bool = False) -> Path:
    """Write labels as an LTC ``.meta`` file, one integer per line.

    See :func:`save_features` for ``path``, ``overwrite`` and the return value.
    """
    arr = check_labels(labels, name="labels")
    return atomic_write(path, lambda f: np.savetxt(f, arr, fmt="%d"), overwrite=overwrite)


def load_ltc_knn(path: PathLike, n_samples: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Load an LTC ``faiss_k_*.npz`` kNN file.

    The archive holds ``data`` of shape ``(N, 2, K)``: neighbour ids and
    cosine distances ``1 - similarity``. Each row's own id is removed where
    present (its first occurrence, wherever exact duplicates put it);
    otherwise the last, farthest column is dropped, so every row keeps
    ``K - 1`` neighbours in the stored order.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file (a plain ``.npy`` with the same array is accepted).
    n_samples : int, optional
        Expected number of rows; ids must lie in ``[0, n_samples)``.

    Returns
    -------
    index : numpy.ndarray of int64, shape (N, K - 1)
    similarity : numpy.ndarray of float32, shape (N, K - 1)
        ``1 - distance``.

    Raises
    ------
    ValueError
        When the array is not numeric ``(N, 2, K)`` with ``K >= 2`` (ragged
        object arrays, as LTC's hnsw search writes, are refused), an id is not
        a whole number in range (including ``-1`` placeholders for missing
        neighbours) or a distance is not finite.

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
    """
    p = _existing_file(path)
    return _split_ltc_knn(_read_ltc_array(p), str(p), n_samples)


def _read_ltc_array(p: Path) -> np.ndarray:
    """Read the ``data`` array of an LTC ``.npz`` archive (or a plain ``.npy``)."""
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as archive:
            keys = list(archive.keys())
            if "data" not in keys and len(keys) != 1:
                raise KeyError(keys)
            return archive["data" if "data" in keys else keys[0]]
    except KeyError as exc:
        raise ValueError(f"{p}: expected an array named 'data', found {exc.args[0]}.") from None
    except ValueError as exc:
        raise ValueError(
            f"{p}: not a numeric (N, 2, K) kNN array ({exc}); ragged object arrays are "
            "not supported."
        ) from None


def _split_ltc_knn(
    arr: np.ndarray, name: str, n_samples: Optional[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an LTC ``(N, 2, K)`` array and split it into ids and similarities."""
    if arr.dtype.kind not in "biuf" or arr.ndim != 3 or arr.shape[1] != 2 or arr.shape[2] < 2:
        raise ValueError(
            f"{name}: expected a numeric (N, 2, K) kNN array with K >= 2, got shape "
            f"{arr.shape} and dtype {arr.dtype}."
        )
    n = arr.shape[0]
    if n_samples is not None and n != check_int(n_samples, "n_samples", minimum=1):
        raise ValueError(f"{name} has {n} rows but {n_samples} were expected.")
    ids = _as_ids(arr[:, 0, :], name)
    dist = arr[:, 1, :]
    if not np.isfinite(dist).all():
        raise ValueError(f"{name}: distances contain NaN or infinity.")
    _check_id_range(ids, n, name)
    index, dist = _drop_self(ids, dist)
    return index, (1.0 - dist).astype(np.float32)


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

    Parameters
    ----------
    path : str or path-like
        Target file, written exactly as named.
    index : array-like of shape (N, K)
        Neighbour ids in ``[0, N)``, self excluded.
    similarity : array-like of shape (N, K)
        Cosine similarities; stored as distances ``1 - similarity``.
    compressed : bool, default=True
        Compress the archive, as LTC does (``np.savez_compressed``); several
        times slower to write than ``False``, and both load the same way.
    overwrite : bool, default=False
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    ids = _check_index(index)
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

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, dim)
    index : numpy.ndarray of int64, shape (N, K - 1), or None
    similarity : numpy.ndarray of float32, shape (N, K - 1), or None
    labels : numpy.ndarray of int64, shape (N,), or None

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
    X = load_bin_features(feat_path, dim, mmap=mmap)
    n = X.shape[0]
    if normalize:
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), np.float32(1e-12))
    labels = index = similarity = None
    if meta_path is not None:
        labels = load_meta_labels(meta_path)
        _check_rows(str(meta_path), labels.shape[0], str(feat_path), n)
    if knn_path is not None:
        index, similarity = load_ltc_knn(knn_path)
        _check_rows(str(knn_path), index.shape[0], str(feat_path), n)
    return X, index, similarity, labels
