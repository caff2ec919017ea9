"""Data for tests, examples and benchmarks.

- :func:`make_identities`: synthetic long-tailed identities on the unit sphere,
  with look-alike identities, so that clustering them is neither trivial nor
  hopeless;
- :func:`load_lfw_dlib`, :func:`find_shared_lfw`: the real LFW dlib face
  embeddings, read from a local folder (nothing is ever downloaded).

The selections of samples by identity (:func:`~linkage_gcn.model_selection.split_identities`,
:func:`~linkage_gcn.model_selection.identity_folds`,
:func:`~linkage_gcn.model_selection.make_imbalanced_subset`) live in
:mod:`linkage_gcn.model_selection`; their old names here are deprecated aliases
for one release.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ._validation import RandomStateLike, as_generator, check_in_options, check_int, check_real
from .io import load_reference

__all__ = [
    "find_shared_lfw",
    "load_lfw_dlib",
    "make_identities",
]

#: Environment variable naming the LFW dlib folder, read by :func:`find_shared_lfw`.
LFW_ENV = "LINKAGE_GCN_LFW"

#: Names moved to :mod:`linkage_gcn.model_selection` (kept here one release, with a warning).
_MOVED = ("identity_folds", "make_imbalanced_subset", "split_identities")

def __getattr__(name: str) -> Any:
    """Deprecated aliases of the functions moved to :mod:`linkage_gcn.model_selection`."""
    if name in _MOVED:
        warnings.warn(
            f"linkage_gcn.datasets.{name} is deprecated and will be removed in the next "
            f"release; use linkage_gcn.model_selection.{name}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(".model_selection", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _normalize_rows(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


# --------------------------------------------------------------------------- synthetic


def _identity_sizes(
    n: int, max_size: int, min_size: int, tail_exponent: float, rng: np.random.Generator
) -> np.ndarray:
    """Sizes by rank r = 1..n: ``min_size + Poisson((max_size - min_size) * r**-a)``.

    The first (largest) identity has exactly ``max_size`` samples.
    """
    rank = np.arange(1, n + 1, dtype=np.float64)
    sizes = min_size + rng.poisson((max_size - min_size) * rank**-tail_exponent)
    sizes[0] = max_size
    return np.minimum(sizes, max_size)


def _identity_centres(
    n: int, dim: int, family_size: float, separation: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw unit identity centres around random unit "family" centres."""
    n_families = max(1, int(np.ceil(n / family_size)))
    families = _normalize_rows(rng.standard_normal((n_families, dim)))
    family = rng.integers(n_families, size=n)
    noise = rng.standard_normal((n, dim)) * (separation / np.sqrt(dim))
    return _normalize_rows(families[family] + noise)


def _nuisance(n: int, dim: int, sub_dim: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian steps of expected norm ~``scale`` in one random ``sub_dim``-D subspace."""
    basis, _ = np.linalg.qr(rng.standard_normal((dim, sub_dim)))
    return rng.standard_normal((n, sub_dim)) @ basis.T * (scale / np.sqrt(sub_dim))


def make_identities(
    n_identities: int = 200,
    *,
    dim: int = 64,
    max_size: int = 100,
    min_size: int = 1,
    tail_exponent: float = 0.85,
    spread: float = 0.5,
    separation: float = 0.7,
    family_size: float = 4.0,
    nuisance: float = 0.6,
    nuisance_dim: int = 4,
    random_state: RandomStateLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate long-tailed synthetic identities on the unit sphere.

    Identity sizes follow a power law by rank: the identity of rank ``r``
    (``r = 1..n_identities``) gets ``min_size + Poisson((max_size - min_size)
    * r**-tail_exponent)`` samples, clipped to ``max_size``, and the first
    always exactly ``max_size``: a few large identities and many with one to
    a few samples. Identity centres are drawn in "families" of look-alikes
    (about ``family_size`` identities around a random unit vector, at a
    distance set by ``separation``) so that hard negatives exist, as in real
    face embeddings. A sample is ``normalise(centre + noise)`` with Gaussian
    noise of expected norm about ``spread``.

    With the defaults (measured over ten seeds): about 1,070 samples
    (1,015-1,132), the largest identity 100, 56 % of the identities with at
    most 3 samples (15 % with one), and a cosine 10-NN graph thresholded at
    the best threshold (about 0.70) then cut into connected components
    reaches a B-Cubed F of 0.83 (0.81-0.86); the shared ``nuisance``
    variation is what a learned linkage model can discount and a threshold
    cannot. Raising ``n_identities`` mostly adds small identities; raise
    ``max_size`` too for a bigger set of the same shape
    (``n_identities=2000, max_size=500`` gives about 9,400 samples, baseline
    F about 0.85).

    Parameters
    ----------
    n_identities : int, default=200
        Number of identities; every one has at least ``min_size`` samples.
    dim : int, default=64
        Feature dimension.
    max_size : int, default=100
        Size of the largest identity.
    min_size : int, default=1
        Fewest samples of an identity.
    tail_exponent : float, default=0.85
        Power-law exponent of size against rank; larger means a shorter head
        and more small identities.
    spread : float, default=0.5
        Within-identity noise: two samples of an identity have a cosine
        similarity of about ``1 / (1 + spread**2)``.
    separation : float, default=0.7
        Distance of identity centres from their family centre: two centres of
        a family have a cosine similarity of about ``1 / (1 + separation**2)``.
        Smaller is harder.
    family_size : float, default=4.0
        Mean number of identities per family (families are drawn uniformly).
    nuisance : float, default=0.6
        Scale of a variation shared by all identities (think pose or
        lighting): each sample also moves along a random ``nuisance_dim``-
        dimensional subspace common to every identity, by Gaussian steps of
        expected norm about ``nuisance``. It lowers the cosine similarity of
        same-identity pairs in a structured way that a learned model can
        discount and a similarity threshold cannot.
    nuisance_dim : int, default=4
        Dimension of that shared subspace (clipped to ``dim``).
    random_state : None, int, numpy.random.Generator or RandomState
        Source of randomness; an int makes the output reproducible. No global
        seed is touched.

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, dim)
        Unit-norm rows in random order.
    y : numpy.ndarray of int64, shape (N,)
        Identity ids ``0..n_identities - 1`` (assigned in random order, so an
        id says nothing about the identity's size).

    Examples
    --------
    >>> X, y = make_identities(50, dim=16, max_size=20, random_state=0)
    >>> X.shape[1], X.dtype, y.dtype
    (16, dtype('float32'), dtype('int64'))
    >>> int(np.bincount(y).max()), len(np.unique(y))
    (20, 50)
    >>> bool(np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-6))
    True
    """
    n_identities = check_int(n_identities, "n_identities", minimum=1)
    dim = check_int(dim, "dim", minimum=1)
    min_size = check_int(min_size, "min_size", minimum=1)
    max_size = check_int(max_size, "max_size", minimum=min_size)
    tail_exponent = check_real(tail_exponent, "tail_exponent", minimum=0)
    spread = check_real(spread, "spread", minimum=0)
    separation = check_real(separation, "separation", minimum=0)
    family_size = check_real(family_size, "family_size", minimum=1)
    nuisance = check_real(nuisance, "nuisance", minimum=0)
    nuisance_dim = min(check_int(nuisance_dim, "nuisance_dim", minimum=1), dim)
    rng = as_generator(random_state)

    sizes = _identity_sizes(n_identities, max_size, min_size, tail_exponent, rng)
    centres = _identity_centres(n_identities, dim, family_size, separation, rng)
    rank_of = np.repeat(np.arange(n_identities), sizes)
    noise = rng.standard_normal((rank_of.shape[0], dim)) * (spread / np.sqrt(dim))
    if nuisance > 0:
        noise += _nuisance(rank_of.shape[0], dim, nuisance_dim, nuisance, rng)
    X = _normalize_rows(centres[rank_of] + noise).astype(np.float32)
    ids = rng.permutation(n_identities).astype(np.int64)
    order = rng.permutation(rank_of.shape[0])
    return X[order], ids[rank_of[order]]


# --------------------------------------------------------------------------- LFW


def _has_lfw(path: Path) -> bool:
    return (path / "features.npy").is_file() and (path / "labels.npy").is_file()


def find_shared_lfw(max_levels: int = 4) -> Optional[Path]:
    """Locate the LFW dlib embeddings of a ``shared/data/lfw-dlib`` folder, if any.

    Looks, in order, at the folder named by the ``LINKAGE_GCN_LFW``
    environment variable (when it is set, it is the only place looked at; a
    wrong value warns and gives ``None``), then at ``shared/data/lfw-dlib``
    in the current directory and up to ``max_levels`` parents, then the same
    from the folder holding this package's source tree.

    Parameters
    ----------
    max_levels : int, default=4
        How many parent folders to climb from each starting point.

    Returns
    -------
    pathlib.Path or None
        A folder holding ``features.npy`` and ``labels.npy``, or ``None``.

    Examples
    --------
    >>> path = find_shared_lfw()
    >>> path is None or (path / "features.npy").is_file()
    True
    """
    env = os.environ.get(LFW_ENV)
    if env:
        path = Path(env).expanduser()
        if _has_lfw(path):
            return path
        warnings.warn(
            f"{LFW_ENV}={env!r} holds no features.npy and labels.npy; ignoring it.",
            stacklevel=2,
        )
        return None
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in [start, *start.parents][: max_levels + 1]:
            candidate = folder / "shared" / "data" / "lfw-dlib"
            if _has_lfw(candidate):
                return candidate
    return None


def load_lfw_dlib(
    root: Union[str, os.PathLike], subset: str = "all", features: str = "raw"
) -> tuple[np.ndarray, np.ndarray]:
    """Load the LFW dlib face embeddings from a local folder.

    The folder (see ``shared/data/README.md``) holds ``features_raw.npy``
    (13,233 x 128 dlib descriptors as ``face_recognition.face_encodings``
    returns them), ``features.npy`` (the same, centred on the data-set mean
    and L2-normalised) and ``labels.npy`` for the full set, and ``train/`` (6,615 photos, 2,998
    people) and ``test/`` (6,618 photos, 2,751 people) with the same files:
    an identity-disjoint split whose labels are renumbered from 0 within
    each subset (``index.npy`` there gives the rows in the full set).
    Nothing is downloaded; :func:`find_shared_lfw` can locate the folder.

    Parameters
    ----------
    root : str or path-like
        The ``lfw-dlib`` folder.
    subset : {"all", "train", "test"}, default="all"
        Which part to load.
    features : {"raw", "centred"}, default="raw"
        The raw descriptors (what users have, and what clusters best with
        Euclidean distance) or the centred + L2-normalised copy (the input of
        the imbalance benchmark of ``docs/imbalance.md``).

    Returns
    -------
    X : numpy.ndarray of float32, shape (N, 128)
    y : numpy.ndarray of int64, shape (N,)

    Raises
    ------
    FileNotFoundError
        When the folder or its files are missing.

    Examples
    --------
    >>> root = find_shared_lfw()
    >>> if root is not None:
    ...     X, y = load_lfw_dlib(root, subset="test")
    ...     assert X.shape == (6618, 128) and y.shape == (6618,)
    """
    subset = check_in_options(subset, ("all", "train", "test"), "subset")
    features = check_in_options(features, ("raw", "centred"), "features")
    folder = Path(root) if subset == "all" else Path(root) / subset
    if not _has_lfw(folder):
        raise FileNotFoundError(
            f"no LFW dlib data at {folder}: expected features.npy and labels.npy there "
            "(root must be the lfw-dlib folder holding features.npy, labels.npy, train/ and "
            "test/). Nothing is downloaded; point root at a local copy."
        )
    name = "features_raw.npy" if features == "raw" else "features.npy"
    if not (folder / name).is_file():
        raise FileNotFoundError(f"no {name} in {folder}: features={features!r} needs it.")
    X, _, y = load_reference(folder / name, labels_path=folder / "labels.npy")
    return X, y
