"""Hostile files, generated (issue 9): whatever bytes arrive under whatever name, `embex ingest`
either stores a corpus or refuses in one line with no traceback, and a refusal leaves every
table of the store exactly as it was (checked by content checksums)."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.store import Store, text_hash

SUFFIXES = [".csv", ".tsv", ".jsonl", ".parquet", ".txt"]
CELLS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from('",\t\r\n\x00\ufeff;'),
    max_size=40,
)


@st.composite
def hostile_files(draw) -> tuple[str, bytes]:
    """A suffix and bytes: random bytes, CSV/TSV-ish text with quotes, NULs, BOMs and ragged
    rows in several encodings, JSONL with junk lines, or a Parquet file cut short."""
    suffix = draw(st.sampled_from(SUFFIXES))
    kind = draw(st.sampled_from(["bytes", "table", "jsonl", "parquet"]))
    if kind == "bytes":
        return suffix, draw(st.binary(max_size=300))
    if kind == "table":
        sep = draw(st.sampled_from([",", "\t", ";"]))
        rows = draw(st.lists(st.lists(CELLS, min_size=0, max_size=4), min_size=0, max_size=6))
        text = "\n".join(sep.join(r) for r in [["text", "label"], *rows])
        encoding = draw(st.sampled_from(["utf-8", "utf-16", "latin-1", "utf-8-sig"]))
        return suffix, text.encode(encoding, errors="replace")
    if kind == "jsonl":
        lines = draw(
            st.lists(
                st.one_of(
                    st.dictionaries(
                        st.sampled_from(["text", "label", "x"]), CELLS | st.integers(), max_size=3
                    ).map(json.dumps),
                    CELLS,
                ),
                max_size=6,
            )
        )
        return suffix, "\n".join(lines).encode("utf-8", errors="replace")
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = draw(st.lists(CELLS, min_size=1, max_size=5))
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": texts}), buf)
    data = buf.getvalue()
    return suffix, data[: draw(st.integers(0, len(data)))]


@pytest.fixture(scope="module")
def kept_store(tmp_path_factory):
    """A store with one corpus and its vectors: what no hostile file may touch."""
    path = tmp_path_factory.mktemp("hostile") / "store.duckdb"
    texts = ["a text to keep", "another text to keep", "a third one"]
    with Store(path) as s:
        s.add_corpus("keep", make_corpus(texts))
        s.register_model("m", 4)
        s.put_vectors("m", [text_hash(t) for t in texts], np.eye(3, 4, dtype=np.float32))
    return path


def _digest(path) -> dict:
    with Store(path, read_only=True) as s:
        return s.digest()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile_files())
def test_embex_ingest_stores_or_refuses_in_one_line_and_changes_nothing(kept_store, file):
    suffix, data = file
    before = _digest(kept_store)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["ingest", str(path), "--name", "new", "--store", str(kept_store)])
    said = err.getvalue()
    assert "Traceback" not in said
    if code == 2:  # refused: one line that says what was wrong, and the store as it was
        assert said.startswith("embex: error: ") and said.count("\n") == 1, said
        assert _digest(kept_store) == before
        return
    assert code == 0, said
    with Store(kept_store) as s:
        assert s.corpus_info("new").n_docs >= 1
        assert s.texts("keep") == ["a text to keep", "another text to keep", "a third one"]
        s.delete_corpus("new")
    assert _digest(kept_store) == before
