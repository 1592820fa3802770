"""Power of every test of the shift test, and whether the direction-aware verdict names the
shift right, on shifts built from real corpora (the bundled model's vectors).

    .venv/bin/python benchmarks/power.py [--draws 40] [--permutations 499]

Shifts (F vs G, n texts each):
- topic: F from one CLINC150 domain, G from another of about the same spread (the pair with
  the closest mean depth): each is atypical of the other, "location".
- mixture: F 75% of domain A + 25% of B, G the other way round (the same pair): "location".
- concentrated: F from AG News World, G from World's deepest fifth (its most typical texts).
- near-duplicates: G made of n/5 World texts, each five times with a little noise: "concentrated".
- contaminated: F from World, G 80% World + 20% Sports: "outlying".

Power is the rate of p < 0.05 over ``--draws`` draws. "Verdict right" is the rate of draws whose
verdict (ShiftResult.kind at 0.05) is the expected kind; "when detected" counts only the draws
the combined test found significant. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import machine  # noqa: E402
from _corpora import ag_news, clinc_domains  # noqa: E402
from calibration import p_values  # noqa: E402

import analytics  # noqa: E402

SIZES = (20, 50, 100)


def _similar_domains(X, labels):
    """The two CLINC150 domains whose texts are about equally spread (closest mean depth)."""
    spread = {d: float(analytics.tte_depth(X[labels == d]).mean()) for d in np.unique(labels)}
    names = sorted(spread, key=spread.get)
    a, b = min(zip(names, names[1:]), key=lambda pair: spread[pair[1]] - spread[pair[0]])
    return a, b, spread[a], spread[b]


def cases():
    X, labels = ag_news()
    by = {k: X[labels == k] for k in np.unique(labels)}
    world = by["World"]
    deepest = world[np.argsort(-analytics.tte_depth(world))[: len(world) // 5]]
    C, domains = clinc_domains()
    a, b, sa, sb = _similar_domains(C, domains)
    A, B = C[domains == a], C[domains == b]
    print(f"CLINC150 domains of like spread: {a} (mean depth {sa:.3f}), {b} ({sb:.3f})", file=sys.stderr)

    def draw(rng, P, k):
        return P[rng.choice(len(P), k, replace=False)]

    def mix(rng, P, Q, n, share_q):
        k = round(n * share_q)
        return np.concatenate([draw(rng, P, n - k), draw(rng, Q, k)])

    def near_duplicates(rng, n):
        base = np.repeat(draw(rng, world, max(1, n // 5)), 5, axis=0)[:n]
        noisy = base + rng.normal(scale=0.01, size=base.shape)
        return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)

    return {
        f"topic ({a} vs {b})": ("location", lambda rng, n: (draw(rng, A, n), draw(rng, B, n))),
        "mixture (75/25 vs 25/75)": (
            "location",
            lambda rng, n: (mix(rng, A, B, n, 0.25), mix(rng, A, B, n, 0.75)),
        ),
        "concentrated (deepest fifth)": (
            "concentrated",
            lambda rng, n: (draw(rng, world, n), draw(rng, deepest, n)),
        ),
        "near-duplicates": ("concentrated", lambda rng, n: (draw(rng, world, n), near_duplicates(rng, n))),
        "contaminated (20% Sports)": (
            "outlying",
            lambda rng, n: (draw(rng, world, n), mix(rng, world, by["Sports"], n, 0.2)),
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=40)
    ap.add_argument("--permutations", type=int, default=499)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    rows = []
    for case, (expected, make) in cases().items():
        for n in SIZES:
            ps: dict[str, list] = {}
            right = detected = right_detected = 0
            kinds: dict[str, int] = {}
            for i in range(args.draws):
                F, G = make(rng, n)
                r = analytics.shift_test(F, G, permutations=args.permutations, random_state=i)
                kinds[r.kind()] = kinds.get(r.kind(), 0) + 1
                right += r.kind() == expected
                detected += r.significant()
                right_detected += r.significant() and r.kind() == expected
                for k, v in p_values(r).items():
                    ps.setdefault(k, []).append(v)
            power = {k: float(np.mean(np.array(v) < 0.05)) for k, v in ps.items()}
            when = f"{right_detected / detected:.2f}" if detected else "–"
            rows.append((case, expected, n, power, right / args.draws, when, kinds))
            print(f"{case} n={n}: verdict right {right / args.draws:.2f}", file=sys.stderr)
    print(f"\nMachine: {machine()}")
    print(f"{args.draws} draws per cell, {args.permutations} permutations, alpha 0.05.\n")
    tests = list(rows[0][3])
    print(
        "| shift (expected verdict) | n per side | verdict right | when detected | verdicts | "
        + " | ".join(tests)
        + " |"
    )
    print("|---|---:|---:|---:|---|" + "---:|" * len(tests))
    for case, expected, n, power, right, when, kinds in rows:
        cells = " | ".join(f"{power[t]:.2f}" for t in tests)
        seen = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
        print(f"| {case} ({expected}) | {n} | {right:.2f} | {when} | {seen} | {cells} |")


if __name__ == "__main__":
    main()
