"""Shared fixtures and the opt-in switch for slow and benchmark tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw-dlib"


def pytest_configure(config):
    # One torch thread for the whole session (doctests included). The tests use small tensors
    # that gain nothing from intra-op threads, and on the shared 2-core machine torch's default
    # (one thread per core, spinning OpenMP workers) oversubscribed the CPUs alongside the other
    # processes: the suite ran about 10x slower. Set OMP_NUM_THREADS=1 too to pin the BLAS
    # pools that torch does not control.
    torch.set_num_threads(1)
    # and threads="auto" (the estimators' default) defers to it: the suite stays on one thread
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser):
    parser.addoption(
        "--runslow", action="store_true", default=False, help="run slow and benchmark tests"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow or benchmark test: pass --runslow to run it")
    for item in items:
        if "slow" in item.keywords or "benchmark" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def lfw_dir():
    """The real LFW dlib embeddings of ``../shared``; skips when absent."""
    if not (LFW / "features.npy").exists():
        pytest.skip("../shared/data/lfw-dlib is not available")
    return LFW
