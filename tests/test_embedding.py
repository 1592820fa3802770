"""Embedding into the store with the real bundled model: cached, resumable, crash-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, make_corpus

from analytics.embedding import (
    DEFAULT_MODEL,
    Embedder,
    ModelError,
    embed_corpus,
    import_vectors,
    model_id_for,
)
from analytics.store import Store


@pytest.fixture
def count_calls(embedder):
    """Count the texts that really reach the model (the real forward pass still runs)."""
    real = embedder.engine._forward
    seen: list[int] = []

    def counting(ids, lengths):
        seen.append(len(ids))
        return real(ids, lengths)

    embedder.engine._forward = counting
    yield seen
    embedder.engine._forward = real


@pytest.fixture(scope="module")
def news(sample_rows):
    return [r["text"] for r in sample_rows[:640]]


def test_default_model_is_the_bundled_one_offline(embedder):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert embedder.model_id == DEFAULT_MODEL == model_id_for(None) == model_id_for("all-MiniLM-L6-v2")
    assert (embedder.dim, embedder.max_seq_length, embedder.device) == (384, 256, "cpu")
    v = embedder.encode(["A sentence about football.", "Une phrase sur le football."])
    assert v.dtype == np.float32 and v.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert 0.3 < float(v[0] @ v[1]) < 0.999


def test_a_model_that_is_not_here_is_a_clear_error_not_a_download():
    with pytest.raises(ModelError, match="Nothing is downloaded at run time"):
        Embedder("someone/model-that-is-not-cached-here")


def test_second_embed_computes_nothing(store, embedder, news, count_calls):
    store.add_corpus("news", make_corpus(news[:100]))
    first = embed_corpus(store, "news", embedder)
    assert (first.n_cached, first.n_computed, first.stopped) == (0, 100, False)
    assert sum(count_calls) == 100
    count_calls.clear()
    second = embed_corpus(store, "news", embedder)
    assert (second.n_cached, second.n_computed) == (100, 0)
    assert count_calls == []
    assert "100 of 100 texts in 'news' were already embedded" in second.summary()
    np.testing.assert_allclose(store.vectors("news", DEFAULT_MODEL), embedder.encode(news[:100]), atol=1e-5)


def test_corpora_sharing_texts_share_cache_rows(store, embedder, news, count_calls):
    store.add_corpus("a", make_corpus(news[:60]))
    store.add_corpus("b", make_corpus(news[40:100]))  # 20 texts in common
    embed_corpus(store, "a", embedder)
    count_calls.clear()
    report = embed_corpus(store, "b", embedder)
    assert (report.n_cached, report.n_computed) == (20, 40)
    assert sum(count_calls) == 40
    rows = (
        store._cur()
        .execute(
            "SELECT count(*), count(DISTINCT text_hash) FROM embeddings_384 WHERE model_id = ?",
            [DEFAULT_MODEL],
        )
        .fetchall()
    )
    assert rows == [(100, 100)]
    np.testing.assert_array_equal(
        store.vectors("a", DEFAULT_MODEL)[40:], store.vectors("b", DEFAULT_MODEL)[:20]
    )


def test_stop_flag_progress_and_resume(store, embedder, news):
    import threading

    store.add_corpus("news", make_corpus(news[:200]))
    calls: list[tuple[int, int]] = []
    stop = threading.Event()

    def progress(done, total):
        calls.append((done, total))
        if done >= 64:
            stop.set()

    first = embed_corpus(store, "news", embedder, commit_every=32, progress=progress, should_stop=stop)
    assert first.stopped and first.n_computed == 64
    assert calls[0] == (0, 200) and calls[-1] == (64, 200)
    assert "run embed again to resume" in first.summary()
    assert store.embedded_count("news", DEFAULT_MODEL) == 64
    second = embed_corpus(store, "news", embedder)
    assert (second.n_cached, second.n_computed, second.stopped) == (64, 136, False)


def test_truncated_texts_are_counted(store, embedder):
    long_text = " ".join(["statistics"] * 400)
    store.add_corpus("long", make_corpus(["short one", long_text]))
    report = embed_corpus(store, "long", embedder)
    assert report.n_truncated == 1
    assert "256-token limit" in report.summary()


def test_killed_mid_run_resumes_to_exactly_one_vector_per_text(tmp_path, embedder, news):
    path = tmp_path / "crash.duckdb"
    with Store(path) as s:
        s.add_corpus("news", make_corpus(news))
    script = tmp_path / "embed_child.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from analytics.store import Store
        from analytics.embedding import Embedder, embed_corpus
        store = Store({str(path)!r})
        embedder = Embedder(device="cpu", precision="float32", batch_size=16)
        def progress(done, total):
            print("progress", done, flush=True)
        embed_corpus(store, "news", embedder, commit_every=32, progress=progress)
        print("finished", flush=True)
    """)
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        for line in child.stdout:
            if line.startswith("progress") and int(line.split()[1]) >= 160:
                child.send_signal(signal.SIGKILL)
                break
            assert not line.startswith("finished"), "the child finished before it could be killed"
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    with Store(path) as s:
        partial = s.embedded_count("news", DEFAULT_MODEL)
        assert 128 <= partial < len(news)  # committed batches survived, the rest did not
        report = embed_corpus(s, "news", embedder)
        assert report.n_cached == partial and report.n_computed == len(news) - partial
        dup = (
            s._cur()
            .execute(
                "SELECT count(*), count(DISTINCT text_hash) FROM embeddings_384 WHERE model_id = ?",
                [DEFAULT_MODEL],
            )
            .fetchall()
        )
        assert dup == [(len(set(news)), len(set(news)))]
        resumed = s.vectors("news", DEFAULT_MODEL)
    with Store(tmp_path / "clean.duckdb") as clean:
        clean.add_corpus("news", make_corpus(news))
        embed_corpus(clean, "news", embedder)
        np.testing.assert_allclose(resumed, clean.vectors("news", DEFAULT_MODEL), atol=1e-5)


def test_import_precomputed_vectors(store):
    store.add_corpus("pre", make_corpus(["a", "b", "c"]))
    V = np.array([[3.0, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 5]], dtype=np.float32)
    assert import_vectors(store, "pre", V, "my-provider") == 3
    np.testing.assert_allclose(
        store.vectors("pre", "my-provider"), V / np.linalg.norm(V, axis=1, keepdims=True)
    )
    assert import_vectors(store, "pre", V[::-1], "my-provider", ids=[2, 1, 0]) == 0  # cached already
    with pytest.raises(ValueError, match="2 vectors for 3 documents"):
        import_vectors(store, "pre", V[:2], "other")
    from analytics.corpus import CorpusError

    with pytest.raises(CorpusError, match="dimension 3, but this model's are 4"):
        import_vectors(store, "pre", V[:, :3], "my-provider")
    with pytest.raises(CorpusError, match="NaN or inf"):
        import_vectors(store, "pre", np.where(V == 0, np.nan, V), "third")
    assert store.model_dim("other") is None and store.model_dim("third") is None
