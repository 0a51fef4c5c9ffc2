"""What the three steps share: reading params.yaml, and noting that a step ran.

Standard library and PyYAML only; each step imports it from its own folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml


def params() -> dict[str, Any]:
    """The flat mapping in ``params.yaml`` (in the working folder)."""
    return dict(yaml.safe_load(Path("params.yaml").read_text()))


def _age() -> float:
    """Seconds since this process started (Linux: /proc; else since this import)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime, ticks after boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, IndexError, ValueError, AttributeError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


def done(step: str) -> None:
    """Append ``<step> <seconds this process has lived>`` to ``$BENCH_STEP_LOG``, if set.

    The benchmark reads that file (it lies outside the project folder, so no tool sees
    it) to tell which steps a command really ran and how long their processes took.
    """
    log = os.environ.get("BENCH_STEP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{step} {_age():.3f}\n")
