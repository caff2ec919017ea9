import json
import math

import numpy as np
import pytest
import torch

from linkage_gcn import experiments as ex
from linkage_gcn.cli import main
from linkage_gcn.datasets import make_identities, make_imbalanced_subset, split_identities

TINY = {
    "k_at_hop": (4, 2),
    "active_connection": 2,
    "hidden_channels": (8,),
    "epochs": 1,
    "batch_size": 8,
}


@pytest.fixture(autouse=True)
def one_thread():
    # tiny tensors: thread hand-offs cost more than the work on a busy 2-core machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    X, y = make_identities(60, dim=16, max_size=20, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    return X[train], y[train], X[test], y[test]


@pytest.fixture(scope="module")
def grid(data):
    # the fixtures above do not apply to module-scoped ones; set threads here too
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return ex.run_imbalance_grid(
            *data, subsets=[(2, 2), (5, 3)], methods=["L-GCN", "RIWS", "CBg+RIWS"],
            base_params=TINY, verbose=False,
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def test_methods_are_the_papers_table_1():
    assert list(ex.METHODS) == [
        "L-GCN", "CB", "FL", "RS", "RIWS", "CB+RS", "FL+RS", "CB+RIWS", "FL+RIWS",
    ]  # fmt: skip
    expected = {  # name: (sampler, gamma, loss)
        "L-GCN": ("topk", 1.0, "ce"), "CB": ("topk", 1.0, "cb"), "FL": ("topk", 1.0, "focal"),
        "RS": ("rs", 1.2, "ce"), "RIWS": ("riws", 2.0, "ce"),
        "CB+RS": ("rs", 1.2, "cb"), "FL+RS": ("rs", 1.2, "focal"),
        "CB+RIWS": ("riws", 2.0, "cb"), "FL+RIWS": ("riws", 2.0, "focal"),
    }  # fmt: skip
    for name, (sampler, gamma, loss) in expected.items():
        assert ex.METHODS[name] == {"sampler": sampler, "gamma": gamma, "loss": loss}, name
    assert ex.EXTRA_METHODS == {"CBg+RIWS": {"sampler": "riws", "gamma": 2.0, "loss": "cb-graph"}}
    assert ex.PAPER_SETTINGS == {"pivot_similarity": False, "lr_decay": 0.1}
    assert list(ex.resolve_methods()) == [*ex.METHODS, *ex.EXTRA_METHODS]
    with pytest.raises(ValueError, match="unknown method"):
        ex.resolve_methods(["L-GCN", "OHEM"])


def test_grid_records(data, grid):
    _, y_train, _, y_test = data
    assert [(r["subset"], r["method"]) for r in grid] == [
        (s, m) for s in ("(H2, S2)", "(H5, S3)") for m in ("L-GCN", "RIWS", "CBg+RIWS")
    ]
    keys = {
        "subset", "method", "n_train", "n_identities", "edge_ap", "bcubed_fscore",
        "pairwise_fscore", "nmi", "threshold", "fit_seconds", "predict_seconds",
    }  # fmt: skip
    for r in grid:
        assert keys <= set(r)
        m, n = r["majority_count"], r["minority_size"]
        keep = make_imbalanced_subset(y_train, m, n, random_state=0)
        assert r["n_train"] == len(keep)
        assert r["n_identities"] == len(np.unique(y_train[keep]))
        assert r["n_test"] == len(y_test)
        for k in ("edge_ap", "bcubed_fscore", "pairwise_fscore", "nmi", "threshold"):
            assert 0 <= r[k] <= 1, k
        assert r["fit_seconds"] > 0 and r["predict_seconds"] > 0
        assert r["params"]["pivot_similarity"] is False and r["params"]["lr_decay"] == 0.1
        assert r["from_paper"] is (r["method"] != "CBg+RIWS")
    riws = grid[1]
    assert (riws["sampler"], riws["gamma"], riws["loss"]) == ("riws", 2.0, "ce")
    assert riws["params"]["k_at_hop"] == [4, 2]
    json.dumps(ex._plain(grid))  # JSON-ready


def test_grid_is_reproducible_and_reports_progress(data, capsys):
    calls = []
    kwargs = dict(subsets=[(2, 2)], methods=["RS"], base_params=TINY, random_state=3)
    a = ex.run_imbalance_grid(*data, **kwargs, verbose=None, callback=calls.append)
    assert calls == a
    assert "[1/1] (H2, S2) RS gamma=1.2: edge AP" in capsys.readouterr().out
    b = ex.run_imbalance_grid(*data, **kwargs, verbose=False)
    assert capsys.readouterr().out == ""
    assert a[0]["edge_ap"] == b[0]["edge_ap"] and a[0]["random_state"] == 3


def test_grid_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="must not set"):
        ex.run_imbalance_grid(*data, subsets=[(2, 2)], base_params={"loss": "ce"})
    with pytest.raises(ValueError, match="pair"):
        ex.run_imbalance_grid(*data, subsets=[2], base_params=TINY)
    with pytest.raises(ValueError, match="majority_count"):
        ex.run_imbalance_grid(*data, subsets=[(10_000, 2)], methods=["L-GCN"], base_params=TINY)


def test_format_table(grid):
    text = ex.format_table(grid, "edge_ap")
    lines = text.splitlines()
    assert lines[0].split()[0] == "Method" and lines[0].rstrip().endswith("Avg")
    assert "(H2, S2)" in lines[0] and "(H5, S3)" in lines[0]
    for name in ("L-GCN", "RIWS", "CBg+RIWS (ext)"):
        assert any(line.startswith(name) for line in lines)
    assert "not a method of the paper" in lines[-1]
    # Avg of L-GCN: the mean over the two subsets
    lgcn = [r["edge_ap"] for r in grid if r["method"] == "L-GCN"]
    row = next(line for line in lines if line.startswith("L-GCN"))
    assert row.replace("*", " ").split()[-1] == f"{np.mean(lgcn):.4f}"
    # the best of each column is marked
    first = [r["edge_ap"] for r in grid if r["subset"] == "(H2, S2)"]
    best_row = ["L-GCN", "RIWS", "CBg+RIWS"][int(np.argmax(first))]
    row = next(line for line in lines if line.startswith(best_row))
    assert f"{max(first):.4f} *" in row
    md = ex.format_markdown_table(grid, "bcubed_fscore")
    assert md.splitlines()[0] == "| Method | (H2, S2) | (H5, S3) | Avg |"
    assert "**" in md and "CBg+RIWS (ext)" in md


def test_format_table_missing_and_nan():
    recs = [
        {"method": "A", "subset": "s1", "edge_ap": 0.5},
        {"method": "A", "subset": "s2", "edge_ap": 0.7},
        {"method": "B", "subset": "s1", "edge_ap": None},
    ]
    lines = ex.format_table(recs, digits=2).splitlines()
    assert lines[1].split() == ["A", "0.50", "*", "0.70", "*", "0.60", "*"]
    assert lines[2].split() == ["B", "nan", "-", "nan"]
    with pytest.raises(ValueError, match="no 'nmi'"):
        ex.format_table(recs, "nmi")
    with pytest.raises(ValueError, match="no records"):
        ex.format_table([])


def test_gamma_sweep(data):
    cache = {}
    grid = ex.run_imbalance_grid(
        *data, subsets=[(2, 2)], methods=["RIWS"], base_params=TINY, verbose=False, cache=cache
    )
    recs = ex.gamma_sweep(
        *data, subset=(2, 2), gammas=(1.0, 2.0), base_params=TINY, verbose=False, cache=cache
    )
    assert [(r["method"], r["sampler"], r["gamma"]) for r in recs] == [
        ("L-GCN", "topk", 1.0), ("RS", "rs", 1.0), ("RS", "rs", 2.0),
        ("RIWS", "riws", 1.0), ("RIWS", "riws", 2.0),
    ]  # fmt: skip
    # the kNN width follows gamma: RIWS at gamma 2 drew from 2 * k1 = 8 neighbours
    assert recs[-1]["reused"] and recs[-1]["edge_ap"] == grid[0]["edge_ap"]
    assert not any(r["reused"] for r in recs[:-1])
    for r in recs:
        assert 0 <= r["edge_ap"] <= 1 and r["n_train"] == grid[0]["n_train"]
    table = ex.format_sweep(recs)
    assert table.splitlines()[0].split() == ["gamma", "1.0", "2.0"]
    assert table.splitlines()[-1].startswith("L-GCN baseline (top-k): ")
    assert "| RIWS |" in ex.format_sweep(recs, markdown=True)
    with pytest.raises(ValueError, match="sampler"):
        ex.gamma_sweep(*data, samplers=("topk",), base_params=TINY)
    with pytest.raises(ValueError, match="gamma"):
        ex.gamma_sweep(*data, gammas=(0.5,), base_params=TINY)


def test_default_grid():
    grid = ex.default_grid("synthetic")
    assert grid["data"] == "synthetic" and grid["subsets"] == [(10, 3), (40, 3)]
    assert grid["methods"] == [*ex.METHODS, *ex.EXTRA_METHODS]
    assert grid["gammas"] == (1.0, 1.2, 1.5, 2.0, 2.5, 3.0)
    full = ex.default_grid("lfw", full=True)
    assert len(full["subsets"]) == 8 and full["base_params"]["hidden_channels"][0] == 512
    assert ex.default_grid("auto")["data"] in ("lfw", "synthetic")
    with pytest.raises(ValueError):
        ex.default_grid("mnist")
    quick = ex.load_data("synthetic", quick=True)
    assert quick["data"] == "synthetic"
    assert not set(quick["y_train"]) & set(quick["y_test"])


def test_lfw_subset_sizes(lfw_dir):
    d = ex.load_data("lfw", lfw_dir)
    sizes = ex.describe_subsets(d["y_train"], ex.default_grid("lfw")["subsets"])
    assert [(s["n_samples"], s["n_identities"]) for s in sizes] == [(4983, 2998), (5667, 2998)]


def test_results_round_trip(tmp_path):
    path = tmp_path / "r.json"
    ex.save_results(path, {"grid": [{"edge_ap": math.nan, "params": {"k": (1, 2)}}]})
    assert ex.load_results(path) == {"grid": [{"edge_ap": None, "params": {"k": [1, 2]}}]}
    with pytest.raises(FileExistsError):
        ex.save_results(path, {})
    with pytest.raises(FileNotFoundError):
        ex.load_results(tmp_path / "missing.json")


def test_plot_gamma_sweep(tmp_path):
    pytest.importorskip("matplotlib")
    recs = [
        {"method": "L-GCN", "sampler": "topk", "gamma": 1.0, "edge_ap": 0.90, "subset": "(H2, S2)"},
        {"method": "RS", "sampler": "rs", "gamma": 1.0, "edge_ap": 0.91, "subset": "(H2, S2)"},
        {"method": "RS", "sampler": "rs", "gamma": 2.0, "edge_ap": 0.90, "subset": "(H2, S2)"},
        {"method": "RIWS", "sampler": "riws", "gamma": 2.0, "edge_ap": 0.93, "subset": "(H2, S2)"},
    ]
    path = ex.plot_gamma_sweep(recs, tmp_path / "gamma.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        ex.plot_gamma_sweep(recs, path)
    assert path.read_bytes() == data
    ex.plot_gamma_sweep(recs, path, overwrite=True)


def test_missing_matplotlib_is_explained(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'linkage-gcn\[plot\]'"):
        ex.plot_gamma_sweep(
            [{"method": "RS", "sampler": "rs", "gamma": 1.0, "edge_ap": 0.9}], tmp_path / "g.png"
        )
    code = main(["imbalance", "--data", "synthetic", "--quick", "--plot", str(tmp_path / "g.png")])
    assert code == 2


def test_cli_imbalance(tmp_path, capsys):
    out, table, plot = tmp_path / "r.json", tmp_path / "t.md", tmp_path / "g.png"
    args = [
        "imbalance", "--data", "synthetic", "--quick", "--subsets", "2:2", "5:3",
        "--methods", "L-GCN", "RIWS", "--gammas", "1", "2", "--epochs", "1",
        "--out", str(out), "--table_out", str(table), "--threads", "1", "--quiet",
    ]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "(H2, S2): " in text and "edge AP on the test set" in text and "B-Cubed F" in text
    assert "gamma sweep on (H2, S2)" in text and "L-GCN baseline" in text
    results = json.loads(out.read_text())
    assert results["complete"] and results["data"] == "synthetic"
    assert len(results["grid"]) == 4 and len(results["sweep"]) == 5
    assert results["base_params"]["epochs"] == 1
    assert [s["subset"] for s in results["subsets"]] == ["(H2, S2)", "(H5, S3)"]
    assert "### Edge AP" in table.read_text()
    # nothing is overwritten, and the refusal comes before any run
    before = out.read_bytes()
    assert main([*args, "--plot", str(plot)]) == 2
    err = capsys.readouterr()
    assert "already exists" in err.err and "edge AP" not in err.out
    assert out.read_bytes() == before and not plot.exists()


def test_cli_imbalance_errors(tmp_path, capsys):
    base = ["imbalance", "--data", "synthetic", "--quick"]
    assert main([*base, "--subsets", "10"]) == 2
    assert "M:N" in capsys.readouterr().err
    assert main([*base, "--methods", "OHEM"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main([*base, "--no-sweep", "--plot", str(tmp_path / "g.png")]) == 2
    assert main([*base, "--threads", "0"]) == 2
    assert main([*base, "--out", str(tmp_path / "missing" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
