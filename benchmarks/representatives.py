"""Do depth-picked examples make better few-shot sets? Nearest-centroid classification with k
examples per label picked by depth, k-means medoids or at random.

    .venv/bin/python benchmarks/representatives.py [--ks 1,2,5,10,20] [--seeds 10]
        [--cache /tmp/embex-bench-reps] [--datasets ag_news,clinc150]

For each label, k examples are picked from a pool; each test text goes to the label whose
picked examples' mean direction (unit rows, normalised mean) is most similar (cosine). A
1-nearest-example classifier is reported as well, where spread matters more than centrality.

* AG News: the sample's 7,600 texts (sample_data/ag_news.csv, row for row the AG News test
  split in ../shared/data/ag_news) with their shipped vectors; each label's texts split in
  half, seeded (seed 0): 3,800 pool, 3,800 test. 4 labels.
* CLINC150 (../shared/data/clinc150): a seeded subset (seed 0) of 50 train queries per intent
  as the pool (7,500) and 10 test queries per intent as the test set (1,500); 150 labels, the
  out-of-scope queries left out. Embedded once with the bundled model (float32, CPU) and
  cached under --cache.

Methods: depth (max_similarity 0.95, the default: no near-copies), depth without spreading
(max_similarity 1), medoid (k-means) and random (mean and standard
deviation over --seeds seeds; medoid over at most 5). "all" uses every pool text: the ceiling of a nearest-centroid.
Prints markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.representatives import pick_representatives  # noqa: E402
from benchmarks._common import machine  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def ag_news():
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        labels = np.array([r["label"] for r in csv.DictReader(f)])
    X = np.load(ROOT / "sample_data" / "ag_news.vectors.npy")
    rng = np.random.default_rng(0)
    pool, test = [], []
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        pool += rows[: rows.size // 2].tolist()
        test += rows[rows.size // 2 :].tolist()
    return X[pool], labels[pool], X[test], labels[test]


def clinc150(cache: Path, per_intent_pool: int = 50, per_intent_test: int = 10):
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)

    def subset(split, per_intent):
        by_intent: dict[str, list[str]] = {}
        for text, intent in data[split]:
            by_intent.setdefault(intent, []).append(text)
        rows = []
        for intent in sorted(by_intent):
            texts = by_intent[intent]
            rows += [(texts[i], intent) for i in np.sort(rng.choice(len(texts), per_intent, replace=False))]
        return rows

    pool, test = subset("train", per_intent_pool), subset("test", per_intent_test)
    texts = [t for t, _ in pool + test]
    V = _embedded(texts, cache)
    return V[: len(pool)], np.array([i for _, i in pool]), V[len(pool) :], np.array([i for _, i in test])


def _embedded(texts: list[str], cache: Path) -> np.ndarray:
    """The texts' vectors from the bundled model, cached on disk by a hash of the texts."""
    key = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:20]
    path = cache / f"clinc150-{key}.npy"
    if path.exists():
        return np.load(path)
    from analytics.embedding import embed_texts

    t0 = time.perf_counter()
    V = embed_texts(texts, device="cpu", precision="float32")
    print(f"(embedded {len(texts):,} texts in {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, V)
    return V


def _unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def accuracy(P, y_pool, picks, T, y_test) -> tuple[float, float]:
    """(nearest-centroid, 1-nearest-example) accuracy with the picked pool rows as examples."""
    classes = np.unique(y_pool)
    centroids = np.stack([_unit(P[picks[y_pool[picks] == c]]).mean(axis=0) for c in classes])
    ncc = classes[np.argmax(T @ _unit(centroids).T, axis=1)]
    nn = y_pool[picks][np.argmax(T @ P[picks].T, axis=1)]
    return float(np.mean(ncc == y_test)), float(np.mean(nn == y_test))


def run(name, P, y_pool, T, y_test, ks, seeds):
    P, T = _unit(P), _unit(T)
    everything = accuracy(P, y_pool, np.arange(len(P)), T, y_test)
    methods = {
        "depth": lambda k, s: pick_representatives(P, k, labels=y_pool),
        "depth, no spreading": lambda k, s: pick_representatives(P, k, labels=y_pool, max_similarity=1.0),
        "medoid": lambda k, s: pick_representatives(P, k, labels=y_pool, method="medoid", random_state=s),
        "random": lambda k, s: pick_representatives(P, k, labels=y_pool, method="random", random_state=s),
    }
    results = {}
    for k in ks:
        for method, pick in methods.items():
            runs = (
                [0] if method.startswith("depth") else range(min(seeds, 5) if method == "medoid" else seeds)
            )
            results[k, method] = np.array([accuracy(P, y_pool, pick(k, s).indices, T, y_test) for s in runs])
    n_labels = len(np.unique(y_pool))
    for which, col in (("nearest-centroid", 0), ("1-nearest-example", 1)):
        print(
            f"\n{name}: {which} accuracy, k examples per label ({n_labels} labels, pool {len(P):,}, "
            f"test {len(T):,}; all {len(P):,} pool texts: {everything[col]:.3f})\n"
        )
        print("| k | " + " | ".join(methods) + " |")
        print("|---:|" + "---:|" * len(methods))
        for k in ks:
            cells = []
            for method in methods:
                a = results[k, method][:, col]
                cells.append(f"{a[0]:.3f}" if a.size == 1 else f"{a.mean():.3f} ± {a.std(ddof=1):.3f}")
            print(f"| {k} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ks", default="1,2,5,10,20")
    ap.add_argument("--seeds", type=int, default=10, help="seeds of random (and of medoid, at most 5)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/embex-bench-reps"))
    ap.add_argument("--datasets", default="ag_news,clinc150")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    print(f"Machine: {machine()}")
    for name in args.datasets.split(","):
        t0 = time.perf_counter()
        data = ag_news() if name == "ag_news" else clinc150(args.cache)
        run(name, *data, ks, args.seeds)
        print(f"\n({name}: {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
