"""The ``linkage-gcn`` command: build kNN graphs, train, test/predict, evaluate, demo.

Accepts the flags of the reference L-GCN scripts (``--feat_path``,
``--knn_graph_path``, ``--labels_path``, ``--val_feat_path``,
``--val_knn_graph_path``, ``--val_labels_path``, ``--checkpoint``,
``--k-at-hop``, ``--active_connection``) as well as hyphenated names.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np

from . import __version__

__all__ = ["build_parser", "main"]


def _opt(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Add ``--name-with-hyphens`` together with its ``--name_with_underscores`` alias."""
    hyphen, under = "--" + name.replace("_", "-"), "--" + name.replace("-", "_")
    flags = [hyphen] if hyphen == under else [hyphen, under]
    parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


def _model_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    d = (lambda v: v) if defaults else (lambda v: None)
    _opt(p, "k-at-hop", type=int, nargs=2, metavar=("K1", "K2"), default=d([20, 5]),
         help="1-hop and 2-hop neighbours of each Instance Pivot Subgraph")  # fmt: skip
    _opt(
        p,
        "active_connection",
        type=int,
        default=d(5),
        help="u: edges to the u nearest inside an IPS",
    )
    _opt(
        p,
        "merge",
        choices=["threshold", "propagation"],
        default=None,
        help="how links become clusters",
    )
    _opt(p, "threshold", default=None, help="link threshold, or 'auto' (calibrated when fitting)")
    _opt(p, "max_size", type=int, default=None, help="max cluster size of the propagation merge")
    _opt(p, "step", type=float, default=None, help="threshold step of the propagation merge")
    _opt(p, "device", default="auto", help="auto, cpu, cuda or cuda:N")
    _opt(p, "quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``linkage-gcn``."""
    parser = argparse.ArgumentParser(
        prog="linkage-gcn",
        description="Linkage-based clustering of embeddings with graph convolution networks.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("knn", help="build a kNN graph (self-first knn.npy)")
    _opt(p, "feat_path", required=True, help="features.npy (N x D)")
    _opt(p, "out", required=True, help="where to write knn.npy (N x (K+1), self first)")
    p.add_argument("-k", "--k", type=int, default=80, help="neighbours per point")
    _opt(p, "metric", choices=["cosine", "l2"], default="cosine")
    _opt(
        p,
        "backend",
        default="auto",
        help="auto, torch, faiss, faiss-ivf, faiss-hnsw, torch_cluster",
    )
    _opt(p, "overwrite", action="store_true", help="replace an existing output file")

    p = sub.add_parser("train", help="train a LinkageClusterer on labelled features")
    _opt(p, "feat_path", required=True, help="training features.npy")
    _opt(p, "labels_path", required=True, help="training labels.npy")
    _opt(p, "knn_graph_path", help="training knn.npy (self first); computed when omitted")
    _opt(p, "checkpoint", required=True, help="where to save the trained model")
    _opt(p, "val_feat_path", help="validation features, clustered after training")
    _opt(p, "val_labels_path", help="validation labels, to score the clustering")
    _opt(p, "val_knn_graph_path", help="validation knn.npy (self first)")
    _model_options(p, defaults=True)
    _opt(p, "sampler", default="riws", choices=["topk", "rs", "riws"], help="1-hop selection")
    _opt(p, "gamma", type=float, default=2.0, help="pool expansion of rs/riws")
    _opt(p, "loss", default="cb-graph", choices=["ce", "cb", "cb-graph", "focal"])
    _opt(p, "epochs", type=int, default=4)
    _opt(p, "batch_size", type=int, default=16)
    _opt(p, "lr", type=float, default=0.01)
    _opt(p, "seed", type=int, default=0)
    _opt(p, "overwrite", action="store_true", help="replace an existing checkpoint")

    for name, help_ in (
        ("test", "cluster features with a trained model"),
        ("predict", "alias of test"),
    ):
        p = sub.add_parser(name, help=help_)
        _opt(p, "checkpoint", required=True, help="a model saved by `linkage-gcn train`")
        _opt(p, "val_feat_path", help="features to cluster (alias: --feat_path)")
        _opt(p, "feat_path", help=argparse.SUPPRESS)
        _opt(p, "val_knn_graph_path", help="their knn.npy (self first; alias: --knn_graph_path)")
        _opt(p, "knn_graph_path", help=argparse.SUPPRESS)
        _opt(p, "val_labels_path", help="true labels, to print metrics (alias: --labels_path)")
        _opt(p, "labels_path", help=argparse.SUPPRESS)
        _opt(p, "out", help="where to write the predicted labels (.npy)")
        _opt(p, "metrics_out", help="where to write the metrics (.json)")
        _opt(p, "overwrite", action="store_true", help="replace existing output files")
        _model_options(p, defaults=False)

    p = sub.add_parser("evaluate", help="score predicted clusters against true labels")
    _opt(p, "labels_path", required=True, help="true labels.npy")
    _opt(p, "pred_path", required=True, help="predicted labels.npy")
    _opt(p, "metrics_out", help="where to write the metrics (.json)")
    _opt(p, "overwrite", action="store_true")

    p = sub.add_parser("demo", help="train on built-in data, cluster held-out identities")
    _opt(p, "n_identities", type=int, default=1200, help="identities of the synthetic data")
    _opt(p, "epochs", type=int, default=4)
    _opt(p, "seed", type=int, default=0)
    _opt(p, "device", default="auto")
    _opt(p, "quiet", action="store_true")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"knn": _cmd_knn, "train": _cmd_train, "test": _cmd_test, "predict": _cmd_test,
                "evaluate": _cmd_evaluate, "demo": _cmd_demo}  # fmt: skip
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError, TypeError) as exc:
        print(f"linkage-gcn {args.command}: error: {exc}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------- commands


def _cmd_knn(args: argparse.Namespace) -> int:
    from .io import load_features, save_knn
    from .knn import knn

    X = load_features(args.feat_path)
    start = time.perf_counter()
    index, _ = knn(X, args.k, metric=args.metric, backend=args.backend)
    path = save_knn(args.out, index, overwrite=args.overwrite)
    print(
        f"kNN of {len(X)} points (k={args.k}, {args.metric}) "
        f"in {time.perf_counter() - start:.1f}s -> {path}"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .estimator import LinkageClusterer
    from .io import load_reference

    if Path(args.checkpoint).exists() and not args.overwrite:
        raise FileExistsError(f"{args.checkpoint} already exists; pass --overwrite to replace it.")
    X, index, y = load_reference(args.feat_path, args.knn_graph_path, args.labels_path)
    est = LinkageClusterer(
        k_at_hop=tuple(args.k_at_hop), active_connection=args.active_connection,
        sampler=args.sampler, gamma=args.gamma, loss=args.loss, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, device=args.device, random_state=args.seed,
        verbose=False if args.quiet else None, **_merge_overrides(args),
    )  # fmt: skip
    start = time.perf_counter()
    est.fit(X, y, knn_index=index)
    for h in est.history_:
        print(f"epoch {h['epoch'] + 1}: loss {h['loss']:.4f}  link precision {h['precision']:.4f}  "
              f"recall {h['recall']:.4f}  ({h['seconds']:.1f}s)")  # fmt: skip
    print(f"trained on {len(X)} samples in {time.perf_counter() - start:.1f}s; "
          f"link threshold {est.threshold_:.4f}")  # fmt: skip
    est.save(args.checkpoint, overwrite=args.overwrite)
    print(f"saved {args.checkpoint}")
    if args.val_feat_path:
        Xv, iv, yv = load_reference(
            args.val_feat_path, args.val_knn_graph_path, args.val_labels_path
        )
        _report(est, Xv, iv, yv, None, None, overwrite=False)
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from .estimator import LinkageClusterer
    from .io import load_reference

    feat = args.val_feat_path or args.feat_path
    if feat is None:
        raise ValueError("give the features to cluster with --val_feat_path (or --feat_path).")
    for path in (args.out, args.metrics_out):
        if path and Path(path).exists() and not args.overwrite:
            raise FileExistsError(f"{path} already exists; pass --overwrite to replace it.")
    est = LinkageClusterer.load(args.checkpoint)
    overrides = _merge_overrides(args)
    if args.k_at_hop is not None:
        overrides["k_at_hop"] = tuple(args.k_at_hop)
    if args.active_connection is not None:
        overrides["active_connection"] = args.active_connection
    est.set_params(device=args.device, verbose=False if args.quiet else None, **overrides)
    X, index, y = load_reference(
        feat,
        args.val_knn_graph_path or args.knn_graph_path,
        args.val_labels_path or args.labels_path,
    )
    _report(est, X, index, y, args.out, args.metrics_out, overwrite=args.overwrite)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .io import load_labels
    from .metrics import evaluate, format_report

    y = load_labels(args.labels_path)
    pred = load_labels(args.pred_path, n_samples=len(y))
    metrics = evaluate(y, pred)
    print(format_report(metrics))
    _print_reference_lines(metrics)
    if args.metrics_out:
        _write_json(args.metrics_out, metrics, overwrite=args.overwrite)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(n_identities=args.n_identities, epochs=args.epochs, seed=args.seed,
             device=args.device, verbose=False if args.quiet else None)  # fmt: skip
    return 0


# ---------------------------------------------------------------------------- helpers


def _merge_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("merge", "max_size", "step"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "threshold", None) is not None:
        out["threshold"] = args.threshold if args.threshold == "auto" else float(args.threshold)
    return out


def _report(est, X, index, y, out, metrics_out, *, overwrite: bool) -> None:
    from .io import save_labels
    from .metrics import evaluate, format_report

    if out is None and metrics_out is None and y is None:
        print("nothing to do: give --out for the labels or --val_labels_path for metrics.")
    start = time.perf_counter()
    edge_index, scores = est.predict_edges(X, knn_index=index)
    pred = est._merge(edge_index, scores, len(X))
    seconds = time.perf_counter() - start
    print(f"clustered {len(X)} samples into {len(np.unique(pred))} clusters in {seconds:.1f}s")
    if out:
        save_labels(out, pred, overwrite=overwrite)
        print(f"labels -> {out}")
    if y is None:
        return
    metrics = evaluate(y, pred, edge_index=edge_index, scores=scores)
    metrics["seconds"] = seconds
    print(format_report(metrics))
    _print_reference_lines(metrics)
    if metrics_out:
        _write_json(metrics_out, metrics, overwrite=overwrite)
        print(f"metrics -> {metrics_out}")


def _print_reference_lines(m: dict[str, float]) -> None:
    """The two lines the reference test script ends with."""
    print(f"Bcubed: precision {m['bcubed_precision']:.4f} recall {m['bcubed_recall']:.4f} "
          f"fscore {m['bcubed_fscore']:.4f}")  # fmt: skip
    print(f"NMI: {m['nmi']:.4f}")


def _write_json(path: str, data: dict[str, Any], *, overwrite: bool) -> None:
    from .io import atomic_write

    text = json.dumps({k: _plain(v) for k, v in data.items()}, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
