"""The language check (analytics.language): texts that do not look English, with the English-only
default model, get a note saying so and how to use a local multilingual model; English corpora
get none. Checked on SIB-200 (20 languages, 7 scripts), AG News and CLINC150."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import HOSTILE, SAMPLE
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.language import (
    FLAG_SHARE,
    check_language,
    english_only,
    multilingual_note,
    text_language,
)

FIXTURES = HOSTILE.parent
SHARED_SIB200 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sib200"


def sib200_fixture() -> dict[str, list[str]]:
    """The committed slice: 15 dev sentences of each of SIB-200's 20 languages."""
    by_language = defaultdict(list)
    with open(FIXTURES / "sib200_languages.tsv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            by_language[row["language"]].append(row["text"])
    return dict(by_language)


def column(path: Path, name: str, delimiter: str = ",") -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        return [row[name] for row in csv.DictReader(f, delimiter=delimiter)]


def test_every_sib200_language_but_english_gets_the_note():
    languages = sib200_fixture()
    assert len(languages) == 20
    for language, texts in languages.items():
        check = check_language(texts)
        note = multilingual_note(check)
        if language == "eng_Latn":
            assert check.looks_english and note is None, (language, check)
        else:
            assert check.share_other >= 0.9 and note is not None, (language, check)
            assert "English-only" in note and "Model box of the Embed page" in note and "--model" in note


def test_scripts_are_named_in_the_note():
    languages = sib200_fixture()
    note = multilingual_note(check_language(languages["rus_Cyrl"] + languages["zho_Hans"]))
    assert "Cyrillic" in note and "Chinese characters" in note
    assert multilingual_note(check_language(languages["kor_Hang"])).count("Korean Hangul") == 1
    # Latin-script languages are told apart by their words, and get no script named
    assert "(" not in multilingual_note(check_language(languages["swh_Latn"])).split(".")[0]


def test_the_whole_multilingual_slice_gets_the_note_and_english_corpora_do_not():
    everything = [t for texts in sib200_fixture().values() for t in texts]
    assert check_language(everything, sample=len(everything)).share_other > 0.9
    news = column(SAMPLE, "text")  # AG News: 7,600 headlines with their first sentence
    clinc = column(FIXTURES / "clinc150_upload.csv", "text")  # short lower-case queries
    for texts in (news, clinc):
        check = check_language(texts, sample=len(texts))
        assert check.looks_english and multilingual_note(check) is None, check
        assert check.n_judged > len(texts) / 2  # judged, not left undecided
    assert check_language(news, sample=len(news)).share_other < FLAG_SHARE / 2


@pytest.mark.skipif(not SHARED_SIB200.is_dir(), reason="../shared/data/sib200 is not here")
def test_larger_slices_of_sib200_from_the_shared_data():
    """100 train sentences of each language (not the fixture's dev rows)."""
    for folder in sorted(SHARED_SIB200.iterdir()):
        if not (folder / "train.tsv").exists():
            continue
        with open(folder / "train.tsv", newline="", encoding="utf-8") as f:
            texts = [
                r["text"]
                for r, _ in zip(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE), range(100))
            ]
        check = check_language(texts)
        assert check.looks_english == (folder.name == "eng_Latn"), (folder.name, check)


def test_only_the_english_only_default_model_gets_the_note(tmp_path):
    check = check_language(sib200_fixture()["deu_Latn"])
    assert english_only(None) and english_only("all-MiniLM-L6-v2")
    assert english_only("sentence-transformers/all-MiniLM-L6-v2#bf16")  # a cache key of it
    assert not english_only(str(tmp_path))  # a local model folder: the user chose it
    assert not english_only("uploaded:my-vectors")
    assert multilingual_note(check, str(tmp_path)) is None
    assert multilingual_note(check, None) is not None


def test_short_and_letterless_texts_are_left_undecided():
    assert text_language("balance") == ("unknown", None)
    assert text_language("12345 !!") == ("unknown", None)
    assert text_language("Привет") == ("other", "CYRILLIC")  # one word is enough for a script
    check = check_language(["ok", "42", "yes please"])
    assert check.n_judged == 0 and check.looks_english and multilingual_note(check) is None


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(max_size=60), max_size=30), sample=st.integers(1, 40))
def test_the_check_counts_are_consistent_for_any_text(texts, sample):
    check = check_language(texts, sample=sample)
    assert check.n_sampled == min(len(texts), sample)
    assert 0 <= check.n_other <= check.n_judged <= check.n_sampled
    assert 0.0 <= check.share_other <= 1.0
    assert sum(n for _, n in check.scripts) <= check.n_other
    assert check.looks_english == (check.share_other < FLAG_SHARE)


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.sampled_from(["the", "of", "my", "is", "what", "you"]), min_size=2, max_size=6),
    content=st.lists(
        st.sampled_from(["bank", "account", "weather", "timer", "flight"]), min_size=2, max_size=4
    ),
    cyrillic=st.text(alphabet="абвгдежзийклмнопрстуфхцчшщыэюя", min_size=3, max_size=12),
)
def test_english_sentences_pass_and_another_script_does_not(words, content, cyrillic):
    english = " ".join(w for pair in zip(words, content) for w in pair) + " " + " ".join(words + content)
    assert text_language(english)[0] == "english"
    assert text_language(f"{cyrillic} {cyrillic} bank")[0] == "other"
