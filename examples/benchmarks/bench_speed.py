"""Speed of the L-GCN stages against the dense 2019 design and against the hardware.

For k_at_hop [20,5] u=5, [80,5] u=5 and [200,10] u=10, on synthetic 128-D data with a
randomly initialised LinkageGCN (eval mode), in one run:

- IPS build: ``build_ips`` throughput (IPS/s);
- forward: ``LinkageGCN`` on a built batch (IPS/s) and its achieved GFLOP/s, next to the
  GFLOP/s of a plain fp32 matmul of the same width measured in the same run;
- dense 2019 design: the same weights applied the way the reference code does it, every
  IPS zero-padded to ``k1 * (k2 + 1) + 1`` nodes with a dense row-normalised adjacency and
  ``bmm`` aggregation (``DenseLGCN`` below; ``tests/test_bench_speed.py`` proves equal
  scores with equal weights); the ratio of end-to-end scoring throughput;
- training step: build + forward + backward + SGD step with labels (IPS/s);
- predict: ``predict_links`` end to end over all pivots (pivots/s);
- peak resident memory of the process (each configuration runs in its own process).

``--scaling`` instead prints, for N in ``--sizes`` synthetic faces, the time and peak
memory of every stage of ``LinkageClusterer.predict`` (kNN, scoring, merge).

Usage::

    python examples/benchmarks/bench_speed.py [--threads 1] [--n 20000] [--pivots 512]
    python examples/benchmarks/bench_speed.py --scaling --sizes 10000 100000 [--knn-backend auto]

Pin the threads (``--threads``) and run on a quiet machine: torch's default threads slow
to a crawl when another process competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch
from torch import nn

from linkage_gcn.ips import build_ips
from linkage_gcn.knn import knn
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.training import predict_links

CONFIGS = {"20,5": (20, 5, 5), "80,5": (80, 5, 5), "200,10": (200, 10, 10)}


class DenseLGCN(nn.Module):
    """The 2019 design: zero-padded dense IPS, ``bmm`` mean aggregation, same weights."""

    def __init__(self, model: LinkageGCN) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def densify(batch, k1: int, k2: int):
        """Dense (B, M, D) features, (B, M, M) D^-1 A and (B, k1) 1-hop positions."""
        from torch_geometric.utils import to_dense_adj, to_dense_batch

        max_nodes = k1 * (k2 + 1) + 1
        feats, _ = to_dense_batch(batch.x, batch.batch, max_num_nodes=max_nodes)
        adj = to_dense_adj(batch.edge_index, batch.batch, max_num_nodes=max_nodes)
        adj = adj / adj.sum(-1, keepdim=True).clamp_min(1)
        local = batch.hop1_index - batch.ptr[batch.batch[batch.hop1_index]]
        return feats, adj, local.view(-1, k1)

    def forward(self, feats, adj, hop1_pos):
        m = self.model
        h = m.norm(feats.reshape(-1, feats.shape[-1])).view_as(feats)
        for conv in m.convs:
            agg = torch.bmm(adj, h)
            h = torch.relu(conv.lin_r(h) + conv.lin_l(agg))
        idx = hop1_pos.unsqueeze(-1).expand(-1, -1, h.shape[-1])
        return m.head(h.gather(1, idx).reshape(-1, h.shape[-1]))


def sage_flops(model: LinkageGCN, n_nodes: int, n_pairs: int) -> float:
    """Multiply-add FLOPs of the linear layers of one forward (2 per multiply-add)."""
    flops = 0.0
    for conv in model.convs:
        flops += 2 * 2 * n_nodes * conv.in_channels * conv.out_channels
    h = model.head_channels
    flops += 2 * n_pairs * (model.hidden_channels[-1] * h + h * 2)
    return flops


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def matmul_gflops(rows: int, width: int) -> float:
    a, b = torch.randn(rows, width), torch.randn(width, width)
    sec = timed(lambda: a @ b, 5)
    return 2 * rows * width * width / sec / 1e9


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_config(name: str, n: int, n_pivots: int, batch_size: int) -> dict:
    k1, k2, u = CONFIGS[name]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 128, generator=gen)
    labels = torch.randint(0, n // 10, (n,), generator=gen)
    index, _ = knn(x, max(k1, k2, u))
    torch.manual_seed(0)
    model = LinkageGCN(128).eval()
    pivots = torch.arange(min(n_pivots, n))
    chunks = pivots.split(batch_size)

    def build():
        return [build_ips(x, index, p, index[p, :k1], k2=k2, active_connection=u) for p in chunks]

    t_build = timed(build, 1)
    batches = build()
    n_nodes = sum(b.num_nodes for b in batches)
    n_pairs = sum(b.hop1_index.numel() for b in batches)
    with torch.no_grad():
        t_fwd = timed(lambda: [model(b.x, b.edge_index, b.hop1_index) for b in batches], 2)
        dense = DenseLGCN(model).eval()

        def dense_scores():
            return [dense(*DenseLGCN.densify(b, k1, k2)) for b in build()]

        t_dense = timed(dense_scores, 1)
        t_ours = t_build + t_fwd
        t_pred = timed(
            lambda: predict_links(model, x, index, k1=k1, k2=k2, active_connection=u,
                                  batch_size=batch_size, verbose=False),
            1,
        ) if n <= 20_000 else float("nan")  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def train_steps():
        for p in chunks[:8]:
            b = build_ips(x, index, p, index[p, :k1], k2=k2, active_connection=u, labels=labels)
            loss = nn.functional.cross_entropy(
                model(b.x, b.edge_index, b.hop1_index), b.edge_label.long()
            )
            opt.zero_grad()
            loss.backward()
            opt.step()

    t_train = timed(train_steps, 1)
    n_train = sum(p.numel() for p in chunks[:8])
    gflops = sage_flops(model, n_nodes, n_pairs) / t_fwd / 1e9
    ref = matmul_gflops(max(n_nodes // len(batches), 512), 512)
    return {
        "config": name,
        "nodes_per_ips": n_nodes / pivots.numel(),
        "build_ips_per_s": pivots.numel() / t_build,
        "forward_ips_per_s": pivots.numel() / t_fwd,
        "ours_ips_per_s": pivots.numel() / t_ours,
        "dense_ips_per_s": pivots.numel() / t_dense,
        "ratio_vs_dense": t_dense / t_ours,
        "forward_gflops": gflops,
        "matmul_gflops": ref,
        "share_of_matmul": gflops / ref,
        "train_ips_per_s": n_train / t_train,
        "predict_pivots_per_s": n / t_pred,
        "peak_mib": peak_mib(),
    }


def scaling(sizes, backend: str, threads: int) -> None:
    from linkage_gcn.datasets import make_identities
    from linkage_gcn.merge import pool_pair_scores, threshold_components

    print("| N | kNN s | scoring s | merge s | peak MiB |\n|---|---|---|---|---|")
    for n in sizes:
        X, _ = make_identities(n // 4, dim=128, random_state=0)
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
    ap.add_argument("--pivots", type=int, default=512, help="pivots timed per stage")
    ap.add_argument("--batch-size", type=int, default=64, help="IPS per batch")
    ap.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--scaling", action="store_true", help="stage times against N")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--knn-backend", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling:
        scaling(args.sizes, args.knn_backend, args.threads)
        return
    if args.config:
        print(json.dumps(run_config(args.config, args.n, args.pivots, args.batch_size)))
        return
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), N={args.n}, {args.pivots} pivots, batch {args.batch_size}")  # fmt: skip
    cols = ["config", "nodes_per_ips", "build_ips_per_s", "forward_ips_per_s", "ours_ips_per_s",
            "dense_ips_per_s", "ratio_vs_dense", "forward_gflops", "matmul_gflops",
            "share_of_matmul", "train_ips_per_s", "predict_pivots_per_s", "peak_mib"]  # fmt: skip
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for name in CONFIGS:
        out = subprocess.run(
            [sys.executable, __file__, "--config", name, "--threads", str(args.threads),
             "--n", str(args.n), "--pivots", str(args.pivots),
             "--batch-size", str(args.batch_size)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        row = json.loads(out.stdout.strip().splitlines()[-1])
        cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
