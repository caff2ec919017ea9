"""Real faces: linkage-gcn against what face-clustering users run, on raw dlib descriptors.

Trains on the identity-disjoint train half of ../shared/data/lfw-dlib, clusters the test
half, and prints, for every method, B-Cubed precision / recall / F, pairwise F, NMI, the
B-Cubed F by identity size, the chosen cut and the fit / predict times. Every cut and
setting is chosen on the train half (test labels only score). The input is the raw
descriptors (``features_raw.npy``, what ``face_recognition.face_encodings`` returns) for
every method.

Methods (``--methods``, default all):
  threshold   kNN (k=10) + Euclidean cut + connected components (cut tuned on train)
  dbscan      scikit-learn DBSCAN, min_samples 1 (eps tuned on train)
  hdbscan     scikit-learn HDBSCAN, min_cluster_size 2, min_samples 1, eom (not tuned)
  cw          dlib's Chinese whispers on all pairs closer than the cut (tuned on train)
  cw-0.5      the same at dlib's documented cut 0.5
  infomap     kNN (k=20) + Infomap, edges closer than the cut, weight 1 - d/2 (tuned)
  lgcn        plain L-GCN settings (top-k 1-hop sets, cross-entropy, no similarity
              feature, lr x0.1 per epoch), threshold merge calibrated on train
  defaults    LinkageClusterer() defaults (no GPL extra), one run per seed
  best        the best configuration found (see BEST below), one run per seed

Usage: python examples/benchmarks/bench_lfw.py [--seeds 0 1 2] [--methods ...]
       [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from linkage_gcn import LinkageClusterer
from linkage_gcn.baselines import (
    ChineseWhispersClusterer,
    DBSCANClusterer,
    HDBSCANClusterer,
    InfomapClusterer,
    KNNThresholdClusterer,
)
from linkage_gcn.datasets import find_shared_lfw
from linkage_gcn.metrics import bcubed_by_identity_size, evaluate

#: The plain L-GCN configuration (the 2019 paper's training, our threshold merge).
LGCN = dict(
    sampler="topk", loss="ce", pivot_similarity=False, lr_decay=0.1,
    merge="threshold", calibration="train",
)  # fmt: skip
#: The best configuration found on the training identities (extras allowed).
BEST = dict(merge="infomap")

BASELINES = {
    "threshold": lambda seed: KNNThresholdClusterer(k=10, metric="l2"),
    "dbscan": lambda seed: DBSCANClusterer(),
    "hdbscan": lambda seed: HDBSCANClusterer(),
    "cw": lambda seed: ChineseWhispersClusterer(random_state=seed),
    "cw-0.5": lambda seed: ChineseWhispersClusterer(threshold=0.5, random_state=seed),
    "infomap": lambda seed: InfomapClusterer(random_state=seed),
}
MODELS = {
    "lgcn": lambda seed: LinkageClusterer(random_state=seed, verbose=False, **LGCN),
    "defaults": lambda seed: LinkageClusterer(random_state=seed, verbose=False),
    "best": lambda seed: LinkageClusterer(random_state=seed, verbose=False, **BEST),
}
#: Baselines whose result does not depend on the seed run once.
DETERMINISTIC = {"threshold", "dbscan", "hdbscan"}


def load(root):
    out = {}
    for part in ("train", "test"):
        X = np.load(root / part / "features_raw.npy").astype(np.float32)
        y = np.load(root / part / "labels.npy").astype(np.int64)
        out[part] = (X, y)
    return out


def run_one(name, make, seed, data):
    (Xtr, ytr), (Xte, yte) = data["train"], data["test"]
    est = make(seed)
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    t1 = time.perf_counter()
    pred = est.predict(Xte)
    t2 = time.perf_counter()
    m = evaluate(yte, pred)
    cut = next((getattr(est, a) for a in ("threshold_", "eps_") if hasattr(est, a)), None)
    return {
        "method": name,
        "seed": seed,
        "bcubed_precision": m["bcubed_precision"],
        "bcubed_recall": m["bcubed_recall"],
        "bcubed_fscore": m["bcubed_fscore"],
        "pairwise_fscore": m["pairwise_fscore"],
        "nmi": m["nmi"],
        "cut": None if cut is None else float(cut),
        "by_size": {
            r["sizes"]: round(float(r["fscore"]), 4) for r in bcubed_by_identity_size(yte, pred)
        },
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
    }


def summary(rows):
    keys = ("bcubed_precision", "bcubed_recall", "bcubed_fscore", "pairwise_fscore", "nmi")
    out = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out["bcubed_fscore_spread"] = (
        float(min(r["bcubed_fscore"] for r in rows)),
        float(max(r["bcubed_fscore"] for r in rows)),
    )
    out["fit_seconds"] = float(np.median([r["fit_seconds"] for r in rows]))
    out["predict_seconds"] = float(np.median([r["predict_seconds"] for r in rows]))
    sizes = rows[0]["by_size"].keys()
    out["by_size"] = {s: float(np.mean([r["by_size"][s] for r in rows])) for s in sizes}
    out["cuts"] = [r["cut"] for r in rows]
    out["n_runs"] = len(rows)
    return out


def print_table(results):
    sizes = next(iter(results.values()))["by_size"].keys()
    head = ["method", "B3 P", "B3 R", "B3 F (min-max)", "pair F", "NMI", *sizes, "cut(s)",
            "fit s", "predict s"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for name, s in results.items():
        lo, hi = s["bcubed_fscore_spread"]
        spread = f" ({lo:.4f}-{hi:.4f})" if s["n_runs"] > 1 else ""
        cuts = ", ".join("-" if c is None else f"{c:.4g}" for c in s["cuts"])
        cells = [
            name, f"{s['bcubed_precision']:.4f}", f"{s['bcubed_recall']:.4f}",
            f"**{s['bcubed_fscore']:.4f}**{spread}", f"{s['pairwise_fscore']:.4f}",
            f"{s['nmi']:.4f}", *(f"{s['by_size'][k]:.3f}" for k in sizes), cuts,
            f"{s['fit_seconds']:.1f}", f"{s['predict_seconds']:.1f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="lfw-dlib folder (default: ../shared/...)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=[*BASELINES, *MODELS],
                    choices=[*BASELINES, *MODELS])  # fmt: skip
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--json", default=None, help="also write every run to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = find_shared_lfw() if args.data is None else args.data
    if root is None:
        raise SystemExit("no lfw-dlib data found: pass --data PATH")
    from pathlib import Path

    data = load(Path(root))
    print(
        f"# LFW dlib, raw descriptors: train {len(data['train'][1])} faces, test "
        f"{len(data['test'][1])} faces (identity-disjoint); seeds {args.seeds}; "
        f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    runs, results = [], {}
    for name in args.methods:
        make = {**BASELINES, **MODELS}[name]
        seeds = args.seeds[:1] if name in DETERMINISTIC else args.seeds
        rows = [run_one(name, make, seed, data) for seed in seeds]
        for r in rows:
            print(f"  {name} seed {r['seed']}: B3 F {r['bcubed_fscore']:.4f}, pair F "
                  f"{r['pairwise_fscore']:.4f}, cut {r['cut']}, fit {r['fit_seconds']:.1f} s",
                  flush=True)  # fmt: skip
        runs += rows
        results[name] = summary(rows)
    print()
    print_table(results)
    if args.json:
        with open(args.json, "x") as f:
            json.dump({"runs": runs, "summary": results}, f, indent=2)


if __name__ == "__main__":
    main()
