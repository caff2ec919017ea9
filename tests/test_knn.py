import importlib.util
import logging
import re
import sys

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from linkage_gcn.io import load_ltc_knn
from linkage_gcn.knn import (
    AUTO_EXACT_BUDGET,
    AUTO_FAISS_MIN_SAMPLES,
    FAISS_SETTINGS,
    KNNIndex,
    KNNSettings,
    check_backend,
    choose_backend,
    choose_settings,
    drop_self,
    from_self_first,
    knn,
    to_self_first,
)

# the package root re-exports the function `knn`, which shadows the module's name there
knn_module = sys.modules["linkage_gcn.knn"]

HAS_FAISS = importlib.util.find_spec("faiss") is not None
HAS_TORCH_CLUSTER = importlib.util.find_spec("torch_cluster") is not None


def sklearn_knn(x, k, metric):
    nn = NearestNeighbors(
        n_neighbors=k + 1,
        algorithm="brute",
        metric="cosine" if metric == "cosine" else "euclidean",
    ).fit(x)
    dist, idx = nn.kneighbors(x)
    return idx[:, 1:], dist[:, 1:]


def assert_same_neighbours(index, sim, ref_index, ref_sim, atol=1e-5):
    # similarities must agree exactly up to float error ...
    np.testing.assert_allclose(sim, ref_sim, atol=atol)
    # ... and indices must agree wherever the similarity is not (nearly) tied
    gaps = np.diff(ref_sim, axis=1)
    clear = np.ones_like(index, dtype=bool)
    clear[:, 1:] &= np.abs(gaps) > 1e-5
    clear[:, :-1] &= np.abs(gaps) > 1e-5
    assert (index[clear] == ref_index[clear]).all()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("n,d,k", [(50, 8, 5), (300, 16, 20), (257, 3, 1)])
def test_matches_sklearn_brute(metric, n, d, k, rng):
    x = rng.standard_normal((n, d)).astype(np.float64)
    index, sim = knn(x, k, metric=metric)
    ref_index, ref_dist = sklearn_knn(x, k, metric)
    ref_sim = 1 - ref_dist if metric == "cosine" else -ref_dist
    assert index.shape == sim.shape == (n, k)
    assert index.dtype == np.int64
    assert_same_neighbours(index, sim, ref_index, ref_sim)
    assert (np.diff(sim, axis=1) <= 1e-12).all(), "rows must be sorted by decreasing similarity"


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_blocked_search_equals_single_tile(metric, rng):
    x = rng.standard_normal((203, 12)).astype(np.float32)
    full = knn(x, 7, metric=metric, tile_size=1 << 30)
    # tiny tiles force many query chunks and several database blocks per chunk
    tiled = knn(x, 7, metric=metric, chunk_size=16, tile_size=16 * 40)
    np.testing.assert_array_equal(full[0], tiled[0])
    np.testing.assert_allclose(full[1], tiled[1], atol=1e-5)


def test_duplicates_never_return_self(rng):
    base = rng.standard_normal((20, 6))
    x = np.concatenate([base, base, base[:5]])  # every row has exact duplicates
    index, sim = knn(x, 3)
    assert not (index == np.arange(len(x))[:, None]).any()
    # the duplicate partner is found first with similarity 1
    np.testing.assert_allclose(sim[:, 0], 1.0, atol=1e-6)
    assert ((index[:, 0] % 20) == (np.arange(len(x)) % 20)).all()


def test_all_identical_points():
    x = np.ones((6, 4))
    index, _ = knn(x, 5)
    for i, row in enumerate(index):
        assert sorted(row.tolist()) == [j for j in range(6) if j != i]


def test_torch_in_torch_out(rng):
    x = torch.from_numpy(rng.standard_normal((40, 5)).astype(np.float32))
    index, sim = knn(x, 4)
    assert isinstance(index, torch.Tensor) and isinstance(sim, torch.Tensor)
    assert index.dtype == torch.long and sim.dtype == torch.float32
    np_index, _ = knn(x.numpy(), 4)
    np.testing.assert_array_equal(index.numpy(), np_index)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_matches_cpu(rng):
    x = torch.from_numpy(rng.standard_normal((500, 16)).astype(np.float32))
    cpu = knn(x, 10)
    gpu = knn(x.cuda(), 10)
    assert gpu[0].is_cuda
    np.testing.assert_allclose(gpu[1].cpu().numpy(), cpu[1].numpy(), atol=1e-5)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_faiss_exact_matches_torch(metric, rng):
    x = rng.standard_normal((400, 16)).astype(np.float32)
    ref = knn(x, 10, metric=metric)
    out = knn(x, 10, metric=metric, backend="faiss")
    assert_same_neighbours(out[0], out[1], ref[0], ref[1], atol=1e-4)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
@pytest.mark.parametrize("backend", ["faiss-ivf", "faiss-hnsw"])
def test_faiss_approximate_recall(backend, rng):
    centres = rng.standard_normal((40, 16))
    x = (centres[rng.integers(0, 40, 3000)] + 0.3 * rng.standard_normal((3000, 16))).astype(
        np.float32
    )
    ref, _ = knn(x, 10)
    out, _ = knn(x, 10, backend=backend)
    assert not (out == np.arange(len(x))[:, None]).any()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(out, ref)])
    assert recall > 0.9


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_faiss_duplicates_never_return_self():
    x = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)  # 5 copies of each point
    index, _ = knn(x, 4, backend="faiss")
    assert not (index == np.arange(len(x))[:, None]).any()
    assert ((index // 5) == (np.arange(len(x)) // 5)[:, None]).all()


@pytest.mark.skipif(not HAS_TORCH_CLUSTER, reason="torch_cluster not installed")
def test_torch_cluster_matches_torch(rng):
    x = rng.standard_normal((300, 8)).astype(np.float32)
    ref = knn(x, 6)
    out = knn(x, 6, backend="torch_cluster")
    assert_same_neighbours(out[0], out[1], ref[0], ref[1], atol=1e-4)


def test_missing_backend_package_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        knn_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "faiss" else real(name, *a),
    )
    with pytest.raises(ValueError, match="needs the package 'faiss'"):
        knn(np.eye(3), 1, backend="faiss")


@pytest.mark.parametrize(
    "x,k,kwargs,match",
    [
        (np.array([[0.0, np.nan], [1.0, 0.0], [0.0, 1.0]]), 1, {}, "NaN or infinity"),
        (np.array([[0.0, np.inf], [1.0, 0.0], [0.0, 1.0]]), 1, {}, "NaN or infinity"),
        (np.ones(5), 1, {}, "2-D"),
        (np.ones((3, 2, 2)), 1, {}, "2-D"),
        (np.eye(3), 3, {}, "k must be smaller"),
        (np.eye(3), 0, {}, "k must be an integer >= 1"),
        (np.eye(3), 1.5, {}, "k must be an integer"),
        (np.eye(1), 1, {}, "at least 2"),
        (np.eye(3), 1, {"metric": "manhattan"}, "unknown metric"),
        (np.eye(3), 1, {"backend": "annoy"}, "unknown backend"),
        (np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 1, {}, "all-zero row"),
    ],
)
def test_bad_input(x, k, kwargs, match):
    with pytest.raises(ValueError, match=match):
        knn(x, k, **kwargs)


def test_zero_rows_are_fine_for_l2():
    index, sim = knn(np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]]), 1, metric="l2")
    assert index.ravel().tolist() == [1, 0, 1]
    np.testing.assert_allclose(sim.ravel(), [-1.0, -1.0, -2.0])


def test_self_first_round_trip(rng):
    index = rng.integers(0, 10, size=(10, 4))
    table = to_self_first(index)
    assert (table[:, 0] == np.arange(10)).all()
    np.testing.assert_array_equal(from_self_first(table), index)
    t = torch.from_numpy(table)
    assert isinstance(from_self_first(t), torch.Tensor)


def test_from_self_first_rejects_bad_tables():
    with pytest.raises(ValueError, match="not self-first: row 1 starts with 2"):
        from_self_first(np.array([[0, 1], [2, 0], [2, 1]]))
    with pytest.raises(ValueError, match="K >= 1"):
        from_self_first(np.arange(3)[:, None])


# ------------------------------------------------------------------ drop_self


def _drop_self_reference(ids, vals):
    """The documented rule, written out row by row."""
    out_ids, out_vals = [], []
    for i, (row, v) in enumerate(zip(ids.tolist(), vals.tolist())):
        j = row.index(i) if i in row else len(row) - 1
        out_ids.append(row[:j] + row[j + 1 :])
        out_vals.append(v[:j] + v[j + 1 :])
    return np.array(out_ids), np.array(out_vals)


def test_drop_self_matches_the_rule(rng):
    n, width = 60, 5
    ids = rng.integers(0, n, size=(n, width))
    for i in range(0, n, 2):  # self in every other row, at random places, sometimes twice
        ids[i, rng.choice(width, size=1 + (i % 3 == 0), replace=False)] = i
    ids[1] = 1  # a row made only of its own id
    vals = rng.standard_normal((n, width))
    ref_ids, ref_vals = _drop_self_reference(ids, vals)
    has_self = [i in row for i, row in enumerate(ids)]
    assert 0 < sum(has_self) < n and ids[0].tolist().count(0) == 2
    out_ids, out_vals = drop_self(ids, vals)
    assert isinstance(out_ids, np.ndarray) and out_ids.dtype == np.int64
    np.testing.assert_array_equal(out_ids, ref_ids)
    np.testing.assert_array_equal(out_vals, ref_vals)
    t_ids, t_vals, t_more = drop_self(torch.from_numpy(ids), torch.from_numpy(vals), -vals)
    assert isinstance(t_ids, torch.Tensor) and isinstance(t_more, np.ndarray)
    np.testing.assert_array_equal(t_ids.numpy(), ref_ids)
    np.testing.assert_array_equal(t_vals.numpy(), ref_vals)
    np.testing.assert_array_equal(t_more, -ref_vals)


def test_drop_self_rejects_bad_shapes():
    with pytest.raises(ValueError, match="K >= 1"):
        drop_self(np.zeros((3, 1), dtype=int))
    with pytest.raises(ValueError, match=r"values\[0\] has shape \(2, 3\)"):
        drop_self(np.zeros((2, 2), dtype=int), np.zeros((2, 3)))


def test_ltc_loader_uses_the_same_rule(tmp_path, rng):
    n, width = 30, 6
    ids = np.array([rng.permutation(n)[:width] for _ in range(n)])
    dist = rng.uniform(0, 1, size=(n, width))
    np.savez(tmp_path / "k.npz", data=np.stack([ids, dist], axis=1))
    ref_ids, ref_dist = _drop_self_reference(ids, dist)
    index, sim = load_ltc_knn(tmp_path / "k.npz", sort=False)
    np.testing.assert_array_equal(index, ref_ids)
    np.testing.assert_allclose(sim, 1 - ref_dist, atol=1e-6)


# ------------------------------------------------------------------ backend "auto"


@pytest.mark.parametrize(
    ("n", "d", "faiss", "gpu", "expected"),
    [
        (1_000, 128, True, False, "torch"),
        (AUTO_FAISS_MIN_SAMPLES - 1, 128, True, False, "torch"),
        (AUTO_FAISS_MIN_SAMPLES, 128, True, False, "faiss"),
        (200_000, 128, True, False, "faiss"),
        (250_000, 128, True, False, "faiss"),
        (260_000, 128, True, False, "faiss-hnsw"),
        (200_000, 512, True, False, "faiss-hnsw"),
        (5_000_000, 256, True, False, "faiss-hnsw"),
        (5_000_000, 256, False, False, "torch"),
        (200_000, 128, True, True, "torch"),
    ],
)
def test_choose_backend(n, d, faiss, gpu, expected):
    assert choose_backend(n, d, faiss_available=faiss, on_gpu=gpu) == expected


def test_choose_backend_exact_budget_boundary():
    d = 128
    n = int((AUTO_EXACT_BUDGET / d) ** 0.5)
    while float(n + 1) ** 2 * d <= AUTO_EXACT_BUDGET:
        n += 1
    while float(n) ** 2 * d > AUTO_EXACT_BUDGET:
        n -= 1
    assert choose_backend(n, d, faiss_available=True) == "faiss"
    assert choose_backend(n + 1, d, faiss_available=True) == "faiss-hnsw"
    with pytest.raises(ValueError, match="n_features"):
        choose_backend(10, 0, faiss_available=True)


def test_auto_logs_its_choice(rng, caplog):
    x = rng.standard_normal((30, 4))
    with caplog.at_level(logging.INFO, logger="linkage_gcn"):
        knn(x, 3)
    records = [r for r in caplog.records if r.name == "linkage_gcn"]
    assert len(records) == 2 and {r.levelno for r in records} == {logging.INFO}
    assert "'torch'" in records[0].getMessage() and "N=30" in records[0].getMessage()
    # an exact search logs its time (an approximate one, its recall and time)
    assert re.fullmatch(r"kNN: torch, exact, k=3, \d+\.\d s\.", records[1].getMessage())


def test_auto_runs_the_chosen_backend(rng, monkeypatch):
    chosen = []
    real = knn_module.choose_settings

    def fake_choose(n, d, k=None, *, faiss_available, backend="auto", **kw):
        chosen.append((n, d, k, faiss_available, backend, kw["on_gpu"]))
        return real(n, d, k, faiss_available=True, backend="faiss" if faiss_available else "torch")

    monkeypatch.setattr(knn_module, "choose_settings", fake_choose)
    x = rng.standard_normal((80, 6))
    index, sim = knn(x, 4)
    # knn() chooses for the whole set, then the index it fills takes the backend chosen
    ran = "faiss" if HAS_FAISS else "torch"
    assert chosen == [(80, 6, 4, HAS_FAISS, "auto", False), (80, 6, None, HAS_FAISS, ran, False)]
    ref_index, ref_dist = sklearn_knn(x, 4, "cosine")
    assert_same_neighbours(index, sim, ref_index, 1 - ref_dist, atol=1e-4)


# ------------------------------------------------------------------ the settings table


@pytest.mark.parametrize(
    ("n", "k", "growing", "backend", "params"),
    [
        (10_000, 80, False, "torch", {}),
        (100_000, 80, False, "faiss", {}),
        (100_000, 200, True, "faiss", {}),
        (1_000_000, 20, False, "faiss-hnsw",
         {"M": 48, "ef_construction": 80, "storage": "sq8", "refine": 2.0, "ef_search": 64}),
        (1_000_000, 80, False, "faiss-hnsw",
         {"M": 48, "ef_construction": 80, "storage": "sq8", "refine": 2.0, "ef_search": 81}),
        (1_000_000, 200, False, "faiss-hnsw",
         {"M": 48, "ef_construction": 80, "storage": "sq8", "refine": 2.0, "ef_search": 201}),
        # a growing index: float32 vectors (nothing trained on its first batch)
        (1_000_000, 80, True, "faiss-hnsw",
         {"M": 32, "ef_construction": 40, "storage": "flat", "ef_search": 162}),
        (1_000_000, None, True, "faiss-hnsw",
         {"M": 32, "ef_construction": 40, "ef_factor": 2.0, "storage": "flat"}),
    ],
)  # fmt: skip
def test_choose_settings_per_size(n, k, growing, backend, params):
    got = choose_settings(n, 128, k, faiss_available=True, growing=growing)
    assert got == KNNSettings(backend, params)
    assert choose_backend(n, 128, faiss_available=True) == backend


def test_choose_settings_reads_the_one_table(monkeypatch):
    table = dict(FAISS_SETTINGS)
    table[("faiss-hnsw", False)] = {"M": 7, "ef_construction": 9, "ef_factor": 3.0,
                                    "storage": "flat"}  # fmt: skip
    monkeypatch.setattr(knn_module, "FAISS_SETTINGS", table)
    got = choose_settings(10**6, 128, 30, faiss_available=True)
    assert got.params == {"M": 7, "ef_construction": 9, "storage": "flat", "ef_search": 93}
    # explicit backends and parameters: the table's entries replaced one by one
    got = choose_settings(10**6, 128, 30, faiss_available=True, backend="faiss-hnsw",
                          params={"M": 16, "ef_search": 40})  # fmt: skip
    assert got.params == {"M": 16, "ef_construction": 9, "storage": "flat", "ef_search": 40}
    ivf = choose_settings(40_000, 64, faiss_available=False, backend="faiss-ivf")
    assert ivf == KNNSettings("faiss-ivf", {"nprobe": 32, "nlist": 800})
    assert choose_settings(10**6, 128, faiss_available=True, on_gpu=True).backend == "torch"
    assert choose_settings(10**6, 128, faiss_available=False).backend == "torch"


@pytest.mark.parametrize(
    ("backend", "params", "match"),
    [
        ("auto", {"M": 16}, "name the approximate backend"),
        ("torch", {"M": 16}, "it has no parameters"),
        ("faiss-hnsw", {"nprobe": 4}, "has no parameter 'nprobe'; it takes 'M', "),
        ("faiss-ivf", {"M": 4}, "has no parameter 'M'; it takes 'nlist', 'nprobe'"),
        ("faiss-hnsw", {"M": 1}, "M must be an integer >= 2"),
        ("faiss-hnsw", {"ef_search": 0}, "ef_search must be an integer >= 1"),
        ("faiss-hnsw", {"storage": "pq"}, "unknown storage 'pq'; choose one of 'flat', 'sq8'"),
        ("faiss-hnsw", {"refine": 0.5}, r"refine must be a number in \[1, inf\]"),
        ("faiss-hnsw", {"ef_factor": 0}, r"ef_factor must be a number in \(0, inf\)"),
        ("faiss-hnsw", {"storage": "flat", "refine": 2}, "needs storage='sq8'"),
        ("faiss-ivf", {"nlist": 2.5}, "nlist must be an integer"),
        ("faiss-ivf", [("nlist", 4)], "params must be a mapping"),
    ],
)
def test_bad_params(backend, params, match):
    with pytest.raises(ValueError, match=match):
        choose_settings(10**6, 16, 5, faiss_available=True, backend=backend, params=params)
    with pytest.raises(ValueError, match=match):
        knn(np.eye(4) + 0.1, 1, backend=backend, params=params)  # before any work


def test_nprobe_joins_the_ivf_params():
    assert KNNIndex(backend="faiss-ivf", nprobe=5)._settings()["params"] == {"nprobe": 5}
    assert KNNIndex(backend="faiss-hnsw", nprobe=5)._settings()["params"] == {}  # no lists
    with pytest.raises(ValueError, match="disagree"):
        KNNIndex(backend="faiss-ivf", nprobe=5, params={"nprobe": 6})._settings()
    with pytest.raises(ValueError, match="recall_queries must be an integer >= 0"):
        knn(np.eye(3) + 0.1, 1, recall_queries=-1)


# ------------------------------------------------------------------ recall estimate


def set_recall(found, ref):
    """recall@k written out with Python sets, row by row."""
    k = ref.shape[1]
    return np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(found, ref)])


# an approximate setting that misses neighbours: a sparse graph searched narrowly
POOR_HNSW = {"M": 4, "ef_construction": 8, "ef_search": 16, "storage": "flat"}


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_knn_logs_a_recall_that_an_independent_count_confirms(rng, caplog):
    x = rng.standard_normal((1500, 24)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="linkage_gcn"):
        index, _ = knn(x, 10, backend="faiss-hnsw", params=POOR_HNSW, recall_queries=1500)
    ref, _ = sklearn_knn(x, 10, "cosine")
    expected = set_recall(index, ref)
    assert 0.3 < expected < 0.97  # the check has something to measure
    (line,) = [r.getMessage() for r in caplog.records if "recall@" in r.getMessage()]
    assert caplog.records[-1].levelno == logging.INFO
    m = re.fullmatch(
        r"kNN: faiss-hnsw M=4 ef_construction=8 storage=flat ef_search=16, recall@10 "
        r"(\d\.\d{3}) on 1500 sampled queries, \d+\.\d s \(recall check \d+\.\d s\)\.",
        line,
    )
    assert m is not None, line
    assert float(m.group(1)) == pytest.approx(expected, abs=5e-4)


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_auto_logs_settings_and_recall_when_approximate(rng, caplog, monkeypatch):
    monkeypatch.setattr(knn_module, "AUTO_FAISS_MIN_SAMPLES", 100)
    monkeypatch.setattr(knn_module, "AUTO_EXACT_BUDGET", 0)
    x = clustered(rng, 800, 16)
    with caplog.at_level(logging.INFO, logger="linkage_gcn"):
        index, sim = knn(x, 8, recall_queries=64)
    first, second = [r.getMessage() for r in caplog.records if r.name == "linkage_gcn"]
    assert first == (
        "kNN search: backend 'auto' chose 'faiss-hnsw' for N=800 points of dimension 16 (k=8): "
        "faiss-hnsw M=48 ef_construction=80 storage=sq8 refine=2 ef_search=64."
    )
    head = "kNN: faiss-hnsw M=48 ef_construction=80 storage=sq8 refine=2 ef_search=64, recall@8 "
    assert second.startswith(head) and "on 64 sampled queries" in second
    # 8-bit codes are re-ranked exactly: the similarities are those of the rows returned
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    exact = np.einsum("nd,nkd->nk", unit, unit[index])
    np.testing.assert_allclose(sim, exact, atol=1e-5)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="linkage_gcn"):
        knn(x, 8, recall_queries=0)  # no check: only the choice is logged
    assert ["recall@" in r.getMessage() for r in caplog.records] == [False]


ESTIMATED = ["torch"] + ([("faiss-hnsw", POOR_HNSW),
                          ("faiss-hnsw", {**POOR_HNSW, "storage": "sq8"}),
                          ("faiss-ivf", {"nlist": 40, "nprobe": 2}), "faiss"]
                         if HAS_FAISS else [])  # fmt: skip


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("setting", ESTIMATED, ids=str)
def test_estimate_recall_against_brute_force(setting, metric, rng):
    backend, params = setting if isinstance(setting, tuple) else (setting, None)
    rows = rng.standard_normal((1200, 12)).astype(np.float32)  # hard: recall < 1
    index = KNNIndex(metric, backend, params=params)
    index.add(rows[:700])
    index.add(rows[700:])  # IVF lists and 8-bit ranges trained on the first batch
    queries = rows[::2]
    own = np.arange(0, 1200, 2)
    est = index.estimate_recall(queries, 6, self_ids=own, n_queries=200, random_state=3)
    assert index.recall_ is est and est.k == 6 and est.n_queries == 200
    assert est.queries.shape == (200,) and len(np.unique(est.queries)) == 200
    _, found = index.search(queries[est.queries], 6, self_ids=own[est.queries])
    _, ref, _ = brute(rows, queries[est.queries], 6, metric, own=own[est.queries])
    assert est.recall == pytest.approx(set_recall(found, ref), abs=1e-12)
    if backend in ("torch", "faiss"):
        assert est.recall == 1.0
    else:
        assert est.recall < 0.999  # the setting misses some: the estimate is not trivially 1
    again = index.estimate_recall(queries, 6, self_ids=own, n_queries=200, random_state=3)
    np.testing.assert_array_equal(again.queries, est.queries)  # seeded
    index.reset()
    assert index.recall_ is None


def test_estimate_recall_bad_input():
    index = KNNIndex()
    index.add(np.eye(4)[:, :3] + 0.1)
    with pytest.raises(ValueError, match="n_queries must be an integer >= 1"):
        index.estimate_recall(np.ones((2, 3)), 1, n_queries=0)
    with pytest.raises(ValueError, match="self_ids has 1 entries but there are 2 queries"):
        index.estimate_recall(np.ones((2, 3)), 1, self_ids=[0])
    with pytest.raises(ValueError, match="k=4 but the index holds only 3 rows"):
        index.estimate_recall(np.ones((2, 3)), 4, self_ids=[0, 1])
    assert index.recall_ is None


@pytest.mark.skipif(not HAS_FAISS, reason="faiss not installed")
def test_growing_and_one_batch_hnsw_settings(rng):
    x = clustered(rng, 600, 8)
    grown = KNNIndex("cosine", "faiss-hnsw")
    grown.add(x[:100])
    grown.add(x[100:])
    assert grown.settings_ == KNNSettings(
        "faiss-hnsw", {"M": 32, "ef_construction": 40, "ef_factor": 2.0, "storage": "flat"}
    )
    one = KNNIndex("cosine", "faiss-hnsw", params={"storage": "sq8"})
    one.add(x)
    assert one.settings_.params["storage"] == "sq8" and one.settings_.params["refine"] == 2.0
    one.remove(np.arange(50))  # rows of the 8-bit index are rebuilt from its float32 copy
    assert len(one) == 550
    _, ids = one.search(x[50:60], 3, self_ids=np.arange(10))
    _, ref_ids, _ = brute(x[50:], x[50:60], 3, "cosine", own=np.arange(10))
    assert (ids == ref_ids).mean() > 0.9


# ------------------------------------------------------------------ KNNIndex

INDEX_BACKENDS = ["torch"] + (["faiss", "faiss-hnsw", "faiss-ivf"] if HAS_FAISS else [])
EXACT = ["torch"] + (["faiss"] if HAS_FAISS else [])


def brute(rows, queries, k, metric, own=None):
    """Independent definition: every similarity, own row removed, sorted (numpy)."""
    if metric == "cosine":
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        sim = queries @ rows.T
    else:
        sim = -np.linalg.norm(queries[:, None, :] - rows[None, :, :], axis=2)
    if own is not None:
        sim[np.arange(len(queries)), own] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, order, 1), order, sim


def clustered(rng, n, d):
    centres = rng.standard_normal((20, d))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, d))).astype(
        np.float32
    )


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("backend", EXACT)
def test_index_search_matches_brute_force(metric, backend, rng):
    rows, queries = rng.standard_normal((120, 6)), rng.standard_normal((30, 6))
    index = KNNIndex(metric, backend, chunk_size=7, tile_size=7 * 20)  # several tiles
    index.add(rows[:50])
    index.add(rows[50:])  # rows are numbered in the order added
    sim, ids = index.search(queries, 9)
    ref_sim, ref_ids, _ = brute(rows, queries, 9, metric)
    assert ids.dtype == np.int64 and sim.shape == ids.shape == (30, 9)
    assert_same_neighbours(ids, sim, ref_ids, ref_sim, atol=1e-4)


@pytest.mark.parametrize("backend", EXACT)
def test_index_self_ids_exclude_the_query_row_even_among_duplicates(backend, rng):
    base = rng.standard_normal((15, 4)).astype(np.float32)
    rows = np.concatenate([base, base])  # every row has an exact duplicate
    index = KNNIndex("cosine", backend)
    index.add(rows)
    own = np.array([3, 18, 0, 29])
    sim, ids = index.search(rows[own], 2, self_ids=own)
    assert not (ids == own[:, None]).any()
    assert (ids[:, 0] == (own + 15) % 30).all()  # the duplicate, at similarity 1
    np.testing.assert_allclose(sim[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("metric", ["cosine", "l2"])
@pytest.mark.parametrize("backend", EXACT)
def test_index_bounds_report_the_rows_a_query_enters(metric, backend, rng):
    rows, queries = rng.standard_normal((80, 5)), rng.standard_normal((12, 5))
    bounds = rng.uniform(-0.2, 0.6, 80) if metric == "cosine" else rng.uniform(-2.5, -1.0, 80)
    index = KNNIndex(metric, backend, chunk_size=5, tile_size=5 * 16)
    index.add(rows)
    # k = every row: the faiss backends look for the pairs among the k results
    _, _, (qi, row, s) = index.search(queries, 80, bounds=bounds)
    _, _, full = brute(rows, queries, 80, metric)
    want = sorted(zip(*np.nonzero(full > bounds[None, :])))
    got = sorted(zip(qi.tolist(), row.tolist()))
    assert got == [(int(a), int(b)) for a, b in want] and len(got) > 0
    np.testing.assert_allclose(s, full[qi, row], atol=1e-4)


def test_index_bounds_of_the_torch_backend_are_exact_beyond_k(rng):
    rows, queries = rng.standard_normal((60, 5)), rng.standard_normal((6, 5))
    bounds = np.full(60, -0.5)
    index = KNNIndex("cosine", "torch")
    index.add(rows)
    _, _, (qi, _, _) = index.search(queries, 2, bounds=bounds)
    _, _, full = brute(rows, queries, 2, "cosine")
    assert qi.size == int((full > -0.5).sum()) > 2 * 6  # more than the k results hold


@pytest.mark.parametrize("backend", INDEX_BACKENDS)
def test_index_remove_equals_an_index_of_the_rows_kept(backend, rng):
    rows = clustered(rng, 400, 8)
    index = KNNIndex("l2", backend)
    index.add(rows)
    gone = rng.choice(400, size=60, replace=False)
    index.remove(gone)
    kept = np.delete(rows, gone, axis=0)
    assert len(index) == 340
    sim, ids = index.search(kept[:50], 5, self_ids=np.arange(50))
    ref_sim, ref_ids, _ = brute(kept, kept[:50], 5, "l2", own=np.arange(50))
    if backend in EXACT:
        assert_same_neighbours(ids, sim, ref_ids, ref_sim, atol=1e-4)
    else:  # approximate indexes: recall
        recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, ref_ids)])
        assert recall > 0.9 and (ids < 340).all()


def test_index_views_reset_and_lazy_settings(rng):
    index = KNNIndex(metric="manhattan", backend="annoy")  # __init__ only stores settings
    assert len(index) == 0 and index.backend_ is None and index.n_features_in_ is None
    with pytest.raises(ValueError, match="unknown metric 'manhattan'"):
        index.add(np.eye(3))
    index = KNNIndex()
    index.add(np.eye(3))
    assert index.backend_ == "torch" and index.n_features_in_ == 3 and len(index) == 3
    assert repr(index) == "KNNIndex(metric='cosine', backend='torch', n_rows=3)"
    index.add(np.zeros((0, 3)))  # an empty batch adds nothing
    index.reset()
    assert len(index) == 0 and index.backend_ is None
    index.add(np.eye(5))  # another width after a reset
    assert index.n_features_in_ == 5


def test_index_keeps_torch_dtype_and_kind(rng):
    x = torch.from_numpy(rng.standard_normal((20, 3)))  # float64
    index = KNNIndex("l2", "torch")
    index.add(x)
    sim, ids = index.search(x[:4], 2, self_ids=torch.arange(4))
    assert isinstance(ids, torch.Tensor) and sim.dtype == torch.float64
    ref_sim, ref_ids, _ = brute(x.numpy(), x[:4].numpy(), 2, "l2", own=np.arange(4))
    np.testing.assert_allclose(sim.numpy(), ref_sim, atol=1e-10)
    assert (ids.numpy() == ref_ids).all()


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda i: i.search(np.ones((1, 2)), 1), "features"),
        (lambda i: i.search(np.ones((1, 3)), 5), "k=5 but the index holds only 4 rows"),
        (lambda i: i.search(np.ones((1, 3)), 4, self_ids=[0]), "other than each query itself"),
        (lambda i: i.search(np.ones((2, 3)), 1, self_ids=[0]), "one stored row per query"),
        (lambda i: i.search(np.ones((1, 3)), 1, self_ids=[4]),
         r"self_ids holds 1 row id\(s\) outside \[0, 4\), e.g. 4"),
        (lambda i: i.search(np.ones((1, 3)), 1, self_ids=[0.5]), "integer row ids"),
        (lambda i: i.search(np.ones((1, 3)), 1, bounds=np.ones(3)), r"shape \(4,\)"),
        (lambda i: i.search(np.ones((1, 3)), 1, bounds=np.full(4, np.nan)), "NaN"),
        (lambda i: i.search(np.full((1, 3), np.nan), 1), "NaN or infinity"),
        (lambda i: i.search(np.zeros((1, 3)), 1), "queries has 1 all-zero row"),
        (lambda i: i.add(np.ones((2, 4))), "x has 4 features"),
        (lambda i: i.add(np.array([[1.0, 0, 0], [0, 0, 0]])), "x has 1 all-zero row"),
        (lambda i: i.remove([7]), r"ids holds 1 row id\(s\) outside \[0, 4\), e.g. 7"),
    ],
)
def test_index_bad_input(call, match):
    index = KNNIndex()
    index.add(np.eye(4)[:, :3] + 0.1)
    with pytest.raises(ValueError, match=match):
        call(index)
    assert len(index) == 4  # nothing changed


def test_index_empty_search_and_settings():
    with pytest.raises(ValueError, match="the index is empty"):
        KNNIndex().search(np.ones((1, 2)), 1)
    with pytest.raises(ValueError, match="nprobe must be an integer >= 1"):
        KNNIndex(nprobe=0).add(np.eye(2))
    with pytest.raises(ValueError, match="tile_size"):
        knn(np.eye(3), 1, tile_size=0)


def test_check_backend_names_the_missing_package(monkeypatch):
    assert check_backend("torch") == "torch"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        knn_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("faiss", "torch_cluster") else real(name, *a),
    )
    for backend, package in (("faiss-hnsw", "faiss"), ("torch_cluster", "torch_cluster")):
        with pytest.raises(ValueError, match=f"needs the package '{package}'"):
            check_backend(backend)
    index = KNNIndex(backend="faiss")
    with pytest.raises(ValueError, match="needs the package 'faiss'"):
        index.add(np.eye(3))
    assert len(index) == 0 and index.backend_ is None
