"""A million faces end to end on one machine: fit on a small set, ``predict`` N faces.

Synthetic long-tailed 128-D faces (``make_identities``, one draw split by identity): a
``LinkageClusterer()`` with the library's defaults (Chinese-whispers merge, cut
calibrated on the training faces, ``knn_backend="auto"``, which picks faiss-hnsw at a
million faces when faiss is installed) is trained on about ``--train`` faces and then
clusters the ``--n`` test faces (identities disjoint from training). Prints the time of
each stage (from the estimator's log lines), the peak resident memory, and B-Cubed /
pairwise F of the result. ``--fit-only`` times training alone (e.g. ``--train 100000``).
``--model face-any`` (a shipped model's name, or a saved model's path) clusters with that
model instead of training one; ``--params '{"features": "structure"}'`` trains with those
estimator parameters instead of the defaults. ``--oracle-cuts 0.8 0.85 ...`` also prints B-Cubed F at
each of those link cuts, read off the test labels: the best cut of the N faces themselves,
a reference beside the model's own cut, never a setting (the links are scored once: the
cuts re-merge them); a best cut at either end of the grid is flagged, since the best may lie
beyond it. ``--baseline`` also runs the plainest strong tool on the same faces,
kNN + Infomap (``InfomapClusterer``, k=20, cosine, its cut tuned on the training faces,
one Infomap trial), and prints its time and quality beside ours. ``--device cuda`` runs
every stage on the GPU (kNN, scoring, the merge's inputs) and prints the GPU's peak
memory too; ``--precision tf32`` or ``bf16`` there. A tiny run (``--n 2000 --train 1000
--epochs 1``) is part of the test suite, on the CPU.

Usage:
    python examples/benchmarks/bench_million.py --n 1000000 --threads 2 [--train 10000]
    python examples/benchmarks/bench_million.py --n 1000000 --threads 2 --precision int8
    python examples/benchmarks/bench_million.py --fit-only --train 100000 --threads 2
    python examples/benchmarks/bench_million.py --n 100000 --model face-any \
        --oracle-cuts 0.9 0.95 0.975 0.99 0.995 0.998 0.999
    python examples/benchmarks/bench_million.py --n 1000000 --device cuda --precision tf32 \
        --baseline --oracle-cuts 0.5 0.6 0.7 0.8 0.9 0.95
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import time
from typing import Any

import numpy as np
import torch
from _machine import describe

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import make_identities
from linkage_gcn.metrics import bcubed_fscore, pairwise_fscore


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gpu_peak_mib(device: str) -> float:
    if not device.startswith("cuda"):
        return 0.0
    return torch.cuda.max_memory_allocated() / 2**20


class StageClock(logging.Handler):
    """Echo the estimator's INFO lines with the seconds since the start and the peak memory."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.start = time.perf_counter()
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        t = time.perf_counter() - self.start
        msg = record.getMessage()
        self.lines.append({"t": round(t, 1), "peak_mib": round(peak_mib()), "msg": msg})
        print(f"[{t:8.1f} s, peak {peak_mib():7,.0f} MiB] {msg}", flush=True)


def faces(n_train: int, n_test: int, seed: int) -> tuple[np.ndarray, ...]:
    """``n_train`` (about) and ``n_test`` faces of disjoint identities, the same distribution.

    Independent draws of ``make_identities(2000, max_size=500)`` (about 9,400 faces each,
    the shape of a photo collection: a few people with hundreds of photos, most with one
    to three) are stacked until there are enough; identities are then shuffled and taken
    whole into training until it holds ``n_train`` faces, the rest is the test set.
    """
    need = n_train + n_test
    parts, total, offset, i = [], 0, 0, 0
    while total < need + 500:
        X, y = make_identities(2000, dim=128, max_size=500, random_state=seed * 100_003 + i)
        parts.append((X.astype(np.float32), y + offset))
        total, offset, i = total + len(y), offset + int(y.max()) + 1, i + 1
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(seed)
    ids = rng.permutation(offset)
    sizes = np.bincount(y, minlength=offset)[ids]
    n_ids = int(np.searchsorted(np.cumsum(sizes), n_train)) + 1
    is_train = np.isin(y, ids[:n_ids])
    test = rng.permutation(np.flatnonzero(~is_train))[:n_test]
    if len(test) < n_test:
        raise SystemExit(f"drew only {len(test):,} test faces")
    return X[is_train], y[is_train], X[test], y[test]


def last_knn_seconds(clock: StageClock) -> float:
    """The time of the last kNN search the log reported (``kNN: ..., 12.3 s...``)."""
    for line in reversed(clock.lines):
        found = re.match(r"kNN: .*?, (\d+(?:\.\d+)?) s[ .]", line["msg"])
        if found:
            return float(found.group(1))
    raise RuntimeError("no kNN search was logged")


def knn_infomap(X_train, y_train, X_test, y_test, seed: int, ours: float,
                ours_knn: float, clock: StageClock) -> dict[str, Any]:  # fmt: skip
    """The tool: kNN (k=20, cosine) + Infomap, its cut tuned on the training faces, timed.

    Besides the totals, the stages after the kNN are compared (ours: scoring and merge;
    the tool's: Infomap): the same kNN search, run twice, can differ by a sixth.
    """
    from linkage_gcn.baselines import InfomapClusterer

    tool = InfomapClusterer(metric="cosine", num_trials=1, random_state=seed)
    tool.fit(X_train, y_train)  # the cut, on the training faces' labels
    t0 = time.perf_counter()
    labels = tool.predict(X_test)
    seconds = time.perf_counter() - t0
    knn_s = last_knn_seconds(clock)
    bc, pw = bcubed_fscore(y_test, labels), pairwise_fscore(y_test, labels)
    print(f"kNN + Infomap (k=20, cosine cut {tool.threshold_:.3f} tuned on the training faces, "
          f"1 trial): {seconds:.0f} s, B-Cubed F {bc[2]:.4f}, pairwise F {pw[2]:.4f}; ours "
          f"{ours:.0f} s ({ours / seconds:.2f}x the tool's time), peak {peak_mib():,.0f} MiB",
          flush=True)  # fmt: skip
    after, tool_after = ours - ours_knn, seconds - knn_s
    print(f"after the kNN (ours {ours_knn:.0f} s, the tool's {knn_s:.0f} s): ours {after:.0f} s "
          f"(scoring and merge), the tool {tool_after:.0f} s (Infomap): "
          f"{after / max(tool_after, 1e-9):.2f}x", flush=True)  # fmt: skip
    return {"seconds": seconds, "cut": tool.threshold_, "bcubed": bc, "pairwise": pw,
            "knn_seconds": knn_s, "ours_knn_seconds": ours_knn}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="faces to cluster")
    ap.add_argument("--train", type=int, default=10_000, help="training faces (about)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit-only", action="store_true", help="time training only")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "int8", "bf16", "tf32"],
                    help="arithmetic of link scoring (fit's calibration and predict)")  # fmt: skip
    ap.add_argument("--model", default=None, help="a shipped model's name or a saved path")
    ap.add_argument("--oracle-cuts", nargs="*", type=float, default=[],
                    help="link cuts to score on the test labels (a reference)")  # fmt: skip
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the "
                    "estimator's)")  # fmt: skip
    ap.add_argument("--baseline", action="store_true",
                    help="also time kNN + Infomap on the same faces (needs infomap)")  # fmt: skip
    ap.add_argument("--params", type=json.loads, default={},
                    help="estimator parameters to train with, as JSON (lists become tuples), "
                    "e.g. '{\"features\": \"structure\"}'")  # fmt: skip
    args = ap.parse_args()
    if args.model is not None and args.params:
        raise SystemExit("--params sets how to train: it cannot go with --model")
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in args.params.items()}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: this torch has no CUDA device")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    clock = StageClock()
    log = logging.getLogger("linkage_gcn")
    log.setLevel(logging.INFO)
    log.addHandler(clock)
    gpu = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "no GPU"
    print(f"# {describe()}, {gpu}, {args.threads} thread(s), device {args.device}, "
          f"precision {args.precision}, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    t0 = time.perf_counter()
    X_train, y_train, X_test, y_test = faces(args.train, 0 if args.fit_only else args.n,
                                             args.seed)  # fmt: skip
    print(f"data: {len(X_train):,} training faces ({len(np.unique(y_train)):,} identities), "
          f"{len(X_test):,} test faces ({len(np.unique(y_test)):,} identities) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    t0 = time.perf_counter()
    if args.model is None:
        extra = {} if args.epochs is None else {"epochs": args.epochs}
        est = LinkageClusterer(random_state=args.seed, threads=args.threads, verbose=False,
                               precision=args.precision, device=args.device,
                               **{**params, **extra})  # fmt: skip
        est.fit(X_train, y_train)
    else:
        from linkage_gcn.pretrained import available_models

        load = (LinkageClusterer.pretrained if args.model in available_models()
                else LinkageClusterer.load)  # fmt: skip
        est = load(args.model).set_params(threads=args.threads, verbose=False,
                                          precision=args.precision, device=args.device)  # fmt: skip
    fit_s = time.perf_counter() - t0
    print(f"fit: {fit_s:.0f} s ({len(X_train):,} faces, {est.epochs} epochs), cut "
          f"{est.threshold_:.3f}, peak {peak_mib():,.0f} MiB", flush=True)  # fmt: skip
    out: dict[str, Any] = {"train_faces": len(X_train), "fit_seconds": fit_s,
                           "threads": args.threads}  # fmt: skip
    if not args.fit_only:
        t0 = time.perf_counter()
        edge_index, scores = est.predict_edges(X_test)  # kNN and scoring
        score_s = time.perf_counter() - t0
        knn_s = last_knn_seconds(clock)
        labels = est.cluster_edges(edge_index, scores, len(X_test))  # the merge (and joins)
        predict_s = time.perf_counter() - t0
        bc, pw = bcubed_fscore(y_test, labels), pairwise_fscore(y_test, labels)
        print(f"predict: {len(X_test):,} faces in {predict_s:.0f} s ({predict_s / 60:.1f} min; "
              f"kNN + scoring {score_s:.0f} s, merge {predict_s - score_s:.0f} s), "
              f"peak {peak_mib():,.0f} MiB (GPU {gpu_peak_mib(args.device):,.0f} MiB); "
              f"B-Cubed F {bc[2]:.4f} (P {bc[0]:.4f}, R {bc[1]:.4f}), "
              f"pairwise F {pw[2]:.4f}; {len(np.unique(labels)):,} clusters for "
              f"{len(np.unique(y_test)):,} identities", flush=True)  # fmt: skip
        out.update(test_faces=len(X_test), predict_seconds=predict_s, score_seconds=score_s,
                   bcubed=bc, pairwise=pw, gpu_peak_mib=gpu_peak_mib(args.device))  # fmt: skip
        if args.oracle_cuts:
            oracle = {}
            for cut in args.oracle_cuts:
                trial = est.set_params(threshold=cut)
                oracle[cut] = bcubed_fscore(
                    y_test, trial.cluster_edges(edge_index, scores, len(X_test))
                )[2]
                print(f"  link cut {cut:g} (read off the labels): B-Cubed F {oracle[cut]:.4f}",
                      flush=True)  # fmt: skip
            best = max(oracle, key=oracle.get)
            print(f"best cut {best:g}: B-Cubed F {oracle[best]:.4f}; the model's own "
                  f"{bc[2]:.4f} (gap {oracle[best] - bc[2]:.4f})", flush=True)  # fmt: skip
            if best in (min(oracle), max(oracle)) and len(oracle) > 1:
                end = "largest" if best == max(oracle) else "smallest"
                side = "above" if best == max(oracle) else "below"
                print(f"  the best cut is the {end} tried ({best:g}): the best may lie "
                      f"{side} it; try a wider grid", flush=True)  # fmt: skip
            out.update(oracle_cuts=oracle)
        if args.baseline:
            out["baseline"] = knn_infomap(X_train, y_train, X_test, y_test, args.seed, predict_s,
                                          knn_s, clock)  # fmt: skip
    out.update(peak_mib=peak_mib(), log=clock.lines)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
