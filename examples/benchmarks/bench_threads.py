"""CPU threads on a quiet and on a loaded machine: 1, 2 (torch's default here) and "auto".

Each configuration runs in a fresh process (one epoch of ``LinkageClusterer()`` training
on ``--train`` LFW faces, then ``predict`` on the test half; ``../shared/data/lfw-dlib``,
or synthetic faces when it is absent), in turn, ``--repeats`` times, first on the quiet
machine, then beside ``--load`` busy processes (each a pure-Python loop keeping one core
busy, as another job would). Prints the median seconds of each and the ratios to the
fastest, and the thread count "auto" chose.

    python examples/benchmarks/bench_threads.py [--repeats 3] [--load 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

LFW = Path(__file__).resolve().parents[3] / "shared" / "data" / "lfw-dlib"

CHILD = r"""
import json, sys, time
import numpy as np
from pathlib import Path
threads = sys.argv[1]
from linkage_gcn import LinkageClusterer
from linkage_gcn._threads import default_threads
from linkage_gcn.datasets import make_identities
lfw, n_train = Path(sys.argv[2]), int(sys.argv[3])
if (lfw / "train").is_dir():
    Xtr, ytr = np.load(lfw / "train/features_raw.npy"), np.load(lfw / "train/labels.npy")
    Xte = np.load(lfw / "test/features_raw.npy")
else:
    X, y = make_identities(1200, dim=128, random_state=0)
    Xtr, ytr, Xte = X[y % 2 == 0], y[y % 2 == 0], X[y % 2 == 1]
Xtr, ytr = Xtr[:n_train], ytr[:n_train]
value = None if threads == "none" else threads if threads == "auto" else int(threads)
chosen = default_threads()
est = LinkageClusterer(epochs=1, random_state=0, verbose=False, threads=value)
t0 = time.perf_counter()
est.fit(Xtr, ytr)
t1 = time.perf_counter()
est.predict(Xte)
t2 = time.perf_counter()
print(json.dumps({"fit": t1 - t0, "predict": t2 - t1, "auto": chosen}))
"""


def spin() -> None:  # another job: one core kept busy
    while True:
        pass


def run(threads: str, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", CHILD, threads, str(LFW), str(args.train)],
                         capture_output=True, text=True, env=env, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=1, help="busy processes beside the loaded runs")
    parser.add_argument("--train", type=int, default=3000, help="training faces")
    parser.add_argument("--configs", nargs="+", default=["1", "none", "auto"],
                        help="thread settings: numbers, none (torch's default), auto")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, {args.train} training faces, "
          f"{'LFW' if (LFW / 'train').is_dir() else 'synthetic'}; configs {args.configs}")
    results: dict = {}
    for state in ("quiet", "loaded"):
        hogs = [mp.Process(target=spin, daemon=True) for _ in range(args.load if state ==
                                                                   "loaded" else 0)]
        for h in hogs:
            h.start()
        deadline = time.monotonic() + 90  # the load average follows over about a minute
        while hogs and os.getloadavg()[0] < 0.8 * len(hogs) and time.monotonic() < deadline:
            time.sleep(2.0)
        runs: dict = {c: [] for c in args.configs}
        for _ in range(args.repeats):
            for c in args.configs:  # in turn: drift hits each alike
                runs[c].append(run(c, args))
        for h in hogs:
            h.terminate()
        results[state] = {}
        for c, rs in runs.items():
            med = {k: statistics.median(r[k] for r in rs) for k in ("fit", "predict")}
            results[state][c] = {**med, "auto_chose": rs[-1]["auto"]}
        best = {k: min(v[k] for v in results[state].values()) for k in ("fit", "predict")}
        for c, v in results[state].items():
            extra = f" (auto chose {v['auto_chose']})" if c == "auto" else ""
            print(f"{state:6s} threads={c:4s}: fit {v['fit']:6.1f} s ({v['fit'] / best['fit']:.2f}x "
                  f"the fastest), predict {v['predict']:5.1f} s "
                  f"({v['predict'] / best['predict']:.2f}x){extra}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
