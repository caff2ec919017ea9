"""Tables of experiment records: the paper's Tables 1 and 2, and the gamma sweep.

Records are the dicts of :func:`~linkage_gcn.experiments.run_imbalance_grid`
and :func:`~linkage_gcn.experiments.gamma_sweep`, or the same read back from
JSON (:func:`~linkage_gcn.experiments.load_results`), where an undefined
metric is ``null``. In every table a missing run shows ``-`` and an undefined
value ``nan``; neither is ever marked best.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np

__all__ = ["format_markdown_table", "format_sweep", "format_table", "pivot", "sweep_cells"]

Records = Sequence[Mapping[str, Any]]
Cells = dict[tuple[Any, Any], float]

#: The note under a table with rows that are not methods of the paper.
EXT_NOTE = "(ext): an extension of linkage-gcn, not a method of the paper."


def _value(v: Any, metric: str) -> float:
    """A metric as a float: ``None`` (JSON ``null``) is NaN."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"a record's {metric!r} is not a number: {v!r}.") from None


def _fmt(v: Optional[float], digits: int) -> str:
    if v is None:
        return "-"
    return "nan" if math.isnan(v) else f"{v:.{digits}f}"


def _best(values: Sequence[Optional[float]], lower: bool, digits: int) -> Optional[float]:
    """The best value as shown (rounded to ``digits``), so that shown ties are all marked."""
    finite = [round(v, digits) for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return None
    return min(finite) if lower else max(finite)


def _is_best(v: Optional[float], best: Optional[float], digits: int) -> bool:
    return v is not None and round(v, digits) == best


def _check_record(r: Mapping[str, Any], keys: Sequence[str], metric: str) -> None:
    if not isinstance(r, Mapping):
        raise ValueError(
            "records must be dicts (as run_imbalance_grid and gamma_sweep return them), got "
            f"a {type(r).__name__}: {r!r}."
        )
    if metric not in r:
        raise ValueError(f"records have no {metric!r}; choose a key such as 'edge_ap'.")
    missing = [k for k in keys if k not in r]
    if missing:
        raise ValueError(f"a record has no {', '.join(map(repr, missing))}: {dict(r)!r}.")


def pivot(
    records: Records, row_key: str, col_key: str, metric: str
) -> tuple[list[Any], list[Any], Cells]:
    """Rows and columns in order of first appearance, and the cells (the last record wins).

    Examples
    --------
    >>> recs = [{"m": "A", "s": 1, "ap": 0.5}, {"m": "B", "s": 1, "ap": None}]
    >>> pivot(recs, "m", "s", "ap")
    (['A', 'B'], [1], {('A', 1): 0.5, ('B', 1): nan})
    """
    rows: list[Any] = []
    cols: list[Any] = []
    cells: Cells = {}
    for r in records:
        _check_record(r, (row_key, col_key), metric)
        row, col = r[row_key], r[col_key]
        if row not in rows:
            rows.append(row)
        if col not in cols:
            cols.append(col)
        cells[(row, col)] = _value(r[metric], metric)
    return rows, cols, cells


def _row_mean(line: Sequence[Optional[float]]) -> Optional[float]:
    """The mean of a full row (NaN if a value is); missing when a run is."""
    if any(v is None for v in line):
        return None
    return float(np.mean(line))


def _table_cells(
    records: Records, metric: str, avg: bool, digits: int
) -> tuple[list[str], list[str], list[list[Optional[float]]], list[Optional[float]]]:
    """Row labels, column labels, values (None = missing) and the best of each column."""
    if not records:
        raise ValueError("no records to tabulate.")
    rows, cols, cells = pivot(records, "method", "subset", metric)
    values = [[cells.get((r, c)) for c in cols] for r in rows]
    labels = [str(c) for c in cols]
    if avg:
        values = [[*line, _row_mean(line)] for line in values]
        labels.append("Avg")
    lower = metric.endswith("seconds")
    best = [_best([line[j] for line in values], lower, digits) for j in range(len(labels))]
    extra = {r["method"] for r in records if r.get("from_paper") is False}
    row_labels = [f"{r} (ext)" if r in extra else str(r) for r in rows]
    return row_labels, labels, values, best


def format_table(
    records: Records, metric: str = "edge_ap", *, digits: int = 4, avg: bool = True
) -> str:
    """A plain-text table in the shape of the paper's Table 1: methods x subsets, plus Avg.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`~linkage_gcn.experiments.run_imbalance_grid`
        (or loaded from its JSON); each has ``method``, ``subset`` and ``metric``.
    metric : str
        The record key shown (``"edge_ap"``, ``"bcubed_fscore"``, ``"nmi"``...).
    digits : int
        Decimals.
    avg : bool
        Add the ``Avg`` column: the mean of a row over the subsets, missing
        (``-``) when a run of the row is, so that every average covers the
        same subsets.

    Returns
    -------
    str
        One line per method, one column per subset in order of first
        appearance; the best value of each column is marked with ``*``
        (lowest for ``*_seconds``; every row that shows it, when rounded to
        ``digits`` ties), and methods that are not from the paper
        (``from_paper`` false) are marked ``(ext)``, with a note below.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "subset": "(H10, S3)", "edge_ap": 0.90},
    ...         {"method": "L-GCN", "subset": "(H40, S3)", "edge_ap": 0.94},
    ...         {"method": "RIWS", "subset": "(H10, S3)", "edge_ap": 0.93},
    ...         {"method": "RIWS", "subset": "(H40, S3)", "edge_ap": 0.93}]
    >>> print(format_table(recs, digits=3))
    Method  (H10, S3)  (H40, S3)      Avg
    L-GCN     0.900      0.940 *  0.920
    RIWS      0.930 *    0.930    0.930 *
    """
    row_labels, labels, values, best = _table_cells(records, metric, avg, digits)
    texts = [
        [_fmt(v, digits) + (" *" if _is_best(v, b, digits) else "  ") for v, b in zip(line, best)]
        for line in values
    ]
    width0 = max(len("Method"), *(len(r) for r in row_labels))
    widths = [max(len(labels[j]), *(len(t[j]) for t in texts)) for j in range(len(labels))]
    lines = [["Method".ljust(width0), *(c.rjust(w) for c, w in zip(labels, widths))]]
    lines += [
        [label.ljust(width0), *(t.rjust(w) for t, w in zip(line, widths))]
        for label, line in zip(row_labels, texts)
    ]
    out = ["  ".join(line).rstrip() for line in lines]
    if any(r.endswith("(ext)") for r in row_labels):
        out.append(EXT_NOTE)
    return "\n".join(out)


def format_markdown_table(
    records: Records, metric: str = "edge_ap", *, digits: int = 4, avg: bool = True
) -> str:
    """The table of :func:`format_table` in Markdown, the best of each column in bold.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "subset": "(H10, S3)", "edge_ap": 0.9},
    ...         {"method": "RIWS", "subset": "(H10, S3)", "edge_ap": 0.95}]
    >>> print(format_markdown_table(recs, digits=2))
    | Method | (H10, S3) | Avg |
    |---|---:|---:|
    | L-GCN | 0.90 | 0.90 |
    | RIWS | **0.95** | **0.95** |
    """
    row_labels, labels, values, best = _table_cells(records, metric, avg, digits)
    out = [
        "| " + " | ".join(["Method", *labels]) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for label, line in zip(row_labels, values):
        cells = [
            f"**{_fmt(v, digits)}**" if _is_best(v, b, digits) else _fmt(v, digits)
            for v, b in zip(line, best)
        ]
        out.append("| " + " | ".join([label, *cells]) + " |")
    if any(r.endswith("(ext)") for r in row_labels):
        out.extend(["", EXT_NOTE])
    return "\n".join(out)


def sweep_cells(
    records: Records, metric: str
) -> tuple[list[Any], list[float], Cells, Optional[float]]:
    """The gamma sweep pivoted: rows (methods), sorted gammas, cells and the baseline.

    The baseline is the value of the last top-k record (``sampler ==
    "topk"``), ``None`` without one; every other record is a swept one.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "ap": 0.9},
    ...         {"method": "RS", "sampler": "rs", "gamma": 2.0, "ap": 0.8},
    ...         {"method": "RS", "sampler": "rs", "gamma": 1.5, "ap": 0.7}]
    >>> sweep_cells(recs, "ap")
    (['RS'], [1.5, 2.0], {('RS', 2.0): 0.8, ('RS', 1.5): 0.7}, 0.9)
    """
    if not records:
        raise ValueError("no records to tabulate.")
    for r in records:
        _check_record(r, (), metric)
    base = [r for r in records if r.get("sampler") == "topk"]
    swept = [r for r in records if r.get("sampler") != "topk"]
    rows, cols, cells = pivot(swept, "method", "gamma", metric)
    baseline = _value(base[-1][metric], metric) if base else None
    return rows, sorted(float(g) for g in cols), cells, baseline


def _gamma_text(g: float) -> str:
    """``1.0`` -> ``"1.0"``, ``1.25`` -> ``"1.25"``."""
    return f"{g:.1f}" if g == int(g) else f"{g:g}"


def format_sweep(
    records: Records,
    metric: str = "edge_ap",
    *,
    digits: int = 4,
    markdown: bool = False,
) -> str:
    """The gamma sweep as a table: one row per swept method, one column per gamma.

    Parameters
    ----------
    records : sequence of dict
        As returned by :func:`~linkage_gcn.experiments.gamma_sweep`; each has
        ``method``, ``sampler``, ``gamma`` and ``metric``.
    metric : str
        The record key shown.
    digits : int
        Decimals.
    markdown : bool
        A Markdown table instead of plain text.

    Returns
    -------
    str
        The table, then the top-k baseline's value on a line of its own.

    Examples
    --------
    >>> recs = [{"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.9},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 1.0, "edge_ap": 0.91},
    ...         {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93}]
    >>> print(format_sweep(recs, digits=2))
    gamma  1.0   2.0
    RIWS   0.91  0.93
    L-GCN baseline (top-k): 0.90
    """
    rows, gammas, cells, baseline = sweep_cells(records, metric)
    head = ["gamma", *(_gamma_text(g) for g in gammas)]
    body = [[str(r), *(_fmt(cells.get((r, g)), digits) for g in gammas)] for r in rows]
    note = [] if baseline is None else [f"L-GCN baseline (top-k): {_fmt(baseline, digits)}"]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(gammas)]
        out += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(out + (["", *note] if note else []))
    widths = [max(len(line[j]) for line in [head, *body]) for j in range(len(head))]
    out = ["  ".join(t.ljust(w) for t, w in zip(line, widths)).rstrip() for line in [head, *body]]
    return "\n".join(out + note)
