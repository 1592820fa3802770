"""Loading corpora and precomputed vectors: every format, inference, and hostile files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import HOSTILE

from analytics.corpus import CorpusError, load_corpus, load_vectors


@pytest.fixture(scope="module")
def rows(sample_rows):
    return sample_rows[:50]


def write_format(path, rows, fmt):
    if fmt in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["label", "text"], delimiter="," if fmt == "csv" else "\t")
            w.writeheader()
            w.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif fmt == "txt":
        path.write_text("\n".join(r["text"] for r in rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "txt"])
def test_every_format_loads_the_same_texts(tmp_path, rows, fmt):
    path = tmp_path / f"news.{fmt}"
    write_format(path, rows, fmt)
    c = load_corpus(path)
    assert c.texts == [r["text"] for r in rows]
    assert c.text_column == "text"
    if fmt != "txt":
        assert [m["label"] for m in c.metadata] == [r["label"] for r in rows]
        assert "Using column 'text'" in c.notes[0]


def test_text_column_inferred_by_length_and_reported(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,body_of_post,tag\n1,a long enough post about things,x\n2,another long post here,y\n")
    c = load_corpus(path)
    assert c.text_column == "body_of_post"
    assert "longest strings" in c.notes[0]
    assert c.metadata[0] == {"id": "1", "tag": "x"}


def test_named_text_column_and_missing_one(tmp_path, rows):
    path = tmp_path / "n.csv"
    write_format(path, rows, "csv")
    assert load_corpus(path, "label").texts[0] == rows[0]["label"]
    with pytest.raises(CorpusError, match=r"no column 'body'; its columns are: 'label', 'text'"):
        load_corpus(path, "body")


def test_empty_texts_are_skipped_and_reported_or_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("text,label\nfirst,a\n   ,b\nthird,c\n,d\n")
    c = load_corpus(path)
    assert c.texts == ["first", "third"] and c.skipped_rows == [2, 4]
    assert "Skipped 2 row(s) with empty text (rows 2, 4)" in c.notes[-1]
    with pytest.raises(CorpusError, match="2 of 4 rows have an empty text"):
        load_corpus(path, empty="error")


def test_utf8_bom_bytes_input_and_explicit_encoding(tmp_path):
    c = load_corpus("\ufefftext\nhéllo\n".encode("utf-8"), name="up.csv")
    assert c.text_column == "text" and c.texts == ["héllo"]
    c = load_corpus(HOSTILE / "latin1.csv", encoding="latin-1")
    assert c.texts == ["café au lait", "naïve"]


def test_size_limit_refuses_before_parsing(tmp_path, rows):
    path = tmp_path / "big.csv"
    write_format(path, rows, "csv")
    with pytest.raises(CorpusError, match=r"over the 0 MiB limit\. Split it, or raise the limit"):
        load_corpus(path, max_bytes=1000)


HOSTILE_CORPORA = {
    "latin1.csv": r"not valid utf-8: byte 0xe9 at line 2 .* encoding='latin-1'",
    "utf16.csv": "does not look like a text file .* UTF-16",
    "garbage.csv": "does not look like a text file",
    "garbage.parquet": "could not be read as Parquet",
    "zero_bytes.csv": "is empty",
    "header_only.csv": "has a header but no rows",
    "whitespace_texts.csv": r"3 of 3 rows have an empty text in column 'text'",
    "ragged_rows.csv": "line 3: 3 fields where the header has 2",
    "unterminated_quote.csv": "not well-formed CSV",
    "bad_line.jsonl": "line 2: not valid JSON",
    "not_objects.jsonl": "line 1: expected a JSON object",
}


@pytest.mark.parametrize("name, message", sorted(HOSTILE_CORPORA.items()))
def test_hostile_corpus_files_get_clear_errors(name, message):
    with pytest.raises(CorpusError, match=message):
        load_corpus(HOSTILE / name)


def test_sql_looking_column_is_just_a_name():
    c = load_corpus(HOSTILE / "sql_column.csv", '"; DROP TABLE documents; --')
    assert c.texts == ["Robert'); DROP TABLE corpora; --", "plain text"]


HOSTILE_VECTORS = {
    "nan_vectors.npy": r"1 vector\(s\) contain NaN or inf \(rows \[0\]\)",
    "one_d_vectors.npy": r"expected a 2-D array",
    "pickled_object.npy": "could not be read as vectors",
    "ragged_vectors.parquet": "have different lengths",
}


@pytest.mark.parametrize("name, message", sorted(HOSTILE_VECTORS.items()))
def test_hostile_vector_files_get_clear_errors(name, message):
    with pytest.raises(CorpusError, match=message):
        load_vectors(HOSTILE / name)


def test_vectors_from_npz_and_parquet(tmp_path):
    V = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    np.savez(tmp_path / "v.npz", vectors=V, ids=np.array([3, 2, 1, 0]))
    got, ids = load_vectors(tmp_path / "v.npz")
    np.testing.assert_array_equal(got, V)
    assert ids == [3, 2, 1, 0]
    pq.write_table(pa.table({"id": [0, 1, 2, 3], "emb": V.tolist()}), tmp_path / "v.parquet")
    got, ids = load_vectors(tmp_path / "v.parquet")
    np.testing.assert_allclose(got, V)
    assert ids == [0, 1, 2, 3]


# --- streaming: stream_corpus reads a file in chunks and must agree with load_corpus -----------

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from analytics.corpus import stream_corpus  # noqa: E402

#: rows a user's file can hold: quoted multi-line fields, quotes, delimiters, unicode (also a
#: raw U+2028, which str.splitlines would split), empty and whitespace-only texts
TRICKY_ROWS = [
    {"label": "a", "text": 'line one\nline two, with "quotes"'},
    {"label": "b", "text": "crlf\r\ninside\ta field"},
    {"label": "c", "text": "   "},
    {"label": "d", "text": "héllo wörld ✓ 日本語 🙂"},
    {"label": "e", "text": ""},
    {"label": "f", "text": "para\u2028sep and \u0085 next-line"},
    {"label": "g", "text": "plain"},
]


def stream_all(path, *args, **kwargs):
    """A whole streamed file as (texts, metadata, stream), checking the chunks on the way."""
    stream = stream_corpus(path, *args, **kwargs)
    texts, metadata, rows_read = [], [], 0
    for chunk in stream:
        assert chunk.texts and len(chunk.texts) == len(chunk.metadata)
        assert chunk.rows_read > rows_read and len(chunk.texts) <= stream.chunk_rows
        rows_read = chunk.rows_read
        texts += chunk.texts
        metadata += chunk.metadata
    return texts, metadata, stream


def assert_same_as_loaded(path, *, chunk_rows, **kwargs):
    """stream_corpus and load_corpus give the same result, or the same CorpusError."""
    try:
        loaded = load_corpus(path, **kwargs)
    except CorpusError as exc:
        with pytest.raises(CorpusError) as streamed:
            stream_all(path, chunk_rows=chunk_rows, **kwargs)
        assert str(streamed.value) == str(exc)
        return None
    texts, metadata, stream = stream_all(path, chunk_rows=chunk_rows, **kwargs)
    assert texts == loaded.texts and metadata == loaded.metadata
    assert stream.text_column == loaded.text_column and stream.source == loaded.source
    assert stream.skipped_rows == loaded.skipped_rows[:1000]
    assert stream.n_skipped == len(loaded.skipped_rows) and stream.n_docs == len(loaded)
    assert stream.notes == loaded.notes
    assert stream.columns == loaded.columns or not loaded.metadata
    return loaded


def write_rows(path, rows, fmt, row_group_size=None):
    """Like write_format, with csv's default \\r\\n endings and raw unicode in JSON."""
    if fmt in ("csv", "tsv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, ["label", "text"], delimiter="," if fmt == "csv" else "\t")
            w.writeheader()
            w.writerows(rows)
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    else:
        write_format(path, rows, fmt)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet", "txt"])
@pytest.mark.parametrize("chunk_rows", [1, 2, 100_000])
def test_streamed_equals_loaded_for_every_format(tmp_path, rows, fmt, chunk_rows):
    path = tmp_path / f"news.{fmt}"
    write_rows(path, TRICKY_ROWS + rows, fmt, row_group_size=3)
    loaded = assert_same_as_loaded(path, chunk_rows=chunk_rows)
    if fmt != "txt":  # .txt has one document a line: multi-line texts are several there
        assert loaded.texts[:4] == [r["text"] for r in TRICKY_ROWS if r["text"].strip()][:4]
        assert loaded.skipped_rows == [3, 5]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(["csv", "tsv", "jsonl", "parquet", "txt"]),
    rows=st.lists(st.fixed_dictionaries({"label": _TEXT, "text": _TEXT}), min_size=1, max_size=15),
    chunk_rows=st.integers(1, 7),
    empty=st.sampled_from(["skip", "error"]),
)
def test_any_chunk_size_gives_what_one_read_gives(fmt, rows, chunk_rows, empty):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"c.{fmt}"
        write_rows(path, rows, fmt, row_group_size=2)
        assert_same_as_loaded(path, chunk_rows=chunk_rows, empty=empty)


def test_crlf_split_across_read_blocks(tmp_path):
    # the text reader pulls 8 KiB at a time: put a row end's \r at a block's last byte and its
    # \n at the next block's first, once after an unquoted and once inside a quoted field
    header = "text,label\r\n"
    first = "y" * (8188 - len(header) - 4) + ",a\r\n"
    quoted = '"' + "z" * (16383 - 8193 - 1) + '\r\nline",b\r\n'
    data = (header + first + "x,a\r\n" + quoted + "last,d\r\n").encode()
    assert data[8191:8193] == data[16383:16385] == b"\r\n"
    path = tmp_path / "crlf.csv"
    path.write_bytes(data)
    loaded = assert_same_as_loaded(path, chunk_rows=2)
    assert [t[:1] for t in loaded.texts] == ["y", "x", "z", "l"]
    assert loaded.texts[2].endswith("z\r\nline") and loaded.metadata[3] == {"label": "d"}


def test_decode_error_deep_in_a_file_names_its_line(tmp_path):
    path = tmp_path / "late.csv"
    lines = ["text,label"] + [f"row {i},x" for i in range(1, 3000)]
    data = ("\n".join(lines) + "\n").encode() + b"caf\xe9,y\n" + b"after,z\n"
    path.write_bytes(data)
    stream = stream_corpus(path, chunk_rows=100)
    chunks = []
    with pytest.raises(CorpusError, match=r"not valid utf-8: byte 0xe9 at line 3001 "):
        for chunk in stream:
            chunks.append(chunk)
    assert 0 < sum(len(c.texts) for c in chunks) < 2999  # the error came after some chunks
    assert_same_as_loaded(path, chunk_rows=100)
    texts, _, _ = stream_all(path, chunk_rows=100, encoding="latin-1")
    assert texts[-2:] == ["café", "after"]


def test_malformed_rows_deep_in_a_file_are_refused_like_load_corpus(tmp_path):
    good = "".join(f"row {i},x\n" for i in range(1, 700))
    for name, tail, message in [
        ("ragged.csv", "a,b,c\n", "line 701: 3 fields where the header has 2"),
        ("open_quote.csv", '"never closed,x\nmore\n', "not well-formed CSV near line 702"),
    ]:
        path = tmp_path / name
        path.write_text("text,label\n" + good + tail, encoding="utf-8")
        with pytest.raises(CorpusError, match=message):
            stream_all(path, chunk_rows=50)
        assert_same_as_loaded(path, chunk_rows=50)
    path = tmp_path / "late.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(600)) + "{oops\n")
    with pytest.raises(CorpusError, match="line 601: not valid JSON"):
        stream_all(path, chunk_rows=50)


def test_empty_texts_late_in_a_stream_are_counted_and_listed_up_to_a_cap(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("text\n" + "".join("doc\n" if i % 3 == 0 else '""\n' for i in range(3000)))
    loaded = assert_same_as_loaded(path, chunk_rows=128)
    assert len(loaded.skipped_rows) == 2000
    _, _, stream = stream_all(path, chunk_rows=128)
    assert stream.n_skipped == 2000 and len(stream.skipped_rows) == 1000
    assert "Skipped 2,000 row(s) with empty text (rows 2, 3, 5, 6," in stream.notes[-1]
    with pytest.raises(CorpusError, match=r"2,000 of 3,000 rows have an empty text in column 'text'"):
        stream_all(path, chunk_rows=128, empty="error")


def test_jsonl_columns_found_as_the_stream_goes(tmp_path):
    # a named column that first appears after the sample is accepted, as load_corpus does;
    # one that never appears is refused once the whole file is read
    path = tmp_path / "late_column.jsonl"
    rows = [{"body": f"b{i}"} for i in range(600)] + [{"body": "x", "summary": "late text"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = assert_same_as_loaded(path, chunk_rows=64, text_column="summary")
    assert loaded.texts == ["late text"] and len(loaded.skipped_rows) == 600
    with pytest.raises(CorpusError, match="no column 'nope'; its columns are: 'body', 'summary'"):
        stream_all(path, "nope", chunk_rows=64)
    assert_same_as_loaded(path, chunk_rows=64, text_column="nope")
    # a raw U+2028 inside a JSON string is part of that string, not a line break
    path = tmp_path / "u2028.jsonl"
    path.write_text(json.dumps({"text": "one\u2028two"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert stream_all(path)[0] == load_corpus(path).texts == ["one\u2028two"]


def test_stream_checks_up_front_and_takes_no_size_limit(tmp_path, rows):
    path = tmp_path / "big.csv"
    write_format(path, rows, "csv")
    with pytest.raises(CorpusError, match="over the 0 MiB limit"):
        load_corpus(path, max_bytes=1000)
    assert stream_all(path)[0] == [r["text"] for r in rows]  # no limit unless asked for
    with pytest.raises(CorpusError, match="over the 0 MiB limit"):
        stream_corpus(path, max_bytes=1000)
    # errors the first rows show are raised when the stream is opened, before any chunk
    with pytest.raises(CorpusError, match="has a header but no rows"):
        stream_corpus(HOSTILE / "header_only.csv")
    with pytest.raises(CorpusError, match="no column 'body'"):
        stream_corpus(path, "body")
    with pytest.raises(CorpusError, match="No such file"):
        stream_corpus(tmp_path / "missing.csv")
    with pytest.raises(CorpusError, match="Unknown encoding 'klingon'"):
        stream_corpus(path, encoding="klingon")
    with pytest.raises(TypeError, match="use load_corpus for bytes"):
        stream_corpus(b"text\nx\n")
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        stream_corpus(path, chunk_rows=0)


@pytest.mark.parametrize("name", sorted(HOSTILE_CORPORA))
def test_hostile_corpus_files_get_the_same_errors_streamed(name):
    with pytest.raises(CorpusError, match=HOSTILE_CORPORA[name]):
        stream_all(HOSTILE / name, chunk_rows=1)


def test_numbers_in_the_text_column_are_never_turned_into_text_silently(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    numbers = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"text": [1, 2, 3], "label": ["a", "b", "c"]}), numbers)
    with pytest.raises(CorpusError, match=r"column 'text'.*holds int values, not text \(e.g. 1 in row 1\)"):
        load_corpus(numbers)
    named = load_corpus(numbers, "text")  # asked for by name: stored, and the user is told
    assert named.texts == ["1", "2", "3"]
    assert any("3 value(s) in column 'text' were not text" in n for n in named.notes)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text('{"text": "a real text"}\n{"text": 42}\n', encoding="utf-8")
    corpus = load_corpus(mixed)
    assert corpus.texts == ["a real text", "42"]
    assert any("int 42 in row 2" in n for n in corpus.notes)
    from analytics.corpus import stream_corpus

    stream = stream_corpus(mixed)
    list(stream)
    assert any("int 42 in row 2" in n for n in stream.notes)


def test_complex_vectors_are_refused_not_cut_to_their_real_part(tmp_path):
    from analytics.corpus import check_vectors

    with pytest.raises(CorpusError, match="complex numbers"):
        check_vectors(np.ones((3, 4)) + 1j)
    path = tmp_path / "complex.npy"
    np.save(path, np.ones((3, 4), dtype=np.complex64))
    with pytest.raises(CorpusError, match="complex numbers"):
        load_vectors(path)


# --- limits: decompression bombs, overlong texts, too many rows ---------------------------------
# The hostile files are generated here (a few hundred KB at most on disk), never committed.

from analytics import corpus as corpus_module  # noqa: E402


def parquet_bomb(path, n_rows, text_chars=100, columns=("text",)):
    """``n_rows`` copies of one text, dictionary-encoded and zstd-compressed: a tiny file."""
    indices = pa.array(np.zeros(n_rows, dtype=np.int32))
    col = pa.DictionaryArray.from_arrays(indices, pa.array(["x" * text_chars]))
    table = pa.table({c: col for c in columns})
    pq.write_table(table, path, use_dictionary=True, compression="zstd")
    return path


def both_refuse(path, **limits):
    """The messages of load_corpus and stream_corpus (iterated) on ``path``: they must agree."""
    with pytest.raises(CorpusError) as loaded:
        load_corpus(path, **limits)
    with pytest.raises(CorpusError) as streamed:
        for _ in stream_corpus(path, **limits):
            pass
    assert str(loaded.value) == str(streamed.value)
    return str(loaded.value)


def test_parquet_bomb_refused_from_its_metadata(tmp_path):
    path = parquet_bomb(tmp_path / "bomb.parquet", 6_000_000)
    assert path.stat().st_size < 200_000  # 6M rows in a few KB
    with pytest.raises(CorpusError, match=r"has 6,000,000 rows, over the limit of 5,000,000 rows") as e:
        load_corpus(path.read_bytes(), name="bomb.parquet")  # the default limit of uploads
    assert "max_rows=" in str(e.value) and "--max-rows" in str(e.value)
    message = both_refuse(path, max_rows=1000)
    assert "has 6,000,000 rows, over the limit of 1,000 rows" in message


def test_dictionary_bomb_refused_before_its_batches_are_decoded(tmp_path, monkeypatch):
    # 20,000 rows of one 10,000-character text: 200 MB decoded from a few KB; the metadata's
    # uncompressed size is small (the pages hold the dictionary once), so batches are checked
    path = parquet_bomb(tmp_path / "bomb.parquet", 20_000, text_chars=10_000)
    assert path.stat().st_size < 100_000
    decoded = []
    real = corpus_module._decoded
    monkeypatch.setattr(corpus_module, "_decoded", lambda b: decoded.append(b.num_rows) or real(b))
    message = both_refuse(path, max_decompressed_bytes=10 * 2**20)
    # measured on the dictionary-encoded batches: nothing was decoded
    assert message.startswith("bomb.parquet decompresses to 191 MiB of data from ")
    assert "over the limit of 10 MiB (max_decompressed_bytes=)" in message
    assert decoded == []
    assert len(load_corpus(path, max_decompressed_bytes=None)) == 20_000  # raised: it loads


def test_overlong_text_refused_with_its_row_in_every_format(tmp_path):
    big = "y" * 20_000_000
    path = tmp_path / "cell.csv"
    path.write_text(f"text,label\nshort,a\nalso short,b\n{big},c\nlast,d\n", encoding="utf-8")
    message = both_refuse(path)
    assert message == (
        "cell.csv, row 3: the value in column 'text' has 20,000,000 characters, over the limit of "
        "1,000,000 characters per text (max_text_chars=, --max-text-chars). Shorten or split it, "
        "or raise the limit."
    )
    c = load_corpus(path, max_text_chars=None)
    assert len(c.texts[2]) == 20_000_000
    assert sum(len(ch.texts) for ch in stream_corpus(path, max_text_chars=30_000_000)) == 4
    # Parquet: found on the dictionary, before the batch is decoded
    pq_path = parquet_bomb(tmp_path / "long.parquet", 10, text_chars=2_000_000)
    assert "row 1: the value in column 'text' has 2,000,000 characters" in both_refuse(pq_path)
    # a metadata value is held to the same limit
    (tmp_path / "meta.jsonl").write_text(
        json.dumps({"text": "a"}) + "\n" + json.dumps({"text": "b", "note": "z" * 50}) + "\n"
    )
    assert "row 2: the value in column 'note' has 50" in both_refuse(
        tmp_path / "meta.jsonl", max_text_chars=10
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "txt", "parquet"])
def test_too_many_rows_refused_while_reading(tmp_path, fmt):
    rows = [{"label": str(i % 3), "text": f"document {i}"} for i in range(1000)]
    path = tmp_path / f"many.{fmt}"
    write_format(path, rows, fmt)
    message = both_refuse(path, max_rows=100)
    has = "has 1,000 rows" if fmt == "parquet" else "has more than 100 rows"  # Parquet: from metadata
    assert f"many.{fmt} {has}, over the limit of 100 rows (max_rows=, --max-rows)" in message
    assert len(load_corpus(path, max_rows=1000)) == 1000
    assert len(load_corpus(path, max_rows=None)) == 1000


def test_decoded_characters_of_text_formats_are_counted(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text\n" + "".join(f"row {i} " + "w" * 100 + "\n" for i in range(20_000)))
    message = both_refuse(path, max_decompressed_bytes=2**20)
    assert "decompresses to more than 1 MiB of data" in message


def test_normal_files_are_unaffected_by_the_limits(tmp_path, rows):
    for fmt in ("csv", "parquet", "jsonl"):
        path = tmp_path / f"n.{fmt}"
        write_format(path, rows, fmt)
        assert load_corpus(path).texts == [r["text"] for r in rows]
        assert load_corpus(path.read_bytes(), name=path.name).texts == [r["text"] for r in rows]


def test_long_texts_make_short_chunks_not_big_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "_CHUNK_CHARS", 1_000_000)
    rows = [{"label": "a", "text": f"{i} " + "v" * 50_000} for i in range(100)]
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"long.{fmt}"
        write_format(path, rows, fmt)
        sizes = [len(ch.texts) for ch in stream_corpus(path, chunk_rows=100_000)]
        assert sum(sizes) == 100 and max(sizes) <= 21, (fmt, sizes)
        assert [t for ch in stream_corpus(path) for t in ch.texts] == [r["text"] for r in rows]


def test_limits_must_be_positive_integers_or_none(tmp_path):
    from analytics.errors import ParameterError

    with pytest.raises(ParameterError, match="max_rows must be a positive integer"):
        load_corpus(b"text\na\n", name="x.csv", max_rows=0)


# --- label columns guessed by cardinality (issue 14) -------------------------------------------

from analytics.corpus import (  # noqa: E402
    LABEL_MAX_VALUES,
    label_candidates,
    label_columns,
    label_limit,
    read_columnar,
    summarize_columns,
)

FIXTURES = HOSTILE.parent


def test_clinc150_intent_and_domain_are_label_candidates_intent_first(tmp_path):
    path = FIXTURES / "clinc150_upload.csv"  # 200 queries: 21 intents in 11 domains (oos included)
    loaded = load_corpus(path)
    columnar = read_columnar(path, tmp_path / "c.arrow", chunk_rows=7)  # counted over 29 chunks
    assert label_candidates(loaded) == label_candidates(columnar) == ["intent", "domain"]
    assert columnar.column_summaries["intent"].n_distinct == 21
    assert columnar.column_summaries["domain"].n_distinct == 11


def test_the_sample_and_sib200_labels_are_guessed_and_ids_never(tmp_path, sample_rows):
    news = read_columnar(FIXTURES.parent.parent / "sample_data" / "ag_news.csv", tmp_path / "n.arrow")
    assert label_candidates(news) == ["label"]
    sib = read_columnar(FIXTURES / "sib200_languages.tsv", tmp_path / "s.arrow")
    # 300 sentences: 7 topics, 20 languages; index_id repeats across languages but is an id
    assert label_candidates(sib) == ["category", "language"]


def test_inferred_text_column_notes_speak_no_keyword_arguments(tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,body_of_post\n1,a long enough post about things\n2,another long post here\n")
    for c in (load_corpus(path), load_corpus(FIXTURES / "clinc150_upload.csv")):
        assert c.notes and not any("text_column=" in n or "pass " in n for n in c.notes), c.notes


def test_a_label_needs_repeats_and_filled_rows_and_strings():
    rows = [
        {"pair": f"p{i // 2}", "half": "xxyyy"[i] if i < 5 else "", "n": i % 3, "label": i % 3}
        for i in range(10)
    ]
    summaries = summarize_columns(rows)
    assert summaries["half"].n_filled == 5 and summaries["n"].categorical is False
    # pair: 5 distinct in 10 rows (each twice) passes; half: filled in half the rows passes;
    # n: integers under a plain name do not; label: integers under a label name do
    assert label_columns(summaries, 10) == ["label", "pair", "half"]
    assert label_columns(summarize_columns(rows[:9]), 9) == ["label", "half"]  # 5 pairs in 9 rows: no
    assert label_columns(summarize_columns([{"c": "a"}] * 10), 10) == []  # one value is no label
    lists = summarize_columns([{"tags": ["a"]}, {"tags": ["a"]}, {"tags": ["b"]}, {"tags": ["b"]}])
    assert label_columns(lists, 4) == []  # lists are never labels (and do not raise)


def test_distinct_values_are_counted_up_to_a_cap():
    rows = [{"u": f"v{i % (LABEL_MAX_VALUES + 500)}"} for i in range(3 * LABEL_MAX_VALUES)]
    assert summarize_columns(rows)["u"].n_distinct == LABEL_MAX_VALUES + 1
    assert (
        label_limit(10) == 200
        and label_limit(3_300) == 200
        and label_limit(23_700) == 237
        and label_limit(10**9) == LABEL_MAX_VALUES
    )


_names = st.sampled_from(
    ["label", "category", "intent", "domain", "group", "tag", "doc_id", "index", "id", "x"]
)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 400),
    specs=st.lists(
        st.tuples(
            _names,
            st.one_of(st.integers(1, 12), st.integers(1, 120)),
            st.one_of(st.just(1.0), st.floats(0, 1)),
            st.sampled_from(["str", "str", "int", "float"]),
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda s: s[0],
    ),
    chunk=st.integers(1, 500),
)
def test_label_guess_is_the_rule_whatever_the_columns_and_chunks(n, specs, chunk):
    """Every column the guess returns obeys the rule (2..max(200, 1% of rows) distinct values,
    each on two rows on average, filled in half the rows, strings unless named like a label, no
    id-like name), every column that obeys it is returned, named ones first, and counting in
    chunks (as an upload is read) gives the same answer as counting all rows at once."""
    rows = []
    for i in range(n):
        row = {}
        for name, k, fill, kind in specs:
            if (i * 7919 % 1000) / 1000 < fill:
                v = i % k
                row[name] = f"v{v}" if kind == "str" else (v if kind == "int" else v + 0.5)
        rows.append(row)
    whole = summarize_columns(rows)
    counter = corpus_module._ColumnCounter()
    for start in range(0, n, chunk):
        counter.update(rows[start : start + chunk])
    assert counter.summaries() == whole
    got = label_columns(whole, n)

    def obeys(name) -> bool:
        values = [r[name] for r in rows if name in r]
        k, named = len(set(values)), name in ("label", "category", "intent", "tag")
        typed = all(type(v) is str for v in values) or named
        return (
            typed
            and name not in ("doc_id", "index", "id")
            and 2 <= k <= max(200, n // 100)
            and 2 * k <= len(values)
            and 2 * len(values) >= n
        )

    assert set(got) == {name for name, *_ in specs if obeys(name)}
    named_first = [g for g in got if g in ("label", "category", "intent", "tag")]
    assert got[: len(named_first)] == named_first
    assert label_columns(whole, n, text_column=got[0]) == got[1:] if got else True
