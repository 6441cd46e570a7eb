"""Resident memory of the current process, for the benchmark children."""

from __future__ import annotations

import resource
from pathlib import Path


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024.0  # kB
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM).

    Not ``getrusage(...).ru_maxrss``: Linux carries the parent's resident size at fork over
    exec into it, so a child of the benchmark (which holds 10M-bar arrays) would report the
    parent's memory.
    """
    peak = _status_mb("VmHWM")
    if peak != peak:  # no /proc: fall back to getrusage (KiB on Linux)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return peak


def current_rss_mb() -> float:
    return _status_mb("VmRSS")
