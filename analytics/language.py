"""Whether a corpus looks English: a cheap check on a sample of its texts, so that texts in other
languages are not embedded by the English-only default model without a word.

all-MiniLM-L6-v2, the bundled default, was trained on English. Texts in other languages get
vectors that mostly encode their language and script, so a map of a multilingual corpus (SIB-200:
the same 1,004 sentences in 20 languages) clusters by language, not by topic. The check here
needs no model, no dependency and no network: per text, the share of its letters that are not
Latin script (Cyrillic, CJK, Arabic, Devanagari...), and for Latin-script texts the share of its
words that are common English function words ("the", "of", "is", "my"...), which nearly every
English sentence or query holds and other Latin-script languages rarely do, and the share of its
words with letters outside ASCII (diacritics: Vietnamese, Yoruba, Turkish...). Texts too short
to tell (fewer than :data:`MIN_WORDS` words and no other script) are left undecided.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

#: texts looked at (evenly spaced over the corpus by the caller; the first ones here)
DEFAULT_SAMPLE = 400
#: a Latin-script text needs this many words to be judged
MIN_WORDS = 4
#: a text whose letters are more than this share non-Latin is not English
NON_LATIN_TEXT = 0.5
#: a Latin-script text is English when at least this share of its words are English function
#: words and at most :data:`DIACRITIC_WORDS` of them hold non-ASCII letters
ENGLISH_WORDS = 0.12
DIACRITIC_WORDS = 0.25
#: a corpus is flagged when at least this share of its judged texts are not English
FLAG_SHARE = 0.2

#: frequent English function words, left out where another Latin-script language in SIB-200
#: uses the same spelling often ("a", "in", "an", "on", "no", "me", "so", "de", "la", "die"...)
ENGLISH_FUNCTION_WORDS = frozenset(
    """the of and to is are was were be been being that this these those with for from by it its
    as at or but not have has had will would can could should may might must you your my we our
    they their them he she his her him what which who whom how when where why there here than
    then also about into over after before because if do does did i it's i'm don't can't what's
    just more most some any all one other such only very much many own each every both few same
    up out off please tell want need""".split()
)

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@dataclass(frozen=True)
class LanguageCheck:
    """What the check saw in a sample of texts."""

    n_sampled: int
    n_judged: int
    """Texts long enough to tell (the others are left out of the shares)."""
    n_other: int
    """Judged texts that do not look English."""
    scripts: tuple[tuple[str, int], ...]
    """Writing systems other than Latin seen, with how many texts are mostly in each, commonest first."""

    @property
    def share_other(self) -> float:
        return self.n_other / self.n_judged if self.n_judged else 0.0

    @property
    def looks_english(self) -> bool:
        """False when at least :data:`FLAG_SHARE` of the judged texts look non-English."""
        return self.share_other < FLAG_SHARE


def _script(ch: str) -> str:
    """The writing system of a letter, from its Unicode name: LATIN, CYRILLIC, CJK, HANGUL..."""
    name = unicodedata.name(ch, "")
    word = name.split(" ", 1)[0]
    if word in ("HIRAGANA", "KATAKANA"):
        return "JAPANESE KANA"
    return word or "OTHER"


def text_language(text: str) -> tuple[str, str | None]:
    """``(verdict, script)`` for one text: verdict ``"english"``, ``"other"`` or ``"unknown"``
    (too short to tell); script is the non-Latin writing system most of its letters are in, or None."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "unknown", None
    scripts = Counter(_script(c) for c in letters if not ("a" <= c.lower() <= "z"))
    latin = len(letters) - sum(n for s, n in scripts.items() if s != "LATIN")
    if 1 - latin / len(letters) > NON_LATIN_TEXT:
        main = next(s for s, _ in scripts.most_common() if s != "LATIN")
        return "other", main
    words = _WORD.findall(text.lower())
    if len(words) < MIN_WORDS:
        return "unknown", None
    english = sum(w in ENGLISH_FUNCTION_WORDS for w in words) / len(words)
    accented = sum(not w.isascii() for w in words) / len(words)
    if english >= ENGLISH_WORDS and accented <= DIACRITIC_WORDS:
        return "english", None
    return "other", None


def check_language(texts, *, sample: int = DEFAULT_SAMPLE) -> LanguageCheck:
    """Judge up to ``sample`` of ``texts`` (the first ones: pass an evenly spaced sample of a
    large corpus, e.g. :func:`analytics.uploads.sample_texts`)."""
    judged = other = 0
    scripts: Counter = Counter()
    n = 0
    for text in texts:
        if n >= sample:
            break
        n += 1
        verdict, script = text_language(str(text))
        if verdict == "unknown":
            continue
        judged += 1
        if verdict == "other":
            other += 1
            if script is not None:
                scripts[script] += 1
    return LanguageCheck(n, judged, other, tuple(scripts.most_common()))


def english_only(model: str | None = None) -> bool:
    """Whether ``model`` (a model name, folder or cache key; None: the default) is the bundled
    English-only default, all-MiniLM-L6-v2."""
    from .embedding import DEFAULT_MODEL, model_id_for

    try:
        key = model_id_for(model.partition("#")[0] if isinstance(model, str) else model)
    except (TypeError, ValueError, OSError):
        return False
    return key == DEFAULT_MODEL


_SCRIPT_NAMES = {
    "CJK": "Chinese characters",
    "JAPANESE KANA": "Japanese kana",
    "HANGUL": "Korean Hangul",
}


def script_names(check: LanguageCheck) -> list[str]:
    """The non-Latin writing systems seen, readable: "Cyrillic", "Chinese characters"..."""
    return [_SCRIPT_NAMES.get(s, s.title()) for s, _ in check.scripts]


def multilingual_note(check: LanguageCheck, model: str | None = None) -> str | None:
    """The note to show when the texts look non-English and ``model`` is the English-only
    default, else None. It says what was seen and how to use a local multilingual model."""
    if check.looks_english or not english_only(model):
        return None
    seen = f"{check.share_other:.0%} of {check.n_judged:,} sampled texts do not look English"
    scripts = script_names(check)
    if scripts:
        seen += " (" + ", ".join(scripts[:4]) + ")"
    return (
        f"{seen}. The default model, all-MiniLM-L6-v2, is English-only: it places texts in other "
        "languages by their language more than by their meaning, so a map of them groups by language. "
        "To use a multilingual sentence-transformers model, download it beforehand (e.g. "
        "paraphrase-multilingual-MiniLM-L12-v2) and enter its folder in the Model box of the Embed "
        "page (command line: embex embed NAME --model FOLDER)."
    )
