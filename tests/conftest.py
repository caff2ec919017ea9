"""Shared fixtures and the opt-in switch for slow and benchmark tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
LFW = SHARED / "data" / "lfw-dlib"


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
