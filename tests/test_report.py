"""The report of what is on screen (analytics/report.py) and the names of exported files
(analytics/export.py), on a CLINC150 slice with seeded vectors (no model: the fast tier).

The vectors: each intent a random direction plus noise, "oos" rows in random directions, so
that the out-of-scope queries are the outliers (as real embeddings make them) and depth per
label has a known answer.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import example, given
from hypothesis import strategies as st

from analytics import Store
from analytics.corpus import Corpus
from analytics.embedding import import_vectors
from analytics.errors import ParameterError
from analytics.export import MAX_FILE_NAME, file_name, only_if_current, safe_file_name, safe_file_part
from analytics.report import ReportRequest, build_report, report_request
from analytics.shift import shift_test

FIXTURE = ROOT / "tests" / "fixtures" / "report_clinc150.csv"
MODEL = "test-vectors"
HOSTILE_TEXT = "<script>alert(1)</script> refund <img src=x onerror=alert(2)>"


def clinc_rows() -> list[dict]:
    with open(FIXTURE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def seeded_vectors(intents: list[str], seed: int = 0, dim: int = 32) -> np.ndarray:
    """One unit vector per row: its intent's direction plus noise; "oos" rows point anywhere."""
    rng = np.random.default_rng(seed)
    centres = {i: rng.normal(size=dim) for i in sorted(set(intents))}
    v = np.stack(
        [centres[i] * 3 + rng.normal(size=dim) if i != "oos" else rng.normal(size=dim) * 2 for i in intents]
    )
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def clinc_store(path: Path, *, hostile: bool = True) -> Path:
    """Corpora "banking" and "travel" (the slice's halves, 120 rows each, 20 of them oos), with
    seeded vectors under ``MODEL``; "banking" ends with a hostile text whose intent is hostile
    too, placed opposite the rest (its most outlying text, so every table shows it)."""
    rows = clinc_rows()
    with Store(path) as s:
        for domain in ("banking", "travel"):
            part = [r for r in rows if r["domain"] == domain]
            if hostile and domain == "banking":
                part.append({"text": HOSTILE_TEXT, "intent": "<b>evil</b>", "domain": "banking"})
            s.add_corpus(
                domain,
                Corpus(
                    [r["text"] for r in part],
                    [{"intent": r["intent"], "domain": r["domain"]} for r in part],
                    "text",
                    "test",
                ),
                label_column="intent",
            )
            vectors = seeded_vectors([r["intent"] for r in part], seed=len(domain))
            if hostile and domain == "banking":  # opposite the corpus: its most outlying text
                vectors[-1] = -vectors[:-1].mean(axis=0) / np.linalg.norm(vectors[:-1].mean(axis=0))
            import_vectors(s, domain, vectors, MODEL)
    return path


@pytest.fixture(scope="module")
def clinc(tmp_path_factory) -> Path:
    return clinc_store(tmp_path_factory.mktemp("report") / "clinc.duckdb")


class _Doc(HTMLParser):
    """Tags, visible text and script bodies of a report."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self.scripts, self._in_script = [], [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    return doc


def section(html: str, heading: str) -> str:
    """The HTML from an <h2> heading to the next <h2>."""
    start = html.index(f"<h2>{heading}")
    end = html.find("<h2>", start + 4)
    return html[start : end if end > 0 else len(html)]


def table_rows(fragment: str) -> list[list[str]]:
    """The body rows of the first table in ``fragment``, cells unescaped."""
    import html as html_lib

    body = fragment[fragment.index("<tbody>") : fragment.index("</tbody>")]
    return [
        [html_lib.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, flags=re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    ]


# -- file names -----------------------------------------------------------------------------------


def test_file_names_say_corpus_view_and_what():
    assert file_name("ag_news", "report", "2026-11-26", ext="html") == "ag_news-report-2026-11-26.html"
    assert file_name("clinc150", "depth", "cosine", ext="csv") == "clinc150-depth-cosine.csv"
    assert file_name("clinc150", "outliers", "local", ext=".CSV") == "clinc150-outliers-local.csv"
    assert file_name("news", "report", "vs", "news (2025)", "2026-11-26", ext="html") == (
        "news-report-vs-news-2025-2026-11-26.html"
    )
    # user text is never a path, a hidden file or an option
    assert file_name("../../etc/passwd", "map", ext="png") == "etc-passwd-map.png"
    assert file_name("a/b\\c:d", "map", ext="svg") == "a-b-c-d-map.svg"
    assert file_name("", "report", ext="html") == "corpus-report.html"
    assert file_name("日本語 コーパス", "depth", ext="csv") == "日本語-コーパス-depth.csv"
    assert safe_file_name("world (selection)-pca-map.png") == "world-selection-pca-map.png"
    assert safe_file_name("outliers.csv") == "outliers.csv"
    assert safe_file_part("CON") == "_CON"  # a name Windows cannot save


@given(
    corpus=st.text(max_size=300),
    view=st.text(max_size=80),
    parts=st.lists(st.text(max_size=80), max_size=4),
    ext=st.text(max_size=12),
)
# an extension whose letters take two bytes each in UTF-8 (found by CI: 121 bytes)
@example(corpus="0" * 13, view="0" * 43, parts=["00000¼\U00016800", "0" * 43], ext="¼¼À")
def test_any_file_name_is_one_safe_bounded_component(corpus, view, parts, ext):
    name = file_name(corpus, view, *parts, ext=ext)
    assert len(name.encode("utf-8")) <= MAX_FILE_NAME
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(unicodedata.category(c)[0] in "CZ" for c in name)  # no control, format or space
    assert PurePosixPath(name).name == name and PureWindowsPath(name).name == name
    assert not name.startswith((".", "-")) and ".." not in name
    stem, _, extension = name.rpartition(".")
    assert stem and re.fullmatch(r"[^\W_]{1,8}", extension), name
    assert extension == extension.lower()
    assert safe_file_part(stem, max_len=MAX_FILE_NAME) == stem  # already safe: kept as it is
    assert safe_file_name(name) == name


@given(st.text(min_size=1, max_size=40, alphabet=st.characters(categories=("Lu", "Ll", "Nd"))))
@example("00000" + "\u03bc" * 20 + "\u0966" * 4 + "\U00010400")  # 61 bytes: CI found it
def test_plain_names_are_kept(word):
    word = unicodedata.normalize("NFKC", word)
    if not re.fullmatch(r"\w+", word) or word.upper() in {"CON", "PRN", "AUX", "NUL"}:
        return
    name = file_name(word, "report", ext="html")
    if len(word.encode("utf-8")) <= 60:  # a corpus name gets at most 60 bytes of a file name
        assert name == f"{word}-report.html"
    else:  # a longer one is cut whole characters at a time, never mid-character
        stem = name.removesuffix("-report.html")
        assert word.startswith(stem) and 56 < len(stem.encode("utf-8")) <= 60, name


def test_a_download_checked_at_click_time_refuses_once_its_inputs_changed():
    live = {"key": "A"}
    served = only_if_current(lambda: b"report A", lambda: live["key"] == "A", what="This report")
    assert served() == b"report A"
    live["key"] = None  # a new page run has started (new inputs)
    with pytest.raises(
        ParameterError, match="This report was built from inputs that are no longer on screen"
    ):
        served()
    live["key"] = "B"
    with pytest.raises(ParameterError):
        served()
    live["key"] = "A"  # the same inputs again: the same report
    assert served() == b"report A"


# -- what the report shows --------------------------------------------------------------------------


def test_report_shows_colouring_per_label_depth_labelled_outliers_and_escapes_user_text(clinc):
    with Store(clinc) as s:
        report = build_report(s, "banking", MODEL, method="pca", color="domain")
        texts = s.texts("banking")
        intents = [m["intent"] for m in s.metadata("banking")]
    html = report.html
    # the inputs it was built from
    inputs = dict(table_rows(section(html, "Inputs")))
    assert inputs["corpus"] == "banking" and inputs["map colour"] == "domain"
    assert inputs["selection"] == "all rows" and inputs["compared with"] == "(none)"
    # the map is coloured as asked: one trace per domain value
    assert {t.name for t in report.figures["map"].data} == {"banking"}
    # depth per label: every intent, the out-of-scope queries (random directions) the most outlying
    per_label = table_rows(section(html, "Depth per intent"))
    assert {r[0] for r in per_label} == {*(i for i in intents if i != "<b>evil</b>"), "<b>evil</b>"}
    assert per_label[0][0] in ("oos", "<b>evil</b>")
    counts = {r[0]: int(r[1].replace(",", "")) for r in per_label}
    assert counts["oos"] == 20 and sum(counts.values()) == len(texts)
    medians = [float(r[2]) for r in per_label]
    assert medians == sorted(medians)
    # labelled outliers: every flagged text, with its own label and its neighbours' labels
    out = section(html, "Outliers")
    n_flagged = int(re.search(r"<p>([\d,]+) texts flagged", out).group(1))
    rows = table_rows(out)
    assert len(rows) == n_flagged >= 0.05 * len(texts)
    for r in rows:
        text, label = r[-1], r[-3]
        assert intents[texts.index(text)] == label
    assert sum(r[-3] == "oos" for r in rows) >= n_flagged // 2  # the planted outliers lead
    # hostile text is shown as text: no tag from it, in the tables or the figures
    doc = parse(html)
    assert "img" not in doc.tags and "b" not in doc.tags
    assert doc.tags.count("script") == 1 + len(report.figures)  # plotly.js, one per figure
    assert HOSTILE_TEXT not in html and "<b>evil</b>" not in html
    assert any(HOSTILE_TEXT in t for t in doc.text) and any("<b>evil</b>" in t for t in doc.text)
    assert not any("onerror=alert(2)>" in body and "<img" in body for body in doc.scripts)


def test_selection_has_its_own_section_that_says_so(clinc):
    with Store(clinc) as s:
        intents = [m["intent"] for m in s.metadata("banking")]
        rows = [i for i, v in enumerate(intents) if v == "oos"]
        report = build_report(
            s, "banking", MODEL, method="pca", rows=rows, selection_note="intent = oos <script>x</script>"
        )
    html = report.html
    part = section(html, "The selection")
    assert (
        "This section covers the selection only: 20 of 121 texts (intent = oos &lt;script&gt;x&lt;/script&gt;)"
        in part
    )
    assert dict(table_rows(section(html, "Inputs")))["selection"] == (
        "20 of 121 texts: intent = oos <script>x</script>"
    )
    assert "<script>x</script>" not in html
    # its per-label table covers the selected rows only
    tables = part.split("<h3>Depth per intent in the selection</h3>")[1]
    assert [(r[0], r[1]) for r in table_rows(tables)] == [("oos", "20")]
    # drawn on the corpus's map: selection and rest
    sel = {t.name: len(t.x) for t in report.figures["selection"].data}
    assert sel == {"selection": 20, "rest": 101}


def test_f_and_g_on_one_map_with_the_shift_test(clinc):
    with Store(clinc) as s:
        report = build_report(s, "banking", MODEL, compare="travel", method="pca", permutations=99)
        n_f, n_g = s.corpus_info("banking").n_docs, s.corpus_info("travel").n_docs
    joint = {t.name: len(t.x) for t in report.figures["joint"].data}
    assert joint == {"F: banking": n_f, "G: travel": n_g}
    assert 'id="fig-joint"' in report.html and "<h3>F and G on one map</h3>" in report.html
    assert f"{report.shift.q:.4f}" in report.html
    assert dict(table_rows(section(report.html, "Inputs")))["compared with"] == "travel"


def test_the_selection_tested_against_the_rest_of_its_corpus(clinc):
    """The Shift page's "selection vs the rest" in the report: F = the rest, G = the selection,
    the same numbers as shift_test on those rows; the selection's map stands for F and G."""
    with Store(clinc) as s:
        intents = [m["intent"] for m in s.metadata("banking")]
        rows = [i for i, v in enumerate(intents) if v == "oos"]
        report = build_report(
            s,
            "banking",
            MODEL,
            method="pca",
            rows=rows,
            selection_note="intent = oos",
            shift_selection=True,
            permutations=99,
        )
        X = s.vectors("banking", MODEL)
        with pytest.raises(ParameterError, match="no compare"):
            build_report(s, "banking", MODEL, rows=rows, compare="travel", shift_selection=True)
        with pytest.raises(ParameterError, match="at least 2 on each side"):
            build_report(s, "banking", MODEL, method="pca", rows=[3], shift_selection=True)
    rest = np.setdiff1d(np.arange(len(intents)), rows)
    expected = shift_test(X[rest], X[rows], permutations=99)
    assert (report.shift.n_f, report.shift.n_g) == (101, 20)
    assert report.shift.q == pytest.approx(expected.q) and report.shift.w == pytest.approx(expected.w)
    assert report.shift.p == pytest.approx(expected.p)
    part = section(report.html, "Shift test: has the selection shifted away from the rest of banking?")
    assert f"{report.shift.q:.4f}" in part and "fig-shift" in part and "fig-joint" not in report.html
    assert dict(table_rows(section(report.html, "Inputs")))["compared with"] == "the selection vs the rest"
    assert report.shift.p_verdict < 0.05  # the planted out-of-scope queries are another population


def test_progress_runs_through_real_stages_in_order(clinc):
    seen: list[tuple[str, float]] = []
    with Store(clinc) as s:
        build_report(
            s,
            "banking",
            MODEL,
            compare="travel",
            method="pca",
            permutations=99,
            rows=[0, 1, 2],
            progress=lambda stage, f: seen.append((stage, f)),
        )
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    stages = [stage for stage, _ in seen]
    for expected in ("the PCA map", "F and G on one map", "depth of every text", "depth per label"):
        assert expected in stages, stages
    assert "shift test (99 permutations)" in stages
    assert any(st.startswith("shift test · permutation ") for st in stages)  # its own progress
    assert any(st.startswith("outliers") for st in stages) and "the selection" in stages


def test_a_request_is_checked_and_every_input_changes_its_key(clinc):
    from analytics.jobs import KINDS

    prepare = KINDS["report"].prepare
    base = {"corpus": "banking", "model_id": MODEL, "method": "pca"}
    with Store(clinc) as s:
        params, key = prepare(s, base)
        assert report_request(s, params) == ReportRequest("banking", MODEL, method="pca")
        sid = s.save_selection("banking", [1, 2, 3])
        keys = {
            key,
            prepare(s, {**base, "color": "domain"})[1],
            prepare(s, {**base, "compare": "travel"})[1],
            prepare(s, {**base, "method": "umap"})[1],
            prepare(s, {**base, "method": "umap", "map_params": {"n_neighbors": 5}})[1],
            prepare(s, {**base, "selection": sid, "selection_note": "3 rows"})[1],
            prepare(s, {**base, "selection": sid, "selection_note": "other words"})[1],
            prepare(s, {**base, "selection": sid, "selection_note": "3 rows", "shift_selection": True})[1],
        }
        assert len(keys) == 8
        with pytest.raises(ParameterError, match="only with a selection and no second corpus"):
            prepare(s, {**base, "shift_selection": True})
        with pytest.raises(ParameterError, match="only with a selection and no second corpus"):
            prepare(s, {**base, "selection": sid, "compare": "travel", "shift_selection": True})
        with pytest.raises(ParameterError, match="true or false"):
            prepare(s, {**base, "selection": sid, "shift_selection": "yes"})
        assert prepare(s, dict(base))[1] == key  # the same inputs: the same report
        with pytest.raises(ParameterError, match="other than the one reported on"):
            prepare(s, {**base, "compare": "banking"})
        with pytest.raises(ParameterError, match="not a selection of 'travel'"):
            prepare(s, {**base, "corpus": "travel", "selection": sid})
        with pytest.raises(ParameterError, match="n_neighbors"):
            prepare(s, {**base, "method": "umap", "map_params": {"n_neighbors": 0}})
        with pytest.raises(ParameterError, match="needs model_id"):
            prepare(s, {"corpus": "banking"})
