"""Projection and retrieval engines: ours vs the plain library call on the same input, one run.

    .venv/bin/python benchmarks/bench_engines.py [--n-map 20000] [--n-search 1000000]

- Maps: 20,000 real vectors (AG News + CLINC150 texts, embedded once with the bundled model and
  kept in benchmarks/.cache/engines.duckdb). UMAP through corpus_projection, first call and
  cached call, beside plain umap-learn on the same vectors; PCA beside scikit-learn's PCA.
- Exact search: top-10 over 1M x 384 random unit vectors, one query and a batch of 100,
  ours vs plain numpy (matmul + argpartition + sort of the k best).
- Approximate search: FAISS HNSW on the 20,000 real vectors: build time, batch latency and
  recall@10 against exact.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import best_of, machine, timed, unit_rows  # noqa: E402

from analytics.corpus import Corpus  # noqa: E402
from analytics.embedding import Embedder, embed_corpus  # noqa: E402
from analytics.projection import corpus_projection, project  # noqa: E402
from analytics.retrieval import ApproxIndex, ExactIndex, recall_at_k  # noqa: E402
from analytics.store import Store  # noqa: E402


def real_texts(n: int) -> list[str]:
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    clinc = json.loads((ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json").read_text())
    for split in ("train", "val", "test", "oos_train", "oos_val", "oos_test"):
        texts += [t for t, _ in clinc[split]]
    return list(dict.fromkeys(texts))[:n]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-map", type=int, default=20_000)
    ap.add_argument("--n-search", type=int, default=1_000_000)
    args = ap.parse_args()
    print(f"machine: {machine()}\n")

    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    store = Store(cache / "engines.duckdb")
    name = f"bench-{args.n_map}"
    if name not in [c.name for c in store.list_corpora()]:
        texts = real_texts(args.n_map)
        store.add_corpus(name, Corpus(texts, [{}] * len(texts), "text", "AG News + CLINC150"))
    embedder = Embedder(device="cpu")
    report = embed_corpus(store, name, embedder)
    print(report.summary(), "\n")
    X = store.vectors(name, embedder.model_id)
    n = len(X)
    store._cur().execute("DELETE FROM results")  # time a real first projection

    import umap
    from sklearn.decomposition import PCA

    rows = []
    # numba compiles UMAP's kernels on first use (and pynndescent's, used above 4,096 rows):
    # pay that once, outside both timings
    umap.UMAP(n_neighbors=15, metric="cosine", random_state=0, n_jobs=1).fit_transform(X[:5000])
    t_plain, _ = timed(
        lambda: umap.UMAP(
            n_neighbors=15, min_dist=0.1, metric="cosine", random_state=0, n_jobs=1
        ).fit_transform(X)
    )
    t_first, first = timed(lambda: corpus_projection(store, name, embedder.model_id, "umap"))
    t_cached, again = timed(lambda: corpus_projection(store, name, embedder.model_id, "umap"))
    assert again.cached and np.array_equal(again.coords, first.coords)
    rows += [
        (f"UMAP, {n:,} x 384 (plain umap-learn, seeded)", t_plain, None),
        ("UMAP, ours first call (read vectors + fit + cache)", t_first, t_plain / t_first),
        ("UMAP, ours cached call", t_cached, t_plain / t_cached),
    ]
    t_skl = best_of(lambda: PCA(2, random_state=0).fit_transform(X), repeat=3)
    store._cur().execute("DELETE FROM results")
    t_pca, _ = timed(lambda: corpus_projection(store, name, embedder.model_id, "pca"))
    t_proj = best_of(lambda: project(X, "pca"), repeat=3)
    rows += [
        (f"PCA, {n:,} x 384 (plain scikit-learn)", t_skl, None),
        ("PCA, ours: project() alone", t_proj, t_skl / t_proj),
        ("PCA, ours first call (read vectors + fit + cache)", t_pca, t_skl / t_pca),
    ]
    print("| map | time (s) | speed-up vs plain |")
    print("|---|---:|---:|")
    for label, t, r in rows:
        print(f"| {label} | {t:.3f} | {'' if r is None else f'{r:,.1f}x'} |")

    # exact search over N x 384 random unit vectors
    N = args.n_search
    Xs = unit_rows(N, 384, seed=11)
    Q1, Q100 = unit_rows(1, 384, seed=12), unit_rows(100, 384, seed=13)
    index = ExactIndex(Xs)

    def plain(Q, k=10):
        S = Q @ Xs.T
        part = np.argpartition(-S, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, part, axis=1), axis=1)
        return np.take_along_axis(part, order, axis=1)

    # same answers: near-ties (1e-7 apart among a million random scores) may swap order
    ours_hits, plain_ids = index.search(Q100, 10), plain(Q100)
    same = recall_at_k(ours_hits.ids, plain_ids)
    gap = np.abs(np.take_along_axis(Q100 @ Xs.T, plain_ids, axis=1) - ours_hits.scores).max()
    assert same >= 0.99 and gap < 1e-5, (same, gap)
    print(f"\n| exact top-10 over {N:,} x 384 | plain numpy (ms) | ours (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for label, Q in (("1 query", Q1), ("batch of 100 queries", Q100)):
        t_p = best_of(lambda: plain(Q), repeat=5)
        t_o = best_of(lambda: index.search(Q, 10), repeat=5)
        print(f"| {label} | {1000 * t_p:.1f} | {1000 * t_o:.1f} | {t_p / t_o:.2f}x |")

    # approximate search on the real vectors
    queries = X[:: max(1, n // 1000)][:1000]
    exact_real = ExactIndex(X)
    approx = ApproxIndex(X)
    t_exact = best_of(lambda: exact_real.search(queries[:100], 10), repeat=5)
    t_approx = best_of(lambda: approx.search(queries[:100], 10), repeat=5)
    recall = recall_at_k(approx.search(queries, 10).ids, exact_real.search(queries, 10).ids)
    print(f"\n| FAISS HNSW (M=32, efSearch=128) on {n:,} real vectors | value |")
    print("|---|---:|")
    print(f"| build (s) | {approx.build_seconds:.2f} |")
    print(f"| batch of 100 queries, exact (ms) | {1000 * t_exact:.1f} |")
    print(f"| batch of 100 queries, HNSW (ms) | {1000 * t_approx:.1f} |")
    print(f"| recall@10 vs exact (1,000 queries) | {recall:.4f} |")
    store.close()


if __name__ == "__main__":
    main()
