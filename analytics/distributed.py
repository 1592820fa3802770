"""Embedding a corpus on a Ray cluster, for corpora that outgrow one machine.

The driver (this process) owns the DuckDB file: it reads the texts the store has no vector
for, hands them to Ray Data, and at the end takes the vectors into the store's
content-addressed cache. In between, the work runs on the cluster:

* ``map_batches`` with a fixed pool of :class:`EmbedActor` actors, each loading the model
  once (one GPU per actor where the cluster has GPUs), turns ``(text_hash, text)`` rows into
  ``(text_hash, vector)`` rows;
* ``write_parquet`` writes those rows as Parquet shards into ``shard_dir``;
* :meth:`Store.put_vectors_from_parquet` inserts the shards in one transaction, one vector
  per text hash, skipping any already cached.

A worker that dies mid-run (killed, out of memory, a lost node) is restarted by Ray Data and
its batch is computed again; a batch computed twice is stored once. On a cluster of several
machines ``shard_dir`` must be storage every node and the driver see at the same path (NFS, a
mounted bucket); the default, a temporary folder on the driver, only works on one machine.
Every node needs this package (and the model, for models other than the bundled default)
installed; nothing is downloaded.

Ray is an optional extra: ``pip install 'embedding-explorer[ray]'``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .embedding import EmbedReport
from .errors import ModelError, ParameterError

# passed to every actor: a worker never reaches for the Hugging Face hub
_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is part of the extra
    except ImportError as exc:
        raise ModelError(
            f"The Ray engine needs Ray Data, which is not installed here ({exc}). Install the "
            "extra with: pip install 'embedding-explorer[ray]' (or use the local engine)."
        ) from None
    return ray


def _resolve_key(model, device: str, precision: str | None) -> tuple[str | None, str]:
    """(precision, cache key) for ``model`` on ``device``, resolved on the driver, so every actor
    (on any node, whatever its CPU) embeds in the same precision and writes under one key."""
    from .embedding import embedding_key
    from .inference import resolve_precision

    precision = resolve_precision(precision, device)
    return precision, embedding_key(model, device=device, precision=precision)


class EmbedActor:
    """One model per actor: built once in ``__init__``, then called on pyarrow batches of
    ``text_hash`` and ``text``; returns ``text_hash`` and ``vector`` (fixed-size float32)."""

    def __init__(
        self,
        model,
        *,
        precision: str | None,
        device: str,
        batch_size: int | None,
        expected_key: str,
        env: dict[str, str],
    ):
        os.environ.update(env)  # before sentence-transformers is imported in this process
        from .embedding import Embedder

        self.embedder = Embedder(model, device=device, precision=precision, batch_size=batch_size)
        self.mismatch = None
        if self.embedder.model_id != expected_key:
            self.mismatch = (
                f"The actor's model writes under {self.embedder.model_id!r}, not "
                f"{expected_key!r} as the driver expects; pass precision='float32'."
            )

    def __call__(self, batch):
        import pyarrow as pa

        if self.mismatch:
            raise ModelError(self.mismatch)
        texts = batch.column("text").to_pylist()
        vectors = np.ascontiguousarray(self.embedder.encode(texts), dtype=np.float32)
        return pa.table(
            {
                "text_hash": batch.column("text_hash"),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), self.embedder.dim),
            }
        )


def _shard_rows(path: Path) -> int:
    """Rows in the finished Parquet shards under ``path`` (unfinished ones are skipped)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    for f in path.glob("*.parquet"):
        try:
            rows += pq.read_metadata(f).num_rows
        except (pa.ArrowException, OSError):  # a shard still being written (or just removed)
            pass
    return rows


def embed_corpus_ray(
    store,
    name: str,
    *,
    model=None,
    precision: str | None = "auto",
    address: str | None = None,
    num_actors: int | None = None,
    batch_size: int = 256,
    num_gpus_per_actor: float | None = None,
    num_cpus_per_actor: float = 1,
    rows_per_shard: int | None = None,
    shard_dir: str | os.PathLike | None = None,
    progress=None,
) -> EmbedReport:
    """Embed the texts of corpus ``name`` that the store has no vector for on a Ray cluster,
    and cache them, under the same key :func:`~analytics.embedding.embed_corpus` uses for
    ``(model, precision)`` on the actors' device.

    address : ``None`` uses the Ray session already started in this process, else starts a
        local one on this machine's cores (shut down at the end); ``"auto"`` joins the
        cluster this machine belongs to (``ray start``); ``"ray://head:10001"`` connects
        through Ray Client.
    num_gpus_per_actor : default 1 when the cluster has GPUs (the actors then run on CUDA),
        else 0 (CPU).
    num_actors : actors, each holding one model (default: one per GPU, else one per
        ``num_cpus_per_actor`` CPUs of the cluster).
    batch_size : texts per ``map_batches`` call (the model batches them by length inside).
    rows_per_shard : texts per input block, and so per Parquet shard and per retried unit of
        work (default: the work in about four blocks per actor, 1 to 16 batches each).
    shard_dir : where the vector shards are written, in a folder of this run's own that is
        removed once the store has taken them in (or the run failed). On a multi-node
        cluster it must be a path every node and the driver share (NFS, a mounted bucket).
        Default: the system's temporary folder, which only works on one machine.
    progress : callable ``(done, total)``, called (from a helper thread) as shards are written.
    """
    t0 = time.perf_counter()
    ray = _import_ray()
    import pyarrow as pa

    if model is not None and not isinstance(model, (str, os.PathLike)):
        raise ParameterError(
            "With the Ray engine a model is a name or a folder path (every actor "
            f"loads its own copy), not a {type(model).__name__}."
        )
    if model is not None and Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())  # the same path on every node
    if batch_size is None or int(batch_size) < 1:
        raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
    batch_size = int(batch_size)
    info = store.corpus_info(name)  # an unknown corpus fails here, before a cluster starts
    started = False
    if address is None:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
            started = True
    else:
        if ray.is_initialized():
            raise ModelError(
                "Ray is already initialised in this process; leave address unset to "
                "use that session, or call ray.shutdown() first."
            )
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ModelError(
                f"Could not connect to a Ray cluster at {address!r} ({exc}). Start "
                "one with `ray start --head`, or leave the address unset for a "
                "local one."
            ) from None
        started = True
    try:
        resources = ray.cluster_resources()
        gpus = float(resources.get("GPU", 0))
        if num_gpus_per_actor is None:
            num_gpus_per_actor = 1 if gpus > 0 else 0
        device = "cuda" if num_gpus_per_actor > 0 else "cpu"
        precision, key = _resolve_key(model, device, precision)
        if num_actors is None:
            if num_gpus_per_actor > 0:
                num_actors = max(1, int(gpus // num_gpus_per_actor))
            else:
                num_actors = max(1, int(float(resources.get("CPU", 1)) // max(num_cpus_per_actor, 1e-9)))
        num_actors = int(num_actors)
        if num_actors < 1:
            raise ParameterError(f"num_actors must be at least 1, got {num_actors}.")

        n_cached = store.embedded_count(name, key)
        missing = store.missing_texts(name, key)
        total = len(missing)
        if progress:
            progress(0, total)
        added = 0
        if missing:
            added = _run(
                ray,
                store,
                key,
                missing,
                model=model,
                precision=precision,
                device=device,
                num_actors=num_actors,
                batch_size=batch_size,
                num_gpus=num_gpus_per_actor,
                num_cpus=num_cpus_per_actor,
                rows_per_shard=rows_per_shard,
                shard_dir=shard_dir,
                progress=progress,
                pa=pa,
            )
        still = len(store.missing_texts(name, key))
        if still:
            raise ModelError(
                f"{still:,} of {total:,} texts came back from the cluster without a "
                f"vector; {added:,} were stored. Run embed again to finish them."
            )
        if progress:
            progress(total, total)
    finally:
        if started:
            ray.shutdown()
    return EmbedReport(
        corpus=name,
        model_id=key,
        device=f"ray:{num_actors}x{device}",
        n_docs=info.n_docs,
        n_cached=n_cached,
        n_computed=total,
        n_truncated=0,
        max_seq_length=0,
        seconds=time.perf_counter() - t0,
        stopped=False,
    )


def _run(
    ray,
    store,
    key,
    missing,
    *,
    model,
    precision,
    device,
    num_actors,
    batch_size,
    num_gpus,
    num_cpus,
    rows_per_shard,
    shard_dir,
    progress,
    pa,
) -> int:
    """Embed ``missing`` on the cluster into Parquet shards, then into the store."""
    # longest first, so each batch holds texts of about one length (little padding)
    missing = sorted(missing, key=lambda ht: len(ht[1]), reverse=True)
    n = len(missing)
    if rows_per_shard is None:
        per_block = math.ceil(n / (4 * num_actors))
        rows_per_shard = min(max(per_block, batch_size), 16 * batch_size)
        rows_per_shard = math.ceil(rows_per_shard / batch_size) * batch_size
    rows_per_shard = max(1, int(rows_per_shard))
    blocks = [
        pa.table(
            {
                "text_hash": pa.array([h for h, _ in part], pa.string()),
                "text": pa.array([t for _, t in part], pa.string()),
            }
        )
        for part in (missing[s : s + rows_per_shard] for s in range(0, n, rows_per_shard))
    ]
    del missing
    if shard_dir is None:
        out = Path(tempfile.mkdtemp(prefix="embex-shards-"))
    else:  # a folder of this run's own, so shards of other runs (or models) are never mixed in
        Path(shard_dir).mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix="embex-shards-", dir=shard_dir))
    env = {v: os.environ.get(v, "1") for v in _OFFLINE_VARS}
    done = threading.Event()

    def watch() -> None:
        last = 0
        while not done.wait(1.0):
            rows = min(_shard_rows(out), n)
            if rows != last:
                last = rows
                progress(rows, n)

    watcher = threading.Thread(target=watch, name="embed-ray-progress", daemon=True) if progress else None
    try:
        ds = ray.data.from_arrow(blocks)
        ds = ds.map_batches(
            EmbedActor,
            fn_constructor_kwargs={
                "model": None if model is None else str(model),
                "precision": precision,
                "device": device,
                "batch_size": batch_size,
                "expected_key": key,
                "env": env,
            },
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=num_actors),
            num_gpus=num_gpus,
            num_cpus=num_cpus,
            # a dead actor is restarted and its batch retried: Ray Data's own default for actor
            # pools (max_restarts=-1, max_task_retries=-1), so nothing to pass here
        )
        if watcher is not None:
            watcher.start()
        # writing a shard is light: it must not wait for a CPU the actors hold
        ds.write_parquet(str(out), ray_remote_args={"num_cpus": 0})
        done.set()
        shards = sorted(str(p) for p in out.glob("*.parquet"))
        return store.put_vectors_from_parquet(key, shards)
    finally:
        done.set()
        if watcher is not None and watcher.is_alive():
            watcher.join()
        shutil.rmtree(out, ignore_errors=True)
