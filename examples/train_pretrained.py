"""Train the shipped pretrained model ``dlib-128`` (``LinkageClusterer.pretrained("dlib-128")``).

The model is a ``LinkageClusterer`` with the library's defaults (raw dlib descriptors in,
Euclidean kNN, Chinese-whispers merge, cut calibrated on the training faces), trained on
all 13,233 faces of ``lfw-dlib`` (dlib's 128-D ResNet descriptors of LFW, as
``face_recognition.face_encodings`` returns them). Its figures on LFW in the model card
(docs/pretrained.md) come from the same recipe trained on the train half and scored on the
test half (``bench_lfw.py``); this script only trains the shipped copy.

Usage: python examples/train_pretrained.py [--data DIR] [--out PATH] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src/linkage_gcn/pretrained/dlib-128.pt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="lfw-dlib folder (default: ../shared/...)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--log", action="store_true", help="print the estimator's INFO log lines")
    args = ap.parse_args()
    if args.log:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    root = Path(args.data or find_shared_lfw() or "")
    if not (root / "features_raw.npy").exists():
        raise SystemExit("no lfw-dlib data found: pass --data PATH")
    X = np.load(root / "features_raw.npy")
    y = np.load(root / "labels.npy")
    start = time.perf_counter()
    est = LinkageClusterer(random_state=args.seed, threads=args.threads).fit(X, y)
    est.set_params(threads=None)  # the shipped model leaves torch's threads alone
    print(f"trained on {len(X):,} faces, {len(np.unique(y)):,} identities in "
          f"{time.perf_counter() - start:.0f} s; link threshold {est.threshold_:.4f}")
    est.save(args.out, overwrite=args.overwrite)
    print(f"saved -> {args.out} ({Path(args.out).stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
