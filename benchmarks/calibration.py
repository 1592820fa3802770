"""False-positive rates of the shift test's two p-values when there is no shift.

    .venv/bin/python benchmarks/calibration.py [--splits 200]

Real data: random equal splits of the AG News World texts (embedded with the bundled model).
Synthetic: isotropic Gaussian corpora. Prints a markdown table for README/BENCHMARKS.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import analytics  # noqa: E402
from analytics.embedding import embed_texts  # noqa: E402


def rates(pairs, permutations: int) -> tuple[float, float | None]:
    p, pp = [], []
    for i, (F, G) in enumerate(pairs):
        r = analytics.shift_test(F, G, permutations=permutations, random_state=i)
        p.append(r.p)
        pp.append(r.p_permutation)
    asym = float(np.mean(np.array(p) < 0.05))
    return asym, (float(np.mean(np.array(pp) < 0.05)) if permutations else None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--splits", type=int, default=200)
    args = ap.parse_args()
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        world = [r["text"] for r in csv.DictReader(f) if r["label"] == "World"]
    X = embed_texts(world)
    rng = np.random.default_rng(2026)

    def real_splits():
        for _ in range(args.splits):
            idx = rng.choice(len(X), 500, replace=False)
            yield X[idx[:250]], X[idx[250:]]

    def iso(n, d, count):
        for _ in range(count):
            Z = rng.standard_normal((2 * n, d))
            yield Z[:n], Z[n:]

    print("| data (no shift) | draws | asymptotic p < 0.05 | permutation p < 0.05 |")
    print("|---|---:|---:|---:|")
    rows = [
        ("AG News World, equal splits, n = 250 each", real_splits(), args.splits, 999),
        ("isotropic Gaussian, d = 384, n = 250 each", iso(250, 384, 2000), 2000, 0),
        ("isotropic Gaussian, d = 384, n = 250 each", iso(250, 384, 300), 300, 999),
        ("isotropic Gaussian, d = 2, n = 250 each", iso(250, 2, 2000), 2000, 0),
    ]
    for name, pairs, count, perms in rows:
        asym, perm = rates(pairs, perms)
        perm_s = "—" if perm is None else f"{perm:.3f}"
        print(f"| {name} | {count} | {asym:.3f} | {perm_s} |", flush=True)


if __name__ == "__main__":
    main()
