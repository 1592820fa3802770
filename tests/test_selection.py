"""analytics.selection: what a selection resolves to, and the per-column counts beside the map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.errors import ParameterError
from analytics.memory import Metadata
from analytics.selection import Selection, cell_key, facet_counts, resolve, rows_key, search_rows

TEXTS = ["Refund my card", "hello there", "card declined", "what is the weather", "REFUND please"]
META = [
    {"intent": "refund", "domain": "banking", "n": 1},
    {"intent": "greet", "domain": "small_talk", "n": 2},
    {"intent": "declined", "domain": "banking", "n": 1.0},
    {"intent": "oos", "n": 3},
    {"intent": "refund", "domain": "banking", "n": True},
]


def test_an_empty_selection_is_every_row():
    sel = Selection("c")
    assert sel.is_everything and sel.describe() == "all rows"
    assert resolve(sel, TEXTS, META).tolist() == [0, 1, 2, 3, 4]


def test_every_part_must_hold():
    sel = Selection("c", rows=(4, 0, 1, 0), filters=(("domain", ("banking",)),), search="refund")
    assert sel.rows == (0, 1, 4)
    assert resolve(sel, TEXTS, META).tolist() == [0, 4]
    assert resolve(sel.with_rows(None), TEXTS, META).tolist() == [0, 4]
    assert resolve(Selection("c", search="card"), TEXTS, META).tolist() == [0, 2]
    assert "3 rows picked on the map" in sel.describe() and "domain = banking" in sel.describe()


def test_missing_and_numbers_filter_as_their_text():
    assert resolve(Selection("c", filters=(("domain", ("",)),)), TEXTS, META).tolist() == [3]
    # 1 and 1.0 read the same in a URL; True is "true", not 1
    assert resolve(Selection("c", filters=(("n", ("1",)),)), TEXTS, META).tolist() == [0, 2]
    assert cell_key(True) == "true" and cell_key(None) == "" and cell_key(2.5) == "2.5"


def test_toggle_adds_and_removes_a_value_and_selections_are_hashable():
    sel = Selection("c").toggle("intent", "oos").toggle("intent", "greet")
    assert dict(sel.filters)["intent"] == ("greet", "oos")
    assert resolve(sel, TEXTS, Metadata(META)).tolist() == [1, 3]
    assert sel.toggle("intent", "oos").toggle("intent", "greet").is_everything
    assert hash(sel) == hash(Selection("c", filters=(("intent", ("oos", "greet")),)))


def test_a_lasso_from_another_corpus_is_refused_with_what_to_do():
    with pytest.raises(ParameterError, match="Clear it and select again"):
        resolve(Selection("c", rows=(9,)), TEXTS, META)


def test_facet_counts_of_a_selection_and_of_all_rows():
    intent, domain = facet_counts(Metadata(META), [0, 3, 4], columns=["intent", "domain"])
    assert intent.values == (("refund", 2), ("oos", 1)) and intent.totals == (2, 1)
    assert intent.distinct == 2 and intent.other == 0
    assert domain.values == (("banking", 2), ("", 1))
    top1 = facet_counts(META, None, columns=["intent"], top=1)[0]
    assert top1.values == (("refund", 2),) and top1.other == 3 and top1.distinct == 4
    assert [f.column for f in facet_counts(META, max_distinct=3)] == ["domain"]
    (with_empty,) = facet_counts(META, [1], columns=["intent"], include_empty=True)
    assert with_empty.values == (("greet", 1), ("refund", 0), ("declined", 0), ("oos", 0))
    assert with_empty.totals == (1, 2, 1, 1) and with_empty.distinct == 1
    with pytest.raises(ParameterError):
        facet_counts(META, top=0)


labels = st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1, max_size=60)


@given(labels, st.data())
def test_facets_count_exactly_the_resolved_rows(cells, data):
    meta = [{} if v is None else {"label": v} for v in cells]
    texts = [f"t{i}" for i in range(len(cells))]
    rows = data.draw(st.lists(st.integers(0, len(cells) - 1), unique=True))
    values = data.draw(st.sets(st.sampled_from(["a", "b", "c", ""])))
    sel = Selection("c", rows=rows, filters=(("label", tuple(values)),))
    got = resolve(sel, texts, Metadata(meta))
    want = [i for i in sorted(rows) if (cells[i] or "") in values] if values else sorted(rows)
    assert got.tolist() == want
    facet = facet_counts(meta, got, columns=["label"], top=10)[0]
    assert sum(c for _, c in facet.values) + facet.other == len(got)


@given(st.lists(st.text(max_size=8), max_size=30), st.text(max_size=3))
def test_search_is_a_case_blind_substring(texts, q):
    hits = search_rows(texts, q).tolist()
    assert hits == [i for i, t in enumerate(texts) if q.casefold() in t.casefold()]
    assert np.all(np.diff(hits) > 0)


@given(st.lists(st.sampled_from(["a", "b", 1, 1.0, True, None, "missing"]), min_size=1, max_size=40))
def test_coded_columns_count_as_plain_lists_do(cells):
    """The fast path over the cache's codes gives the same keys as the row-by-row one."""
    from analytics.selection import column_keys

    meta = [{} if v == "missing" else {"c": v} for v in cells]
    fast_codes, fast_table = column_keys(Metadata(meta), "c")
    slow_codes, slow_table = column_keys(meta, "c")
    assert [fast_table[c] for c in fast_codes] == [slow_table[c] for c in slow_codes]


parts = st.tuples(
    st.none() | st.lists(st.integers(0, 300), max_size=40),
    st.lists(
        st.tuples(st.sampled_from(["intent", "domain"]), st.lists(st.sampled_from(["a", "b", ""]))),
        max_size=3,
    ),
    st.sampled_from(["", "card", "Card"]),
)


@given(parts, parts)
def test_the_cache_key_of_a_selection_names_exactly_the_selection(one, two):
    """Pages key their caches by ``Selection.key`` (a digest) instead of hashing 80,000 row ids:
    two selections share a key exactly when they are equal."""
    a, b = (
        Selection("c", rows, tuple((c, tuple(v)) for c, v in filters), q) for rows, filters, q in (one, two)
    )
    assert (a.key == b.key) == (a == b)
    assert Selection("c", *one[:1]).key != Selection("d", *one[:1]).key
    assert a.key == Selection(a.corpus, a.rows, a.filters, a.search).key  # not of the object: of its parts


@given(
    st.lists(st.integers(0, 10**6), unique=True, max_size=50),
    st.lists(st.integers(0, 10**6), unique=True, max_size=50),
)
def test_rows_key_tells_row_sets_apart(one, two):
    one, two = sorted(one), sorted(two)
    assert (rows_key(np.array(one, dtype=np.int64)) == rows_key(two)) == (one == two)
