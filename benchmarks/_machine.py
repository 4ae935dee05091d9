"""What every benchmark prints about the machine it ran on (imported by the scripts beside it)."""
from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """'nproc N, CPU model': the cores this process may use and what they are."""
    return f"nproc {len(os.sched_getaffinity(0))}, {cpu_name()}"


def write_table(path: str, header: list[str], lines: list[str]) -> None:
    """Write a benchmark's markdown (its header paragraphs, then the table lines) to path, creating the folder."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(header + lines) + "\n")
    print("wrote", path)
