"""Figure 3 of the paper: a metric against the pool expansion gamma (needs matplotlib).

matplotlib is the ``plot`` extra (``pip install 'linkage-gcn[plot]'``); it is
imported only when a figure is drawn, and drawn without a display (Agg). The
axes are drawn by :func:`linkage_gcn.plot.plot_gamma_sweep`; this module puts
them in a figure and writes it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import plot as _plot
from .._files import atomic_write
from ..plot import require_matplotlib
from .tables import sweep_cells

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_gamma_sweep", "require_matplotlib", "sweep_figure"]

#: Line style of each sampler: RS dashed, RIWS solid; the top-k baseline is dash-dot.
#: (The figure is drawn by :func:`linkage_gcn.plot.plot_gamma_sweep`, its one home.)
LINE_STYLES = _plot.LINE_STYLES


def sweep_figure(
    records: Sequence[Mapping[str, Any]], metric: str = "edge_ap", title: Optional[str] = None
) -> Figure:
    """The figure of :func:`plot_gamma_sweep`, not saved.

    Drawn by :func:`linkage_gcn.plot.plot_gamma_sweep`: one line per swept
    method (points at the gammas it was run at; style by its sampler,
    :data:`~linkage_gcn.plot.LINE_STYLES`), and the last top-k record as a
    horizontal dash-dot baseline when it is defined.
    """
    sweep_cells(records, metric)  # bad records fail before the matplotlib check
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 3.6))
    FigureCanvasAgg(fig)
    ax = _plot.plot_gamma_sweep(records, metric=metric, ax=fig.add_subplot())
    if title is not None:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_gamma_sweep(
    records: Sequence[Mapping[str, Any]],
    path: Union[str, Path],
    *,
    metric: str = "edge_ap",
    title: Optional[str] = None,
    overwrite: bool = False,
) -> Path:
    """Draw Figure 3: ``metric`` against gamma, RS dashed, RIWS solid, baseline dash-dot.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`~linkage_gcn.experiments.gamma_sweep`.
    path : str or Path
        Image file; its suffix picks the format (``.png``, ``.pdf``, ``.svg``...;
        none: PNG).
    metric : str
        The record key drawn.
    title : str, optional
        Figure title (default: the subset).
    overwrite : bool
        Replace an existing file (refused otherwise, before anything is drawn).

    Returns
    -------
    pathlib.Path
        ``path``, written atomically.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} already exists; pass overwrite=True to replace it.")
    fig = sweep_figure(records, metric, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=(p.suffix[1:] or "png"), dpi=120)
    return atomic_write(p, lambda f: f.write(buffer.getvalue()), overwrite=overwrite)
