"""``fit(X)`` without labels on the LFW test half: the students of ``face-any``, per embedder.

For each face model of ``../shared/data`` (dlib's raw descriptors, SFace's unit vectors),
a student is trained on the 6,618 faces of the identity-disjoint LFW **test** half with
no labels (``fit(X)``: the teacher, the shipped ``face-any``, clusters them; the student
trains on its clusters and chooses its cuts to agree with them), then clusters the same
faces. The labels only score. Students:

* ``embedding``  ``LinkageClusterer(join_threshold="auto", attach_threshold="auto")``:
                 learns the face model's own coordinates from the collection;
* ``structure``  ``LinkageClusterer(features="structure", hidden_channels=(256, 256, 128,
                 128), epochs=6, join_threshold="auto", attach_threshold="auto")``: stays
                 embedder-agnostic.

The teacher's own figures are printed beside them.

Usage: python examples/benchmarks/bench_self_training.py [--embedders dlib sface]
       [--students embedding structure] [--rounds 1] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from bench_any_face import lfw_root, load

from linkage_gcn import LinkageClusterer
from linkage_gcn.metrics import bcubed_fscore, pairwise_fscore

#: The students, by name: the parameters of their ``LinkageClusterer``.
STUDENTS = {
    "embedding": dict(join_threshold="auto", attach_threshold="auto"),
    "structure": dict(
        features="structure", hidden_channels=(256, 256, 128, 128), epochs=6,
        join_threshold="auto", attach_threshold="auto",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="lfw-dlib folder (lfw-sface beside it)")
    ap.add_argument("--embedders", nargs="+", default=["dlib", "sface"], choices=["dlib", "sface"])
    ap.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    ap.add_argument("--rounds", type=int, default=1, help="max_rounds of the students")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="also write the results to this new file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = lfw_root(args.data)
    results: dict = {"threads": args.threads, "rounds": args.rounds, "runs": []}
    teacher = LinkageClusterer.pretrained("face-any", threads=args.threads, verbose=False)
    for embedder in args.embedders:
        X, y = load(root, embedder)["test"]
        runs = [("face-any (teacher)", None, teacher.predict(X))]
        for name in args.students:
            est = LinkageClusterer(**STUDENTS[name], max_rounds=args.rounds, random_state=0,
                                   threads=args.threads, verbose=False)  # fmt: skip
            start = time.perf_counter()
            est.fit(X)
            runs.append((name, time.perf_counter() - start, est.predict(X)))
        for name, seconds, pred in runs:
            b, p = bcubed_fscore(y, pred)[2], pairwise_fscore(y, pred)[2]
            results["runs"].append({"embedder": embedder, "student": name, "bcubed_fscore": b,
                                    "pairwise_fscore": p, "fit_seconds": seconds})  # fmt: skip
            fit = "" if seconds is None else f"  (fit {seconds:.0f} s)"
            print(f"{embedder:6s} {name:20s} B-Cubed F {b:.4f}  pairwise F {p:.4f}{fit}",
                  flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "x") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
