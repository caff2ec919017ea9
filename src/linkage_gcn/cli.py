"""The ``linkage-gcn`` command: kNN graphs, train, test/predict, evaluate, add, demo, imbalance.

Accepts the flags of the reference L-GCN scripts (``--feat_path``,
``--knn_graph_path``, ``--labels_path``, ``--val_feat_path``,
``--val_knn_graph_path``, ``--val_labels_path``, ``--checkpoint``,
``--k-at-hop``, ``--active_connection``) as well as hyphenated names.

Behaviour common to every command:

- errors are one line on standard error, ``linkage-gcn <command>: error:
  <message>``, naming the command-line flag concerned, with exit status 2
  for bad usage or bad input (a missing or invalid file, an output that
  exists without ``--overwrite``) and 1 for other failures of the system
  (permission denied, disk full, read-only file system, out of memory);
  ``--debug`` shows the traceback instead;
- every output path is checked (not a directory, in an existing writable
  directory, not existing unless ``--overwrite``, not one of the inputs)
  before any data are loaded or computed;
- progress is logged on standard error through the ``linkage_gcn`` logger
  at INFO level (one line per training epoch, the kNN backend chosen, ...),
  so that a log file gets it too; ``--quiet`` keeps warnings and errors only
  and hides progress bars;
- ``--threads N`` (commands that compute) caps the CPU threads of torch and
  of faiss, so that a shared machine is not slowed down by
  oversubscription.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import numpy as np

from ._threads import cpu_threads
from ._version import __version__

__all__ = ["build_parser", "main"]

#: Logger of the package, configured by :func:`main` for the duration of a command.
LOGGER_NAME = "linkage_gcn"

#: Sub-commands that compute (they get ``--threads``).
_COMPUTING = ("knn", "train", "test", "predict", "add", "demo", "imbalance")

#: Exceptions that mean bad usage or bad input: exit status 2.
_INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
)


# ---------------------------------------------------------------------------- parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default in its help, except for flags, required options and ``None``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or "(default:" in text
            or action.required
            or action.default in (None, False, argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        if isinstance(action.default, (list, tuple)):  # nargs: shown as typed, "20 5"
            return text + f" (default: {' '.join(map(str, action.default))})"
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like the command's other errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and a pointer to ``--help``; exit with status 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    """Argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    """Argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _unit_float(text: str) -> float:
    """Argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def _threshold(text: str) -> Any:
    """Argparse type: ``auto`` or a number in [0, 1]."""
    if text == "auto":
        return text
    try:
        return _unit_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto' or a number in [0, 1], got {text!r}"
        ) from None


def _subset(text: str) -> tuple[int, int]:
    """Argparse type: ``"10:3"`` -> ``(10, 3)``, an (H m, S n) subset."""
    try:
        m, n = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a subset is M:N (e.g. 10:3 for (H10, S3)), got {text!r}"
        ) from None
    if m < 0 or n < 1:
        raise argparse.ArgumentTypeError(f"subset {text!r}: need M >= 0 and N >= 1")
    return m, n


def _opt(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Add ``--name-with-hyphens`` together with its ``--name_with_underscores`` alias."""
    hyphen, under = "--" + name.replace("_", "-"), "--" + name.replace("-", "_")
    flags = [hyphen] if hyphen == under else [hyphen, under]
    parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


def _common_options(p: argparse.ArgumentParser, command: str) -> None:
    """``--quiet`` and ``--debug`` for every command, ``--threads`` for those that compute."""
    if command in _COMPUTING:
        _opt(p, "threads", type=_positive_int, metavar="N",
             help="CPU threads of torch and faiss, e.g. 1 or 2 on a busy shared machine "
                  "(default: torch's own choice, usually one per core)")  # fmt: skip
    _opt(p, "quiet", action="store_true",
         help="no progress bars and no log lines (warnings and errors only)")  # fmt: skip
    _opt(p, "debug", action="store_true",
         help="on an error, show the full Python traceback instead of one line")  # fmt: skip


def _model_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options of the model and merge: with defaults (train) or as overrides (test)."""

    def opt(name: str, help_: str, default: Any, shown: str, **kwargs: Any) -> None:
        suffix = f"(default: {shown})" if defaults else "(default: the saved model's)"
        _opt(p, name, default=default if defaults else None, help=f"{help_} {suffix}", **kwargs)

    opt("k-at-hop", "1-hop and 2-hop neighbours of each Instance Pivot Subgraph", [20, 5],
        "20 5", type=_positive_int, nargs=2, metavar=("K1", "K2"))  # fmt: skip
    opt("active_connection", "u: edges to the u nearest neighbours inside an IPS", 5, "5",
        type=_positive_int, metavar="U")  # fmt: skip
    # the merge options stay None unless given, so that the estimator's defaults apply
    opt("merge", "how links become clusters: Chinese whispers on the links above the cut "
        "(five runs voting), connected components above it, Infomap (GPL extra), or the "
        "reference's pseudo-label propagation", None, "chinese-whispers",
        choices=["chinese-whispers", "threshold", "infomap", "propagation"])  # fmt: skip
    opt("threshold", "link threshold in [0, 1], or 'auto' (calibrated on the training data)",
        None, "auto", type=_threshold)  # fmt: skip
    opt("max_size", "largest cluster of the propagation merge", None, "900",
        type=_positive_int)  # fmt: skip
    opt("step", "threshold step of the propagation merge", None, "0.6", type=_unit_float)
    opt("precision", "arithmetic of link scoring: fp32 (exact), bf16, tf32 or int8 "
        "(approximate, faster on hardware that has them; int8: CPU)", None, "fp32",
        choices=["fp32", "bf16", "tf32", "int8"])  # fmt: skip
    _opt(p, "device", default="auto", help="auto, cpu, cuda or cuda:N")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``linkage-gcn``.

    Examples
    --------
    >>> args = build_parser().parse_args(["knn", "--feat_path", "f.npy", "--out", "k.npy"])
    >>> args.command, args.k, args.backend, args.threads
    ('knn', 80, 'auto', None)
    """
    from .knn import BACKENDS, METRICS

    parser = _Parser(
        prog="linkage-gcn",
        description="Linkage-based clustering of embeddings with graph convolution networks "
        "(L-GCN, CVPR'19) and the imbalance study of the RIWS paper.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=description)

    p = command("knn", "build a kNN graph (self-first knn.npy)",
                "Find the k nearest neighbours of every row of a features.npy and write "
                "them as the reference's self-first knn.npy: row i is [i, nn_1, ..., nn_k], "
                "nearest first.")  # fmt: skip
    _opt(p, "feat_path", required=True, help="features.npy (N x D)")
    _opt(p, "out", required=True, help="where to write knn.npy (N x (k+1), self first)")
    p.add_argument("-k", "--k", type=_positive_int, default=80, help="neighbours per point")
    _opt(p, "metric", choices=METRICS, default="cosine",
         help="cosine similarity, or Euclidean distance (l2)")  # fmt: skip
    _opt(p, "backend", choices=BACKENDS, default="auto",
         help="search backend; auto: exact torch, or faiss for large N when installed")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace an existing output file")
    _common_options(p, "knn")

    p = command("train", "train a LinkageClusterer on labelled features",
                "Train the link classifier on labelled embeddings (the reference's train.py "
                "flags are accepted), save it, and optionally cluster and score a validation "
                "set. Launched by torchrun (e.g. torchrun --nproc_per_node 2 -m "
                "linkage_gcn.cli train ...), every process trains on its share of the pivots "
                "(DDP, --batch-size per process) and rank 0 saves.")  # fmt: skip
    _opt(p, "feat_path", required=True, help="training features.npy")
    _opt(p, "labels_path", required=True, help="training labels.npy")
    _opt(p, "knn_graph_path", help="training knn.npy (self first); computed when omitted")
    _opt(p, "checkpoint", required=True, help="where to save the trained model")
    _opt(p, "val_feat_path", help="validation features, clustered after training")
    _opt(p, "val_labels_path", help="validation labels, to score the clustering")
    _opt(p, "val_knn_graph_path", help="validation knn.npy (self first)")
    _model_options(p, defaults=True)
    _opt(p, "sampler", default="riws", choices=["topk", "rs", "riws"],
         help="how the 1-hop nodes are chosen: the k1 nearest, re-sampling, or RIWS")  # fmt: skip
    _opt(p, "gamma", type=float, default=2.0, help="pool expansion of rs/riws")
    _opt(p, "loss", default="cb-graph", choices=["ce", "cb", "cb-graph", "focal"],
         help="training loss: cross-entropy, class-balanced (per batch or per graph), "
              "focal")  # fmt: skip
    _opt(p, "epochs", type=_positive_int, default=4, help="training epochs")
    _opt(p, "batch_size", type=_positive_int, default=16, help="subgraphs per batch")
    _opt(p, "hidden_channels", type=_positive_int, nargs="+", default=[512, 512, 256, 256],
         metavar="H", help="output size of each graph convolution layer")  # fmt: skip
    _opt(p, "lr", type=_positive_float, default=0.01, help="SGD learning rate")
    _opt(p, "seed", type=int, default=0, help="random seed")
    _opt(p, "overwrite", action="store_true", help="replace an existing checkpoint")
    _common_options(p, "train")

    for name, help_ in (
        ("test", "cluster features with a trained model"),
        ("predict", "alias of test"),
    ):
        p = command(name, help_,
                    "Cluster features with a model saved by 'linkage-gcn train' (the "
                    "reference's test.py flags are accepted): write the predicted labels "
                    "(--out) and, given the true labels, print and save the metrics. "
                    "Model options given here override the saved ones.")  # fmt: skip
        _opt(p, "checkpoint", required=True, help="a model saved by `linkage-gcn train`")
        _opt(p, "val_feat_path", help="features to cluster (alias: --feat_path)")
        _opt(p, "feat_path", help=argparse.SUPPRESS)
        _opt(p, "val_knn_graph_path", help="their knn.npy (self first; alias: --knn_graph_path)")
        _opt(p, "knn_graph_path", help=argparse.SUPPRESS)
        _opt(p, "val_labels_path", help="true labels, to print metrics (alias: --labels_path)")
        _opt(p, "labels_path", help=argparse.SUPPRESS)
        _opt(p, "out", help="where to write the predicted labels (.npy)")
        _opt(p, "metrics_out", help="where to write the metrics (.json; needs true labels)")
        _opt(p, "plot", metavar="DIR",
             help="directory where to draw the figures as PNG (cluster sizes, score "
                  "histogram, precision-recall, B-Cubed by identity size, training history; "
                  "needs true labels and matplotlib)")  # fmt: skip
        _opt(p, "overwrite", action="store_true", help="replace existing output files")
        _model_options(p, defaults=False)
        _common_options(p, name)

    p = command("evaluate", "score predicted clusters against true labels",
                "Compare predicted cluster labels with the true identities: pairwise and "
                "B-Cubed precision, recall and F, NMI.")  # fmt: skip
    _opt(p, "labels_path", required=True, help="true labels.npy")
    _opt(p, "pred_path", required=True, help="predicted labels.npy")
    _opt(p, "metrics_out", help="where to write the metrics (.json)")
    _opt(p, "overwrite", action="store_true", help="replace an existing metrics file")
    _common_options(p, "evaluate")

    p = command("add", "add faces to a saved clustering (ids kept)",
                "Add new embeddings to a growing clustered collection (a state file written "
                "by linkage_gcn.incremental.IncrementalClusterer): only the new faces' "
                "neighbourhoods are scored, existing clusters keep their ids, names given "
                "to persons are respected. The state is updated in place (atomically) unless "
                "--out-state is given; --init creates it.")  # fmt: skip
    _opt(p, "checkpoint", required=True, help="the model saved by `linkage-gcn train`")
    _opt(p, "state", required=True, help="the collection's state file (.npz)")
    _opt(p, "feat_path", required=True, help="the new faces' embeddings (.npy, N x D)")
    _opt(p, "init", action="store_true",
         help="create --state (which must not exist) instead of reading it")  # fmt: skip
    _opt(p, "out_state", help="write the updated state here instead of replacing --state")
    _opt(p, "ids_out",
         help="where to write the new faces' ids (.npy, N x 2 int64: face id, "
              "cluster id)")  # fmt: skip
    _opt(p, "threshold", type=_unit_float,
         help="re-cut the collection at this link threshold before adding (default: the "
              "state's; with --init the model's)")  # fmt: skip
    _opt(p, "backend", choices=["auto", "torch", "faiss", "faiss-hnsw"], default="auto",
         help="nearest-neighbour search of a new state (--init); a saved state keeps its "
              "own")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace existing --out-state / --ids-out")
    _common_options(p, "add")

    p = command("demo", "train on built-in data, cluster held-out identities",
                "Train on synthetic long-tailed identities, cluster identities never seen in "
                "training, and compare with the kNN-threshold baseline.")  # fmt: skip
    _opt(p, "n_identities", type=_positive_int, default=1200,
         help="identities of the synthetic data")  # fmt: skip
    _opt(p, "epochs", type=_positive_int, default=4, help="training epochs")
    _opt(p, "seed", type=int, default=0, help="random seed of the data and of the model")
    _opt(p, "device", default="auto", help="auto, cpu, cuda or cuda:N")
    _opt(p, "quick", action="store_true",
         help="a small model (k_at_hop 10 5, hidden 64 64): seconds, not minutes; "
              "numbers mean little")  # fmt: skip
    _opt(p, "plot", metavar="DIR",
         help="directory where to draw the model's figures on the held-out identities as PNG "
              "(as `linkage-gcn test --plot`; needs matplotlib)")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace existing figures")
    _common_options(p, "demo")

    p = command(
        "imbalance",
        "the RIWS paper's experiments: methods x imbalanced subsets, gamma sweep",
        "Train the 9 methods of the RIWS paper's Table 1 (plus CBg+RIWS, an "
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
    _opt(p, "subsets", nargs="+", metavar="M:N", type=_subset,
         help="(H m, S n) subsets, e.g. 10:3 40:3 (default: 10:3 40:3)")  # fmt: skip
    _opt(p, "sweep_subset", metavar="M:N", type=_subset,
         help="subset of the gamma sweep (default: the first)")  # fmt: skip
    _opt(p, "methods", nargs="+", metavar="NAME",
         help="methods to run (default: all: L-GCN CB FL RS RIWS CB+RS FL+RS CB+RIWS "
              "FL+RIWS CBg+RIWS)")  # fmt: skip
    _opt(p, "gammas", type=float, nargs="+", metavar="G",
         help="gammas of the sweep (default: 1 1.2 1.5 2 2.5 3)")  # fmt: skip
    _opt(p, "no_sweep", action="store_true", help="skip the gamma sweep")
    _opt(p, "epochs", type=_positive_int,
         help="training epochs of every run (default: 3; 4 with --full)")  # fmt: skip
    _opt(p, "seed", type=int, default=0, help="seed of the subsets and of every fit")
    _opt(p, "device", default="auto", help="auto, cpu, cuda or cuda:N")
    _opt(p, "out", help="where to write all records (.json; saved after every run)")
    _opt(p, "table_out", help="where to write the tables (.md)")
    _opt(p, "plot", help="where to draw the gamma sweep (.png, .pdf, .svg)")
    _opt(p, "overwrite", action="store_true", help="replace existing output files")
    _common_options(p, "imbalance")
    return parser


# ---------------------------------------------------------------------------- main


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line and return its exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 for bad usage or bad input; 1 for other failures
        (permission denied, disk full, out of memory); 130 when interrupted.
        Errors are printed as one line on standard error. Argument-parsing
        errors, ``--help`` and ``--version`` exit through :class:`SystemExit`
        as :mod:`argparse` does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "knn": _cmd_knn, "train": _cmd_train, "test": _cmd_test, "predict": _cmd_test,
        "evaluate": _cmd_evaluate, "demo": _cmd_demo, "imbalance": _cmd_imbalance,
        "add": _cmd_add,
    }  # fmt: skip
    flags = _flag_names(parser, args.command)
    try:
        with _logging(quiet=args.quiet), _threads(args):
            return handlers[args.command](args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        _print_error(args.command, "interrupted.")
        return 130
    except _INPUT_ERRORS as exc:
        if args.debug:
            raise
        _print_error(args.command, _message(exc, flags, args))
        return 2
    except (OSError, MemoryError) as exc:
        if args.debug:
            raise
        text = "out of memory" if isinstance(exc, MemoryError) else _message(exc, flags, args)
        _print_error(args.command, text)
        return 1


def _print_error(command: str, text: str) -> None:
    print(f"linkage-gcn {command}: error: {_one_line(text)}", file=sys.stderr)


def _one_line(text: str) -> str:
    """Collapse a message onto one line."""
    return " ".join(str(text).split())


def _flag_names(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """Map each option's Python name (``k_at_hop``) to its flag (``--k-at-hop``)."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        command
    ]
    names = {}
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            names[action.dest] = action.option_strings[0]
    return names


def _message(exc: BaseException, flags: dict[str, str], args: argparse.Namespace) -> str:
    """The text of a library error in the command's terms.

    Python keywords become the command's flags (``overwrite=True`` ->
    ``--overwrite``, ``threshold must ...`` -> ``--threshold must ...``), and
    a message about a file given on the command line starts with its flag.
    """
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror}"
        if exc.errno == errno.ENOSPC and "No space left" not in text:
            text += " (disk full)"
    else:
        text = str(exc) or type(exc).__name__
    for dest, flag in flags.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and value and not text.startswith("-"):
            if any(text.startswith(form + sep) for form in {value, str(Path(value))}
                   for sep in (":", " ")):  # fmt: skip
                text = f"{flag} {text}"
    text = re.sub(r"\boverwrite=True\b", "--overwrite", text)
    for param, dest in _PARAMETERS.items():
        flag = flags.get(dest)
        if flag is None:
            continue
        word = re.escape(param)
        if "_" in param:  # unambiguous (k_at_hop, max_size): every occurrence outside paths
            pattern = rf"(?<![\w./-]){word}(?![\w./-])"
        else:  # a plain word (threshold, step, k): only where it names the parameter
            pattern = rf"(?:^|(?<=[\s(,])){word}(?=\s*=|\s+(?:must|should)\b)"
        text = re.sub(pattern, flag, text)
    return text


#: Estimator and function parameters that have a command-line option: name -> option dest.
_PARAMETERS = {
    "k_at_hop": "k_at_hop",
    "active_connection": "active_connection",
    "merge": "merge",
    "threshold": "threshold",
    "max_size": "max_size",
    "step": "step",
    "precision": "precision",
    "device": "device",
    "sampler": "sampler",
    "gamma": "gamma",
    "loss": "loss",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "hidden_channels": "hidden_channels",
    "lr": "lr",
    "random_state": "seed",
    "k": "k",
    "metric": "metric",
    "backend": "backend",
    "n_identities": "n_identities",
}


@contextlib.contextmanager
def _logging(*, quiet: bool) -> Iterator[None]:
    """Send the package's log records to standard error for the duration of a command.

    INFO and above (WARNING and above with ``--quiet``), one line each with a
    time stamp, so that per-epoch lines reach a log file when the output is
    not a terminal. The previous logger state is restored afterwards.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    state = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False  # the command owns standard error: no duplicates via root
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(state[0])
        logger.propagate = state[1]


def _threads(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Apply ``--threads`` to torch (and faiss, when installed); restore the previous values."""
    n = getattr(args, "threads", None)
    if n is not None:
        logging.getLogger(LOGGER_NAME).info("using %d CPU thread(s)", n)
    return cpu_threads(n)


def _check_outputs(
    outputs: Sequence[tuple[str, Optional[str]]],
    *,
    overwrite: bool,
    inputs: Sequence[Optional[str]] = (),
) -> None:
    """Fail before any work when an output path cannot or must not be written.

    Each output (``(flag, path)``) must not be a directory, must not exist
    unless ``overwrite``, must be in an existing, writable directory, must
    differ from the other outputs and must not be one of the ``inputs``.
    """
    seen: dict[Path, str] = {}
    read = {Path(p).resolve() for p in inputs if p}
    for flag, path in outputs:
        if not path:
            continue
        p = Path(path)
        where = p.resolve()
        if where in seen:
            raise ValueError(f"{flag} and {seen[where]} name the same file {p}.")
        seen[where] = flag
        if where in read:
            raise ValueError(f"{flag} {p} is also an input; give another file name.")
        if p.is_dir():
            raise ValueError(f"{flag} {p} is a directory; give a file name.")
        if p.exists() and not overwrite:
            raise FileExistsError(f"{flag} {p} already exists; pass --overwrite to replace it.")
        parent = p.parent
        if not parent.is_dir():
            raise FileNotFoundError(f"{flag} {p}: directory {parent} does not exist.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"{flag} {p}: directory {parent} is not writable.")


# ---------------------------------------------------------------------------- commands


def _cmd_knn(args: argparse.Namespace) -> int:
    from .io import load_features, save_knn
    from .knn import knn

    _check_outputs([("--out", args.out)], overwrite=args.overwrite, inputs=[args.feat_path])
    X = load_features(args.feat_path)
    if args.k >= len(X):
        raise ValueError(
            f"-k {args.k} needs more points: {args.feat_path} has {len(X)} rows "
            "(a point is never its own neighbour)."
        )
    start = time.perf_counter()
    verbose = False if args.quiet else None
    index, _ = knn(X, args.k, metric=args.metric, backend=args.backend, verbose=verbose)
    path = save_knn(args.out, index, overwrite=args.overwrite)
    print(
        f"kNN of {len(X)} points (k={args.k}, {args.metric}) "
        f"in {time.perf_counter() - start:.1f}s -> {path}"
    )
    return 0


def _join_torchrun(device: Any) -> tuple[int, Any]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), join its process group.

    Returns this process's rank and its device (the rank's own GPU when
    ``device`` is ``"auto"``); ``(0, device)`` otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, device
    from torch import distributed as dist

    from .distributed import init_distributed

    rank_device = init_distributed()
    return dist.get_rank(), rank_device if device == "auto" else device


def _cmd_train(args: argparse.Namespace) -> int:
    from .estimator import LinkageClusterer
    from .io import load_reference

    if (args.val_labels_path or args.val_knn_graph_path) and not args.val_feat_path:
        raise ValueError("--val-labels-path and --val-knn-graph-path need --val-feat-path.")
    inputs = [args.feat_path, args.labels_path, args.knn_graph_path, args.val_feat_path,
              args.val_labels_path, args.val_knn_graph_path]  # fmt: skip
    _check_outputs([("--checkpoint", args.checkpoint)], overwrite=args.overwrite, inputs=inputs)
    X, index, y = load_reference(args.feat_path, args.knn_graph_path, args.labels_path)
    validation = None
    if args.val_feat_path:  # read now: a bad file fails before training, not after
        validation = load_reference(
            args.val_feat_path, args.val_knn_graph_path, args.val_labels_path
        )
    rank, device = _join_torchrun(args.device)
    est = LinkageClusterer(
        k_at_hop=tuple(args.k_at_hop), active_connection=args.active_connection,
        sampler=args.sampler, gamma=args.gamma, loss=args.loss, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, hidden_channels=tuple(args.hidden_channels),
        device=device, random_state=args.seed,
        verbose=False if args.quiet or rank else None, **_merge_overrides(args),
    )  # fmt: skip
    start = time.perf_counter()
    est.fit(X, y, knn_index=index)
    if rank:  # under torchrun every rank trains; rank 0 reports and saves
        return 0
    for h in est.history_:
        print(f"epoch {h['epoch'] + 1}: loss {h['loss']:.4f}  link precision {h['precision']:.4f}  "
              f"recall {h['recall']:.4f}  ({h['seconds']:.1f}s)")  # fmt: skip
    print(f"trained on {len(X)} samples in {time.perf_counter() - start:.1f}s; "
          f"link threshold {est.threshold_:.4f}")  # fmt: skip
    est.save(args.checkpoint, overwrite=args.overwrite)
    print(f"saved {args.checkpoint}")
    if validation is not None:
        _report(est, *validation, None, None, overwrite=False)
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    from .estimator import LinkageClusterer
    from .io import load_reference

    feat = args.val_feat_path or args.feat_path
    knn_path = args.val_knn_graph_path or args.knn_graph_path
    labels = args.val_labels_path or args.labels_path
    if feat is None:
        raise ValueError("give the features to cluster with --val-feat-path (or --feat-path).")
    if args.metrics_out and not labels:
        raise ValueError("--metrics-out needs the true labels: give --val-labels-path.")
    if args.plot and not labels:
        raise ValueError("--plot needs the true labels: give --val-labels-path.")
    if not (args.out or labels):
        raise ValueError(
            "nothing to do: give --out to write the predicted labels and/or "
            "--val-labels-path to score them (with --metrics-out to save the metrics)."
        )
    _check_outputs(
        [("--out", args.out), ("--metrics-out", args.metrics_out), *_plot_outputs(args.plot)],
        overwrite=args.overwrite,
        inputs=[args.checkpoint, feat, knn_path, labels],
    )
    est = LinkageClusterer.load(args.checkpoint)
    overrides = _merge_overrides(args)
    if args.k_at_hop is not None:
        overrides["k_at_hop"] = tuple(args.k_at_hop)
    if args.active_connection is not None:
        overrides["active_connection"] = args.active_connection
    est.set_params(device=args.device, verbose=False if args.quiet else None, **overrides)
    X, index, y = load_reference(feat, knn_path, labels)
    clustering = _report(est, X, index, y, args.out, args.metrics_out, overwrite=args.overwrite)
    if args.plot:
        from .plot import write_figures

        write_figures(args.plot, y, *clustering, history=est.history_, overwrite=args.overwrite)
        print(f"figures -> {args.plot}")
    return 0


def _plot_outputs(directory: Optional[str]) -> list[tuple[str, Optional[str]]]:
    """The ``--plot`` figures as outputs for :func:`_check_outputs` (matplotlib checked).

    A directory that does not exist yet is itself the output (its parent must
    be a writable directory); an existing one contributes its figure files.
    """
    if not directory:
        return []
    from .plot import report_paths, require_matplotlib

    try:
        require_matplotlib()
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    d = Path(directory)
    if not d.exists():
        return [("--plot", directory)]
    if not d.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"--plot {d} is not a directory; give a directory for the figures."
        )
    return [("--plot", str(p)) for p in report_paths(d)]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .io import load_labels
    from .metrics import evaluate, format_report

    _check_outputs(
        [("--metrics-out", args.metrics_out)],
        overwrite=args.overwrite,
        inputs=[args.labels_path, args.pred_path],
    )
    y = load_labels(args.labels_path)
    pred = load_labels(args.pred_path)
    if len(pred) != len(y):
        raise ValueError(
            f"--pred-path {args.pred_path} has {len(pred)} labels but --labels-path "
            f"{args.labels_path} has {len(y)}."
        )
    metrics = evaluate(y, pred)
    print(format_report(metrics))
    _print_reference_lines(metrics)
    if args.metrics_out:
        _write_json(args.metrics_out, metrics, overwrite=args.overwrite)
        print(f"metrics -> {args.metrics_out}")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    from .estimator import LinkageClusterer
    from .incremental import IncrementalClusterer
    from .io import load_features

    state = Path(args.state)
    inputs = [args.checkpoint, args.feat_path] + ([] if args.init else [args.state])
    if args.init and state.exists():
        raise FileExistsError(
            f"--state {state} already exists; drop --init to add to it (or remove the file)."
        )
    if not args.init and not state.is_file():
        raise FileNotFoundError(
            f"--state {state}: no such state file; pass --init to create a new collection."
        )
    _check_outputs(
        [("--out-state", args.out_state), ("--ids-out", args.ids_out)],
        overwrite=args.overwrite,
        inputs=inputs,
    )
    if args.out_state is None:  # the state itself is replaced: its directory must be writable
        if state.is_dir():
            raise ValueError(f"--state {state} is a directory; give a file name.")
        if not state.parent.is_dir():
            raise FileNotFoundError(f"--state {state}: directory {state.parent} does not exist.")
        if not os.access(state.parent, os.W_OK | os.X_OK):
            raise PermissionError(
                errno.EACCES, f"--state {state}: directory {state.parent} is not writable."
            )
    est = LinkageClusterer.load(args.checkpoint)
    est.set_params(verbose=False)
    X = load_features(args.feat_path)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(
            f"--feat-path {args.feat_path} has {X.shape[1]} features per row but the model "
            f"--checkpoint {args.checkpoint} expects {est.n_features_in_}."
        )
    if args.init:
        library = IncrementalClusterer(est, threshold=args.threshold, backend=args.backend)
    else:
        try:
            library = IncrementalClusterer.load(state, est)
        except ValueError as exc:
            raise ValueError(f"--state {exc}") from None
        if args.threshold is not None:
            library.recut(args.threshold)
    n_before = len(library)
    report = library.add(X)
    target = args.out_state or args.state
    library.save(target, overwrite=args.overwrite or args.out_state is None)
    if args.ids_out:
        from ._files import atomic_write

        table = np.stack([report.face_ids, report.labels], 1).astype(np.int64)
        buffer = io.BytesIO()
        np.save(buffer, table)
        atomic_write(args.ids_out, lambda f: f.write(buffer.getvalue()), overwrite=args.overwrite)
    joined = np.isin(report.labels, library.labels_[:n_before]).sum() if n_before else 0
    first, last = (int(report.face_ids[0]), int(report.face_ids[-1])) if len(X) else (0, -1)
    print(f"added {len(X)} faces (face ids {first}..{last}) in {report.seconds:.1f}s: "
          f"{joined} joined existing clusters, {len(report.merged)} clusters merged into "
          f"others; {len(library)} faces in {len(np.unique(library.labels_))} clusters "
          f"(threshold {library.threshold_:.4g}) -> {target}")  # fmt: skip
    if args.ids_out:
        print(f"ids -> {args.ids_out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import QUICK_PARAMS, run_demo

    params = dict(QUICK_PARAMS) if args.quick else {}
    _check_outputs(_plot_outputs(args.plot), overwrite=args.overwrite)
    run_demo(n_identities=args.n_identities, epochs=args.epochs, seed=args.seed,
             device=args.device, verbose=False if args.quiet else None, plot=args.plot,
             overwrite=args.overwrite, **params)  # fmt: skip
    return 0


def _cmd_imbalance(args: argparse.Namespace) -> int:
    from . import experiments as ex

    grid = ex.default_grid(
        "lfw" if args.data == "auto" and args.data_path else args.data,
        full=args.full, quick=args.quick,
    )  # fmt: skip
    subsets = list(args.subsets) if args.subsets else grid["subsets"]
    sweep_subset = args.sweep_subset if args.sweep_subset else subsets[0]
    methods = args.methods or grid["methods"]
    try:
        ex.resolve_methods(methods)  # unknown names fail now, not after the first runs
    except ValueError as exc:
        raise ValueError(f"--methods: {exc}") from None
    gammas = args.gammas or grid["gammas"]
    base = {**grid["base_params"], "device": args.device}
    if args.epochs is not None:
        base["epochs"] = args.epochs
    if args.plot and args.no_sweep:
        raise ValueError("--plot draws the gamma sweep; drop --no-sweep.")
    _check_outputs(
        [("--out", args.out), ("--table-out", args.table_out), ("--plot", args.plot)],
        overwrite=args.overwrite,
        inputs=[args.data_path],
    )
    if args.plot:
        try:
            ex.require_matplotlib()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
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
    """The merge options given on the command line, as estimator parameters."""
    out: dict[str, Any] = {}
    for name in ("merge", "max_size", "step", "precision"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    if getattr(args, "threshold", None) is not None:
        out["threshold"] = args.threshold  # "auto" or a float in [0, 1] (see _threshold)
    return out


def _report(
    est: Any,
    X: np.ndarray,
    index: Optional[np.ndarray],
    y: Optional[np.ndarray],
    out: Optional[str],
    metrics_out: Optional[str],
    *,
    overwrite: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cluster ``X``, write the labels to ``out`` and, given ``y``, print and save metrics.

    Returns the predicted labels, the scored edges and their scores.
    """
    from .io import save_labels
    from .metrics import evaluate, format_report

    start = time.perf_counter()
    edge_index, scores = est.predict_edges(X, knn_index=index)
    pred = est.cluster_edges(edge_index, scores, len(X))
    seconds = time.perf_counter() - start
    print(f"clustered {len(X)} samples into {len(np.unique(pred))} clusters in {seconds:.1f}s")
    if out:
        save_labels(out, pred, overwrite=overwrite)
        print(f"labels -> {out}")
    if y is None:
        return pred, edge_index, scores
    metrics = evaluate(y, pred, edge_index=edge_index, scores=scores)
    metrics["seconds"] = seconds
    print(format_report(metrics))
    _print_reference_lines(metrics)
    if metrics_out:
        _write_json(metrics_out, metrics, overwrite=overwrite)
        print(f"metrics -> {metrics_out}")
    return pred, edge_index, scores


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
