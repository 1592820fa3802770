"""Precomputed vectors at scale: `embex import-vectors` reads a file of any size a chunk at a time
(a .npy memory-mapped, Parquet by batches) and writes it in one transaction; every bad vector
file is refused in one line with the store unchanged; `Store.vectors` reads back exactly what the
earlier, unchunked code stored and read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, make_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import store as store_module
from analytics.cli import main
from analytics.corpus import MAX_VECTOR_DIM, VectorFile, load_vectors, open_vectors
from analytics.embedding import import_vectors
from analytics.errors import CorpusError, EmbeddingError
from analytics.store import Store, text_hash

MODEL = "provider-x"


def _unit(X) -> np.ndarray:
    """What the earlier import stored for an array: float64-checked, cast to float32, divided
    by its float32 norm."""
    X = np.asarray(X, dtype=np.float64).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _old_import(store: Store, name: str, X, model_id: str, ids=None) -> int:
    """The earlier import_vectors, as it was: every text hashed in Python, one put_vectors call."""
    texts = store.texts(name)
    order = range(len(texts)) if ids is None else [int(i) for i in ids]
    return store.put_vectors(model_id, [text_hash(texts[i]) for i in order], _unit(X))


def _old_read(store: Store, name: str, model_id: str) -> np.ndarray:
    """The earlier read-back, as a plain ordered query."""
    cid = store._corpus_id(name)
    table = "embeddings_" + str(store.model_dim(model_id))
    rows = (
        store._cur()
        .execute(
            "SELECT e.vector FROM documents d JOIN "
            + table
            + " e ON e.text_hash = d.text_hash AND e.model_id = ? WHERE d.corpus_id = ? ORDER BY d.position",
            [model_id, cid],
        )
        .fetchall()
    )
    return np.array([r[0] for r in rows], dtype=np.float32)


def _corpus(store: Store, name: str, n: int, *, repeat_every: int = 0) -> None:
    """``n`` texts; with ``repeat_every``, every such text repeats the first one."""
    texts = [f"{name} text {i}" for i in range(n)]
    if repeat_every:
        texts = [texts[0] if i and i % repeat_every == 0 else t for i, t in enumerate(texts)]
    store.add_corpus(name, make_corpus(texts))


def _cli(*args, store_path) -> tuple[int, str, str]:
    """Run embex in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--store", str(store_path), *map(str, args)])
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def kept(tmp_path):
    """A store holding a 3-text corpus 'c' with vectors, and the digest of every table."""
    path = tmp_path / "kept.duckdb"
    with Store(path) as s:
        _corpus(s, "c", 3)
        import_vectors(s, "c", np.eye(3, 4, dtype=np.float32) + 0.5, MODEL)
        _corpus(s, "big", 20)
        digest = s.digest()
    return path, digest


# --- every bad vector file: one line, store unchanged ----------------------------------------------


def _npy(path, array):
    np.save(path, array)


def _bad_files(tmp):
    """(file, corpus, extra CLI args, words the one-line error must hold)."""
    rng = np.random.default_rng(0)
    good = rng.normal(size=(20, 4)).astype(np.float32)
    cases = []

    def npy(name, array, message, corpus="big", extra=()):
        path = tmp / name
        np.save(path, array)
        cases.append((path, corpus, extra, message))

    nan = good.copy()
    nan[2, 1] = np.nan
    npy("nan.npy", nan, "1 vector(s) contain NaN or inf (rows [2])")
    inf = good.copy()
    inf[[0, 7], 3] = -np.inf
    npy("inf.npy", inf, "2 vector(s) contain NaN or inf (rows [0, 7])")
    deep = good.copy()
    deep[[5, 19], 0] = np.nan  # found in the second and fourth chunks, after chunks were written
    npy("nan_deep.npy", deep, "2 vector(s) contain NaN or inf (rows [5, 19])", extra=("--chunk-rows", "4"))
    npy("nan_first_chunk.npy", deep, "2 vector(s) contain NaN or inf (rows [5, 19])")
    npy("overflow.npy", good.astype(np.float64) * 1e40, "too large for float32")
    zero = good.copy()
    zero[11] = 0
    npy("zero_row.npy", zero, "1 vector(s) are all zeros (rows [11])", extra=("--chunk-rows", "4"))
    npy("complex.npy", good + 1j, "complex numbers")
    npy("one_d.npy", good[:, 0], "expected a 2-D array (n_texts, dim), got shape (20,)")
    npy("three_d.npy", good.reshape(20, 2, 2), "expected a 2-D array (n_texts, dim), got shape (20, 2, 2)")
    npy("zero_rows.npy", good[:0], "holds no vectors")
    npy("zero_dim.npy", good[:, :0], "the vectors are empty")
    npy("strings.npy", good.astype(str), "are text")
    npy("bools.npy", good > 0, "not numbers")
    npy("structured.npy", np.zeros(20, dtype=[("a", "f4"), ("b", "f4")]), "structured array")
    npy("too_long.npy", np.ones((20, MAX_VECTOR_DIM + 1), dtype=np.float16), "is the array transposed")
    npy("more_rows.npy", good[:5], "5 vectors for 3 documents", corpus="c")
    npy("other_dim.npy", good[:3, :3], "vectors have dimension 3, but this model's are 4", corpus="c")
    # (only under MODEL, whose vectors are 4-d: the loop below uses a new model id)
    np.save(tmp / "pickled.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    cases.append((tmp / "pickled.npy", "big", (), "never loaded"))
    cut = tmp / "cut.npy"
    cut.write_bytes((tmp / "nan.npy").read_bytes()[:-40])
    cases.append((cut, "big", (), "is cut short"))
    (tmp / "garbage.npy").write_bytes(b"\x00\x01 not a numpy file at all" * 10)
    cases.append((tmp / "garbage.npy", "big", (), "could not be read as vectors"))
    np.savez(tmp / "ids_short.npz", vectors=good[:3], ids=np.array([0, 1]))
    cases.append((tmp / "ids_short.npz", "c", (), "ids must be 3 positions in 0..2"))
    np.savez(tmp / "ids_out.npz", vectors=good[:3], ids=np.array([0, 1, 3]))
    cases.append((tmp / "ids_out.npz", "c", (), "ids must be 3 positions in 0..2"))
    np.savez(tmp / "ids_frac.npz", vectors=good[:3], ids=np.array([0, 1.5, 2]))
    cases.append((tmp / "ids_frac.npz", "c", (), "ids must be document positions"))

    def parquet(name, table, message, corpus="big", extra=()):
        pq.write_table(table, tmp / name, row_group_size=6)
        cases.append((tmp / name, corpus, extra, message))

    rows = good.tolist()
    parquet(
        "ragged.parquet",
        pa.table({"vector": rows[:13] + [rows[13][:3]] + rows[14:]}),
        "have different lengths (row 13 has 3 numbers, row 0 has 4)",
    )
    parquet("strings.parquet", pa.table({"vector": [[str(v) for v in r] for r in rows]}), "lists of text")
    parquet(
        "null_row.parquet", pa.table({"vector": rows[:9] + [None] + rows[10:]}), "row(s) [9] have no vector"
    )
    parquet(
        "null_value.parquet", pa.table({"vector": rows[:8] + [[1.0, None, 2.0, 3.0]] + rows[9:]}), "row 8"
    )
    parquet(
        "nan.parquet", pa.table({"vector": rows[:17] + [[1.0, np.nan, 2.0, 3.0]] + rows[18:]}), "rows [17]"
    )
    parquet("no_list.parquet", pa.table({"x": np.arange(20.0)}), "name the vector column")
    parquet(
        "zero_rows.parquet", pa.table({"vector": pa.array([], pa.list_(pa.float32()))}), "holds no vectors"
    )
    parquet(
        "empty_lists.parquet",
        pa.table({"vector": pa.array([[]] * 20, pa.list_(pa.float32()))}),
        "the vectors are empty",
    )
    parquet(
        "ids_range.parquet",
        pa.table({"id": [0, 1, 2, 3], "vector": rows[:4]}),
        "ids must be 4 positions in 0..2",
        corpus="c",
    )
    parquet(
        "ids_null.parquet", pa.table({"id": [0, None, 2], "vector": rows[:3]}), "have no 'id'", corpus="c"
    )
    parquet(
        "ids_text.parquet", pa.table({"id": ["a", "b", "c"], "vector": rows[:3]}), "ids must be", corpus="c"
    )
    (tmp / "garbage.parquet").write_bytes(b"PAR1" + os.urandom(200))
    cases.append((tmp / "garbage.parquet", "big", (), "could not be read as Parquet"))
    (tmp / "v.csv").write_text("1,2\n")
    cases.append((tmp / "v.csv", "big", (), "must be .npy, .npz or .parquet"))
    cases.append((tmp / "missing.npy", "big", (), "No such file"))
    return cases


def test_every_bad_vector_file_is_one_line_and_leaves_the_store_unchanged(tmp_path, kept):
    path, before = kept
    cases = _bad_files(tmp_path)
    assert len(cases) >= 35
    for file, corpus, extra, message in cases:
        code, out, err = _cli("import-vectors", corpus, file, "--model-id", MODEL, *extra, store_path=path)
        assert code == 2, (file.name, out, err)
        assert err.startswith("embex: error: ") and message in err, (file.name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (file.name, err)
        assert out == ""
    with Store(path) as s:
        assert s.digest() == before
    # the same files under a model id the store does not know: no table, no model row is left
    for file, corpus, extra, _message in cases:
        if file.name == "other_dim.npy":
            continue
        code, _, err = _cli(
            "import-vectors", corpus, file, "--model-id", "new-model", *extra, store_path=path
        )
        assert code == 2 and "embex: error: " in err, (file.name, err)
    with Store(path) as s:
        assert s.digest() == before and s.model_dim("new-model") is None


def test_a_bad_row_in_a_real_embex_process_is_one_line(tmp_path, kept):
    """The same refusal from a real `embex` process, deep in a file of several chunks."""
    path, before = kept
    X = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    X[18, 2] = np.inf
    np.save(tmp_path / "late.npy", X)
    proc = subprocess.run(
        [sys.executable, "-m", "analytics.cli", "--store", str(path), "import-vectors", "big"]
        + [str(tmp_path / "late.npy"), "--model-id", MODEL, "--chunk-rows", "3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "embex: error: late.npy: 1 vector(s) contain NaN or inf (rows [18]); fix or drop them before importing.\n"
    )
    with Store(path) as s:
        assert s.digest() == before


def test_the_size_cap_and_its_flag_are_gone(tmp_path):
    """Local files have no size limit (the old message suggested a --max-mb flag that
    import-vectors never had); the API may still set one."""
    X = np.random.default_rng(2).normal(size=(40, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", X)
    with pytest.raises(CorpusError) as info:
        open_vectors(tmp_path / "v.npy", max_bytes=100)
    assert "max_bytes=" in str(info.value) and "--max-mb" not in str(info.value)
    np.testing.assert_array_equal(load_vectors(tmp_path / "v.npy")[0], X)


def test_progress_is_a_bar_on_a_terminal(tmp_path, kept):
    """On a terminal, import-vectors draws a tqdm bar over the rows (stderr as a real pty)."""
    import fcntl
    import pty
    import struct
    import termios

    path, _ = kept
    np.save(tmp_path / "v.npy", np.random.default_rng(9).normal(size=(20, 4)).astype(np.float32))
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal's width
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "analytics.cli", "--store", str(path), "import-vectors", "big"]
            + [str(tmp_path / "v.npy"), "--model-id", "terminal", "--chunk-rows", "5"],
            stdout=subprocess.PIPE,
            stderr=child_fd,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        os.close(child_fd)
        child_fd = None
        seen = b""
        while True:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not data:
                break
            seen += data
    finally:
        os.close(main_fd)
        if child_fd is not None:
            os.close(child_fd)
    assert proc.returncode == 0, seen
    text = seen.decode(errors="replace")
    assert "importing v.npy" in text and "100%" in text and "20.0/20.0" in text, text
    assert "Imported 20 vectors (4-d)" in proc.stdout


# --- what is stored and read back: the same as before ---------------------------------------------


def test_cli_import_stores_what_the_earlier_code_stored(tmp_path):
    """Chunked CLI import == the earlier one-shot import, table for table; read-back equal too."""
    n, dim = 1000, 24
    X = np.random.default_rng(3).normal(size=(n, dim))  # float64: cast to float32, as before
    X[::97] = X[0]  # the repeated texts' rows (the earlier code kept any one of them)
    np.save(tmp_path / "v.npy", X)
    stores = {}
    for kind in ("old", "new"):
        with Store(tmp_path / f"{kind}.duckdb") as s:
            _corpus(s, "c", n, repeat_every=97)  # repeated texts: one cache entry each
            if kind == "old":
                added = _old_import(s, "c", X, MODEL)
            else:
                args = ("import-vectors", "c", tmp_path / "v.npy", "--model-id", MODEL, "--chunk-rows", 64)
                code, out, err = _cli(*args, "--json", store_path=tmp_path / "new.duckdb")
                assert code == 0 and err == "", err
                added = json.loads(out)["added"]
            stores[kind] = (added, s.digest(), s.vectors("c", MODEL), _old_read(s, "c", MODEL))
    old, new = stores["old"], stores["new"]
    assert new[0] == old[0] == n - (n - 1) // 97
    for table in ("models", f"embeddings_{dim}"):
        assert new[1][table] == old[1][table]
    assert new[2].tobytes() == old[3].tobytes() == new[3].tobytes() == old[2].tobytes()


def test_a_repeated_text_keeps_the_first_rows_vector(store):
    store.add_corpus("c", make_corpus(["same", "other", "same", "same"]))
    V = np.array([[1, 0], [0, 1], [3, 4], [1, 1]], dtype=np.float32)
    assert import_vectors(store, "c", V, MODEL, chunk_rows=1) == 2
    np.testing.assert_array_equal(store.vectors("c", MODEL), _unit(V[[0, 1, 0, 0]]))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda X: pa.array(X.tolist(), pa.list_(pa.float64())), id="list-float64"),
        pytest.param(lambda X: pa.array(X.tolist(), pa.large_list(pa.float32())), id="large-list"),
        pytest.param(lambda X: pa.array(X.tolist(), pa.list_(pa.float32(), X.shape[1])), id="fixed-size"),
        pytest.param(lambda X: pa.array(np.rint(X * 100).astype(int).tolist()), id="list-int"),
    ],
)
def test_parquet_row_groups_and_ids_import_as_arrays_do(tmp_path, make):
    n, dim = 5000, 16
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, dim)).astype(np.float32)
    order = rng.permutation(n)
    column = make(X[order])
    table = pa.table({"doc": order, "emb": column, "other": pa.array([[1.0, 2.0]] * n)})
    pq.write_table(table, tmp_path / "v.parquet", row_group_size=777)  # uneven row groups
    with Store(tmp_path / "s.duckdb") as s:
        _corpus(s, "c", n)
        vf = open_vectors(tmp_path / "v.parquet", vector_column="emb", id_column="doc")
        assert vf.shape == (n, dim) and vf.ids == order.tolist()
        seen = []
        assert (
            import_vectors(s, "c", vf, MODEL, chunk_rows=1000, progress=lambda d, t: seen.append((d, t))) == n
        )
        assert seen[-1] == (n, n) and [d for d, _ in seen] == sorted(d for d, _ in seen)
        expected = np.empty_like(X)
        expected[order] = _unit(np.array(column.to_pylist()))
        assert s.vectors("c", MODEL).tobytes() == expected.tobytes()
        assert import_vectors(s, "c", vf, MODEL) == 0  # all cached already


def test_npz_with_ids_and_repeated_ids_keep_the_first_row(store):
    _corpus(store, "c", 4)
    V = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [5, 5, 5]], dtype=np.float32)
    # ids repeat document 2: its first row ([0, 1, 0]) is kept, not the later [5, 5, 5]
    assert import_vectors(store, "c", V, MODEL, ids=[3, 2, 0, 1, 2]) == 4
    got = store.vectors("c", MODEL)
    np.testing.assert_array_equal(got, _unit(V[[2, 3, 1, 0]]))


def test_memory_limit_is_lowered_while_a_big_write_runs_and_restored(store, monkeypatch):
    n, dim, pool = 20_000, 256, 16 * 2**20  # 20 MB of vectors, over the pool
    _corpus(store, "c", n)
    before = store._cur().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    monkeypatch.setattr(store_module, "_WRITE_BUFFER_POOL", pool)
    during, methods = [], []

    def watch(done, total):
        cur = store._con.cursor()
        during.append(cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        methods.append(cur.execute("SELECT current_setting('disabled_compression_methods')").fetchall()[0][0])
        cur.close()

    X = np.random.default_rng(5).normal(size=(n, dim)).astype(np.float32)
    assert import_vectors(store, "c", X, MODEL, chunk_rows=4000, progress=watch) == n
    assert len(during) == 5 and all(store_module._setting_bytes(d) <= pool for d in during), during
    assert all(set(m.lower().split(",")) == {"alp", "alprd"} for m in methods), methods  # floats uncompressed
    after = store._cur().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert abs(store_module._setting_bytes(after) - store_module._setting_bytes(before)) < 2**20
    assert (
        store._cur().execute("SELECT current_setting('disabled_compression_methods')").fetchall()[0][0] == ""
    )
    np.testing.assert_array_equal(store.vectors("c", MODEL), _unit(X))
    # a failed write sets it back too
    _corpus(store, "d", n)
    X[-1] = np.nan
    with pytest.raises(CorpusError, match=r"rows \[19999\]"):
        import_vectors(store, "d", X, "other", chunk_rows=4000)
    after = store._cur().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert abs(store_module._setting_bytes(after) - store_module._setting_bytes(before)) < 2**20


def test_setting_bytes_reads_what_duckdb_prints():
    f = store_module._setting_bytes
    assert f("953.6 MiB") == pytest.approx(953.6 * 2**20)
    assert f("1.5 GB") == 1.5e9 and f("0 bytes") == 0 and f("16.0 GiB") == 16 * 2**30
    assert f("no limit") == float("inf")


def test_the_dimension_limits_agree():
    assert MAX_VECTOR_DIM == store_module._MAX_DIM


def test_load_vectors_maps_a_float32_npy_and_checks_every_row(tmp_path):
    X = np.random.default_rng(6).normal(size=(300, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", X)
    got, ids = load_vectors(tmp_path / "v.npy")
    assert ids is None and not got.flags.writeable and got.base is not None  # a view of the file
    np.testing.assert_array_equal(got, X)
    np.save(tmp_path / "f.npy", np.asfortranarray(X.astype(np.float64)))
    got, _ = load_vectors(tmp_path / "f.npy")  # Fortran order, float64: converted, in memory
    assert got.flags.writeable and got.dtype == np.float32
    np.testing.assert_array_equal(got, X)
    X[299, 0] = np.nan
    np.save(tmp_path / "v.npy", X)
    with pytest.raises(CorpusError, match=r"rows \[299\]"):
        load_vectors(tmp_path / "v.npy")


def test_a_few_texts_among_many_vectors_read_back_right(store):
    """A small corpus whose texts' vectors lie far apart in a big table (the sparse lookup)."""
    n = 70_000
    _corpus(store, "many", n)
    X = np.random.default_rng(10).normal(size=(n, 3)).astype(np.float32)
    import_vectors(store, "many", X, MODEL)
    texts = store.texts("many")
    picks = [69_999, 0, 35_000, 0]
    store.add_corpus("few", make_corpus([texts[i] for i in picks]))
    np.testing.assert_array_equal(store.vectors("few", MODEL), _unit(X)[picks])
    assert store.vectors("few", MODEL).tobytes() == _old_read(store, "few", MODEL).tobytes()


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.integers(0, 300_000), min_size=1, max_size=40), seed=st.integers(0, 2**16))
def test_row_places_dense_and_sparse_agree(rows, seed):
    """Each vector row fills one of the documents whose text it holds, and ``placed`` names that
    document for every pair; a row id of no pair fills none. Both lookups (dense slots, sorted
    search) answer so."""
    rows = np.array(rows, dtype=np.int64)
    positions = np.random.default_rng(seed).permutation(len(rows)).astype(np.int64)
    lo, hi = int(rows.min()), int(rows.max())
    others = np.setdiff1d(np.clip(np.concatenate([rows - 1, rows + 1]), lo, hi), rows)
    for sparse in (False, True):
        where, placed = store_module._row_places(rows, positions, lo, hi, force_sparse=sparse)
        filled = where(rows)
        assert (filled == placed).all()
        for row, position in zip(rows, filled):
            assert row in rows[positions == position]  # a document with this row's text
        assert (where(others) == -1).all()


def test_read_ahead_raises_the_readers_error_and_stops_early():
    def batches():
        yield 1
        yield 2
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for b in store_module._prefetched(batches()):
            got.append(b)
    assert got == [1, 2]

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    for b in store_module._prefetched(endless()):
        if b == 3:  # the next one is being fetched meanwhile, in a thread
            assert any(t.name.startswith("embex-read-ahead") and t.is_alive() for t in threading.enumerate())
            break
    assert not any(t.name.startswith("embex-read-ahead") and t.is_alive() for t in threading.enumerate())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 60),
    dim=st.integers(1, 9),
    repeat_every=st.integers(0, 5),
    chunk_rows=st.integers(1, 70),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_import_then_read_back_matches_the_earlier_code(
    tmp_path_factory, n, dim, repeat_every, chunk_rows, shuffle, seed
):
    """Any corpus (repeated texts too), any chunking, ids or not: what the earlier code stored
    and read back, bit for bit; a corpus sharing the vectors reads the same rows."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim)) + 0.01  # float64
    ids = rng.permutation(n) if shuffle else None
    if repeat_every:  # the earlier code kept any one of a repeated text's rows: make them equal
        rows = np.arange(n) if ids is None else ids
        X[np.isin(rows, np.arange(0, n, repeat_every))] = X[np.flatnonzero(rows == 0)[0]]
    results = []
    for kind in ("old", "new"):
        with Store(tmp_path_factory.mktemp(kind) / "s.duckdb") as s:
            _corpus(s, "c", n, repeat_every=repeat_every)
            if kind == "old":
                added = _old_import(s, "c", X, MODEL, ids=ids)
            else:
                added = import_vectors(s, "c", X, MODEL, ids=ids, chunk_rows=chunk_rows)
            results.append((added, s.vectors("c", MODEL).tobytes(), _old_read(s, "c", MODEL).tobytes()))
            if kind == "new":
                texts = s.texts("c")
                s.add_corpus("again", make_corpus(texts[::-1]))
                np.testing.assert_array_equal(s.vectors("again", MODEL), s.vectors("c", MODEL)[::-1])
    (old_added, old_v, old_r), (new_added, new_v, new_r) = results
    assert new_added == old_added
    assert new_v == old_v == old_r == new_r


def test_arrays_and_ids_are_checked_as_before(store):
    with pytest.raises(CorpusError, match="different lengths or are not numbers"):
        VectorFile.from_array([[1.0, 2.0], [3.0]])
    with pytest.raises(CorpusError, match="complex"):
        VectorFile.from_array(np.ones((2, 2)) * 1j)
    _corpus(store, "c", 3)
    V = np.arange(1, 7, dtype=np.float32).reshape(3, 2)
    with pytest.raises(EmbeddingError, match="ids must be document positions"):
        import_vectors(store, "c", V, MODEL, ids=["a", "b", "c"])
    assert import_vectors(store, "c", V, MODEL, ids=["2", "1", "0"]) == 3  # digits, as int() read them
    np.testing.assert_array_equal(store.vectors("c", MODEL), _unit(V[::-1]))


# --- a million vectors through the CLI --------------------------------------------------------------


@pytest.mark.slow  # 1.5 GB written, imported and read back: ~40 s on a 2-core machine
def test_a_million_vectors_through_the_cli(tmp_path):
    n, dim = 1_000_000, 384
    path, store_path = tmp_path / "million.npy", tmp_path / "s.duckdb"
    try:
        X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
        rng = np.random.default_rng(7)
        for start in range(0, n, 100_000):
            X[start : start + 100_000] = rng.standard_normal((100_000, dim), dtype=np.float32)
        X.flush()
        del X

        def texts(size=100_000):
            for start in range(0, n, size):
                yield [f"text {i}" for i in range(start, start + size)], [{}] * size

        with Store(store_path) as s:
            s.add_corpus_stream("million", texts())
        proc = subprocess.Popen(
            [sys.executable, "-m", "analytics.cli", "--store", str(store_path), "import-vectors", "million"]
            + [str(path), "--model-id", MODEL],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        peak = _peak_rss_while(proc)
        out, err = proc.communicate()
        assert proc.returncode == 0, err
        assert "Imported 1,000,000 vectors (384-d)" in out and "(1,000,000 new)" in out
        # memory: well under the file (1.43 GiB), which was read a chunk at a time
        assert peak < 0.75 * path.stat().st_size, (peak, path.stat().st_size)
        source = np.load(path, mmap_mode="r")
        with Store(store_path, read_only=True) as s:
            got = s.vectors("million", MODEL)
        assert got.shape == (n, dim) and got.dtype == np.float32
        for start in range(0, n, 100_000):  # every row, a block at a time, bit for bit
            assert got[start : start + 100_000].tobytes() == _unit(source[start : start + 100_000]).tobytes()
        sample = np.random.default_rng(8).choice(n, 1000, replace=False)
        np.testing.assert_allclose(np.linalg.norm(got[sample], axis=1), 1, rtol=1e-6)
        del source, got
    finally:  # 3 GB: not left for pytest's kept temp folders
        path.unlink(missing_ok=True)
        store_path.unlink(missing_ok=True)


def _peak_rss_while(proc) -> int:
    """The largest resident set (bytes) of a running process, sampled until it ends."""
    import time

    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            pass
        time.sleep(0.2)
    return peak
