"""``linkage-gcn imbalance``: the command drives the experiments package end to end."""

import json
import sys

from linkage_gcn.cli import main


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
    assert [(r["subset"], r["method"]) for r in results["grid"]] == [
        (s, m) for s in ("(H2, S2)", "(H5, S3)") for m in ("L-GCN", "RIWS")
    ]
    assert [(r["method"], r["gamma"], r["reused"]) for r in results["sweep"]] == [
        ("L-GCN", 1.0, True), ("RS", 1.0, False), ("RS", 2.0, False),
        ("RIWS", 1.0, False), ("RIWS", 2.0, True),
    ]  # fmt: skip
    assert results["base_params"]["epochs"] == 1
    assert results["methods"]["RIWS"] == {"sampler": "riws", "gamma": 2.0, "loss": "ce"}
    assert [s["subset"] for s in results["subsets"]] == ["(H2, S2)", "(H5, S3)"]
    md = table.read_text()
    assert "### Edge AP" in md and "| Method | (H2, S2) | (H5, S3) | Avg |" in md
    # nothing is overwritten, and the refusal comes before any run
    before = out.read_bytes()
    assert main([*args, "--plot", str(plot)]) == 2
    err = capsys.readouterr()
    assert "already exists" in err.err and "edge AP" not in err.out
    assert out.read_bytes() == before and not plot.exists()


def _status(argv):
    """The exit status of the command, whether returned or raised by argparse."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_cli_imbalance_errors(tmp_path, capsys, monkeypatch):
    base = ["imbalance", "--data", "synthetic", "--quick"]
    assert _status([*base, "--subsets", "10"]) == 2
    assert "M:N" in capsys.readouterr().err
    assert _status([*base, "--methods", "OHEM"]) == 2
    assert "unknown method" in capsys.readouterr().err
    assert main([*base, "--no-sweep", "--plot", str(tmp_path / "g.png")]) == 2
    assert "--no-sweep" in capsys.readouterr().err
    assert _status([*base, "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "missing" / "r.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main([*base, "--plot", str(tmp_path / "g.png")]) == 2
    assert "linkage-gcn[plot]" in capsys.readouterr().err
