"""Shared data of the experiments tests: a small synthetic set and one grid run on it."""

from __future__ import annotations

import pytest
import torch

from linkage_gcn.datasets import make_identities
from linkage_gcn.experiments import QUICK_BASE_PARAMS, run_imbalance_grid
from linkage_gcn.model_selection import split_identities

#: The methods of the shared grid: the baseline, the paper's RIWS, the extension.
GRID_METHODS = ("L-GCN", "RIWS", "CBg+RIWS")
GRID_SUBSETS = ((2, 2), (5, 3))


class _OneThread:
    """Tiny tensors: thread hand-offs cost more than the work on a busy 2-core machine."""

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.before)


@pytest.fixture(autouse=True)
def one_thread():
    with _OneThread():
        yield


@pytest.fixture(scope="session")
def data():
    """(X_train, y_train, X_test, y_test): 60 identities split in two halves of identities."""
    X, y = make_identities(60, dim=16, max_size=20, random_state=0)
    train, test = split_identities(y, test_size=0.5, random_state=0)
    return X[train], y[train], X[test], y[test]


@pytest.fixture(scope="session")
def grid(data):
    """The records of :data:`GRID_METHODS` on :data:`GRID_SUBSETS`, seed 0."""
    with _OneThread():  # the autouse fixture does not cover session-scoped ones
        return run_imbalance_grid(
            *data, subsets=GRID_SUBSETS, methods=list(GRID_METHODS),
            base_params=QUICK_BASE_PARAMS, verbose=False,
        )  # fmt: skip
