"""The training methods compared by the paper, and what every run shares.

A method is a set of :class:`~linkage_gcn.LinkageClusterer` parameters that
picks the 1-hop sampler, its pool expansion ``gamma`` and the loss; every
run adds :data:`PAPER_SETTINGS` (what makes the model the paper's L-GCN)
and the base settings of its grid (:mod:`linkage_gcn.experiments.defaults`).

Names of the paper's Table 1: ``L-GCN`` (top-k selection, cross-entropy),
``CB`` (class balance, eq. 2, over the batch as in the paper's code), ``FL``
(the fork's focal loss, alpha 0.25, gamma 2: see below), ``RS`` (half positives, half negatives
drawn from the ``floor(1.2 k1)`` nearest: gamma 1.2, the paper's choice for
RS), ``RIWS`` (eq. 4 weights over the ``2 k1`` nearest: gamma 2.0), and the
combinations ``CB+RS``, ``FL+RS``, ``CB+RIWS``, ``FL+RIWS``.

The ``FL`` rows use the RIWS fork's focal loss, ``loss="focal-fork"``
(``FocalLoss1`` of the paper's code; :func:`~linkage_gcn.losses.focal_loss`
with ``variant="fork"``): positive (same-identity) links weigh
``1 - alpha`` = 0.75 and negative ones ``alpha`` = 0.25, the modulating
factor ``(1 - p)^gamma`` is detached from the gradient, and the loss is
twice the mean over pairs. Eq. 3 as printed (positives weighted ``alpha``,
a differentiated factor, the plain mean) is ``loss="focal"``; it is not one
of the paper's rows here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "EXTRA_METHODS",
    "METHODS",
    "PAPER_SETTINGS",
    "all_methods",
    "method_label",
    "resolve_methods",
]

#: The nine methods of Table 1 (name -> LinkageClusterer parameters), in the
#: paper's order. The ``FL`` rows are the RIWS fork's focal loss (``"focal-fork"``).
METHODS: dict[str, dict[str, Any]] = {
    "L-GCN": {"sampler": "topk", "gamma": 1.0, "loss": "ce"},
    "CB": {"sampler": "topk", "gamma": 1.0, "loss": "cb"},
    "FL": {"sampler": "topk", "gamma": 1.0, "loss": "focal-fork"},
    "RS": {"sampler": "rs", "gamma": 1.2, "loss": "ce"},
    "RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "ce"},
    "CB+RS": {"sampler": "rs", "gamma": 1.2, "loss": "cb"},
    "FL+RS": {"sampler": "rs", "gamma": 1.2, "loss": "focal-fork"},
    "CB+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb"},
    "FL+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "focal-fork"},
}

#: Methods of this package, not of the paper, run after :data:`METHODS` by
#: default. ``CBg+RIWS``: class balance inside each subgraph (every pivot
#: weighs the same) with RIWS, gamma 2.0.
EXTRA_METHODS: dict[str, dict[str, Any]] = {
    "CBg+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb-graph"},
}

#: What makes every method the paper's L-GCN variant: pivot-relative features
#: only, learning rate x0.1 after each epoch, one link threshold calibrated on training data.
PAPER_SETTINGS: dict[str, Any] = {
    "pivot_similarity": False,
    "lr_decay": 0.1,
    # the paper's protocol: B-Cubed F of the links cut at one threshold, calibrated on the
    # training subset (the estimator's defaults merge otherwise)
    "merge": "threshold",
    "calibration": "train",
}


def all_methods() -> dict[str, dict[str, Any]]:
    """Every named method: :data:`METHODS` then :data:`EXTRA_METHODS` (copies).

    Examples
    --------
    >>> list(all_methods())[-2:]
    ['FL+RIWS', 'CBg+RIWS']
    """
    return {name: dict(p) for name, p in {**METHODS, **EXTRA_METHODS}.items()}


def resolve_methods(methods: Any = None) -> dict[str, dict[str, Any]]:
    """The parameters of methods given by name.

    Parameters
    ----------
    methods : None, str, iterable of str or mapping
        ``None``: all of :data:`METHODS` then :data:`EXTRA_METHODS`; a name
        or names among them (each once); or a mapping name -> parameters
        (used as is, each value a mapping).

    Returns
    -------
    dict
        Name -> :class:`~linkage_gcn.LinkageClusterer` parameters (copies).

    Raises
    ------
    ValueError
        For an unknown or repeated name, no method at all, or a mapping whose
        values are not mappings.

    Examples
    --------
    >>> resolve_methods(["RIWS"])
    {'RIWS': {'sampler': 'riws', 'gamma': 2.0, 'loss': 'ce'}}
    >>> resolve_methods("FL")
    {'FL': {'sampler': 'topk', 'gamma': 1.0, 'loss': 'focal-fork'}}
    """
    known = all_methods()
    if methods is None:
        return known
    if isinstance(methods, Mapping):
        out = {str(name): _check_params(name, p) for name, p in methods.items()}
    elif isinstance(methods, (str, Iterable)):
        names = [methods] if isinstance(methods, str) else list(methods)
        out = {name: _known(name, known) for name in names}
        if len(out) < len(names):
            raise ValueError(f"methods names a method twice: {names}.")
    else:
        raise ValueError(f"methods must be None, names or a mapping, got {methods!r}.")
    if not out:
        raise ValueError("methods is empty; name at least one method.")
    return out


def _known(name: Any, known: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    if name not in known:
        raise ValueError(f"unknown method {name!r}; choose among {', '.join(known)}.")
    return dict(known[name])


def _check_params(name: Any, params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise ValueError(
            f"method {name!r}: parameters must be a mapping, got {type(params).__name__}."
        )
    return dict(params)


def method_label(sampler: str, loss: str) -> str:
    """The name of the method with this sampler and loss, whatever its gamma.

    Parameters
    ----------
    sampler : str
        ``"topk"``, ``"rs"`` or ``"riws"``.
    loss : str
        A loss name of :data:`linkage_gcn.losses.LOSSES`.

    Returns
    -------
    str
        The first name of :func:`all_methods` with this sampler and loss, or
        ``"sampler/loss"`` when none has them.

    Examples
    --------
    >>> method_label("riws", "focal-fork"), method_label("topk", "ce")
    ('FL+RIWS', 'L-GCN')
    >>> method_label("riws", "focal")
    'riws/focal'
    """
    for name, p in all_methods().items():
        if p["sampler"] == sampler and p["loss"] == loss:
            return name
    return f"{sampler}/{loss}"
