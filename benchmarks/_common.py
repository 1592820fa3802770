"""Shared helpers for the benchmark scripts: timing and a description of the machine."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def best_of(fn, repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls, in seconds (the least disturbed by a noisy machine)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def once(fn) -> float:
    return timed(fn)[0]


def timed(fn):
    """``(seconds, result)`` of one call."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def metrics_table(rows: list[dict], keys: tuple[str, ...], first: str = "method") -> str:
    """Rows of metrics (``evaluate_methods``'s) as a markdown table, four decimals."""
    lines = [f"| {first} | {' | '.join(keys)} |", f"|---|{'---:|' * len(keys)}"]
    lines += [f"| {r[first]} | {' | '.join(f'{r[k]:.4f}' for k in keys)} |" for r in rows]
    return "\n".join(lines)


def unit_rows(n: int, d: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32).astype(dtype)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def rss_mib(field: str = "VmHWM") -> float:
    """This process's resident memory in MiB from /proc/self/status: ``VmHWM`` (peak) or ``VmRSS``
    (now). VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts at its parent's peak (it
    survives fork and exec), which would hide the child's own. ru_maxrss where /proc is absent."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
