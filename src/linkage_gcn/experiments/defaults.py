"""The settings of ``linkage-gcn imbalance``: subsets, gammas, base settings.

Default grid
------------
On the LFW dlib embeddings (``../shared/data/lfw-dlib``; train 6,615 faces of
2,998 people, the largest with 144 photos, 2,122 people with one; test 6,618
faces of 2,751 people), the paper's H 200-2000 of MS-Celeb-1M part0 scale to
``m`` = 10 (people with at least 42 photos, 675 faces) and 40 (at least 19,
1,449 faces), with the paper's smallest ``n`` = 3
(:func:`~linkage_gcn.experiments.describe_subsets` gives these sizes):

========== ======= ========== ========================================
subset     samples identities identities with a same-identity pair
========== ======= ========== ========================================
(H10, S3)  4,983   2,998      876
(H40, S3)  5,667   2,998      876
========== ======= ========== ========================================

S1 is left out of the defaults: it keeps no pair of any minority identity,
so only the ``m`` head identities give positive links and the tail becomes
pure distractors -- a different question from the paper's (S2 keeps one
pair per minority identity, S3 three). ``full=True`` runs ``m`` in {10, 20,
40, 80} x ``n`` in {2, 3} (the 4 x 2 shape of Table 1).

Base settings (:data:`DEFAULT_BASE_PARAMS`): ``k_at_hop=(20, 5)``,
``active_connection=5`` (the reference test settings), ``hidden_channels=(256,
256, 128, 128)`` (half the reference width), 3 epochs (with the x0.1 decay a
4th epoch at lr 1e-5 changes little), batch 16, SGD lr 0.01. The default
command runs 2 subsets x 10 methods, plus a sweep of 6 gammas x 2 samplers and
the baseline on (H10, S3), 3 of whose 13 runs are reused from the grid. On a
CPU shared with other jobs, ``--threads 1`` avoids torch threads waiting on
each other.

``full=True`` (:data:`FULL_BASE_PARAMS`) uses the reference width (512, 512,
256, 256) and 4 epochs, for 8 x 10 + 10 runs. What the runs cost on measured
machines is in ``docs/scaling.md``.

Without the LFW folder the data are synthetic (:func:`~linkage_gcn.experiments.load_data`),
with the same grid.
"""

from __future__ import annotations

from typing import Any

from .._validation import check_in_options
from ..datasets import find_shared_lfw
from .methods import all_methods

__all__ = [
    "DATA_SETS",
    "DEFAULT_BASE_PARAMS",
    "DEFAULT_GAMMAS",
    "DEFAULT_SUBSETS",
    "FULL_BASE_PARAMS",
    "FULL_SUBSETS",
    "QUICK_BASE_PARAMS",
    "QUICK_GAMMAS",
    "QUICK_SYNTHETIC_SUBSETS",
    "default_grid",
    "resolve_data_name",
]

#: Names of the data sets of the experiments (``"auto"``: LFW when found).
DATA_SETS = ("auto", "lfw", "synthetic")

#: Subsets of the default grid: (H10, S3) and (H40, S3).
DEFAULT_SUBSETS: tuple[tuple[int, int], ...] = ((10, 3), (40, 3))

#: Subsets of ``default_grid(full=True)``: ``m`` in 10, 20, 40, 80 x ``n`` in 2, 3.
FULL_SUBSETS: tuple[tuple[int, int], ...] = tuple((m, n) for m in (10, 20, 40, 80) for n in (2, 3))

#: Subsets of ``default_grid("synthetic", quick=True)``, sized for its small data set.
QUICK_SYNTHETIC_SUBSETS: tuple[tuple[int, int], ...] = ((2, 2), (5, 3))

#: Pool expansions of the gamma sweep (Figure 3).
DEFAULT_GAMMAS: tuple[float, ...] = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0)

#: Pool expansions of the quick smoke test.
QUICK_GAMMAS: tuple[float, ...] = (1.0, 2.0)

#: Base settings of the default grid: half the reference width, 3 epochs (a CPU budget).
DEFAULT_BASE_PARAMS: dict[str, Any] = {
    "k_at_hop": (20, 5),
    "active_connection": 5,
    "hidden_channels": (256, 256, 128, 128),
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.01,
    "threshold": "auto",
}

#: Base settings of ``default_grid(full=True)``: the reference network width, 4 epochs.
FULL_BASE_PARAMS: dict[str, Any] = {
    **DEFAULT_BASE_PARAMS,
    "hidden_channels": (512, 512, 256, 256),
    "epochs": 4,
}

#: A tiny model for smoke tests (``linkage-gcn imbalance --quick``).
QUICK_BASE_PARAMS: dict[str, Any] = {
    "k_at_hop": (4, 2),
    "active_connection": 2,
    "hidden_channels": (8,),
    "epochs": 1,
    "batch_size": 8,
    "lr": 0.01,
    "threshold": "auto",
}


def resolve_data_name(data: str) -> str:
    """``"lfw"`` or ``"synthetic"``: ``"auto"`` is LFW when it is found.

    Examples
    --------
    >>> resolve_data_name("synthetic")
    'synthetic'
    """
    data = check_in_options(data, DATA_SETS, "data")
    if data == "auto":
        return "lfw" if find_shared_lfw() is not None else "synthetic"
    return data


def default_grid(data: str = "auto", full: bool = False, *, quick: bool = False) -> dict[str, Any]:
    """The settings of ``linkage-gcn imbalance`` for a data set.

    Parameters
    ----------
    data : {"auto", "lfw", "synthetic"}
        ``"auto"``: LFW when :func:`~linkage_gcn.datasets.find_shared_lfw`
        finds it, synthetic otherwise.
    full : bool
        The larger grid: :data:`FULL_SUBSETS` and :data:`FULL_BASE_PARAMS`.
    quick : bool
        A smoke test: :data:`QUICK_BASE_PARAMS` and :data:`QUICK_GAMMAS`, and
        on synthetic data :data:`QUICK_SYNTHETIC_SUBSETS` (for the small data
        set of ``load_data(quick=True)``); it overrides ``full``'s settings.

    Returns
    -------
    dict
        ``data`` (``"lfw"`` or ``"synthetic"``), ``subsets`` (list of
        ``(m, n)``), ``sweep_subset`` (the first subset), ``gammas``,
        ``methods`` (names: the paper's nine, then the extensions) and
        ``base_params`` (a copy).

    Examples
    --------
    >>> grid = default_grid("lfw")
    >>> grid["subsets"], grid["sweep_subset"], len(grid["methods"])
    ([(10, 3), (40, 3)], (10, 3), 10)
    >>> grid["base_params"]["hidden_channels"], grid["base_params"]["epochs"]
    ((256, 256, 128, 128), 3)
    >>> default_grid("synthetic", quick=True)["subsets"]
    [(2, 2), (5, 3)]
    """
    data = resolve_data_name(data)
    subsets = list(FULL_SUBSETS if full else DEFAULT_SUBSETS)
    base = dict(FULL_BASE_PARAMS if full else DEFAULT_BASE_PARAMS)
    gammas = DEFAULT_GAMMAS
    if quick:
        base, gammas = dict(QUICK_BASE_PARAMS), QUICK_GAMMAS
        if data == "synthetic":
            subsets = list(QUICK_SYNTHETIC_SUBSETS)
    return {
        "data": data,
        "subsets": subsets,
        "sweep_subset": subsets[0],
        "gammas": gammas,
        "methods": list(all_methods()),
        "base_params": base,
    }
