"""Figure 3 of the paper: a metric against the pool expansion gamma (needs matplotlib).

matplotlib is the ``plot`` extra (``pip install 'linkage-gcn[plot]'``); it is
imported only when a figure is drawn, and drawn without a display (Agg).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from .._files import atomic_write
from .tables import sweep_cells

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["plot_gamma_sweep", "require_matplotlib", "sweep_figure"]

#: Line style of each sampler: RS dashed, RIWS solid; the top-k baseline is dash-dot.
LINE_STYLES = {"rs": "--", "riws": "-"}


def require_matplotlib() -> None:
    """Raise a helpful :class:`ImportError` when matplotlib (the ``plot`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'linkage-gcn[plot]'") from exc


def sweep_figure(
    records: Sequence[Mapping[str, Any]], metric: str = "edge_ap", title: Optional[str] = None
) -> Figure:
    """The figure of :func:`plot_gamma_sweep`, not saved.

    One line per swept method (points at the gammas it was run at; style by
    its sampler, :data:`LINE_STYLES`), and the last top-k record as a
    horizontal dash-dot baseline when it is defined.
    """
    rows, gammas, cells, baseline = sweep_cells(records, metric)
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sampler = {r["method"]: r.get("sampler") for r in records}
    fig = Figure(figsize=(5.0, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row in rows:
        xs = [g for g in gammas if (row, g) in cells]
        ys = [cells[(row, g)] for g in xs]
        ax.plot(xs, ys, LINE_STYLES.get(sampler[row], "-"), marker="o", label=str(row))
    if baseline is not None and math.isfinite(baseline):
        ax.axhline(baseline, linestyle="-.", color="gray", label="L-GCN (baseline)")
    ax.set_xlabel("gamma (1-hop pool expansion)")
    ax.set_ylabel(metric.replace("_", " "))
    subsets = sorted({str(r.get("subset", "")) for r in records} - {""})
    ax.set_title(title if title is not None else " ".join(subsets))
    ax.grid(alpha=0.3)
    ax.legend()
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
