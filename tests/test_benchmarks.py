"""The benchmark scripts that docs quote run end to end (tiny sizes, on the CPU)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "examples" / "benchmarks"


def test_bench_million_tiny_on_cpu_prints_every_stage(tmp_path):
    out = tmp_path / "m.json"
    argv = [sys.executable, str(BENCH / "bench_million.py"), "--n", "1500", "--train", "800",
            "--epochs", "1", "--threads", "1", "--device", "cpu", "--oracle-cuts", "0.5", "0.9",
            "--json", str(out)]  # fmt: skip
    if importlib.util.find_spec("infomap") is not None:
        argv.append("--baseline")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    text = run.stdout
    for stage in ("kNN search", "scored", "merged", "predict: 1,500 faces", "best cut"):
        assert stage in text, (stage, text[-2000:])
    figures = json.loads(out.read_text())
    assert figures["test_faces"] == 1500 and 0 < figures["bcubed"][2] <= 1
    assert set(figures["oracle_cuts"]) == {"0.5", "0.9"}
    assert figures["score_seconds"] <= figures["predict_seconds"]
    if "--baseline" in argv:
        assert "kNN + Infomap" in text and 0 < figures["baseline"]["bcubed"][2] <= 1
        assert "after the kNN" in text  # the stages that differ, compared on their own
        base = figures["baseline"]
        assert 0 <= base["knn_seconds"] <= base["seconds"]
        assert 0 <= base["ours_knn_seconds"] <= figures["score_seconds"]


def test_bench_million_refuses_cuda_without_a_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = subprocess.run([sys.executable, str(BENCH / "bench_million.py"), "--device", "cuda"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode != 0 and "no CUDA device" in run.stderr


def test_machine_line_names_the_processor_and_its_vector_extensions(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import _machine

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu avx2 amx_bf16 sse\n\n"
        "processor\t: 1\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu avx2 amx_bf16 sse\n"
    )
    assert _machine.cpu_model(info) == ("Some CPU @ 2.0GHz", ["avx2", "amx_bf16"])
    name, _ = _machine.cpu_model(tmp_path / "absent")
    assert name  # the architecture, when there is no /proc/cpuinfo
    assert "cores, torch" in _machine.describe()
