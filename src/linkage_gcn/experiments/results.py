"""Experiment results as JSON files: records and settings, written atomically.

Records (:func:`~linkage_gcn.experiments.run_imbalance_grid`) become plain
JSON: tuples become lists, numpy scalars and arrays Python numbers and lists,
paths strings, and NaN or infinity ``null`` (strict JSON has neither), so a
file can be read by any JSON reader and re-tabulated
(:func:`~linkage_gcn.experiments.format_table` shows ``null`` as ``nan``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Union

import numpy as np

from .._files import atomic_write

__all__ = ["load_results", "save_results", "to_json_ready"]


def to_json_ready(value: Any) -> Any:
    """``value`` with JSON types only where it can be converted.

    Mappings (keys as strings), lists, tuples and numpy arrays are converted
    item by item; numpy scalars become Python numbers; paths become strings;
    NaN and infinity become ``None``. Anything else is returned unchanged.

    Examples
    --------
    >>> to_json_ready({"k": (20, np.int64(5)), "ap": np.float32("nan"), 1: [np.inf]})
    {'k': [20, 5], 'ap': None, '1': [None]}
    """
    if isinstance(value, Mapping):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [to_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PathLike):
        return str(Path(value))
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_results(
    path: Union[str, Path], results: Mapping[str, Any], *, overwrite: bool = False
) -> Path:
    """Write experiment results (records and settings) as JSON, atomically.

    Parameters
    ----------
    path : str or Path
        The file; its folder must exist.
    results : mapping
        Anything :func:`to_json_ready` makes JSON; other objects (a custom
        loss or sampler among a run's parameters) are written as their
        ``repr``.
    overwrite : bool
        Replace an existing file (refused otherwise).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> _ = save_results(path, {"grid": [{"edge_ap": float("nan"), "k_at_hop": (20, 5)}]})
    >>> load_results(path)
    {'grid': [{'edge_ap': None, 'k_at_hop': [20, 5]}]}
    """
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a mapping, got {type(results).__name__}.")
    text = json.dumps(to_json_ready(results), indent=1, allow_nan=False, default=repr) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def load_results(path: Union[str, Path]) -> dict[str, Any]:
    """Read a file written by :func:`save_results` (records can be re-tabulated).

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    ValueError
        When it is not JSON, or its top level is not an object.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such results file.")
    try:
        results = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not a JSON results file: {exc}") from None
    if not isinstance(results, dict):
        raise ValueError(f"{p} holds a JSON {type(results).__name__}, not a results object.")
    return results
