"""User text in figures and the HTML report is shown, never rendered (issue 9): plotly.js draws a
subset of HTML (<a href>, <b>, <i>, <br>, <span style>, <sub>, <sup>) in titles, axis titles,
legend names, annotations and hover labels, so every chart is built here from hostile names,
labels and texts and its JSON checked for markup, double escaping and cut entities."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import ROOT, make_corpus, settle

from analytics import Store
from analytics.embedding import import_vectors
from analytics.figures import depth_histogram, map_figure, plotly_text, shift_histogram
from analytics.report import build_report

HOSTILE = [
    '<a href="http://evil">x</a>',
    "<b>bold</b>",
    '<span style="color:red">r</span>',
    "Tom & Jerry \"quoted\" 'single'",
    "&" * 300,
    "x" + "&" * 299,  # escaped and then cut at 40, this once ended in "&amp"
    "one<br>two<sup>up</sup><i>it</i>",
]
TAG = re.compile(r"<[^<>]*>")  # how plotly.js splits a label into tags and text
OWN_TAGS = {"<br>", "<sup>", "</sup>"}  # the title/subtitle markup the builders add themselves
PLOTLY_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, (list, tuple)) or (isinstance(node, np.ndarray) and node.dtype == object):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def drawn_strings(fig) -> list[str]:
    """Every string of the figure but the theme's: titles, names, hover and annotation text."""
    spec = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
    spec = {"data": spec["data"], "layout": {k: v for k, v in spec["layout"].items() if k != "template"}}
    return list(_strings(spec))


def visible(label: str) -> str:
    """What plotly.js draws for a label: our <br> as a space, no tags, entities decoded."""
    text = TAG.sub(lambda m: " " if m.group() == "<br>" else "", label)
    return re.sub(r"&(amp|lt|gt);", lambda m: PLOTLY_ENTITIES[m.group()], text)


def assert_no_markup(fig) -> None:
    for s in drawn_strings(fig):
        tags = TAG.findall(s)
        assert set(tags) <= OWN_TAGS and len(tags) == len(set(tags)), s
        for bad in ("<a", "<b>", "<span", "<i>"):
            assert bad not in s, s
        assert "&quot;" not in s and "&#x27;" not in s and "&amp;amp;" not in s, s  # escaped once
        assert not re.search(r"&(?!(?:amp|lt|gt);)", s), s  # every & opens a whole entity
        assert not re.search(r"&[a-z#0-9]*$", s), s  # never cut inside an entity


def figures_of(name: str) -> dict:
    rng = np.random.default_rng(0)
    coords, depths = rng.normal(size=(6, 2)), rng.random(6)
    texts = [name, f"text {name}", "plain", name * 2, "x", "y"]
    labels = [name, "other", name, "other", name[:50], "z"]
    title, sub = f"{name}: UMAP map", f"corpus: {name} · model: {name} · n = 6"
    return {
        "map by label": map_figure(coords, texts, color=labels, color_name=name, title=title, subtitle=sub),
        "map by number": map_figure(coords, texts, color=depths, color_name=name, title=title, subtitle=sub),
        "map highlighted": map_figure(coords, texts, highlight=[0, 3], title=title, subtitle=sub),
        "map sampled": map_figure(
            coords,
            texts,
            color=labels,
            color_name=name,
            highlight=[3],
            max_points=4,
            title=title,
            subtitle=sub,
        ),
        "depth": depth_histogram(depths, title=title, subtitle=sub, median_depth=0.5),
        "shift": shift_histogram(
            depths, depths[::-1], name_f=name, name_g=f"G {name}", title=title, subtitle=sub
        ),
    }


@pytest.mark.parametrize("name", HOSTILE)
def test_every_figure_shows_hostile_text_as_text(name):
    figures = figures_of(name)
    for fig in figures.values():
        assert_no_markup(fig)
    shift = figures["shift"]
    if len(name) < 60:
        assert visible(shift.layout.xaxis.title.text) == f"depth with respect to {name}"
        assert visible(shift.data[0].name) == (name if len(name) <= 40 else name[:39] + "…")
        assert visible(shift.layout.title.text).startswith(f"{name}: UMAP map ")


def _drawn(fig) -> dict[int, tuple[float, float, str]]:
    """Each drawn text point (not the highlight rings) by its customdata: x, y, hover text."""
    out = {}
    for t in fig.data:
        if not t.name.startswith("highlighted"):
            for row, x, y, h in zip(t.customdata, t.x, t.y, t.hovertext):
                assert int(row) not in out  # every row drawn once
                out[int(row)] = (x, y, h)
    return out


@pytest.mark.parametrize("color", ["none", "label", "number"])
def test_a_big_map_draws_a_seeded_sample_that_keeps_row_ids_and_highlights(color):
    rng = np.random.default_rng(3)
    n, cap = 5_000, 300
    coords = rng.normal(size=(n, 2))
    texts = [f"text <{i}>" for i in range(n)]
    colors = {"none": None, "label": [f"L{i % 7}" for i in range(n)], "number": rng.random(n)}[color]
    highlight = [4_999, 17, 2_500]

    def draw(**kw):
        return map_figure(coords, texts, color=colors, highlight=highlight, title="t", subtitle="s", **kw)

    fig = draw(max_points=cap)
    drawn = _drawn(fig)
    assert len(drawn) == cap and set(highlight) <= set(drawn)
    for row, (x, y, h) in drawn.items():  # customdata is the corpus row: its place and its text
        assert (x, y) == tuple(coords[row]) and h == plotly_text(texts[row])
    ring = next(t for t in fig.data if t.name == "highlighted (3)")
    assert sorted(ring.customdata) == sorted(highlight)
    assert f"showing a random {cap:,} of {n:,} texts" in fig.layout.title.text
    assert "3 of the 3 highlighted" in fig.layout.title.text
    assert set(_drawn(draw(max_points=cap))) == set(drawn)  # seeded: the same picture again
    assert set(_drawn(draw(max_points=cap, seed=1))) != set(drawn)
    if color == "label":
        for t in fig.data[:-1]:
            assert {f"L{int(r) % 7}" for r in t.customdata} == {t.name}
    full = draw(max_points=None)
    assert set(_drawn(full)) == set(range(n)) and "showing a random" not in full.layout.title.text


def test_highlights_beyond_the_cap_are_sampled_too():
    coords = np.random.default_rng(4).normal(size=(1_000, 2))
    fig = map_figure(coords, ["t"] * 1_000, highlight=list(range(0, 1_000, 2)), max_points=100)
    assert len(_drawn(fig)) == 100
    assert "with 100 of the 500 highlighted" in fig.layout.title.text


def test_plotly_text_shortens_before_escaping_and_escapes_once():
    assert plotly_text("&" * 300, 40) == "&amp;" * 39 + "…"
    assert plotly_text("Tom & \"Jerry\" 'x'") == "Tom &amp; \"Jerry\" 'x'"  # plotly shows &quot; literally
    assert plotly_text("&lt;b&gt;") == "&amp;lt;b&amp;gt;"  # shown as typed, not as <b>
    assert plotly_text("a\n\n b\tc") == "a b c"
    assert plotly_text("<b>", 2) == "&lt;…"


class _Elements(HTMLParser):
    """The report's elements and its visible text (script and style bodies are not text)."""

    def __init__(self):
        super().__init__()
        self.tags, self.text, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


F_NAME = '<a href="http://evil">F</a> & "co"'
G_NAME = '<span style="color:red">G</span> <b>bold</b>'


def _hostile_store(path):
    """Two corpora with hostile names, labels and texts, and random unit vectors: no model."""
    rng = np.random.default_rng(1)
    with Store(path) as s:
        for name, shift in ((F_NAME, 0.0), (G_NAME, 2.0)):
            texts = [f"{h} text {i}" for i in range(15) for h in HOSTILE[:4]][:40]
            s.add_corpus(name, make_corpus(texts, [HOSTILE[i % 4] for i in range(40)]), label_column="label")
            v = rng.normal(size=(40, 16)) + shift
            import_vectors(s, name, v / np.linalg.norm(v, axis=1, keepdims=True), "test-vectors")
    return path


def test_report_shows_hostile_names_as_text(tmp_path):
    path = _hostile_store(tmp_path / "hostile.duckdb")
    with Store(path) as s:
        report = build_report(s, F_NAME, "test-vectors", compare=G_NAME, method="pca", permutations=99)
    assert set(report.figures) == {"map", "depth", "shift", "joint"}  # joint: F and G on one map
    for fig in report.figures.values():
        assert_no_markup(fig)
    assert visible(report.figures["shift"].layout.xaxis.title.text) == f"depth with respect to {F_NAME}"
    page = _Elements()
    page.feed(report.html)
    tags = [t for t, _ in page.tags]
    assert "a" not in tags and "span" not in tags and "b" not in tags and "i" not in tags
    for tag, attrs in page.tags:
        if "style" in attrs:  # plotly's own figure divs only: a size, nothing from user text
            assert tag == "div", (tag, attrs)
            assert re.fullmatch(r"(?:\s*(?:height|width):\s*[\d.]+(?:px|%);)+", attrs["style"]), attrs
    text = " ".join(page.text)
    assert F_NAME in text and G_NAME in text and HOSTILE[0] in text


def test_shift_page_axis_title_holds_the_escaped_name(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    path = _hostile_store(tmp_path / "shift.duckdb")
    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["model_id"] = "test-vectors"
    at.session_state["shift_f"] = F_NAME
    at.session_state["shift_g"] = G_NAME
    at.run()
    at.switch_page("views/shift.py")
    at.run()
    next(b for b in at.button if b.label == "Run").click().run()  # nothing runs before Run
    settle(at, path)  # the test runs as a background job
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert_no_markup(spec)
    axis = spec["layout"]["xaxis"]["title"]["text"]
    assert axis == f"depth with respect to {plotly_text(F_NAME)}"
    assert axis == 'depth with respect to &lt;a href="http://evil"&gt;F&lt;/a&gt; &amp; "co"'
    assert {t["name"] for t in spec["data"]} == {plotly_text(F_NAME), plotly_text(G_NAME, 40)}


def test_an_exported_map_colours_the_largest_labels_and_greys_the_rest():
    """A report's picture of 151 intents: the 20 largest coloured, the rest one grey "other"
    drawn first (under them), every row drawn once, the circled rows named."""
    rng = np.random.default_rng(0)
    labels = [f"intent {i % 151}" for i in range(3_000)] + ["oos"] * 300
    coords = rng.normal(size=(len(labels), 2))
    fig = map_figure(
        coords, [f"t{i}" for i in range(len(labels))], color=labels, highlight=range(3_000, 3_300),
        highlight_name="selected", max_categories=20, title="t", subtitle="s",
    )  # fmt: skip
    names = [t.name for t in fig.data]
    assert names[0] == "other (132 values)" and names[-1] == "selected (300)"
    assert len(names) == 1 + 20 + 1 and "oos" in names
    assert sum(len(t.customdata) for t in fig.data[:-1]) == len(labels)
