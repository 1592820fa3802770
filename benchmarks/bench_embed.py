"""Embedding through the store vs plain sentence-transformers, and store read-back speed.

    .venv/bin/python benchmarks/bench_embed.py [--texts 5000] [--readback 1000000] [--device cpu]

One run, one loaded model, the same texts (the first N of the AG News sample); plain and
cold alternate --repeat times and the best time of each is kept:
  plain      SentenceTransformer.encode(texts, batch_size=64, normalize_embeddings=True)
  ours cold  embed_corpus into an empty store (hashing, cache lookup, length-sorted batches,
             truncation count, commits every 256 texts), then read the vectors back
  ours warm  the same call again (everything cached) plus the read-back
Then: read-back of N x 384 float32 vectors of an N-document corpus from a DuckDB file.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, timed  # noqa: E402

from analytics.corpus import Corpus  # noqa: E402
from analytics.embedding import Embedder, embed_corpus  # noqa: E402
from analytics.store import Store, text_hash  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=5000)
    ap.add_argument("--readback", type=int, default=1_000_000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeat", type=int, default=2, help="alternating runs of plain and cold")
    args = ap.parse_args()
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][: args.texts]
    embedder = Embedder(device=args.device, batch_size=64)
    print(f"machine: {machine()}; device: {embedder.device}; texts: {len(texts):,}\n")
    embedder.encode(texts[:64])  # warm-up: first call pays for lazy initialisation

    # plain and cold alternate, twice each, best of each: the machine's noise hits both alike
    t_plain = t_cold = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            t, plain = timed(lambda: embedder.model.encode(
                texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True))
            t_plain = min(t_plain, t)
            store = Store(Path(tmp) / f"bench{rep}.duckdb")
            store.add_corpus("bench", Corpus(texts, [{}] * len(texts), "text", "bench"))
            t, _ = timed(lambda: (embed_corpus(store, "bench", embedder),
                                  store.vectors("bench", embedder.model_id)))
            t_cold = min(t_cold, t)
        t_warm, (report, ours) = timed(lambda: (embed_corpus(store, "bench", embedder),
                                                store.vectors("bench", embedder.model_id)))
        assert report.n_computed == 0
        err = float(np.abs(ours - plain.astype(np.float32)).max())
        store.close()

    print("| path | time (s) | texts/s | vs plain encode |")
    print("|---|---:|---:|---:|")
    print(f"| plain `encode` | {t_plain:.2f} | {len(texts) / t_plain:,.0f} | 1.00 |")
    print(f"| ours, cold (embed + store + read back) | {t_cold:.2f} | {len(texts) / t_cold:,.0f} | {t_plain / t_cold:.2f} |")
    print(f"| ours, cached (lookup + read back) | {t_warm:.3f} | {len(texts) / t_warm:,.0f} | {t_plain / t_warm:,.0f} |")
    print(f"\ncached is {t_cold / t_warm:,.0f}x faster than cold; max |ours - plain| = {err:.1e}")

    n, d = args.readback, 384
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "readback.duckdb")
        docs = [f"document {i}" for i in range(n)]
        t_ingest, _ = timed(lambda: store.add_corpus("big", Corpus(docs, [{}] * n, "text", "synthetic")))
        V = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
        hashes = [text_hash(t) for t in docs]
        t_put = 0.0
        for s in range(0, n, 100_000):
            t, _ = timed(lambda: store.put_vectors("m", hashes[s:s + 100_000], V[s:s + 100_000]))
            t_put += t
        store.close()
        store = Store(Path(tmp) / "readback.duckdb")  # cold open, as a new session would
        t_read, back = timed(lambda: store.vectors("big", "m"))
        assert np.array_equal(back, V)
        size = (Path(tmp) / "readback.duckdb").stat().st_size
        store.close()
    print(f"\n| store, {n:,} x {d} float32 | time (s) |")
    print("|---|---:|")
    print(f"| ingest {n:,} documents | {t_ingest:.1f} |")
    print(f"| write {n:,} vectors (10 transactions) | {t_put:.1f} |")
    print(f"| read back as numpy, document order | {t_read:.2f} |")
    print(f"\nstore file: {size / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
