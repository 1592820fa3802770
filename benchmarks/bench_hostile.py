"""Hostile inputs: peak memory of reading decompression bombs, an overlong cell and a large CSV.

    .venv/bin/python benchmarks/bench_hostile.py [--csv-mb 190]

Writes, into a temporary directory (never the repo):

  rows bomb       Parquet, 6M copies of one 100-character text, dictionary-encoded, zstd
  text bomb       Parquet, 20,000 copies of one 2M-character text (40 GB decoded)
  size bomb       Parquet, 200,000 copies of one 20,000-character text (4 GB decoded)
  20 MB cell      CSV, three rows, one of them 20 MB
  large CSV       CSV of --csv-mb MiB: AG News titles (as in bench_ingest.py) and a label

Each is read in a fresh subprocess the way an upload is (the bytes in memory, then
``load_corpus(data, name=...)`` with its default limits), and the bombs also as ``embex
ingest`` reads them (``stream_corpus``, iterated; nothing stored). The child reports its peak RSS
(VmHWM) and its RSS before it read the file; "ratio" is the difference over the decompressed
bytes it kept (the texts and metadata values, in characters).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import rss_mib  # noqa: E402


def parquet_bomb(path: Path, n_rows: int, text_chars: int) -> int:
    """Write the bomb; return its decompressed size in bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    col = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array(["x" * text_chars])
    )
    pq.write_table(pa.table({"text": col}), path, use_dictionary=True, compression="zstd")
    return n_rows * text_chars


def cell_csv(path: Path) -> int:
    path.write_text("text,label\nshort,a\n" + "y" * 20_000_000 + ",b\nlast,c\n", encoding="utf-8")
    return path.stat().st_size


def large_csv(path: Path, mib: float) -> int:
    import csv

    from bench_ingest import titles

    texts, labels = titles()
    target, i = int(mib * 2**20), 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        while f.tell() < target:
            for _ in range(10_000):
                j = i % len(texts)
                w.writerow([f"{texts[j]} #{i + 1}", labels[j]])
                i += 1
    return path.stat().st_size


def child(mode: str, path: str) -> None:
    from analytics.corpus import CorpusError, load_corpus, stream_corpus

    rss_before = rss_mib("VmRSS")
    kept = rows = 0
    try:
        if mode == "upload":
            data = Path(path).read_bytes()
            corpus = load_corpus(data, name=Path(path).name)
            del data
            rows = len(corpus)
            kept = sum(map(len, corpus.texts)) + sum(
                len(v) for m in corpus.metadata for v in m.values() if isinstance(v, str)
            )
        else:
            for chunk in stream_corpus(path):
                rows += len(chunk.texts)
            kept = None  # a stream keeps one chunk at a time
        outcome = f"loaded {rows:,} rows"
    except CorpusError as exc:
        outcome = f"refused: {exc}"
    print(json.dumps({"outcome": outcome, "kept": kept, "before": rss_before, "peak": rss_mib("VmHWM")}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv-mb", type=float, default=190)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from _common import machine

    print(f"machine: {machine()}\n")
    print(
        "| file | read as | on disk | decompressed | outcome | peak RSS (MiB) | + over start (MiB) | ratio |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench_hostile_") as tmp:
        tmp = Path(tmp)
        files = [
            ("rows bomb", tmp / "rows_bomb.parquet", lambda p: parquet_bomb(p, 6_000_000, 100), True),
            ("text bomb", tmp / "text_bomb.parquet", lambda p: parquet_bomb(p, 20_000, 2_000_000), True),
            ("size bomb", tmp / "size_bomb.parquet", lambda p: parquet_bomb(p, 200_000, 20_000), True),
            ("20 MB cell", tmp / "cell.csv", cell_csv, False),
            ("large CSV", tmp / "large.csv", lambda p: large_csv(p, args.csv_mb), False),
        ]
        for label, path, make, stream_too in files:
            decompressed = make(path)
            for mode in ("upload", "stream") if stream_too else ("upload",):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True
                )
                if out.returncode:
                    r = {"outcome": f"crashed ({out.stderr.strip().splitlines()[-1]})", "kept": None}
                    r.update(before=float("nan"), peak=float("nan"))
                else:
                    r = json.loads(out.stdout)
                grew = r["peak"] - r["before"]
                ratio = f"{grew * 2**20 / r['kept']:.2f}" if r["kept"] else "-"
                outcome = r["outcome"] if len(r["outcome"]) < 90 else r["outcome"][:87] + "..."
                print(
                    f"| {label} | {'load_corpus (upload)' if mode == 'upload' else 'stream_corpus (embex ingest)'} "
                    f"| {_size(path.stat().st_size)} | {_size(decompressed)} | {outcome} | {r['peak']:,.0f} | "
                    f"{grew:,.0f} | {ratio} |",
                    flush=True,
                )
            path.unlink()


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


if __name__ == "__main__":
    main()
