"""The scoring cascade on LFW test: clusters and predict time, with it and scoring every link.

For each model, ``predict`` on the identity-disjoint LFW test half runs with
``cascade=True`` and ``cascade=False`` in turn (``--repeats`` times each, medians; the
same process, one thread), and prints B-Cubed F, pairwise F, the share of pivots the GCN
scored and the time ratio. Models:

* ``LinkageClusterer()`` (the defaults) trained on the lfw-dlib train half, one per seed
  of ``--seeds`` (its cascade is fitted by ``fit``, on the train half);
* the shipped ``face-any`` (trained on the train halves of dlib and SFace) on both
  embedders;
* the shipped ``dlib-128`` (it saw all of LFW: an agreement figure, not a held-out one).

Every setting of the cascade was chosen on training identities; the test labels only score.

    OMP_NUM_THREADS=1 python examples/benchmarks/bench_cascade.py [--seeds 0 1 2]
        [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _machine import describe

from linkage_gcn import LinkageClusterer
from linkage_gcn.metrics import bcubed_fscore, pairwise_fscore

ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"


class Share(logging.Handler):
    """The share of pivots the GCN scored, read off the estimator's log line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.last = 1.0

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("cascade: the GCN scored"):
            done, total = msg.split()[4], msg.split()[6]
            self.last = int(done) / int(total)


def load(embedder: str, half: str) -> tuple[np.ndarray, np.ndarray]:
    rows = np.load(ROOT / "lfw-dlib" / half / "index.npy")
    y = np.load(ROOT / "lfw-dlib" / half / "labels.npy")
    if embedder == "dlib":
        return np.load(ROOT / "lfw-dlib" / half / "features_raw.npy"), y
    return np.load(ROOT / "lfw-sface" / "features.npy")[rows].astype(np.float32), y


def measure(est: LinkageClusterer, X: np.ndarray, y: np.ndarray, repeats: int,
            share: Share) -> dict:  # fmt: skip
    out: dict = {}
    times: dict = {True: [], False: []}
    for _ in range(repeats):
        for on in (True, False):  # in turn: drift hits both alike
            est.set_params(cascade=on)
            share.last = 1.0
            t0 = time.perf_counter()
            labels = est.predict(X)
            times[on].append(time.perf_counter() - t0)
            out[on] = {"bcubed": bcubed_fscore(y, labels)[2],
                       "pairwise": pairwise_fscore(y, labels)[2], "gcn_share": share.last}  # fmt: skip
    est.set_params(cascade=True)
    for on in (True, False):
        out[on]["seconds"] = statistics.median(times[on])
    return {"cascade": out[True], "every_link": out[False],
            "speedup": out[False]["seconds"] / out[True]["seconds"],
            "lost": out[False]["bcubed"] - out[True]["bcubed"],
            "band": None if est.cascade_ is None else [est.cascade_.low, est.cascade_.high]}


def show(name: str, r: dict) -> None:
    c, e = r["cascade"], r["every_link"]
    print(f"{name}: B-Cubed F {c['bcubed']:.4f} with the cascade, {e['bcubed']:.4f} scoring "
          f"every link ({-r['lost']:+.4f}); pairwise F {c['pairwise']:.4f} / {e['pairwise']:.4f}; "
          f"GCN on {100 * c['gcn_share']:.0f}% of pivots (band {r['band']}); predict "
          f"{c['seconds']:.2f} s against {e['seconds']:.2f} s: {r['speedup']:.2f}x",
          flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2],
                    help="seeds of LinkageClusterer() trained on lfw-dlib/train (none: skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    share = Share()
    logging.getLogger("linkage_gcn.estimator").setLevel(logging.INFO)
    logging.getLogger("linkage_gcn.estimator").addHandler(share)
    print(f"# {describe()}, 1 thread, load {os.getloadavg()[0]:.2f}")
    results: dict = {}
    Xtr, ytr = load("dlib", "train")
    for seed in args.seeds:
        t0 = time.perf_counter()
        est = LinkageClusterer(random_state=seed, threads=1, verbose=False).fit(Xtr, ytr)
        fit_s = time.perf_counter() - t0
        r = measure(est, *load("dlib", "test"), args.repeats, share)
        r["fit_seconds"] = fit_s
        results[f"defaults-seed{seed}/dlib"] = r
        show(f"LinkageClusterer() seed {seed} (fit {fit_s:.0f} s) on dlib", r)
    for name, embedders in (("face-any", ("dlib", "sface")), ("dlib-128", ("dlib",))):
        est = LinkageClusterer.pretrained(name, threads=1, verbose=False)
        for e in embedders:
            r = measure(est, *load(e, "test"), args.repeats, share)
            results[f"{name}/{e}"] = r
            show(f"{name} on {e}", r)
    seeds = [v for k, v in results.items() if k.startswith("defaults")]
    if seeds:
        print(f"LinkageClusterer() mean over {len(seeds)} seeds: lost "
              f"{np.mean([r['lost'] for r in seeds]):+.4f} B-Cubed F, speed-up "
              f"{np.mean([r['speedup'] for r in seeds]):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
