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
