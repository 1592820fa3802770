"""Importing and reading back 1,000,000 x 384 float32 vectors (issue 13).

    .venv/bin/python benchmarks/bench_import.py                  # 1M x 384 in /tmp/h4/bench_import
    .venv/bin/python benchmarks/bench_import.py --n 200000 --tmp /tmp/x --repeat 5

Generates, in ``--tmp``: the vectors as a .npy and as a Parquet file (a list<float> column, one
row group, as ``pq.write_table`` writes it), and a store holding a corpus of ``--n`` short texts.
Then, each in a fresh process on a fresh copy of that store:

* ``embex import-vectors`` of the .npy and of the Parquet file (this checkout): wall time and
  peak RSS from ``/usr/bin/time``;
* the earlier path, the peer: ``np.load`` of the whole .npy and ``import_vectors`` as it was
  (every value checked in float64, every text hashed in Python, one ``put_vectors`` call). The
  earlier ``embex import-vectors`` refused these files (a 200 MiB cap). The earlier Parquet
  reader made one Python float per value (``to_pylist``): not run at 1M;
* the read-back: ``Store.vectors`` now and as it was (the earlier code is kept below, verbatim
  but for its name), each on the store the new and the earlier import wrote (their rows lie in
  a different order), ``--repeat`` times alternating, in fresh processes (so each pays for its
  first touch of the memory, as a server's first page view does); and ``np.load`` of the .npy
  as a floor.

Prints a markdown table; ``--keep`` leaves the files (else the temp folder is deleted).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

MODEL = "bench-vectors"
NAME = "million"


# --- the earlier code, as it was at 9ea1f8c (the peer) -------------------------------------------


def earlier_check_vectors(vectors, label: str = "vectors") -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{label}: expected a 2-D array (n_texts, dim), got shape {arr.shape}.")
    if (~np.isfinite(arr).all(axis=1)).any() or (~arr.any(axis=1)).any():
        raise ValueError(f"{label}: bad rows")
    return arr.astype(np.float32)


def earlier_import_vectors(store, name: str, vectors, model_id: str) -> int:
    from analytics.store import text_hash

    vectors = earlier_check_vectors(vectors)
    texts = store.texts(name)
    hashes = [text_hash(texts[i]) for i in range(len(texts))]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return store.put_vectors(model_id, hashes, vectors)


def earlier_vectors(store, name: str, model_id: str) -> np.ndarray:
    info = store.corpus_info(name)
    cid = store._corpus_id(name)
    dim = store.model_dim(model_id)
    sql = (
        "SELECT d.position, e.vector FROM documents d JOIN embeddings_"
        + str(int(dim))
        + " e ON e.text_hash = d.text_hash AND e.model_id = $model WHERE d.corpus_id = $cid"
    )
    reader = store._cur().sql(sql, params={"model": model_id, "cid": cid}).to_arrow_reader(65_536)
    out = np.empty((info.n_docs, dim), dtype=np.float32)
    seen = 0
    for batch in reader:
        positions = batch.column(0).to_numpy()
        out[positions] = batch.column(1).values.to_numpy(zero_copy_only=False).reshape(-1, dim)
        seen += batch.num_rows
    assert seen == info.n_docs
    return out


# --- the runs -------------------------------------------------------------------------------------


def make_files(tmp: Path, n: int, dim: int) -> tuple[Path, Path, Path]:
    """The .npy, the Parquet file and the corpus store (made once; kept if present)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analytics.store import Store

    npy, parquet, base = tmp / "vectors.npy", tmp / "vectors.parquet", tmp / "corpus.duckdb"
    rng = np.random.default_rng(0)
    if not npy.exists():
        X = np.lib.format.open_memmap(npy, mode="w+", dtype=np.float32, shape=(n, dim))
        for start in range(0, n, 100_000):
            X[start : start + 100_000] = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        X.flush()
        del X
    if not parquet.exists():
        X = np.load(npy, mmap_mode="r")
        chunks = [
            pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(X[s : s + 131_072]).reshape(-1)), dim)
            for s in range(0, n, 131_072)
        ]
        column = pa.chunked_array([c.cast(pa.list_(pa.float32())) for c in chunks])
        pq.write_table(pa.table({"vector": column}), parquet, row_group_size=2**20)
        del X, chunks, column
    if not base.exists():

        def texts(size: int = 100_000):
            for start in range(0, n, size):
                stop = min(n, start + size)
                yield [f"benchmark text {i}" for i in range(start, stop)], [{}] * (stop - start)

        with Store(base) as s:
            s.add_corpus_stream(NAME, texts(), source="bench_import")
    return npy, parquet, base


def timed_process(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` under /usr/bin/time: wall and CPU seconds, peak RSS (MiB), stdout."""
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%e %U %S %M", "-o", str(log), *cmd], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    wall, user, system, kb = log.read_text().split()[-4:]
    return {
        "seconds": float(wall),
        "cpu": float(user) + float(system),
        "rss_mib": int(kb) / 1024,
        "stdout": proc.stdout,
    }


def import_new(file: Path, base: Path, store: Path) -> dict:
    shutil.copy(base, store)
    cmd = [sys.executable, "-m", "analytics.cli", "--store", str(store), "import-vectors", NAME, str(file)]
    return timed_process(cmd + ["--model-id", MODEL], store.with_suffix(".time"))


def import_earlier(file: Path, base: Path, store: Path) -> dict:
    shutil.copy(base, store)
    cmd = [sys.executable, __file__, "--child", "import-earlier", str(file), str(store)]
    return timed_process(cmd, store.with_suffix(".time"))


def read_back(which: str, store: Path) -> dict:
    """Store.vectors (``new``) or the earlier read (``earlier``) in a fresh process."""
    cmd = [sys.executable, __file__, "--child", "read-" + which, "-", str(store)]
    out = timed_process(cmd, store.with_suffix(".read.time"))
    return {**json.loads(out["stdout"]), "rss_mib": out["rss_mib"]}  # CPU: of the read alone


def child(mode: str, file: str, store_path: str) -> None:
    from analytics.store import Store

    if mode == "import-earlier":
        with Store(store_path) as s:
            X = np.load(file)
            earlier_import_vectors(s, NAME, X, MODEL)
        return
    if mode == "load-npy":
        t0, cpu0 = time.perf_counter(), time.process_time()
        X = np.load(file)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(json.dumps({"seconds": seconds, "cpu": cpu, "checksum": float(X[::997].sum())}))
        return
    with Store(store_path, read_only=True) as s:
        read = s.vectors if mode == "read-new" else (lambda name, model: earlier_vectors(s, name, model))
        t0, cpu0 = time.perf_counter(), time.process_time()
        X = read(NAME, MODEL)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(
            json.dumps({"seconds": seconds, "cpu": cpu, "checksum": float(X[::997].astype(np.float64).sum())})
        )


def load_average() -> str:
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--tmp", type=Path, default=Path("/tmp/h4/bench_import"))
    ap.add_argument("--repeat", type=int, default=3, help="read-backs of each kind (min and median)")
    ap.add_argument("--keep", action="store_true", help="leave the generated files in --tmp")
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "STORE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from _common import machine

    args.tmp.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; n = {args.n:,}, dim = {args.dim}; load average {load_average()} at start")
    t0 = time.perf_counter()
    npy, parquet, base = make_files(args.tmp, args.n, args.dim)
    size = npy.stat().st_size / 2**20
    print(f"files made in {time.perf_counter() - t0:.0f} s: .npy and Parquet of {size:,.0f} MiB each\n")
    new_store, old_store = args.tmp / "new.duckdb", args.tmp / "earlier.duckdb"
    rows = []
    rows.append(
        ("import .parquet", "embex import-vectors (this checkout)", import_new(parquet, base, new_store))
    )
    rows.append(("import .npy", "embex import-vectors (this checkout)", import_new(npy, base, new_store)))
    rows.append(
        ("import .npy", "np.load + earlier import_vectors (peer)", import_earlier(npy, base, old_store))
    )
    reads: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.repeat):  # interleaved, so a busy spell of the machine hits every kind
        for which in ("new", "earlier"):
            for label, store in (("new import's store", new_store), ("earlier import's store", old_store)):
                reads.setdefault((which, label), []).append(read_back(which, store))
        floor = subprocess.run(
            [sys.executable, __file__, "--child", "load-npy", str(npy), "-"], capture_output=True, text=True
        )
        reads.setdefault(("np.load", ".npy file"), []).append(json.loads(floor.stdout))
    checks = {k: {round(r["checksum"], 3) for r in v} for k, v in reads.items() if k[0] != "np.load"}
    assert len(set().union(*checks.values())) == 1, f"the read-backs differ: {checks}"
    print("| step | path | wall s | CPU s | peak RSS MiB |\n|---|---|---:|---:|---:|")
    for step, path, r in rows:
        print(f"| {step} | {path} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['rss_mib']:,.0f} |")
    names = {"new": "Store.vectors (this checkout)", "earlier": "earlier Store.vectors", "np.load": "np.load"}
    for (which, label), runs in reads.items():
        wall = [r["seconds"] for r in runs]
        cpu = [r["cpu"] for r in runs if "cpu" in r]
        rss = [r["rss_mib"] for r in runs if "rss_mib" in r]
        print(
            f"| read back, {label} | {names[which]} | {min(wall):.2f} min, {statistics.median(wall):.2f} "
            f"median of {len(wall)} | {f'{statistics.median(cpu):.2f}' if cpu else ''} | "
            f"{f'{statistics.median(rss):,.0f}' if rss else ''} |"
        )
    print(f"\n.npy file: {size:,.0f} MiB. Load average {load_average()} at the end.")
    if not args.keep:
        shutil.rmtree(args.tmp)


if __name__ == "__main__":
    main()
