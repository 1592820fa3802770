"""Embedding through our engine vs plain sentence-transformers ``encode``, in one run.

    .venv/bin/python benchmarks/bench_embed.py [--texts 1500] [--device cpu] [--readback 1000000]
    python3 benchmarks/bench_embed.py --device cuda --model .gpu/model --texts 76000   # on a GPU

One process, the same distinct texts (AG News, repeated with a suffix " (k)" when more are
asked for than the 7,600 in the sample), alternating runs, best of --repeat:
  plain      SentenceTransformer.encode(texts, batch_size=64 on CPU / 256 on CUDA,
             normalize_embeddings=True), float32 — the peer
  ours       embed_corpus into an empty store (hashing, cache lookup, tokenizer threads,
             token-budget batches, half precision where it pays, writer thread), then the
             vectors read back; once per precision this device runs
Agreement: cosine of each of our vectors with plain float32's (min and mean).
Where DuckDB is not installed (the GPU image), the store is replaced by Parquet shards of
(text_hash, vector), the format the Ray engine hands to the store; the script says so.
With --readback N: the DuckDB store's write and read-back speed for N x 384 vectors.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, timed  # noqa: E402

from analytics.embedding import Embedder, embed_corpus, load_model  # noqa: E402
from analytics.inference import cpu_has_bf16  # noqa: E402

HAVE_DUCKDB = importlib.util.find_spec("duckdb") is not None


def load_texts(n: int) -> list[str]:
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        base = [r["text"] for r in csv.DictReader(f)]
    texts = list(base)
    k = 1
    while len(texts) < n:
        texts += [f"{t} ({k})" for t in base]
        k += 1
    return texts[:n]


class ParquetShards:
    """Where DuckDB is absent: the store's side of ``embed_corpus`` as Parquet shards of
    (text_hash, vector), each commit one file written to disk."""

    def __init__(self, folder: Path, texts: list[str]):
        import hashlib

        self.folder, self.n = folder, 0
        self.items = [(hashlib.sha256(t.encode()).hexdigest(), t) for t in texts]
        self.hashes = {h for h, _ in self.items}

    def corpus_info(self, name):
        return type("Info", (), {"n_docs": len(self.items)})()

    def missing_texts(self, name, model_id):
        return list(dict(self.items).items())

    def embedded_count(self, name, model_id):
        return 0

    def corpus_fingerprint(self, name):  # the corpus never changes while embedding here
        return "bench"

    def prune_vectors(self, *, hashes, model_id):
        return 0

    def put_vectors(self, model_id, hashes, vectors):
        import pyarrow as pa
        import pyarrow.parquet as pq

        dim = vectors.shape[1]
        table = pa.table(
            {
                "text_hash": pa.array(hashes, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )
        pq.write_table(table, self.folder / f"shard-{self.n:05d}.parquet")
        self.n += 1
        return len(hashes)

    def read_back(self, texts):
        import pyarrow.parquet as pq

        table = pq.read_table(self.folder)
        dim = table.schema.field("vector").type.list_size
        flat = np.concatenate([c.values.to_numpy() for c in table.column("vector").chunks])
        by_hash = dict(zip(table.column("text_hash").to_pylist(), flat.reshape(-1, dim)))
        import hashlib

        return np.stack([by_hash[hashlib.sha256(t.encode()).hexdigest()] for t in texts])


def run_ours(embedder: Embedder, texts: list[str], tmp: Path, rep: int, sink: str = "auto"):
    if sink == "duckdb" or (sink == "auto" and HAVE_DUCKDB):
        from analytics.corpus import Corpus
        from analytics.store import Store

        store = Store(tmp / f"bench-{embedder.precision}-{rep}.duckdb")
        store.add_corpus("bench", Corpus(texts, [{}] * len(texts), "text", "bench"))

        def go():
            report = embed_corpus(store, "bench", embedder)
            return report, store.vectors("bench", embedder.model_id)

        t, (report, vectors) = timed(go)
        store.close()
        return t, report, vectors
    folder = tmp / f"shards-{embedder.precision}-{rep}"
    folder.mkdir()
    sink = ParquetShards(folder, texts)

    def go_shards():
        report = embed_corpus(sink, "bench", embedder)
        return report, sink.read_back(texts)

    t, (report, vectors) = timed(go_shards)
    return t, report, vectors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=1500)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    ap.add_argument(
        "--precisions",
        default=None,
        help="comma list; default: float32 + float16 on CUDA, float32 + bfloat16 on CPU",
    )
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument(
        "--sink",
        choices=["auto", "duckdb", "parquet"],
        default="auto",
        help="where vectors go: the DuckDB store, or Parquet shards (auto: DuckDB when installed)",
    )
    ap.add_argument("--readback", type=int, default=0)
    ap.add_argument("--sweep", action="store_true", help="also try token budgets and worker counts")
    args = ap.parse_args()
    import torch

    texts = load_texts(args.texts)
    ref_model = load_model(args.model, device=args.device)  # float32: the peer
    device = str(ref_model.device)
    cuda = device.startswith("cuda")
    plain_batch = 256 if cuda else 64
    precisions = (
        args.precisions.split(",")
        if args.precisions
        else ["float32", "float16"]
        if cuda
        else ["float32", "bfloat16"]
    )
    name = torch.cuda.get_device_name() if cuda else "CPU"
    duckdb_sink = args.sink == "duckdb" or (args.sink == "auto" and HAVE_DUCKDB)
    print(
        f"machine: {machine()}; device: {device} ({name}); torch {torch.__version__}; "
        f"threads {torch.get_num_threads()}; cpu native bf16: {cpu_has_bf16()}"
    )
    print(f"texts: {len(texts):,} distinct; store: {'DuckDB' if duckdb_sink else 'Parquet shards'}\n")

    embedders = {
        p: Embedder(load_model(args.model, device=args.device), model_id="bench", precision=p)
        for p in precisions
    }
    warm = texts[:512]
    ref_model.encode(warm, batch_size=plain_batch)
    for e in embedders.values():
        e.encode(warm)

    def plain():
        out = ref_model.encode(
            texts, batch_size=plain_batch, normalize_embeddings=True, convert_to_numpy=True
        )
        if cuda:
            torch.cuda.synchronize()
        return out

    best = {"plain": float("inf")}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            t, P = timed(plain)
            best["plain"] = min(best["plain"], t)
            for p, e in embedders.items():
                t, report, V = run_ours(e, texts, Path(tmp), rep, args.sink)
                assert report.n_computed == len(texts), report
                best[p] = min(best.get(p, float("inf")), t)
                results[p] = V
        print("| path | time (s) | texts/s | vs plain `encode` | cosine to float32: min / mean |")
        print("|---|---:|---:|---:|---|")
        n = len(texts)
        print(
            f"| plain `encode`, float32, batch {plain_batch} | {best['plain']:.2f} | "
            f"{n / best['plain']:,.0f} | 1.00 | 1 / 1 |"
        )
        for p, V in results.items():
            cos = np.sum(V * P, axis=1)
            print(
                f"| ours, {p}, end to end | {best[p]:.2f} | {n / best[p]:,.0f} | "
                f"{best['plain'] / best[p]:.2f} | {cos.min():.6f} / {cos.mean():.6f} |"
            )

        if args.sweep:
            print("\nsweep (ours, fastest precision, encode only, no store):")
            p = precisions[-1]
            for budget, workers, procs in (
                (65_536, 8, 0),
                (65_536, 1, 8),
                (65_536, 1, 12),
                (65_536, 1, 14),
                (131_072, 1, 12),
                (32_768, 1, 12),
            ):
                e = Embedder(
                    load_model(args.model, device=args.device),
                    model_id="bench",
                    precision=p,
                    token_budget=budget,
                    batch_size=2048,
                )
                e.engine.workers, e.engine.processes = workers, procs
                e.encode(warm)
                t, _ = timed(lambda: e.encode(texts))
                print(
                    f"  token_budget {budget:>7,} threads {workers:>2} processes {procs:>2}: "
                    f"{n / t:,.0f} texts/s"
                )

    if args.readback and HAVE_DUCKDB:
        readback(args.readback)


def readback(n: int, d: int = 384) -> None:
    from analytics.corpus import Corpus
    from analytics.store import Store, text_hash

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "readback.duckdb")
        docs = [f"document {i}" for i in range(n)]
        t_ingest, _ = timed(lambda: store.add_corpus("big", Corpus(docs, [{}] * n, "text", "synthetic")))
        V = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
        hashes = [text_hash(t) for t in docs]
        t_put = 0.0
        for s in range(0, n, 100_000):
            t, _ = timed(lambda: store.put_vectors("m", hashes[s : s + 100_000], V[s : s + 100_000]))
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
