"""The merge registry: how scored links become clusters, by name.

:data:`MERGES` maps each merge name (``LinkageClusterer(merge=...)``,
``linkage-gcn --merge``, the incremental clusterer) to a :class:`Merge`: the
function that clusters scored links at a cut, the same with names as
cannot-link constraints (for a growing, partly named collection), and the
optional package it needs. As PyG's ``resolver.py``, this is the one place
that turns a merge name into the code that runs it; the estimator, the
incremental clusterer and the command line all read it.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from ._params import skip_validation
from ._validation import check_in_options
from .community import INFOMAP_INSTALL_HINT, constrained_chinese_whispers
from .community import infomap as _infomap
from .merge import (
    _above,
    _edges_numpy,
    constrained_components,
    propagate_labels,
    threshold_components,
)

__all__ = ["MERGES", "Merge", "resolve_merge"]


@dataclass(frozen=True)
class Merge:
    """One merge of the registry.

    Attributes
    ----------
    name : str
        Its registry name.
    cluster : callable
        ``cluster(edge_index, scores, num_nodes, threshold, *, runs, max_size,
        step, random_state) -> labels``: the clusters of scored links.
    constrained : callable
        ``constrained(edge_index, scores, num_nodes, threshold, names, *,
        runs, random_state) -> labels``: the same with named nodes as
        cannot-link constraints (two names never share a cluster); merges
        without a constrained form use threshold components with names.
    uses_threshold : bool
        Whether the link cut ``threshold`` applies (the propagation sets its own).
    randomised : bool
        Whether the result depends on ``random_state``.
    requires : str or None
        The optional package it imports (``None``: always available).
    install_hint : str
        How to install it.
    native_constraints : bool
        Whether ``constrained`` is the merge's own constrained form (``False``:
        threshold components with names stand in for it).

    Both callables check their input once, before any work, as the function
    they stand for does (:mod:`linkage_gcn.merge`'s conventions): a
    :class:`ValueError` names ``edge_index``, ``scores``, ``num_nodes``,
    ``threshold`` or ``names``.
    """

    name: str
    cluster: Callable[..., np.ndarray]
    constrained: Callable[..., np.ndarray]
    uses_threshold: bool = True
    randomised: bool = False
    requires: Optional[str] = None
    install_hint: str = ""
    native_constraints: bool = True

    def available(self) -> bool:
        """Whether its optional package is installed."""
        return self.requires is None or importlib.util.find_spec(self.requires) is not None

    def check_available(self, name: str = "merge") -> None:
        """Raise a clear error, before any work, when its optional package is missing.

        Examples
        --------
        >>> MERGES["threshold"].check_available()
        """
        if not self.available():
            raise ValueError(
                f"{name}={self.name!r} needs the optional {self.requires!r} package, which is not "
                f"installed: {self.install_hint}."
            )


# The adapters below own no algorithm: each calls the function it stands for, which checks the
# edge set once (linkage_gcn.merge's edge check), naming ``scores`` as the caller passed it.


def _threshold(edge_index, scores, num_nodes, threshold, *, runs=None, max_size=None,
               step=None, random_state=None) -> np.ndarray:  # fmt: skip
    return threshold_components(edge_index, scores, num_nodes, threshold)


def _chinese_whispers(edge_index, scores, num_nodes, threshold, *, runs=5, max_size=None,
                      step=None, random_state=None) -> np.ndarray:  # fmt: skip
    # without names, constrained_chinese_whispers is consensus_chinese_whispers above the cut
    return _constrained_cw(edge_index, scores, num_nodes, threshold, runs=runs,
                           random_state=random_state)  # fmt: skip


def _infomap_merge(edge_index, scores, num_nodes, threshold, *, runs=1, max_size=None,
                   step=None, random_state=None) -> np.ndarray:  # fmt: skip
    u, v, s, n = _above(_edges_numpy(edge_index, scores, num_nodes), threshold)
    with skip_validation():  # checked once, above, with the caller's names
        return _infomap(np.stack([u, v]), s, n, random_state=random_state, num_trials=runs)


def _propagation(edge_index, scores, num_nodes, threshold=None, *, runs=None, max_size=900,
                 step=0.6, random_state=None) -> np.ndarray:  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        return propagate_labels(edge_index, scores, num_nodes, max_size=max_size, step=step)


def _constrained_cw(edge_index, scores, num_nodes, threshold, names=None, *, runs=5,
                    random_state=None) -> np.ndarray:  # fmt: skip
    return constrained_chinese_whispers(
        edge_index, scores, num_nodes, threshold, names, n_runs=runs, random_state=random_state
    )


def _constrained_components(edge_index, scores, num_nodes, threshold, names=None, *, runs=None,
                            random_state=None) -> np.ndarray:  # fmt: skip
    return constrained_components(edge_index, scores, num_nodes, threshold, names)


#: The merges by name, in the order the documentation lists them.
MERGES: dict[str, Merge] = {
    "chinese-whispers": Merge(
        "chinese-whispers", _chinese_whispers, _constrained_cw, randomised=True
    ),
    "threshold": Merge("threshold", _threshold, _constrained_components),
    "infomap": Merge(
        "infomap",
        _infomap_merge,
        _constrained_components,
        randomised=True,
        requires="infomap",
        install_hint=INFOMAP_INSTALL_HINT,
        native_constraints=False,
    ),
    "propagation": Merge(
        "propagation",
        _propagation,
        _constrained_components,
        uses_threshold=False,
        native_constraints=False,
    ),
}


def resolve_merge(name: Any, *, check_available: bool = True) -> Merge:
    """The :class:`Merge` registered as ``name``, checking its optional package.

    Examples
    --------
    >>> resolve_merge("threshold").name
    'threshold'
    >>> resolve_merge("louvain")
    Traceback (most recent call last):
    ...
    ValueError: unknown merge 'louvain'; choose one of 'chinese-whispers', 'threshold', ...
    """
    merge = MERGES[check_in_options(name, MERGES, "merge")]
    if check_available:
        merge.check_available()
    return merge
