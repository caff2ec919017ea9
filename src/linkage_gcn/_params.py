"""Parameter declarations: one rule per parameter, read by every entry point.

Each parameter of the package (``k_at_hop``, ``lr``, ``merge``, ...) is
declared once in :data:`PARAMS`. The estimator validates its settings from
that table, the public functions through :func:`validate_params`, the
incremental clusterer, the baselines and the command line read their rules,
choices and bounds from it, and nothing re-states them. As scikit-learn's
``validate_params`` and ``_fit_context(prefer_skip_nested_validation=True)``,
a caller that has already validated its settings runs its collaborators
inside :func:`skip_validation`, where the decorator does not check again.

A :class:`Rule` is called as ``rule(value, name) -> value`` and returns the
validated (possibly normalised) value; :attr:`Rule.choices` lists the
accepted strings of an option and :meth:`Rule.parse` turns command-line text
into a value that the rule then checks.

Options whose accepted names come from a registry (samplers, losses, merges,
kNN backends) read it lazily, when first checked: this module imports no
other module of the package but :mod:`linkage_gcn._validation`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Callable, Optional, Union

import numpy as np

from ._validation import check_bool, check_in_options, check_int, check_real

__all__ = [
    "PARAMS",
    "Check",
    "Flag",
    "Integer",
    "Number",
    "OneOf",
    "Options",
    "Rule",
    "check_param",
    "check_params",
    "skip_validation",
    "validate_params",
    "validation_skipped",
]

_SKIP: ContextVar[bool] = ContextVar("linkage_gcn_skip_validation", default=False)


class Rule:
    """The constraint of one parameter.

    Subclasses implement :meth:`check`; ``optional=True`` also accepts
    ``None`` (passed through unchanged).
    """

    #: Accepted strings of an option (``None`` for other rules).
    choices: Optional[tuple[str, ...]] = None

    def __init__(self, *, optional: bool = False) -> None:
        self.optional = optional

    def __call__(self, value: Any, name: str) -> Any:
        if value is None and self.optional:
            return None
        return self.check(value, name)

    def check(self, value: Any, name: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """Turn command-line text into a value (then checked by the rule)."""
        if self.optional and text.lower() == "none":
            return None
        return text

    def describe(self) -> str:
        """A short human description ("an integer >= 1", "one of 'a', 'b'")."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"


class Integer(Rule):
    """An integer in ``[minimum, maximum]`` (booleans refused).

    Examples
    --------
    >>> Integer(1)(3, "epochs")
    3
    >>> Integer(1)(0, "epochs")
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer >= 1, got 0.
    """

    def __init__(
        self,
        minimum: Optional[int] = None,
        maximum: Optional[int] = None,
        *,
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        self.minimum, self.maximum = minimum, maximum

    def check(self, value: Any, name: str) -> int:
        return check_int(value, name, minimum=self.minimum, maximum=self.maximum)

    def parse(self, text: str) -> Any:
        if self.optional and text.lower() == "none":
            return None
        try:
            return int(text)
        except ValueError:
            return text  # the rule names the problem

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"an integer in [{self.minimum}, {self.maximum}]"
        lo = "" if self.minimum is None else f" >= {self.minimum}"
        hi = "" if self.maximum is None else f" <= {self.maximum}"
        return f"an integer{lo}{hi}"


class Number(Rule):
    """A finite real number within bounds; ``closed`` says which ends are included.

    Examples
    --------
    >>> Number(0, 1)(0.5, "threshold")
    0.5
    >>> Number(0, closed="neither")(0, "lr")
    Traceback (most recent call last):
    ...
    ValueError: lr must be a number in (0, inf), got 0.
    """

    def __init__(
        self,
        minimum: Optional[float] = None,
        maximum: Optional[float] = None,
        *,
        closed: str = "both",
        optional: bool = False,
    ) -> None:
        super().__init__(optional=optional)
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.minimum, self.maximum, self.closed = minimum, maximum, closed

    def check(self, value: Any, name: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.number))
            or isinstance(value, np.complexfloating)  # float() would drop the imaginary part
        ):
            raise ValueError(f"{name} must be a finite number, got {value!r}.")
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        try:
            v = float(value)
        except OverflowError:  # an int beyond the float range
            raise ValueError(f"{name} must be a finite number, got {value!r}.") from None
        lo_ok = self.minimum is None or (v >= self.minimum if left else v > self.minimum)
        hi_ok = self.maximum is None or (v <= self.maximum if right else v < self.maximum)
        if not np.isfinite(v) or not (lo_ok and hi_ok):
            if not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number, got {value!r}.")
            raise ValueError(f"{name} must be a number in {self.interval()}, got {value!r}.")
        return check_real(v, name)

    def interval(self) -> str:
        """The accepted interval, as ``[0, 1)``."""
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        left = "[" if self.closed in ("both", "left") and self.minimum is not None else "("
        right = "]" if self.closed in ("both", "right") and self.maximum is not None else ")"
        return f"{left}{lo}, {hi}{right}"

    def parse(self, text: str) -> Any:
        if self.optional and text.lower() == "none":
            return None
        try:
            return float(text)
        except ValueError:
            return text

    def describe(self) -> str:
        return f"a number in {self.interval()}"


class Options(Rule):
    """One of a set of strings, given as a tuple or read from a registry.

    ``source`` is a tuple of names, or ``"module:ATTRIBUTE"`` naming a
    registry (a dict or a tuple) in a module of the package, read when first
    needed so that registries stay the single list of names.

    Examples
    --------
    >>> Options(("cosine", "l2"))("l2", "metric")
    'l2'
    >>> Options("linkage_gcn.losses:LOSSES").choices
    ('ce', 'cb', 'cb-graph', 'focal', 'focal-fork')
    """

    def __init__(self, source: Union[Iterable[str], str], *, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.source = source if isinstance(source, str) else tuple(source)

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        """The accepted names (the registry's keys, in its order)."""
        if isinstance(self.source, str):
            return tuple(_attr(self.source))
        return self.source

    def check(self, value: Any, name: str) -> str:
        return check_in_options(value, self.choices, name)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)


class Flag(Rule):
    """``True`` or ``False`` (``numpy.bool_`` accepted).

    Examples
    --------
    >>> Flag()(np.bool_(True), "context")
    True
    """

    def check(self, value: Any, name: str) -> bool:
        return check_bool(value, name)

    def parse(self, text: str) -> Any:
        low = text.lower()
        if self.optional and low == "none":
            return None
        return {"true": True, "1": True, "yes": True, "false": False, "0": False,
                "no": False}.get(low, text)  # fmt: skip

    def describe(self) -> str:
        return "True or False"


class OneOf(Rule):
    """The first of several rules that accepts the value.

    Examples
    --------
    >>> rule = OneOf(Number(0, 1), Options(("auto",)))
    >>> rule("auto", "threshold"), rule(0.5, "threshold")
    ('auto', 0.5)
    >>> rule(2, "threshold")
    Traceback (most recent call last):
    ...
    ValueError: threshold must be a number in [0, 1] or 'auto', got 2.
    """

    def __init__(self, *rules: Rule, optional: bool = False) -> None:
        super().__init__(optional=optional)
        self.rules = rules

    @property
    def choices(self) -> Optional[tuple[str, ...]]:  # type: ignore[override]
        found = [c for r in self.rules if r.choices for c in r.choices]
        return tuple(found) or None

    def check(self, value: Any, name: str) -> Any:
        for rule in self.rules:
            try:
                return rule(value, name)
            except (TypeError, ValueError):
                continue
        raise ValueError(f"{name} must be {self.describe()}, got {value!r}.")

    def parse(self, text: str) -> Any:
        if self.optional and text.lower() == "none":
            return None
        for rule in self.rules:
            value = rule.parse(text)
            try:
                rule(value, "value")
            except (TypeError, ValueError):
                continue
            return value
        return text

    def describe(self) -> str:
        parts = []
        for r in self.rules:
            if isinstance(r, Options):
                parts.append(" or ".join(repr(c) for c in r.choices))
            else:
                parts.append(r.describe())
        return " or ".join(parts)


class Check(Rule):
    """A rule given as a function ``fn(value, name) -> value`` and its description.

    Examples
    --------
    >>> Check(lambda v, n: tuple(v), "a tuple")([1, 2], "sizes")
    (1, 2)
    """

    def __init__(
        self,
        fn: Callable[[Any, str], Any],
        description: str,
        *,
        optional: bool = False,
        parse: Optional[Callable[[str], Any]] = None,
    ) -> None:
        super().__init__(optional=optional)
        self.fn, self.description, self._parse = fn, description, parse

    def check(self, value: Any, name: str) -> Any:
        return self.fn(value, name)

    def parse(self, text: str) -> Any:
        if self.optional and text.lower() == "none":
            return None
        return self._parse(text) if self._parse is not None else text

    def describe(self) -> str:
        return self.description


def _attr(path: str) -> Any:
    """``"module:NAME"``: an object of the package, imported when needed (keeps this a leaf)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _lazy(path: str) -> Callable[..., Any]:
    """A function of the package imported when first called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return _attr(path)(*args, **kwargs)

    return call


def _k_at_hop(value: Any, name: str) -> tuple[int, int]:
    return _lazy("linkage_gcn.ips:check_k_at_hop")(value)


def _layer_sizes(value: Any, name: str) -> tuple[int, ...]:
    return tuple(_lazy("linkage_gcn.nn:check_layer_sizes")(value, name))


def _loss(value: Any, name: str) -> Any:
    _lazy("linkage_gcn.losses:resolve_loss")(value)
    return value


def _sampler(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return Options("linkage_gcn.samplers:SAMPLERS")(value, name)
    base = _attr("linkage_gcn.samplers:Hop1Sampler")
    if not isinstance(value, base):
        choices = ", ".join(repr(s) for s in Options("linkage_gcn.samplers:SAMPLERS").choices)
        raise ValueError(
            f"unknown {name} {value!r}; choose one of {choices} or pass a {base.__name__}."
        )
    return value


def _dropout(value: Any, name: str) -> float:
    return Number(0.0, 1.0, closed="left")(value, name)


def _step(value: Any, name: str) -> float:
    return _lazy("linkage_gcn.merge:check_step")(value, name)


def _device(value: Any, name: str) -> Any:
    return _lazy("linkage_gcn._validation:resolve_device")(value)


def _random_state(value: Any, name: str) -> Any:
    from sklearn.utils import check_random_state

    try:
        check_random_state(value)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be None, an int or a numpy RandomState, got {value!r}."
        ) from exc
    return value


def _parse_float(text: str) -> Any:
    """Command-line text as a float, or the text itself (the rule then names the problem)."""
    try:
        return float(text)
    except ValueError:
        return text


def _teacher(value: Any, name: str) -> Any:
    if isinstance(value, str):
        return Options("linkage_gcn.pretrained:_MODELS")(value, name)
    if not (hasattr(value, "predict_edges") and hasattr(value, "model_")):
        raise ValueError(
            f"{name} must be a pretrained model name or a fitted LinkageClusterer, got {value!r}."
        )
    return value


def _merge_function(value: Any, name: str) -> Any:
    if not callable(value) or isinstance(value, type):
        raise ValueError(f"{name} must be a merge name or a function, got {value!r}.")
    return value


def _generator_seed(value: Any, name: str) -> Any:
    """A seed of :func:`linkage_gcn._validation.as_generator`, checked without drawing from it."""
    if isinstance(value, (np.random.Generator, np.random.RandomState)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return check_int(value, name, minimum=0)
    raise ValueError(
        f"{name} must be None, an int, a numpy Generator or RandomState, got {value!r}."
    )


def _finite(value: Any, name: str) -> float:
    return Number()(value, name)


def _cut_grid(value: Any, name: str) -> np.ndarray:
    try:
        grid = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        grid = None
    if grid is None or grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {value!r}.")
    return grid


def _fractions(value: Any, name: str) -> tuple[float, ...]:
    grid = _cut_grid(value, name)
    if not ((grid > 0.0) & (grid < 1.0)).all():
        raise ValueError(
            f"{name} must be one or more fractions in (0, 1), e.g. (0.25, 0.5), got {value!r}."
        )
    return tuple(grid.tolist())


def _n_jobs(value: Any, name: str) -> int:
    value = check_int(value, name)
    if value == 0:
        raise ValueError(f"{name} must be None or a non-zero integer (-1: all processors), got 0.")
    return value


def _parse_numbers(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """Command-line text ``"0.25, 0.5"`` or ``"256 128"`` as a tuple of ``kind`` (else as given)."""

    def parse(text: str) -> Any:
        try:
            return tuple(kind(t) for t in text.replace(",", " ").split())
        except ValueError:
            return text

    return parse


#: The one declaration of every parameter: ``name -> Rule``. Functions whose
#: argument of the same name means another thing pass their own rule to
#: :func:`validate_params` (e.g. the ``batch_size`` of scoring is
#: ``inference_batch_size``'s rule).
PARAMS: dict[str, Rule] = {
    # graph
    "k_at_hop": Check(_k_at_hop, "two integers (k1 >= 1, k2 >= 0)", parse=_parse_numbers(int)),
    "k1": Integer(1),
    "k2": Integer(0),
    "active_connection": Integer(1),
    "sampler": Check(_sampler, "a sampler name or object"),
    "gamma": Number(1.0),
    "preprocessing": Options("linkage_gcn.preprocessing:PREPROCESSING"),
    "metric": Options("linkage_gcn.knn:METRICS"),
    "n_neighbors": Integer(1, optional=True),
    "knn_backend": Options("linkage_gcn.knn:BACKENDS"),
    # training
    "loss": Check(_loss, "a loss name or callable"),
    "epochs": Integer(1),
    "batch_size": Integer(1),
    "lr": Number(0.0, closed="neither"),
    "momentum": Number(0.0),
    "weight_decay": Number(0.0),
    "lr_decay": Number(0.0, 1.0),
    "seed": Integer(0),
    # model
    "hidden_channels": Check(
        _layer_sizes, "one or more positive layer sizes", parse=_parse_numbers(int)
    ),
    "dropout": Check(_dropout, "a number in [0, 1)", parse=_parse_float),
    "pivot_similarity": Flag(),
    "features": Options("linkage_gcn.structure:FEATURES"),
    # scoring and merging
    "inference_batch_size": Integer(1, optional=True),
    "precision": Options("linkage_gcn.nn:PRECISIONS"),
    "pool": Options("linkage_gcn.merge:POOLS"),
    "merge": Options("linkage_gcn.merges:MERGES"),
    "calibration": Options(("train", "cv")),
    "cv_folds": Integer(2),
    "cv_family": Integer(2, optional=True),
    "cv_sizes": Check(
        _fractions, "one or more fractions in (0, 1)", optional=True, parse=_parse_numbers(float)
    ),
    "merge_runs": Integer(1),
    "threshold": OneOf(Number(0.0, 1.0), Options(("auto",))),
    "join_threshold": OneOf(Number(0.0, 1.0), Options(("auto",)), optional=True),
    "attach_threshold": OneOf(Number(0.0, 1.0), Options(("auto",)), optional=True),
    "cascade": Flag(),
    # self-training (fit without labels)
    "teacher": Check(
        _teacher, "a pretrained model name or a fitted LinkageClusterer", optional=True
    ),
    "max_rounds": Integer(1),
    "max_size": Integer(0, optional=True),
    "step": Check(_step, "a number in (0, 1]", parse=_parse_float),
    # running
    "device": Check(_device, "'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device"),
    "threads": OneOf(Integer(1), Options(("auto",)), optional=True),
    "random_state": Check(_random_state, "None, an int or a numpy RandomState", optional=True),
    "verbose": Flag(optional=True),
    # kNN search (linkage_gcn.knn)
    "chunk_size": Integer(1, optional=True),
    "tile_size": Integer(1),
    "nprobe": Integer(1, optional=True),
    "recall_queries": Integer(0),
    # growing collections (linkage_gcn.incremental)
    "search_k": Integer(1, optional=True),
    "context": Flag(),
    "incremental_backend": Options("linkage_gcn.incremental:BACKENDS"),
    "incremental_merge": OneOf(
        Options("linkage_gcn.merges:MERGES"),
        Check(_merge_function, "a function merge(edge_index, scores, num_nodes, threshold, names)"),
        optional=True,
    ),
    # baselines (linkage_gcn.baselines); a cut's bounds depend on the metric (checked there)
    "k": Integer(1),
    "k_or_all_pairs": Integer(1, optional=True),
    "baseline_threshold": OneOf(Check(_finite, "a finite number"), Options(("auto",))),
    "eps": OneOf(Number(0.0), Options(("auto",))),
    "cluster_selection_epsilon": OneOf(Number(0.0), Options(("auto",))),
    "grid": Check(_cut_grid, "a non-empty 1-D sequence of numbers", optional=True),
    "weighting": Options(("unit", "similarity")),
    "self_loops": Flag(),
    "max_iter": Integer(0),
    "n_blocks": Integer(1),
    "num_trials": Integer(1),
    "markov_time": Number(0.0, closed="neither"),
    "min_samples": Integer(1),
    "min_cluster_size": Integer(2),
    "window_size": Integer(1),
    "cluster_selection_method": Options(("eom", "leaf")),
    "n_jobs": Check(_n_jobs, "None or a non-zero integer (-1: all processors)", optional=True),
    "generator_seed": Check(
        _generator_seed, "None, an int, a numpy Generator or RandomState", optional=True
    ),
}


def check_param(name: str, value: Any, rule: Optional[Rule] = None) -> Any:
    """Validate ``value`` as parameter ``name`` with its declared rule (or ``rule``).

    Examples
    --------
    >>> check_param("merge_runs", 5)
    5
    >>> check_param("lr_decay", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: lr_decay must be a number in [0, 1], got 1.5.
    """
    if rule is None:
        if name not in PARAMS:
            raise KeyError(f"{name!r} has no declaration in PARAMS; pass its rule.")
        rule = PARAMS[name]
    return rule(value, name)


def check_params(values: Mapping[str, Any], rules: Optional[Mapping[str, Rule]] = None) -> dict:
    """Validate several parameters; ``rules`` overrides or extends :data:`PARAMS`.

    Examples
    --------
    >>> check_params({"epochs": 2, "lr": 0.1})
    {'epochs': 2, 'lr': 0.1}
    """
    table = {**PARAMS, **(rules or {})}
    unknown = [name for name in values if name not in table]
    if unknown:
        raise KeyError(f"{', '.join(map(repr, unknown))} have no declaration in PARAMS.")
    return {name: table[name](value, name) for name, value in values.items()}


@contextlib.contextmanager
def skip_validation() -> Iterator[None]:
    """Run collaborators without re-validating parameters (the caller has validated them).

    Examples
    --------
    >>> @validate_params()
    ... def train(epochs=1):
    ...     return epochs
    >>> with skip_validation():
    ...     train(epochs=0)
    0
    """
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)


def validation_skipped() -> bool:
    """Whether the code runs inside :func:`skip_validation`."""
    return _SKIP.get()


def validate_params(**rules: Rule) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Validate a function's declared arguments before it runs.

    Every argument of the decorated function named in :data:`PARAMS`, or
    given a rule here, is checked (its default included) and replaced by the
    validated value; inside :func:`skip_validation` nothing is checked.

    Examples
    --------
    >>> @validate_params(batch_size=PARAMS["inference_batch_size"])
    ... def score(x, *, k1=20, batch_size=None):
    ...     return k1, batch_size
    >>> score(None, k1=5)
    (5, None)
    >>> score(None, k1=0)
    Traceback (most recent call last):
    ...
    ValueError: k1 must be an integer >= 1, got 0.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        table = {
            name: rules.get(name, PARAMS.get(name))
            for name in sig.parameters
            if name in rules or name in PARAMS
        }

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if _SKIP.get() or not table:
                return fn(*args, **kwargs)
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, rule in table.items():
                bound.arguments[name] = rule(bound.arguments[name], name)
            return fn(*bound.args, **bound.kwargs)

        wrapper.__linkage_gcn_params__ = table  # type: ignore[attr-defined]
        return wrapper

    return decorate
