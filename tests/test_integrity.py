"""Store integrity (issue 9 item 4): a damaged file is named as damaged on open, never changed,
refuses writes; `embex check` reads it all; `embex gc` prunes orphan vectors; read-only
commands open the store read-only."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analytics.corpus import Corpus
from analytics.errors import StoreError
from analytics.store import Store, text_hash

ROOT = Path(__file__).resolve().parents[1]
N = 4000


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("integrity") / "good.duckdb"
    texts = [f"text number {i} " + "x" * (i % 50) for i in range(N)]
    with Store(path) as s:
        s.add_corpus("c", Corpus(texts, [{"i": i} for i in range(N)], "text", None))
        v = np.random.default_rng(0).normal(size=(N, 64)).astype(np.float32)
        s.put_vectors("m", [text_hash(t) for t in texts], v / np.linalg.norm(v, axis=1, keepdims=True))
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garble(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        fh.write(np.random.default_rng(1).bytes(4096))


def _zero_block(path: Path) -> None:
    block = 262144
    with open(path, "r+b") as fh:
        fh.seek(path.stat().st_size // 2 // block * block)
        fh.write(b"\0" * block)


def _header(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(np.random.default_rng(2).bytes(4096))


DAMAGE = {"truncated": _truncate, "garbled": _garble, "zeroed block": _zero_block, "header": _header}


@pytest.fixture(params=list(DAMAGE))
def damaged(request, good, tmp_path) -> Path:
    path = tmp_path / "damaged.duckdb"
    shutil.copy(good, path)
    DAMAGE[request.param](path)
    return path


def _embex(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "analytics.cli", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


@pytest.mark.parametrize("read_only", [False, True])
def test_a_damaged_store_is_refused_on_open_and_left_unchanged(damaged, read_only):
    before = _sha(damaged)
    with pytest.raises(StoreError) as err:
        Store(damaged, read_only=read_only)
    message = str(err.value)
    assert "damaged" in message and "fresh" not in message and "backup" in message
    assert _sha(damaged) == before
    assert not Path(str(damaged) + ".wal").exists()


def test_a_damaged_store_opened_anyway_refuses_every_write(damaged):
    if not _opens(damaged):
        pytest.skip("a damaged header cannot be opened at all")
    before = _sha(damaged)
    with Store(damaged, on_damage="allow") as s:
        assert s.damaged
        assert [c.name for c in s.list_corpora()] == ["c"]  # what still reads, reads
        writes = [
            lambda: s.add_corpus("d", Corpus(["a"], [{}], "text", None)),
            lambda: s.put_vectors("m2", ["h"], np.ones((1, 3))),
            lambda: s.delete_corpus("c"),
            lambda: s.rename_corpus("c", "e"),
            lambda: s.prune_vectors(),
        ]
        for write in writes:
            with pytest.raises(StoreError, match="damaged"):
                write()
    assert _sha(damaged) == before


def _opens(path: Path) -> bool:
    try:
        Store(path, read_only=True, on_damage="allow").close()
        return True
    except StoreError:
        return False


def test_embex_list_on_a_damaged_store_says_so_in_one_line(damaged):
    before = _sha(damaged)
    proc = _embex("list", "--store", str(damaged))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "damaged" in proc.stderr and "fresh" not in proc.stderr
    assert _sha(damaged) == before


def test_embex_check(good, tmp_path):
    proc = _embex("check", "--store", str(good))
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and f"documents: {N:,} rows" in proc.stdout
    bad = tmp_path / "bad.duckdb"
    shutil.copy(good, bad)
    _garble(bad)
    before = _sha(bad)
    proc = _embex("check", "--store", str(bad))
    assert proc.returncode == 2
    problems = [line for line in proc.stderr.splitlines() if line.startswith("embex: problem:")]
    assert problems and all("embeddings_64" in p for p in problems)
    assert "Traceback" not in proc.stderr
    assert _sha(bad) == before
    with Store(bad, on_damage="allow") as s:
        report = s.check()
    assert not report.ok and report.rows["documents"] == N and report.problems


def test_embex_gc_removes_exactly_the_orphan_vectors(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.add_corpus("a", Corpus(["one", "shared"], [{}, {}], "text", None))
        s.add_corpus("b", Corpus(["shared", "two", "three"], [{}, {}, {}], "text", None))
        hashes = [text_hash(t) for t in ["one", "shared", "two", "three"]]
        s.put_vectors("m", hashes, np.ones((4, 8)))
        s.delete_corpus("b")  # "two" and "three" are orphans now; "shared" is still a's
        assert s.check().notes == ["2 cached vector(s) belong to no corpus (embex gc removes them)"]
    proc = _embex("gc", "--store", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "Removed 2 cached vector(s)" in proc.stdout
    with Store(path, read_only=True) as s:
        assert s.embedded_count("a", "m") == 2
        assert s.check().notes == []


def test_read_only_commands_do_not_write_the_store(good, tmp_path):
    path = tmp_path / "s.duckdb"
    shutil.copy(good, path)
    before = _sha(path)
    for args in (["list"], ["check"]):
        proc = _embex(*args, "--store", str(path))
        assert proc.returncode == 0, proc.stderr
    assert _sha(path) == before and not Path(str(path) + ".wal").exists()
    with Store(path, read_only=True) as s:
        with pytest.raises(StoreError, match="read-only"):
            s.delete_corpus("c")
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "missing.duckdb", read_only=True)


def test_a_read_only_open_of_an_old_store_says_how_to_upgrade_it(tmp_path):
    path = tmp_path / "old.duckdb"
    Store(path, migrate_to=3).close()
    before = _sha(path)
    with pytest.raises(StoreError, match="writable open") as err:
        Store(path, read_only=True)
    assert "fresh" not in str(err.value) and _sha(path) == before


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="is a directory") as err:
        Store(tmp_path, read_only=True)
    assert "fresh" not in str(err.value)
