"""The experiments of the RIWS paper on imbalanced training subsets, as functions.

Yang et al., *GCN-Based Linkage Prediction for Face Clustering on Imbalanced
Datasets: An Empirical Study* compare, on (H m, S n) imbalanced training
subsets (the ``m`` largest identities kept whole, ``n`` samples of every
other one, :func:`~linkage_gcn.model_selection.make_imbalanced_subset`), nine ways of
training L-GCN: its plain cross-entropy, two re-weighting losses, two
re-sampling strategies and their four combinations (Table 1: edge AP; Table 2:
edge AP and B-Cubed F), and the pool expansion ``gamma`` of plain
re-sampling and RIWS (Fig. 3). The ``FL`` rows use the RIWS fork's focal
loss (``loss="focal-fork"``), the orientation of the peers' code.

The package, one concept a module (each imports only those above it):

- :mod:`~linkage_gcn.experiments.methods`: :data:`METHODS`, the nine methods
  of Table 1 in the paper's order; :data:`EXTRA_METHODS` (``CBg+RIWS``,
  class balance inside each subgraph: an extension of this package, *not* a
  method of the paper); :data:`PAPER_SETTINGS`; :func:`resolve_methods`;
- :mod:`~linkage_gcn.experiments.subsets`: :func:`subset_name`,
  :func:`describe_subsets`;
- :mod:`~linkage_gcn.experiments.defaults`: the settings of ``linkage-gcn
  imbalance``, :func:`default_grid` (its docstring has the default grid on
  LFW);
- :mod:`~linkage_gcn.experiments.data`: :func:`load_data`, LFW or synthetic;
- :mod:`~linkage_gcn.experiments.results`: :func:`save_results`,
  :func:`load_results` (JSON);
- :mod:`~linkage_gcn.experiments.runner`: :func:`run_imbalance_grid`, every
  method on every subset evaluated on an identity-disjoint held-out set, and
  :func:`gamma_sweep`, Fig. 3 (its docstring has the evaluation protocol);
- :mod:`~linkage_gcn.experiments.tables`: :func:`format_table`,
  :func:`format_markdown_table`, :func:`format_sweep`;
- :mod:`~linkage_gcn.experiments.plots`: :func:`plot_gamma_sweep`, the
  figure (needs matplotlib, the ``plot`` extra), :func:`require_matplotlib`.

Apart from the imbalance experiments, :mod:`~linkage_gcn.experiments.speed`
holds the references of the speed benchmark (``examples/benchmarks/bench_speed.py``):
the dense 2019 design and the FLOP counts (imported on its own, not re-exported here).

Examples
--------
>>> from linkage_gcn.experiments import METHODS, format_table
>>> METHODS["FL+RIWS"]
{'sampler': 'riws', 'gamma': 2.0, 'loss': 'focal-fork'}
"""

from .data import load_data
from .defaults import (
    DEFAULT_BASE_PARAMS,
    DEFAULT_GAMMAS,
    DEFAULT_SUBSETS,
    FULL_BASE_PARAMS,
    QUICK_BASE_PARAMS,
    default_grid,
)
from .methods import EXTRA_METHODS, METHODS, PAPER_SETTINGS, resolve_methods
from .plots import plot_gamma_sweep, require_matplotlib
from .results import load_results, save_results
from .runner import gamma_sweep, run_imbalance_grid
from .subsets import describe_subsets, subset_name
from .tables import format_markdown_table, format_sweep, format_table

__all__ = [
    "DEFAULT_BASE_PARAMS",
    "DEFAULT_GAMMAS",
    "DEFAULT_SUBSETS",
    "EXTRA_METHODS",
    "FULL_BASE_PARAMS",
    "METHODS",
    "PAPER_SETTINGS",
    "QUICK_BASE_PARAMS",
    "default_grid",
    "describe_subsets",
    "format_markdown_table",
    "format_sweep",
    "format_table",
    "gamma_sweep",
    "load_data",
    "load_results",
    "plot_gamma_sweep",
    "require_matplotlib",
    "resolve_methods",
    "run_imbalance_grid",
    "save_results",
    "subset_name",
]
