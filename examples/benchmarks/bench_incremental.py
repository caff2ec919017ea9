"""Growing collections: IncrementalClusterer against clustering everything at once.

(a) LFW (dlib descriptors as users have them, ../shared/data/lfw-dlib): a
    ``LinkageClusterer(random_state=seed)`` trained on the train half; the test
    half arrives in seeded random batches of 100. Prints the final B-Cubed F next
    to ``clusterer.predict`` on the whole test half, and how many faces changed id
    during the stream (and how many of those through a reported merge).
(b) The same stream with 20 % of the test identities named from one face each:
    B-Cubed F with and without names, and a check that no cluster holds two names.
(c) Synthetic faces, random-weights model of the default size: time of one
    100-face addition at collection sizes 10K and 100K (1M with --million, faiss
    kNN), and a re-cut at the largest size.

Usage: python examples/benchmarks/bench_incremental.py [--seeds 0 1 2] [--skip-lfw]
       [--skip-scale] [--sizes 10000 100000] [--million] [--epochs N] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw, make_identities
from linkage_gcn.incremental import IncrementalClusterer
from linkage_gcn.metrics import bcubed_fscore

print = functools.partial(print, flush=True)


def load_raw(root: Path, subset: str) -> tuple[np.ndarray, np.ndarray]:
    folder = Path(root) / subset
    return np.load(folder / "features_raw.npy"), np.load(folder / "labels.npy")


def trained(root, seed, epochs, model_dir):
    path = Path(model_dir) / f"lfw_seed{seed}_epochs{epochs}.pt" if model_dir else None
    if path is not None and path.exists():
        return LinkageClusterer.load(path), 0.0
    X, y = load_raw(root, "train")
    start = time.perf_counter()
    params = {} if epochs is None else {"epochs": epochs}
    est = LinkageClusterer(random_state=seed, verbose=False, **params).fit(X, y)
    seconds = time.perf_counter() - start
    if path is not None:
        est.save(path, overwrite=True)
    return est, seconds


def stream(est, X, order, batch, **kwargs):
    inc = IncrementalClusterer(est, **kwargs)
    changed = via_merge = rescored = 0
    times = []
    cpu = time.process_time()
    for s in range(0, len(order), batch):
        r = inc.add(X[order[s : s + batch]])
        changed += r.changed_faces
        via_merge += r.merged_faces
        rescored += r.rescored
        times.append(r.seconds)
    labels = np.empty(len(order), dtype=np.int64)
    labels[order] = inc.labels_
    cpu = time.process_time() - cpu
    return inc, labels, dict(changed=changed, via_merge=via_merge, rescored=rescored,
                             seconds=float(np.sum(times)), median=float(np.median(times)),
                             cpu_seconds=cpu)  # fmt: skip


def use_merge(est, X, y, merge):
    """Switch a fitted clusterer to ``merge``, its cut calibrated again on the training faces.

    The same rule as ``LinkageClusterer(calibration="train")``: B-Cubed F of the merge on
    the training faces, from one scoring of the training set (a cached model may have
    been fitted with another merge).
    """
    edge_index, scores = est.predict_edges(X)
    est.set_params(merge=merge, threshold="auto")
    est.threshold_ = est._calibrate([(edge_index, scores, y)], est._check_params(), "train")
    return est.threshold_


def lfw(root, seed, epochs, model_dir, context_too, merge):
    est, fit_s = trained(root, seed, epochs, model_dir)
    X, y = load_raw(root, "test")
    if merge is not None and est.merge != merge:
        Xtr, ytr = load_raw(root, "train")
        print(f"  merge {merge!r}: cut {use_merge(est, Xtr, ytr, merge):.4f} chosen on train")
    default_merge = est.merge
    start = time.perf_counter()
    f_default = bcubed_fscore(y, est.predict(X))[2]
    print(f"\n[seed {seed}] the model's own merge ({default_merge!r}, cut {est.threshold_:.4f}) "
          f"on the whole test half: B-Cubed F {f_default:.4f} "
          f"({time.perf_counter() - start:.1f}s)")  # fmt: skip
    if default_merge not in ("threshold", "chinese-whispers"):
        Xtr, ytr = load_raw(root, "train")
        cut = use_merge(est, Xtr, ytr, "threshold")
        print(f"  threshold merge: cut {cut:.4f} chosen on the train half")
    start, cpu = time.perf_counter(), time.process_time()
    batch_labels = est.predict(X)
    predict_s = time.perf_counter() - start
    predict_cpu = time.process_time() - cpu
    f_batch = bcubed_fscore(y, batch_labels)[2]
    order = np.random.default_rng(seed).permutation(len(X))
    cut = est._link_threshold(est._check_params())
    out = {"seed": seed, "fit_seconds": fit_s, "predict_seconds": predict_s,
           "f_batch": f_batch, "threshold": cut, "default_merge": default_merge,
           "f_default_merge": f_default}  # fmt: skip
    print(f"  model: fit {fit_s:.0f}s (0: loaded), {est.merge} merge at {cut:.4f}; "
          f"whole test half at once: B-Cubed F {f_batch:.4f} ({predict_s:.1f}s wall, "
          f"{predict_cpu:.1f}s CPU)")  # fmt: skip
    for ctx in (False, True) if context_too else (False,):
        inc, labels, st = stream(est, X, order, 100, context=ctx)
        f = bcubed_fscore(y, labels)[2]
        agree = bcubed_fscore(batch_labels, labels)[2]
        key = "context" if ctx else "stream"
        out[key] = {"f": f, "agreement_with_batch": agree, **st}
        print(f"  (a) stream of {len(X)} faces in batches of 100 (context={ctx}): B-Cubed F "
              f"{f:.4f} (batch {f_batch:.4f}, diff {f - f_batch:+.4f}); partition agreement "
              f"with batch {agree:.4f}; {st['changed']} faces changed id during the stream, "
              f"{st['via_merge']} of them through reported merges; {st['rescored']} pivots "
              f"scored in all; {st['seconds']:.1f}s wall, {st['cpu_seconds']:.1f}s CPU ("
              f"{st['median'] * 1000:.0f} ms median "
              "per batch)")  # fmt: skip
        if ctx:
            continue
        # (b) names: 20 % of the test identities, one face each
        rng = np.random.default_rng(seed + 1000)
        ids = np.unique(y)
        chosen = rng.choice(ids, size=round(0.2 * ids.size), replace=False)
        faces = np.array([rng.choice(np.flatnonzero(y == c)) for c in chosen])
        face_ids = inc.face_ids_[np.argsort(order)][faces]  # storage row of test row i
        inc.name(face_ids, [f"person-{c}" for c in y[faces]])
        named_labels = np.empty(len(X), dtype=np.int64)
        named_labels[order] = inc.labels_
        f_named = bcubed_fscore(y, named_labels)[2]
        names = inc.names_
        two = sum(
            len({n for n in names[inc.labels_ == c] if n is not None}) > 1
            for c in np.unique(inc.labels_[names != None])  # noqa: E711
        )
        out["names"] = {"n_named": int(faces.size), "f_with_names": f_named,
                        "f_without": f, "clusters_with_two_names": int(two)}  # fmt: skip
        print(
            f"  (b) {faces.size} identities named from one face each: B-Cubed F "
            f"{f_named:.4f} with names, {f:.4f} without; clusters holding two names: {two}"
        )
    return out


def random_model(dim=128, seed=0):
    """A LinkageClusterer of the default size with random weights (no training)."""
    est = LinkageClusterer(random_state=seed, merge="threshold")
    cfg = est._check_params()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        est.model_ = est._build_model(dim, cfg).eval()
    est.n_features_in_ = dim
    est.threshold_ = 0.5
    est.preprocessing_mean_ = None
    est.history_, est.labels_ = [], np.zeros(0, dtype=np.int64)
    return est


def scale(sizes, backend, seed=0, repeats=5):
    est = random_model()
    out = []
    for n in sizes:
        X, _ = make_identities(max(n // 8, 10), dim=128, max_size=40, random_state=seed)
        rng = np.random.default_rng(seed)
        X = X[rng.permutation(len(X))]
        while len(X) < n + 100 * repeats:  # top up with more identities
            more, _ = make_identities(max(n // 8, 10), dim=128, max_size=40,
                                      random_state=int(rng.integers(1 << 30)))  # fmt: skip
            X = np.concatenate([X, more])
        X = X.astype(np.float32)
        inc = IncrementalClusterer(est, backend=backend)
        start = time.perf_counter()
        inc.add(X[:n])
        build = time.perf_counter() - start
        # random weights give no identity structure: cut at the lowest score quantile whose
        # largest cluster stays under 100 faces (as a trained model's clusters would), so that
        # an addition re-merges a neighbourhood, not a giant component
        _, scores = inc.pair_scores()
        lo, hi = 0.5, 1.0
        for _ in range(8):
            mid = (lo + hi) / 2
            inc.recut(float(np.quantile(scores, mid)))
            lo, hi = (lo, mid) if np.bincount(inc.labels_).max() <= 100 else (mid, hi)
        cut = hi
        inc.recut(float(np.quantile(scores, cut)))
        times, cpu, rescored, region = [], [], [], []
        for r in range(repeats):
            c0 = time.process_time()
            rep = inc.add(X[n + 100 * r : n + 100 * (r + 1)])
            cpu.append(time.process_time() - c0)
            times.append(rep.seconds)
            rescored.append(rep.rescored)
            region.append(rep.region)
        _, scores = inc.pair_scores()
        th = float(np.quantile(scores, min(cut + 0.005, 1.0)))
        start = time.perf_counter()
        rc = inc.recut(th)
        recut = time.perf_counter() - start
        sizes = np.bincount(np.unique(inc.labels_, return_inverse=True)[1])
        row = {"n": n, "backend": backend, "build_seconds": build,
               "add_seconds_median": float(np.median(times)), "add_seconds": times,
               "add_cpu_seconds_median": float(np.median(cpu)),
               "rescored_median": float(np.median(rescored)),
               "region_median": float(np.median(region)), "recut_seconds": recut,
               "recut_changed_faces": rc.changed_faces, "n_clusters": int(sizes.size),
               "largest_cluster": int(sizes.max()), "cut_quantile": cut}  # fmt: skip
        out.append(row)
        print(f"  (c) N={n:>9,} ({backend}): initial build {build:.0f}s; one 100-face "
              f"addition {row['add_seconds_median']:.2f}s median of {repeats} (CPU "
              f"{row['add_cpu_seconds_median']:.2f}s) "
              f"({row['rescored_median']:.0f} pivots scored, {row['region_median']:.0f} faces "
              f"re-merged; links cut below their {cut:.3f} quantile); re-cut of all "
              f"{n + 100 * repeats:,} faces (0.005 higher): {recut:.2f}s, {rc.changed_faces:,} faces changed id; largest cluster "
              f"{row['largest_cluster']}")  # fmt: skip
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="lfw-dlib folder (default: ../shared/...)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: 4)")
    ap.add_argument("--model-dir", default=None, help="cache the trained models here")
    ap.add_argument("--context", action="store_true", help="also stream with context=True")
    ap.add_argument(
        "--merge",
        default=None,
        choices=["threshold", "chinese-whispers"],
        help="merge of the model (default: its own; a cached model is recalibrated)",
    )
    ap.add_argument("--skip-lfw", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--million", action="store_true", help="also 1M faces (faiss-hnsw kNN)")
    ap.add_argument("--backend", default="torch", help="kNN backend of (c) below 1M")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    figures = {"lfw": [], "scale": []}
    if not args.skip_lfw:
        root = args.data or find_shared_lfw()
        if root is None:
            raise SystemExit("no lfw-dlib data found: pass --data PATH")
        for seed in args.seeds:
            figures["lfw"].append(
                lfw(root, seed, args.epochs, args.model_dir, args.context, args.merge)
            )
    if not args.skip_scale:
        print("\nsynthetic faces (dim 128), random-weights model of the default size:")
        figures["scale"] = scale(args.sizes, args.backend)
        if args.million:
            figures["scale"] += scale([1_000_000], "faiss-hnsw", repeats=3)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
