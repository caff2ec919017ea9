import numpy as np
import pytest

from linkage_gcn.experiments import (
    DEFAULT_BASE_PARAMS,
    EXTRA_METHODS,
    FULL_BASE_PARAMS,
    METHODS,
    QUICK_BASE_PARAMS,
    default_grid,
    load_data,
)
from linkage_gcn.experiments import data as data_module
from linkage_gcn.experiments import defaults as defaults_module


def test_default_grid():
    grid = default_grid("synthetic")
    assert grid == {
        "data": "synthetic", "subsets": [(10, 3), (40, 3)], "sweep_subset": (10, 3),
        "gammas": (1.0, 1.2, 1.5, 2.0, 2.5, 3.0), "methods": [*METHODS, *EXTRA_METHODS],
        "base_params": DEFAULT_BASE_PARAMS,
    }  # fmt: skip
    grid["base_params"]["epochs"] = 99  # a copy
    grid["subsets"].append((1, 1))
    assert DEFAULT_BASE_PARAMS["epochs"] == 3 and len(default_grid("lfw")["subsets"]) == 2


def test_default_grid_full_and_quick():
    full = default_grid("lfw", full=True)
    assert full["subsets"] == [(m, n) for m in (10, 20, 40, 80) for n in (2, 3)]
    assert full["base_params"] == FULL_BASE_PARAMS and FULL_BASE_PARAMS["epochs"] == 4
    assert FULL_BASE_PARAMS["hidden_channels"] == (512, 512, 256, 256)
    quick = default_grid("synthetic", quick=True)
    assert quick["subsets"] == [(2, 2), (5, 3)] and quick["gammas"] == (1.0, 2.0)
    assert quick["base_params"] == QUICK_BASE_PARAMS
    assert default_grid("lfw", quick=True)["subsets"] == [(10, 3), (40, 3)]


def test_default_grid_auto_follows_the_lfw_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(defaults_module, "find_shared_lfw", lambda: tmp_path)
    assert default_grid("auto")["data"] == "lfw"
    monkeypatch.setattr(defaults_module, "find_shared_lfw", lambda: None)
    assert default_grid("auto")["data"] == "synthetic"
    with pytest.raises(ValueError, match="unknown data 'mnist'"):
        default_grid("mnist")


def test_load_data_synthetic():
    d = load_data("synthetic", quick=True, random_state=1)
    assert d["data"] == "synthetic" and "n_identities=60" in d["source"] and "seed 1" in d["source"]
    assert d["X_train"].shape[1] == d["X_test"].shape[1] == 16
    assert len(d["X_train"]) == len(d["y_train"]) and len(d["X_test"]) == len(d["y_test"])
    assert not np.intersect1d(d["y_train"], d["y_test"]).size  # identity-disjoint
    n_ids = len(np.unique(d["y_train"])) + len(np.unique(d["y_test"]))
    assert n_ids == 60
    again = load_data("synthetic", quick=True, random_state=1)
    assert np.array_equal(again["X_train"], d["X_train"])
    other = load_data("synthetic", quick=True, random_state=2)
    assert not np.array_equal(other["X_train"], d["X_train"])


def test_load_data_finds_or_refuses_lfw(monkeypatch, tmp_path):
    monkeypatch.setattr(data_module, "find_shared_lfw", lambda: None)
    with pytest.raises(FileNotFoundError, match="no LFW dlib folder"):
        load_data("lfw")
    assert load_data("auto", quick=True)["data"] == "synthetic"
    with pytest.raises(ValueError, match="takes none"):
        load_data("synthetic", tmp_path)
    with pytest.raises(ValueError, match="unknown data"):
        load_data("LFW")


def test_load_data_lfw(lfw_dir):
    d = load_data("auto", lfw_dir)
    assert d["data"] == "lfw" and d["source"] == str(lfw_dir)
    assert d["X_train"].shape == (6615, 128) and d["X_test"].shape == (6618, 128)
