import json
import math
from pathlib import Path

import numpy as np
import pytest

from linkage_gcn.experiments import load_results, save_results
from linkage_gcn.experiments.results import to_json_ready


def test_round_trip(tmp_path, grid):
    path = save_results(tmp_path / "r.json", {"grid": grid})
    back = load_results(path)["grid"]
    assert back == json.loads(json.dumps(to_json_ready(grid)))
    assert [r["edge_ap"] for r in back] == [r["edge_ap"] for r in grid]
    assert back[0]["params"]["k_at_hop"] == [4, 2]


def test_files_are_strict_json(tmp_path):
    results = {
        "nan": math.nan, "inf": [np.float32(np.inf), -math.inf], "n": np.int64(3),
        "a": np.arange(2), "path": Path("a") / "b", 7: (1, 2), "obj": object,
    }  # fmt: skip
    path = save_results(tmp_path / "r.json", results)
    text = path.read_text()
    strict = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert strict == {
        "nan": None, "inf": [None, None], "n": 3, "a": [0, 1], "path": str(Path("a/b")),
        "7": [1, 2], "obj": repr(object),
    }  # fmt: skip


def test_overwrite_only_when_asked(tmp_path):
    path = save_results(tmp_path / "r.json", {"a": 1})
    with pytest.raises(FileExistsError):
        save_results(path, {"a": 2})
    assert load_results(path) == {"a": 1}
    save_results(path, {"a": 2}, overwrite=True)
    assert load_results(path) == {"a": 2}
    with pytest.raises(FileNotFoundError, match="directory"):
        save_results(tmp_path / "missing" / "r.json", {})
    with pytest.raises(ValueError, match="mapping"):
        save_results(tmp_path / "list.json", [1, 2])


def test_load_rejects(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such results file"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON results file"):
        load_results(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a results object"):
        load_results(tmp_path / "list.json")
