"""TTE depth and the shift test: ours vs the reference package ``tte-depth`` on the same inputs,
in one run, then ours alone at sizes the reference cannot reach.

    .venv/bin/python benchmarks/bench_depth.py [--quick]

Prints a markdown table for BENCHMARKS.md. Inputs: random unit vectors, d = 384, float32
(the default model's output); timings do not depend on the content of the vectors.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import best_of, machine, once, unit_rows  # noqa: E402

import analytics  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes, to check the script runs")
    args = ap.parse_args()
    from tte_depth import StatDepth

    ref_sizes = [200, 400] if args.quick else [1000, 2000]
    big_sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    chord_n = 2000 if args.quick else 20_000
    d = 384
    rows = []

    print(f"machine: {machine()}\n")
    for n in ref_sizes:
        X = unit_rows(n, d, seed=n)
        theirs = once(lambda: StatDepth("cosine").depths(X))
        ours = best_of(lambda: analytics.tte_depth(X))
        rows.append((f"cosine depth, n = {n:,}", theirs, ours))

    n_f, n_g = (ref_sizes[0] * 3 // 5, ref_sizes[0] * 2 // 5)
    F, G = unit_rows(n_f, d, seed=1), unit_rows(n_g, d, seed=2)
    theirs = once(lambda: StatDepth("cosine").depth_rank_test(F, G))
    ours = best_of(lambda: analytics.shift_test(F, G, permutations=0))
    rows.append((f"shift test (depths, Q, W, p), {n_f:,} vs {n_g:,}", theirs, ours))
    ours_perm = best_of(lambda: analytics.shift_test(F, G, permutations=999), repeat=3)
    rows.append(("  ... ours with 999 permutations added (theirs has none)", theirs, ours_perm))

    X = unit_rows(ref_sizes[0], d, seed=3, dtype=np.float64)
    theirs = once(lambda: StatDepth("chord").depths(X))
    ours = best_of(lambda: analytics.tte_depth(X, distance="chord", device="cpu"))
    rows.append((f"chord depth, n = {ref_sizes[0]:,}", theirs, ours))

    print("| task | tte-depth 1.0.0 (s) | ours (s) | speed-up |")
    print("|---|---:|---:|---:|")
    for name, t_ref, t_ours in rows:
        print(f"| {name} | {t_ref:.2f} | {t_ours:.5f} | {t_ref / t_ours:,.0f}x |")

    print("\n| ours alone | time (s) | peak extra memory |")
    print("|---|---:|---:|")
    for n in big_sizes:
        X = unit_rows(n, d, seed=n)
        t = best_of(lambda: analytics.tte_depth(X))
        print(
            f"| cosine depth, {n:,} x {d} float32 | {t:.3f} | {peak_mib(lambda: analytics.tte_depth(X)):.0f} MiB |"
        )
    X = unit_rows(chord_n, d, seed=7)
    t = best_of(lambda: analytics.tte_depth(X, distance="chord", device="cpu"), repeat=2)
    mem = peak_mib(lambda: analytics.tte_depth(X, distance="chord", device="cpu"))
    print(f"| chord depth, {chord_n:,} x {d} float32 (all pairs, CPU) | {t:.2f} | {mem:.0f} MiB |")


def peak_mib(fn) -> float:
    """Peak memory numpy allocated during ``fn`` (numpy reports to tracemalloc), in MiB."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


if __name__ == "__main__":
    main()
