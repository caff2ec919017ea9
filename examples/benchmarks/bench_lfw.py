"""Real faces: LinkageClusterer against the kNN-threshold baseline on LFW (dlib embeddings).

Trains on the identity-disjoint train half of ../shared/data/lfw-dlib, clusters the
test half, chooses every threshold on train, and prints edge AP, pairwise and
B-Cubed F, NMI, a breakdown by identity size and the times, side by side.
``--reference`` also runs the faithful L-GCN configuration (top-k 1-hop sets,
cross-entropy, pivot-relative features only, lr x0.1 per epoch) for comparison.
Usage: python examples/benchmarks/bench_lfw.py [--data PATH] [--reference]
"""

import argparse
import json

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw, load_lfw_dlib
from linkage_gcn.demo import compare_with_baseline, format_comparison

REFERENCE = dict(sampler="topk", loss="ce", pivot_similarity=False, lr_decay=0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None, help="lfw-dlib folder (default: ../shared/...)")
    ap.add_argument("--reference", action="store_true", help="also run the L-GCN settings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    root = args.data or find_shared_lfw()
    if root is None:
        raise SystemExit("no lfw-dlib data found: pass --data PATH")
    Xtr, ytr = load_lfw_dlib(root, subset="train")
    Xte, yte = load_lfw_dlib(root, subset="test")
    print(f"LFW dlib: train {len(Xtr)} faces, test {len(Xte)} faces (identity-disjoint)")
    configs = {"LinkageClusterer (defaults)": {}}
    if args.reference:
        configs["L-GCN reference settings"] = REFERENCE
    figures = {}
    for name, params in configs.items():
        est = LinkageClusterer(random_state=args.seed, verbose=False, **params)
        result = compare_with_baseline(Xtr, ytr, Xte, yte, est)
        print(f"\n== {name}: {est.get_params()['sampler']} sampler, {est.loss} loss")
        print(format_comparison(result, names=(name.split(" (")[0][:16], "kNN threshold")))
        figures[name] = {
            side: {
                "edge_ap": r["edge_ap"],
                **{
                    k: r["metrics"][k]
                    for k in (
                        "pairwise_fscore",
                        "bcubed_precision",
                        "bcubed_recall",
                        "bcubed_fscore",
                        "nmi",
                    )
                },
                "by_size": r["by_size"],
                "fit_seconds": r["fit_seconds"],
                "predict_seconds": r["predict_seconds"],
                "threshold": r["threshold"],
            }
            for side, r in (("model", result["model"]), ("baseline", result["baseline"]))
        }
    if args.json:
        with open(args.json, "x") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
