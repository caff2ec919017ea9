"""Speed of the L-GCN stages against the dense 2019 design and against the hardware.

For k_at_hop [20,5] u=5, [80,5] u=5 and [200,10] u=10, on 128-D points (random normal by
default, ``--data synthetic`` or ``--data lfw`` for faces) with a randomly initialised LinkageGCN (eval mode), in one run (each time the best of a few
repeats, so that other processes on the machine disturb it less):

- IPS build: ``build_ips`` (features, ``edge_index``, PyG batch) and ``build_ips_graph``
  (ids and CSR only, what the fast paths use), IPS/s;
- forward: ``LinkageGCN`` on a built batch (the plain path) and ``LinkScorer.logits`` (the
  eval fast path), IPS/s, and their achieved GFLOP/s (``sage_flops``: every product of the
  plain forward; ``fast_flops``: the products the fast path computes), next to the GFLOP/s
  of a plain fp32 matmul of the same width measured in the same run;
- int8: the fast path with ``precision="int8"`` (approximate; oneDNN int8 products
  after the first layer), end-to-end IPS/s and its ratio to the dense design;
- dense 2019 design: the same weights applied the way the reference code does it, every
  IPS zero-padded to ``k1 * (k2 + 1) + 1`` nodes with a dense row-normalised adjacency and
  ``bmm`` aggregation (``linkage_gcn.experiments.speed.DenseLGCN``; its tests prove equal
  scores with equal weights), timed on fewer pivots at [200,10]; the ratios of end-to-end
  scoring throughput (build + forward) of the plain and the fast path to it;
- training step: build + forward + backward + SGD step with labels (IPS/s), the former
  way (``build_ips`` batch, edge-list aggregation) and the training loop's (bare IPS
  tensors, CSR ``adj_t``);
- predict: ``predict_links`` end to end on the timed pivots (pivots/s);
- peak resident memory of the process (each configuration runs in its own process).

All paths use the same batch size, by default ``default_inference_batch_size`` (about
4096 IPS nodes). ``--sweep 8 16 32 64 128 256`` instead prints the fast path's pivots/s
against the batch size. ``--scaling`` prints, for N in ``--sizes`` synthetic faces, the
time and peak memory of every stage of scoring (kNN, scoring, merge).

Usage::

    python examples/benchmarks/bench_speed.py [--threads 1] [--n 20000] [--pivots 512]
    python examples/benchmarks/bench_speed.py --data lfw  # real faces (needs ../shared)
    python examples/benchmarks/bench_speed.py --sweep 8 16 32 64 128 256
    python examples/benchmarks/bench_speed.py --scaling --sizes 10000 100000 [--knn-backend auto]

Pin the threads (``--threads``) and run on a quiet machine: torch's default threads slow
to a crawl when another process competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from _machine import describe
from torch import nn

from linkage_gcn.experiments.speed import DenseLGCN, fast_flops, sage_flops
from linkage_gcn.ips import build_ips, build_ips_graph
from linkage_gcn.knn import knn
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.training import _train_forward, default_inference_batch_size, predict_links

CONFIGS = {"20,5": (20, 5, 5), "80,5": (80, 5, 5), "200,10": (200, 10, 10)}


def timed(fn, repeat: int) -> float:
    """Best of ``repeat`` runs after a warm-up (none for 0: one bare run).

    The best run is the least disturbed by other processes.
    """
    if repeat == 0:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(rows: int, width: int) -> float:
    a, b = torch.randn(rows, width), torch.randn(width, width)
    sec = timed(lambda: a @ b, 5)
    return 2 * rows * width * width / sec / 1e9


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_points(data: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, labels)``: the 128-D points the benchmark scores.

    ``"random"``: ``n`` standard normal points (labels random); ``"synthetic"``: about
    ``n`` faces of :func:`~linkage_gcn.datasets.make_identities` (long-tailed identities);
    ``"lfw"``: the 13,233 raw dlib descriptors of LFW from ``../shared`` (``n`` ignored).
    Real and synthetic faces overlap their neighbourhoods, so an IPS holds fewer distinct
    nodes than on random points.
    """
    gen = torch.Generator().manual_seed(0)
    if data == "random":
        return torch.randn(n, 128, generator=gen), torch.randint(0, n // 10, (n,), generator=gen)
    if data == "synthetic":
        from linkage_gcn.datasets import make_identities

        x, y = make_identities(max(1, round(n / 4.7)), dim=128, max_size=500, random_state=0)
    else:
        from linkage_gcn.datasets import find_shared_lfw, load_lfw_dlib

        x, y = load_lfw_dlib(find_shared_lfw())
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y).long()


def run_config(name: str, n: int, n_pivots: int, batch_size, repeat: int = 3,
               data: str = "random") -> dict:  # fmt: skip
    k1, k2, u = CONFIGS[name]
    x, labels = load_points(data, n)
    n = x.shape[0]
    index, _ = knn(x, max(k1, k2, u))
    torch.manual_seed(0)
    model = LinkageGCN(128).eval()
    batch_size = batch_size or default_inference_batch_size(k1, k2)
    max_nodes = k1 * (k2 + 1) + 1
    # random pivots: a data set stored by identity would otherwise time a few people only
    pivots = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:n_pivots]
    chunks = pivots.split(batch_size)
    # the dense design on fewer pivots (it is slow at [200,10]); its rate is per pivot
    dense_chunks = pivots[: max(8, min(n_pivots, 60_000 // max_nodes))].split(batch_size)

    def build(parts=chunks):
        return [build_ips(x, index, p, index[p, :k1], k2=k2, active_connection=u) for p in parts]

    def build_graphs():
        return [build_ips_graph(index, p, index[p, :k1], k2=k2, active_connection=u)
                for p in chunks]  # fmt: skip

    t_build = timed(build, repeat)
    t_graph = timed(build_graphs, repeat)
    batches, graphs = build(), build_graphs()
    n_nodes = sum(b.num_nodes for b in batches)
    n_pairs = sum(b.hop1_index.numel() for b in batches)
    with torch.no_grad():
        t_fwd = timed(lambda: [model(b.x, b.edge_index, b.hop1_index) for b in batches], repeat)
        t_table = timed(lambda: model.link_scorer(x, table=True), 1)  # once per predict call
        scorer = model.link_scorer(x, table=True)
        t_fast = timed(lambda: [scorer.logits(g) for g in graphs], repeat)
        scorer8 = model.link_scorer(x, table=True, precision="int8")
        t_int8 = timed(lambda: [scorer8.logits(g) for g in graphs], repeat)
        dense = DenseLGCN(model).eval()

        def dense_scores():
            return [dense(*DenseLGCN.densify(b, k1, k2)) for b in build(dense_chunks)]

        t_dense = timed(dense_scores, repeat) / sum(c.numel() for c in dense_chunks)
        t_plain = t_build + t_fwd
        t_ours = t_graph + t_fast + t_table * pivots.numel() / n  # table amortised over N
        t_ours8 = t_ours - t_fast + t_int8
        t_pred = timed(
            lambda: predict_links(model, x, index, k1=k1, k2=k2, active_connection=u,
                                  verbose=False, pivots=pivots),
            1,
        )  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    train_chunks = chunks[: max(1, 128 // batch_size)]

    def train_steps(new: bool):
        for p in train_chunks:
            if new:  # the training loop's step: bare IPS tensors, CSR adj_t
                logits, target, _ = _train_forward(model, x, index, labels, p, index[:, :k1],
                                                   k2, u, False, True)  # fmt: skip
            else:  # build_ips batch, edge-list aggregation
                b = build_ips(x, index, p, index[p, :k1], k2=k2, active_connection=u,
                              labels=labels)  # fmt: skip
                logits = model(b.x, b.edge_index, b.hop1_index)
                target = b.edge_label.long()
            loss = nn.functional.cross_entropy(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()

    t_train_old = t_train = float("inf")
    train_steps(False)  # warm-up
    for _ in range(repeat):  # interleaved: a change of load hits both alike
        t_train_old = min(t_train_old, timed(lambda: train_steps(False), 0))
        t_train = min(t_train, timed(lambda: train_steps(True), 0))
    n_train = sum(p.numel() for p in train_chunks)
    gflops = sage_flops(model, n_nodes, n_pairs) / t_fwd / 1e9
    gflops_fast = fast_flops(model, n_nodes, n_pairs) / t_fast / 1e9
    ref = matmul_gflops(max(n_nodes // len(batches), 512), 512)
    p = pivots.numel()
    return {
        "config": name,
        "batch": batch_size,
        "nodes_per_ips": n_nodes / p,
        "max_nodes": max_nodes,
        "build_ips_per_s": p / t_build,
        "graph_ips_per_s": p / t_graph,
        "forward_ips_per_s": p / t_fwd,
        "fast_forward_ips_per_s": p / t_fast,
        "plain_ips_per_s": p / t_plain,
        "fast_ips_per_s": p / t_ours,
        "dense_ips_per_s": 1 / t_dense,
        "plain_vs_dense": t_dense * p / t_plain,
        "fast_vs_dense": t_dense * p / t_ours,
        "int8_ips_per_s": p / t_ours8,
        "int8_vs_dense": t_dense * p / t_ours8,
        "forward_gflops": gflops,
        "fast_gflops": gflops_fast,
        "matmul_gflops": ref,
        "share_of_matmul": gflops / ref,
        "fast_share_of_matmul": gflops_fast / ref,
        "train_old_ips_per_s": n_train / t_train_old,
        "train_ips_per_s": n_train / t_train,
        "predict_pivots_per_s": p / t_pred,
        "peak_mib": peak_mib(),
    }


def batch_sweep(name: str, n: int, sizes, n_pivots: int) -> dict:
    """Fast-path scoring throughput (IPS build + logits, pivots/s) against the batch size."""
    k1, k2, u = CONFIGS[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 128, generator=gen)
    index, _ = knn(x, max(k1, k2, u))
    torch.manual_seed(0)
    model = LinkageGCN(128).eval()
    scorer = model.link_scorer(x, table=True)
    pivots = torch.arange(min(n_pivots, n))

    def run(bs):
        for p in pivots.split(bs):
            scorer.logits(build_ips_graph(index, p, index[p, :k1], k2=k2, active_connection=u))

    best = {bs: float("inf") for bs in sizes}
    for _ in range(3):  # interleaved, best of 3: drifting load hits every size alike
        for bs in sizes:
            start = time.perf_counter()
            run(bs)
            best[bs] = min(best[bs], time.perf_counter() - start)
    return {"config": name, **{str(bs): pivots.numel() / t for bs, t in best.items()}}


def scaling(sizes, backend: str, threads: int) -> None:
    from linkage_gcn.datasets import make_identities
    from linkage_gcn.merge import pool_pair_scores, threshold_components

    print("| N | kNN s | scoring s | merge s | peak MiB |\n|---|---|---|---|---|")
    for n in sizes:
        X, _ = make_identities(n, dim=128, random_state=0)  # about 1.6 n faces
        X = torch.from_numpy(X[:n])
        torch.manual_seed(0)
        model = LinkageGCN(128).eval()
        t0 = time.perf_counter()
        index, _ = knn(X, 20, backend=backend, verbose=False)
        t1 = time.perf_counter()
        src, dst, s = predict_links(model, X, index, k1=20, k2=5, active_connection=5,
                                    verbose=False)  # fmt: skip
        t2 = time.perf_counter()
        edge_index, pooled = pool_pair_scores(src, dst, s, num_nodes=X.shape[0])
        threshold_components(edge_index, pooled, X.shape[0], 0.5)
        t3 = time.perf_counter()
        print(f"| {X.shape[0]:,} | {t1 - t0:.1f} | {t2 - t1:.1f} | {t3 - t2:.2f} | "
              f"{peak_mib():,.0f} |", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--n", type=int, default=20_000, help="synthetic points")
    ap.add_argument("--data", choices=["random", "synthetic", "lfw"], default="random",
                    help="points scored: random normal, synthetic faces or LFW's dlib "
                    "descriptors (from ../shared)")  # fmt: skip
    ap.add_argument("--pivots", type=int, default=512, help="pivots timed per stage")
    ap.add_argument("--batch-size", type=int, default=None,
                    help="IPS per batch (default: default_inference_batch_size)")  # fmt: skip
    ap.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--sweep", type=int, nargs="*", help="fast-path pivots/s per batch size")
    ap.add_argument("--scaling", action="store_true", help="stage times against N")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--knn-backend", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling:
        scaling(args.sizes, args.knn_backend, args.threads)
        return
    if args.config:
        if args.sweep:
            row = batch_sweep(args.config, args.n, args.sweep, args.pivots)
        else:
            row = run_config(args.config, args.n, args.pivots, args.batch_size, data=args.data)
        print(json.dumps(row))
        return
    print(f"# {describe()}, "
          f"{args.threads} thread(s), {args.data} data, N={args.n}, {args.pivots} pivots, "
          f"batch {args.batch_size or 'default'}")  # fmt: skip
    if args.sweep:
        cols = ["config", *map(str, args.sweep)]
    else:
        cols = ["config", "batch", "nodes_per_ips", "max_nodes", "build_ips_per_s",
                "graph_ips_per_s", "forward_ips_per_s", "fast_forward_ips_per_s",
                "plain_ips_per_s", "fast_ips_per_s", "dense_ips_per_s", "plain_vs_dense",
                "fast_vs_dense", "int8_ips_per_s", "int8_vs_dense", "forward_gflops",
                "fast_gflops", "matmul_gflops",
                "share_of_matmul", "fast_share_of_matmul", "train_old_ips_per_s",
                "train_ips_per_s", "predict_pivots_per_s", "peak_mib"]  # fmt: skip
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for name, (k1, k2, _) in CONFIGS.items():
        # as many IPS nodes per configuration as [20,5] gets (at least 32 pivots)
        n_pivots = max(32, args.pivots * 121 // (k1 * (k2 + 1) + 1))
        cmd = [sys.executable, __file__, "--config", name, "--threads", str(args.threads),
               "--n", str(args.n), "--pivots", str(n_pivots), "--data", args.data]  # fmt: skip
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        if args.sweep:
            cmd += ["--sweep", *map(str, args.sweep)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
