"""Train and score a LinkageGCN on several processes with torch.distributed (DDP).

One process per device; every process runs this same script::

    # one machine, 2 CPU processes (gloo) or 2 GPUs (nccl)
    torchrun --standalone --nproc_per_node 2 examples/ddp_train.py --n-identities 400

    # two machines with 4 GPUs each: run on both (host0 is reachable from host1)
    torchrun --nnodes 2 --nproc_per_node 4 --rdzv_id lgcn --rdzv_backend c10d \
        --rdzv_endpoint host0:29500 examples/ddp_train.py --features X.npy --labels y.npy

    # or as one plain process (the single-process reference)
    python examples/ddp_train.py --n-identities 400

Every rank loads the whole data set (IPS reach any node); the pivots of each epoch are
sharded across the ranks, the gradients averaged by DistributedDataParallel; then each
rank scores its share of the pivots, rank 0 gathers the scores, merges them once and
saves the weights. ``--batch-size`` is per rank: the global batch is it times the world
size (see docs/scaling.md for what equals what).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import distributed as dist

from linkage_gcn.datasets import make_identities
from linkage_gcn.distributed import init_distributed
from linkage_gcn.knn import knn
from linkage_gcn.merge import pool_pair_scores, threshold_components
from linkage_gcn.metrics import bcubed_fscore
from linkage_gcn.nn import LinkageGCN
from linkage_gcn.samplers import resolve_sampler
from linkage_gcn.training import predict_links, train_linkage_gcn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--features", help="N x D .npy (default: synthetic identities)")
    ap.add_argument("--labels", help="N .npy of identities (with --features)")
    ap.add_argument("--n-identities", type=int, default=300)
    ap.add_argument("--k-at-hop", type=int, nargs=2, default=[20, 5])
    ap.add_argument("--active-connection", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8, help="IPS per step on each rank")
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 128, 64, 64])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="write the trained weights here (rank 0)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = init_distributed()
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1

    if args.features:
        X, y = np.load(args.features).astype(np.float32), np.load(args.labels)
    else:
        X, y = make_identities(args.n_identities, dim=128, random_state=args.seed)
    x = torch.from_numpy(X).to(device)
    labels = torch.from_numpy(np.unique(y, return_inverse=True)[1]).to(device)
    (k1, k2), u = args.k_at_hop, args.active_connection
    sampler = resolve_sampler("riws", k1, gamma=2.0)
    index, _ = knn(x, max(sampler.pool_size(), k2, u), verbose=False)

    torch.manual_seed(args.seed)  # the same initial weights on every rank
    model = LinkageGCN(x.shape[1] + 1, hidden_channels=args.hidden).to(device)
    start = time.perf_counter()
    history = train_linkage_gcn(
        model,
        x,
        index,
        labels,
        sampler=sampler,
        k2=k2,
        active_connection=u,
        loss="cb-graph",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        pivot_similarity=True,
    )
    trained = time.perf_counter() - start
    start = time.perf_counter()
    out = predict_links(
        model, x, index[:, :k1], k1=k1, k2=k2, active_connection=u, pivot_similarity=True, dst=0
    )
    scored = time.perf_counter() - start
    if rank == 0:
        src, dst, scores = out
        pairs, pooled = pool_pair_scores(src, dst, scores, num_nodes=x.shape[0])
        clusters = threshold_components(pairs, pooled, x.shape[0], args.threshold)
        _, _, f = bcubed_fscore(np.asarray(y), clusters)
        print(
            f"{world} rank(s) on {device.type}: N={x.shape[0]}, train {trained:.1f} s "
            f"(last loss {history[-1].loss:.4f}), score {scored:.1f} s, "
            f"{clusters.max() + 1} clusters, B-Cubed F {f:.3f}"
        )
        if args.save:
            torch.save(model.state_dict(), args.save)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
