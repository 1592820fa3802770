"""False-positive rates of every p-value of the shift test when there is no shift.

    .venv/bin/python benchmarks/calibration.py [--draws 30] [--permutations 999]

Real no-shift splits: two disjoint random samples of one label of one corpus (AG News,
CLINC150 domains, SIB-200 English topics), at sizes 20/20, 50/50, 30/90 and 100/100, ``--draws``
of each per corpus (3 corpora x 4 sizes x 30 = 360 splits). For each test and alpha in 0.01,
0.05, 0.10 it prints the rate of p < alpha with its binomial standard error, and flags a rate
more than 3 SE from alpha. Prints a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402
from _corpora import CORPORA  # noqa: E402

import analytics  # noqa: E402

SIZES = [(20, 20), (50, 50), (30, 90), (100, 100)]
ALPHAS = (0.01, 0.05, 0.10)


def p_values(r) -> dict[str, float]:
    out = {
        "paper one-sided, asymptotic": r.p,
        "paper one-sided, permutation": r.p_permutation,
        "G more concentrated": r.p_concentrated,
        "depth, both directions": r.p_two_sided,
        "combined (verdict)": r.p_any,
    }
    out.update({c.name: c.p for c in r.checks})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=30, help="splits per corpus and size")
    ap.add_argument("--permutations", type=int, default=999)
    args = ap.parse_args()
    rng = np.random.default_rng(2026)
    ps: dict[str, list[float]] = {}
    t0, splits = time.perf_counter(), 0
    for corpus, load in CORPORA.items():
        X, labels = load()
        names, counts = np.unique(labels, return_counts=True)
        for m, n in SIZES:
            usable = names[counts >= m + n]
            for _ in range(args.draws):
                rows = np.flatnonzero(labels == rng.choice(usable))
                idx = rng.choice(rows, m + n, replace=False)
                r = analytics.shift_test(
                    X[idx[:m]], X[idx[m:]], permutations=args.permutations, random_state=splits
                )
                for k, v in p_values(r).items():
                    ps.setdefault(k, []).append(v)
                splits += 1
        print(f"{corpus}: done ({splits} splits, {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print(f"\nMachine: {machine()}")
    print(
        f"{splits} real no-shift splits ({', '.join(CORPORA)}; sizes "
        f"{', '.join(f'{m}/{n}' for m, n in SIZES)}), {args.permutations} permutations.\n"
    )
    print("| test | " + " | ".join(f"FPR at {a}" for a in ALPHAS) + " |")
    print("|---|" + "---:|" * len(ALPHAS))
    for name, values in ps.items():
        v = np.array(values)
        cells = []
        for a in ALPHAS:
            rate = float(np.mean(v < a))
            se = np.sqrt(a * (1 - a) / v.size)
            flag = "" if abs(rate - a) <= 3 * se else " **outside 3 SE**"
            cells.append(f"{rate:.3f} (±{se:.3f}){flag}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
