"""Which clustering to use: every method on synthetic long-tailed identities, timed.

Draws ``linkage_gcn.datasets.make_identities`` data (unit-norm embeddings, a few large
identities and a long tail of small ones, look-alike families), splits it into
identity-disjoint train and test halves, fits every method on the train half (each chooses
its cut there: test labels only score), clusters the test half and prints one markdown row
per method: B-Cubed F, pairwise F, NMI, the cut chosen on train and the fit / predict
seconds. Embeddings are unit vectors, so the baselines compare them by cosine.

Methods (``--methods``, default all):
  threshold   kNN (k=10) + cosine cut + connected components (cut tuned on train)
  dbscan      scikit-learn DBSCAN, min_samples 1 (eps tuned on train)
  hdbscan     scikit-learn HDBSCAN (2, 1, eom), cluster_selection_epsilon tuned on train
  cw          Chinese whispers on all pairs above a cosine cut (tuned on train)
  infomap     kNN (k=20) + Infomap (needs the GPL extra ``infomap``; cut tuned on train)
  lgcn        plain L-GCN: Table 1's ``L-GCN`` row (top-k 1-hop sets, cross-entropy) with
              ``linkage_gcn.experiments.PAPER_SETTINGS`` (no similarity feature, lr x0.1
              per epoch, threshold merge calibrated on train)
  defaults    ``LinkageClusterer()`` defaults

Usage: python examples/benchmarks/bench_choose.py [--identities 1000] [--max-size 200]
       [--seeds 0] [--methods ...] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
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
from linkage_gcn.datasets import make_identities
from linkage_gcn.experiments import METHODS, PAPER_SETTINGS
from linkage_gcn.metrics import evaluate
from linkage_gcn.model_selection import split_identities

#: Plain L-GCN: the paper's ``L-GCN`` row with the settings every paper row shares.
LGCN = {**METHODS["L-GCN"], **PAPER_SETTINGS}

LABELS = {
    "threshold": "kNN (k=10) + cosine threshold + components",
    "dbscan": "DBSCAN, min_samples 1",
    "hdbscan": "HDBSCAN (2, 1, eom), epsilon tuned",
    "cw": "Chinese whispers, all pairs above the cut",
    "infomap": "kNN (k=20) + Infomap",
    "lgcn": "plain L-GCN (top-k, CE, threshold merge)",
    "defaults": "`LinkageClusterer()` defaults",
}


def make_method(name, seed, threads):
    if name == "threshold":
        return KNNThresholdClusterer(k=10, metric="cosine")
    if name == "dbscan":
        return DBSCANClusterer(metric="cosine")
    if name == "hdbscan":
        return HDBSCANClusterer(metric="cosine", cluster_selection_epsilon="auto")
    if name == "cw":
        return ChineseWhispersClusterer(metric="cosine", random_state=seed)
    if name == "infomap":
        return InfomapClusterer(metric="cosine", random_state=seed)
    if name == "lgcn":
        return LinkageClusterer(random_state=seed, verbose=False, threads=threads, **LGCN)
    if name == "defaults":
        return LinkageClusterer(random_state=seed, verbose=False, threads=threads)
    raise ValueError(name)


def cut_of(est):
    for attr in ("threshold_", "eps_", "cluster_selection_epsilon_"):
        if hasattr(est, attr):
            return float(getattr(est, attr))
    return None


def run_one(name, seed, args):
    X, y = make_identities(args.identities, max_size=args.max_size, random_state=seed)
    train, test = split_identities(y, test_size=0.5, random_state=seed)
    est = make_method(name, seed, args.threads)
    t0 = time.perf_counter()
    est.fit(X[train], y[train])
    t1 = time.perf_counter()
    pred = est.predict(X[test])
    t2 = time.perf_counter()
    m = evaluate(y[test], pred)
    return {
        "method": name,
        "seed": seed,
        "n_train": len(train),
        "n_test": len(test),
        "bcubed_fscore": float(m["bcubed_fscore"]),
        "pairwise_fscore": float(m["pairwise_fscore"]),
        "nmi": float(m["nmi"]),
        "cut": cut_of(est),
        "fit_seconds": t1 - t0,
        "predict_seconds": t2 - t1,
    }


def print_table(rows, methods):
    print("| method | B-Cubed F | pairwise F | NMI | cut(s) chosen on train | fit s | predict s |")
    print("|---|---|---|---|---|---|---|")
    for name in methods:
        rs = [r for r in rows if r["method"] == name]
        if not rs:
            continue

        def mean(key, rs=rs):
            return float(np.mean([r[key] for r in rs]))

        cuts = ", ".join("-" if r["cut"] is None else f"{r['cut']:.4g}" for r in rs)
        print(
            f"| {LABELS[name]} | {mean('bcubed_fscore'):.3f} | {mean('pairwise_fscore'):.3f} | "
            f"{mean('nmi'):.3f} | {cuts} | {mean('fit_seconds'):.1f} | "
            f"{mean('predict_seconds'):.1f} |",
            flush=True,
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--identities", type=int, default=1000, help="synthetic identities")
    ap.add_argument("--max-size", type=int, default=200, help="largest identity")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--methods", nargs="+", default=list(LABELS), choices=list(LABELS))
    ap.add_argument("--threads", type=int, default=None, help="torch threads")
    ap.add_argument("--json", default=None, help="also write every run to this JSON file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    X, y = make_identities(args.identities, max_size=args.max_size, random_state=args.seeds[0])
    train, test = split_identities(y, test_size=0.5, random_state=args.seeds[0])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# make_identities({args.identities}, max_size={args.max_size}): {len(X)} embeddings "
        f"(dim {X.shape[1]}), train {len(train)} / test {len(test)} (identity-disjoint, seed "
        f"{args.seeds[0]}); seeds {args.seeds}; {platform.machine()}, {os.cpu_count()} CPU(s), "
        f"load {load:.1f}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
        flush=True,
    )
    rows = []
    for name in args.methods:
        for seed in args.seeds:
            r = run_one(name, seed, args)
            rows.append(r)
            print(
                f"  {name} seed {seed}: B3 F {r['bcubed_fscore']:.4f}, pair F "
                f"{r['pairwise_fscore']:.4f}, NMI {r['nmi']:.4f}, cut {r['cut']}, "
                f"fit {r['fit_seconds']:.1f} s, predict {r['predict_seconds']:.1f} s",
                flush=True,
            )
    print()
    print_table(rows, args.methods)
    if args.json:
        with open(args.json, "x") as f:
            json.dump({"args": vars(args), "runs": rows}, f, indent=2)


if __name__ == "__main__":
    main()
