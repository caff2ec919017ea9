"""The machine a benchmark ran on, in one line: benchmarks print it first.

Figures from two CPUs are not comparable (an AVX2 core and an AMX one differ by 2x in
the same kNN search), so each run names the processor, its vector extensions and the
kernels torch dispatches to.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

#: CPU flags worth naming, in the order printed (the widest that matter for these kernels).
_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """The processor's model name and which of :data:`_FLAGS` it has (Linux; else the arch)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    name, flags = platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name == platform.machine():
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return name, [f for f in _FLAGS if f in flags]


def describe() -> str:
    """E.g. ``Intel(R) Xeon(R) Processor [avx2 avx512f amx_bf16], 2 cores, torch ... (AVX512)``."""
    name, flags = cpu_model()
    capability = torch.backends.cpu.get_cpu_capability()
    return (
        f"{name} [{' '.join(flags) or 'no flags read'}], {os.cpu_count()} cores, torch "
        f"{torch.__version__} (CPU kernels {capability})"
    )
