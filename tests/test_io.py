from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from linkage_gcn import _files
from linkage_gcn import io as lio
from linkage_gcn.io import (
    load_bin_features,
    load_features,
    load_knn,
    load_labels,
    load_ltc,
    load_ltc_knn,
    load_meta_labels,
    load_reference,
    save_bin_features,
    save_features,
    save_knn,
    save_labels,
    save_ltc_knn,
    save_meta_labels,
)


def _random_index(rng, n=20, k=4):
    """(N, K) neighbour ids without self, as a kNN search returns them."""
    index = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        index[i] = rng.choice(others, size=k, replace=False)
    return index


@pytest.fixture
def trio(tmp_path, rng):
    X = rng.standard_normal((20, 8)).astype(np.float32)
    index = _random_index(rng)
    y = rng.integers(0, 5, size=20)
    paths = (
        save_features(tmp_path / "features.npy", X),
        save_knn(tmp_path / "knn.npy", index),
        save_labels(tmp_path / "labels.npy", y),
    )
    return paths, (X, index, y)


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ round trips


def test_reference_trio_round_trip(trio):
    paths, (X, index, y) = trio
    X2, index2, y2 = load_reference(*paths)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_array_equal(y2, y)
    assert X2.dtype == np.float32 and index2.dtype == np.int64 and y2.dtype == np.int64


def test_knn_file_is_self_first(trio):
    (_, knn_path, _), (_, index, _) = trio
    table = np.load(knn_path)
    assert table.shape == (20, 5)
    np.testing.assert_array_equal(table[:, 0], np.arange(20))
    np.testing.assert_array_equal(table[:, 1:], index)


def test_reference_optional_parts(trio):
    (feat, _, _), (X, _, _) = trio
    X2, index, y = load_reference(feat)
    np.testing.assert_array_equal(X2, X)
    assert index is None and y is None


def test_mmap_loading(trio):
    (feat, knn, _), (X, index, _) = trio
    X2 = load_features(feat, mmap=True)
    assert isinstance(X2, np.memmap) and not X2.flags.writeable
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(load_knn(knn, mmap=True), index)


def test_features_dtypes(tmp_path):
    save_features(tmp_path / "f64.npy", np.eye(3))
    assert np.load(tmp_path / "f64.npy").dtype == np.float64
    assert load_features(tmp_path / "f64.npy").dtype == np.float32
    save_features(tmp_path / "t.npy", torch.ones(2, 2))
    np.testing.assert_array_equal(load_features(tmp_path / "t.npy"), np.ones((2, 2)))
    np.save(tmp_path / "int.npy", np.arange(6).reshape(3, 2))
    assert load_features(tmp_path / "int.npy").dtype == np.float32


def test_labels_column_vector_and_int32(tmp_path):
    np.save(tmp_path / "col.npy", np.array([[1], [2], [1]], dtype=np.int32))
    y = load_labels(tmp_path / "col.npy", n_samples=3)
    assert y.dtype == np.int64 and y.tolist() == [1, 2, 1]


def test_exact_path_written(tmp_path):
    path = save_features(tmp_path / "features", np.eye(2))
    assert path == tmp_path / "features"
    assert _listing(tmp_path) == ["features"]
    np.testing.assert_array_equal(load_features(path), np.eye(2))
    save_ltc_knn(tmp_path / "knn", [[1], [0]], [[0.5], [0.5]])
    assert _listing(tmp_path) == ["features", "knn"]


def test_bin_and_meta_round_trip(tmp_path, rng):
    X = rng.standard_normal((7, 5)).astype(np.float32)
    save_bin_features(tmp_path / "a.bin", X)
    assert os.path.getsize(tmp_path / "a.bin") == 7 * 5 * 4
    np.testing.assert_array_equal(load_bin_features(tmp_path / "a.bin", dim=5), X)
    X_map = load_bin_features(tmp_path / "a.bin", dim=5, mmap=True)
    assert isinstance(X_map, np.memmap)
    np.testing.assert_array_equal(X_map, X)
    y = np.array([3, 0, 0, 12, 3, 1, 1])
    save_meta_labels(tmp_path / "a.meta", y)
    assert (tmp_path / "a.meta").read_text() == "3\n0\n0\n12\n3\n1\n1\n"
    np.testing.assert_array_equal(load_meta_labels(tmp_path / "a.meta", n_samples=7), y)


def test_bin_reads_ltc_tofile_output(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    X.tofile(tmp_path / "part.bin")  # LTC's write_feat
    np.testing.assert_array_equal(load_bin_features(tmp_path / "part.bin", 3), X)


def test_meta_tolerates_blank_trailing_lines(tmp_path):
    (tmp_path / "a.meta").write_text("1\n2\n\n")
    assert load_meta_labels(tmp_path / "a.meta").tolist() == [1, 2]


def test_load_ltc_all_parts(tmp_path, rng):
    X = rng.standard_normal((6, 4)).astype(np.float32)
    index = _random_index(rng, n=6, k=3)
    sim = np.sort(rng.uniform(0, 1, size=(6, 3)), axis=1)[:, ::-1]
    save_bin_features(tmp_path / "x.bin", X)
    save_meta_labels(tmp_path / "x.meta", [0, 0, 1, 1, 2, 2])
    save_ltc_knn(tmp_path / "faiss_k_4.npz", index, sim)
    X2, index2, sim2, y2 = load_ltc(
        tmp_path / "x.bin", tmp_path / "x.meta", tmp_path / "faiss_k_4.npz", dim=4
    )
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_allclose(sim2, sim, atol=1e-6)
    assert sim2.dtype == np.float32 and y2.tolist() == [0, 0, 1, 1, 2, 2]
    Xn, _, _, _ = load_ltc(tmp_path / "x.bin", dim=4, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(Xn, axis=1), 1, rtol=1e-6)


# ------------------------------------------------------------------ LTC kNN


def _ltc_file(path, ids, dists):
    """Write a kNN file the way learn-to-cluster does (list of (nbrs, dists) tuples)."""
    knns = [
        (np.asarray(i, dtype=np.int32), np.asarray(d, dtype=np.float32)) for i, d in zip(ids, dists)
    ]
    np.savez_compressed(path, data=np.array(knns))
    return path


def test_ltc_knn_self_first(tmp_path):
    ids = [[0, 2, 1], [1, 0, 2], [2, 1, 0]]
    dists = [[0, 0.1, 0.2], [0, 0.3, 0.4], [0, 0.5, 0.6]]
    index, sim = load_ltc_knn(_ltc_file(tmp_path / "k.npz", ids, dists))
    assert index.tolist() == [[2, 1], [0, 2], [1, 0]]
    np.testing.assert_allclose(sim, [[0.9, 0.8], [0.7, 0.6], [0.5, 0.4]], atol=1e-6)
    assert index.dtype == np.int64 and sim.dtype == np.float32


def test_ltc_knn_self_absent_drops_last(tmp_path):
    ids = [[1, 2, 3], [0, 2, 3], [3, 0, 1], [0, 1, 2]]
    dists = [[0.1, 0.2, 0.3]] * 4
    index, sim = load_ltc_knn(_ltc_file(tmp_path / "k.npz", ids, dists))
    assert index.tolist() == [[1, 2], [0, 2], [3, 0], [0, 1]]
    np.testing.assert_allclose(sim, [[0.9, 0.8]] * 4, atol=1e-6)


def test_ltc_knn_duplicate_ties(tmp_path):
    # rows 0 and 1 are exact duplicates: the search may list the twin before self
    ids = [[1, 0, 2], [1, 0, 2], [2, 0, 1]]
    dists = [[0, 0, 0.5], [0, 0, 0.5], [0, 0.5, 0.5]]
    index, sim = load_ltc_knn(_ltc_file(tmp_path / "k.npz", ids, dists))
    assert index.tolist() == [[1, 2], [0, 2], [0, 1]]
    np.testing.assert_allclose(sim, [[1, 0.5], [1, 0.5], [0.5, 0.5]], atol=1e-6)


def test_ltc_knn_mixed_rows(tmp_path):
    ids = [[0, 1, 2], [2, 0, 3], [3, 2, 1], [3, 0, 1]]  # self first, absent, last-but-one, first
    dists = [[0, 0.1, 0.2], [0.1, 0.2, 0.3], [0.1, 0, 0.2], [0, 0.4, 0.5]]
    index, _ = load_ltc_knn(_ltc_file(tmp_path / "k.npz", ids, dists))
    assert index.tolist() == [[1, 2], [2, 0], [3, 1], [0, 1]]


def test_ltc_knn_round_trip_and_plain_npy(tmp_path, rng):
    index = _random_index(rng, n=30, k=5)
    sim = rng.uniform(-1, 1, size=(30, 5))
    save_ltc_knn(tmp_path / "k.npz", index, sim)
    data = np.load(tmp_path / "k.npz")["data"]
    assert data.shape == (30, 2, 6) and data.dtype == np.float32
    index2, sim2 = load_ltc_knn(tmp_path / "k.npz", n_samples=30)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_allclose(sim2, sim, atol=1e-6)
    np.save(tmp_path / "k.npy", data)
    np.testing.assert_array_equal(load_ltc_knn(tmp_path / "k.npy")[0], index)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((3, 3, 2)), r"\(N, 2, K\)"),
        (np.zeros((3, 2, 1)), "K >= 2"),
        (np.array([[[0, -1], [0, 1]], [[1, 0], [0, 0.5]]]), r"in \[0, 2\), found -1 in row 0"),
        (np.array([[[0, 1.5], [0, 1]], [[1, 0], [0, 0.5]]]), "whole numbers"),
        (np.array([[[0, 1], [0, np.inf]], [[1, 0], [0, 0.5]]]), "NaN or infinity"),
    ],
)
def test_ltc_knn_invalid(tmp_path, data, match):
    np.savez_compressed(tmp_path / "k.npz", data=data)
    with pytest.raises(ValueError, match=match) as info:
        load_ltc_knn(tmp_path / "k.npz")
    assert "k.npz" in str(info.value)


def test_ltc_knn_ragged_and_keys(tmp_path):
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = ([0], [0.0]), ([1, 0], [0.0, 0.5])
    np.savez_compressed(tmp_path / "r.npz", data=ragged)
    with pytest.raises(ValueError, match="ragged"):
        load_ltc_knn(tmp_path / "r.npz")
    np.savez_compressed(tmp_path / "two.npz", a=np.zeros((2, 2, 2)), b=np.zeros(1))
    with pytest.raises(ValueError, match="named 'data'"):
        load_ltc_knn(tmp_path / "two.npz")
    np.savez_compressed(
        tmp_path / "one.npz", knns=np.array([[[0, 1], [0, 0.2]], [[1, 0], [0, 0.2]]])
    )
    assert load_ltc_knn(tmp_path / "one.npz")[0].tolist() == [[1], [0]]


def test_ltc_knn_uncompressed(tmp_path):
    save_ltc_knn(
        tmp_path / "k.npz", [[1, 2], [2, 0], [0, 1]], np.full((3, 2), 0.5), compressed=False
    )
    index, sim = load_ltc_knn(tmp_path / "k.npz")
    assert index.tolist() == [[1, 2], [2, 0], [0, 1]] and np.allclose(sim, 0.5)


def test_ltc_knn_row_count(tmp_path):
    save_ltc_knn(tmp_path / "k.npz", [[1], [0]], [[0.5], [0.5]])
    with pytest.raises(ValueError, match="has 2 rows but 3 were expected"):
        load_ltc_knn(tmp_path / "k.npz", n_samples=3)


def test_save_ltc_knn_shape_mismatch(tmp_path):
    with pytest.raises(ValueError, match="similarity has shape"):
        save_ltc_knn(tmp_path / "k.npz", [[1], [0]], [[0.5, 0.1], [0.5, 0.1]])
    assert _listing(tmp_path) == []


# ------------------------------------------------------------------ validation errors


def test_not_self_first(tmp_path):
    table = np.array([[0, 1], [1, 0], [2, 0], [7, 0], [4, 0]])
    np.save(tmp_path / "knn.npy", table)
    with pytest.raises(ValueError, match="row 3 starts with 7") as info:
        load_knn(tmp_path / "knn.npy")
    assert str(tmp_path / "knn.npy") in str(info.value)


def test_knn_out_of_range(tmp_path):
    np.save(tmp_path / "knn.npy", np.array([[0, 1], [1, 5], [2, -1]]))
    with pytest.raises(ValueError, match=r"knn.npy: neighbour ids must be in \[0, 3\), found 5"):
        load_knn(tmp_path / "knn.npy")


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (np.arange(3), "2-D"),
        (np.arange(3)[:, None], "K >= 1"),
        (np.array([[0.0, 1.5], [1.0, 0.0]]), "whole numbers"),
        (np.array([["a", "b"], ["c", "d"]]), "integers"),
    ],
)
def test_knn_bad_tables(tmp_path, table, match):
    np.save(tmp_path / "knn.npy", table)
    with pytest.raises(ValueError, match=match):
        load_knn(tmp_path / "knn.npy")


def test_knn_whole_floats_accepted(tmp_path):
    np.save(tmp_path / "knn.npy", np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert load_knn(tmp_path / "knn.npy").tolist() == [[1], [0]]


def test_knn_n_samples(tmp_path):
    save_knn(tmp_path / "knn.npy", [[1], [0]])
    with pytest.raises(ValueError, match="has 2 rows but 3 were expected"):
        load_knn(tmp_path / "knn.npy", n_samples=3)


def test_shape_disagreement(trio, tmp_path, rng):
    (feat, _, _), _ = trio
    save_labels(tmp_path / "short.npy", np.zeros(19, dtype=int))
    with pytest.raises(ValueError, match=r"short.npy has 19 rows but .*features.npy has 20"):
        load_reference(feat, labels_path=tmp_path / "short.npy")
    save_knn(tmp_path / "knn21.npy", _random_index(rng, n=21))
    with pytest.raises(ValueError, match=r"knn21.npy has 21 rows but .*features.npy has 20"):
        load_reference(feat, knn_path=tmp_path / "knn21.npy")


def test_ltc_shape_disagreement(tmp_path):
    save_bin_features(tmp_path / "x.bin", np.ones((3, 2)))
    save_meta_labels(tmp_path / "x.meta", [0, 1])
    with pytest.raises(ValueError, match=r"x.meta has 2 rows but .*x.bin has 3"):
        load_ltc(tmp_path / "x.bin", tmp_path / "x.meta", dim=2)
    save_ltc_knn(tmp_path / "k.npz", [[1], [0]], [[0.5], [0.5]])
    with pytest.raises(ValueError, match=r"k.npz has 2 rows but .*x.bin has 3"):
        load_ltc(tmp_path / "x.bin", knn_path=tmp_path / "k.npz", dim=2)


@pytest.mark.parametrize("mmap", [False, True])
def test_nan_features(tmp_path, mmap):
    X = np.ones((5, 3), dtype=np.float32)
    X[3, 1] = np.nan
    np.save(tmp_path / "features.npy", X)
    with pytest.raises(ValueError, match=r"features.npy: .*NaN or infinity \(first in row 3\)"):
        load_features(tmp_path / "features.npy", mmap=mmap)
    X[3, 1] = np.inf
    X.tofile(tmp_path / "x.bin")
    with pytest.raises(ValueError, match=r"x.bin: .*NaN or infinity"):
        load_bin_features(tmp_path / "x.bin", 3, mmap=mmap)


def test_nan_found_beyond_first_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(lio, "_CHUNK_ROWS", 4)
    X = np.zeros((10, 2))
    X[9, 0] = np.nan
    np.save(tmp_path / "f.npy", X)
    with pytest.raises(ValueError, match="first in row 9"):
        load_features(tmp_path / "f.npy")


@pytest.mark.parametrize("bad", [np.zeros(3), np.zeros((0, 3)), np.zeros((3, 0))])
def test_features_bad_shape(tmp_path, bad):
    np.save(tmp_path / "f.npy", bad)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        load_features(tmp_path / "f.npy")


def test_save_nan_features_refused(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        save_features(tmp_path / "f.npy", [[np.nan]])
    assert _listing(tmp_path) == []


def test_bin_wrong_size(tmp_path):
    np.ones(10, dtype=np.float32).tofile(tmp_path / "x.bin")
    with pytest.raises(
        ValueError, match=r"x.bin: size 40 bytes is not a positive multiple of 4 \* dim = 12"
    ):
        load_bin_features(tmp_path / "x.bin", dim=3)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="size 0 bytes"):
        load_bin_features(tmp_path / "empty.bin", dim=3)
    with pytest.raises(ValueError, match="dim"):
        load_bin_features(tmp_path / "x.bin", dim=0)


def test_bad_labels(tmp_path):
    np.save(tmp_path / "l.npy", np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"l.npy must have shape \(N,\) or \(N, 1\)"):
        load_labels(tmp_path / "l.npy")
    np.save(tmp_path / "f.npy", np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"f\.npy must hold integer"):
        load_labels(tmp_path / "f.npy")
    np.save(tmp_path / "ok.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match=r"ok\.npy has 2 entries but 3"):
        load_labels(tmp_path / "ok.npy", n_samples=3)


def test_bad_meta(tmp_path):
    (tmp_path / "a.meta").write_text("1\n2.5\n")
    with pytest.raises(ValueError, match=r"a\.meta: expected one integer label per line"):
        load_meta_labels(tmp_path / "a.meta")
    (tmp_path / "e.meta").write_text("")
    with pytest.raises(ValueError, match=r"e\.meta"):
        load_meta_labels(tmp_path / "e.meta")


def test_pickled_npy_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"o\.npy: not a readable numeric"):
        load_features(tmp_path / "o.npy")


@pytest.mark.parametrize(
    "loader",
    [
        load_features,
        load_labels,
        load_knn,
        load_ltc_knn,
        load_meta_labels,
        lambda p: load_bin_features(p, 4),
        lambda p: load_reference(p),
        lambda p: load_ltc(p),
    ],
)
def test_missing_file(tmp_path, loader):
    missing = tmp_path / "nothing.npy"
    with pytest.raises(FileNotFoundError, match=r"nothing\.npy"):
        loader(missing)


def test_missing_secondary_file(trio, tmp_path):
    (feat, _, _), _ = trio
    with pytest.raises(FileNotFoundError, match=r"absent_knn\.npy"):
        load_reference(feat, knn_path=tmp_path / "absent_knn.npy")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_features(tmp_path)


def test_save_knn_validates(tmp_path):
    with pytest.raises(ValueError, match=r"neighbour ids must be in \[0, 2\), found 2"):
        save_knn(tmp_path / "knn.npy", [[1], [2]])
    with pytest.raises(ValueError, match="2-D"):
        save_knn(tmp_path / "knn.npy", [1, 0])
    assert _listing(tmp_path) == []
    save_knn(tmp_path / "knn.npy", torch.tensor([[1], [0]]))
    assert load_knn(tmp_path / "knn.npy").tolist() == [[1], [0]]


# ------------------------------------------------------------------ never overwrite, atomic

SAVERS = {
    "features": lambda p, o: save_features(p, np.eye(2) * (2 if o else 1), overwrite=o),
    "labels": lambda p, o: save_labels(p, [1, 2] if o else [0, 0], overwrite=o),
    "knn": lambda p, o: save_knn(p, [[1, 2], [2, 0], [0, 1]] if o else [[1], [0]], overwrite=o),
    "bin": lambda p, o: save_bin_features(p, np.ones((2, 2)) * (2 if o else 1), overwrite=o),
    "meta": lambda p, o: save_meta_labels(p, [1, 2] if o else [0, 0], overwrite=o),
    "ltc_knn": lambda p, o: save_ltc_knn(p, [[1], [0]], [[0.9 if o else 0.1]] * 2, overwrite=o),
}


@pytest.mark.parametrize("kind", sorted(SAVERS))
def test_refuses_to_overwrite(tmp_path, kind):
    target = tmp_path / "target"
    SAVERS[kind](target, False)
    before = target.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        SAVERS[kind](target, False)
    assert target.read_bytes() == before
    SAVERS[kind](target, True)
    assert target.read_bytes() != before
    assert _listing(tmp_path) == ["target"]


def test_overwrite_replaces_content(tmp_path):
    save_labels(tmp_path / "l.npy", [0, 0])
    save_labels(tmp_path / "l.npy", [5, 6, 7], overwrite=True)
    assert load_labels(tmp_path / "l.npy").tolist() == [5, 6, 7]


def test_crash_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(f, arr, allow_pickle=False):
        f.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(lio.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_features(tmp_path / "f.npy", np.eye(2))
    assert _listing(tmp_path) == []


def test_crash_mid_overwrite_keeps_old_file(tmp_path, monkeypatch):
    save_labels(tmp_path / "l.npy", [1, 2, 3])
    before = (tmp_path / "l.npy").read_bytes()

    def broken_save(f, arr, allow_pickle=False):
        f.write(b"garbage")
        raise KeyboardInterrupt

    monkeypatch.setattr(lio.np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_labels(tmp_path / "l.npy", [9], overwrite=True)
    assert (tmp_path / "l.npy").read_bytes() == before
    assert _listing(tmp_path) == ["l.npy"]


def test_race_does_not_clobber(tmp_path):
    # the target appears between the early existence check and the final rename
    tmp = tmp_path / ".t.tmp"
    tmp.write_bytes(b"new")
    (tmp_path / "t").write_bytes(b"old")
    with pytest.raises(FileExistsError):
        _files._publish(tmp, tmp_path / "t", overwrite=False)
    assert (tmp_path / "t").read_bytes() == b"old"


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory does not exist"):
        save_labels(tmp_path / "no" / "l.npy", [0])


def test_written_file_respects_umask(tmp_path):
    path = save_labels(tmp_path / "l.npy", [0])
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
