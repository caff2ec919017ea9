from __future__ import annotations

import errno
import io
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from linkage_gcn import _archive, _files
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
    sim = -np.sort(-rng.uniform(-1, 1, size=(30, 5)), axis=1)  # nearest first, as knn() returns
    save_ltc_knn(tmp_path / "k.npz", index, sim)
    data = np.load(tmp_path / "k.npz")["data"]
    assert data.shape == (30, 2, 6) and data.dtype == np.float32
    index2, sim2 = load_ltc_knn(tmp_path / "k.npz", n_samples=30)
    np.testing.assert_array_equal(index2, index)
    np.testing.assert_allclose(sim2, sim, atol=1e-6)
    np.save(tmp_path / "k.npy", data)
    np.testing.assert_array_equal(load_ltc_knn(tmp_path / "k.npy")[0], index)


def test_ltc_knn_rows_sorted_by_distance(tmp_path):
    # rows stored out of order, as a search that does not sort (or a hand-made file) writes them
    ids = [[2, 0, 1, 3], [3, 2, 1, 0], [0, 1, 4, 3], [1, 3, 0, 2], [4, 0, 1, 2]]
    dists = [
        [0.5, 0.0, 0.25, 0.75],
        [0.0, 0.5, 0.5, 0.25],  # a tie: the stored order (2 before 1) is kept
        [0.25, 0.0, 0.1, 0.3],  # row 2 does not list itself: its farthest entry goes
        [0.9, 0.0, 0.9, 0.8],
        [0.0, 0.1, 0.2, 0.3],
    ]
    path = _ltc_file(tmp_path / "k.npz", ids, dists)
    index, sim = load_ltc_knn(path)
    assert index.tolist() == [[1, 2, 3], [3, 0, 2], [1, 4, 0], [2, 1, 0], [0, 1, 2]]
    np.testing.assert_allclose(sim[:3], [[0.75, 0.5, 0.25], [1, 0.75, 0.5], [1, 0.9, 0.75]],
                               atol=1e-6)  # fmt: skip
    # the stored order is kept on request
    stored, stored_sim = load_ltc_knn(path, sort=False)
    assert stored.tolist() == [[2, 1, 3], [3, 2, 0], [0, 1, 4], [1, 0, 2], [0, 1, 2]]
    np.testing.assert_allclose(stored_sim[0], [0.5, 0.75, 0.25], atol=1e-6)
    # load_ltc passes the option on
    save_bin_features(tmp_path / "x.bin", np.ones((5, 4)))
    assert load_ltc(tmp_path / "x.bin", knn_path=path, dim=4)[1].tolist() == index.tolist()
    assert load_ltc(tmp_path / "x.bin", knn_path=path, dim=4, sort=False)[1].tolist() == (
        stored.tolist()
    )


def test_ltc_knn_sort_matches_ltc_ordering(tmp_path, rng):
    # LTC's knns2ordered_nbrs: argsort of the distances (ties broken stably here)
    n, k = 40, 6
    ids = np.array([rng.permutation(n)[:k] for _ in range(n)])
    dists = rng.choice([0.1, 0.2, 0.3, 0.4], size=(n, k))  # many ties
    data = np.stack([ids, dists], axis=1)
    np.savez(tmp_path / "k.npz", data=data)
    index, sim = load_ltc_knn(tmp_path / "k.npz")
    assert 0 < sum(i in row for i, row in enumerate(ids)) < n  # both rules are exercised
    for i in range(n):
        cols = sorted(range(k), key=lambda j: dists[i, j])  # Python's sort is stable
        own = [j for j in cols if ids[i, j] == i]
        cols.remove(own[0]) if own else cols.pop()
        assert index[i].tolist() == ids[i, cols].tolist()
        np.testing.assert_allclose(sim[i], 1 - dists[i, cols], atol=1e-6)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros((3, 3, 2)), r"\(N, 2, K\)"),
        (np.zeros((3, 2, 1)), "K >= 2"),
        (np.array([[[0, -1], [0, 1]], [[1, 0], [0, 0.5]]]), r"outside \[0, 2\).*column 0 is -1"),
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
    with pytest.raises(ValueError, match=r"knn.npy holds neighbour ids outside \[0, 3\) .*is 5"):
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


def test_knn_file_with_too_few_rows_gets_the_row_count_message(trio, tmp_path):
    (feat, knn_path, _), _ = trio
    short = tmp_path / "short_knn.npy"
    np.save(short, np.load(knn_path)[:19])  # still refers to row 19, which it lacks
    with pytest.raises(ValueError, match=r"short_knn.npy has 19 rows but .*features.npy has 20"):
        load_reference(feat, knn_path=short)
    save_ltc_knn(tmp_path / "k.npz", [[1], [2], [0]], np.full((3, 1), 0.5))
    raw = np.load(tmp_path / "k.npz")["data"][:2]
    np.savez(tmp_path / "short.npz", data=raw)
    save_bin_features(tmp_path / "x.bin", np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"short.npz has 2 rows but .*x.bin has 3"):
        load_ltc(tmp_path / "x.bin", knn_path=tmp_path / "short.npz", dim=2)


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
    with pytest.raises(ValueError, match="dim"):
        load_bin_features(tmp_path / "x.bin", dim=0)


def test_bad_labels(tmp_path):
    np.save(tmp_path / "l.npy", np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"l.npy: labels must have shape \(N,\) or \(N, 1\)"):
        load_labels(tmp_path / "l.npy")
    np.save(tmp_path / "f.npy", np.array([0.0, 1.0, 0.5]))
    whole = r"f\.npy: labels must be whole numbers, found 0.5 in row 2"
    with pytest.raises(ValueError, match=whole):
        load_labels(tmp_path / "f.npy")
    np.save(tmp_path / "ok.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match=r"ok\.npy has 2 entries but 3"):
        load_labels(tmp_path / "ok.npy", n_samples=3)


def test_whole_valued_floats_are_accepted_not_truncated(tmp_path):
    np.save(tmp_path / "l.npy", np.array([3.0, -1.0, 7.0]))
    assert load_labels(tmp_path / "l.npy").tolist() == [3, -1, 7]
    (tmp_path / "a.meta").write_text("3.0\n1\n# a comment\n1e1\n")
    assert load_meta_labels(tmp_path / "a.meta").tolist() == [3, 1, 10]
    np.save(tmp_path / "knn.npy", np.array([[0.0, 1.0], [1.0, 0.0]], dtype=np.float32))
    assert load_knn(tmp_path / "knn.npy").tolist() == [[1], [0]]
    # 2**53 + 1 is not a float64: such a float could already have been rounded
    np.save(tmp_path / "big.npy", np.array([2.0**54, 1.0]))
    with pytest.raises(ValueError, match="whole numbers"):
        load_labels(tmp_path / "big.npy")


def test_bad_meta(tmp_path):
    (tmp_path / "a.meta").write_text("1\n2.5\n")
    whole = r"a\.meta: labels must be whole numbers, found 2.5 in row 1"
    with pytest.raises(ValueError, match=whole):
        load_meta_labels(tmp_path / "a.meta")
    (tmp_path / "b.meta").write_text("1\n2\nthree\n")
    with pytest.raises(ValueError, match=r"b\.meta: expected one integer label per line \(.*three"):
        load_meta_labels(tmp_path / "b.meta")


# ------------------------------------------------------------------ bad input battery
#
# Every loader, for every way a file can be bad: the error must be one of the documented
# classes (exactly, not a raw subclass such as BadZipFile or UnicodeDecodeError), raised
# early, and name the file (or, for a wrong argument type, the argument).

N_GOOD = 4


def _npy_bytes(arr, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, arr, **kwargs)
    return buffer.getvalue()


def _npz_bytes(compressed=True, **arrays):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


GOOD_ARRAYS = {
    "features": np.arange(N_GOOD * 4, dtype=np.float32).reshape(N_GOOD, 4) + 1,
    "labels": np.array([0, 0, 1, 1]),
    "knn": np.array([[0, 1], [1, 0], [2, 3], [3, 2]]),
    "ltc_knn": np.array(
        [[[0, 1], [0, 0.1]], [[1, 0], [0, 0.1]], [[2, 3], [0, 0.2]], [[3, 2], [0, 0.2]]],
        dtype=np.float32,
    ),
}


def _good_bytes(kind):
    if kind == "bin":
        return GOOD_ARRAYS["features"].tobytes()
    if kind == "meta":
        return b"0\n0\n1\n1\n"
    if kind == "ltc_knn":
        return _npz_bytes(data=GOOD_ARRAYS["ltc_knn"])
    return _npy_bytes(GOOD_ARRAYS[kind])


def _flip_middle(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0xFF
    return bytes(data)


PICKLE = pickle.dumps({"features": [1.0, 2.0]})
OBJECTS = np.array([{"a": 1}, None], dtype=object)
NPY = ("features", "labels", "knn")
NPY_NPZ = (*NPY, "ltc_knn")

# (case id, kinds it applies to, content: bytes or kind -> bytes, exception, message regex)
# fmt: off
CONTENT_CASES = [
    ("empty file", "all", b"", ValueError, "the file is empty"),
    ("text file", NPY_NPZ, b"1 2 3\n4 5 6\n", ValueError, "not a NumPy"),
    ("python pickle", NPY_NPZ, PICKLE, ValueError, "Python pickle"),
    ("truncated magic", NPY_NPZ, b"\x93NUM", ValueError, "truncated"),
    ("truncated header", NPY, lambda k: _good_bytes(k)[:40], ValueError,
     "truncated or corrupt .npy"),
    ("truncated data", NPY, lambda k: _good_bytes(k)[:-4], ValueError,
     "truncated or corrupt .npy"),
    ("pickled objects", NPY, _npy_bytes(OBJECTS, allow_pickle=True), ValueError,
     "pickled Python objects"),
    ("npz instead of npy", NPY, _npz_bytes(data=np.eye(2)), ValueError, "is an .npz archive"),
    ("strings", NPY, _npy_bytes(np.array([["a", "b"], ["c", "d"]])), ValueError, "dtype <U1"),
    ("complex", NPY, _npy_bytes(np.ones((2, 2), dtype=np.complex64)), ValueError,
     "dtype complex64"),
    ("no rows", NPY, lambda k: _npy_bytes(GOOD_ARRAYS[k][:0]), ValueError,
     "non-empty|no labels|N >= 1"),
    ("NaN", NPY, lambda k: _npy_bytes(np.where(GOOD_ARRAYS[k] == 1, np.nan, GOOD_ARRAYS[k])),
     ValueError, "NaN or infinity"),
    ("infinity", NPY, lambda k: _npy_bytes(np.where(GOOD_ARRAYS[k] == 1, np.inf, GOOD_ARRAYS[k])),
     ValueError, "NaN or infinity"),
    ("not whole numbers", ("labels", "knn"), lambda k: _npy_bytes(GOOD_ARRAYS[k] + 0.5),
     ValueError, "whole numbers, found 0.5 in row 0"),
    ("1-D features", ("features",), _npy_bytes(np.ones(4)), ValueError, "2-D"),
    ("truncated npz", ("ltc_knn",), lambda k: _good_bytes(k)[:60], ValueError,
     "truncated or corrupt .npz"),
    ("corrupt npz", ("ltc_knn",),
     lambda k: _flip_middle(_npz_bytes(compressed=False, data=GOOD_ARRAYS[k])), ValueError,
     "truncated or corrupt .npz"),
    ("npz without 'data'", ("ltc_knn",), _npz_bytes(a=np.eye(2), b=np.eye(2)), ValueError,
     "expected an array named 'data'"),
    ("empty npz", ("ltc_knn",), _npz_bytes(), ValueError, "empty archive"),
    ("pickled objects npz", ("ltc_knn",), _npz_bytes(compressed=False, data=OBJECTS),
     ValueError, "pickled Python objects"),
    ("strings npz", ("ltc_knn",), _npz_bytes(data=np.full((2, 2, 2), "a")), ValueError,
     r"numeric \(N, 2, K\)"),
    ("no rows npz", ("ltc_knn",), _npz_bytes(data=np.zeros((0, 2, 3))), ValueError,
     "no kNN rows"),
    ("NaN distance", ("ltc_knn",),
     _npz_bytes(data=np.array([[[0, 1], [0, np.nan]], [[1, 0], [0, 0.1]]])), ValueError,
     "distances contain NaN or infinity"),
    ("NaN id", ("ltc_knn",),
     _npz_bytes(data=np.array([[[0, np.nan], [0, 0.1]], [[1, 0], [0, 0.1]]])), ValueError,
     "neighbour ids contain NaN or infinity"),
    ("not whole id", ("ltc_knn",),
     _npz_bytes(data=np.array([[[0, 0.5], [0, 0.1]], [[1, 0], [0, 0.1]]])), ValueError,
     "whole numbers"),
    ("size not a multiple", ("bin",), b"\0" * 20, ValueError, "not a positive multiple"),
    ("NaN bin", ("bin",), np.full((2, 4), np.nan, dtype="<f4").tobytes(), ValueError,
     "NaN or infinity"),
    ("not whole label", ("meta",), b"1\n2.5\n", ValueError, "whole numbers"),
    ("nan label", ("meta",), b"1\nnan\n", ValueError, "NaN or infinity"),
    ("word label", ("meta",), b"1\nabc\n", ValueError, "one integer label per line"),
    ("two per line", ("meta",), b"1 2\n3 4\n", ValueError, "2 values per line"),
    ("binary meta", ("meta",), b"\xff\xfe\x00\x01", ValueError, "not a text file"),
    ("blank meta", ("meta",), b"\n\n# nothing\n", ValueError, "no labels"),
]
# fmt: on


def _loaders():
    """(id, kind of the file under test, call(path, good paths))."""
    return [
        ("load_features", "features", lambda p, g: load_features(p)),
        ("load_features(mmap)", "features", lambda p, g: load_features(p, mmap=True)),
        ("load_labels", "labels", lambda p, g: load_labels(p)),
        ("load_knn", "knn", lambda p, g: load_knn(p)),
        ("load_knn(mmap)", "knn", lambda p, g: load_knn(p, mmap=True)),
        ("load_reference:feat", "features", lambda p, g: load_reference(p, g["knn"], g["labels"])),
        ("load_reference:knn", "knn", lambda p, g: load_reference(g["features"], p, g["labels"])),
        (
            "load_reference:labels",
            "labels",
            lambda p, g: load_reference(g["features"], g["knn"], p),
        ),
        ("load_bin_features", "bin", lambda p, g: load_bin_features(p, 4)),
        ("load_bin_features(mmap)", "bin", lambda p, g: load_bin_features(p, 4, mmap=True)),
        ("load_meta_labels", "meta", lambda p, g: load_meta_labels(p)),
        ("load_ltc_knn", "ltc_knn", lambda p, g: load_ltc_knn(p)),
        ("load_ltc:feat", "bin", lambda p, g: load_ltc(p, g["meta"], g["ltc_knn"], dim=4)),
        ("load_ltc:meta", "meta", lambda p, g: load_ltc(g["bin"], p, g["ltc_knn"], dim=4)),
        ("load_ltc:knn", "ltc_knn", lambda p, g: load_ltc(g["bin"], g["meta"], p, dim=4)),
    ]


LOADERS = _loaders()
ARGUMENT_NAMES = {"feat": "feat_path", "knn": "knn_path", "labels": "labels_path",
                  "meta": "meta_path"}  # fmt: skip


@pytest.fixture
def good_files(tmp_path):
    folder = tmp_path / "good"
    folder.mkdir()
    paths = {}
    for kind in ("features", "labels", "knn", "bin", "meta", "ltc_knn"):
        paths[kind] = folder / f"good_{kind}"
        paths[kind].write_bytes(_good_bytes(kind))
    return paths


def _battery():
    for loader_id, kind, call in LOADERS:
        for case_id, kinds, content, exc, match in CONTENT_CASES:
            if kinds == "all" or kind in kinds:
                yield pytest.param(kind, call, content, exc, match, id=f"{loader_id}-{case_id}")


def _assert_clear(info, exc, match, name):
    assert type(info.value) is exc, f"raised {type(info.value).__name__}, not {exc.__name__}"
    message = str(info.value)
    assert name in message
    assert re.search(match, message), message
    assert "\n" not in message


@pytest.mark.parametrize(("kind", "call", "content", "exc", "match"), list(_battery()))
def test_bad_file_battery(tmp_path, good_files, kind, call, content, exc, match):
    path = tmp_path / "bad_file"
    path.write_bytes(content(kind) if callable(content) else content)
    with pytest.raises(Exception) as info:
        call(path, good_files)
    _assert_clear(info, exc, match, "bad_file")


@pytest.mark.parametrize(("loader_id", "kind", "call"), LOADERS, ids=[x[0] for x in LOADERS])
def test_battery_loaders_accept_the_good_files(good_files, loader_id, kind, call):
    # the battery's failures come from the bad file alone
    call(good_files[kind], good_files)


@pytest.mark.parametrize(("loader_id", "kind", "call"), LOADERS, ids=[x[0] for x in LOADERS])
def test_missing_file_and_directory(tmp_path, good_files, loader_id, kind, call):
    with pytest.raises(Exception) as info:
        call(tmp_path / "nothing_here", good_files)
    _assert_clear(info, FileNotFoundError, "no such file", "nothing_here")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(Exception) as info:
        call(tmp_path / "a_folder", good_files)
    _assert_clear(info, FileNotFoundError, "is a directory", "a_folder")


@pytest.mark.parametrize(("loader_id", "kind", "call"), LOADERS, ids=[x[0] for x in LOADERS])
def test_unreadable_file(tmp_path, good_files, monkeypatch, loader_id, kind, call):
    # tests run as root, who reads anything: the open is made to fail as it would for others
    path = tmp_path / "locked_file"
    path.write_bytes(_good_bytes(kind))
    real_open = open

    def guarded_open(file, *args, **kwargs):
        if Path(file).name == "locked_file":
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(_archive, "open", guarded_open, raising=False)  # where files are opened
    with pytest.raises(Exception) as info:
        call(path, good_files)
    _assert_clear(info, PermissionError, "permission denied", "locked_file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_for_real(tmp_path):
    path = save_labels(tmp_path / "locked.npy", [0, 1])
    path.chmod(0)
    with pytest.raises(PermissionError, match=r"locked\.npy: permission denied"):
        load_labels(path)


@pytest.mark.parametrize(("loader_id", "kind", "call"), LOADERS, ids=[x[0] for x in LOADERS])
def test_path_of_the_wrong_type(good_files, loader_id, kind, call):
    with pytest.raises(Exception) as info:
        call(3.5, good_files)
    part = loader_id.partition(":")[2]
    _assert_clear(info, TypeError, "must be a str or path-like", ARGUMENT_NAMES.get(part, "path"))


def test_read_error_is_named(tmp_path, monkeypatch):
    path = save_labels(tmp_path / "l.npy", [0, 1])

    def failing_load(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(lio.np, "load", failing_load)
    with pytest.raises(OSError, match=r"l\.npy: the file cannot be read \(Input/output error\)"):
        load_labels(path)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda p: load_labels(p, n_samples=0), ValueError, "n_samples must be an integer >= 1"),
        (lambda p: load_labels(p, n_samples=2.5), ValueError, "n_samples must be an integer"),
        (lambda p: load_knn(p, n_samples="3"), ValueError, "n_samples must be an integer"),
        (lambda p: load_ltc_knn(p, n_samples=-1), ValueError, "n_samples"),
        (lambda p: load_meta_labels(p, n_samples=0), ValueError, "n_samples"),
        (lambda p: load_bin_features(p, dim=0), ValueError, "dim must be an integer >= 1"),
        (lambda p: load_bin_features(p, dim=None), ValueError, "dim must be an integer"),
    ],
)
def test_bad_arguments_are_refused_before_reading(tmp_path, call, exc, match):
    # the file does not even exist: arguments are checked first
    with pytest.raises(exc, match=match):
        call(tmp_path / "not_read")


def test_missing_secondary_file(trio, tmp_path):
    (feat, _, _), _ = trio
    with pytest.raises(FileNotFoundError, match=r"absent_knn\.npy"):
        load_reference(feat, knn_path=tmp_path / "absent_knn.npy")


def test_save_knn_validates(tmp_path):
    with pytest.raises(ValueError, match=r"index holds neighbour ids outside \[0, 2\) .*is 2"):
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
