"""Instance Pivot Subgraph construction: batched tensor builder against a per-pivot loop.

The per-pivot loop follows the reference feeder (sets, a dict map and a dense D^-1 A
per IPS, zero-padded to k1 * (k2 + 1) + 1 nodes), but with a set membership test
(the reference scans a list: about 1.2 s per IPS at [200, 10]). Both run on the same
kNN table in the same run; the ratio is printed.
Usage: python examples/benchmarks/bench_ips.py [--n 5000] [--pivots 200]
"""

import argparse
import time

import numpy as np
import torch

from linkage_gcn.ips import build_ips
from linkage_gcn.knn import knn


def per_pivot_ips(features, knn_table, pivot, k1, k2, u):
    hops1 = set(knn_table[pivot, :k1].tolist())
    hops2 = set()
    for h in hops1:
        hops2.update(knn_table[h, :k2].tolist())
    nodes = list(hops1 | hops2 | {pivot})
    pos = {v: i for i, v in enumerate(nodes)}
    feat = torch.from_numpy(features[nodes] - features[pivot])
    max_nodes = k1 * (k2 + 1) + 1
    feat = torch.cat([feat, torch.zeros(max_nodes - len(nodes), feat.shape[1])])
    adj = torch.zeros(len(nodes), len(nodes))
    for v in nodes:
        for w in knn_table[v, :u].tolist():
            if w in pos:
                adj[pos[v], pos[w]] = 1
                adj[pos[w], pos[v]] = 1
    adj = adj / adj.sum(1, keepdim=True).clamp_min(1)
    padded = torch.zeros(max_nodes, max_nodes)
    padded[: len(nodes), : len(nodes)] = adj
    return feat, padded


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--pivots", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    index, _ = knn(X, 200)
    x, idx = torch.from_numpy(X), torch.from_numpy(index)
    pivots = rng.choice(args.n, args.pivots, replace=False)
    for k1, k2, u in ((20, 5, 5), (80, 5, 5), (200, 10, 10)):
        start = time.perf_counter()
        for p in pivots:
            per_pivot_ips(X, index, int(p), k1, k2, u)
        t_loop = time.perf_counter() - start
        p = torch.from_numpy(pivots)
        start = time.perf_counter()
        for chunk in p.split(64):
            build_ips(x, idx, chunk, idx[chunk, :k1], k2=k2, active_connection=u)
        t_batch = time.perf_counter() - start
        print(
            f"[{k1},{k2}] u={u}: per-pivot loop {args.pivots / t_loop:8.1f} IPS/s | "
            f"batched build_ips {args.pivots / t_batch:9.1f} IPS/s | {t_loop / t_batch:6.1f}x"
        )


if __name__ == "__main__":
    main()
