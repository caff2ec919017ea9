"""``linkage-gcn add``: grow a saved clustering from the command line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from linkage_gcn import LinkageClusterer
from linkage_gcn.cli import build_parser, main
from linkage_gcn.datasets import make_identities
from linkage_gcn.incremental import IncrementalClusterer
from linkage_gcn.model_selection import split_identities

TINY = dict(
    k_at_hop=(8, 3), active_connection=3, epochs=1, hidden_channels=(16,), merge="threshold"
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("add")
    X, y = make_identities(120, random_state=0)
    train, test = split_identities(y, random_state=0)
    est = LinkageClusterer(random_state=0, **TINY).fit(X[train], y[train])
    est.save(root / "model.pt")
    Xt = X[test].astype(np.float32)
    np.save(root / "first.npy", Xt[:80])
    np.save(root / "second.npy", Xt[80:120])
    np.save(root / "wide.npy", np.hstack([Xt[:5], Xt[:5]]))
    return root, est, Xt


def error_line(capsys):
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("linkage-gcn add: error: ")
    return lines[0]


def run(root, state, feat, *extra):
    return main(["add", "--checkpoint", str(root / "model.pt"), "--state", str(state),
                 "--feat-path", str(root / feat), "--quiet", "--threads", "1", *extra])  # fmt: skip


def test_init_then_add_keeps_ids_and_matches_the_library(setup, tmp_path, capsys):
    root, est, Xt = setup
    state = tmp_path / "lib.npz"
    assert run(root, state, "first.npy", "--init", "--ids-out", str(tmp_path / "a.npy")) == 0
    assert "added 80 faces (face ids 0..79)" in capsys.readouterr().out
    ids_a = np.load(tmp_path / "a.npy")
    assert ids_a.shape == (80, 2) and ids_a[:, 0].tolist() == list(range(80))
    assert run(root, state, "second.npy", "--ids-out", str(tmp_path / "b.npy")) == 0
    ids_b = np.load(tmp_path / "b.npy")
    assert ids_b[:, 0].tolist() == list(range(80, 120))
    # the same as the library API
    library = IncrementalClusterer(est)
    library.add(Xt[:80])
    report = library.add(Xt[80:120])
    assert np.array_equal(ids_b[:, 1], report.labels)
    assert np.array_equal(IncrementalClusterer.load(state, est).labels_, library.labels_)


def test_out_state_leaves_the_input_untouched(setup, tmp_path):
    root, _, _ = setup
    state = tmp_path / "lib.npz"
    assert run(root, state, "first.npy", "--init") == 0
    before = state.read_bytes()
    assert run(root, state, "second.npy", "--out-state", str(tmp_path / "new.npz")) == 0
    assert state.read_bytes() == before
    assert (tmp_path / "new.npz").is_file()


def test_threshold_recuts(setup, tmp_path):
    root, est, _ = setup
    state = tmp_path / "lib.npz"
    assert run(root, state, "first.npy", "--init", "--threshold", "0.9") == 0
    assert IncrementalClusterer.load(state, est).threshold_ == 0.9
    assert run(root, state, "second.npy", "--threshold", "0.3") == 0
    assert IncrementalClusterer.load(state, est).threshold_ == 0.3


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing_state", "--state .*no such state file; pass --init"),
        ("init_existing", "--state .*already exists; drop --init"),
        ("ids_exist", "--ids-out .*already exists; pass --overwrite"),
        ("wide", "--feat-path .*has 128 features per row but the model"),
        ("corrupt", "--state .*not a linkage-gcn state file"),
        ("other_model", "--state .*another model"),
    ],
)
def test_errors_are_one_line_naming_the_flag(setup, tmp_path, capsys, case, match):
    root, _, _ = setup
    state = tmp_path / "lib.npz"
    extra = []
    feat = "second.npy"
    if case != "missing_state":
        assert run(root, state, "first.npy", "--init") == 0
    if case == "ids_exist":
        (tmp_path / "ids.npy").write_bytes(b"x")
        extra = ["--ids-out", str(tmp_path / "ids.npy")]
    elif case == "init_existing":
        extra = ["--init"]
    elif case == "wide":
        feat = "wide.npy"
    elif case == "corrupt":
        state.write_bytes(b"not a state")
    elif case == "other_model":
        X, y = make_identities(60, random_state=1)
        LinkageClusterer(random_state=1, **TINY).fit(X, y).save(tmp_path / "other.pt")
        extra = ["--checkpoint", str(tmp_path / "other.pt")]
    capsys.readouterr()
    before = state.read_bytes() if state.exists() else None
    assert run(root, state, feat, *extra) == 2
    line = error_line(capsys)
    assert re.search(match, line), line
    assert (state.read_bytes() if state.exists() else None) == before


def test_help_shows_defaults():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["add"]
    text = sub.format_help()
    assert "(default: auto)" in text and "--init" in text and "--threads" in text


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("state_is_dir", r"--state \S+ is a directory; give the state file"),
        ("init_state_is_dir", r"--state \S+ is a directory; give the state file"),
        ("ids_out_is_state", r"--ids-out and --state name the same file"),
        ("ids_out_is_input", r"--ids-out \S+first.npy is also an input \(--feat-path\)"),
        ("out_state_is_ids_out", r"--ids-out and --out-state name the same file"),
    ],
)
def test_bad_paths_are_refused_before_anything_is_written(setup, tmp_path, capsys, case, match):
    root, _, _ = setup
    state, extra = tmp_path / "lib.npz", ["--init"]
    if case == "state_is_dir":
        state, extra = tmp_path, []
    elif case == "init_state_is_dir":
        state = tmp_path
    elif case == "ids_out_is_state":
        extra = ["--init", "--ids-out", str(state)]
    elif case == "ids_out_is_input":
        extra = ["--init", "--ids-out", str(root / "first.npy")]
    elif case == "out_state_is_ids_out":
        extra = ["--init", "--out-state", str(tmp_path / "o.npz"), "--ids-out",
                 str(tmp_path / "o.npz")]  # fmt: skip
    before = sorted(tmp_path.iterdir()), (root / "first.npy").read_bytes()
    assert run(root, state, "first.npy", *extra) == 2
    line = error_line(capsys)
    assert re.search(match, line), line
    assert (sorted(tmp_path.iterdir()), (root / "first.npy").read_bytes()) == before
