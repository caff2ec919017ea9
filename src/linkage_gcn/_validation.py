"""Input checks shared by the whole package.

Every public entry point validates what it is given here, so that bad input
fails early with a :class:`ValueError` (or :class:`TypeError`) that names the
problem instead of a deep stack trace or a silently wrong answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]
#: What a ``random_state`` argument of the numpy-side functions accepts.
RandomStateLike = Union[None, int, np.random.Generator, np.random.RandomState]

__all__ = [
    "ArrayLike",
    "RandomStateLike",
    "as_generator",
    "as_index",
    "as_tensor",
    "check_bool",
    "check_edge_index",
    "check_features",
    "check_generator",
    "check_ids",
    "check_in_options",
    "check_int",
    "check_labels",
    "check_nodes",
    "check_real",
    "check_same_length",
    "check_scores",
    "normalize_rows",
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
    if x is None:
        raise ValueError(f"{name} is None; an array is needed.")
    if isinstance(x, torch.Tensor):
        t = x
        was_numpy = False
    else:
        try:
            arr = np.asarray(x)
        except (TypeError, ValueError) as exc:  # ragged nested sequences, exotic objects
            raise TypeError(
                f"{name} must be array-like (a rectangular array of numbers), got "
                f"{type(x).__name__} ({exc})"
            ) from exc
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


def as_index(x: Any, *, name: str) -> torch.Tensor:
    """Convert integer ids (an index or a kNN table) to an int64 tensor, refusing other dtypes.

    Floats are refused even when whole: ids are never rounded or truncated.

    Examples
    --------
    >>> as_index(np.array([[1, 2]], dtype=np.int32), name="knn_index")
    tensor([[1, 2]])
    >>> as_index([0.0, 1.0], name="pivots")
    Traceback (most recent call last):
    ...
    ValueError: pivots must hold integer node ids, got dtype torch.float64.
    """
    t, _ = as_tensor(x, name=name)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer node ids, got dtype {t.dtype}.")
    return t.long()


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
    TypeError
        When ``X`` is not numeric or holds complex numbers.

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
    if t.is_complex():  # a cast to float would drop the imaginary part without a word
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}.")
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


def check_labels(
    y: Any,
    *,
    n_samples: int | None = None,
    name: str = "labels",
    encode: bool = False,
    allow_negative: bool = True,
    return_tensor: bool = False,
) -> np.ndarray | torch.Tensor:
    """Validate identity labels of shape (N,) or (N, 1): the one label check of the package.

    Parameters
    ----------
    y : array-like or torch.Tensor of shape (N,) or (N, 1)
        Labels: integers, or floats holding whole numbers (non-integer floats
        are refused, never truncated). With ``encode``, also strings, booleans
        or other comparable ids.
    n_samples : int, optional
        Expected length.
    name : str
        Its name, for error messages.
    encode : bool
        Encode non-numeric ids (strings, booleans, Python objects) as
        ``0 .. C-1`` in sorted order; without it they are an error.
    allow_negative : bool
        Whether negative ids are valid (``-1`` often marks an unlabelled
        item; a sampler that counts identities refuses it).
    return_tensor : bool
        Return an int64 tensor (on the device of a tensor input, else on the
        CPU) instead of a numpy array.

    Returns
    -------
    numpy.ndarray or torch.Tensor of int64, shape (N,)

    Raises
    ------
    ValueError
        On ``None``, a shape other than (N,) or (N, 1), a length other than
        ``n_samples``, NaN or infinity, non-integer floats, non-numeric ids
        without ``encode`` (or ids that cannot be compared with it), or
        negative ids when they are not allowed.
    TypeError
        On complex numbers.

    Examples
    --------
    >>> check_labels([[3], [1], [3]])
    array([3, 1, 3])
    >>> check_labels(["bob", "al", "bob"], encode=True)
    array([1, 0, 1])
    >>> check_labels(torch.tensor([2.0, 5.0]), return_tensor=True)
    tensor([2, 5])
    >>> check_labels([0, 1], n_samples=3)
    Traceback (most recent call last):
    ...
    ValueError: labels has 2 entries but 3 samples were given.
    >>> check_labels([0.5, 1.0])
    Traceback (most recent call last):
    ...
    ValueError: labels must hold integer identities, got non-integer floats such as 0.5 ...
    """
    if y is None:
        raise ValueError(f"{name} is None; identity labels of shape (N,) are needed.")
    if isinstance(y, torch.Tensor):
        t = _labels_shape(y.detach(), name, n_samples)
        if encode and t.dtype == torch.bool:  # encoded as a numpy bool array is
            codes = check_labels(t.cpu().numpy(), name=name, encode=True)
            return torch.from_numpy(codes).to(t.device) if return_tensor else codes
        out = _numeric_labels(t, name, allow_negative)
        return out if return_tensor else out.cpu().numpy()
    try:
        arr = np.asarray(y)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} must be a flat sequence of identity labels ({exc}).") from exc
    arr = _labels_shape(arr, name, n_samples)
    if arr.dtype.kind == "O":  # a list of Python numbers stays numeric
        inferred = np.asarray(arr.tolist())
        if inferred.dtype.kind in "iuf" and inferred.shape == arr.shape:
            arr = inferred
    if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} holds ids too large for int64, such as {int(arr.max())}.")
    if arr.dtype.kind in "iuf":
        out = _numeric_labels(as_tensor(arr, name=name)[0], name, allow_negative)
        return out if return_tensor else out.numpy()
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must hold integer identities, got complex numbers.")
    if not encode:
        raise ValueError(f"{name} must hold integer identities, got dtype {arr.dtype}.")
    try:
        codes = np.unique(arr, return_inverse=True)[1].reshape(-1).astype(np.int64)
    except TypeError as exc:
        raise ValueError(
            f"{name} mixes ids that cannot be compared (e.g. strings and numbers, or None); "
            "use identity labels of one type."
        ) from exc
    return torch.from_numpy(codes) if return_tensor else codes


def _labels_shape(y: Any, name: str, n_samples: int | None) -> Any:
    """(N,) or (N, 1) labels as (N,), with the expected length."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got shape {tuple(y.shape)}.")
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} entries but {n_samples} samples were given.")
    return y


def _numeric_labels(t: torch.Tensor, name: str, allow_negative: bool) -> torch.Tensor:
    """Numeric (N,) labels as int64: refuse complex, bool, non-finite, non-integer, negative."""
    if t.is_complex():
        raise TypeError(f"{name} must hold integer identities, got complex dtype {t.dtype}.")
    if t.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer identities, got dtype {t.dtype}.")
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinity.")
        frac = t != t.round()
        if bool(frac.any()):
            raise ValueError(
                f"{name} must hold integer identities, got non-integer floats such as "
                f"{float(t[frac][0])!r} ({int(frac.sum())} of them; they would be truncated)."
            )
        # 2**63 is exact in every float dtype; beyond it int64 wraps to other ids
        huge = t.abs() >= 2.0**63
        if bool(huge.any()):
            raise ValueError(
                f"{name} holds ids too large for int64, such as {float(t[huge][0])!r}; use "
                "smaller integer ids (or encode them)."
            )
    t = t.long()
    if not allow_negative and t.numel():
        neg = t < 0
        if bool(neg.any()):
            raise ValueError(
                f"{name} holds negative identities ({int(neg.sum())} of them, e.g. "
                f"{int(t[neg][0])}); negative ids often mark unlabelled items: leave them out."
            )
    return t


def check_scores(
    scores: Any,
    *,
    name: str = "scores",
    n_edges: int | None = None,
    unit_interval: bool = False,
) -> torch.Tensor:
    """Validate one score per edge: the one score check of the package.

    Parameters
    ----------
    scores : array-like or torch.Tensor of shape (E,) or (E, 1)
        Edge scores. Integer and boolean scores become float64.
    name : str
        Its name, for error messages.
    n_edges : int, optional
        Expected number of scores (the edges of an ``edge_index``, which the
        message names).
    unit_interval : bool
        Require scores in ``[0, 1]`` (probabilities); otherwise any finite
        value is accepted (logits, cosines).

    Returns
    -------
    torch.Tensor of shape (E,)
        Floating point, on the device of a tensor input.

    Raises
    ------
    ValueError
        On a wrong shape or length, NaN, infinity, or values outside
        ``[0, 1]`` when ``unit_interval``.
    TypeError
        On non-numeric or complex scores.

    Examples
    --------
    >>> check_scores(np.array([[0.5], [1.0]]))
    tensor([0.5000, 1.0000], dtype=torch.float64)
    >>> check_scores([0.2, float("nan")])
    Traceback (most recent call last):
    ...
    ValueError: scores contains 1 NaN value(s).
    >>> check_scores([0.2, 0.4], n_edges=3)
    Traceback (most recent call last):
    ...
    ValueError: scores must have shape (E,) = (3,), one score per edge of edge_index, got ...
    """
    t, _ = as_tensor(scores, name=name)
    if t.is_complex():
        raise TypeError(f"{name} must be real numbers, got dtype {t.dtype}.")
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1 or (n_edges is not None and t.shape[0] != n_edges):
        want = "(E,)"
        if n_edges is not None:
            want = f"(E,) = ({n_edges},), one score per edge of edge_index"
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(t.shape)}.")
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.numel() == 0:
        return t
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        nan = int(torch.isnan(t).sum())
        if nan:
            raise ValueError(f"{name} contains {nan} NaN value(s).")
        raise ValueError(f"{name} contains {int((~finite).sum())} infinite value(s).")
    if unit_interval:
        outside = (t < 0) | (t > 1)
        if bool(outside.any()):
            raise ValueError(
                f"{name} must lie in [0, 1], got {int(outside.sum())} value(s) outside it "
                f"(min {float(t.min())!r}, max {float(t.max())!r})."
            )
    return t


def check_nodes(nodes: Any, n: int, name: str = "input_nodes") -> torch.Tensor:
    """Turn a boolean mask of length ``n`` or node ids in ``[0, n)`` into int64 ids.

    Parameters
    ----------
    nodes : array-like or torch.Tensor
        A boolean mask over the ``n`` nodes, or node ids (any shape, flattened).
    n : int
        Number of nodes.
    name : str
        Its name, for error messages.

    Returns
    -------
    torch.Tensor of int64, shape (M,)
        On the device of a tensor input.

    Examples
    --------
    >>> check_nodes(torch.tensor([True, False, True]), 3)
    tensor([0, 2])
    >>> check_nodes([2, 0], 3)
    tensor([2, 0])
    >>> check_nodes(torch.tensor([3]), 3)
    Traceback (most recent call last):
    ...
    ValueError: input_nodes holds 1 node id(s) outside [0, 3), e.g. 3.
    """
    t, _ = as_tensor(nodes, name=name)
    if t.dtype == torch.bool:
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(
                f"{name} as a mask must have one entry per node ({n}), got shape {tuple(t.shape)}."
            )
        return t.nonzero().view(-1)
    if t.numel() == 0 and not isinstance(nodes, torch.Tensor):
        return torch.empty(0, dtype=torch.long)  # an empty list: no node
    if t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name} must be a boolean mask or integer node ids, got {t.dtype}.")
    return check_ids(t.reshape(-1), n, name=name)


def check_ids(
    ids: Any, n: int, *, name: str, what: str = "node id", bound: str = ""
) -> torch.Tensor:
    """The one rule for ids: integers in ``[0, n)``; int64 out, shape kept.

    One pass over the ids (``aminmax``) when they are valid; the message of
    a failure counts the ids outside and shows the first.

    Parameters
    ----------
    ids : array-like or torch.Tensor
        Integer ids, any shape.
    n : int
        Their exclusive upper bound.
    name : str
        Their name, for error messages.
    what : str
        What one id is (``"node id"``, ``"row id"``, ``"item id"``).
    bound : str
        How the message names ``n`` (``"num_nodes="`` gives ``[0, num_nodes=4)``).

    Examples
    --------
    >>> check_ids([[0, 2]], 3, name="edge_index")
    tensor([[0, 2]])
    >>> check_ids([3, 5], 3, name="ids", what="row id")
    Traceback (most recent call last):
    ...
    ValueError: ids holds 2 row id(s) outside [0, 3), e.g. 3.
    """
    t, _ = as_tensor(ids, name=name)
    if t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool):
        raise ValueError(f"{name} must hold integer {what}s, got dtype {t.dtype}.")
    t = t.to(torch.int64)
    if t.numel() == 0:
        return t
    lo, hi = torch.aminmax(t)  # one pass; the mask only to describe a failure
    if int(lo) < 0 or int(hi) >= n:
        bad = (t < 0) | (t >= n)
        raise ValueError(
            f"{name} holds {int(bad.sum())} {what}(s) outside [0, {bound}{n}), "
            f"e.g. {int(t[bad][0])}."
        )
    return t


def check_edge_index(
    edge_index: Any, n: int, *, name: str = "edge_index", what: str = "node id", bound: str = ""
) -> torch.Tensor:
    """The one rule for an ``edge_index``: shape (2, E), ids by :func:`check_ids`; int64 out.

    Examples
    --------
    >>> check_edge_index([[0, 1], [1, 2]], 3)
    tensor([[0, 1],
            [1, 2]])
    >>> check_edge_index([0, 1, 2], 3)
    Traceback (most recent call last):
    ...
    ValueError: edge_index must have shape (2, E), got shape (3,).
    """
    e, _ = as_tensor(edge_index, name=name)
    if e.dim() != 2 or e.shape[0] != 2:
        hint = "; transpose an (E, 2) array with .T" if e.dim() == 2 and e.shape[1] == 2 else ""
        raise ValueError(
            f"{name} must have shape (2, E), got shape {tuple(e.shape)}{hint}."
        )
    return check_ids(e, n, name=name, what=what, bound=bound)


def check_same_length(**arrays: Any) -> int:
    """Check that all named arrays have the same first dimension and return it.

    Examples
    --------
    >>> check_same_length(a=np.zeros(3), b=np.zeros((3, 2)))
    3
    """
    lengths = {}
    for k, v in arrays.items():
        try:
            lengths[k] = len(v)
        except TypeError:
            raise TypeError(
                f"{k} must be an array with one entry per item, got {type(v).__name__} {v!r}."
            ) from None
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


def check_bool(value: Any, name: str) -> bool:
    """Validate a boolean flag (``numpy.bool_`` accepted).

    Examples
    --------
    >>> check_bool(True, "pivot_similarity")
    True
    >>> check_bool("yes", "pivot_similarity")
    Traceback (most recent call last):
    ...
    ValueError: pivot_similarity must be True or False, got 'yes'.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


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
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        finite = False
    if not finite:
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
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r} was requested but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 .. "
            f"cuda:{torch.cuda.device_count() - 1})."
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was requested but MPS is not available here.")
    return dev


def as_generator(random_state: Any, name: str = "random_state") -> np.random.Generator:
    """Turn ``None``, an int seed, a Generator or a RandomState into a numpy Generator.

    A Generator is used as is (and advanced); a RandomState seeds a new
    Generator from one draw, so it is advanced too. No global seed is touched.

    Examples
    --------
    >>> int(as_generator(0).integers(10)) == int(np.random.default_rng(0).integers(10))
    True
    >>> rng = np.random.default_rng(1)
    >>> as_generator(rng) is rng
    True
    >>> as_generator("seed")
    Traceback (most recent call last):
    ...
    ValueError: random_state must be None, an int, a numpy Generator or RandomState, got 'seed'.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        seed = int(random_state)
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative int seed, got {seed}.")
        return np.random.default_rng(seed)
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise ValueError(
        f"{name} must be None, an int, a numpy Generator or RandomState, got {random_state!r}."
    )


def normalize_rows(x: torch.Tensor, message: str) -> torch.Tensor:
    """Scale every row of ``x`` to unit L2 norm, refusing rows of zero norm.

    The one row normaliser of the package (cosine kNN search, L2
    preprocessing): a zero row has no direction, so dividing by its norm
    would give NaN without a word.

    Parameters
    ----------
    x : torch.Tensor of shape (N, D)
        Finite rows.
    message : str
        The error for zero rows, with ``{count}`` (how many) and ``{row}``
        (the first) to fill in: it names the caller's argument and the fix.

    Returns
    -------
    torch.Tensor of shape (N, D)
        The rows divided by their norms, on ``x``'s device and dtype.

    Examples
    --------
    >>> normalize_rows(torch.tensor([[3.0, 4.0], [0.0, 2.0]]), "x has {count} zero rows")
    tensor([[0.6000, 0.8000],
            [0.0000, 1.0000]])
    >>> normalize_rows(torch.zeros(2, 2), "x has {count} zero row(s), first row {row}.")
    Traceback (most recent call last):
    ...
    ValueError: x has 2 zero row(s), first row 0.
    """
    norm = x.norm(dim=1, keepdim=True)
    zero = norm.squeeze(1) == 0
    if bool(zero.any()):
        raise ValueError(message.format(count=int(zero.sum()), row=int(zero.nonzero()[0, 0])))
    return x / norm


def check_generator(generator: Any, name: str = "generator") -> Any:
    """Validate a source of randomness of torch: ``None`` or a :class:`torch.Generator`.

    Examples
    --------
    >>> check_generator(None) is None
    True
    >>> check_generator(0)
    Traceback (most recent call last):
    ...
    TypeError: generator must be a torch.Generator or None, got int (for a seed, pass \
torch.Generator().manual_seed(0)).
    """
    if generator is not None and not isinstance(generator, torch.Generator):
        hint = ""
        if isinstance(generator, Integral) and not isinstance(generator, bool):
            hint = f" (for a seed, pass torch.Generator().manual_seed({int(generator)}))"
        raise TypeError(
            f"{name} must be a torch.Generator or None, got {type(generator).__name__}{hint}."
        )
    return generator
