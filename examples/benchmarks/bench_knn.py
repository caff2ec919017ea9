"""kNN search: linkage_gcn.knn against scikit-learn, and the recall/time table of the backends.

Default: wall times of ``knn`` against scikit-learn's brute force on random points (same run,
same data), the speed-up ratio and whether the neighbours agree.

``--table``: the measurements behind ``linkage_gcn.knn.FAISS_SETTINGS`` and ``backend="auto"``.
For each size, the whole set is searched against itself (cosine, self excluded) by exact
search and by faiss indexes of several settings, built through ``linkage_gcn.knn.KNNIndex``.
recall@k is measured on ``--queries`` random rows against an exact search of those rows
(brute force, numpy); "same-id" is the fraction of the exact neighbours of the query's own
identity that were found (the neighbours a clustering needs). Search times are for all N
queries: measured on ``--time-queries`` random rows and extrapolated (marked ``~``) when N
is larger, else measured on all of them. Build times are measured. Data: synthetic 128-D
faces (``make_identities`` draws stacked as ``bench_million.py``'s ``faces()``; the first N
of one draw of the largest size, so the sizes are nested) or the LFW dlib descriptors.

Usage:
    python examples/benchmarks/bench_knn.py [--n 20000] [--dim 128] [--k 80]
    python examples/benchmarks/bench_knn.py --table --sizes 10000 100000 --k 80 200 --threads 2
    python examples/benchmarks/bench_knn.py --table --sizes 1000000 --configs hnsw-sq8 \\
        --time-queries 2000 --threads 2
    python examples/benchmarks/bench_knn.py --table --data lfw --k 80 200 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import describe
from sklearn.neighbors import NearestNeighbors

from linkage_gcn.knn import KNNIndex, choose_settings, knn

LFW = Path("/work/shared/data/lfw-dlib")

#: The settings compared by ``--table``: (name, backend, build params, search sweep).
CONFIGS: dict[str, tuple[str, dict[str, Any], str, tuple[int, ...]]] = {
    "hnsw-sq8": ("faiss-hnsw", {"M": 48, "ef_construction": 80, "storage": "sq8"},
                 "ef_search", (64, 128, 256)),
    "hnsw-sq8-m32": ("faiss-hnsw", {"M": 32, "ef_construction": 40, "storage": "sq8"},
                     "ef_search", (64, 128)),
    "hnsw-flat-m32": ("faiss-hnsw", {"M": 32, "ef_construction": 40, "storage": "flat"},
                      "ef_search", (64, 128, 256)),
    "ivf": ("faiss-ivf", {}, "nprobe", (16, 64, 256)),
}  # fmt: skip


def timed(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--k", type=int, nargs="+", default=None, help="80 (vs sklearn), 80 200")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--table", action="store_true", help="the recall/time table")
    ap.add_argument("--data", choices=["synthetic", "lfw"], default="synthetic")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--configs", nargs="+", default=["exact", *CONFIGS],
                    choices=["exact", *CONFIGS])  # fmt: skip
    ap.add_argument("--queries", type=int, default=1000, help="rows whose recall is measured")
    ap.add_argument("--time-queries", type=int, default=5000,
                    help="rows timed when N is larger (the time is extrapolated)")  # fmt: skip
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if importlib.util.find_spec("faiss") is not None:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    if args.table:
        return table(args)
    k = (args.k or [80])[0]
    X = np.random.default_rng(0).standard_normal((args.n, args.dim)).astype(np.float32)
    print(f"kNN of {args.n} x {args.dim} float32, k={k} (best of {args.repeat})")
    for metric, sk_metric in (("cosine", "cosine"), ("l2", "euclidean")):
        print(run_metric(X, k, metric, sk_metric, args.repeat))


def run_metric(X, k, metric, sk_metric, repeat):
    nn = NearestNeighbors(n_neighbors=k + 1, algorithm="brute", metric=sk_metric)
    t_sk, (_, ref) = timed(lambda: nn.fit(X).kneighbors(X), repeat)
    t_ours, (index, _) = timed(lambda: knn(X, k, metric=metric), repeat)
    agree = (index == ref[:, 1:]).mean()
    line = f"{metric:>6}: sklearn brute {t_sk:6.2f}s | linkage_gcn torch {t_ours:6.2f}s "
    line += f"({t_sk / t_ours:4.1f}x faster) | same neighbours {agree:.5f}"
    if importlib.util.find_spec("faiss") is not None:
        t_f, _ = timed(lambda: knn(X, k, metric=metric, backend="faiss"), repeat)
        line += f" | faiss {t_f:6.2f}s ({t_sk / t_f:4.1f}x)"
    return line


# ------------------------------------------------------------------ --table


def load(data: str, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows and identity labels: synthetic faces (the first ``n_max``) or LFW."""
    if data == "lfw":
        X, y = np.load(LFW / "features.npy"), np.load(LFW / "labels.npy")
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_million import faces

        _, _, X, y = faces(0, n_max, 0)
    X = X.astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def exact_rows(X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Exact cosine top-k of ``X[rows]`` among all rows but themselves (torch, in blocks)."""
    xt, own = torch.from_numpy(X), torch.from_numpy(rows)
    q = xt[own]
    best_s = torch.full((len(rows), k), -torch.inf)
    best_i = torch.zeros((len(rows), k), dtype=torch.long)
    for b0 in range(0, len(X), 16384):
        s = q @ xt[b0 : b0 + 16384].T
        mine = (own >= b0) & (own < b0 + s.shape[1])
        s[mine.nonzero().squeeze(1), own[mine] - b0] = -torch.inf
        s, top = torch.cat([best_s, s], 1).topk(k, dim=1)
        old = torch.gather(best_i, 1, top.clamp(max=k - 1))
        best_s, best_i = s, torch.where(top < k, old, b0 + top - k)
    return best_i.numpy()


def recalls(found: np.ndarray, exact: np.ndarray, y: np.ndarray, rows: np.ndarray) -> tuple:
    """recall@k, and the fraction of the exact same-identity neighbours found."""
    hit = (found[:, :, None] == exact[:, None, :]).any(1)  # (Q, k): exact neighbour found
    same = y[exact] == y[rows][:, None]
    return hit.mean(), hit[same].mean() if same.any() else float("nan")


def search_time(index: KNNIndex, X: np.ndarray, k: int, rows: np.ndarray) -> float:
    """Seconds to search all N rows (measured on ``rows``, scaled by N / len(rows))."""
    start = time.perf_counter()
    index.search(X[rows], k, self_ids=rows)
    return (time.perf_counter() - start) * len(X) / len(rows)


def table(args) -> None:
    ks = args.k or [80, 200]
    import faiss

    X_all, y_all = load(args.data, max(args.sizes))
    sizes = [len(X_all)] if args.data == "lfw" else args.sizes
    print(f"# {describe()}, {args.threads} thread(s) (torch and faiss), faiss "
          f"{faiss.__version__}, load {os.getloadavg()[0]:.1f}; {args.data} data, cosine, "
          f"recall on {args.queries} random queries against exact search")  # fmt: skip
    print("| data | N | k | settings | build s | search s (all N) | total s | recall@k | "
          "same-id |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    rng = np.random.default_rng(1)
    for n in sizes:
        X, y = np.ascontiguousarray(X_all[:n]), y_all[:n]
        rows = np.sort(rng.choice(n, size=min(args.queries, n), replace=False))
        timing = (np.sort(rng.choice(n, size=args.time_queries, replace=False))
                  if n > args.time_queries else np.arange(n))  # fmt: skip
        mark = "~" if len(timing) < n else ""
        exact = {k: exact_rows(X, rows, k) for k in ks}
        auto = {k: choose_settings(n, X.shape[1], k, faiss_available=True).describe()
                for k in ks}  # fmt: skip
        print(f"<!-- N={n}: backend='auto' chooses {auto} -->", flush=True)
        for name in args.configs:
            if name == "exact":
                backend = "faiss" if n >= 20_000 else "torch"
                configs = [(backend, {}, None, (None,))]
            else:
                configs = [CONFIGS[name]]
            for backend, params, knob, values in configs:
                index = KNNIndex("cosine", backend, params=params or None)
                start = time.perf_counter()
                index.add(X)
                build = time.perf_counter() - start
                for value in values:
                    if knob is not None:
                        index.settings_.params[knob] = value  # a search-time setting
                        index.settings_.params.pop("ef_factor", None)  # (ef_search given)
                    for k in ks:
                        _, found = index.search(X[rows], k, self_ids=rows)
                        r, same = recalls(found, exact[k], y, rows)
                        search = search_time(index, X, k, timing)
                        desc = index.settings_.describe()
                        print(f"| {args.data} | {n:,} | {k} | {desc} | {build:.1f} | "
                              f"{mark}{search:.1f} | {mark}{build + search:.1f} | {r:.3f} | "
                              f"{same:.4f} |", flush=True)  # fmt: skip
                del index


if __name__ == "__main__":
    main()
