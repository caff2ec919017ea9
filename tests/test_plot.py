import sys

import numpy as np
import pytest
import torch
from sklearn.metrics import precision_recall_curve

from linkage_gcn import LinkageClusterer, plot
from linkage_gcn.datasets import make_identities
from linkage_gcn.experiments import plots as experiment_plots
from linkage_gcn.metrics import bcubed_by_identity_size, edge_ap, edge_labels

pytest.importorskip("matplotlib")
from matplotlib.axes import Axes
from matplotlib.figure import Figure

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """No test, and no function of linkage_gcn.plot, leaves a pyplot figure open."""
    import matplotlib.pyplot as plt

    yield
    assert plt.get_fignums() == []


@pytest.fixture(scope="module")
def fitted():
    X, y = make_identities(40, max_size=10, random_state=0)
    est = LinkageClusterer(k_at_hop=(4, 2), active_connection=2, hidden_channels=(16, 16),
                           epochs=2, random_state=0, verbose=False)  # fmt: skip
    return est.fit(X, y), X, y


@pytest.fixture(scope="module")
def edges():
    """Labels, random kNN-like edges and scores that rank same-identity edges higher."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 15, size=80)
    edge_index = rng.integers(0, 80, size=(2, 400))
    same = labels[edge_index[0]] == labels[edge_index[1]]
    scores = np.clip(rng.normal(0.3 + 0.4 * same, 0.2), 0.0, 1.0)
    return labels, edge_index, scores, same


def size_counts(labels):
    """Cluster sizes present and how many clusters have each, by bincount."""
    _, codes = np.unique(labels, return_inverse=True)
    per_size = np.bincount(np.bincount(codes))
    sizes = np.flatnonzero(per_size)
    return sizes, per_size[sizes]


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_cluster_sizes_are_counted(rng):
    true = rng.integers(0, 30, size=200)
    pred = rng.integers(0, 60, size=200)
    ax = plot.plot_cluster_sizes(true, pred)
    assert isinstance(ax, Axes) and isinstance(ax.figure, Figure)
    (t_line, p_line) = ax.get_lines()
    for line, labels in ((t_line, true), (p_line, pred)):
        sizes, counts = size_counts(labels)
        np.testing.assert_array_equal(line.get_xdata(), sizes)
        np.testing.assert_array_equal(line.get_ydata(), counts)
    assert t_line.get_label() == f"true ({len(np.unique(true))} identities)"
    assert ax.get_xscale() == ax.get_yscale() == "log"


def test_cluster_sizes_take_any_ids_and_draw_on_the_given_axes():
    ax = Figure().add_subplot()
    assert plot.plot_cluster_sizes(np.array(["b", "a", "b"]), ax=ax) is ax
    (line,) = ax.get_lines()
    assert line.get_xdata().tolist() == [1, 2] and line.get_ydata().tolist() == [1, 1]


def test_score_histogram_counts(edges):
    _, _, scores, same = edges
    ax = plot.plot_score_histogram(torch.tensor(scores), torch.tensor(same), bins=7)
    bins = np.histogram_bin_edges(scores, 7)
    same_bars, diff_bars = ax.containers
    for bars, mask in ((same_bars, same), (diff_bars, ~same)):
        heights = [bar.get_height() for bar in bars]
        np.testing.assert_array_equal(heights, np.histogram(scores[mask], bins)[0])
        np.testing.assert_allclose([bar.get_x() for bar in bars], bins[:-1])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"same identity ({same.sum()} edges)",
                      f"different identities ({(~same).sum()} edges)"]  # fmt: skip
    assert ax.get_yscale() == "log"


def test_score_histogram_with_one_class_draws_one():
    ax = plot.plot_score_histogram([0.1, 0.2, 0.3], [0, 0, 0], bins=3)
    assert len(ax.containers) == 1
    assert [bar.get_height() for bar in ax.containers[0]] == [1, 1, 1]


def test_precision_recall_matches_sklearn_and_edge_ap(edges):
    labels, edge_index, scores, _ = edges
    same = edge_labels(labels, edge_index)
    ax = plot.plot_precision_recall(scores, same)
    precision, recall, _ = precision_recall_curve(same, scores)
    ap = edge_ap(labels, edge_index, scores)
    lines = lines_by_label(ax)
    curve = lines[f"AP {ap:.4f}"]
    np.testing.assert_array_equal(curve.get_xdata(), recall)
    np.testing.assert_array_equal(curve.get_ydata(), precision)
    chance = lines[f"chance {same.mean():.4f}"]
    assert list(chance.get_ydata()) == [same.mean()] * 2
    assert ax.get_legend() is not None


def test_bcubed_by_size_bars(rng):
    true = np.repeat(np.arange(20), rng.integers(1, 15, size=20))
    pred = rng.permutation(true) // 2
    rows = bcubed_by_identity_size(true, pred)
    ax = plot.plot_bcubed_by_size(true, pred)
    assert len(ax.containers) == 3
    for bars, key in zip(ax.containers, ("precision", "recall", "fscore")):
        np.testing.assert_allclose([bar.get_height() for bar in bars], [r[key] for r in rows])
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{r['sizes']}\n{r['n_identities']} id{'s' * (r['n_identities'] > 1)}"
                     for r in rows]  # fmt: skip
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["precision", "recall", "F"]


def test_gamma_sweep_is_one_implementation():
    recs = [
        {"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.9, "subset": "(H2, S2)"},
        {"method": "RS", "sampler": "rs", "gamma": 2.0, "edge_ap": 0.8, "subset": "(H2, S2)"},
        {"method": "RS", "sampler": "rs", "gamma": 1.0, "edge_ap": 0.85, "subset": "(H2, S2)"},
        {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.95, "subset": "(H2, S2)"},
    ]  # fmt: skip
    assert experiment_plots.require_matplotlib is plot.require_matplotlib
    ax = plot.plot_gamma_sweep(recs)
    lines = lines_by_label(ax)
    assert list(lines["RS"].get_xdata()) == [1.0, 2.0]
    assert list(lines["RS"].get_ydata()) == [0.85, 0.8]
    assert lines["RS"].get_linestyle() == "--" and lines["RIWS"].get_linestyle() == "-"
    assert list(lines["L-GCN (baseline)"].get_ydata()) == [0.9, 0.9]
    assert ax.get_title() == "(H2, S2)"
    assert ax.get_ylabel() == "edge AP"
    drawn = experiment_plots.sweep_figure(recs).axes[0]
    for name, line in lines_by_label(drawn).items():
        assert list(line.get_xdata()) == list(lines[name].get_xdata()), name
        assert list(line.get_ydata()) == list(lines[name].get_ydata()), name
        assert line.get_linestyle() == lines[name].get_linestyle(), name


def test_history_of_a_fitted_clusterer(fitted):
    est, _, _ = fitted
    ax = plot.plot_history(est.history_)
    loss, *_ = ax.get_lines()
    assert loss.get_xdata().tolist() == [1.0, 2.0]
    assert loss.get_ydata().tolist() == [h["loss"] for h in est.history_]
    twin = ax.figure.axes[-1]
    assert twin is not ax
    lines = lines_by_label(twin)
    assert lines["link precision"].get_ydata().tolist() == [h["precision"] for h in est.history_]
    assert lines["link recall"].get_ydata().tolist() == [h["recall"] for h in est.history_]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["loss", "link precision", "link recall"]


def test_history_without_link_statistics_has_no_twin():
    ax = plot.plot_history([{"loss": 0.5}, {"loss": 0.25}, {"loss": 0.2}])
    assert len(ax.figure.axes) == 1
    assert ax.get_lines()[0].get_xdata().tolist() == [1.0, 2.0, 3.0]


NAN = float("nan")


@pytest.mark.parametrize(
    ("draw", "match"),
    [
        (lambda: plot.plot_cluster_sizes([]), "labels_true is empty"),
        (lambda: plot.plot_cluster_sizes([0, NAN]), "NaN"),
        (lambda: plot.plot_cluster_sizes([0, 1], [0, 1, 2]), "same length"),
        (lambda: plot.plot_score_histogram([], []), "scores is empty"),
        (lambda: plot.plot_score_histogram([0.1, NAN], [1, 0]), "NaN"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0, 1]), r"shape \(2,\)"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, NAN]), "same contains 1 NaN"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 2]), "booleans"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0], bins=0), "bins"),
        (lambda: plot.plot_precision_recall([0.1, 0.2], [1, 1]), "all 2 edges"),
        (lambda: plot.plot_bcubed_by_size([0, 1], [0]), "same length"),
        (lambda: plot.plot_bcubed_by_size([], []), "empty"),
        (lambda: plot.plot_history([]), "non-empty list"),
        (lambda: plot.plot_history({"loss": 1.0}), "non-empty list"),
        (lambda: plot.plot_history([{"precision": 0.5}]), "'loss'"),
        (lambda: plot.plot_history([{"loss": NAN}]), "NaN or infinite 'loss'"),
        (lambda: plot.plot_gamma_sweep([]), "no records"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0], bins=[0.5, 0.2]),
         r"bins must be .* got \[0.5, 0.2\]"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0], bins=2.5), "bins must be"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0], bins="zzz"), "bins must be"),
        (lambda: plot.plot_score_histogram([0.1, 0.2], [1, 0], bins=True), "bins must be an int"),
        (lambda: plot.plot_history([{"loss": "low"}]), "history holds a 'loss' that is not a"),
        (lambda: plot.plot_gamma_sweep([1, 2]), "records must be dicts.* got a int"),
        (lambda: plot.plot_gamma_sweep([{"method": "RS", "sampler": "rs", "gamma": 1.0,
                                         "edge_ap": "high"}]), "'edge_ap' is not a number"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_drawing(draw, match, monkeypatch):
    def must_not_draw(ax):
        raise AssertionError("drew before validating")

    monkeypatch.setattr(plot, "_axes", must_not_draw)
    with pytest.raises(ValueError, match=match):
        draw()


def test_missing_matplotlib_is_explained(monkeypatch, fitted, tmp_path):
    est, X, y = fitted
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(est, "predict_edges", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(ImportError, match=r"pip install 'linkage-gcn\[plot\]'"):
        plot.plot_cluster_sizes([0, 1])
    with pytest.raises(ImportError, match=r"linkage-gcn\[plot\]"):
        plot.plot_report(est, X, y, tmp_path / "figures")
    assert not (tmp_path / "figures").exists()


def test_plot_report_writes_once(fitted, tmp_path, monkeypatch):
    est, X, y = fitted
    out = tmp_path / "figures"
    paths = plot.plot_report(est, X, y, out)
    assert [p.name for p in paths] == list(plot.REPORT_FIGURES.values())
    assert sorted(p.name for p in out.iterdir()) == sorted(plot.REPORT_FIGURES.values())
    data = {p: p.read_bytes() for p in paths}
    assert all(d.startswith(PNG) for d in data.values())

    # an existing figure is refused before anything is computed, and nothing changes
    monkeypatch.setattr(est, "predict_edges", lambda *a, **k: pytest.fail("scored"))
    paths[-1].unlink()
    with pytest.raises(FileExistsError, match=r"cluster_sizes\.png already exists"):
        plot.plot_report(est, X, y, out)
    assert not paths[-1].exists()
    assert all(p.read_bytes() == d for p, d in data.items() if p.exists())
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        plot.plot_report(est, X, y, file)
    with pytest.raises(ValueError, match="labels_true has 3 entries"):
        plot.plot_report(est, X, y[:3], tmp_path / "other")
    with pytest.raises(ValueError, match="not fitted"):
        plot.plot_report(LinkageClusterer(), X, y, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_write_figures_overwrites_only_when_asked(tmp_path):
    args = ([0, 0, 1, 1], [0, 0, 1, 2], [[0, 2, 0], [1, 3, 3]], [0.9, 0.4, 0.2])
    first = plot.write_figures(tmp_path, *args)
    assert first == plot.report_paths(tmp_path, history=False)
    before = first[0].read_bytes()
    with pytest.raises(FileExistsError):
        plot.write_figures(tmp_path, *args)
    again = plot.write_figures(tmp_path, [0, 1, 1, 1], *args[1:], overwrite=True)
    assert again == first and first[0].read_bytes() != before
    assert not (tmp_path / "history.png").exists()
    with pytest.raises(ValueError, match="all 3 edges"):
        plot.write_figures(tmp_path / "new", [0, 1, 2, 3], *args[1:])
    assert not (tmp_path / "new").exists()


def test_axes_of_another_kind_are_refused():
    with pytest.raises(TypeError, match=r"ax must be a matplotlib Axes .* got int"):
        plot.plot_cluster_sizes([0, 1], ax=3)
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.plot_cluster_sizes([0, 1], ax=ax) is ax


WRITE_ARGS = ([0, 0, 1, 1], [0, 0, 1, 2], [[0, 2, 0], [1, 3, 3]], [0.9, 0.4, 0.2])


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        # scores and edges of different lengths: the caller's arguments are named
        ({"scores": [0.9, 0.4]}, ValueError,
         r"scores must have shape \(E,\) = \(3,\), one score per edge of edge_index, got "
         r"shape \(2,\)"),
        ({"scores": [0.9, 0.4, 0.2, 0.1]}, ValueError, r"one score per edge of edge_index, got "
         r"shape \(4,\)"),
        ({"scores": [0.9, NAN, 0.2]}, ValueError, "scores contains 1 NaN"),
        ({"scores": None}, ValueError, "scores is None"),
        ({"scores": []}, ValueError, r"\(3,\), one score per edge of edge_index, got shape \(0,"),
        ({"edge_index": [[0, 2, 0], [1, 3, 4]]}, ValueError,
         r"edge_index holds 1 item id\(s\) outside \[0, 4\), e.g. 4"),
        ({"edge_index": [[0.0, 2, 0], [1, 3, 3]]}, ValueError, "edge_index must hold integer"),
        ({"edge_index": [0, 2, 0]}, ValueError, r"edge_index must have shape \(2, E\)"),
        ({"labels_pred": [0, 0, 1]}, ValueError, "labels_pred has 3 entries but 4"),
        ({"labels_true": []}, ValueError, "labels_true is empty"),
        ({"history": {"loss": 1.0}}, ValueError, "history must be a non-empty list"),
    ],
)  # fmt: skip
def test_write_figures_errors_name_the_callers_arguments(tmp_path, change, error, match):
    names = ("labels_true", "labels_pred", "edge_index", "scores")
    kwargs = {**dict(zip(names, WRITE_ARGS)), **change}
    history = kwargs.pop("history", None)
    out = tmp_path / "figures"
    with pytest.raises(error, match=match) as info:
        plot.write_figures(out, *(kwargs[n] for n in names), history=history)
    assert "same" not in str(info.value).replace("same identity", "")  # never an internal name
    assert not out.exists()  # refused before any directory or figure is made


def test_plot_report_checks_X_before_scoring(fitted, tmp_path, monkeypatch):
    est, X, y = fitted
    monkeypatch.setattr(est, "predict_edges", lambda *a, **k: pytest.fail("scored"))
    with pytest.raises(ValueError, match="X is None"):
        plot.plot_report(est, None, y, tmp_path / "a")
    bad = X.copy()
    bad[3, 0] = NAN
    with pytest.raises(ValueError, match="X contains NaN"):
        plot.plot_report(est, bad, y, tmp_path / "a")
    with pytest.raises(ValueError, match="X has 1 sample"):
        plot.plot_report(est, X[:1], y[:1], tmp_path / "a")
    assert not (tmp_path / "a").exists()
