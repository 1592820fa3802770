"""Embedding on a Ray cluster: a real local cluster (2 CPUs) started here, the real bundled model
on real news texts, a worker killed mid-run; and the store taking in Parquet shards of vectors.

The Ray tests skip where the ``ray`` extra is not installed; the store tests run everywhere.
"""

from __future__ import annotations

import glob
import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import make_corpus

from analytics.embedding import DEFAULT_MODEL, embed_corpus
from analytics.store import StoreError, _vector_table


def vector_rows(store, key: str) -> tuple[int, int]:
    """(rows, distinct text hashes) of ``key`` in the store's vector table."""
    dim = store.model_dim(key)
    if dim is None:
        return 0, 0
    return tuple(
        store._cur()
        .execute(
            "SELECT count(*), count(DISTINCT text_hash) FROM " + _vector_table(dim) + " WHERE model_id = ?",
            [key],
        )
        .fetchone()
    )


@pytest.fixture(scope="module")
def news(sample_rows):
    """Real texts, with repeats (a corpus may hold a text twice; it is embedded once)."""
    texts = [r["text"] for r in sample_rows[1000:1400]]
    return texts + texts[:25]


@pytest.fixture(scope="module")
def single_process(embedder, news, tmp_path_factory):
    """The corpus embedded by the single-process path (``embed_corpus``, float32 on the CPU):
    its report and vectors in document order."""
    from analytics.store import Store

    with Store(tmp_path_factory.mktemp("single") / "local.duckdb") as local:
        local.add_corpus("news", make_corpus(news))
        report = embed_corpus(local, "news", embedder)
        return report, local.vectors("news", report.model_id)


@pytest.fixture(scope="module")
def reference(single_process, news):
    """The single-process vector of every text, by text."""
    return dict(zip(news, single_process[1]))


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster with 2 CPUs, shut down after the module's tests."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def _check_one_vector_per_text(store, name, key, texts, reference):
    n_distinct = len(set(texts))
    assert vector_rows(store, key) == (n_distinct, n_distinct)
    assert store.embedded_count(name, key) == len(texts)  # every document joins exactly one row
    assert store.missing_texts(name, key) == []
    got = store.vectors(name, key)
    want = np.stack([reference[t] for t in texts])
    assert float(np.abs(got - want).max()) < 1e-5


# -- Ray: a real cluster, the real model ---------------------------------------------------------


def test_ray_vectors_equal_the_single_process_path(
    ray_cluster, tmp_path, embedder, news, single_process, reference
):
    from analytics.distributed import embed_corpus_ray
    from analytics.store import Store

    single, single_vectors = single_process
    with Store(tmp_path / "ray.duckdb") as remote:
        remote.add_corpus("news", make_corpus(news))
        seen = []
        report = embed_corpus_ray(
            remote,
            "news",
            precision="float32",
            num_actors=2,
            batch_size=32,
            progress=lambda done, total: seen.append((done, total)),
        )
        assert report.model_id == single.model_id == embedder.model_id == DEFAULT_MODEL
        assert (report.n_docs, report.n_cached, report.n_computed) == (len(news), 0, len(set(news)))
        assert seen[0] == (0, len(set(news))) and seen[-1] == (len(set(news)),) * 2
        diff = np.abs(remote.vectors("news", report.model_id) - single_vectors)
        assert float(diff.max()) < 1e-5
        _check_one_vector_per_text(remote, "news", report.model_id, news, reference)

        again = embed_corpus_ray(remote, "news", precision="float32", num_actors=2)
        assert (again.n_cached, again.n_computed) == (len(news), 0)
        assert vector_rows(remote, report.model_id) == (len(set(news)),) * 2


def _actor_pids() -> list[int]:
    """Processes of the embedding actors (Ray titles them ``ray::MapWorker(MapBatches(EmbedActor))``)."""
    pids = []
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ray::") and "EmbedActor" in cmd:
            pids.append(int(path.split("/")[2]))
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the actor's process through /proc")
def test_killing_a_worker_mid_run_still_ends_with_one_vector_per_text(ray_cluster, tmp_path, news, reference):
    from analytics.distributed import embed_corpus_ray
    from analytics.store import Store

    shards = tmp_path / "shards"
    n_distinct = len(set(news))
    killed: list[dict] = []
    finished = threading.Event()

    def kill_one_actor_after_the_first_shard() -> None:
        deadline = time.monotonic() + 240
        seen: set[int] = set()
        while not finished.is_set() and time.monotonic() < deadline:
            pids = _actor_pids()
            if killed:  # watch for the actor Ray starts in place of the dead one
                if set(pids) - seen:
                    killed[0]["replaced"] = True
                    return
            elif pids and glob.glob(str(shards / "**" / "*.parquet"), recursive=True):
                os.kill(pids[0], signal.SIGKILL)
                written = glob.glob(str(shards / "**" / "*.parquet"), recursive=True)
                killed.append({"pid": pids[0], "shards_before": len(written), "replaced": False})
            seen.update(pids)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor_after_the_first_shard, daemon=True)
    with Store(tmp_path / "ray.duckdb") as store:
        store.add_corpus("news", make_corpus(news))
        killer.start()
        try:
            # 16 texts a shard: ~25 shards, so the first is written long before the last
            report = embed_corpus_ray(
                store,
                "news",
                precision="float32",
                num_actors=2,
                batch_size=16,
                rows_per_shard=16,
                shard_dir=shards,
            )
        finally:
            finished.set()
            killer.join()
        assert killed, "no actor process was found and killed while the run was going"
        assert killed[0]["shards_before"] < -(-n_distinct // 16), "the kill came after the last shard"
        assert killed[0]["replaced"], "Ray did not start an actor in place of the killed one"
        assert report.n_computed == n_distinct and report.complete
        _check_one_vector_per_text(store, "news", report.model_id, news, reference)
    assert not any(shards.iterdir())  # the run's shards are removed once stored


def test_the_cli_embeds_with_the_ray_engine_under_the_local_key(ray_cluster, tmp_path, news, reference):
    """``--precision auto`` (the default) resolves on the driver for the actors' device: the key
    is the one the local engine writes here (``#bf16`` on a CPU with native bfloat16)."""
    from analytics.cli import main
    from analytics.embedding import Embedder, embedding_key
    from analytics.store import Store

    path = tmp_path / "cli.duckdb"
    texts = news[:40]
    with Store(path) as store:
        store.add_corpus("small", make_corpus(texts))
    assert (
        main(
            [
                "embed",
                "small",
                "--store",
                str(path),
                "--engine",
                "ray",
                "--actors",
                "1",
                "--batch-size",
                "16",
                "--json",
            ]
        )
        == 0
    )
    key = embedding_key(None, device="cpu")
    with Store(path) as store:
        assert store.model_ids() == [key]
        assert vector_rows(store, key) == (len(texts), len(texts))
        got = store.vectors("small", key)
    local = Embedder(device="cpu")  # the local engine's key and vectors, same settings
    assert local.model_id == key
    np.testing.assert_allclose(got, local.encode(texts), atol=1e-2)
    cos = np.sum(got * np.stack([reference[t] for t in texts]), axis=1)
    assert cos.min() > 0.999


def test_without_ray_the_error_says_which_extra_to_install(store, monkeypatch, news):
    import sys

    from analytics.distributed import embed_corpus_ray
    from analytics.embedding import ModelError

    store.add_corpus("news", make_corpus(news[:5]))
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is absent
    with pytest.raises(ModelError, match=r"pip install 'embedding-explorer\[ray\]'"):
        embed_corpus_ray(store, "news")


# -- the store taking in Parquet shards (no Ray needed) ------------------------------------------


def _write_shard(path, hashes, vectors):
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    pq.write_table(
        pa.table(
            {
                "text_hash": pa.array(hashes, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
            }
        ),
        path,
    )
    return str(path)


@pytest.fixture
def shard_texts(news, reference):
    from analytics.store import text_hash

    texts = list(dict.fromkeys(news))[:120]
    return texts, [text_hash(t) for t in texts], np.stack([reference[t] for t in texts])


def test_shards_that_overlap_the_cache_add_no_duplicate(store, tmp_path, shard_texts):
    texts, hashes, vectors = shard_texts
    store.add_corpus("news", make_corpus(texts))
    key = DEFAULT_MODEL
    assert store.put_vectors(key, hashes[:30], vectors[:30]) == 30  # already cached: 0..29
    a = _write_shard(tmp_path / "a.parquet", hashes[:80], vectors[:80])
    # b overlaps a (60..79) and repeats rows within itself (100..109 twice)
    b = _write_shard(
        tmp_path / "b.parquet",
        hashes[60:] + hashes[100:110],
        np.concatenate([vectors[60:], vectors[100:110]]),
    )
    assert store.put_vectors_from_parquet(key, [a, b]) == 90
    assert vector_rows(store, key) == (120, 120)
    assert store.put_vectors_from_parquet(key, [a, b]) == 0
    assert store.put_vectors_from_parquet(key, str(tmp_path / "*.parquet")) == 0  # a glob
    assert vector_rows(store, key) == (120, 120)
    assert float(np.abs(store.vectors("news", key) - vectors).max()) == 0.0
    assert store.put_vectors_from_parquet(key, []) == 0


def test_shards_of_a_new_model_register_it(store, tmp_path, shard_texts):
    texts, hashes, vectors = shard_texts
    store.add_corpus("news", make_corpus(texts))
    a = _write_shard(tmp_path / "a.parquet", hashes + hashes[:5], np.concatenate([vectors, vectors[:5]]))
    assert store.put_vectors_from_parquet("other-model#bf16", a) == 120
    assert store.model_dim("other-model#bf16") == 384
    assert vector_rows(store, "other-model#bf16") == (120, 120)


def test_a_shard_of_the_wrong_dimension_is_refused_and_nothing_changes(store, tmp_path, shard_texts):
    texts, hashes, vectors = shard_texts
    store.add_corpus("news", make_corpus(texts))
    store.put_vectors(DEFAULT_MODEL, hashes[:10], vectors[:10])
    before = store.digest()
    good = _write_shard(tmp_path / "good.parquet", hashes[10:60], vectors[10:60])
    short = _write_shard(tmp_path / "short.parquet", hashes[60:], vectors[60:, :383])

    with pytest.raises(StoreError, match="384-d vectors in this store; the shards hold 383-d"):
        store.put_vectors_from_parquet(DEFAULT_MODEL, short)
    with pytest.raises(StoreError, match="different lengths"):
        store.put_vectors_from_parquet(DEFAULT_MODEL, [good, short])
    with pytest.raises(StoreError, match="different lengths"):  # a model not yet in the store
        store.put_vectors_from_parquet("new-model", [good, short])
    with pytest.raises(StoreError, match="Could not read the vector shards"):
        store.put_vectors_from_parquet(DEFAULT_MODEL, [str(tmp_path / "absent.parquet")])
    assert store.digest() == before
    assert store.model_dim("new-model") is None
