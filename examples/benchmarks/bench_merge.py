"""The Chinese-whispers merge: the 0.2.0 implementation against the current one, same run.

Both run on the same synthetic kNN-like graphs of increasing size (identities of long-tailed
sizes, ``make_identities``' rule; 36 candidate neighbours per item, most of them of its own
identity, the rest look-alikes nearby; a score in [0, 1] per pair; the merge cuts at 0.9,
which leaves about 14 pairs per item, as the million-face run of docs/scaling.md), with the
same seed. Two timings per size:

* ``single``: one ``chinese_whispers`` run on the pairs above the cut;
* ``merge``: the default merge as the estimator runs it (``MERGES["chinese-whispers"]``: the cut,
  then five runs voting, ``consensus_chinese_whispers``).

For each it prints the wall times, their ratio (old / new) and whether the two partitions are
identical. The old implementation is kept below as a reference (``old_chinese_whispers``: every
node of a block recomputed from an argsort of all its arcs, in every round); the package no
longer holds it. Threads are pinned (``--threads``, default 1: torch, and BLAS / OpenMP through
threadpoolctl; the numpy and scipy kernels both implementations use run on one core anyway).

``--lfw DIR`` adds the quality check on real faces: ``LinkageClusterer.pretrained(MODEL)``
scores the links of ``DIR/test/features_raw.npy`` (lfw-dlib), both merges cluster them at the
model's cut, seeds 0-2, and B-Cubed F against ``DIR/test/labels.npy`` is printed.

Usage: python examples/benchmarks/bench_merge.py [--edges 100000 1000000 14000000]
       [--threads 1] [--skip-old-above 20000000] [--lfw /path/to/lfw-dlib]
"""

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from linkage_gcn import LinkageClusterer
from linkage_gcn.community import chinese_whispers
from linkage_gcn.merge import _components, _first_appearance
from linkage_gcn.merges import MERGES
from linkage_gcn.metrics import bcubed_fscore

PAIRS_PER_ITEM = 14.08  # pairs above the cut per item with the generator's defaults (measured)

# ------------------------------------------------------------------ the 0.2.0 implementation


def old_chinese_whispers(u, v, w, n, *, max_iter=100, n_blocks=16, random_state=None):
    """``linkage_gcn.community.chinese_whispers`` of 0.2.0 on validated int64 / float64 arrays."""
    rng = np.random.default_rng(random_state)
    loop = u == v
    src = np.concatenate([u, v[~loop]])
    dst = np.concatenate([v, u[~loop]])
    w = np.concatenate([w, w[~loop]])
    labels = np.arange(n, dtype=np.int64)
    changed = []
    if src.size:
        n_blocks = min(n_blocks, n)
        block_dtype = np.int16 if n_blocks <= np.iinfo(np.int16).max else np.int64
        for _ in range(max_iter):
            changed.append(_old_round(src, dst, w, labels, n_blocks, block_dtype, rng))
            if changed[-1] == 0:
                break
    return _first_appearance(labels), changed


def _old_round(src, dst, w, labels, n_blocks, block_dtype, rng):
    n = labels.size
    block = np.empty(n, dtype=block_dtype)
    block[rng.permutation(n)] = (np.arange(n, dtype=np.int64) * n_blocks // n).astype(block_dtype)
    arc_block = block[src]
    order = np.argsort(arc_block, kind="stable")
    bounds = np.searchsorted(arc_block[order], np.arange(n_blocks + 1))
    changed = 0
    for b in range(n_blocks):
        arcs = order[bounds[b] : bounds[b + 1]]
        if arcs.size == 0:
            continue
        node, label = _old_best_labels(src[arcs], labels[dst[arcs]], w[arcs], n, rng)
        changed += int(np.count_nonzero(labels[node] != label))
        labels[node] = label
    return changed


def _old_best_labels(node, label, w, n, rng):
    key = node * n + label
    order = np.argsort(key)
    key = key[order]
    group = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sums = np.add.reduceat(w[order], group)
    key = key[group]
    g_node, g_label = key // n, key % n
    first = np.r_[True, g_node[1:] != g_node[:-1]]
    starts = np.flatnonzero(first)
    seg = np.cumsum(first) - 1
    best = np.maximum.reduceat(sums, starts)[seg]
    tied = sums >= best - 1e-12 * np.abs(best)
    priority = np.where(tied, rng.random(sums.size), -1.0)
    pick = tied & (priority == np.maximum.reduceat(priority, starts)[seg])
    count = np.cumsum(pick)
    pick &= count - (count[starts] - pick[starts])[seg] == 1
    return g_node[pick], g_label[pick]


def old_merge(edge_index, scores, n, threshold, *, runs=5, random_state=None):
    """The default merge of 0.2.0 without names: the cut, then ``runs`` runs voting."""
    keep = scores >= threshold
    u, v, s = edge_index[0][keep], edge_index[1][keep], scores[keep]
    rng = np.random.default_rng(random_state)
    votes = np.zeros(u.size, dtype=np.int64)
    for _ in range(runs):
        seed = int(rng.integers(np.iinfo(np.int32).max))
        labels, _ = old_chinese_whispers(u, v, s, n, random_state=seed)
        votes += labels[u] == labels[v]
    keep = (2 * votes > runs) & (u != v)
    return _first_appearance(_components(u[keep], v[keep], n)[0])


def new_merge(edge_index, scores, n, threshold, *, runs=5, random_state=None):
    return MERGES["chinese-whispers"].cluster(
        edge_index, scores, n, threshold, runs=runs, random_state=random_state
    )


# ------------------------------------------------------------------ the graphs


def knn_like_graph(n, *, k=36, seed=0):
    """Scored pairs ``i < j`` of a kNN-like graph over ``n`` items of long-tailed identities.

    Identity sizes follow ``make_identities``' rule, stacked by 2,000 (the largest 500); each
    item draws ``k`` candidate neighbours, of its own identity with probability 0.9 (fewer
    for a small identity), otherwise an item within 3,000 ids of it (a look-alike). A pair of
    one identity scores ``1 - 0.12 Beta(1, 3)``, another ``0.97 Beta(8, 1.5)``: at the 0.9 cut,
    about 60 % of the kept pairs join one identity.
    """
    rng = np.random.default_rng(seed)
    sizes, total = [], 0
    while total < n:
        size = np.minimum(1 + rng.poisson(499 * np.arange(1, 2001) ** -0.85), 500)
        size[0] = 500
        sizes.append(size)
        total += int(size.sum())
    y = np.repeat(np.arange(sum(s.size for s in sizes)), np.concatenate(sizes))[:n]
    size = np.bincount(y)
    start = np.r_[0, np.cumsum(size)[:-1]]
    node = np.repeat(np.arange(n), k)
    own = y[node]
    inside = rng.random(node.size) < 0.9 * np.minimum(1.0, (size[own] - 1) / k)
    other = np.where(
        inside,
        start[own] + rng.integers(0, 1 << 40, node.size) % size[own],
        np.clip(node + rng.integers(-3000, 3000, node.size), 0, n - 1),
    )
    same = y[other] == own
    score = np.where(same, 1 - 0.12 * rng.beta(1, 3, node.size), 0.97 * rng.beta(8, 1.5, node.size))
    keep = other != node
    lo = np.minimum(node, other)[keep]
    hi = np.maximum(node, other)[keep]
    _, first = np.unique(lo * n + hi, return_index=True)
    return np.stack([lo[first], hi[first]]), score[keep][first], y


# ------------------------------------------------------------------ timing


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_size(n_edges, cut, seed, skip_old_above):
    n = max(100, round(n_edges / PAIRS_PER_ITEM))
    t_gen, (edge_index, scores, y) = timed(lambda: knn_like_graph(n, seed=seed))
    keep = scores >= cut
    u, v, s = edge_index[0][keep], edge_index[1][keep], scores[keep]
    print(
        f"\n{n:,} items, {y.max() + 1:,} identities, {edge_index.shape[1]:,} scored pairs, "
        f"{u.size:,} above the cut {cut} ({u.size / n:.1f} per item; "
        f"{np.mean(y[u] == y[v]):.0%} within an identity); generated in {t_gen:.1f} s"
    )
    run_old = u.size <= skip_old_above
    t_new, (new, info) = timed(
        lambda: chinese_whispers(np.stack([u, v]), s, n, random_state=seed, return_info=True)
    )
    line = f"  single run   new {t_new:8.2f} s ({info['rounds']} rounds)"
    if run_old:
        t_old, (old, changed) = timed(lambda: old_chinese_whispers(u, v, s, n, random_state=seed))
        same = np.array_equal(old, new) and changed == info["changed"]
        line += f" | old {t_old:8.2f} s | {t_old / t_new:5.1f}x | identical: {same}"
    print(line, flush=True)
    t_new, new = timed(lambda: new_merge(edge_index, scores, n, cut, random_state=seed))
    line = f"  merge (5 runs voting, cut included)   new {t_new:8.2f} s"
    if run_old:
        t_old, old = timed(lambda: old_merge(edge_index, scores, n, cut, random_state=seed))
        line += (
            f" | old {t_old:8.2f} s | {t_old / t_new:5.1f}x | identical: {np.array_equal(old, new)}"
        )
    print(line, f"| B-Cubed F {bcubed_fscore(y, new)[2]:.4f}", flush=True)


def bench_lfw(root, models, seeds):
    X = np.load(root / "test" / "features_raw.npy")
    y = np.load(root / "test" / "labels.npy")
    print(f"\nLFW test half ({X.shape[0]:,} faces, {np.unique(y).size:,} people), lfw-dlib raw")
    for name in models:
        clf = LinkageClusterer.pretrained(name)
        t_score, (edge_index, scores) = timed(lambda clf=clf: clf.predict_edges(X))
        cut, n = clf.link_threshold(), X.shape[0]
        kept = int((scores >= cut).sum())
        print(f"  {name}: {edge_index.shape[1]:,} pairs scored in {t_score:.1f} s, cut {cut:.4g} "
              f"keeps {kept:,}")  # fmt: skip
        for seed in seeds:
            print(f"    seed {seed}: " + compare_lfw(edge_index, scores, n, cut, y, seed))


def compare_lfw(edge_index, scores, n, cut, y, seed):
    t_old, old = timed(lambda: old_merge(edge_index, scores, n, cut, random_state=seed))
    t_new, new = timed(lambda: new_merge(edge_index, scores, n, cut, random_state=seed))
    u, v, s = _above(edge_index, scores, cut)
    one_old, _ = old_chinese_whispers(u, v, s, n, random_state=seed)
    one_new = chinese_whispers(np.stack([u, v]), s, n, random_state=seed)
    f = [bcubed_fscore(y, labels)[2] for labels in (old, new, one_old, one_new)]
    return (
        f"merge B-Cubed F old {f[0]:.4f} new {f[1]:.4f} (identical: {np.array_equal(old, new)}; "
        f"{t_old:.2f} s / {t_new:.2f} s) | single run old {f[2]:.4f} new {f[3]:.4f} "
        f"(identical: {np.array_equal(one_old, one_new)})"
    )


def _above(edge_index, scores, cut):
    keep = scores >= cut
    return edge_index[0][keep], edge_index[1][keep], scores[keep]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", type=int, nargs="*", default=[100_000, 1_000_000, 14_000_000],
                    help="pairs above the cut, roughly (sets the number of items)")  # fmt: skip
    ap.add_argument("--cut", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-old-above", type=int, default=20_000_000,
                    help="time only the new implementation above this many pairs")  # fmt: skip
    ap.add_argument("--lfw", type=Path, default=None, help="the lfw-dlib folder")
    ap.add_argument("--models", nargs="+", default=["face-any", "dlib-128"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads):
        print(f"threads: {args.threads} (torch, BLAS/OpenMP); numpy {np.__version__}")
        for n_edges in args.edges:
            bench_size(n_edges, args.cut, args.seed, args.skip_old_above)
        if args.lfw is not None:
            bench_lfw(args.lfw, args.models, seeds=(0, 1, 2))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of the process: {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
