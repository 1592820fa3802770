"""``embex`` as a user runs it: a real process, a real store file, the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HOSTILE, SAMPLE

EMBEX = Path(sys.executable).with_name("embex")


def embex(*args, store=None, env_store=None, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("EMBEX_STORE", None)
    if env_store:
        env["EMBEX_STORE"] = str(env_store)
    cmd = [str(EMBEX), *(["--store", str(store)] if store else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """A store with two small corpora of the sample data (World and Sports), embedded by the CLI."""
    tmp = tmp_path_factory.mktemp("cli")
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    world = [r for r in rows if r.endswith(",World")][:60]
    sports = [r for r in rows if r.endswith(",Sports")][:60]
    for name, subset in (("world", world), ("sports", sports)):
        (tmp / f"{name}.csv").write_text("\n".join([header, *subset]) + "\n", encoding="utf-8")
    store = tmp / "cli.duckdb"
    for name in ("world", "sports"):
        out = embex("ingest", str(tmp / f"{name}.csv"), "--name", name, store=store)
        assert f"Stored corpus '{name}': 60 texts" in out.stdout
        embex("embed", name, store=store)
    return store


def test_ingest_embed_list_with_store_flag_and_env(cli_store):
    listing = json.loads(embex("list", "--json", env_store=cli_store).stdout)
    assert [(c["name"], c["n_docs"]) for c in listing["corpora"]] == [("world", 60), ("sports", 60)]
    assert listing["store"] == str(cli_store)
    again = json.loads(embex("embed", "world", "--json", store=cli_store).stdout)
    assert (again["n_cached"], again["n_computed"]) == (60, 0)


def test_depth_prints_ranked_texts(cli_store):
    human = embex("depth", "world", "--top", "3", store=cli_store).stdout
    assert "TTE depth (cosine) of 60 texts in 'world'" in human and "Most outlying 3:" in human
    data = json.loads(embex("depth", "world", "--top", "3", "--json", store=cli_store).stdout)
    depths = [r["depth"] for r in data["most_central"]]
    assert depths == sorted(depths, reverse=True) and data["median"] == data["most_central"][0]
    assert data["most_outlying"][0]["depth"] <= data["most_outlying"][-1]["depth"] < depths[-1]


def test_shift_reports_a_clear_shift_between_topics(cli_store):
    data = json.loads(
        embex("shift", "world", "sports", "--json", "--permutations", "199", store=cli_store).stdout
    )
    assert data["q"] < 0.3 and data["p"] < 1e-6 and data["p_permutation"] == pytest.approx(1 / 200)
    assert data["significant"] and len(data["most_outlying_g"]) == 3
    human = embex("shift", "world", "sports", store=cli_store).stdout
    assert "G has shifted away from F" in human


def test_errors_are_one_clear_line_and_change_nothing(cli_store, tmp_path):
    from analytics.store import Store

    with Store(cli_store) as s:
        before = s.digest()
    nan_file = tmp_path / "nan_60.npy"
    vectors = np.ones((60, 3), dtype=np.float32)
    vectors[7, 1] = np.nan
    np.save(nan_file, vectors)
    for args, message in [
        (("depth", "nope"), "No corpus named 'nope'. Known corpora: 'world', 'sports'"),
        (("ingest", str(HOSTILE / "latin1.csv"), "--name", "x"), "not valid utf-8"),
        (("ingest", str(HOSTILE / "zero_bytes.csv"), "--name", "x"), "is empty"),
        (("ingest", str(HOSTILE / "garbage.csv"), "--name", "x"), "does not look like a text file"),
        (("ingest", str(HOSTILE / "whitespace_texts.csv"), "--name", "world", "--replace"), "empty text"),
        (
            ("import-vectors", "world", str(HOSTILE / "nan_vectors.npy"), "--model-id", "m"),
            "2 vectors for 60",
        ),
        (("import-vectors", "world", str(nan_file), "--model-id", "m"), "NaN"),
    ]:
        proc = embex(*args, store=cli_store, check=False)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.startswith("embex: error: ") and message in proc.stderr
        assert "Traceback" not in proc.stderr
    with Store(cli_store) as s:
        assert s.digest() == before


def test_ingest_streams_files_as_load_corpus_reads_them(tmp_path):
    from analytics.corpus import load_corpus
    from analytics.store import Store

    store = tmp_path / "stream.duckdb"
    csv_path = tmp_path / "multi.csv"
    csv_path.write_text(
        'text,label\n"two\nlines, ""quoted""",a\n  ,b\nnaïve ✓,c\n'
        + "".join(f"doc {i},d\n" for i in range(25)),
        encoding="utf-8",
    )
    jsonl_path = tmp_path / "multi.jsonl"
    jsonl_path.write_text(
        "".join(
            json.dumps({"body": f"line {i}\u2028more", "k": i}, ensure_ascii=False) + "\n" for i in range(30)
        ),
        encoding="utf-8",
    )
    for path, name in ((csv_path, "csv"), (jsonl_path, "jsonl")):
        out = json.loads(
            embex("ingest", str(path), "--name", name, "--chunk-rows", "4", "--json", store=store).stdout
        )
        loaded = load_corpus(path)
        assert (out["n_docs"], out["text_column"], out["notes"]) == (
            len(loaded),
            loaded.text_column,
            loaded.notes,
        )
        assert out["skipped_rows"] == loaded.skipped_rows and out["n_skipped"] == len(loaded.skipped_rows)
        with Store(store) as s:
            assert s.texts(name) == loaded.texts and s.metadata(name) == loaded.metadata
    assert out["n_rows"] == 30 and "Using column 'body'" in out["notes"][0]
    human = embex("ingest", str(csv_path), "--name", "again", store=store)
    assert "Stored corpus 'again': 27 texts (text column 'text', metadata: label)." in human.stdout
    assert "Skipped 1 row(s) with empty text (rows 2)." in human.stdout
    assert human.stderr == ""  # no progress lines for a quick ingest that is not on a terminal


def test_ingest_failing_deep_in_a_file_changes_nothing(tmp_path):
    from analytics.store import Store

    store = tmp_path / "fail.duckdb"
    good = tmp_path / "good.csv"
    good.write_text("text\nkept one\nkept two\n")
    embex("ingest", str(good), "--name", "news", store=store)
    with Store(store) as s:
        before = s.digest()
    late = tmp_path / "late.csv"
    late.write_bytes(b"text,label\n" + b"".join(b"row %d,x\n" % i for i in range(1, 5000)) + b"caf\xe9,y\n")
    for extra in ((), ("--replace",)):
        proc = embex(
            "ingest", str(late), "--name", "news", "--chunk-rows", "100", *extra, store=store, check=False
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        expected = (
            "A corpus named 'news' already exists"
            if not extra
            else "late.csv is not valid utf-8: byte 0xe9 at line 5001"
        )
        assert proc.stderr.startswith("embex: error: ") and expected in proc.stderr, proc.stderr
    proc = embex("ingest", str(late), "--name", "other", "--max-mb", "0.01", store=store, check=False)
    assert proc.returncode == 2 and "over the 0 MiB limit" in proc.stderr
    with Store(store) as s:
        assert s.digest() == before and s.texts("news") == ["kept one", "kept two"]


def test_options_outside_their_rule_are_usage_errors_that_say_the_range(tmp_path):
    """Ranges and defaults come from analytics/params.py; a value outside fails before any work."""
    for args, message in [
        (
            ("report", "c", "--out", str(tmp_path / "r.html"), "--n-neighbors", "500"),
            "argument --n-neighbors: UMAP n_neighbors must be an integer between 2 and 200, got 500",
        ),
        (
            ("report", "c", "--out", str(tmp_path / "r.html"), "--min-dist", "nan"),
            "argument --min-dist: UMAP min_dist must be a finite number between 0 and 1, got nan",
        ),
        (
            ("shift", "f", "g", "--permutations", "-5"),
            "argument --permutations: shift test permutations must be an integer between 0 and 100000",
        ),
        (("depth", "c", "--top", "0"), "argument --top: depth top must be an integer between 1 and 1000"),
    ]:
        proc = embex(*args, store=tmp_path / "s.duckdb", check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s.duckdb").exists() and not (tmp_path / "r.html").exists()
    proc = embex("report", "--help")
    assert "with --method umap: 2–200, default 15" in proc.stdout


def test_ingest_refuses_a_parquet_bomb_in_one_line(tmp_path):
    """A few KB of dictionary-encoded Parquet holding GBs of text: one line, exit 2, no
    MemoryError (before the limits, a batch of 8,192 copies of a 2M-character text was decoded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    bomb = tmp_path / "bomb.parquet"
    col = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(20_000, dtype=np.int32)), pa.array(["x" * 2_000_000])
    )
    pq.write_table(pa.table({"text": col}), bomb, use_dictionary=True, compression="zstd")
    assert bomb.stat().st_size < 300_000
    store = tmp_path / "b.duckdb"
    proc = embex("ingest", str(bomb), "--name", "bomb", store=store, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "bomb.parquet, row 1: the value in column 'text' has 2,000,000 characters" in proc.stderr
    assert "--max-text-chars" in proc.stderr
    proc = embex("ingest", str(bomb), "--name", "bomb", "--max-rows", "100", store=store, check=False)
    assert proc.returncode == 2 and "has 20,000 rows, over the limit of 100 rows" in proc.stderr
