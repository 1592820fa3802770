"""The DuckDB store, on a real file: schema and migrations, corpora, the vector cache, bound
parameters, and concurrent use from threads."""

from __future__ import annotations

import subprocess
import sys
import threading

import duckdb
import numpy as np
import pytest
from conftest import HOSTILE, make_corpus

from analytics.corpus import CorpusError, load_corpus, load_vectors
from analytics.store import SCHEMA_VERSION, Store, StoreError, text_hash


def unit_vectors(n, d=8, seed=0):
    V = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def test_fresh_store_is_at_the_current_schema(store):
    assert store.schema_version() == SCHEMA_VERSION == 7
    assert store.list_corpora() == []


def test_migration_on_open_keeps_data(tmp_path):
    path = tmp_path / "old.duckdb"
    with Store(path, migrate_to=1) as old:  # a store as version 1 of the program wrote it
        assert old.schema_version() == 1
        cur = old._cur()
        cur.execute("INSERT INTO corpora (name, source, text_column, n_docs) VALUES ('kept', 'x', 'text', 2)")
        for pos, t in enumerate(["a", "b"]):
            cur.execute("INSERT INTO documents VALUES (1, ?, ?, ?, '{}')", [pos, text_hash(t), t])
    with duckdb.connect(str(path)) as con:
        assert not con.execute(
            "SELECT * FROM information_schema.tables WHERE table_name='results'"
        ).fetchall()
    with Store(path) as new:
        assert new.schema_version() == SCHEMA_VERSION
        assert new.texts("kept") == ["a", "b"]
        # v4 backfilled the fingerprint with the value add_corpus computes for the same texts
        new.add_corpus("same texts", make_corpus(["a", "b"]))
        assert new.corpus_fingerprint("kept") == new.corpus_fingerprint("same texts")
        new.add_corpus("same texts", make_corpus(["b", "a"]), replace=True)  # order is content
        assert new.corpus_fingerprint("kept") != new.corpus_fingerprint("same texts")
        assert new._cur().execute("SELECT count(*) FROM results").fetchall() == [(0,)]
        assert new.corpus_info("kept").label_column is None  # v3's column, added to old rows
        new.add_corpus("labelled", make_corpus(["c"], ["x"]), label_column="label")
        assert new.corpus_info("labelled").label_column == "label"
        with pytest.raises(StoreError, match="no metadata column 'topic'"):
            new.add_corpus("bad label", make_corpus(["c"]), label_column="topic")


def test_store_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "future.duckdb"
    with Store(path) as s:
        s._cur().execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="newer Embedding Explorer"):
        Store(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database")
    with pytest.raises(StoreError, match="cannot be opened as a store") as err:
        Store(path)
    assert "fresh" not in str(err.value)
    assert path.read_text() == "these are my notes, not a database"


def test_a_store_open_in_another_process_gives_a_clear_error(tmp_path):
    path = tmp_path / "busy.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from analytics.store import Store; s = Store({str(path)!r}); print('open', flush=True); "
            "import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="open in another process"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()


def test_corpus_round_trip_rename_replace_delete(store):
    info = store.add_corpus("news", make_corpus(["a", "b", "c"], ["x", "y", "z"], source="n.csv"))
    assert (info.name, info.n_docs, info.source, info.text_column) == ("news", 3, "n.csv", "text")
    assert store.texts("news") == ["a", "b", "c"]
    assert store.metadata("news") == [{"label": "x"}, {"label": "y"}, {"label": "z"}]
    with pytest.raises(StoreError, match="already exists"):
        store.add_corpus("news", make_corpus(["d"]))
    store.add_corpus("news", make_corpus(["d"]), replace=True)
    assert store.texts("news") == ["d"]
    store.rename_corpus("news", "renamed")
    assert [c.name for c in store.list_corpora()] == ["renamed"]
    store.delete_corpus("renamed")
    with pytest.raises(StoreError, match="No corpus named 'renamed'. Known corpora: none yet"):
        store.texts("renamed")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "tab\there", None])
def test_bad_corpus_names(store, bad):
    with pytest.raises(StoreError, match="corpus name"):
        store.add_corpus(bad, make_corpus(["a"]))


def test_sql_in_names_texts_and_columns_is_data(store):
    evil = "x'); DROP TABLE corpora; --"
    store.add_corpus(evil, load_corpus(HOSTILE / "sql_column.csv", "label"))
    store.add_corpus("sql col", load_corpus(HOSTILE / "sql_column.csv", '"; DROP TABLE documents; --'))
    assert [c.name for c in store.list_corpora()] == [evil, "sql col"]
    assert store.texts("sql col") == ["Robert'); DROP TABLE corpora; --", "plain text"]
    assert store.metadata(evil)[0] == {'"; DROP TABLE documents; --': "Robert'); DROP TABLE corpora; --"}
    assert {"corpora", "documents", "models", "results", "schema_version"} <= set(store.digest())


def test_vectors_are_cached_once_per_model_and_text(store):
    store.add_corpus("a", make_corpus(["one", "two", "three"]))
    store.add_corpus("b", make_corpus(["two", "three", "four", "two"]))
    V = {t: v for t, v in zip(["one", "two", "three", "four"], unit_vectors(4))}
    missing_a = store.missing_texts("a", "m")
    assert sorted(t for _, t in missing_a) == ["one", "three", "two"]
    assert store.put_vectors("m", [h for h, _ in missing_a], np.stack([V[t] for _, t in missing_a])) == 3
    # b shares two texts with a: only "four" is missing, once though b holds "two" twice
    assert [t for _, t in store.missing_texts("b", "m")] == ["four"]
    assert store.put_vectors("m", [text_hash("four"), text_hash("two")], np.stack([V["four"], V["two"]])) == 1
    rows = store._cur().execute("SELECT count(*), count(DISTINCT text_hash) FROM embeddings_8").fetchall()
    assert rows == [(4, 4)]
    np.testing.assert_array_equal(
        store.vectors("b", "m"), np.stack([V[t] for t in ["two", "three", "four", "two"]])
    )
    assert store.embedded_count("b", "m") == 4
    # deleting a leaves b's vectors, including the shared ones, intact
    store.delete_corpus("a")
    np.testing.assert_array_equal(
        store.vectors("b", "m"), np.stack([V[t] for t in ["two", "three", "four", "two"]])
    )
    # pruning named texts drops only those of them no corpus uses
    assert store.prune_vectors(hashes=[text_hash("one"), text_hash("two")], model_id="other") == 0
    assert store.prune_vectors(hashes=[text_hash("two")]) == 0  # b still uses "two"
    assert store.prune_vectors(hashes=[text_hash("one")], model_id="m") == 1  # "one" belonged to a only
    assert store.prune_vectors() == 0


def test_missing_vectors_and_wrong_dimension_are_reported(store):
    store.add_corpus("a", make_corpus(["one", "two"]))
    with pytest.raises(StoreError, match="Nothing in this store is embedded with 'm'"):
        store.vectors("a", "m")
    store.put_vectors("m", [text_hash("one")], unit_vectors(1))
    with pytest.raises(StoreError, match="1 of 2 texts in 'a' have no vector for 'm'; run embed"):
        store.vectors("a", "m")
    with pytest.raises(StoreError, match="has 8-d vectors in this store, not 5-d"):
        store.put_vectors("m", [text_hash("two")], unit_vectors(1, d=5))


def test_hostile_files_leave_the_store_unchanged(store):
    store.add_corpus("keep", make_corpus(["alpha", "beta"]))
    store.put_vectors("m", [text_hash("alpha"), text_hash("beta")], unit_vectors(2))
    before = store.digest()
    for path in sorted(HOSTILE.iterdir()):
        if path.suffix == ".md" or path.name == "sql_column.csv":
            continue
        with pytest.raises((CorpusError, StoreError)):
            if path.suffix == ".npy" or path.name.startswith("ragged_vectors"):
                vectors, _ = load_vectors(path)
                store.put_vectors("m", [text_hash("alpha")] * len(vectors), vectors)
            else:
                store.add_corpus("keep", load_corpus(path), replace=True)
    assert store.digest() == before
    np.testing.assert_array_equal(store.vectors("keep", "m"), unit_vectors(2))


def test_a_failed_write_rolls_back_whole(store):
    store.add_corpus("keep", make_corpus(["alpha"]))
    before = store.digest()
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction() as cur:
            cur.execute("DELETE FROM documents")
            raise RuntimeError("boom")
    assert store.digest() == before


def test_concurrent_reads_while_two_threads_write(store):
    store.add_corpus("stable", make_corpus([f"s{i}" for i in range(200)]))
    expected = unit_vectors(200, seed=1)
    store.put_vectors("m", [text_hash(f"s{i}") for i in range(200)], expected)
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(tag: str) -> None:
        try:
            for k in range(15):
                texts = [f"{tag}-{k}-{i}" for i in range(50)]
                store.add_corpus(f"{tag}{k}", make_corpus(texts))
                store.put_vectors("m", [text_hash(t) for t in texts], unit_vectors(50, seed=k))
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                np.testing.assert_array_equal(store.vectors("stable", "m"), expected)
                names = [c.name for c in store.list_corpora()]
                assert names[0] == "stable"
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(t,)) for t in ("w", "v")]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(timeout=120)
    done.set()
    for t in readers:
        t.join(timeout=30)
    assert not errors, errors
    assert len(store.list_corpora()) == 31
    assert store._cur().execute("SELECT count(*) FROM embeddings_8").fetchall() == [(200 + 2 * 15 * 50,)]


# --- streamed ingest: add_corpus_stream ----------------------------------------------------------

import csv  # noqa: E402
import json  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from analytics.corpus import stream_corpus  # noqa: E402
from analytics.store import _fingerprint, _one  # noqa: E402

STREAM_ROWS = [
    {"text": 'first, "quoted"\nsecond line', "label": "a"},
    {"text": "   ", "label": "b"},
    {"text": "naïve café ✓ 🙂", "label": "c"},
    {"text": "dup", "label": "d"},
    {"text": "", "label": "e"},
    {"text": "dup", "label": "f"},
] + [{"text": f"text number {i}", "label": "g"} for i in range(20)]


def write_corpus(path, rows):
    fmt = path.suffix.lstrip(".")
    if fmt in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["text", "label"], delimiter="," if fmt == "csv" else "\t")
            w.writeheader()
            w.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=4)
    else:
        path.write_text("".join(r["text"].replace("\n", " ") + "\n" for r in rows), encoding="utf-8")
    return path


def documents(store, name):
    """(position, text_hash, text, metadata) of a corpus's stored rows, in order."""
    cid = store._corpus_id(name)
    return (
        store._cur()
        .execute(
            "SELECT position, text_hash, text, metadata FROM documents WHERE corpus_id = ? ORDER BY position",
            [cid],
        )
        .fetchall()
    )


def assert_stored_alike(store, a, b):
    assert documents(store, a) == documents(store, b)
    ia, ib = store.corpus_info(a), store.corpus_info(b)
    assert (ia.n_docs, ia.source, ia.text_column, ia.label_column) == (
        ib.n_docs,
        ib.source,
        ib.text_column,
        ib.label_column,
    )
    fp = store.corpus_fingerprint(a)
    assert fp == store.corpus_fingerprint(b)
    hashes = [row[1] for row in documents(store, a)]
    assert (
        fp
        == _fingerprint(hashes)
        == _one(  # and the v4 migration's SQL over the table
            store._cur(),
            "SELECT sha256(string_agg(text_hash, ',' ORDER BY position)) FROM documents WHERE corpus_id = ?",
            [store._corpus_id(b)],
        )[0]
    )


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "txt"])
def test_streamed_corpus_is_stored_as_the_in_memory_one(store, tmp_path, fmt):
    path = write_corpus(tmp_path / f"c.{fmt}", STREAM_ROWS)
    label = None if fmt == "txt" else "label"
    store.add_corpus("memory", load_corpus(path), label_column=label)
    seen = []
    info = store.add_corpus_stream(
        "streamed",
        stream_corpus(path, chunk_rows=3),
        label_column=label,
        progress=lambda n, b: seen.append((n, b)),
    )
    assert info.n_docs == len(load_corpus(path)) == len(STREAM_ROWS) - 2
    assert_stored_alike(store, "memory", "streamed")
    assert store.texts("streamed") == load_corpus(path).texts
    assert store.metadata("streamed") == load_corpus(path).metadata
    # progress: documents stored so far, growing to all; bytes read, growing to the file's size
    assert [n for n, _ in seen] == sorted({n for n, _ in seen}) and seen[-1][0] == info.n_docs
    assert [b for _, b in seen] == sorted(b for _, b in seen) and seen[-1][1] == path.stat().st_size


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(
        st.text(
            st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=10
        ).filter(str.strip),
        min_size=1,
        max_size=20,
    ),
    chunk_rows=st.integers(1, 7),
)
def test_any_chunking_stores_the_same_corpus(store, tmp_path, texts, chunk_rows):
    path = write_corpus(tmp_path / "h.jsonl", [{"text": t, "n": i} for i, t in enumerate(texts)])
    store.add_corpus("one read", load_corpus(path), replace=True)
    store.add_corpus_stream("chunked", stream_corpus(path, chunk_rows=chunk_rows), replace=True)
    assert_stored_alike(store, "one read", "chunked")
    assert store.corpus_fingerprint("chunked") == _fingerprint([text_hash(t) for t in texts])


def test_a_stream_failing_mid_file_leaves_every_table_unchanged(store, tmp_path):
    store.add_corpus("keep", make_corpus(["alpha", "beta"], source="keep.csv"))
    store.put_vectors("m", [text_hash("alpha"), text_hash("beta")], unit_vectors(2))
    before = store.digest()
    good = "".join(f"document {i},x\n" for i in range(1, 2000))  # 30 KB: the bad bytes come late
    bad = {
        "late_bytes.csv": ("text,label\n" + good).encode() + b"caf\xe9,y\n",
        "late_ragged.csv": ("text,label\n" + good + "a,b,c\n").encode(),
        "late_quote.csv": ("text,label\n" + good + '"open,x\n').encode(),
        "late_json.jsonl": "".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(2000)).encode()
        + b"{\n",
        "late_empty.csv": ("text,label\n" + good + ",x\n").encode(),
    }
    for name, data in bad.items():
        path = tmp_path / name
        path.write_bytes(data)
        written = []
        for target, replace in (("keep", True), ("new", False)):
            with pytest.raises(CorpusError):
                store.add_corpus_stream(
                    target,
                    stream_corpus(path, chunk_rows=16, empty="error"),
                    replace=replace,
                    progress=lambda n, b: written.append(n),
                )
        assert max(written) >= 1500, name  # chunks were written before the error: all undone
        assert store.digest() == before, name
    assert store.texts("keep") == ["alpha", "beta"] and store.corpus_info("keep").source == "keep.csv"
    np.testing.assert_array_equal(store.vectors("keep", "m"), unit_vectors(2))

    def interrupted():
        yield ["one", "two"], [{}, {}]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.add_corpus_stream("keep", interrupted(), replace=True)
    assert store.digest() == before


def test_stream_label_column_names_and_empty_streams(store, tmp_path):
    path = write_corpus(tmp_path / "l.csv", STREAM_ROWS)
    before = store.digest()
    with pytest.raises(StoreError, match="no metadata column 'topic'"):
        store.add_corpus_stream("l", stream_corpus(path, chunk_rows=2), label_column="topic")
    with pytest.raises(StoreError, match="no documents; nothing was stored"):
        store.add_corpus_stream("l", iter([([], [])]))
    with pytest.raises(StoreError, match="2 texts but 1 metadata rows"):
        store.add_corpus_stream("l", [(["a", "b"], [{}])])
    with pytest.raises(StoreError, match="corpus name"):
        store.add_corpus_stream("  ", [(["a"], [{}])])
    assert store.digest() == before
    # plain (texts, metadata) pairs work too; source and text column are then the caller's
    info = store.add_corpus_stream(
        "pairs",
        [(["a", "b"], [{"k": 1}, {"k": 2}]), (["c"], [{"k": 3}])],
        source="api",
        text_column="body",
        label_column="k",
    )
    assert (info.n_docs, info.source, info.text_column, info.label_column) == (3, "api", "body", "k")
    assert store.corpus_fingerprint("pairs") == _fingerprint([text_hash(t) for t in "abc"])
    with pytest.raises(StoreError, match="already exists"):
        store.add_corpus_stream("pairs", [(["d"], [{}])])
    store.add_corpus_stream("pairs", stream_corpus(path), replace=True, label_column="label")
    assert store.corpus_info("pairs").source == "l.csv" and store.texts("pairs")[0].startswith("first")


def test_names_are_stripped_on_lookup_as_on_write(store):
    from conftest import make_corpus

    store.add_corpus("  news  ", make_corpus(["a text", "another text"]))
    assert [c.name for c in store.list_corpora()] == ["news"]
    assert store.corpus_info(" news").n_docs == store.corpus_info("news ").n_docs == 2
    assert store.texts("\tnews") == ["a text", "another text"]
    store.delete_corpus(" news ")
    assert store.list_corpora() == []


def test_selections_are_kept_by_id_and_go_with_their_corpus(store):
    store.add_corpus("c", make_corpus(["a", "b", "c", "d"]))
    sid = store.save_selection("c", [3, 1, 1])
    assert store.save_selection("c", [1, 3]) == sid  # same rows, same id
    name, rows = store.selection(sid)
    assert name == "c" and rows.tolist() == [1, 3]
    assert store.selection("nope") is None
    with pytest.raises(StoreError, match="outside 0..3"):
        store.save_selection("c", [4])
    store.rename_corpus("c", "renamed")
    assert store.selection(sid)[0] == "renamed"
    store.delete_corpus("renamed")
    assert store.selection(sid) is None


def test_marks_outlive_the_connection_and_can_be_taken_off(tmp_path):
    path = tmp_path / "marks.duckdb"
    with Store(path) as s:
        s.add_corpus("c", make_corpus(["a", "b", "c"]))
        s.set_marks("c", [0, 2], "reviewed", user="ana")
        with pytest.raises(StoreError, match="outside"):
            s.set_marks("c", [-1], "reviewed", user="ana")
    with Store(path) as s:
        marks = s.marks("c", "reviewed")
        assert sorted(marks) == [0, 2] and marks[0][0] == "ana"
        s.set_marks("c", [0], "reviewed", user="ana", on=False)
        assert list(s.marks("c", "reviewed")) == [2] and s.marks("c", "flagged") == {}


def test_running_out_of_memory_is_a_limit_to_raise_not_damage(tmp_path, monkeypatch):
    from analytics import import_vectors

    path = tmp_path / "oom.duckdb"
    n = 8_000
    with Store(path) as s:
        s.add_corpus("big", make_corpus([f"t{i}" for i in range(n)]))
        import_vectors(s, "big", np.random.default_rng(0).normal(size=(n, 384)).astype(np.float32), "m")
        before = s.digest()
    monkeypatch.setenv("EMBEX_DUCKDB_MEMORY", "1MB")
    with pytest.raises(
        StoreError, match="ran out of memory.*EMBEX_DUCKDB_MEMORY.*Nothing in the store was changed"
    ):
        with Store(path) as s:
            s.vectors("big", "m")
    monkeypatch.delenv("EMBEX_DUCKDB_MEMORY")
    with Store(path) as s:  # not marked damaged: it opens and reads as before
        assert s.digest() == before and s.vectors("big", "m").shape == (n, 384)
