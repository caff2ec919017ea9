import json

import numpy as np
import pytest

from linkage_gcn.cli import main
from linkage_gcn.datasets import make_identities, split_identities
from linkage_gcn.io import load_knn, load_labels


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    X, y = make_identities(60, max_size=15, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    for name, idx in (("train", train), ("test", test)):
        np.save(root / f"{name}_features.npy", X[idx])
        np.save(root / f"{name}_labels.npy", y[idx])
    return root


def test_knn_train_test_evaluate_round_trip(files, capsys):
    r = files
    assert main(["knn", "--feat_path", str(r / "train_features.npy"), "-k", "10",
                 "--out", str(r / "train_knn.npy")]) == 0  # fmt: skip
    index = load_knn(r / "train_knn.npy")
    assert index.shape[1] == 10
    assert main(["knn", "--feat-path", str(r / "test_features.npy"), "-k", "10",
                 "--out", str(r / "test_knn.npy")]) == 0  # fmt: skip
    # the reference's training flags
    code = main([
        "train", "--feat_path", str(r / "train_features.npy"),
        "--knn_graph_path", str(r / "train_knn.npy"),
        "--labels_path", str(r / "train_labels.npy"),
        "--checkpoint", str(r / "model.pt"), "--k-at-hop", "4", "2",
        "--active_connection", "2", "--epochs", "1", "--gamma", "2.0", "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "saved" in out
    # the reference's test flags
    code = main([
        "test", "--val_feat_path", str(r / "test_features.npy"),
        "--val_knn_graph_path", str(r / "test_knn.npy"),
        "--val_labels_path", str(r / "test_labels.npy"),
        "--checkpoint", str(r / "model.pt"), "--out", str(r / "pred.npy"),
        "--metrics-out", str(r / "metrics.json"), "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "Bcubed: precision" in out and "NMI:" in out
    pred = load_labels(r / "pred.npy")
    assert pred.shape == np.load(r / "test_labels.npy").shape
    metrics = json.loads((r / "metrics.json").read_text())
    assert 0 <= metrics["bcubed_fscore"] <= 1 and "edge_ap" in metrics
    # evaluate a saved prediction
    assert main(["evaluate", "--labels_path", str(r / "test_labels.npy"),
                 "--pred_path", str(r / "pred.npy")]) == 0  # fmt: skip
    assert f"fscore {metrics['bcubed_fscore']:.4f}" in capsys.readouterr().out
    # nothing is overwritten by accident
    before = (r / "pred.npy").read_bytes()
    code = main(["predict", "--feat_path", str(r / "test_features.npy"),
                 "--checkpoint", str(r / "model.pt"), "--out", str(r / "pred.npy"),
                 "--quiet"])  # fmt: skip
    assert code == 2
    assert "already exists" in capsys.readouterr().err
    assert (r / "pred.npy").read_bytes() == before
    code = main(["train", "--feat_path", str(r / "train_features.npy"),
                 "--labels_path", str(r / "train_labels.npy"),
                 "--checkpoint", str(r / "model.pt")])  # fmt: skip
    assert code == 2 and "already exists" in capsys.readouterr().err
    # test-time overrides of the subgraph shape and merge
    code = main(["test", "--feat_path", str(r / "test_features.npy"), "--labels_path",
                 str(r / "test_labels.npy"), "--checkpoint", str(r / "model.pt"),
                 "--k-at-hop", "3", "2", "--merge", "propagation", "--max-size", "50",
                 "--quiet"])  # fmt: skip
    assert code == 0


def test_errors_are_one_line_not_tracebacks(files, capsys, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((5, 3), np.nan))
    assert main(["knn", "--feat_path", str(bad), "--out", str(tmp_path / "k.npy")]) == 2
    err = capsys.readouterr().err
    assert "NaN" in err and "Traceback" not in err
    assert main(["knn", "--feat_path", str(tmp_path / "missing.npy"), "--out", "x.npy"]) == 2
    assert "missing.npy" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train"])  # argparse: missing required flags


def test_demo_runs_small(capsys):
    assert main(["demo", "--n-identities", "80", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "B-Cubed F" in out and "kNN threshold" in out and "by identity size" in out
