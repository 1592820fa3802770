"""analytics.memory: vectors, depths, texts and metadata held once per process (issue 11), and
the depth table bounded at a million rows. Real DuckDB files, random unit vectors, no model."""

from __future__ import annotations

import csv
import io
import threading
import time

import numpy as np
import pytest
from conftest import make_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import Store, tte_depth
from analytics.corpus import Corpus
from analytics.embedding import import_vectors
from analytics.errors import ParameterError, StoreError
from analytics.memory import BUDGET_ENV, Metadata, VectorCache, default_budget, parse_budget
from analytics.tables import depth_csv, depth_rows, label_summary

MODEL = "test-vectors"
DIM = 16


def _add(store: Store, name: str, n: int, seed: int, *, replace: bool = False) -> np.ndarray:
    """A corpus of ``n`` texts (labels a, b, c) with random unit vectors; returns the vectors."""
    texts = [f"{name} text {i} seed {seed}" for i in range(n)]
    store.add_corpus(name, make_corpus(texts, ["abc"[i % 3] for i in range(n)]), replace=replace)
    X = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    import_vectors(store, name, X, MODEL)
    return X


@pytest.fixture
def s(tmp_path):
    with Store(tmp_path / "s.duckdb") as store:
        yield store


def test_vectors_are_read_only_and_the_same_object_each_time(s):
    X = _add(s, "a", 50, 0)
    cache = VectorCache(2**30)
    got = cache.vectors(s, "a", MODEL)
    assert got.flags.writeable is False and got.dtype == np.float32
    np.testing.assert_allclose(got, X, rtol=1e-6)
    with pytest.raises(ValueError, match="read-only"):
        got[0, 0] = 1.0
    assert cache.vectors(s, "a", MODEL) is got  # a hit hands out the same array, no copy
    assert (cache.stats().misses, cache.stats().hits) == (1, 1)


def test_depths_are_read_only_shared_and_right(s):
    X = _add(s, "a", 40, 1)
    cache = VectorCache(2**30)
    d = cache.depths(s, "a", MODEL)
    assert d.flags.writeable is False
    np.testing.assert_allclose(d, tte_depth(X), rtol=1e-5)
    assert cache.depths(s, "a", MODEL) is d
    chord = cache.depths(s, "a", MODEL, "chord")
    np.testing.assert_allclose(chord, tte_depth(X, distance="chord"), rtol=1e-5)
    assert not np.allclose(chord, d)  # its own entry, not the cosine one
    assert cache.stats().misses == 3  # vectors once, then each distance's depths


def test_texts_and_metadata_read_as_the_store_has_them(s):
    _add(s, "a", 30, 2)
    cache = VectorCache(2**30)
    texts, metadata = cache.corpus(s, "a")
    assert isinstance(texts, tuple) and list(texts) == s.texts("a")
    assert metadata == s.metadata("a") and isinstance(metadata, Metadata)
    assert metadata[4] == {"label": "b"} and metadata[-1] == s.metadata("a")[-1]
    assert metadata.column("label") == [m["label"] for m in s.metadata("a")]
    assert cache.corpus(s, "a")[1] is metadata


def test_least_recently_used_corpus_is_evicted_under_the_budget(s):
    for i, name in enumerate("abc"):
        _add(s, name, 100, 10 + i)
    one = 100 * DIM * 4
    cache = VectorCache(2 * one + one // 2)  # room for two corpora's vectors, not three
    a = cache.vectors(s, "a", MODEL)
    b = cache.vectors(s, "b", MODEL)
    assert cache.vectors(s, "a", MODEL) is a  # a is now the most recently used
    cache.vectors(s, "c", MODEL)
    stats = cache.stats()
    assert stats.evictions == 1 and stats.entries == 2 and stats.bytes == 2 * one
    assert {k[2] for k in stats.keys} == {"a", "c"}  # b, least recently used, went
    assert cache.vectors(s, "a", MODEL) is a
    b_again = cache.vectors(s, "b", MODEL)
    assert b_again is not b and np.array_equal(b_again, b)  # loaded afresh
    assert {k[2] for k in cache.stats().keys} == {"a", "b"}  # and c, now the oldest, went
    assert cache.stats().bytes <= cache.budget_bytes


def test_an_entry_bigger_than_the_budget_is_returned_but_not_kept(s):
    X = _add(s, "a", 20, 3)
    cache = VectorCache(X.nbytes - 1)
    first = cache.vectors(s, "a", MODEL)
    np.testing.assert_allclose(first, X, rtol=1e-6)
    second = cache.vectors(s, "a", MODEL)
    assert second is not first
    stats = cache.stats()
    assert stats.entries == 0 and stats.bytes == 0 and stats.not_kept == 2 and stats.misses == 2


def test_new_content_under_the_same_name_gets_fresh_vectors(s):
    old = _add(s, "a", 25, 4)
    cache = VectorCache(2**30)
    before = cache.vectors(s, "a", MODEL)
    texts_before = cache.corpus(s, "a")[0]
    np.testing.assert_allclose(before, old, rtol=1e-6)
    new = _add(s, "a", 30, 5, replace=True)  # other texts, so another fingerprint
    after = cache.vectors(s, "a", MODEL)
    assert after.shape == (30, DIM) and after is not before
    np.testing.assert_allclose(after, new, rtol=1e-6)
    assert cache.corpus(s, "a")[0] == tuple(s.texts("a")) != texts_before
    np.testing.assert_allclose(cache.depths(s, "a", MODEL), tte_depth(new), rtol=1e-5)


class _SlowStore(Store):
    """A real store whose vector reads are counted and held until released, so the test can
    have every thread ask while the first load is still running."""

    def __init__(self, path):
        super().__init__(path)
        self.reads = 0
        self.release = threading.Event()

    def vectors(self, name, model_id):
        self.reads += 1
        assert self.release.wait(30), "the test never released the load"
        return super().vectors(name, model_id)


def test_threads_asking_at_once_load_once(tmp_path):
    with _SlowStore(tmp_path / "s.duckdb") as s:
        _add(s, "a", 60, 6)
        cache = VectorCache(2**30)
        results, errors = [None] * 8, []

        def ask(i):
            try:
                results[i] = cache.vectors(s, "a", MODEL)
            except Exception as exc:  # surfaced below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30  # a guard against hanging, not a timed assertion
        while cache.stats().misses + cache.stats().joined < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.release.set()
        for t in threads:
            t.join()
        assert not errors
        assert s.reads == 1
        stats = cache.stats()
        assert (stats.misses, stats.joined) == (1, 7)
        assert all(r is results[0] for r in results)


def test_threads_waiting_on_a_failed_load_get_its_error(tmp_path):
    with _SlowStore(tmp_path / "s.duckdb") as s:
        s.add_corpus("bare", make_corpus(["one", "two", "three"]))  # no vectors
        cache = VectorCache(2**30)
        errors = []

        def ask():
            try:
                cache.vectors(s, "bare", MODEL)
            except StoreError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30  # a guard against hanging, not a timed assertion
        while cache.stats().misses + cache.stats().joined < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.release.set()
        for t in threads:
            t.join()
        assert len(errors) == 4 and len({id(e) for e in errors}) == 1  # one load, one error
        assert s.reads == 1 and cache.stats().entries == 0


def test_a_failed_load_raises_in_every_caller_and_is_not_kept(s):
    cache = VectorCache(2**30)
    s.add_corpus("bare", make_corpus(["one", "two", "three"]))
    with pytest.raises(Exception, match="embed"):
        cache.vectors(s, "bare", MODEL)
    assert cache.stats().entries == 0
    _add(s, "bare", 3, 7, replace=True)
    assert cache.vectors(s, "bare", MODEL).shape == (3, DIM)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("4GB", 4 * 2**30),
        ("512MB", 512 * 2**20),
        ("1.5GiB", 3 * 2**29),
        ("2g", 2 * 2**30),
        (" 3 kb ", 3 * 2**10),
        ("1000000", 1_000_000),
        ("1T", 2**40),
        ("0", 0),
        (123, 123),
    ],
)
def test_budget_sizes_are_read(text, expected):
    assert parse_budget(text) == expected
    assert VectorCache(text).budget_bytes == expected


@pytest.mark.parametrize("text", ["", "lots", "-1GB", "4 PB", "1e9", "nan", "GB", "4 GB GB", True, -5])
def test_a_bad_budget_says_what_is_accepted(text):
    with pytest.raises(ParameterError, match="4GB|zero or more"):
        parse_budget(text)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "768MB")
    assert VectorCache().budget_bytes == 768 * 2**20
    monkeypatch.setenv(BUDGET_ENV, "half the RAM")
    with pytest.raises(ParameterError, match=f"{BUDGET_ENV}.*512MB"):
        VectorCache()
    monkeypatch.delenv(BUDGET_ENV)
    assert default_budget() > 0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from(["", "B", "k", "KB", "KiB", "M", "MB", "G", "GiB", "T"]))
def test_budget_round_trip(number, unit):
    scale = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[unit[:1].lower()]
    assert parse_budget(f"{number}{unit}") == number * scale


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, width=32),
    st.sampled_from(["x", "y", "", "1", "True"]),
    st.text(max_size=5),
    st.lists(st.integers(0, 2), max_size=2),
)
_ROWS = st.lists(st.dictionaries(st.sampled_from(["label", "id", "score", "x"]), _VALUES), max_size=40)


@settings(max_examples=150, deadline=None)
@given(_ROWS)
def test_metadata_reads_back_every_row_with_its_types(rows):
    m = Metadata(rows)
    assert len(m) == len(rows) and m == rows
    typed = [[(k, type(v), v) for k, v in sorted(r.items())] for r in m]
    assert typed == [[(k, type(v), v) for k, v in sorted(r.items())] for r in rows]  # 1 stays 1, True True
    for key in ("label", "id", "score", "x"):
        assert m.column(key, "-") == [r.get(key, "-") for r in rows]
    assert m[1:5] == rows[1:5]


def test_metadata_is_compact_for_a_label_column():
    rows = [{"label": f"topic {i % 150}", "split": "train"} for i in range(200_000)]
    m = Metadata(rows)
    assert m.nbytes < 10 * len(rows)  # two int32 code columns and 151 values (a dict: ~200 bytes)
    assert m[123_456] == rows[123_456] and m.columns == ["label", "split"]


def _hetero(n: int) -> tuple[list[str], list[dict], np.ndarray]:
    rng = np.random.default_rng(8)
    texts = [f'text {i}, with a comma and a "quote"' for i in range(n)]
    metadata = [{"label": "abc"[i % 3], **({"extra": i} if i % 4 == 0 else {})} for i in range(n)]
    return texts, metadata, rng.random(n) + 0.5


def test_depth_rows_head_and_tail_are_the_two_ends_of_the_full_table():
    texts, metadata, d = _hetero(50)
    full = depth_rows(texts, metadata, d)
    assert depth_rows(texts, metadata, d, head=5, tail=3) == full[:5] + full[-3:]
    assert depth_rows(texts, metadata, d, head=30, tail=30) == full  # overlapping: each row once
    assert depth_rows(texts, metadata, d, head=4) == full[:4]
    assert depth_rows(texts, metadata, d, tail=2) == full[-2:]
    assert [r["rank"] for r in depth_rows(texts, metadata, d, head=2, tail=2)] == [1, 2, 49, 50]


@pytest.mark.parametrize("columnar", [False, True])
def test_depth_csv_holds_every_row_of_the_table(columnar):
    texts, metadata, d = _hetero(103)
    full = depth_rows(texts, metadata, d)
    data = depth_csv(texts, Metadata(metadata) if columnar else metadata, d, chunk_rows=10)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    assert list(rows[0]) == ["rank", "row", "depth", "percentile", "text", "label", "extra"]
    assert len(rows) == 103
    assert [r["text"] for r in rows] == [r["text"] for r in full]
    assert [float(r["depth"]) for r in rows] == [r["depth"] for r in full]
    assert [r["extra"] for r in rows] == [str(r.get("extra", "")) for r in full]


def test_label_summary_is_the_same_from_dicts_and_from_columns():
    texts, metadata, d = _hetero(90)
    metadata[7]["label"] = None  # str(None) is its own group, as a missing key's "" is
    del metadata[8]["label"]
    summary = label_summary(metadata, d, "label")
    assert summary == label_summary(Metadata(metadata), d, "label")
    groups = {r["label"]: r for r in summary}
    assert set(groups) == {"a", "b", "c", "None", ""}
    want = [float(x) for x, m in zip(d, metadata) if m.get("label") == "a"]
    assert groups["a"]["texts"] == len(want)
    assert groups["a"]["mean depth"] == round(float(np.mean(want)), 5)
    assert groups["a"]["median depth"] == round(float(np.median(want)), 5)
    assert groups["a"]["min depth"] == round(min(want), 5)
    assert [r["mean depth"] for r in summary] == sorted((r["mean depth"] for r in summary), reverse=True)


def test_corpus_stores_compact_metadata_for_heterogeneous_rows(s):
    texts, metadata, _ = _hetero(12)
    s.add_corpus("h", Corpus(texts, metadata, "text", "test"))
    got = VectorCache(2**30).corpus(s, "h")[1]
    assert got == metadata and got.columns == ["label", "extra"]
    assert got[1] == {"label": "b"} and got[4] == {"label": "b", "extra": 4}
