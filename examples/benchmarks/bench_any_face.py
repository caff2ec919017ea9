"""Any face model, no labels: the ``face-any`` model against the tools, per embedder.

For each face model of ``../shared/data`` (``lfw-dlib``: dlib ResNet, raw descriptors;
``lfw-sface``: OpenCV Zoo SFace, unit vectors), on the identity-disjoint LFW **test** half:

* ``face-any``   the shipped model (``LinkageClusterer.pretrained("face-any")``, or
                 ``--model PATH``), given the raw embeddings: no labels, no retraining;
* label-free     the tools' documented defaults (``LABEL_FREE_BASELINES``: Immich's
                 DBSCAN, HDBSCAN as shipped, FaceMap's kNN + Infomap);
* tuned          the tools with their cut tuned on the **train** half of the same embedder
                 (10-NN threshold components, Chinese whispers, kNN + Infomap, HDBSCAN
                 (2, 1, eom)), in the embedder's own metric (dlib: Euclidean, SFace:
                 cosine): what a user with labels in that space could run.

It prints B-Cubed precision / recall / F, pairwise F, NMI, B-Cubed F by identity size and
times; then ``--subsample`` fractions of the test half (identity-agnostic random rows,
``--subsample-seeds``) with the model's own cut beside the best cut for that subsample
(read off its labels: a reference, never a setting), and the same for the whole half.
``--shapes family`` scores the same methods on a collection shaped like a family library:
the people of the test half with at least ``--family-min`` photos (24 people, 1,612 faces
at 20), no strangers. ``face-any`` never saw the test half (its recipe, ``examples/train_pretrained.py``, reads
the train halves only), so every figure here is held out.

Usage: python examples/benchmarks/bench_any_face.py [--model PATH] [--embedders dlib sface]
       [--methods ...] [--shapes all family] [--subsample 0.25 0.5] [--threads 1]
       [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _machine import describe

from linkage_gcn import LinkageClusterer
from linkage_gcn.baselines import (
    LABEL_FREE_BASELINES,
    ChineseWhispersClusterer,
    HDBSCANClusterer,
    InfomapClusterer,
    KNNThresholdClusterer,
)
from linkage_gcn.datasets import find_shared_lfw
from linkage_gcn.metrics import bcubed_by_identity_size, bcubed_fscore, evaluate

#: The tools tuned on the train half of the same embedder, in its own metric (dlib's raw
#: descriptors: Euclidean, as dlib documents and bench_lfw.py measures; SFace: cosine).
TUNED = {
    "threshold-10nn (tuned)": lambda seed, metric: KNNThresholdClusterer(k=10, metric=metric),
    "chinese-whispers (tuned)": lambda seed, metric: ChineseWhispersClusterer(
        metric=metric, random_state=seed
    ),
    "infomap (tuned)": lambda seed, metric: InfomapClusterer(metric=metric, random_state=seed),
    "hdbscan-2-1-eom (tuned)": lambda seed, metric: HDBSCANClusterer(metric=metric),
}
METRIC = {"dlib": "l2", "sface": "cosine"}
#: Link cuts tried for the best-cut reference of a subsample.
CUTS = np.round(np.arange(0.5, 0.976, 0.025), 3)


def load(root: Path, embedder: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The train and test halves of one embedder: raw embeddings and labels."""
    labels = np.load(root / "labels.npy")
    features = (
        np.load(root / "features_raw.npy") if embedder == "dlib"
        else np.load(root.parent / "lfw-sface" / "features.npy")
    )  # fmt: skip
    out = {}
    for part in ("train", "test"):
        rows = np.load(root / part / "index.npy")
        out[part] = (features[rows].astype(np.float32), labels[rows].astype(np.int64))
    return out


def lfw_root(data: str | None) -> Path:
    """The lfw-dlib folder: ``data``, or the one beside the checkout; exits if absent."""
    root = Path(data or find_shared_lfw() or "")
    if not (root / "features_raw.npy").exists():
        raise SystemExit("no lfw-dlib data found: pass --data PATH")
    return root


def scores_of(name: str, y: np.ndarray, pred: np.ndarray, seconds: float) -> dict:
    m = evaluate(y, pred)
    return {
        "method": name,
        **{k: float(m[k]) for k in ("bcubed_precision", "bcubed_recall", "bcubed_fscore",
                                    "pairwise_fscore", "nmi")},
        "by_size": {r["sizes"]: float(r["fscore"]) for r in bcubed_by_identity_size(y, pred)},
        "seconds": seconds,
    }


def best_cut(est: LinkageClusterer, X: np.ndarray, y: np.ndarray) -> dict:
    """The model's own cut and the best link cut of this set (its labels: a reference)."""
    edge_index, scores = est.predict_edges(X)
    own = bcubed_fscore(y, est.cluster_edges(edge_index, scores, len(X)))[2]
    fs = {}
    saved = est.threshold
    try:
        for cut in CUTS:
            est.set_params(threshold=float(cut))
            fs[float(cut)] = bcubed_fscore(y, est.cluster_edges(edge_index, scores, len(X)))[2]
    finally:
        est.set_params(threshold=saved)
    cut = max(fs, key=fs.get)
    return {"own_cut": est.link_threshold(), "own_fscore": float(own), "best_cut": cut,
            "best_fscore": float(fs[cut]), "gap": float(fs[cut] - own)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a saved model (default: face-any)")
    ap.add_argument("--data", default=None, help="lfw-dlib folder (lfw-sface beside it)")
    ap.add_argument("--embedders", nargs="+", default=["dlib", "sface"],
                    choices=["dlib", "sface"])  # fmt: skip
    ap.add_argument("--methods", nargs="+", default=None,
                    help="face-any, label-free and tuned names (default: all)")  # fmt: skip
    ap.add_argument("--shapes", nargs="+", default=["all", "family"], choices=["all", "family"])
    ap.add_argument("--family-min", type=int, default=20)
    ap.add_argument("--subsample", nargs="*", type=float, default=[0.25, 0.5])
    ap.add_argument("--subsample-seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results to this new file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = lfw_root(args.data)
    est = (
        LinkageClusterer.load(args.model) if args.model
        else LinkageClusterer.pretrained("face-any")
    ).set_params(threads=args.threads, verbose=False)  # fmt: skip
    methods = {"face-any": None, **LABEL_FREE_BASELINES, **TUNED}
    chosen = args.methods or list(methods)
    print(f"# {describe()}, {args.threads} thread(s); "
          f"model cut {est.link_threshold():.4g}, cluster cut {est.join_cut()}")  # fmt: skip
    results: dict = {"threads": args.threads, "embedders": {}}
    for embedder, shape in [(e, s) for s in args.shapes for e in args.embedders]:
        data = load(root, embedder)
        (Xtr, ytr), (Xte, yte) = data["train"], data["test"]
        if shape == "family":
            big = np.bincount(yte)[yte] >= args.family_min
            Xte, yte = Xte[big], yte[big]
        tag = embedder if shape == "all" else f"{embedder}, family ({len(np.unique(yte))} people)"
        rows = []
        for name in chosen:
            start = time.perf_counter()
            if name == "face-any":
                pred = est.predict(Xte)
            elif name in LABEL_FREE_BASELINES:
                pred = LABEL_FREE_BASELINES[name]().fit_predict(Xte)
            else:
                pred = TUNED[name](args.seed, METRIC[embedder]).fit(Xtr, ytr).predict(Xte)
            rows.append(scores_of(name, yte, pred, time.perf_counter() - start))
            r = rows[-1]
            print(f"{tag:6s} {name:26s} B3 P {r['bcubed_precision']:.4f} R "
                  f"{r['bcubed_recall']:.4f} F {r['bcubed_fscore']:.4f}  pairwise F "
                  f"{r['pairwise_fscore']:.4f}  NMI {r['nmi']:.4f}  "
                  + " ".join(f"{k}:{v:.3f}" for k, v in r["by_size"].items())
                  + f"  ({r['seconds']:.1f} s)", flush=True)  # fmt: skip
        cuts = {"1.0": [best_cut(est, Xte, yte)]}
        if shape == "family":
            r = cuts["1.0"][0]
            print(f"{tag}: own cut B3 F {r['own_fscore']:.4f}, best cut {r['best_fscore']:.4f} "
                  f"at {r['best_cut']}", flush=True)  # fmt: skip
            results["embedders"][tag] = {"methods": rows, "cuts": cuts}
            continue
        rng_rows = np.arange(len(Xte))
        for frac in args.subsample:
            cuts[str(frac)] = []
            for s in args.subsample_seeds:
                sub = np.sort(np.random.default_rng(s).choice(
                    rng_rows, int(frac * len(Xte)), replace=False))  # fmt: skip
                cuts[str(frac)].append(best_cut(est, Xte[sub], yte[sub]))
        for frac, runs in cuts.items():
            print(f"{embedder:6s} subsample {frac}: own cut B3 F "
                  f"{np.mean([r['own_fscore'] for r in runs]):.4f}, best cut "
                  f"{np.mean([r['best_fscore'] for r in runs]):.4f} (cuts "
                  f"{[r['best_cut'] for r in runs]}), gap max "
                  f"{max(r['gap'] for r in runs):.4f}", flush=True)  # fmt: skip
        results["embedders"][embedder] = {"methods": rows, "cuts": cuts}
    if args.json:
        with open(args.json, "x") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
