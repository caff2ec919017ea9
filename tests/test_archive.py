"""The two file formats (checkpoint, state file) and their one ladder of checks."""

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from linkage_gcn import _archive
from linkage_gcn._archive import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    STATE_FORMAT,
    STATE_VERSION,
    read_checkpoint,
    read_state,
    write_checkpoint,
    write_state,
)
from linkage_gcn._version import __version__


def _checkpoint(path, **extra):
    """A checkpoint written without the module under test."""
    state = {"format": CHECKPOINT_FORMAT, "version": "0.2.0", "w": torch.arange(4.0), **extra}
    torch.save(state, path)
    return path


def _state(path, header=None, **arrays):
    """A state file written without the module under test."""
    header = {"format": STATE_FORMAT, "format_version": 1, "n": 3} if header is None else header
    raw = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, header=raw, **(arrays or {"x": np.arange(3.0)}))
    return path


def _corrupt(path, skip=256):
    """Flip bytes inside the largest entry's data, keeping the zip directory readable."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    at = info.header_offset
    name_len, extra_len = (int.from_bytes(raw[i : i + 2], "little") for i in (at + 26, at + 28))
    start = at + 30 + name_len + extra_len + skip  # inside the data
    for i in range(start, start + 8):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def _read(kind, path, **kwargs):
    return read_checkpoint(path, **kwargs) if kind == "checkpoint" else read_state(path, **kwargs)


def _raises(exc_type, match, kind, path, **kwargs):
    with pytest.raises(exc_type, match=match) as info:
        _read(kind, path, **kwargs)
    assert str(path) in str(info.value)
    return info


# ------------------------------------------------------------------ round trips and writers


def test_checkpoint_round_trip_records_format_and_version(tmp_path):
    state = {"w": torch.arange(3.0), "params": {"k": 2}, "labels_": torch.tensor([0, 1])}
    path = write_checkpoint(tmp_path / "m.pt", state)
    raw = torch.load(path, weights_only=True)  # an independent reader
    assert raw["format"] == CHECKPOINT_FORMAT and raw["format_version"] == CHECKPOINT_VERSION
    assert raw["version"] == __version__
    back = read_checkpoint(path, required=("w", "params"))
    assert back["params"] == {"k": 2} and back["w"].tolist() == [0.0, 1.0, 2.0]


def test_state_round_trip_records_format_and_version(tmp_path):
    arrays = {"x": np.arange(6.0).reshape(3, 2), "ids": np.array([4, 5, 9])}
    path = write_state(tmp_path / "s.npz", {"n": 3, "names": ["a"]}, arrays)
    assert path == tmp_path / "s.npz"  # exactly the name given
    with np.load(path) as z:  # an independent reader
        header = json.loads(bytes(z["header"]).decode())
        assert sorted(z.files) == ["header", "ids", "x"]
    assert header["format"] == STATE_FORMAT and header["format_version"] == STATE_VERSION
    assert header["linkage_gcn_version"] == __version__
    header, back = read_state(path, required_arrays=("x",), required_header=("n", "names"))
    assert header["names"] == ["a"] and sorted(back) == ["ids", "x"]
    np.testing.assert_array_equal(back["x"], arrays["x"])


@pytest.mark.parametrize("kind", ["checkpoint", "state"])
def test_writers_never_replace_a_file_unless_asked(tmp_path, kind):
    path = tmp_path / "f"
    path.write_bytes(b"the user's file")
    if kind == "checkpoint":
        write = lambda **kw: write_checkpoint(path, {"w": torch.ones(1)}, **kw)  # noqa: E731
    else:
        write = lambda **kw: write_state(path, {}, {"x": np.ones(1)}, **kw)  # noqa: E731
    with pytest.raises(FileExistsError, match="already exists"):
        write()
    assert path.read_bytes() == b"the user's file"
    write(overwrite=True)
    _read(kind, path)
    assert sorted(os.listdir(tmp_path)) == ["f"]  # no temporary file left behind


def test_writers_refuse_their_reserved_names(tmp_path):
    with pytest.raises(ValueError, match="format"):
        write_checkpoint(tmp_path / "a", {"format": "mine"})
    with pytest.raises(ValueError, match="format_version"):
        write_state(tmp_path / "b", {"format_version": 7}, {})
    with pytest.raises(ValueError, match="header"):
        write_state(tmp_path / "c", {}, {"header": np.zeros(2)})
    with pytest.raises(ValueError, match="Python objects"):
        write_state(tmp_path / "d", {}, {"x": np.array([{}], dtype=object)})
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ the ladder, both formats

KINDS = ["checkpoint", "state"]
WHAT = {"checkpoint": "checkpoint", "state": "state file"}
CONTAINER = {"checkpoint": "a PyTorch archive", "state": "an .npz archive"}


@pytest.mark.parametrize("kind", KINDS)
def test_rung_not_a_file(tmp_path, kind):
    _raises(FileNotFoundError, f"no such {WHAT[kind]}", kind, tmp_path / "missing")
    (tmp_path / "folder").mkdir()
    _raises(FileNotFoundError, "is a directory", kind, tmp_path / "folder")
    with pytest.raises(TypeError, match="path-like"):
        _read(kind, 3)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions")
@pytest.mark.parametrize("kind", KINDS)
def test_rung_unreadable(tmp_path, kind):
    path = tmp_path / "locked"
    path.write_bytes(b"x")
    path.chmod(0)
    try:
        _raises(PermissionError, "permission denied", kind, path)
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize("kind", KINDS)
def test_rung_unreadable_as_another_user(tmp_path, kind, monkeypatch):
    # tests run as root, who reads anything: the open is made to fail as it would for others
    path = _checkpoint(tmp_path / "locked") if kind == "checkpoint" else _state(tmp_path / "l.npz")
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(_archive, "open", guarded_open, raising=False)
    _raises(PermissionError, "permission denied", kind, path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("content", "looks"),
    [
        (b"", "the file is empty"),
        (b"id,label\n1,2\n", "a text file"),
        (pickle.dumps({"a": 1}), "a Python pickle"),
        (b"\x93NUMPY\x01\x00v\x00", r"a NumPy \.npy array"),
        (bytes(range(200, 256)) * 4, "another kind of file"),
    ],
)
def test_rung_another_kind_of_file(tmp_path, kind, content, looks):
    path = tmp_path / "f"
    path.write_bytes(content)
    info = _raises(ValueError, looks, kind, path)
    if content:
        assert f"not a linkage-gcn {WHAT[kind]}: not {CONTAINER[kind]}" in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_rung_truncated(tmp_path, kind):
    good = _checkpoint(tmp_path / "g") if kind == "checkpoint" else _state(tmp_path / "g.npz")
    path = tmp_path / "cut"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _raises(ValueError, "truncated", kind, path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("skip", [0, 256])  # the .npy header of a state's array, or its data
def test_rung_corrupted(tmp_path, kind, skip):
    if kind == "checkpoint":
        path = _checkpoint(tmp_path / "c", big=torch.arange(10_000.0))
    else:
        path = _state(tmp_path / "c.npz", x=np.arange(10_000.0))
    _corrupt(path, skip)
    _raises(ValueError, "truncated or corrupt.*CRC", kind, path)


def test_rung_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    _raises(ValueError, "not a linkage-gcn checkpoint.*bare state_dict", "checkpoint", path)
    torch.save({"format": "something-else"}, path)
    _raises(ValueError, "not a linkage-gcn checkpoint.*'something-else' file", "checkpoint", path)
    torch.save([1, 2], path)
    _raises(ValueError, "not a linkage-gcn checkpoint.*a list", "checkpoint", path)
    torch.save(torch.zeros(3), path)
    _raises(ValueError, r"not a linkage-gcn checkpoint.*tensor of shape \(3,\)", "checkpoint", path)
    _raises(ValueError, "incremental state file", "checkpoint", _state(tmp_path / "s.npz"))
    np.savez(tmp_path / "o.npz", a=np.zeros(2))
    match = r"NumPy \.npz archive of the arrays a\."
    _raises(ValueError, match, "checkpoint", tmp_path / "o.npz")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("notes.txt", "hello")
    _raises(ValueError, "a zip archive of 1 entries", "checkpoint", tmp_path / "z.zip")


def test_rung_not_a_state(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, x=np.zeros(3), y=np.ones(2))
    _raises(ValueError, r"not a linkage-gcn state file.*the arrays x, y\.", "state", path)
    np.savez(path, header=np.array([{"format": STATE_FORMAT}], dtype=object))
    _raises(ValueError, "not a linkage-gcn state file.*pickled Python objects", "state", path)
    np.savez(path, header=np.zeros(3))
    _raises(ValueError, "not a linkage-gcn state file.*float64 array", "state", path)
    _state(path, header={"format": "mine", "format_version": 1})
    _raises(ValueError, "not a linkage-gcn state file.*names format 'mine'", "state", path)
    _state(path, header=[1, 2])
    _raises(ValueError, "not a linkage-gcn state file", "state", path)
    np.savez(path, header=np.frombuffer(b"{not json", dtype=np.uint8))
    _raises(ValueError, "header is not JSON", "state", path)
    _raises(ValueError, "a PyTorch file", "state", _checkpoint(tmp_path / "m.pt"))


def test_rung_pickled_state_array(tmp_path):
    path = _state(tmp_path / "s.npz", x=np.array([{"a": 1}], dtype=object))
    _raises(ValueError, "array 'x' holds pickled Python objects", "state", path)


@pytest.mark.parametrize("kind", KINDS)
def test_rung_newer_or_malformed_version(tmp_path, kind):
    path = tmp_path / "f.npz"
    for version, match in [(99, "format version 99.*upgrade linkage-gcn"),
                           ("2", "malformed .*format_version '2'"),
                           (0, "malformed .*format_version 0")]:  # fmt: skip
        if kind == "checkpoint":
            _checkpoint(path, format_version=version)
        else:
            _state(path, header={"format": STATE_FORMAT, "format_version": version})
        _raises(ValueError, match, kind, path)


def test_checkpoints_without_a_format_version_are_version_1(tmp_path):
    assert read_checkpoint(_checkpoint(tmp_path / "old.pt"))["format_version"] == 1


def test_rung_missing_fields(tmp_path):
    path = _checkpoint(tmp_path / "m.pt")
    _raises(ValueError, "incomplete checkpoint: missing params, labels_", "checkpoint", path,
            required=("w", "params", "labels_"))  # fmt: skip
    path = _state(tmp_path / "s.npz")
    _raises(ValueError, "incomplete state file: missing arrays knn", "state", path,
            required_arrays=("x", "knn"))  # fmt: skip
    _state(path, header={"format": STATE_FORMAT, "format_version": 1})
    _raises(ValueError, "incomplete state file: missing header fields n", "state", path,
            required_header=("n",))  # fmt: skip


def test_checkpoint_objects_need_trusted(tmp_path):
    path = _checkpoint(tmp_path / "m.pt", when=np.datetime64("2020-01-01"))
    _raises(ValueError, "pass trusted=True", "checkpoint", path)
    assert read_checkpoint(path, trusted=True)["when"] == np.datetime64("2020-01-01")
