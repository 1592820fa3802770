"""Uploads read once into a columnar corpus on disk (issue 9): the same corpus as ``load_corpus``
and ``embex ingest`` give, parsed once per upload however often the page reruns, and saved in
batches. Peak memory itself is measured by benchmarks/bench_hostile.py, not asserted here."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import os
import re
import stat

import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.corpus import CorpusError, load_corpus, read_columnar
from analytics.errors import ParameterError
from analytics.store import Store, StoreError
from analytics.uploads import UploadCache, content_hash

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30
)


def _csv_bytes(header, rows, bom=False, newline="\n") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def _same(columnar, corpus) -> None:
    """The columnar read and the in-memory read hold the same corpus, as the store keeps it."""
    whole = columnar.to_corpus()
    assert whole.texts == corpus.texts
    stored = [json.loads(json.dumps(m, ensure_ascii=False, default=str)) for m in corpus.metadata]
    assert whole.metadata == stored
    assert (columnar.text_column, columnar.columns, columnar.notes) == (
        corpus.text_column,
        corpus.columns,
        corpus.notes,
    )
    assert columnar.skipped_rows == corpus.skipped_rows[:1000] and len(columnar) == len(corpus)
    assert columnar.head == list(zip(whole.texts, whole.metadata))[:50]
    assert columnar.chars == sum(map(len, corpus.texts)) + sum(
        len(v) for m in corpus.metadata for v in m.values() if isinstance(v, str)
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=40),
    ragged=st.booleans(),
    bom=st.booleans(),
    chunk_rows=st.integers(1, 7),
    fmt=st.sampled_from(["csv", "jsonl"]),
)
def test_a_columnar_read_is_the_in_memory_read(tmp_path, rows, ragged, bom, chunk_rows, fmt):
    """Any CSV or JSONL, read in chunks of any size into Arrow, gives load_corpus's corpus, or
    load_corpus's refusal word for word (ragged rows, empty texts, no text at all)."""
    if fmt == "csv":
        data = _csv_bytes(["text", "label"], [list(r) for r in rows], bom=bom)
        if ragged:
            data += b"one,two,three\n"
    else:
        lines = [
            json.dumps({"body": t, "n": i, "tag": label}, ensure_ascii=False)
            for i, (t, label) in enumerate(rows)
        ]
        if ragged:
            lines.append('{"body": "no end"')
        data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / f"in.{fmt}"
    path.write_bytes(data)
    out = tmp_path / "out.arrow"
    out.unlink(missing_ok=True)
    try:
        expected = load_corpus(path)
    except CorpusError as exc:
        with pytest.raises(CorpusError) as got:
            read_columnar(path, out, chunk_rows=chunk_rows)
        assert str(got.value) == str(exc)
        assert not out.exists() and not list(tmp_path.glob("*.part"))  # nothing left behind
        return
    _same(read_columnar(path, out, chunk_rows=chunk_rows), expected)


def test_a_columnar_read_keeps_parquet_and_named_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(
        pa.table({"id": [1, 2, 3], "body": ["α one", "", "three"], "score": [0.5, None, 2.0]}), path
    )
    _same(read_columnar(path, tmp_path / "p.arrow", chunk_rows=2), load_corpus(path))
    _same(read_columnar(path, tmp_path / "q.arrow", "id"), load_corpus(path, "id"))
    with pytest.raises(CorpusError, match="has no column 'nope'"):
        read_columnar(path, tmp_path / "r.arrow", "nope")
    # an upload's limits by default, checked while reading
    with pytest.raises(CorpusError, match="over the limit of 2 rows"):
        read_columnar(path, tmp_path / "s.arrow", max_rows=2)


def test_the_upload_cache_parses_once_and_names_files_by_content(tmp_path):
    cache = UploadCache(tmp_path / "uploads", max_uploads=2)
    assert stat.S_IMODE(os.stat(cache.folder).st_mode) == 0o700
    data = _csv_bytes(["text", "label"], [["first text", "a"], ["second", "b"], ["", "c"]])
    forged = "../" * 8 + "etc/evil.csv"  # a browser's name is a label, never a path
    first = cache.read(data, name=forged)
    assert cache.parses == 1 and first.n_docs == 2 and first.columns == ["label"]
    assert "Skipped 1 row(s) with empty text (rows 3)." in first.notes
    digest = content_hash(data)
    assert cache.cached(digest, forged) and not cache.cached(digest, forged, "label")
    for _ in range(3):  # reruns, and another session with the same bytes: the same answer
        assert cache.read(data, name=forged, digest=digest) is first
    assert cache.parses == 1
    names = sorted(p.name for p in cache.folder.iterdir())
    assert names[0] == f"{digest}.csv" and all(n.startswith(digest) for n in names), names
    assert not any("evil" in n for n in names)
    by_label = cache.read(data, name=forged, text_column="label")
    assert cache.parses == 2 and by_label.text_column == "label" and len(by_label) == 3
    assert cache.read(data, name=forged, text_column="label") is by_label and cache.parses == 2

    bad = b"text\n\x00\x00\n"  # refused, and the refusal is remembered, not read again
    for _ in range(2):
        with pytest.raises(CorpusError, match="NUL bytes"):
            cache.read(bad, name="bad.csv")
    assert cache.parses == 3
    cache.read(b"text\nthird upload\n", name="third.csv")  # evicts the least recent: the first
    assert not list(cache.folder.glob(f"{digest}*"))
    assert cache.read(data, name=forged) is not first and cache.parses == 5  # read again
    with pytest.raises(ParameterError, match="sha256 in hex"):  # a digest names files: never a path
        cache.read(data, name="x.csv", digest="../" * 4 + "a" * 52)
    assert cache.parses == 5 and not list(tmp_path.glob("*.csv"))


def test_a_columnar_corpus_is_saved_in_batches_as_add_corpus_saves_it(tmp_path, store):
    rows = [[f"text number {i}, ✓", f"label {i % 3}", str(i)] for i in range(50)] + [["", "x", "50"]]
    path = tmp_path / "c.csv"
    path.write_bytes(_csv_bytes(["text", "label", "n"], rows))
    columnar = read_columnar(path, tmp_path / "c.arrow", chunk_rows=7)
    assert sum(1 for _ in columnar) == 8  # eight record batches
    with pytest.raises(StoreError, match="no metadata column 'nope'"):
        store.add_corpus_stream("bad", columnar, label_column="nope")
    assert [c.name for c in store.list_corpora()] == []  # nothing was stored
    info = store.add_corpus_stream("columnar", columnar, label_column="label")
    store.add_corpus("memory", load_corpus(path), label_column="label")
    assert (info.n_docs, info.source, info.text_column, info.label_column) == (50, "c.csv", "text", "label")
    assert store.texts("columnar") == store.texts("memory")
    assert store.metadata("columnar") == store.metadata("memory")
    assert store.corpus_fingerprint("columnar") == store.corpus_fingerprint("memory")
    assert store.metadata("columnar", limit=2) == store.metadata("memory")[:2]


# --- the Upload page (AppTest: the page's own code, in this process) ------------------------------


def _shown(elements) -> list[str]:
    """The elements' texts without the markdown escapes that dashboard's plain() adds."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in elements]


def _big_csv(path, n: int = 120_000) -> bytes:
    """A multi-MB CSV that needs every part of the reader: a BOM, quoted commas, quotes and
    newlines, non-ASCII text, empty texts (skipped) and more rows than one chunk."""
    rows = []
    for i in range(n):
        text = f'Document {i}: naïve café, "quoted" ✓' if i % 7 else f"line one {i}\nline two"
        rows.append(["  " if i % 997 == 5 else text, ["World", "Sports", "Business"][i % 3], str(i)])
    data = _csv_bytes(["text", "label", "row"], rows, bom=True, newline="\r\n")
    path.write_bytes(data)
    return data


@pytest.fixture
def upload_app(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store_path = tmp_path / "page.duckdb"
    Store(store_path).close()
    monkeypatch.setenv("EMBEX_STORE", str(store_path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def open_upload():
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
        at.run()
        at.switch_page("views/upload.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield open_upload, store_path
    from analytics.jobs import shutdown_all

    shutdown_all()  # the page's executor and its store, so the file can be read here


def test_the_upload_page_stores_what_embex_ingest_stores_and_parses_once(tmp_path, upload_app):
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    from analytics.uploads import upload_cache

    open_upload, store_path = upload_app
    path = tmp_path / "big.csv"
    data = _big_csv(path)
    assert len(data) > 5 * 2**20

    at = open_upload()
    before = upload_cache().parses
    at.file_uploader[0].set_value(("big.csv", data, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert upload_cache().parses == before + 1
    n_empty = sum(1 for i in range(120_000) if i % 997 == 5)
    n = 120_000 - n_empty
    assert f"{n:,} texts; metadata columns: label, row" in _shown(at.markdown)
    assert any(f"Skipped {n_empty} row(s) with empty text" in c for c in _shown(at.caption))
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["text", "label", "row"] and len(preview) == 50
    assert preview["text"][0] == "line one 0\nline two"
    assert at.selectbox[1].value == "label"  # the label column guessed

    # more interactions: no new read of the file
    at.selectbox[1].set_value("row").run()
    at.text_input[0].input("uploaded big").run()
    at.selectbox[1].set_value("label").run()
    assert upload_cache().parses == before + 1
    # another text column is a read of its own, once
    at.selectbox[0].set_value("label").run()
    assert "120,000 texts; metadata columns: text, row" in _shown(at.markdown)
    at.selectbox[1].set_value("(none)").run()
    assert upload_cache().parses == before + 2
    at.selectbox[0].set_value("text").run()
    at.selectbox[1].set_value("label").run()
    assert upload_cache().parses == before + 2

    next(b for b in at.button if b.label == "Save corpus").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Saved uploaded big: {n:,} texts. Next: embed it." in _shown(at.success)
    assert upload_cache().parses == before + 2

    # what the page hands out shares the upload's bytes (no copy of the file per rerun)
    rec = UploadedFileRec(file_id="f", name="x.csv", type="text/csv", data=data)
    assert copy.deepcopy(UploadedFile(rec, None)).getvalue() is data

    from analytics.jobs import shutdown_all

    shutdown_all()
    ingest_store = tmp_path / "ingest.duckdb"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["ingest", str(path), "--name", "cli", "--store", str(ingest_store)]) == 0
    with Store(store_path, read_only=True) as page, Store(ingest_store, read_only=True) as cli:
        ours, theirs = page.corpus_info("uploaded big"), cli.corpus_info("cli")
        assert (ours.n_docs, ours.source, ours.text_column) == (
            theirs.n_docs,
            theirs.source,
            theirs.text_column,
        )
        assert ours.label_column == "label"
        assert page.texts("uploaded big") == cli.texts("cli")
        assert page.metadata("uploaded big") == cli.metadata("cli")
        assert page.corpus_fingerprint("uploaded big") == cli.corpus_fingerprint("cli")


def test_the_upload_page_refuses_a_file_over_a_limit_while_reading(upload_app):
    open_upload, _ = upload_app
    at = open_upload()
    data = b"text,label\n" + b"".join(b"t%d,a\n" % i for i in range(10)) + b"a,b,c\n"
    at.file_uploader[0].set_value(("ragged.csv", data, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _shown(at.error) == [
        "ragged.csv, line 12: 3 fields where the header has 2. Check the quoting and the delimiter "
        "(comma) on that line."
    ]
