"""Overlap between corpora F and G: identical texts, same openings, near-duplicate embeddings.

Fast tier: the sample's texts with its shipped real embeddings (no model is loaded)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import EmbeddingError, ParameterError
from analytics.overlap import check_overlap, normalised_opening

VECTORS = ROOT / "sample_data" / "ag_news.vectors.npy"
# Rows of the sample (World) found by scanning all 1,900 World texts: two pairs at cosine
# 0.985 and 0.988 (one report, reworded headline) and one pair with the same first 50
# normalised characters (cosine 0.92); no other pair of World texts meets any rule.
NEAR_PAIRS = [(364, 388), (3649, 3654)]
OPENING_PAIR = (5039, 5042)


@pytest.fixture(scope="module")
def ag_news(sample_rows):
    labels = np.array([r["label"] for r in sample_rows])
    return [r["text"] for r in sample_rows], np.load(VECTORS), labels


def test_disjoint_topics_pass(ag_news):
    texts, X, labels = ag_news
    world, sports = np.flatnonzero(labels == "World"), np.flatnonzero(labels == "Sports")
    report = check_overlap([texts[i] for i in world], [texts[i] for i in sports], X[world], X[sports])
    assert report.ok and report.warning() is None and report.compared_g == 1900
    assert report.summary().startswith("F (1,900) and G (1,900) share no texts")
    assert report.disjoint_f.size == report.disjoint_g.size == 1900 and report.pairs() == []


def test_each_rule_finds_its_pairs_on_real_news(ag_news):
    texts, X, labels = ag_news
    partners = [b for _, b in NEAR_PAIRS] + [OPENING_PAIR[1]]
    f_rows = np.setdiff1d(np.flatnonzero(labels == "World"), partners)
    copies = [i for i in f_rows[:30] if i not in (364, 3649, 5039)][:20]
    g_rows = np.r_[np.flatnonzero(labels == "Sports")[:200], partners, copies]
    F_texts, G_texts = [texts[i] for i in f_rows], [texts[i] for i in g_rows]
    report = check_overlap(F_texts, G_texts, X[f_rows], X[g_rows])

    assert (report.identical_g.sum(), report.opening_g.sum(), report.near_g.sum()) == (20, 1, 2)
    assert (report.identical_f.sum(), report.opening_f.sum(), report.near_f.sum()) == (20, 1, 2)
    assert report.n_overlap_g == report.n_overlap_f == 23 and not report.ok
    found = {(int(f_rows[i]), int(g_rows[j]), rule) for i, j, rule in report.pairs(None)}
    assert found == {
        *((a, b, "near-duplicate embedding") for a, b in NEAR_PAIRS),
        (*OPENING_PAIR, "same opening"),
        *((i, i, "identical") for i in copies),
    }
    assert report.disjoint_g.tolist() == list(range(200))  # the Sports texts
    assert report.disjoint_f.size == f_rows.size - 23
    # without vectors only the text rules apply
    texts_only = check_overlap(F_texts, G_texts)
    assert (texts_only.n_overlap_g, texts_only.compared_g, texts_only.near_g.any()) == (21, 0, False)


def test_the_warning_says_how_many_and_what_to_do(ag_news):
    texts, X, labels = ag_news
    world = np.flatnonzero(labels == "World")[:100]
    sports = np.flatnonzero(labels == "Sports")[:100]
    g_rows = np.r_[sports[:70], world[:30]]  # a third of G is copied from F
    report = check_overlap([texts[i] for i in world], [texts[i] for i in g_rows], X[world], X[g_rows])
    message = report.warning()
    assert "30 of 100 G texts overlap F (30 identical, 0 with the same first 50 characters" in message
    assert "30 of 100 F texts overlap G" in message
    assert "every shift test is conservative" in message
    assert "Drop the overlapping texts from one side (test F against the 70 G texts that" in message
    assert "test on the disjoint parts (70 F texts against 70 G texts)" in message


def test_repeated_texts_count_once_per_row_on_each_side():
    F = ["alpha story", "beta story", "alpha story", "gamma"]
    G = ["alpha story", "alpha story", "delta", "beta story!"]
    report = check_overlap(F, G)
    assert report.identical_f.tolist() == [True, False, True, False]
    assert report.identical_g.tolist() == [True, True, False, False]
    assert report.opening_g.tolist() == [False, False, False, True]  # "beta story!" ~ "beta story"
    assert report.opening_f.tolist() == [False, True, False, False]
    assert report.match_g.tolist() == [0, 0, -1, 1]


def test_openings_are_normalised_and_cut_at_opening_chars():
    assert normalised_opening("  Ｈｅｌｌｏ,   WORLD!!  — the_end ") == "hello world the end"
    assert normalised_opening("ÉCOLE  fermée") == "école fermée"
    assert normalised_opening("?!…") == ""
    long_a = "Markets rally as oil falls; investors cheer the news from OPEC today."
    long_b = "MARKETS RALLY AS OIL FALLS -- investors cheer the news: a different ending."
    assert check_overlap([long_a], [long_b]).opening_g.all()
    assert not check_overlap([long_a], [long_b], opening_chars=60).opening_g.any()
    assert check_overlap(["?!"], ["…"]).ok  # no words: no opening to share


def test_near_duplicates_by_embedding_and_the_threshold():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(50, 16))
    G = rng.normal(size=(40, 16))
    G[5] = F[7] + 0.01 * rng.normal(size=16)  # cosine ~0.9999
    G[9] = 3 * F[2]  # scale does not matter
    texts_f = [f"f text {i}" for i in range(50)]
    texts_g = [f"g text {i}" for i in range(40)]
    report = check_overlap(texts_f, texts_g, F, G)
    assert np.flatnonzero(report.near_g).tolist() == [5, 9]
    assert np.flatnonzero(report.near_f).tolist() == [2, 7]
    assert report.match_g[[5, 9]].tolist() == [7, 2]
    assert "2 near-duplicate (cosine ≥ 0.98)" in report.summary()
    assert check_overlap(texts_f, texts_g, F, G, min_similarity=1.0).near_g.sum() <= 1  # G[9] is exact


def test_past_max_comparisons_a_seeded_sample_of_g_is_compared():
    rng = np.random.default_rng(1)
    F, G = rng.normal(size=(100, 8)), rng.normal(size=(300, 8))
    G[::3] = F[:100]  # every third G row copies an F row's vector
    texts_f = [f"f{i}" for i in range(100)]
    texts_g = [f"g{i}" for i in range(300)]
    full = check_overlap(texts_f, texts_g, F, G)
    part = check_overlap(texts_f, texts_g, F, G, max_comparisons=100 * 60, random_state=3)
    assert full.compared_g == 300 and full.near_g.sum() == 100
    assert part.compared_g == 60 and 0 < part.near_g.sum() < 60
    assert "(of 60 G texts compared)" in part.summary()
    again = check_overlap(texts_f, texts_g, F, G, max_comparisons=100 * 60, random_state=3)
    np.testing.assert_array_equal(part.near_g, again.near_g)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.sampled_from(["a b", "A-B", "c", "dd", "e e", ""]), max_size=12),
    st.lists(st.sampled_from(["a b", "a  b!", "c", "x", "E E", ""]), max_size=12),
)
def test_overlap_masks_are_consistent_and_symmetric(texts_f, texts_g):
    report = check_overlap(texts_f, texts_g)
    swapped = check_overlap(texts_g, texts_f)
    np.testing.assert_array_equal(report.overlap_f, swapped.overlap_g)
    np.testing.assert_array_equal(report.overlap_g, swapped.overlap_f)
    assert not (report.identical_g & report.opening_g).any()
    assert np.array_equal(report.match_g >= 0, report.overlap_g)
    for j in np.flatnonzero(report.overlap_g):
        i = report.match_g[j]
        same = normalised_opening(texts_f[i]) == normalised_opening(texts_g[j])
        assert texts_f[i] == texts_g[j] or same
    assert sorted(report.disjoint_g.tolist() + np.flatnonzero(report.overlap_g).tolist()) == list(
        range(len(texts_g))
    )


def test_bad_input_says_what_to_do():
    X = np.ones((2, 3))
    with pytest.raises(ParameterError, match="texts_f must be a list of texts, not one string"):
        check_overlap("one text", ["a"])
    with pytest.raises(ParameterError, match="texts_g must hold strings; row 1 is NoneType"):
        check_overlap(["a"], ["b", None])
    with pytest.raises(ParameterError, match="Pass the vectors of both corpora"):
        check_overlap(["a", "b"], ["c", "d"], F=X)
    with pytest.raises(ParameterError, match="G has 2 rows but texts_g has 3 texts"):
        check_overlap(["a", "b"], ["c", "d", "e"], X, X)
    with pytest.raises(EmbeddingError, match="F has dimension 3 but G has 4"):
        check_overlap(["a", "b"], ["c", "d"], X, np.ones((2, 4)))
    with pytest.raises(
        ParameterError, match="overlap min_similarity must be a finite number between 0.5 and 1"
    ):
        check_overlap(["a"], ["b"], min_similarity=2)
    with pytest.raises(ParameterError, match="overlap opening_chars must be an integer between 10 and 1000"):
        check_overlap(["a"], ["b"], opening_chars=3)
    with pytest.raises(ParameterError, match="max_comparisons must be a positive integer"):
        check_overlap(["a"], ["b"], max_comparisons=0)
    with pytest.raises(EmbeddingError, match="all-zero row"):
        check_overlap(["a", "b"], ["c", "d"], X, np.zeros((2, 3)))
