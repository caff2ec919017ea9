"""The training and test sets of the experiments: LFW, or synthetic identities.

With the LFW dlib folder (``../shared/data/lfw-dlib``, or the one named by
``LINKAGE_GCN_LFW``) the experiments train on subsets of its ``train/`` half
and test on its identity-disjoint ``test/`` half. Without it the data are
synthetic: :func:`~linkage_gcn.datasets.make_identities` with
:data:`SYNTHETIC` (4,000 long-tailed identities, the largest with 300
samples, dimension 128), split in two halves of identities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .._validation import check_in_options
from ..datasets import find_shared_lfw, load_lfw_dlib, make_identities
from ..model_selection import split_identities
from .defaults import DATA_SETS

__all__ = ["SYNTHETIC", "SYNTHETIC_QUICK", "load_data"]

#: :func:`~linkage_gcn.datasets.make_identities` parameters of the synthetic data.
SYNTHETIC: dict[str, Any] = {"n_identities": 4000, "max_size": 300, "dim": 128}

#: The small synthetic data of ``load_data(quick=True)`` (smoke tests).
SYNTHETIC_QUICK: dict[str, Any] = {"n_identities": 60, "max_size": 20, "dim": 16}


def load_data(
    data: str = "auto",
    data_path: Optional[Union[str, Path]] = None,
    *,
    random_state: int = 0,
    quick: bool = False,
) -> dict[str, Any]:
    """The training and test sets of the experiments.

    Parameters
    ----------
    data : {"auto", "lfw", "synthetic"}
        ``"lfw"``: the ``train/`` and ``test/`` halves (identity-disjoint) of
        the LFW dlib folder; ``"synthetic"``: long-tailed synthetic identities
        split in two halves by identity; ``"auto"``: LFW when ``data_path``
        is given or the folder is found, synthetic otherwise.
    data_path : str or Path, optional
        The ``lfw-dlib`` folder (default: :func:`~linkage_gcn.datasets.find_shared_lfw`);
        not allowed with ``data="synthetic"``.
    random_state : int
        Seed of the synthetic data and its split.
    quick : bool
        Small synthetic data (:data:`SYNTHETIC_QUICK`), for smoke tests; LFW
        is always loaded whole.

    Returns
    -------
    dict
        ``data`` (``"lfw"`` or ``"synthetic"``), ``source`` (a description),
        ``X_train``, ``y_train``, ``X_test``, ``y_test``.

    Examples
    --------
    >>> d = load_data("synthetic", quick=True)
    >>> d["source"]
    'make_identities(n_identities=60, max_size=20, dim=16, seed 0)'
    >>> bool(np.intersect1d(d["y_train"], d["y_test"]).size)
    False
    """
    data = check_in_options(data, DATA_SETS, "data")
    if data == "synthetic":
        if data_path is not None:
            raise ValueError("data_path is the LFW folder; data='synthetic' takes none.")
        return _synthetic(SYNTHETIC_QUICK if quick else SYNTHETIC, random_state)
    root = Path(data_path) if data_path is not None else find_shared_lfw()
    if root is not None:
        return _lfw(root)
    if data == "lfw":
        raise FileNotFoundError(
            "no LFW dlib folder found: give its path (--data-path), set LINKAGE_GCN_LFW, "
            "or use the synthetic data (--data synthetic)."
        )
    return _synthetic(SYNTHETIC_QUICK if quick else SYNTHETIC, random_state)


def _lfw(root: Path) -> dict[str, Any]:
    # the benchmark of docs/imbalance.md was measured on the centred + L2 copy
    X_train, y_train = load_lfw_dlib(root, "train", features="centred")
    X_test, y_test = load_lfw_dlib(root, "test", features="centred")
    return _data_dict("lfw", str(root), X_train, y_train, X_test, y_test)


def _synthetic(spec: dict[str, Any], random_state: int) -> dict[str, Any]:
    X, y = make_identities(**spec, random_state=random_state)
    train, test = split_identities(y, test_size=0.5, random_state=random_state)
    args = ", ".join(f"{k}={v}" for k, v in spec.items())
    source = f"make_identities({args}, seed {random_state})"
    return _data_dict("synthetic", source, X[train], y[train], X[test], y[test])


def _data_dict(
    name: str,
    source: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
) -> dict[str, Any]:
    return {"data": name, "source": source, "X_train": X_train, "y_train": y_train,
            "X_test": X_test, "y_test": y_test}  # fmt: skip
