import sys

import pytest

from linkage_gcn.experiments import plot_gamma_sweep, require_matplotlib
from linkage_gcn.experiments.plots import sweep_figure

RECS = [
    {"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.90, "subset": "(H2, S2)"},
    {"method": "RS", "sampler": "rs", "gamma": 2.0, "edge_ap": 0.90, "subset": "(H2, S2)"},
    {"method": "RS", "sampler": "rs", "gamma": 1.0, "edge_ap": 0.91, "subset": "(H2, S2)"},
    {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93, "subset": "(H2, S2)"},
]


def test_sweep_figure_draws_fig_3():
    pytest.importorskip("matplotlib")
    ax = sweep_figure(RECS).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"RS", "RIWS", "L-GCN (baseline)"}
    assert list(lines["RS"].get_xdata()) == [1.0, 2.0]  # by gamma
    assert list(lines["RS"].get_ydata()) == [0.91, 0.90]
    assert lines["RS"].get_linestyle() == "--" and lines["RIWS"].get_linestyle() == "-"
    assert lines["L-GCN (baseline)"].get_linestyle() == "-."
    assert list(lines["L-GCN (baseline)"].get_ydata()) == [0.90, 0.90]
    assert ax.get_title() == "(H2, S2)" and ax.get_ylabel() == "edge AP"


def test_undefined_baseline_is_not_drawn():
    pytest.importorskip("matplotlib")
    recs = [{**RECS[0], "edge_ap": None}, *RECS[1:]]
    labels = [line.get_label() for line in sweep_figure(recs, title="t").axes[0].get_lines()]
    assert labels == ["RS", "RIWS"]


def test_plot_gamma_sweep_writes_once(tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_gamma_sweep(RECS, tmp_path / "gamma.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        plot_gamma_sweep(RECS, path)
    assert path.read_bytes() == data
    svg = plot_gamma_sweep(RECS, path.with_suffix(".svg"))
    assert b"<svg" in svg.read_bytes()[:500]
    plot_gamma_sweep(RECS[1:], path, overwrite=True)
    assert path.read_bytes() != data


def test_missing_matplotlib_is_explained(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'linkage-gcn\[plot\]'"):
        require_matplotlib()
    with pytest.raises(ImportError, match="matplotlib"):
        plot_gamma_sweep(RECS, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()
