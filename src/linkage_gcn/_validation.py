"""Input checks shared by the whole package.

Every public entry point validates what it is given here, so that bad input
fails early with a :class:`ValueError` (or :class:`TypeError`) that names the
problem instead of a deep stack trace or a silently wrong answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]

__all__ = [
    "ArrayLike",
    "as_tensor",
    "check_features",
    "check_in_options",
    "check_int",
    "check_labels",
    "check_real",
    "check_same_length",
    "resolve_device",
    "to_like",
]


def as_tensor(x: Any, *, name: str, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, bool]:
    """Convert ``x`` to a tensor and say whether it came as numpy (or another array-like).

    Parameters
    ----------
    x : array-like or torch.Tensor
        The input.
    name : str
        Its name, for error messages.
    dtype : torch.dtype, optional
        Cast to this dtype.

    Returns
    -------
    tensor : torch.Tensor
        ``x`` as a tensor (shares memory with a numpy input when possible).
    was_numpy : bool
        ``True`` when ``x`` was not a tensor, so results should go back as numpy.

    Examples
    --------
    >>> t, was_numpy = as_tensor(np.zeros((2, 3)), name="X")
    >>> t.shape, was_numpy
    (torch.Size([2, 3]), True)
    """
    if isinstance(x, torch.Tensor):
        t = x
        was_numpy = False
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from exc
        if arr.dtype == object:
            raise TypeError(f"{name} must be numeric, got an array of Python objects")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
        if not arr.flags.writeable or not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr).copy()
        t = torch.from_numpy(arr)
        was_numpy = True
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t, was_numpy


def to_like(t: torch.Tensor, as_numpy: bool) -> ArrayLike:
    """Return ``t`` as numpy when ``as_numpy`` (moving it to the CPU), else unchanged."""
    return t.detach().cpu().numpy() if as_numpy else t


def check_features(
    X: Any,
    *,
    name: str = "X",
    min_samples: int = 1,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, bool]:
    """Validate a 2-D float feature matrix.

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n_samples, n_features)
        Feature matrix.
    name : str
        Its name, for error messages.
    min_samples : int
        Fewest rows accepted.
    dtype : torch.dtype, optional
        Floating dtype to cast to; by default float64 stays float64 and
        every other dtype becomes float32.

    Returns
    -------
    X : torch.Tensor
        The validated matrix.
    was_numpy : bool
        Whether the input was not a tensor.

    Raises
    ------
    ValueError
        When ``X`` is not 2-D, is empty, has fewer than ``min_samples`` rows
        or contains NaN or infinity.

    Examples
    --------
    >>> check_features(np.array([[0, 1], [1, 0]]))[0].dtype
    torch.float32
    >>> check_features([[0.0, float("nan")]])
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN or infinity (1 non-finite value(s) in 1 row(s)).
    """
    t, was_numpy = as_tensor(X, name=name)
    if t.dim() != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), "
            f"got {t.dim()}-D shape {tuple(t.shape)}."
        )
    if t.shape[1] == 0:
        raise ValueError(f"{name} has 0 features (shape {tuple(t.shape)}).")
    if t.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {t.shape[0]} sample(s) but at least {min_samples} are needed."
        )
    if dtype is None:
        dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
    t = t.to(dtype)
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        bad = ~finite
        raise ValueError(
            f"{name} contains NaN or infinity ({int(bad.sum())} non-finite value(s) in "
            f"{int(bad.any(dim=1).sum())} row(s))."
        )
    return t, was_numpy


def check_labels(y: Any, *, n_samples: int | None = None, name: str = "labels") -> np.ndarray:
    """Validate integer identity labels of shape (N,) or (N, 1).

    Parameters
    ----------
    y : array-like or torch.Tensor
        Labels; floats are accepted only when they hold whole numbers.
    n_samples : int, optional
        Expected length.
    name : str
        Its name, for error messages.

    Returns
    -------
    numpy.ndarray of int64, shape (N,)

    Examples
    --------
    >>> check_labels([[3], [1], [3]])
    array([3, 1, 3])
    >>> check_labels([0, 1], n_samples=3)
    Traceback (most recent call last):
    ...
    ValueError: labels has 2 entries but 3 samples were given.
    """
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got shape {arr.shape}.")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinity.")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer identities, got non-integer floats.")
    elif arr.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer identities, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64, copy=False)
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {n_samples} samples were given.")
    return arr


def check_same_length(**arrays: Any) -> int:
    """Check that all named arrays have the same first dimension and return it.

    Examples
    --------
    >>> check_same_length(a=np.zeros(3), b=np.zeros((3, 2)))
    3
    """
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"inputs must have the same length, got {desc}.")
    return next(iter(lengths.values())) if lengths else 0


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """Validate an integer parameter within ``[minimum, maximum]``.

    Examples
    --------
    >>> check_int(5, "k", minimum=1)
    5
    >>> check_int(0, "k", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: k must be an integer >= 1, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value}.")
    return value


def check_real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    inclusive: bool = True,
) -> float:
    """Validate a finite real parameter within bounds.

    Examples
    --------
    >>> check_real(0.5, "step", minimum=0, maximum=1)
    0.5
    >>> check_real(2, "step", minimum=0, maximum=1)
    Traceback (most recent call last):
    ...
    ValueError: step must be a number in [0, 1], got 2.
    """
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    lo_ok = minimum is None or (value >= minimum if inclusive else value > minimum)
    hi_ok = maximum is None or (value <= maximum if inclusive else value < maximum)
    if not (lo_ok and hi_ok):
        lo = "-inf" if minimum is None else f"{minimum:g}"
        hi = "inf" if maximum is None else f"{maximum:g}"
        brackets = "[]" if inclusive else "()"
        raise ValueError(
            f"{name} must be a number in {brackets[0]}{lo}, {hi}{brackets[1]}, got {value!r}."
        )
    return float(value)


def check_in_options(value: Any, options: Iterable[str], name: str) -> str:
    """Validate a string option.

    Examples
    --------
    >>> check_in_options("cosine", ("cosine", "l2"), "metric")
    'cosine'
    >>> check_in_options("manhattan", ("cosine", "l2"), "metric")
    Traceback (most recent call last):
    ...
    ValueError: unknown metric 'manhattan'; choose one of 'cosine', 'l2'.
    """
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        choices = ", ".join(repr(o) for o in options)
        raise ValueError(f"unknown {name} {value!r}; choose one of {choices}.")
    return value


def resolve_device(device: Any = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a device into a device.

    ``"auto"`` picks CUDA when available. Asking for CUDA on a machine without
    it raises a clear error instead of failing later.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available here.")
    return dev
