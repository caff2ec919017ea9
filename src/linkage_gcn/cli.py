"""The ``linkage-gcn`` command: kNN graphs, train, test/predict, evaluate, demo, imbalance grid.

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

    p = sub.add_parser(
        "imbalance",
        help="the RIWS paper's experiments: methods x imbalanced subsets, gamma sweep",
        description="Train the 9 methods of the RIWS paper's Table 1 (plus CBg+RIWS, an "
        "extension of this package) on (H m, S n) imbalanced subsets of a labelled training "
        "set and score them on identity-disjoint test data (edge AP, B-Cubed F); then sweep "
        "the pool expansion gamma of RS and RIWS (Fig. 3).",
    )
    _opt(p, "data", choices=["auto", "lfw", "synthetic"], default="auto",
         help="LFW dlib embeddings (auto: when found) or synthetic identities")  # fmt: skip
    _opt(p, "data_path", help="the lfw-dlib folder (holding train/ and test/)")
    _opt(p, "full", action="store_true",
         help="the larger grid: 8 subsets, reference-width model, 4 epochs (hours)")  # fmt: skip
    _opt(p, "quick", action="store_true",
         help="smoke test: tiny model (small synthetic data); numbers mean nothing")  # fmt: skip
    _opt(p, "subsets", nargs="+", metavar="M:N",
         help="(H m, S n) subsets, e.g. 10:3 40:3 (default: 10:3 40:3)")  # fmt: skip
    _opt(p, "sweep_subset", metavar="M:N", help="subset of the gamma sweep (default: the first)")
    _opt(p, "methods", nargs="+", metavar="NAME",
         help="methods to run (default: all: L-GCN CB FL RS RIWS CB+RS FL+RS CB+RIWS "
              "FL+RIWS CBg+RIWS)")  # fmt: skip
    _opt(p, "gammas", type=float, nargs="+", metavar="G",
         help="gammas of the sweep (default: 1 1.2 1.5 2 2.5 3)")  # fmt: skip
    _opt(p, "no_sweep", action="store_true", help="skip the gamma sweep")
    _opt(p, "epochs", type=int, help="training epochs of every run (default: 3; 4 with --full)")
    _opt(p, "seed", type=int, default=0, help="seed of the subsets and of every fit")
    _opt(p, "device", default="auto", help="auto, cpu, cuda or cuda:N")
    _opt(p, "threads", type=int,
         help="torch CPU threads (1 is often faster on a busy shared machine)")  # fmt: skip
    _opt(p, "out", help="where to write all records (.json; saved after every run)")
    _opt(p, "table_out", help="where to write the tables (.md)")
    _opt(p, "plot", help="where to draw the gamma sweep (.png, .pdf, .svg)")
    _opt(p, "overwrite", action="store_true", help="replace existing output files")
    _opt(p, "quiet", action="store_true", help="no progress lines or bars")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"knn": _cmd_knn, "train": _cmd_train, "test": _cmd_test, "predict": _cmd_test,
                "evaluate": _cmd_evaluate, "demo": _cmd_demo,
                "imbalance": _cmd_imbalance}  # fmt: skip
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


def _cmd_imbalance(args: argparse.Namespace) -> int:
    from . import experiments as ex

    grid = ex.default_grid(
        "lfw" if args.data == "auto" and args.data_path else args.data,
        full=args.full, quick=args.quick,
    )  # fmt: skip
    subsets = [_parse_subset(s) for s in args.subsets] if args.subsets else grid["subsets"]
    sweep_subset = _parse_subset(args.sweep_subset) if args.sweep_subset else subsets[0]
    methods = args.methods or grid["methods"]
    ex.resolve_methods(methods)  # unknown names fail now, not after the first runs
    gammas = args.gammas or grid["gammas"]
    base = {**grid["base_params"], "device": args.device}
    if args.epochs is not None:
        base["epochs"] = args.epochs
    if args.plot and args.no_sweep:
        raise ValueError("--plot draws the gamma sweep; drop --no-sweep.")
    _check_outputs((args.out, args.table_out, args.plot), overwrite=args.overwrite)
    if args.plot:
        try:
            ex.require_matplotlib()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}.")
        import torch

        torch.set_num_threads(args.threads)
    d = ex.load_data(grid["data"], args.data_path, random_state=args.seed, quick=args.quick)
    data = (d["X_train"], d["y_train"], d["X_test"], d["y_test"])
    sizes = ex.describe_subsets(d["y_train"], subsets, random_state=args.seed)
    n_sweep = 0 if args.no_sweep else 1 + 2 * len(gammas)
    print(f"data: {d['data']} ({d['source']}): train {len(d['y_train'])} samples of "
          f"{len(np.unique(d['y_train']))} identities, test {len(d['y_test'])} of "
          f"{len(np.unique(d['y_test']))}")  # fmt: skip
    for s in sizes:
        print(f"  {s['subset']}: {s['n_samples']} samples, {s['n_identities']} identities "
              f"({s['n_majority_samples']} in the head, {s['n_identities_with_pairs']} "
              "identities with a same-identity pair)")  # fmt: skip
    print(f"{len(subsets)} subsets x {len(methods)} methods"
          + (f" + gamma sweep on {ex.subset_name(*sweep_subset)} ({n_sweep} runs, some "
             "reused from the grid)" if n_sweep else "")
          + f"; base settings {base}")  # fmt: skip
    results: dict[str, Any] = {
        "command": "imbalance", "version": __version__, "data": d["data"],
        "source": d["source"], "seed": args.seed, "base_params": base,
        "methods": {name: ex.resolve_methods([name])[name] for name in methods},
        "subsets": sizes, "sweep_subset": ex.subset_name(*sweep_subset),
        "gammas": [] if args.no_sweep else list(gammas), "complete": False,
        "grid": [], "sweep": [],
    }  # fmt: skip
    written = [False]

    def save(key: Optional[str] = None, record: Optional[dict[str, Any]] = None) -> None:
        if key is not None:
            results[key].append(record)
        if args.out:
            ex.save_results(args.out, results, overwrite=args.overwrite or written[0])
            written[0] = True

    verbose = False if args.quiet else None
    start = time.perf_counter()
    cache: dict[str, Any] = {}
    grid_records = ex.run_imbalance_grid(
        *data, subsets=subsets, methods=methods, base_params=base, random_state=args.seed,
        verbose=verbose, callback=lambda r: save("grid", r), cache=cache,
    )  # fmt: skip
    sweep_records = []
    if not args.no_sweep:
        sweep_records = ex.gamma_sweep(
            *data, subset=sweep_subset, gammas=gammas, base_params=base,
            random_state=args.seed, verbose=verbose, callback=lambda r: save("sweep", r),
            cache=cache,
        )  # fmt: skip
    results["complete"] = True
    results["total_seconds"] = time.perf_counter() - start
    save()
    print(f"\nedge AP on the test set ({len(d['y_test'])} samples; best of each column *):")
    print(ex.format_table(grid_records, "edge_ap"))
    print("\nB-Cubed F (threshold calibrated on each training subset):")
    print(ex.format_table(grid_records, "bcubed_fscore"))
    if sweep_records:
        print(f"\ngamma sweep on {ex.subset_name(*sweep_subset)}: edge AP")
        print(ex.format_sweep(sweep_records, "edge_ap"))
    print(f"\n{len(grid_records) + len(sweep_records)} runs in "
          f"{results['total_seconds'] / 60:.1f} min")  # fmt: skip
    if args.out:
        print(f"records -> {args.out}")
    if args.table_out:
        _write_text(args.table_out, _imbalance_markdown(ex, results), overwrite=args.overwrite)
        print(f"tables -> {args.table_out}")
    if args.plot:
        ex.plot_gamma_sweep(sweep_records, args.plot, overwrite=args.overwrite)
        print(f"gamma sweep plot -> {args.plot}")
    return 0


def _parse_subset(text: str) -> tuple[int, int]:
    """``"10:3"`` -> ``(10, 3)``."""
    try:
        m, n = (int(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"a subset is M:N (e.g. 10:3 for (H10, S3)), got {text!r}.") from None
    if m < 0 or n < 1:
        raise ValueError(f"subset {text!r}: need M >= 0 and N >= 1.")
    return m, n


def _check_outputs(paths: Sequence[Optional[str]], *, overwrite: bool) -> None:
    """Fail before a long run when an output exists (without --overwrite) or has no folder."""
    for path in paths:
        if not path:
            continue
        p = Path(path)
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass --overwrite to replace it.")
        if not p.parent.is_dir():
            raise FileNotFoundError(f"{p.parent}: directory does not exist.")


def _imbalance_markdown(ex: Any, results: dict[str, Any]) -> str:
    grid, sweep = results["grid"], results["sweep"]
    parts = [
        f"Data: {results['data']} ({results['source']}); seed {results['seed']}; "
        f"base settings: {results['base_params']}.",
        "", "### Edge AP", "", ex.format_markdown_table(grid, "edge_ap"),
        "", "### B-Cubed F", "", ex.format_markdown_table(grid, "bcubed_fscore"),
    ]  # fmt: skip
    if sweep:
        parts += ["", f"### Gamma sweep on {results['sweep_subset']}: edge AP", "",
                  ex.format_sweep(sweep, "edge_ap", markdown=True)]  # fmt: skip
    return "\n".join(parts) + "\n"


def _write_text(path: str, text: str, *, overwrite: bool) -> None:
    from ._files import atomic_write

    atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


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
    pred = est.cluster_edges(edge_index, scores, len(X))
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
    from ._files import atomic_write

    text = json.dumps({k: _plain(v) for k, v in data.items()}, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
