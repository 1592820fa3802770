"""Streaming ingest vs the in-memory path: rows per second and peak memory.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 10000000] [--peer-rows 1000000]
                                                [--formats parquet csv] [--chunk-rows 100000]

Writes, into a temporary directory (never the repo), a Parquet and a CSV file of --rows rows and
of --peer-rows rows: short texts (AG News titles from ../shared/data/ag_news, else the bundled
sample, cycled, each followed by its row number so every text is distinct) and a label column.
Each ingest runs in a fresh subprocess into a fresh DuckDB file; that process reports its wall
time and its own peak RSS (``ru_maxrss``), so one run's memory does not hide another's:

  streamed   stream_corpus(path) + Store.add_corpus_stream   (what ``embex ingest`` does)
  in memory  load_corpus(path) + Store.add_corpus            (the peer: how files were read
                                                              before, and how uploads still are)

Peak RSS is the child's VmHWM: everything it holds, DuckDB's cache of written blocks included
(bounded by DuckDB's memory_limit, 80% of RAM by default; --memory-limit shows a small one).

The in-memory path runs at --peer-rows only: at 10M rows it would need tens of GiB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import rss_mib  # noqa: E402

AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news"
SAMPLE = ROOT / "sample_data" / "ag_news.csv"


def titles() -> tuple[list[str], list[str]]:
    """(texts, labels) to cycle: AG News titles with their class names."""
    if (AG_NEWS / "test.csv").is_file():
        names = (AG_NEWS / "classes.txt").read_text().split("\n")
        with open(AG_NEWS / "test.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        return [r[1] for r in rows], [names[int(r[0]) - 1] for r in rows]
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"][:60] for r in rows], [r["label"] for r in rows]


def generate(path: Path, n: int, fmt: str, block: int = 1_000_000) -> None:
    """Write n rows (text, label) block by block with pyarrow: the generator holds one block."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    texts, labels = titles()
    texts, labels = pa.array(texts), pa.array(labels)
    schema = pa.schema([("text", pa.string()), ("label", pa.string())])
    writer = pq.ParquetWriter(path, schema) if fmt == "parquet" else pcsv.CSVWriter(path, schema)
    with writer:
        for start in range(0, n, block):
            idx = np.arange(start, min(n, start + block))
            take = pa.array(idx % len(texts))
            text = pc.binary_join_element_wise(
                texts.take(take), pc.cast(pa.array(idx + 1), pa.string()), " #"
            )
            writer.write_table(pa.table({"text": text, "label": labels.take(take)}, schema=schema))


def child(mode: str, path: str, store_path: str, chunk_rows: int, memory_limit: int | None) -> None:
    """One ingest in this process; print its time and memory as JSON."""
    from analytics.corpus import load_corpus, stream_corpus
    from analytics.store import Store

    rss_start = rss_mib()
    with Store(store_path) as store:
        if memory_limit:
            # DuckDB's own cache of the blocks it has written (evictable) is bounded by its
            # memory_limit, 80% of RAM by default; this shows the plateau under a small one
            store._con.execute(f"SET memory_limit = '{int(memory_limit)}MB'")
        t0 = time.perf_counter()
        if mode == "streamed":
            info = store.add_corpus_stream("bench", stream_corpus(path, chunk_rows=chunk_rows))
        else:
            info = store.add_corpus("bench", load_corpus(path, max_bytes=2**62))
        seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "n_docs": info.n_docs,
                "rss_start_mib": rss_start,
                "rss_peak_mib": rss_mib(),
                "store_mib": os.path.getsize(store_path) / 2**20,
            }
        )
    )


def run(mode: str, path: Path, tmp: Path, chunk_rows: int, memory_limit: int | None = None) -> dict:
    store = tmp / f"{mode}-{path.stem}.duckdb"
    cmd = [sys.executable, __file__, "--child", mode, str(path), str(store), "--chunk-rows", str(chunk_rows)]
    out = subprocess.run(
        cmd + (["--memory-limit", str(memory_limit)] if memory_limit else []), capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(f"{mode} ingest of {path.name} failed:\n{out.stderr}")
    store.unlink()
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--peer-rows", type=int, default=1_000_000)
    ap.add_argument("--formats", nargs="+", default=["parquet", "csv"], choices=["parquet", "csv"])
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument(
        "--memory-limit",
        type=int,
        metavar="MIB",
        help="also stream the --rows files under this DuckDB memory_limit",
    )
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.chunk_rows, args.memory_limit)
        return

    from _common import machine

    print(f"machine: {machine()}; chunk_rows: {args.chunk_rows:,}\n")
    print(
        "| path | format | rows | file (MiB) | time (s) | rows/s | peak RSS (MiB) | RSS after imports (MiB) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_ingest_") as tmp:
        tmp = Path(tmp)
        for fmt in args.formats:
            for n in sorted({args.peer_rows, args.rows}):
                path = tmp / f"corpus_{n}.{fmt}"
                t_gen = time.perf_counter()
                generate(path, n, fmt)
                t_gen = time.perf_counter() - t_gen
                print(
                    f"(generated {path.name}: {path.stat().st_size / 2**20:,.0f} MiB in {t_gen:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
                modes = [("streamed", None)] + ([("in memory", None)] if n == args.peer_rows else [])
                if args.memory_limit and n == args.rows:
                    modes.append(
                        (f"streamed, DuckDB memory_limit {args.memory_limit} MiB", args.memory_limit)
                    )
                for mode, limit in modes:
                    r = run(
                        "streamed" if mode.startswith("streamed") else "in_memory",
                        path,
                        tmp,
                        args.chunk_rows,
                        limit,
                    )
                    assert r["n_docs"] == n, r
                    print(
                        f"| {mode} | {fmt} | {n:,} | {path.stat().st_size / 2**20:,.0f} | "
                        f"{r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['rss_peak_mib']:,.0f} | "
                        f"{r['rss_start_mib']:,.0f} |",
                        flush=True,
                    )
                path.unlink()


if __name__ == "__main__":
    main()
