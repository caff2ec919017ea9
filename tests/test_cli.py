import argparse
import errno
import json
import logging
import re
import sys

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from linkage_gcn import _files
from linkage_gcn import cli as cli_module
from linkage_gcn.cli import build_parser, main
from linkage_gcn.datasets import make_identities, split_identities
from linkage_gcn.io import load_knn, load_labels

knn_module = sys.modules["linkage_gcn.knn"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    X, y = make_identities(60, max_size=15, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    for name, idx in (("train", train), ("test", test)):
        np.save(root / f"{name}_features.npy", X[idx])
        np.save(root / f"{name}_labels.npy", y[idx])
    return root


@pytest.fixture(scope="module")
def model(files, tmp_path_factory):
    """A checkpoint trained through the command line (tiny settings)."""
    path = tmp_path_factory.mktemp("model") / "model.pt"
    code = main(["train", "--feat_path", str(files / "train_features.npy"),
                 "--labels_path", str(files / "train_labels.npy"), "--checkpoint", str(path),
                 "--k-at-hop", "4", "2", "--active_connection", "2", "--epochs", "1",
                 "--quiet"])  # fmt: skip
    assert code == 0
    return path


def bcubed_fscore(y, pred):
    """B-Cubed F written out from its definition, item by item."""
    precision = recall = 0.0
    for i in range(len(y)):
        cluster, identity = pred == pred[i], y == y[i]
        both = (cluster & identity).sum()
        precision += both / cluster.sum()
        recall += both / identity.sum()
    precision, recall = precision / len(y), recall / len(y)
    return 2 * precision * recall / (precision + recall)


def error_line(capsys, command):
    """The whole of standard error, which must be exactly one error line."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"linkage-gcn {command}: error: ")
    return lines[0]


# ------------------------------------------------------------------ the normal path


def test_knn_command_matches_sklearn(files, tmp_path, capsys):
    out = tmp_path / "knn.npy"
    assert main(["knn", "--feat_path", str(files / "train_features.npy"), "-k", "10",
                 "--out", str(out), "--threads", "1"]) == 0  # fmt: skip
    assert "kNN of" in capsys.readouterr().out
    table = np.load(out)
    np.testing.assert_array_equal(table[:, 0], np.arange(len(table)))
    index = load_knn(out)
    X = np.load(files / "train_features.npy").astype(np.float64)
    ref_dist, _ = (
        NearestNeighbors(n_neighbors=11, metric="cosine", algorithm="brute").fit(X).kneighbors(X)
    )
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    sims = np.einsum("id,ikd->ik", Xn, Xn[index])
    # the same neighbours up to ties: their similarities are sklearn's 10 best, in order
    np.testing.assert_allclose(sims, 1 - ref_dist[:, 1:], atol=1e-5)
    assert not (index == np.arange(len(index))[:, None]).any()


def test_train_test_evaluate_round_trip(files, tmp_path, capsys):
    r = files
    assert main(["knn", "--feat-path", str(r / "test_features.npy"), "-k", "10",
                 "--out", str(tmp_path / "test_knn.npy"), "--quiet"]) == 0  # fmt: skip
    assert main(["knn", "--feat-path", str(r / "train_features.npy"), "-k", "10",
                 "--out", str(tmp_path / "train_knn.npy"), "--quiet"]) == 0  # fmt: skip
    capsys.readouterr()
    # the reference's training flags
    code = main([
        "train", "--feat_path", str(r / "train_features.npy"),
        "--knn_graph_path", str(tmp_path / "train_knn.npy"),
        "--labels_path", str(r / "train_labels.npy"),
        "--checkpoint", str(tmp_path / "model.pt"), "--k-at-hop", "4", "2",
        "--active_connection", "2", "--epochs", "2", "--gamma", "2.0", "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 1: loss" in out and "epoch 2: loss" in out and "saved" in out
    assert (tmp_path / "model.pt").stat().st_size > 0
    # the reference's test flags
    code = main([
        "test", "--val_feat_path", str(r / "test_features.npy"),
        "--val_knn_graph_path", str(tmp_path / "test_knn.npy"),
        "--val_labels_path", str(r / "test_labels.npy"),
        "--checkpoint", str(tmp_path / "model.pt"), "--out", str(tmp_path / "pred.npy"),
        "--metrics-out", str(tmp_path / "metrics.json"), "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    y = np.load(r / "test_labels.npy")
    pred = load_labels(tmp_path / "pred.npy")
    assert pred.shape == y.shape
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["bcubed_fscore"] == pytest.approx(bcubed_fscore(y, pred), abs=1e-9)
    assert metrics["n_clusters"] == len(np.unique(pred))
    assert f"fscore {metrics['bcubed_fscore']:.4f}" in out and f"NMI: {metrics['nmi']:.4f}" in out
    # evaluate a saved prediction: the same numbers, and a metrics file
    code = main(["evaluate", "--labels_path", str(r / "test_labels.npy"),
                 "--pred_path", str(tmp_path / "pred.npy"),
                 "--metrics-out", str(tmp_path / "eval.json")])  # fmt: skip
    assert code == 0
    assert f"fscore {metrics['bcubed_fscore']:.4f}" in capsys.readouterr().out
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["bcubed_fscore"] == pytest.approx(metrics["bcubed_fscore"])
    # a test-time threshold of 0 keeps every scored link: fewer, larger clusters
    code = main(["test", "--feat_path", str(r / "test_features.npy"), "--labels_path",
                 str(r / "test_labels.npy"), "--checkpoint", str(tmp_path / "model.pt"),
                 "--merge", "threshold", "--threshold", "0", "--out",
                 str(tmp_path / "loose.npy"), "--quiet"])  # fmt: skip
    assert code == 0
    loose = load_labels(tmp_path / "loose.npy")
    assert len(np.unique(loose)) < len(np.unique(pred))


def test_nothing_is_overwritten_by_accident(files, model, tmp_path, capsys):
    target = tmp_path / "pred.npy"
    np.save(target, np.zeros(3))
    before = target.read_bytes()
    code = main(["predict", "--feat_path", str(files / "test_features.npy"),
                 "--checkpoint", str(model), "--out", str(target), "--quiet"])  # fmt: skip
    assert code == 2
    line = error_line(capsys, "predict")
    assert f"--out {target} already exists; pass --overwrite to replace it" in line
    assert target.read_bytes() == before
    code = main(["predict", "--feat_path", str(files / "test_features.npy"),
                 "--checkpoint", str(model), "--out", str(target), "--quiet",
                 "--overwrite"])  # fmt: skip
    assert code == 0 and target.read_bytes() != before


# ------------------------------------------------------------------ failures: one line, exit code


def test_outputs_are_checked_before_any_work(files, model, tmp_path, capsys, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr(knn_module, "knn", must_not_run)
    monkeypatch.setattr(cli_module, "_report", must_not_run)
    exists = tmp_path / "exists"
    exists.write_text("x")
    missing = str(tmp_path / "missing.npy")  # an input that would fail if it were read
    cases = [
        ("knn", ["--feat_path", missing, "--out", str(exists)], "--out"),
        ("train", ["--feat_path", missing, "--labels_path", missing,
                   "--checkpoint", str(exists)], "--checkpoint"),
        ("test", ["--feat_path", missing, "--checkpoint", str(model), "--out",
                  str(tmp_path / "new.npy"), "--labels_path", missing,
                  "--metrics-out", str(exists)], "--metrics-out"),
        ("evaluate", ["--labels_path", missing, "--pred_path", missing,
                      "--metrics_out", str(exists)], "--metrics-out"),
        ("imbalance", ["--data", "synthetic", "--quick", "--out", str(exists)], "--out"),
    ]  # fmt: skip
    for command, args, flag in cases:
        assert main([command, *args]) == 2, command
        line = error_line(capsys, command)
        assert f"{flag} {exists} already exists; pass --overwrite to replace it" in line
        assert "overwrite=True" not in line


@pytest.mark.parametrize(
    ("make_out", "code", "match"),
    [
        (lambda d: d / "no_such_dir" / "k.npy", 2, "directory .*no_such_dir does not exist"),
        (lambda d: d, 2, "is a directory"),
    ],
)
def test_bad_output_paths(files, tmp_path, capsys, make_out, code, match):
    out = make_out(tmp_path)
    argv = ["knn", "--feat_path", str(files / "train_features.npy"), "--out", str(out)]
    assert main(argv) == code
    line = error_line(capsys, "knn")
    assert "--out" in line
    assert re.search(match, line), line


def test_output_that_is_an_input(files, tmp_path, capsys):
    feat = tmp_path / "f.npy"
    feat.write_bytes((files / "train_features.npy").read_bytes())
    assert main(["knn", "--feat_path", str(feat), "--out", str(feat), "--overwrite"]) == 2
    assert "--out" in error_line(capsys, "knn") and feat.read_bytes().startswith(b"\x93NUMPY")


def test_unwritable_directory_is_refused_early(files, tmp_path, capsys, monkeypatch):
    # tests run as root, for whom every directory is writable: os.access says otherwise
    monkeypatch.setattr(cli_module.os, "access", lambda path, mode: False)
    out = tmp_path / "k.npy"
    assert main(["knn", "--feat_path", str(files / "train_features.npy"), "--out", str(out)]) == 1
    line = error_line(capsys, "knn")
    assert f"--out {out}: directory {tmp_path} is not writable" in line


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (OSError(errno.EROFS, "Read-only file system"), "Read-only file system"),
    ],
)
def test_write_failures_are_one_line(files, tmp_path, capsys, monkeypatch, error, words):
    def failing_publish(tmp, path, overwrite):
        raise error

    monkeypatch.setattr(_files, "_publish", failing_publish)
    out = tmp_path / "k.npy"
    argv = ["knn", "--feat_path", str(files / "train_features.npy"), "-k", "3", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 1
    line = error_line(capsys, "knn")
    assert f"--out {out}: cannot write the file ({words})" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with pytest.raises(type(error)):
        main([*argv, "--quiet", "--debug"])


def test_write_failure_of_evaluate_and_test(files, model, tmp_path, capsys, monkeypatch):
    def full_disk(tmp, path, overwrite):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_files, "_publish", full_disk)
    y = str(files / "test_labels.npy")
    assert main(["evaluate", "--labels_path", y, "--pred_path", y,
                 "--metrics-out", str(tmp_path / "m.json")]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "linkage-gcn evaluate: error: --metrics-out" in err and "No space left" in err
    assert main(["test", "--feat_path", str(files / "test_features.npy"), "--checkpoint",
                 str(model), "--out", str(tmp_path / "p.npy"), "--quiet"]) == 1  # fmt: skip
    assert "--out" in error_line(capsys, "test")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"\x93NUMPY\x01\x00", "truncated or corrupt"),
        (np.full((5, 3), np.nan), "NaN or infinity"),
    ],
)
def test_bad_input_files(tmp_path, capsys, content, match):
    path = tmp_path / "features.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    assert main(["knn", "--feat_path", str(path), "--out", str(tmp_path / "k.npy")]) == 2
    line = error_line(capsys, "knn")
    assert f"--feat-path {path}" in line and match in line
    assert not (tmp_path / "k.npy").exists()


def test_mismatched_inputs_name_their_flags(files, tmp_path, capsys):
    short = tmp_path / "short.npy"
    np.save(short, np.zeros(5, dtype=int))
    y = str(files / "test_labels.npy")
    assert main(["evaluate", "--labels_path", y, "--pred_path", str(short)]) == 2
    line = error_line(capsys, "evaluate")
    assert "--pred-path" in line and "--labels-path" in line and "has 5 labels" in line


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["test", "--checkpoint", "m.pt", "--feat_path", "f.npy", "--threshold", "2"],
         "--threshold"),
        (["test", "--checkpoint", "m.pt", "--feat_path", "f.npy", "--threshold", "high"],
         "--threshold"),
        (["test", "--checkpoint", "m.pt", "--feat_path", "f.npy", "--step", "-1"], "--step"),
        (["knn", "--feat_path", "f.npy", "--out", "k.npy", "-k", "0"], "-k/--k"),
        (["knn", "--feat_path", "f.npy", "--out", "k.npy", "--threads", "0"], "--threads"),
        (["train", "--feat_path", "f", "--labels_path", "l", "--checkpoint", "c",
          "--lr", "0"], "--lr"),
        (["imbalance", "--subsets", "10-3"], "--subsets"),
        (["knn", "--feat_path", "f.npy"], "--out"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(capsys, argv, flag):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    line = error_line(capsys, argv[0])
    assert flag in line and f"see 'linkage-gcn {argv[0]} --help'" in line


def test_library_errors_name_flags_not_keywords():
    parser = build_parser()
    flags = cli_module._flag_names(parser, "test")
    args = argparse.Namespace(out="o.npy")
    message = cli_module._message
    assert message(ValueError("threshold must be a number in [0, 1], got 2."), flags, args) == (
        "--threshold must be a number in [0, 1], got 2."
    )
    text = message(ValueError("n_neighbors=3 is narrower than k_at_hop needs."), flags, args)
    assert text == "n_neighbors=3 is narrower than --k-at-hop needs."
    text = message(FileExistsError("o.npy already exists; pass overwrite=True to replace it."),
                   flags, args)  # fmt: skip
    assert text == "--out o.npy already exists; pass --overwrite to replace it."
    # words that only look like parameters are left alone, and so are paths
    text = message(ValueError("/data/max_size/x.npy: the propagation merge is slow"), flags, args)
    assert text == "/data/max_size/x.npy: the propagation merge is slow"


def test_test_with_nothing_to_do_returns_before_loading(tmp_path, capsys):
    missing_model = str(tmp_path / "no_model.pt")
    assert main(["test", "--checkpoint", missing_model, "--feat_path", "f.npy"]) == 2
    line = error_line(capsys, "test")
    assert "nothing to do" in line and "--out" in line and "--val-labels-path" in line
    assert main(["test", "--checkpoint", missing_model, "--feat_path", "f.npy",
                 "--metrics-out", str(tmp_path / "m.json")]) == 2  # fmt: skip
    assert "--metrics-out needs the true labels" in error_line(capsys, "test")
    assert main(["test", "--checkpoint", missing_model, "--out", "p.npy"]) == 2
    assert "--val-feat-path" in error_line(capsys, "test")


def test_missing_checkpoint(files, tmp_path, capsys):
    missing = tmp_path / "no_model.pt"
    code = main(["test", "--checkpoint", str(missing), "--feat_path",
                 str(files / "test_features.npy"), "--out", str(tmp_path / "p.npy")])  # fmt: skip
    assert code == 2
    assert f"--checkpoint {missing}" in error_line(capsys, "test")


def test_debug_reraises(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["knn", "--feat_path", str(tmp_path / "f.npy"), "--out", "k.npy", "--debug"])


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [(KeyboardInterrupt(), 130, "interrupted"), (MemoryError(), 1, "out of memory")],
)
def test_interrupt_and_memory_error(files, tmp_path, capsys, monkeypatch, error, code, words):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(knn_module, "knn", fail)
    argv = ["knn", "--feat_path", str(files / "train_features.npy"), "-k", "3", "--out",
            str(tmp_path / "k.npy"), "--quiet"]  # fmt: skip
    assert main(argv) == code
    assert words in error_line(capsys, "knn")


# ------------------------------------------------------------------ help, logging, threads


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_and_option_is_documented():
    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        assert sub.description and len(sub.description) > 20, name
        text = sub.format_help()
        for action in sub._actions:
            if action.dest == "help" or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings}: no help"
            if action.default not in (None, False) and not action.required:
                shown = action.default
                if isinstance(shown, list):
                    shown = " ".join(map(str, shown))
                assert f"(default: {shown})" in " ".join(text.split()), (name, action.dest)


def test_computing_commands_take_threads():
    subs = _subparsers(build_parser())
    for name in ("knn", "train", "test", "predict", "demo", "imbalance"):
        assert "threads" in {a.dest for a in subs[name]._actions}, name
    assert "threads" not in {a.dest for a in subs["evaluate"]._actions}


def test_threads_apply_to_torch_and_faiss_and_are_restored(files, tmp_path, monkeypatch):
    seen = {}
    real_knn = knn_module.knn

    def spy(*args, **kwargs):
        seen["torch"] = torch.get_num_threads()
        try:
            import faiss
        except ImportError:  # pragma: no cover - faiss is a test dependency
            pass
        else:
            seen["faiss"] = faiss.omp_get_max_threads()
        return real_knn(*args, **kwargs)

    monkeypatch.setattr(knn_module, "knn", spy)
    before = torch.get_num_threads()
    n = 2 if before == 1 else 1  # differs from the current setting, so restoring shows
    argv = ["knn", "--feat_path", str(files / "train_features.npy"), "-k", "3",
            "--out", str(tmp_path / "k.npy"), "--threads", str(n), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert seen["torch"] == n and seen.get("faiss", n) == n
    assert torch.get_num_threads() == before


def test_log_lines_go_to_stderr_unless_quiet(files, tmp_path, capsys):
    logger = logging.getLogger("linkage_gcn")
    state = (list(logger.handlers), logger.level, logger.propagate)
    argv = ["knn", "--feat_path", str(files / "train_features.npy"), "-k", "3"]
    assert main([*argv, "--out", str(tmp_path / "a.npy")]) == 0
    err = capsys.readouterr().err
    assert "INFO kNN search: backend 'auto' chose 'torch'" in err
    assert main([*argv, "--out", str(tmp_path / "b.npy"), "--quiet"]) == 0
    assert "INFO" not in capsys.readouterr().err
    assert (list(logger.handlers), logger.level, logger.propagate) == state


def test_training_log_lines_reach_stderr(files, tmp_path, capsys, monkeypatch):
    # whatever the training loop logs on the package's logger shows up, once, on stderr
    from linkage_gcn.estimator import LinkageClusterer

    real_fit = LinkageClusterer.fit

    def fit(self, *args, **kwargs):
        logging.getLogger("linkage_gcn.training").info("epoch 1/1: loss 0.5")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(LinkageClusterer, "fit", fit)
    code = main(["train", "--feat_path", str(files / "train_features.npy"),
                 "--labels_path", str(files / "train_labels.npy"), "--checkpoint",
                 str(tmp_path / "m.pt"), "--k-at-hop", "4", "2", "--active_connection", "2",
                 "--epochs", "1"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().err.count("INFO epoch 1/1: loss 0.5") == 1


# ------------------------------------------------------------------ demo


def test_demo_runs_small(capsys, monkeypatch):
    from linkage_gcn import demo

    used = {}
    real = demo.compare_with_baseline

    def spy(X_train, y_train, X_test, y_test, clusterer=None, **kwargs):
        used.update(clusterer.get_params())
        used["n_train"], used["n_test"] = len(X_train), len(X_test)
        return real(X_train, y_train, X_test, y_test, clusterer, **kwargs)

    monkeypatch.setattr(demo, "compare_with_baseline", spy)
    assert main(["demo", "--n-identities", "40", "--epochs", "1", "--quick", "--quiet",
                 "--threads", "1", "--seed", "3"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "B-Cubed F" in out and "kNN threshold" in out and "by identity size" in out
    assert f"training on {used['n_train']} of them, clustering the {used['n_test']}" in out
    assert used["epochs"] == 1 and used["random_state"] == 3
    assert {k: tuple(used[k]) for k in demo.QUICK_PARAMS} == demo.QUICK_PARAMS


# ------------------------------------------------------------------ figures (--plot)


def must_not_run(*args, **kwargs):
    raise AssertionError("computed before checking the outputs")


def test_test_plot_writes_the_figures_once(files, model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from linkage_gcn.plot import REPORT_FIGURES

    figures = tmp_path / "figures"  # created by the command
    argv = ["test", "--feat_path", str(files / "test_features.npy"),
            "--labels_path", str(files / "test_labels.npy"), "--checkpoint", str(model),
            "--plot", str(figures), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    assert f"figures -> {figures}" in capsys.readouterr().out
    assert sorted(p.name for p in figures.iterdir()) == sorted(REPORT_FIGURES.values())
    first = figures / "cluster_sizes.png"
    data = first.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setattr(cli_module, "_report", must_not_run)
    (figures / "history.png").unlink()
    assert main(argv) == 2
    line = error_line(capsys, "test")
    assert f"--plot {first} already exists; pass --overwrite to replace it" in line
    assert first.read_bytes() == data and not (figures / "history.png").exists()


@pytest.mark.parametrize(
    ("labels", "make_dir", "match"),
    [
        (False, lambda d: d / "figures", "--plot needs the true labels"),
        (True, lambda d: d / "exists", r"--plot .*exists is not a directory"),
        (True, lambda d: d / "missing" / "figures", r"--plot .*directory .*missing does not"),
    ],
)
def test_test_plot_errors(files, model, tmp_path, capsys, monkeypatch, labels, make_dir, match):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(cli_module, "_report", must_not_run)
    (tmp_path / "exists").write_text("x")
    argv = ["test", "--feat_path", str(files / "test_features.npy"), "--checkpoint", str(model),
            "--out", str(tmp_path / "pred.npy"), "--plot", str(make_dir(tmp_path))]  # fmt: skip
    if labels:
        argv += ["--labels_path", str(files / "test_labels.npy")]
    assert main(argv) == 2
    assert re.search(match, error_line(capsys, "test"))
    assert not (tmp_path / "pred.npy").exists()


def test_plot_without_matplotlib_fails_before_any_work(files, model, tmp_path, capsys,
                                                       monkeypatch):  # fmt: skip
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(cli_module, "_report", must_not_run)
    monkeypatch.setattr("linkage_gcn.demo.run_demo", must_not_run)
    figures = str(tmp_path / "figures")
    test = ["test", "--feat_path", str(files / "test_features.npy"), "--checkpoint", str(model),
            "--labels_path", str(files / "test_labels.npy"), "--plot", figures]  # fmt: skip
    for command, argv in (("test", test), ("demo", ["demo", "--quick", "--plot", figures])):
        assert main(argv) == 2
        assert "pip install 'linkage-gcn[plot]'" in error_line(capsys, command)
    assert not (tmp_path / "figures").exists()


def test_demo_plot_writes_the_figures_once(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from linkage_gcn import demo
    from linkage_gcn.plot import REPORT_FIGURES

    figures = tmp_path / "figures"
    argv = ["demo", "--n-identities", "40", "--epochs", "1", "--quick", "--quiet",
            "--threads", "1", "--plot", str(figures)]  # fmt: skip
    assert main(argv) == 0
    assert f"figures -> {figures}" in capsys.readouterr().out
    assert sorted(p.name for p in figures.iterdir()) == sorted(REPORT_FIGURES.values())
    monkeypatch.setattr(demo, "make_identities", must_not_run)
    with pytest.raises(FileExistsError, match="already exists"):
        demo.run_demo(40, epochs=1, plot=figures)
    monkeypatch.setattr(demo, "run_demo", must_not_run)
    assert main(argv) == 2
    assert "already exists; pass --overwrite to replace it" in error_line(capsys, "demo")


def test_merge_and_precision_options_reach_the_estimator():
    from linkage_gcn.cli import _merge_overrides, build_parser

    args = build_parser().parse_args(
        ["test", "--checkpoint", "m.pt", "--val-feat-path", "x.npy", "--out", "o.npy",
         "--merge", "chinese-whispers", "--precision", "bf16"]
    )
    assert _merge_overrides(args) == {"merge": "chinese-whispers", "precision": "bf16"}
    from linkage_gcn.nn import PRECISIONS

    for precision in PRECISIONS:  # the parser's choices follow the library's
        args = build_parser().parse_args(
            ["predict", "--checkpoint", "m.pt", "--val-feat-path", "x", "--out", "o.npy",
             "--precision", precision]
        )  # fmt: skip
        assert _merge_overrides(args) == {"precision": precision}
    args = build_parser().parse_args(["test", "--checkpoint", "m.pt", "--val-feat-path", "x"])
    assert _merge_overrides(args) == {}  # the saved model's settings stay
    with pytest.raises(SystemExit):
        build_parser().parse_args(["test", "--checkpoint", "m", "--precision", "fp16"])


def test_train_hidden_channels(files, tmp_path):
    from linkage_gcn import LinkageClusterer

    path = tmp_path / "narrow.pt"
    code = main(["train", "--feat_path", str(files / "train_features.npy"),
                 "--labels_path", str(files / "train_labels.npy"), "--checkpoint", str(path),
                 "--k-at-hop", "4", "2", "--active_connection", "2", "--epochs", "1",
                 "--hidden-channels", "16", "8", "--quiet"])  # fmt: skip
    assert code == 0
    est = LinkageClusterer.load(path)
    assert est.hidden_channels == (16, 8)
    assert [c.out_channels for c in est.model_.convs] == [16, 8]
