import argparse
import errno
import functools
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from linkage_gcn import _files
from linkage_gcn import cli as cli_module
from linkage_gcn.cli import build_parser, main
from linkage_gcn.datasets import make_identities
from linkage_gcn.io import load_knn, load_labels
from linkage_gcn.model_selection import split_identities

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
        "--active_connection", "2", "--epochs", "2", "--gamma", "2.0",
    ])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "trained on 76 samples, 2 epoch(s)" in captured.out and "saved" in captured.out
    for epoch in ("epoch 1/2: loss", "epoch 2/2: loss"):  # each epoch once, in the log
        assert (captured.out + captured.err).count(epoch) == 1, epoch
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
    shown = f"B-Cubed P/R/F {metrics['bcubed_precision']:.3f} / {metrics['bcubed_recall']:.3f} / "
    assert shown in out and f"NMI {metrics['nmi']:.3f}" in out
    assert out.count("B-Cubed P/R/F") == 2 and "NMI:" not in out  # with and without singletons
    # evaluate a saved prediction: the same numbers, and a metrics file
    code = main(["evaluate", "--labels_path", str(r / "test_labels.npy"),
                 "--pred_path", str(tmp_path / "pred.npy"),
                 "--metrics-out", str(tmp_path / "eval.json")])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert f"/ {metrics['bcubed_fscore']:.3f} |" in out and out.count("B-Cubed P/R/F") == 2
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


def forbid(fn):
    """``fn``'s stand-in that fails when called (its signature kept, for defaults read from it)."""

    @functools.wraps(fn)
    def must_not_run(*args, **kwargs):
        raise AssertionError(f"{fn.__name__} ran before the checks")

    return must_not_run


def test_outputs_are_checked_before_any_work(files, model, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(knn_module, "knn", forbid(knn_module.knn))
    monkeypatch.setattr(cli_module, "_report", forbid(cli_module._report))
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
        (["test", "--checkpoint", "m.pt", "--feat_path", "f.npy", "--precision", "fp16"],
         "--precision"),
        (["knn", "--feat_path", "f.npy", "--out", "k.npy", "--metric", "manhattan"], "--metric"),
        (["knn", "--feat_path", "f.npy", "--out", "k.npy", "-k", "two"], "-k/--k"),
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
    names = cli_module._names(_subparsers(build_parser())["test"])
    message = cli_module._message
    assert message(ValueError("threshold must be a number in [0, 1], got 2."), names) == (
        "--threshold must be a number in [0, 1], got 2."
    )
    text = message(ValueError("n_neighbors=3 is narrower than k_at_hop needs."), names)
    assert text == "--n-neighbors=3 is narrower than --k-at-hop needs."
    with pytest.raises(FileExistsError) as info, cli_module._file("--out", "o.npy"):
        raise FileExistsError("o.npy already exists; pass overwrite=True to replace it.")
    text = message(info.value, names)
    assert text == "--out o.npy already exists; pass --overwrite to replace it."
    # words that only look like parameters are left alone, and so are paths
    text = message(ValueError("/data/max_size/x.npy: the propagation merge is slow"), names)
    assert text == "/data/max_size/x.npy: the propagation merge is slow"
    # library arguments stand for the flag and file of the call that raised
    with pytest.raises(ValueError) as info, cli_module._roles(knn_index=("--knn-graph-path", "k")):
        raise ValueError("knn_index has 3 rows but X has 4 samples.")
    assert message(info.value, names) == "--knn-graph-path k has 3 rows but X has 4 samples."


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


def test_an_option_and_its_alias_must_agree(tmp_path, capsys):
    argv = ["test", "--checkpoint", str(tmp_path / "m.pt"), "--val_feat_path", "a.npy",
            "--feat_path", "b.npy", "--out", str(tmp_path / "p.npy")]  # fmt: skip
    assert main(argv) == 2
    assert "--feat-path is an alias of --val-feat-path; give one of them" in error_line(
        capsys, "test")  # fmt: skip


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
    @functools.wraps(knn_module.knn)  # the command reads its defaults
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

    @functools.wraps(real_knn)
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
    assert "INFO kNN" in err and "backend 'auto' chose 'torch'" in err
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
    from linkage_gcn import demo

    monkeypatch.setattr(demo, "run_demo", forbid(demo.run_demo))
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
    monkeypatch.setattr(demo, "run_demo", forbid(demo.run_demo))
    assert main(argv) == 2
    assert "already exists; pass --overwrite to replace it" in error_line(capsys, "demo")


def test_merge_and_precision_options_reach_the_estimator():
    from linkage_gcn.cli import _PREDICT_PARAMS, _given

    args = build_parser().parse_args(
        ["test", "--checkpoint", "m.pt", "--val-feat-path", "x.npy", "--out", "o.npy",
         "--merge", "chinese-whispers", "--precision", "bf16", "--threshold", "0.25"]
    )
    assert _given(args, _PREDICT_PARAMS) == {
        "merge": "chinese-whispers", "precision": "bf16", "threshold": 0.25
    }
    args = build_parser().parse_args(["test", "--checkpoint", "m.pt", "--val-feat-path", "x"])
    assert _given(args, _PREDICT_PARAMS) == {}  # the saved model's settings stay


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


# ------------------------------------------------------------------ options come from the library


def _option_help(sub, flag):
    """The help text of one option of a sub-command, on one line."""
    action = next(a for a in sub._actions if flag in a.option_strings)
    return " ".join(sub._get_formatter()._expand_help(action).split())


def test_version_and_help_import_neither_torch_nor_pyg():
    import subprocess

    code = (
        "import sys, contextlib, io\n"
        "from linkage_gcn.cli import main\n"
        "for argv in (['--version'], ['--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit as exc:\n"
        "            assert exc.code == 0, exc.code\n"
        "    assert out.getvalue(), argv\n"
        "loaded = [m for m in ('torch', 'torch_geometric') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_a_command_builds_its_options_only_when_it_runs():
    parser = build_parser(lazy=True)
    subs = _subparsers(parser)
    assert all(len(s._actions) == 1 for s in subs.values())  # --help only
    args = parser.parse_args(["evaluate", "--labels_path", "y", "--pred_path", "p"])
    assert args.labels_path == "y" and len(subs["evaluate"]._actions) > 1
    assert len(subs["train"]._actions) == 1


def test_every_loss_of_the_library_is_accepted_and_an_unknown_one_is_refused(capsys):
    base = ["train", "--feat_path", "f", "--labels_path", "l", "--checkpoint", "c"]
    assert build_parser().parse_args([*base, "--loss", "focal-fork"]).loss == "focal-fork"
    with pytest.raises(SystemExit) as info:
        main([*base, "--loss", "hinge"])
    assert info.value.code == 2
    line = error_line(capsys, "train")
    from linkage_gcn.losses import LOSSES

    assert "--loss" in line and "'hinge'" in line
    assert all(repr(name) in line for name in LOSSES)


def test_help_shows_the_estimators_default_for_every_model_option():
    import inspect

    from linkage_gcn import LinkageClusterer
    from linkage_gcn.cli import _NOT_MODEL_OPTIONS

    sub = _subparsers(build_parser())["train"]
    for name, p in inspect.signature(LinkageClusterer.__init__).parameters.items():
        if name in ("self", *_NOT_MODEL_OPTIONS):
            continue
        default = p.default
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
        flag = "--" + name.replace("_", "-")
        assert f"default: {shown})" in _option_help(sub, flag), flag
        assert build_parser().parse_args(
            ["train", "--feat_path", "f", "--labels_path", "l", "--checkpoint", "c"]
        ).__dict__[name] is None  # not given: the estimator's own default applies
    assert "(default: 0)" in _option_help(sub, "--seed")  # a 0 default is shown too
    assert "default: the saved model's" in _option_help(_subparsers(build_parser())["test"],
                                                         "--merge")  # fmt: skip


def test_every_estimator_parameter_reaches_the_estimator(files, tmp_path, monkeypatch):
    from linkage_gcn import LinkageClusterer

    seen = {}

    def fit(self, X, y, knn_index=None, resume=None):
        seen.update(self.get_params())
        raise KeyboardInterrupt

    monkeypatch.setattr(LinkageClusterer, "fit", fit)
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(tmp_path / "m.pt"),
            "--no-pivot-similarity", "--preprocessing", "center-l2", "--lr-decay", "0.1",
            "--sampler", "topk", "--merge-runs", "3", "--seed", "7", "--quiet"]  # fmt: skip
    assert main(argv) == 130
    assert seen["pivot_similarity"] is False and seen["preprocessing"] == "center-l2"
    assert seen["lr_decay"] == 0.1 and seen["sampler"] == "topk" and seen["merge_runs"] == 3
    assert seen["random_state"] == 7 and seen["epochs"] == LinkageClusterer().epochs


# ------------------------------------------------------------------ boundaries: before any work


@pytest.fixture
def no_training(monkeypatch):
    from linkage_gcn import LinkageClusterer

    monkeypatch.setattr(LinkageClusterer, "fit", forbid(LinkageClusterer.fit))
    monkeypatch.setattr(LinkageClusterer, "predict_edges", forbid(LinkageClusterer.predict_edges))
    monkeypatch.setattr(knn_module, "knn", forbid(knn_module.knn))


def test_missing_optional_packages_are_refused_before_any_work(
    files, model, tmp_path, capsys, monkeypatch, no_training
):
    import importlib.util

    real = importlib.util.find_spec
    missing = ("infomap", "faiss")
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in missing else real(name, *a))  # fmt: skip
    from linkage_gcn import LinkageClusterer

    feat, labels = str(files / "train_features.npy"), str(files / "train_labels.npy")
    faiss_model = tmp_path.parent / f"{tmp_path.name}_faiss.pt"  # a model saved on faiss
    LinkageClusterer.load(model).set_params(knn_backend="faiss").save(faiss_model)
    ckpt = tmp_path / "m.pt"
    train = ["train", "--feat_path", feat, "--labels_path", labels, "--checkpoint", str(ckpt)]
    test = ["test", "--checkpoint", str(model), "--feat_path", feat, "--out",
            str(tmp_path / "p.npy")]  # fmt: skip
    cases = [
        ([*train, "--merge", "infomap"], "--merge", "'infomap' package"),
        ([*test, "--merge", "infomap"], "--merge", "'infomap' package"),
        ([*train, "--knn-backend", "faiss-hnsw"], "--knn-backend 'faiss-hnsw'", "'faiss'"),
        (["knn", "--feat_path", feat, "--out", str(tmp_path / "k.npy"), "--backend", "faiss"],
         "--backend 'faiss'", "'faiss'"),
        (["add", "--checkpoint", str(model), "--state", str(tmp_path / "s.npz"), "--init",
          "--feat-path", feat, "--backend", "faiss"], "--backend 'faiss'", "'faiss'"),
        (["test", "--checkpoint", str(faiss_model), "--feat_path", feat, "--out",
          str(tmp_path / "p.npy")], "--knn-backend 'faiss'", "'faiss'"),
    ]  # fmt: skip
    for argv, flag, words in cases:
        assert main(argv) == 2, argv
        line = error_line(capsys, argv[0])
        assert flag in line and words in line and "not installed" in line, line
    assert list(tmp_path.iterdir()) == []


def test_input_files_are_checked_before_training(files, tmp_path, capsys, no_training):
    X = np.load(files / "train_features.npy")
    Xv = np.load(files / "test_features.npy")
    table = np.arange(len(X))[:, None] + np.arange(11)[None, :]
    table = table % len(X)  # self first, 10 neighbours
    np.save(tmp_path / "wide.npy", np.hstack([Xv, Xv]))
    np.save(tmp_path / "short.npy", table[:-5])
    np.save(tmp_path / "long.npy", np.vstack([table, table[:5]]))
    twice = table.copy()
    twice[3, 4] = 3
    np.save(tmp_path / "twice.npy", twice)
    np.save(tmp_path / "narrow.npy", table[:, :3])
    np.save(tmp_path / "val_narrow.npy", (np.arange(len(Xv))[:, None] + np.arange(3)) % len(Xv))
    base = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(tmp_path / "m.pt"),
            "--k-at-hop", "4", "2", "--active_connection", "2"]  # fmt: skip
    val = ["--val_feat_path", str(files / "test_features.npy")]
    cases = [
        ([*base, "--val_feat_path", str(tmp_path / "wide.npy")],
         rf"--val-feat-path {tmp_path}/wide.npy has 128 features per row but --feat-path "),
        ([*base, "--knn_graph_path", str(tmp_path / "short.npy")],
         r"--knn-graph-path \S+short.npy has 71 rows but 76"),
        ([*base, "--knn_graph_path", str(tmp_path / "long.npy")],
         r"--knn-graph-path \S+long.npy has 81 rows but 76"),
        ([*base, "--knn_graph_path", str(tmp_path / "narrow.npy")],
         r"--knn-graph-path \S+narrow.npy has 2 neighbours per row but 8 are needed "
         r"\(--k-at-hop, --active-connection"),
        ([*base, *val, "--val_knn_graph_path", str(tmp_path / "val_narrow.npy")],
         r"--val-knn-graph-path \S+val_narrow.npy has 2 neighbours per row but 4 are needed"),
        ([*base, "--knn_graph_path", str(tmp_path / "twice.npy")],
         r"--knn-graph-path \S+twice.npy row 3 lists itself .*\(a self-first kNN file lists "
         r"each row's own id once, in its first column\)"),
        ([*base, *val, "--val_labels_path", str(files / "train_labels.npy")],
         r"--val-labels-path \S+train_labels.npy has 76 "),
    ]  # fmt: skip
    for argv, match in cases:
        assert main(argv) == 2, argv
        line = error_line(capsys, "train")
        assert re.search(match, line), line
        assert "knn_index" not in line and "from_self_first" not in line and " X " not in line
    assert not (tmp_path / "m.pt").exists()


def test_one_file_given_to_two_flags_names_the_flag_that_failed(files, tmp_path, capsys,
                                                                 no_training):  # fmt: skip
    feat, labels = str(files / "train_features.npy"), str(files / "train_labels.npy")
    ckpt = str(tmp_path / "m.pt")
    argv = ["train", "--feat_path", feat, "--labels_path", feat, "--checkpoint", ckpt]
    assert main(argv) == 2
    assert error_line(capsys, "train").startswith(f"linkage-gcn train: error: --labels-path {feat}")
    argv = ["train", "--feat_path", feat, "--labels_path", labels, "--knn_graph_path", labels,
            "--checkpoint", ckpt]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys, "train")
    assert line.startswith(f"linkage-gcn train: error: --knn-graph-path {labels}")


def test_errors_of_training_name_flags_and_files(files, tmp_path, capsys):
    # a library error raised inside fit names the training files by their flags
    one = tmp_path / "one_identity.npy"
    np.save(one, np.zeros(76, dtype=np.int64))
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path", str(one),
            "--checkpoint", str(tmp_path / "m.pt"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys, "train")
    assert f"--labels-path {one} holds a single identity" in line, line


def test_a_diverging_training_names_lr_and_loss(files, tmp_path, capsys):
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(tmp_path / "m.pt"),
            "--k-at-hop", "4", "2", "--active_connection", "2", "--epochs", "1",
            "--hidden-channels", "8", "--lr", "1e6", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    line = error_line(capsys, "train")
    assert "--lr" in line and "--loss" in line and "lr=" not in line.replace("--lr=", "")
    assert not (tmp_path / "m.pt").exists()


# ------------------------------------------------------------------ test: the cut it applies


def test_test_says_which_cut_it_applies(files, model, tmp_path, capsys):
    from linkage_gcn import LinkageClusterer

    saved = LinkageClusterer.load(model).threshold_
    argv = ["test", "--checkpoint", str(model), "--feat_path", str(files / "test_features.npy"),
            "--quiet", "--merge", "threshold"]  # fmt: skip
    for name, extra, words in (
        ("saved", [], f"link threshold {saved:.4g}: the saved model's cut, calibrated on its "
         "training data"),
        ("auto", ["--threshold", "auto"], f"link threshold {saved:.4g}: the saved model's cut"),
        ("given", ["--threshold", "1"], "link threshold 1 (--threshold)"),
    ):  # fmt: skip
        assert main([*argv, *extra, "--out", str(tmp_path / f"{name}.npy")]) == 0
        assert words in capsys.readouterr().out
    # --threshold auto is the saved cut: the same labels as no --threshold
    assert np.array_equal(np.load(tmp_path / "saved.npy"), np.load(tmp_path / "auto.npy"))
    assert not np.array_equal(np.load(tmp_path / "saved.npy"), np.load(tmp_path / "given.npy"))


# ------------------------------------------------------------------ logging: once each


def test_progress_lines_show_once_and_quiet_hides_them(files, tmp_path, capsys, monkeypatch):
    from linkage_gcn import LinkageClusterer

    def fit(self, *args, **kwargs):
        logging.getLogger("linkage_gcn.progress").info("training: 10/40 steps, 2.0/s, ETA 15 s")
        logging.getLogger("linkage_gcn.progress").warning("something to see")
        raise KeyboardInterrupt

    monkeypatch.setattr(LinkageClusterer, "fit", fit)
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(tmp_path / "m.pt")]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("INFO training: 10/40 steps, 2.0/s, ETA 15 s") == 1
    assert main([*argv, "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "ETA" not in err and err.count("WARNING something to see") == 1


def test_python_warnings_become_one_log_line(files, tmp_path, capsys, monkeypatch):
    import warnings

    from linkage_gcn import LinkageClusterer

    def fit(self, *args, **kwargs):
        warnings.warn("a long\nwarning", UserWarning, stacklevel=1)
        raise KeyboardInterrupt

    monkeypatch.setattr(LinkageClusterer, "fit", fit)
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(tmp_path / "m.pt")]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(argv) == 130
    err = capsys.readouterr().err
    assert err.count("WARNING UserWarning: a long warning") == 1 and "warnings.warn" not in err


# ------------------------------------------------------------------ resume


def test_resume_reaches_fit_and_interrupts_say_how_to_continue(files, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    from linkage_gcn import LinkageClusterer

    seen = []

    def fit(self, X, y, knn_index=None, resume=None):
        seen.append(resume)
        if resume is not None:
            Path(resume).write_bytes(b"state")
        raise KeyboardInterrupt

    monkeypatch.setattr(LinkageClusterer, "fit", fit)
    ckpt = tmp_path / "m.pt"
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(ckpt), "--quiet"]  # fmt: skip
    assert main(argv) == 130
    assert "interrupted; nothing was saved; pass --resume" in error_line(capsys, "train")
    assert main([*argv, "--resume"]) == 130
    assert f"kept in --resume {ckpt}.resume: run the same command again" in error_line(
        capsys, "train")  # fmt: skip
    assert main([*argv, "--resume", str(tmp_path / "r.bin")]) == 130
    capsys.readouterr()
    assert seen == [None, Path(f"{ckpt}.resume"), tmp_path / "r.bin"]
    assert not ckpt.exists()
    # a resume file that is the checkpoint, an input or a directory is refused up front
    for bad, words in ((ckpt, "--resume and --checkpoint name the same file"),
                       (files / "train_labels.npy", "is also an input (--labels-path)"),
                       (tmp_path, "is a directory")):  # fmt: skip
        assert main([*argv, "--resume", str(bad)]) == 2
        assert words in error_line(capsys, "train")
    assert len(seen) == 3


def test_an_interrupted_training_continues_after_its_last_finished_epoch(files, tmp_path,
                                                                         capsys):  # fmt: skip
    class InterruptAtEpoch2(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("epoch 2/2"):
                raise KeyboardInterrupt

    ckpt = tmp_path / "m.pt"
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--checkpoint", str(ckpt), "--k-at-hop", "4",
            "2", "--active_connection", "2", "--epochs", "2", "--hidden-channels", "8",
            "--resume"]  # fmt: skip
    logger = logging.getLogger("linkage_gcn")
    handler = InterruptAtEpoch2()
    logger.addHandler(handler)
    try:
        assert main(argv) == 130
    finally:
        logger.removeHandler(handler)
    capsys.readouterr()
    assert not ckpt.exists() and Path(f"{ckpt}.resume").is_file()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2:" not in err and ckpt.is_file() and not Path(f"{ckpt}.resume").exists()
    from linkage_gcn import LinkageClusterer

    assert [h["epoch"] for h in LinkageClusterer.load(ckpt).history_] == [0, 1]


def test_training_off_a_terminal_logs_its_progress_once(files, tmp_path, capsys, monkeypatch):
    from linkage_gcn import _progress

    monkeypatch.setattr(_progress, "LOG_FIRST", 0.0)  # a line at every step
    monkeypatch.setattr(_progress, "LOG_EVERY", 0.0)
    argv = ["train", "--feat_path", str(files / "train_features.npy"), "--labels_path",
            str(files / "train_labels.npy"), "--k-at-hop", "4", "2", "--active_connection",
            "2", "--epochs", "1", "--hidden-channels", "8"]  # fmt: skip
    assert main([*argv, "--checkpoint", str(tmp_path / "a.pt")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "ETA" in line]
    assert lines and all(" INFO " in line for line in lines)
    assert len(set(lines)) == len(lines)  # one handler: no line twice
    assert main([*argv, "--checkpoint", str(tmp_path / "b.pt"), "--quiet"]) == 0
    assert "ETA" not in capsys.readouterr().err


def test_test_with_a_shipped_model_by_name_takes_any_width(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(15), 6)
    X = (rng.standard_normal((15, 512))[y] + 0.6 * rng.standard_normal((90, 512)))
    np.save(tmp_path / "f.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    out = tmp_path / "pred.npy"
    argv = ["test", "--checkpoint", "face-any", "--feat_path", str(tmp_path / "f.npy"),
            "--labels_path", str(tmp_path / "y.npy"), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    pred = np.load(out)
    assert pred.shape == (90,) and bcubed_fscore(y, pred) > 0.9
    # dlib-128 by name still refuses the wrong width, naming it
    assert main(["test", "--checkpoint", "dlib-128", "--feat_path", str(tmp_path / "f.npy"),
                 "--out", str(tmp_path / "p2.npy")]) == 2  # fmt: skip
    assert "512 features per row but the model --checkpoint dlib-128 expects 128" in (
        error_line(capsys, "test")
    )
