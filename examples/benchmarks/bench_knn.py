"""kNN search: linkage_gcn.knn against scikit-learn's brute force, same run, same data.

Prints wall times and the speed-up ratio (sklearn time / ours), and checks that the
neighbours agree. Usage: python examples/benchmarks/bench_knn.py [--n 20000] [--dim 128] [--k 80]
"""

import argparse
import importlib.util
import time

import numpy as np
from sklearn.neighbors import NearestNeighbors

from linkage_gcn.knn import knn


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
    ap.add_argument("--k", type=int, default=80)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    X = np.random.default_rng(0).standard_normal((args.n, args.dim)).astype(np.float32)
    print(f"kNN of {args.n} x {args.dim} float32, k={args.k} (best of {args.repeat})")
    for metric, sk_metric in (("cosine", "cosine"), ("l2", "euclidean")):
        print(run_metric(X, args.k, metric, sk_metric, args.repeat))


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


if __name__ == "__main__":
    main()
