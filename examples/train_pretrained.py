"""Train a shipped pretrained model: ``dlib-128`` or ``face-any``.

``dlib-128`` (``LinkageClusterer.pretrained("dlib-128")``) is a ``LinkageClusterer`` with
the library's defaults (raw dlib descriptors in, cosine kNN, Chinese-whispers merge, cut
calibrated on the training faces), trained on all 13,233 faces of ``lfw-dlib`` (dlib's
128-D ResNet descriptors of LFW, as ``face_recognition.face_encodings`` returns them). Its
figures on LFW in the model card (docs/pretrained.md) come from the same recipe trained
on the train half and scored on the test half (``bench_lfw.py``).

``face-any`` (any face model, any dimension; docs/any_face.md) sees only structure
features (``features="structure"``), trained on the **train halves** of LFW embedded by
two face models, dlib (``lfw-dlib``) and SFace (``lfw-sface``), in two shapes each: the
long-tailed half as it is, and its people with at least 10 faces alone (a family
library's shape: a few people, many photos each, no strangers), four collections. Its
link cut, cluster cut and piece cut are chosen on identity-disjoint folds of those
training faces, in both shapes and at three sizes (each fold, and random quarters and
halves of it: ``calibration="cv"``, ``cv_sizes=(0.25, 0.5)``, ``join_threshold="auto"``,
``attach_threshold="auto"``). The
LFW test half is never read, so it scores the shipped file (``bench_any_face.py``).

Usage: python examples/train_pretrained.py [--model dlib-128|face-any] [--data DIR]
       [--out PATH] [--seed 0] [--threads 1] [--overwrite] [--log]
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from linkage_gcn import LinkageClusterer
from linkage_gcn.datasets import find_shared_lfw, load_lfw_dlib

PRETRAINED = Path(__file__).resolve().parents[1] / "src/linkage_gcn/pretrained"

#: People with at least this many faces make up a family-shaped training collection.
FAMILY_MIN = 10

#: The settings of ``face-any`` (its model card, docs/any_face.md, lists them).
FACE_ANY = dict(
    features="structure",
    hidden_channels=(256, 256, 128, 128),
    epochs=6,
    calibration="cv",
    join_threshold="auto",
    attach_threshold="auto",
    cv_sizes=(0.25, 0.5),
)


def dlib_128(root: Path, seed: int, threads: int) -> LinkageClusterer:
    """All of ``lfw-dlib``, the estimator's defaults."""
    X, y = load_lfw_dlib(root, subset="all")
    print(f"dlib-128: {len(X):,} faces, {len(np.unique(y)):,} identities")
    return LinkageClusterer(random_state=seed, threads=threads).fit(X, y)


def face_any_training_set(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The LFW train halves in dlib and SFace, in two shapes: rows zero-padded, collections.

    Collections 0 and 1 are the dlib and SFace halves; 2 and 3 their people with
    :data:`FAMILY_MIN` faces or more, alone. Identities of the two face models
    are kept apart (the same person in two embedding spaces is never a link:
    the kNN search stays in each collection); a family collection keeps the
    labels of its long-tailed one, so that identity-disjoint folds hold a
    person's faces in both shapes on the same side.
    """
    X_dlib, y_dlib = load_lfw_dlib(root, subset="train")
    sface = root.parent / "lfw-sface"
    rows = np.load(root / "train" / "index.npy")
    X_sface = np.load(sface / "features.npy")[rows].astype(np.float32)
    y_sface = np.load(sface / "train" / "labels.npy")
    width = max(X_dlib.shape[1], X_sface.shape[1])
    parts = [np.pad(x, ((0, 0), (0, width - x.shape[1]))) for x in (X_dlib, X_sface)]
    X = np.vstack(parts)
    y = np.concatenate([y_dlib, y_sface + y_dlib.max() + 1])
    collections = np.repeat([0, 1], [len(X_dlib), len(X_sface)])
    family = np.bincount(y)[y] >= FAMILY_MIN
    X = np.vstack([X, X[family]])
    y = np.concatenate([y, y[family]])
    collections = np.concatenate([collections, collections[family] + 2])
    return X, y, collections


def face_any(root: Path, seed: int, threads: int) -> LinkageClusterer:
    """The train halves of lfw-dlib and lfw-sface, structure features."""
    X, y, collections = face_any_training_set(root)
    print(f"face-any: {len(X):,} faces in 4 collections (dlib, SFace; long tail, family), "
          f"{len(np.unique(y)):,} identities")  # fmt: skip
    est = LinkageClusterer(**FACE_ANY, random_state=seed, threads=threads)
    return est.fit(X, y, collections=collections)


RECIPES = {"dlib-128": dlib_128, "face-any": face_any}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(RECIPES), default="dlib-128")
    ap.add_argument("--data", default=None, help="lfw-dlib folder (default: ../shared/...)")
    ap.add_argument("--out", default=None, help="default: the package's pretrained folder")
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
    out = Path(args.out or PRETRAINED / f"{args.model}.pt")
    if out.exists() and not args.overwrite:
        raise SystemExit(f"{out} exists: pass --overwrite to replace it")
    start = time.perf_counter()
    est = RECIPES[args.model](root, args.seed, args.threads)
    est.set_params(threads=None)  # the shipped model leaves torch's threads alone
    print(f"trained in {time.perf_counter() - start:.0f} s; link cut {est.threshold_:.4f}, "
          f"cluster cut {est.join_cut()}, piece cut {est.attach_cut()}")  # fmt: skip
    est.save(out, overwrite=args.overwrite)
    print(f"saved -> {out} ({out.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
