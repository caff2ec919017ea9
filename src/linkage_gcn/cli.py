"""The ``linkage-gcn`` command: kNN graphs, train, test/predict, evaluate, add, demo, imbalance.

Accepts the flags of the reference L-GCN scripts (``--feat_path``,
``--knn_graph_path``, ``--labels_path``, ``--val_feat_path``,
``--val_knn_graph_path``, ``--val_labels_path``, ``--checkpoint``,
``--k-at-hop``, ``--active_connection``) as well as hyphenated names.

The command line re-states nothing the library knows: every option that sets
a parameter of the library is declared by that parameter's rule in
:data:`linkage_gcn._params.PARAMS` (its choices, read from the registries,
its parsing and its check, which names the flag), its default is the one of
the library function it goes to (``train``'s model options: the
:class:`~linkage_gcn.LinkageClusterer` signature) and its help is the first
sentence of that parameter's documentation. A sub-command's options are only
built when the sub-command runs, so that ``linkage-gcn --help`` and
``--version`` import neither torch nor PyG.

Behaviour common to every command:

- errors are one line on standard error, ``linkage-gcn <command>: error:
  <message>``, naming the command-line flag (and file) concerned, with exit
  status 2 for bad usage or bad input (a missing or invalid file, an output
  that exists without ``--overwrite``, a training that diverged) and 1 for
  other failures of the system (permission denied, disk full, read-only file
  system, out of memory); ``--debug`` shows the traceback instead;
- every output path is checked (not a directory, in an existing writable
  directory, not existing unless ``--overwrite``, not one of the inputs, not
  another output) and every optional package an option needs is checked,
  before any data are loaded or computed; every input file is read and
  checked against the others (rows, feature widths, kNN widths) before any
  training;
- progress is logged on standard error through the ``linkage_gcn`` logger
  at INFO level (one line per training epoch, periodic progress lines with
  the rate and the time left when no progress bar shows, the kNN backend
  chosen, ...), one handler, so that a log file gets each line once;
  ``--quiet`` keeps warnings and errors only and hides progress bars;
- ``--threads N`` (commands that compute) sets the CPU threads of torch and
  of faiss; by default (``auto``) one per CPU that this process may use and
  other processes leave free, so that a shared machine is not slowed down
  by oversubscription.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import inspect
import io
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, NamedTuple, NoReturn, Optional

import numpy as np

from ._version import __version__

__all__ = ["build_parser", "main"]

#: Logger of the package, configured by :func:`main` for the duration of a command.
LOGGER_NAME = "linkage_gcn"

#: Exceptions that mean bad usage or bad input: exit status 2.
_INPUT_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    FloatingPointError,
)

#: ``train --seed``: the command line's one default of its own (the estimator's
#: ``random_state=None`` draws a new seed): runs repeat, and the processes of a
#: ``torchrun`` launch agree.
_SEED = 0

#: Estimator parameters that ``train`` sets through other options.
_NOT_MODEL_OPTIONS = ("device", "threads", "random_state", "verbose")

#: Estimator parameters that ``test``/``predict`` may override on a saved model (scoring
#: and merging; the others shaped the trained network).
_PREDICT_PARAMS = (
    "k_at_hop", "active_connection", "n_neighbors", "knn_backend", "pool", "merge",
    "threshold", "merge_runs", "max_size", "step", "inference_batch_size", "precision",
)  # fmt: skip

#: How multi-valued parameters are typed on the command line.
_SHAPES: dict[str, dict[str, Any]] = {
    "k_at_hop": {"nargs": 2, "metavar": ("K1", "K2")},
    "hidden_channels": {"nargs": "+", "metavar": "H"},
}


# ---------------------------------------------------------------------------- parser


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default in its help, except for flags, required options and ``None``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "%(default)" in text
            or "default:" in text
            or action.required
            or action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        if isinstance(action.default, (list, tuple)):  # nargs: shown as typed, "20 5"
            return text + f" (default: {_shown(action.default)})"
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like the command's other errors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and a pointer to ``--help``; exit with status 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see '{self.prog} --help')\n")


class _Commands(argparse._SubParsersAction):
    """Sub-commands whose options are built only when the sub-command is parsed."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        _build_options(self._name_parser_map.get(values[0]))
        super().__call__(parser, namespace, values, option_string)


def _build_options(p: Optional[argparse.ArgumentParser]) -> None:
    """Add a sub-command's options now if they were left for later."""
    pending = getattr(p, "pending_options", None)
    if pending is not None:
        p.pending_options = None  # type: ignore[union-attr]
        pending()


class _Declared(argparse.Action):
    """An option parsed and checked by a rule of :data:`linkage_gcn._params.PARAMS`."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, rule: Any, **kwargs: Any):
        self.rule = rule
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        text = " ".join(values) if isinstance(values, list) else values
        flag = self.option_strings[0]
        setattr(namespace, self.dest, _parse(self.rule, text, flag, getattr(self, "param", None)))


def _parse(rule: Any, text: str, flag: str, param: Optional[str] = None) -> Any:
    """Command-line text -> value, by ``rule``'s parsing and check (errors name ``flag``)."""
    from ._params import OneOf
    from ._validation import check_in_options

    value = rule.parse(text)
    try:
        if isinstance(value, str) and rule.choices is not None and not isinstance(rule, OneOf):
            check_in_options(value, rule.choices, flag)  # a name: one of the registry's
        rule(value, flag)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentError(None, _translate(str(exc), {param or flag: flag})) from None
    return value


def _opt(parser: Any, name: str, *, param: Optional[str] = None, **kwargs: Any) -> argparse.Action:
    """Add ``--name-with-hyphens`` and its ``--name_with_underscores`` alias.

    ``param`` is the library parameter the option sets: errors that name it
    are translated to the flag (:func:`_names`).
    """
    hyphen, under = "--" + name.replace("_", "-"), "--" + name.replace("-", "_")
    flags = [hyphen] if hyphen == under else [hyphen, under]
    if "help" in kwargs and kwargs["help"] is not argparse.SUPPRESS:
        kwargs["help"] = kwargs["help"].replace("%", "%%").replace("%%(default)s", "%(default)s")
    action = parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)
    action.param = param  # type: ignore[attr-defined]
    return action


def _declared(
    p: Any,
    param: str,
    help_: str,
    *,
    default: Any,
    name: Optional[str] = None,
    describe: bool = True,
    **kwargs: Any,
) -> argparse.Action:
    """An option for the library parameter ``param``, declared by ``PARAMS[param]``.

    Its choices, parsing and check are the rule's; its value stays ``None``
    unless given (so that the library's own default applies), and
    ``default`` is what its help shows.
    """
    from ._params import PARAMS, Flag, OneOf

    rule = PARAMS[param]
    shown = _shown(default)
    if isinstance(rule, Flag):
        return _opt(p, name or param, param=param, action=argparse.BooleanOptionalAction,
                    default=None, help=f"{help_} (default: {shown})")  # fmt: skip
    options = {**_SHAPES.get(param, {}), **kwargs}
    choices = None if isinstance(rule, OneOf) else rule.choices
    if choices is not None:
        options.setdefault("metavar", "{" + ",".join(choices) + "}")
    if choices is not None or not describe:
        text = f"{help_} (default: {shown})"
    else:
        text = f"{help_} ({rule.describe()}; default: {shown})"
    return _opt(p, name or param, param=param, action=_Declared, rule=rule, default=None,
                help=text, **options)  # fmt: skip


def _shown(value: Any) -> str:
    """A default as typed on the command line: ``(20, 5)`` -> ``20 5``."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


def _defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The defaults of a function's (or class's) parameters."""
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr):`~?([^`]+)`")


@functools.cache
def _documented(obj: Any) -> dict[str, str]:
    """The first sentence of each parameter's description in ``obj``'s numpydoc docstring.

    An entry documenting several parameters (``epochs, batch_size : int``)
    gives each its part of a sentence ``A, and B``, else the whole sentence.
    """
    doc = inspect.getdoc(obj) or ""
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    found: dict[str, str] = {}
    if section is None:
        return found
    entry = re.compile(r"^(\w[\w, ]*?) :[^\n]*\n((?:[ \t]+\S[^\n]*\n?)+)", re.M)
    for m in entry.finditer(section.group(1)):
        text = " ".join(m.group(2).split())
        text = _ROLE.sub(lambda r: r.group(1).rsplit(".", 1)[-1], text).replace("``", "")
        sentence = re.split(r"(?<=\.)\s+(?=[A-Z\"'(])", text, maxsplit=1)[0].rstrip(".")
        sentence = sentence[:1].lower() + sentence[1:] if sentence[1:2].islower() else sentence
        names = [n.strip() for n in m.group(1).split(",")]
        parts = sentence.split(", and ")
        if len(parts) != len(names):
            parts = [sentence] * len(names)
        found.update(zip(names, parts))
    return found


def _estimator() -> Any:
    from .estimator import LinkageClusterer

    return LinkageClusterer


def _model_options(p: argparse.ArgumentParser, params: Sequence[str], *, saved: bool) -> None:
    """The estimator parameters ``params`` as options: defaults shown, or the saved model's."""
    from ._params import PARAMS

    est = _estimator()
    defaults, docs = _defaults(est), _documented(est)
    group = p.add_argument_group(
        "model options (a saved model's settings, overridden)" if saved
        else "model options (LinkageClusterer parameters)"
    )  # fmt: skip
    for param in params:
        help_ = docs.get(param) or PARAMS[param].describe()
        if saved and param == "threshold":
            help_ = ("link cut in [0, 1], or 'auto': the cut saved with the model (calibrated "
                     "on its training data when it was trained with --threshold auto)")  # fmt: skip
        default = "the saved model's" if saved else defaults[param]
        _declared(group, param, help_, default=default)


def _device_option(p: Any, default: Any) -> None:
    _declared(p, "device", "where to compute: auto, cpu, cuda or cuda:N", default=default,
              describe=False)


def _common_options(p: argparse.ArgumentParser, *, computes: bool) -> None:
    """``--quiet`` and ``--debug`` for every command, ``--threads`` for those that compute."""
    if computes:
        _declared(p, "threads", "CPU threads of torch and faiss; auto: the CPUs this process "
                  "may use less those other processes keep busy", default="auto",
                  metavar="N")  # fmt: skip
    _opt(p, "quiet", action="store_true",
         help="no progress bars and no log lines (warnings and errors only)")  # fmt: skip
    _opt(p, "debug", action="store_true",
         help="on an error, show the full Python traceback instead of one line")  # fmt: skip


def _knn_options(p: argparse.ArgumentParser) -> None:
    from .knn import knn

    defaults = _defaults(knn)
    _opt(p, "feat_path", required=True, help="features.npy (N x D)")
    _opt(p, "out", required=True, help="where to write knn.npy (N x (k+1), self first)")
    k = p.add_argument("-k", "--k", type=int, default=80,
                       help="neighbours per point (80: the width of the LTC benchmark tables)")
    k.param = "k"  # type: ignore[attr-defined]
    _declared(p, "metric", "cosine similarity, or Euclidean distance (l2)",
              default=defaults["metric"])  # fmt: skip
    _declared(p, "knn_backend", "search backend; auto: exact torch, or faiss for large N when "
              "installed", default=defaults["backend"], name="backend")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace an existing output file")


def _train_options(p: argparse.ArgumentParser) -> None:
    defaults = _defaults(_estimator())
    _opt(p, "feat_path", required=True, help="training features.npy")
    _opt(p, "labels_path", required=True, help="training labels.npy")
    _opt(p, "knn_graph_path", help="training knn.npy (self first); computed when omitted")
    _opt(p, "checkpoint", required=True, help="where to save the trained model")
    _opt(p, "val_feat_path", help="validation features, clustered after training")
    _opt(p, "val_labels_path", help="validation labels, to score the clustering")
    _opt(p, "val_knn_graph_path", help="validation knn.npy (self first)")
    params = [n for n in defaults if n not in _NOT_MODEL_OPTIONS]
    _model_options(p, params, saved=False)
    _device_option(p, defaults["device"])
    _opt(p, "seed", param="random_state", action=_Declared, rule=_param_rule("seed"),
         default=_SEED, help="random seed of the weights, the pivot order and the sampling "
         "(the same seed gives the same model)")  # fmt: skip
    _opt(p, "resume", nargs="?", const="", metavar="PATH", param="resume",
         help="keep the training state after each finished epoch in PATH (default "
              "CHECKPOINT.resume) and, when PATH holds an interrupted training of the same "
              "data and settings, continue after its last finished epoch; removed when the "
              "training ends")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace an existing checkpoint")


def _param_rule(name: str) -> Any:
    from ._params import PARAMS

    return PARAMS[name]


def _test_options(p: argparse.ArgumentParser) -> None:
    _opt(p, "checkpoint", required=True,
         help="a model saved by `linkage-gcn train`, or a shipped one (dlib-128, face-any)")
    _opt(p, "val_feat_path", help="features to cluster (alias: --feat-path)")
    _opt(p, "feat_path", help=argparse.SUPPRESS)
    _opt(p, "val_knn_graph_path", help="their knn.npy (self first; alias: --knn-graph-path)")
    _opt(p, "knn_graph_path", help=argparse.SUPPRESS)
    _opt(p, "val_labels_path", help="true labels, to print metrics (alias: --labels-path)")
    _opt(p, "labels_path", help=argparse.SUPPRESS)
    _opt(p, "out", help="where to write the predicted labels (.npy)")
    _opt(p, "metrics_out", help="where to write the metrics (.json; needs true labels)")
    _opt(p, "plot", metavar="DIR",
         help="directory where to draw the figures as PNG (cluster sizes, score "
              "histogram, precision-recall, B-Cubed by identity size, training history; "
              "needs true labels and matplotlib)")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace existing output files")
    _model_options(p, _PREDICT_PARAMS, saved=True)
    _device_option(p, _defaults(_estimator())["device"])


def _evaluate_options(p: argparse.ArgumentParser) -> None:
    _opt(p, "labels_path", required=True, help="true labels.npy")
    _opt(p, "pred_path", required=True, help="predicted labels.npy")
    _opt(p, "metrics_out", help="where to write the metrics (.json)")
    _opt(p, "overwrite", action="store_true", help="replace an existing metrics file")


def _add_options(p: argparse.ArgumentParser) -> None:
    from .incremental import IncrementalClusterer

    docs = _documented(IncrementalClusterer)
    _opt(p, "checkpoint", required=True, help="the model saved by `linkage-gcn train`")
    _opt(p, "state", required=True, help="the collection's state file (.npz)")
    _opt(p, "feat_path", required=True, help="the new faces' embeddings (.npy, N x D)")
    _opt(p, "init", action="store_true",
         help="create --state (which must not exist) instead of reading it")  # fmt: skip
    _opt(p, "out_state", help="write the updated state here instead of replacing --state")
    _opt(p, "ids_out",
         help="where to write the new faces' ids (.npy, N x 2 int64: face id, "
              "cluster id)")  # fmt: skip
    _declared(p, "threshold", "re-cut the collection at this link threshold before adding; "
              "auto: the model's cut", default="the state's; with --init the model's cut")
    _declared(p, "incremental_backend", f"{docs.get('backend', 'nearest-neighbour search')}, "
              "for a new state (--init; a saved state keeps its own)",
              default=_defaults(IncrementalClusterer)["backend"], name="backend")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace existing --out-state / --ids-out")


def _photos_options(p: argparse.ArgumentParser) -> None:
    from .photos.backends import BACKENDS
    from .photos.pipeline import SAME_PHOTO, PhotoPipeline

    defaults, docs = _defaults(PhotoPipeline), _documented(PhotoPipeline)
    p.add_argument("photos", metavar="DIR", help="the folder of photos (searched recursively)")
    _opt(p, "out", required=True, metavar="OUT",
         help="the output folder: gallery (index.html), faces.csv, names.tsv and the state; "
              "new, empty, or an earlier run's")  # fmt: skip
    _opt(p, "backend", choices=sorted(BACKENDS), default=defaults["backend"],
         help="face backend: dlib (face_recognition's models; extra photos-dlib) or sface "
              "(OpenCV Zoo's YuNet + SFace; extra photos-sface)")  # fmt: skip
    _opt(p, "model", help="pretrained linkage model (default: the backend's: dlib-128 for dlib, "
         "face-any for sface)")  # fmt: skip
    _opt(p, "names", help="the names file (default: OUT/names.tsv)")
    _opt(p, "same_photo", choices=SAME_PHOTO, default=defaults["same_photo"],
         help=docs.get("same_photo", "two faces of one photo in one person"))  # fmt: skip
    _opt(p, "max_side", type=int, default=defaults["max_side"], metavar="PIXELS",
         help=docs.get("max_side", "longer side photos are downscaled to"))  # fmt: skip


def _demo_options(p: argparse.ArgumentParser) -> None:
    from .demo import QUICK_PARAMS, run_demo

    defaults, docs = _defaults(run_demo), _documented(run_demo)
    _opt(p, "n_identities", param="n_identities", type=int, default=None,
         help=f"{docs.get('n_identities', 'identities of the synthetic data')} "
              f"(default: {defaults['n_identities']})")  # fmt: skip
    _declared(p, "epochs", docs.get("epochs", "training epochs"), default=defaults["epochs"])
    _declared(p, "seed", docs.get("seed", "random seed"), default=defaults["seed"])
    _device_option(p, defaults["device"])
    quick = ", ".join(f"{k} {_shown(v)}" for k, v in QUICK_PARAMS.items())
    _opt(p, "quick", action="store_true",
         help=f"a small model ({quick}): seconds, not minutes; numbers mean little")
    _opt(p, "plot", metavar="DIR",
         help="directory where to draw the model's figures on the held-out identities as PNG "
              "(as `linkage-gcn test --plot`; needs matplotlib)")  # fmt: skip
    _opt(p, "overwrite", action="store_true", help="replace existing figures")


def _imbalance_options(p: argparse.ArgumentParser) -> None:
    from . import experiments as ex
    from .experiments.defaults import DATA_SETS
    from .experiments.methods import all_methods

    grid = _defaults(ex.default_grid)
    subsets = " ".join(f"{m}:{n}" for m, n in ex.DEFAULT_SUBSETS)
    _opt(p, "data", choices=DATA_SETS, default=grid["data"],
         help="LFW dlib embeddings (auto: when found) or synthetic identities")  # fmt: skip
    _opt(p, "data_path", help="the lfw-dlib folder (holding train/ and test/)")
    _opt(p, "full", action="store_true",
         help="the larger grid: 8 subsets, reference-width model, 4 epochs (hours)")  # fmt: skip
    _opt(p, "quick", action="store_true",
         help="smoke test: tiny model (small synthetic data); numbers mean nothing")  # fmt: skip
    _opt(p, "subsets", nargs="+", metavar="M:N", type=_subset,
         help=f"(H m, S n) subsets, e.g. 10:3 40:3 (default: {subsets})")  # fmt: skip
    _opt(p, "sweep_subset", metavar="M:N", type=_subset,
         help="subset of the gamma sweep (default: the first)")  # fmt: skip
    _opt(p, "methods", nargs="+", metavar="NAME",
         help=f"methods to run (default: all: {' '.join(all_methods())})")  # fmt: skip
    _opt(p, "gammas", type=float, nargs="+", metavar="G",
         help=f"gammas of the sweep (default: {_shown(ex.DEFAULT_GAMMAS)})")  # fmt: skip
    _opt(p, "no_sweep", action="store_true", help="skip the gamma sweep")
    _declared(p, "epochs", "training epochs of every run",
              default=f"{ex.DEFAULT_BASE_PARAMS['epochs']}; "
                      f"{ex.FULL_BASE_PARAMS['epochs']} with --full")  # fmt: skip
    _declared(p, "seed", "seed of the subsets and of every fit",
              default=_defaults(ex.run_imbalance_grid)["random_state"])  # fmt: skip
    _device_option(p, _defaults(_estimator())["device"])
    _opt(p, "out", help="where to write all records (.json; saved after every run)")
    _opt(p, "table_out", help="where to write the tables (.md)")
    _opt(p, "plot", help="where to draw the gamma sweep (.png, .pdf, .svg)")
    _opt(p, "overwrite", action="store_true", help="replace existing output files")


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


def build_parser(*, lazy: bool = False) -> argparse.ArgumentParser:
    """The argument parser of ``linkage-gcn``.

    Parameters
    ----------
    lazy : bool
        Build each sub-command's options only when that sub-command is
        parsed (what :func:`main` does, so that ``--help`` and ``--version``
        import no more than they need). By default every option is built
        now.

    Examples
    --------
    >>> args = build_parser().parse_args(["knn", "--feat_path", "f.npy", "--out", "k.npy"])
    >>> args.command, args.k, args.backend, args.threads
    ('knn', 80, None, None)
    """
    parser = _Parser(
        prog="linkage-gcn",
        description="Linkage-based clustering of embeddings with graph convolution networks "
        "(L-GCN, CVPR'19) and the imbalance study of the RIWS paper.",
    )
    parser.register("action", "parsers", _Commands)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in _COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.description)
        p.pending_options = functools.partial(_add_command_options, p, command)
        if not lazy:
            _build_options(p)
    return parser


def _add_command_options(p: argparse.ArgumentParser, command: _Command) -> None:
    command.options(p)
    _common_options(p, computes=command.computes)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices  # type: ignore[return-value]


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
    parser = build_parser(lazy=True)
    args = parser.parse_args(argv)
    sub = _subparsers(parser)[args.command]
    names = _names(sub)
    try:
        with _logging(quiet=args.quiet), _threads(args):
            _check_extras(_given_options(sub, args))
            return _COMMANDS[args.command].run(args)
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        _print_error(args.command, f"interrupted; {exc}" if str(exc) else "interrupted.")
        return 130
    except _INPUT_ERRORS as exc:
        if args.debug:
            raise
        _print_error(args.command, _message(exc, names))
        return 2
    except (OSError, MemoryError) as exc:
        if args.debug:
            raise
        text = "out of memory" if isinstance(exc, MemoryError) else _message(exc, names)
        _print_error(args.command, text)
        return 1


def _print_error(command: str, text: str) -> None:
    print(f"linkage-gcn {command}: error: {_one_line(text)}", file=sys.stderr)


def _one_line(text: str) -> str:
    """Collapse a message onto one line."""
    return " ".join(str(text).split())


def _names(sub: argparse.ArgumentParser) -> dict[str, str]:
    """Each library parameter a sub-command's options set, mapped to its flag (``lr`` -> ``--lr``).

    Read from the parser itself: every option declared for a parameter
    (:func:`_opt`'s ``param``) names it.
    """
    names: dict[str, str] = {}
    for action in sub._actions:
        param = getattr(action, "param", None)
        if param is not None and action.option_strings:
            names[param] = action.option_strings[0]
    return names


@contextlib.contextmanager
def _file(flag: str, path: Any, *, self_first: bool = False) -> Iterator[None]:
    """Errors raised inside the block are about the file ``path`` given to ``flag``.

    ``self_first``: the file is a self-first kNN table (its first column is
    each row's own id).
    """
    try:
        yield
    except Exception as exc:
        _tag(exc, "cli_file", (flag, str(path), self_first))
        raise


@contextlib.contextmanager
def _roles(**names: Optional[tuple[str, Any]]) -> Iterator[None]:
    """Inside the block, library arguments stand for flags and files (``X=("--feat-path", f)``).

    A library error that names ``X`` is then shown as naming ``--feat-path f``.
    """
    try:
        yield
    except Exception as exc:
        roles = {name: f"{v[0]} {v[1]}" for name, v in names.items() if v and v[1]}
        _tag(exc, "cli_roles", {**roles, **getattr(exc, "cli_roles", {})})
        raise


def _tag(exc: BaseException, attr: str, value: Any) -> None:
    """Attach ``value`` to ``exc`` unless an inner block already did (the innermost wins)."""
    if attr == "cli_roles" or not hasattr(exc, attr):
        with contextlib.suppress(AttributeError):
            setattr(exc, attr, value)


def _message(exc: BaseException, names: dict[str, str]) -> str:
    """The text of a library error in the command's terms.

    The file it is about starts it with its flag (``--feat-path f.npy: ...``),
    library arguments become the command's flags and files (``lr=`` ->
    ``--lr=``, ``knn_index`` -> ``--knn-graph-path k.npy``, ``overwrite=True``
    -> ``--overwrite``).
    """
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        text = f"{where}{exc.strerror}"
        if exc.errno == errno.ENOSPC and "No space left" not in text:
            text += " (disk full)"
    else:
        text = str(exc) or type(exc).__name__
    text = _translate(text, {**names, **getattr(exc, "cli_roles", {})})
    where = getattr(exc, "cli_file", None)
    if where is not None and not text.startswith("-"):
        flag, path, self_first = where
        if any(text.startswith(form) for form in {path, str(Path(path))}):
            text = f"{flag} {text}"
        else:
            text = f"{flag} {path}: {text}"
        if self_first:  # the file has the self column that the library's hint would drop
            text = re.sub(r"(;[^;()]*)?\s*\([^()]*from_self_first[^()]*\)",
                          " (a self-first kNN file lists each row's own id once, in its first "
                          "column)", text)  # fmt: skip
    return text


def _translate(text: str, names: dict[str, str]) -> str:
    """Replace the library's argument names in ``text`` with the command's flags (or files)."""
    text = re.sub(r"\boverwrite=True\b", "--overwrite", text)
    for word in sorted(names, key=len, reverse=True):
        w = re.escape(word)
        if "_" in word:  # unambiguous (k_at_hop, knn_index): every occurrence outside paths
            pattern = rf"(?<![\w./-]){w}(?![\w/-]|\.\w)"
        else:  # a plain word (threshold, lr, X): only where it names the argument
            pattern = (rf"(?:(?<![\w./-]){w}(?=\s*=(?!=)|\s+(?:must|should|has|holds|needs|row)\b"
                       rf"|\s+'[^'\s]*'\s+needs\b)|(?<=\bunknown ){w}\b)")  # fmt: skip
        text = re.sub(pattern, lambda _m, flag=names[word]: flag, text)
    return text


@contextlib.contextmanager
def _logging(*, quiet: bool) -> Iterator[None]:
    """Send the package's log records and warnings to standard error during a command.

    One handler on the ``linkage_gcn`` logger (which stops propagating, so
    no line shows twice), INFO and above (WARNING and above with
    ``--quiet``), one line each with a time stamp, so that per-epoch and
    periodic progress lines reach a log file when the output is not a
    terminal. Python warnings become one WARNING line each. The previous
    state is restored afterwards.
    """
    logger = logging.getLogger(LOGGER_NAME)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    state = (logger.level, logger.propagate, warnings.showwarning)

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        logger.warning("%s: %s", category.__name__, _one_line(str(message)))

    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False  # the command owns standard error: no duplicates via root
    warnings.showwarning = show
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(state[0])
        logger.propagate = state[1]
        warnings.showwarning = state[2]


def _threads(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Apply ``--threads`` (default ``auto``) to torch and faiss; restore the previous values."""
    if not hasattr(args, "threads"):  # a command that does not compute
        return contextlib.nullcontext()
    from ._threads import cpu_threads

    n = args.threads
    if n is None or n == "auto":
        return cpu_threads("auto")  # the estimators' own "auto" keeps what this chose
    logging.getLogger(LOGGER_NAME).info("using %d CPU thread(s)", n)
    return cpu_threads(n)


def _given_options(sub: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """``param -> (flag, value)`` of each library parameter given on the command line."""
    given = {}
    for action in sub._actions:
        param = getattr(action, "param", None)
        value = getattr(args, action.dest, None)
        if param is not None and value is not None:
            given[param] = (action.option_strings[0], value)
    return given


def _check_extras(given: dict[str, Any]) -> None:
    """Refuse, before any work, an option value whose optional package is not installed."""
    if "merge" in given:
        from .merges import MERGES

        flag, merge = given["merge"]
        MERGES[merge].check_available(flag)
    for param in ("knn_backend", "incremental_backend"):
        if param in given:
            _check_backend(*given[param])


def _flag_of(param: str) -> str:
    """The flag of an estimator parameter's option (:func:`_opt`'s spelling)."""
    return "--" + param.replace("_", "-")


def _check_backend(flag: str, backend: str) -> None:
    """A kNN backend's optional package (faiss, torch_cluster), checked before any work."""
    from .knn import check_backend

    try:
        check_backend(backend)
    except ValueError as exc:
        raise ValueError(_translate(str(exc), {"backend": flag})) from None


def _check_outputs(
    outputs: Sequence[tuple[str, Optional[str]]],
    *,
    overwrite: bool,
    inputs: Sequence[tuple[str, Optional[str]]] = (),
    replaced: Sequence[tuple[str, Optional[str]]] = (),
) -> None:
    """Fail before any work when an output path cannot or must not be written.

    Each output (``(flag, path)``) must not be a directory, must not exist
    unless ``overwrite``, must be in an existing, writable directory, must
    differ from the other outputs and must not be one of the ``inputs``
    (``(flag, path)`` too). ``replaced`` outputs (a state updated in place, a
    resume file) may exist.
    """
    seen: dict[Path, str] = {}
    read = {Path(p).resolve(): flag for flag, p in inputs if p}
    for flag, path, may_exist in [*((f, p, False) for f, p in outputs),
                                  *((f, p, True) for f, p in replaced)]:  # fmt: skip
        if not path:
            continue
        p = Path(path)
        where = p.resolve()
        if where in seen:
            raise ValueError(f"{flag} and {seen[where]} name the same file {p}; give each its own.")
        seen[where] = flag
        if where in read:
            raise ValueError(
                f"{flag} {p} is also an input ({read[where]}); give another file name."
            )
        if p.is_dir():
            raise ValueError(f"{flag} {p} is a directory; give a file name.")
        if p.exists() and not (overwrite or may_exist):
            raise FileExistsError(f"{flag} {p} already exists; pass --overwrite to replace it.")
        parent = p.parent
        if not parent.is_dir():
            raise FileNotFoundError(f"{flag} {p}: directory {parent} does not exist.")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, f"{flag} {p}: directory {parent} is not writable.")


# ---------------------------------------------------------------------------- inputs


def _load_set(
    feat: tuple[str, str],
    knn: Optional[tuple[str, Optional[str]]] = None,
    labels: Optional[tuple[str, Optional[str]]] = None,
) -> tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """Features, their kNN table and labels, each ``(flag, path)``, read and checked.

    Each error names the flag and file concerned (the right one when one
    file is given to two flags); the kNN table and the labels must have one
    row per feature row.
    """
    from .io import load_features, load_knn, load_labels

    with _file(*feat):
        X = load_features(feat[1])
    index = y = None
    if labels is not None and labels[1]:
        with _file(*labels):
            y = load_labels(labels[1], n_samples=len(X))
    if knn is not None and knn[1]:
        with _file(*knn, self_first=True):
            index = load_knn(knn[1], n_samples=len(X))
    return X, index, y


def _check_knn_width(
    index: Optional[np.ndarray], X: np.ndarray, knn: tuple[str, Any], feat: tuple[str, Any],
    width: int, why: str,
) -> None:  # fmt: skip
    """A kNN table read from a file: wide enough for the model (``width`` columns, for ``why``)."""
    if index is None:
        return
    from .knn import check_knn_index

    with _file(*knn, self_first=True):
        check_knn_index(
            index, len(X), name=f"{knn[0]} {knn[1]}", rows_of=f"{feat[0]} {feat[1]}",
            min_width=min(width, len(X) - 1), why=why,
        )  # fmt: skip


#: What the kNN table of scoring must be wide enough for.
_SCORING_WIDTH = "--k-at-hop and --active-connection"


def _check_width(
    X: np.ndarray, feat: tuple[str, Any], n_features: Optional[int], model: str
) -> None:
    """Features of the width the model was trained on (``None``: any width)."""
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{feat[0]} {feat[1]} has {X.shape[1]} features per row but {model} expects "
            f"{n_features}."
        )


def _alias(args: argparse.Namespace, primary: str, alias: str) -> tuple[str, Optional[str]]:
    """``(flag, path)`` of an option given under its name or its alias (not both)."""
    a, b = getattr(args, primary), getattr(args, alias)
    flag_a, flag_b = "--" + primary.replace("_", "-"), "--" + alias.replace("_", "-")
    if a and b and a != b:
        raise ValueError(f"{flag_b} is an alias of {flag_a}; give one of them.")
    return (flag_a, a) if a else (flag_b, b)


def _model_width(est: Any) -> Optional[int]:
    """The embedding width a model takes (``None`` for a structure model: any)."""
    return None if est.features == "structure" else est.n_features_in_


def _load_model(path: str) -> Any:
    """A saved model, or a shipped one by name (``--checkpoint face-any``) when no such file."""
    from .estimator import LinkageClusterer
    from .pretrained import available_models

    if path in available_models() and not Path(path).exists():
        return LinkageClusterer.pretrained(path)
    with _file("--checkpoint", path):
        return LinkageClusterer.load(path)


# ---------------------------------------------------------------------------- commands


def _cmd_knn(args: argparse.Namespace) -> int:
    from .io import save_knn
    from .knn import knn

    feat = ("--feat-path", args.feat_path)
    _check_outputs([("--out", args.out)], overwrite=args.overwrite, inputs=[feat])
    X, _, _ = _load_set(feat)
    start = time.perf_counter()
    verbose = False if args.quiet else None
    defaults = _defaults(knn)
    metric = args.metric if args.metric is not None else defaults["metric"]
    backend = args.backend if args.backend is not None else defaults["backend"]
    with _roles(x=feat):
        index, _ = knn(X, args.k, metric=metric, backend=backend, verbose=verbose)
    with _file("--out", args.out):
        path = save_knn(args.out, index, overwrite=args.overwrite)
    print(
        f"kNN of {len(X)} points (k={args.k}, {metric}) "
        f"in {time.perf_counter() - start:.1f}s -> {path}"
    )
    return 0


def _join_torchrun(device: Any) -> tuple[int, Any]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), join its process group.

    Returns this process's rank and its device (the rank's own GPU when
    ``device`` is ``"auto"`` or not given); ``(0, device)`` otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, device
    from torch import distributed as dist

    from .distributed import init_distributed

    rank_device = init_distributed()
    return dist.get_rank(), rank_device if device in (None, "auto") else device


def _given(args: argparse.Namespace, params: Sequence[str]) -> dict[str, Any]:
    """The estimator parameters given on the command line (the others keep their defaults)."""
    return {name: getattr(args, name) for name in params if getattr(args, name, None) is not None}


def _cmd_train(args: argparse.Namespace) -> int:
    if (args.val_labels_path or args.val_knn_graph_path) and not args.val_feat_path:
        raise ValueError("--val-labels-path and --val-knn-graph-path need --val-feat-path.")
    feat, knn_file = ("--feat-path", args.feat_path), ("--knn-graph-path", args.knn_graph_path)
    labels = ("--labels-path", args.labels_path)
    val_feat, val_knn = ("--val-feat-path", args.val_feat_path), (
        "--val-knn-graph-path", args.val_knn_graph_path)  # fmt: skip
    val_labels = ("--val-labels-path", args.val_labels_path)
    inputs = [feat, labels, knn_file, val_feat, val_labels, val_knn]
    resume = None if args.resume is None else (args.resume or f"{args.checkpoint}.resume")
    _check_outputs([("--checkpoint", args.checkpoint)], overwrite=args.overwrite, inputs=inputs,
                   replaced=[("--resume", resume)])  # fmt: skip
    rank, device = _join_torchrun(args.device)
    params = _given(args, [n for n in _defaults(_estimator()) if n not in _NOT_MODEL_OPTIONS])
    if device is not None:
        params["device"] = device
    est = _estimator()(**params, random_state=args.seed,
                       verbose=False if args.quiet or rank else None)  # fmt: skip
    cfg = est.resolved_params()  # every setting checked (and the merge's package) before work
    X, index, y = _load_set(feat, knn_file, labels)
    _check_knn_width(index, X, knn_file, feat, cfg["n_neighbors_fit"],
                     "--k-at-hop, --active-connection and the sampler's pool: --sampler, --gamma")
    validation = None
    if args.val_feat_path:  # read now: a bad file fails before training, not after
        validation = _load_set(val_feat, val_knn, val_labels)
        _check_width(validation[0], val_feat, X.shape[1], f"--feat-path {args.feat_path}")
        _check_knn_width(validation[1], validation[0], val_knn, val_feat,
                         cfg["n_neighbors_predict"], _SCORING_WIDTH)  # fmt: skip
    default_resume = Path(f"{args.checkpoint}.resume")
    if resume is None and default_resume.is_file():
        logging.getLogger(LOGGER_NAME).warning(
            "%s holds an interrupted training; pass --resume to continue it (this run starts "
            "again at epoch 1)", default_resume,
        )  # fmt: skip
    start = time.perf_counter()
    try:
        with _roles(X=feat, knn_index=knn_file, y=labels):
            est.fit(X, y, knn_index=index, resume=None if resume is None else Path(resume))
    except KeyboardInterrupt:
        if resume is None:
            raise KeyboardInterrupt(
                "nothing was saved; pass --resume to be able to continue an interrupted training"
            ) from None
        if Path(resume).is_file():
            raise KeyboardInterrupt(
                f"the finished epochs are kept in --resume {resume}: run the same command again "
                "to continue"
            ) from None
        raise KeyboardInterrupt("no epoch had finished; nothing was saved") from None
    if rank:  # under torchrun every rank trains; rank 0 reports and saves
        return 0
    print(f"trained on {len(X)} samples, {len(est.history_)} epoch(s) in "
          f"{time.perf_counter() - start:.1f}s, final loss {est.history_[-1]['loss']:.4f}; "
          + _cut_used(est, cfg, args.threshold, est.threshold, whose=""))  # fmt: skip
    with _file("--checkpoint", args.checkpoint):
        est.save(args.checkpoint, overwrite=args.overwrite)
    print(f"saved {args.checkpoint}")
    if validation is not None:
        with _roles(X=val_feat, knn_index=val_knn, y=val_labels):
            _report(est, *validation)
    return 0


def _cmd_test(args: argparse.Namespace) -> int:
    feat = _alias(args, "val_feat_path", "feat_path")
    knn_file = _alias(args, "val_knn_graph_path", "knn_graph_path")
    labels = _alias(args, "val_labels_path", "labels_path")
    if feat[1] is None:
        raise ValueError("give the features to cluster with --val-feat-path (or --feat-path).")
    if args.metrics_out and not labels[1]:
        raise ValueError("--metrics-out needs the true labels: give --val-labels-path.")
    if args.plot and not labels[1]:
        raise ValueError("--plot needs the true labels: give --val-labels-path.")
    if not (args.out or labels[1]):
        raise ValueError(
            "nothing to do: give --out to write the predicted labels and/or "
            "--val-labels-path to score them (with --metrics-out to save the metrics)."
        )
    _check_outputs(
        [("--out", args.out), ("--metrics-out", args.metrics_out), *_plot_outputs(args.plot)],
        overwrite=args.overwrite,
        inputs=[("--checkpoint", args.checkpoint), feat, knn_file, labels],
    )
    est = _load_model(args.checkpoint)
    saved_threshold = est.threshold
    device = args.device if args.device is not None else _defaults(type(est))["device"]
    est.set_params(device=device, verbose=False if args.quiet else None,
                   **_given(args, _PREDICT_PARAMS))  # fmt: skip
    cfg = est.resolved_params()  # the overrides, and the merge's package, before any work
    _check_backend(_flag_of("knn_backend"), cfg["knn_backend"])  # the saved one, too
    X, index, y = _load_set(feat, knn_file, labels)
    _check_width(X, feat, _model_width(est), f"the model --checkpoint {args.checkpoint}")
    _check_knn_width(index, X, knn_file, feat, cfg["n_neighbors_predict"], _SCORING_WIDTH)
    print(_cut_used(est, cfg, args.threshold, saved_threshold))
    with _roles(X=feat, knn_index=knn_file, y=labels):
        clustering = _report(est, X, index, y, out=args.out, metrics_out=args.metrics_out,
                             overwrite=args.overwrite)  # fmt: skip
    if args.plot:
        from .plot import write_figures

        with _file("--plot", args.plot):
            write_figures(args.plot, y, *clustering, history=est.history_,
                          overwrite=args.overwrite)  # fmt: skip
        print(f"figures -> {args.plot}")
    return 0


def _cut_used(
    est: Any, cfg: dict[str, Any], given: Any, saved: Any, *, whose: str = "the saved model's cut, "
) -> str:
    """Which link cut the merge applies, and where it comes from."""
    from .merges import MERGES

    if not MERGES[cfg["merge"]].uses_threshold:
        return f"merge {cfg['merge']}: no link cut (max_size {cfg['max_size']}, step {cfg['step']})"
    cut = est.link_threshold()
    if given not in (None, "auto"):
        return f"link threshold {cut:.4g} (--threshold)"
    how = "calibrated on its training data" if saved == "auto" else "fixed when it was trained"
    return f"link threshold {cut:.4g}: {whose}{how}"


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

    truth, pred_file = ("--labels-path", args.labels_path), ("--pred-path", args.pred_path)
    _check_outputs([("--metrics-out", args.metrics_out)], overwrite=args.overwrite,
                   inputs=[truth, pred_file])  # fmt: skip
    with _file(*truth):
        y = load_labels(args.labels_path)
    with _file(*pred_file):
        pred = load_labels(args.pred_path)
    if len(pred) != len(y):
        raise ValueError(
            f"--pred-path {args.pred_path} has {len(pred)} labels but --labels-path "
            f"{args.labels_path} has {len(y)}."
        )
    metrics = evaluate(y, pred)
    print(format_report(metrics))
    if args.metrics_out:
        _write_json(args.metrics_out, metrics, overwrite=args.overwrite)
        print(f"metrics -> {args.metrics_out}")
    return 0


def _cmd_add(args: argparse.Namespace) -> int:
    from .incremental import IncrementalClusterer

    state = Path(args.state)
    if state.is_dir():
        raise ValueError(f"--state {state} is a directory; give the state file (.npz).")
    if args.init and state.exists():
        raise FileExistsError(
            f"--state {state} already exists; drop --init to add to it (or remove the file)."
        )
    if not args.init and not state.exists():
        raise FileNotFoundError(
            f"--state {state}: no such state file; pass --init to create a new collection."
        )
    feat = ("--feat-path", args.feat_path)
    inputs = [("--checkpoint", args.checkpoint), feat]
    target = ("--out-state", args.out_state) if args.out_state else ("--state", args.state)
    if args.out_state or args.init:  # a new file
        outputs, replaced = [target, ("--ids-out", args.ids_out)], []
        inputs += [] if args.init else [("--state", args.state)]
    else:  # the state is replaced (atomically)
        outputs, replaced = [("--ids-out", args.ids_out)], [target]
    _check_outputs(outputs, overwrite=args.overwrite, inputs=inputs, replaced=replaced)
    if args.backend is not None and not args.init:
        logging.getLogger(LOGGER_NAME).warning(
            "--backend is ignored: the saved state keeps its own (it applies with --init)"
        )
    est = _load_model(args.checkpoint)
    est.set_params(verbose=False)
    threshold = est.link_threshold() if args.threshold == "auto" else args.threshold
    if args.init:
        extra = {} if args.backend is None else {"backend": args.backend}
        library = IncrementalClusterer(est, threshold=threshold, **extra)
    else:
        with _file("--state", args.state):
            library = IncrementalClusterer.load(state, est)
        if threshold is not None:
            library.recut(threshold)
    X, _, _ = _load_set(feat)
    _check_width(X, feat, _model_width(est), f"the model --checkpoint {args.checkpoint}")
    n_before = len(library)
    with _roles(X=feat):
        report = library.add(X)
    with _file(*target):
        library.save(target[1], overwrite=args.overwrite or bool(replaced))
    if args.ids_out:
        from ._files import atomic_write

        table = np.stack([report.face_ids, report.labels], 1).astype(np.int64)
        buffer = io.BytesIO()
        np.save(buffer, table)
        with _file("--ids-out", args.ids_out):
            atomic_write(args.ids_out, lambda f: f.write(buffer.getvalue()),
                         overwrite=args.overwrite)  # fmt: skip
    joined = np.isin(report.labels, library.labels_[:n_before]).sum() if n_before else 0
    first, last = (int(report.face_ids[0]), int(report.face_ids[-1])) if len(X) else (0, -1)
    print(f"added {len(X)} faces (face ids {first}..{last}) in {report.seconds:.1f}s: "
          f"{joined} joined existing clusters, {len(report.merged)} clusters merged into "
          f"others; {len(library)} faces in {len(np.unique(library.labels_))} clusters "
          f"(threshold {library.threshold_:.4g}) -> {target[1]}")  # fmt: skip
    if args.ids_out:
        print(f"ids -> {args.ids_out}")
    return 0


def _cmd_photos(args: argparse.Namespace) -> int:
    from .photos.pipeline import PhotoPipeline

    try:
        pipeline = PhotoPipeline(
            args.out, backend=args.backend, model=args.model, names=args.names,
            same_photo=args.same_photo, max_side=args.max_side,
            verbose=False if args.quiet else None,
        )  # fmt: skip
        report = pipeline.run(args.photos)
    except ImportError as exc:  # a face backend's extra is missing
        raise ValueError(f"--backend {args.backend}: {exc}") from None
    print(report.summary())
    print(f"gallery -> {Path(args.out) / 'index.html'}; table -> {Path(args.out) / 'faces.csv'}; "
          f"names -> {args.names or Path(args.out) / 'names.tsv'}")  # fmt: skip
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import QUICK_PARAMS, run_demo

    params = dict(QUICK_PARAMS) if args.quick else {}
    _check_outputs(_plot_outputs(args.plot), overwrite=args.overwrite)
    given = {k: getattr(args, k) for k in ("n_identities", "epochs", "seed", "device")
             if getattr(args, k) is not None}  # fmt: skip
    run_demo(verbose=False if args.quiet else None, plot=args.plot, overwrite=args.overwrite,
             **given, **params)  # fmt: skip
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
    base = dict(grid["base_params"])
    if args.device is not None:
        base["device"] = args.device
    if args.epochs is not None:
        base["epochs"] = args.epochs
    seed = args.seed if args.seed is not None else _defaults(ex.run_imbalance_grid)["random_state"]
    if args.plot and args.no_sweep:
        raise ValueError("--plot draws the gamma sweep; drop --no-sweep.")
    _check_outputs(
        [("--out", args.out), ("--table-out", args.table_out), ("--plot", args.plot)],
        overwrite=args.overwrite,
        inputs=[("--data-path", args.data_path)],
    )
    if args.plot:
        try:
            ex.require_matplotlib()
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    reading = _file("--data-path", args.data_path) if args.data_path else contextlib.nullcontext()
    with reading:
        d = ex.load_data(grid["data"], args.data_path, random_state=seed, quick=args.quick)
    data = (d["X_train"], d["y_train"], d["X_test"], d["y_test"])
    sizes = ex.describe_subsets(d["y_train"], subsets, random_state=seed)
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
        "source": d["source"], "seed": seed, "base_params": base,
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
            with _file("--out", args.out):
                ex.save_results(args.out, results, overwrite=args.overwrite or written[0])
            written[0] = True

    verbose = False if args.quiet else None
    start = time.perf_counter()
    cache: dict[str, Any] = {}
    grid_records = ex.run_imbalance_grid(
        *data, subsets=subsets, methods=methods, base_params=base, random_state=seed,
        verbose=verbose, callback=lambda r: save("grid", r), cache=cache,
    )  # fmt: skip
    sweep_records = []
    if not args.no_sweep:
        sweep_records = ex.gamma_sweep(
            *data, subset=sweep_subset, gammas=gammas, base_params=base,
            random_state=seed, verbose=verbose, callback=lambda r: save("sweep", r),
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
        with _file("--plot", args.plot):
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


# ---------------------------------------------------------------------------- helpers


def _report(
    est: Any,
    X: np.ndarray,
    index: Optional[np.ndarray],
    y: Optional[np.ndarray],
    *,
    out: Optional[str] = None,
    metrics_out: Optional[str] = None,
    overwrite: bool = False,
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
        with _file("--out", out):
            save_labels(out, pred, overwrite=overwrite)
        print(f"labels -> {out}")
    if y is None:
        return pred, edge_index, scores
    metrics = evaluate(y, pred, edge_index=edge_index, scores=scores)
    metrics["seconds"] = seconds
    print(format_report(metrics))
    if metrics_out:
        _write_json(metrics_out, metrics, overwrite=overwrite)
        print(f"metrics -> {metrics_out}")
    return pred, edge_index, scores


def _write_json(path: str, data: dict[str, Any], *, overwrite: bool) -> None:
    text = json.dumps({k: _plain(v) for k, v in data.items()}, indent=2) + "\n"
    _write_text(path, text, overwrite=overwrite, flag="--metrics-out")


def _write_text(path: str, text: str, *, overwrite: bool, flag: str = "--table-out") -> None:
    from ._files import atomic_write

    with _file(flag, path):
        atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


class _Command(NamedTuple):
    """A sub-command: its help line, description, options and what it runs."""

    help: str
    description: str
    options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    computes: bool = True  # takes --threads


_TEST = _Command(
    "cluster features with a trained model",
    "Cluster features with a model saved by 'linkage-gcn train' (the reference's test.py "
    "flags are accepted): write the predicted labels (--out) and, given the true labels, "
    "print and save the metrics. Model options given here override the saved ones.",
    _test_options,
    _cmd_test,
)

#: The sub-commands, in the order ``--help`` lists them.
_COMMANDS: dict[str, _Command] = {
    "knn": _Command(
        "build a kNN graph (self-first knn.npy)",
        "Find the k nearest neighbours of every row of a features.npy and write them as the "
        "reference's self-first knn.npy: row i is [i, nn_1, ..., nn_k], nearest first.",
        _knn_options,
        _cmd_knn,
    ),
    "train": _Command(
        "train a LinkageClusterer on labelled features",
        "Train the link classifier on labelled embeddings (the reference's train.py flags "
        "are accepted; every LinkageClusterer parameter has its option), save it, and "
        "optionally cluster and score a validation set. Launched by torchrun (e.g. torchrun "
        "--nproc_per_node 2 -m linkage_gcn.cli train ...), every process trains on its share "
        "of the pivots (DDP, --batch-size per process) and rank 0 saves.",
        _train_options,
        _cmd_train,
    ),
    "test": _TEST,
    "predict": _TEST._replace(help="alias of test"),
    "evaluate": _Command(
        "score predicted clusters against true labels",
        "Compare predicted cluster labels with the true identities: pairwise and B-Cubed "
        "precision, recall and F, NMI.",
        _evaluate_options,
        _cmd_evaluate,
        computes=False,
    ),
    "add": _Command(
        "add faces to a saved clustering (ids kept)",
        "Add new embeddings to a growing clustered collection (a state file written by "
        "linkage_gcn.incremental.IncrementalClusterer): only the new faces' neighbourhoods "
        "are scored, existing clusters keep their ids, names given to persons are respected. "
        "The state is updated in place (atomically) unless --out-state is given; --init "
        "creates it.",
        _add_options,
        _cmd_add,
    ),
    "photos": _Command(
        "photos to people: detect, embed, cluster, browse (again: only new photos)",
        "Find the photos under DIR, detect and embed every face with a face model (an optional "
        "extra), cluster them with a pretrained linkage model, and write OUT: a static HTML "
        "gallery of the people (index.html), faces.csv (photo, box, face id, person id, name), "
        "names.tsv (person or face id, a TAB, a name; read on every run) and the state. Run "
        "again on the same DIR: only new or changed photos are embedded, person ids are kept, "
        "merges and splits are reported. Interrupted, it keeps what was embedded.",
        _photos_options,
        _cmd_photos,
    ),
    "demo": _Command(
        "train on built-in data, cluster held-out identities",
        "Train on synthetic long-tailed identities, cluster identities never seen in "
        "training, and compare with the kNN-threshold baseline.",
        _demo_options,
        _cmd_demo,
    ),
    "imbalance": _Command(
        "the RIWS paper's experiments: methods x imbalanced subsets, gamma sweep",
        "Train the 9 methods of the RIWS paper's Table 1 (plus CBg+RIWS, an extension of "
        "this package) on (H m, S n) imbalanced subsets of a labelled training set and score "
        "them on identity-disjoint test data (edge AP, B-Cubed F); then sweep the pool "
        "expansion gamma of RS and RIWS (Fig. 3).",
        _imbalance_options,
        _cmd_imbalance,
    ),
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
