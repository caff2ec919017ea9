import numpy as np
import pytest

from linkage_gcn.experiments import format_markdown_table, format_sweep, format_table
from linkage_gcn.experiments.tables import EXT_NOTE, pivot, sweep_cells

from .conftest import GRID_METHODS, GRID_SUBSETS


def rec(method, subset, value, **extra):
    return {"method": method, "subset": subset, "edge_ap": value, **extra}


def test_format_table_marks_the_best_of_each_column():
    recs = [rec("A", "s1", 0.5), rec("A", "s2", 0.8), rec("B", "s1", 0.6), rec("B", "s2", 0.7)]
    assert format_table(recs, digits=2).splitlines() == [
        "Method      s1      s2     Avg",
        "A       0.50    0.80 *  0.65 *",
        "B       0.60 *  0.70    0.65 *",
    ]  # a tie as shown is marked in both rows (0.65 and 0.6499999...)
    assert format_table(recs, digits=2, avg=False).splitlines()[0].split() == ["Method", "s1", "s2"]


def test_seconds_are_best_when_lowest():
    recs = [rec("A", "s1", 0, fit_seconds=3.0), rec("B", "s1", 0, fit_seconds=1.0)]
    lines = format_table(recs, "fit_seconds", digits=1, avg=False).splitlines()
    assert lines[1].split() == ["A", "3.0"] and lines[2].split() == ["B", "1.0", "*"]


def test_missing_runs_and_undefined_values_are_never_best():
    recs = [rec("A", "s1", 0.5), rec("A", "s2", 0.7), rec("B", "s1", None),
            rec("C", "s1", float("nan")), rec("C", "s2", 0.9)]  # fmt: skip
    lines = format_table(recs, digits=2).splitlines()
    assert lines[1].split() == ["A", "0.50", "*", "0.70", "0.60", "*"]
    assert lines[2].split() == ["B", "nan", "-", "-"]  # no Avg over a missing run
    assert lines[3].split() == ["C", "nan", "0.90", "*", "nan"]


def test_the_last_record_of_a_cell_wins():
    assert pivot([rec("A", "s", 0.1), rec("A", "s", 0.2)], "method", "subset", "edge_ap") == (
        ["A"], ["s"], {("A", "s"): 0.2},
    )  # fmt: skip


def test_extensions_are_marked():
    recs = [rec("L-GCN", "s", 0.9, from_paper=True), rec("X", "s", 0.8, from_paper=False)]
    lines = format_table(recs, digits=1).splitlines()
    assert lines[2].startswith("X (ext)") and lines[-1] == EXT_NOTE
    assert format_markdown_table(recs, digits=1).splitlines()[-2:] == ["", EXT_NOTE]
    assert EXT_NOTE not in format_table(recs[:1])


def test_format_markdown_table():
    recs = [rec("A", "s1", 0.5), rec("A", "s2", None), rec("B", "s1", 0.75)]
    assert format_markdown_table(recs, digits=2) == "\n".join([
        "| Method | s1 | s2 | Avg |",
        "|---|---:|---:|---:|",
        "| A | 0.50 | nan | nan |",
        "| B | **0.75** | - | - |",
    ])  # fmt: skip


@pytest.mark.parametrize("fmt", [format_table, format_markdown_table])
def test_tables_reject(fmt):
    with pytest.raises(ValueError, match="no records"):
        fmt([])
    with pytest.raises(ValueError, match="no 'nmi'"):
        fmt([rec("A", "s", 0.5)], "nmi")
    with pytest.raises(ValueError, match="no 'subset'"):
        fmt([{"method": "A", "edge_ap": 0.5}])


def test_format_table_of_a_grid(grid):
    lines = format_table(grid, "bcubed_fscore").splitlines()
    assert lines[0].split()[1:] == [*" ".join(f"(H{m}, S{n})" for m, n in GRID_SUBSETS).split(),
                                    "Avg"]  # fmt: skip
    for line, method in zip(lines[1:], GRID_METHODS):
        values = [r["bcubed_fscore"] for r in grid if r["method"] == method]
        shown = line.replace("*", " ").split()[-3:]
        assert shown == [f"{v:.4f}" for v in [*values, np.mean(values)]], method
    assert lines[3].startswith("CBg+RIWS (ext)") and lines[-1] == EXT_NOTE


SWEEP = [
    {"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.9},
    {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93},
    {"method": "RS", "sampler": "rs", "gamma": 1.25, "edge_ap": 0.88},
    {"method": "RIWS", "sampler": "riws", "gamma": 1.25, "edge_ap": None},
]


def test_format_sweep():
    assert format_sweep(SWEEP, digits=2).splitlines() == [
        "gamma  1.25  2.0",
        "RIWS   nan   0.93",
        "RS     0.88  -",
        "L-GCN baseline (top-k): 0.90",
    ]
    assert format_sweep(SWEEP, digits=2, markdown=True).splitlines() == [
        "| gamma | 1.25 | 2.0 |",
        "|---|---:|---:|",
        "| RIWS | nan | 0.93 |",
        "| RS | 0.88 | - |",
        "",
        "L-GCN baseline (top-k): 0.90",
    ]


def test_sweep_baseline():
    assert sweep_cells(SWEEP[1:], "edge_ap")[3] is None
    assert "baseline" not in format_sweep(SWEEP[1:])
    null = [{**SWEEP[0], "edge_ap": None}, *SWEEP[1:]]  # as read back from JSON
    assert format_sweep(null).splitlines()[-1] == "L-GCN baseline (top-k): nan"
    with pytest.raises(ValueError, match="no 'nmi'"):
        format_sweep(SWEEP, "nmi")
    with pytest.raises(ValueError, match="no records"):
        format_sweep([])
