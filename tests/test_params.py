"""The parameter rules (analytics/params.py): every rule's edges tried, generated from the table,
and one changed range seen by the library, the Map page's slider and ``embex --help`` at once."""

from __future__ import annotations

import argparse
import inspect
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import ROOT, make_corpus, settle
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.errors import ParameterError
from analytics.params import RULES, Rule, check_params, defaults, resolve, rules

CASES = [
    pytest.param(method, rule, id=f"{method}.{name}")
    for method, table in RULES.items()
    for name, rule in table.items()
]
NUMERIC = [c for c in CASES if c.values[1].kind in ("int", "float")]


def refused(rule: Rule, value) -> str:
    with pytest.raises(ParameterError) as exc:
        rule.check(value)
    message = str(exc.value)
    assert rule.title in message and rule.name in message, message
    assert f"default ({rule.describe().rpartition('default ')[2]})" in message  # the fix
    return message


def outside(rule: Rule) -> list:
    """Values just outside the rule's range: one step for integers, one ulp for floats."""
    values = []
    if rule.low is not None:
        values.append(rule.low - 1 if rule.kind == "int" else math.nextafter(rule.low, -math.inf))
    if rule.high is not None:
        values.append(rule.high + 1 if rule.kind == "int" else math.nextafter(rule.high, math.inf))
    return values


WRONG_TYPES = {
    "int": [1.5, 2.0, "3", True, np.float64(3.0), np.bool_(True)],
    "float": ["0.5", True, 1j, np.bool_(False)],
    "choice": [1, 0.5, True, b"cosine", "COSINE", "umap "],
    "bool": [1, 0, "true", "yes"],
}


def wrong_types(rule: Rule) -> list:
    return [None, [1], {"a": 1}, object(), *WRONG_TYPES[rule.kind]]


@pytest.mark.parametrize("method, rule", CASES)
def test_default_and_bounds_pass(method, rule):
    assert rule.check(rule.default) == rule.default
    assert defaults(method)[rule.name] == rule.default
    for bound in (rule.low, rule.high):
        if bound is not None:
            assert rule.check(bound) == bound
            assert rule.parse(str(bound)) == bound
    for choice in rule.choices:
        assert rule.check(choice) == choice
    assert rule.parse(str(rule.default)) == rule.default


@pytest.mark.parametrize("method, rule", NUMERIC)
def test_values_just_outside_the_range_are_refused(method, rule):
    for value in outside(rule):
        message = refused(rule, value)
        for bound in (rule.low, rule.high):
            if bound is not None:
                assert f"{bound:g}" in message, message  # the range is in the message
        with pytest.raises(ParameterError, match=rule.name):
            check_params(method, {rule.name: value})
        with pytest.raises(ParameterError, match=rule.name):
            rule.parse(repr(value))


@pytest.mark.parametrize("method, rule", [c for c in NUMERIC if c.values[1].kind == "float"])
def test_floats_refuse_nan_and_inf(method, rule):
    for value in (math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf"), 10**400):
        assert "finite number" in refused(rule, value)
    for text in ("nan", "NaN", "inf", "-inf", "1e999"):
        with pytest.raises(ParameterError, match=rule.name):
            rule.parse(text)


@pytest.mark.parametrize("method, rule", CASES)
def test_wrong_types_are_refused(method, rule):
    for value in wrong_types(rule):
        refused(rule, value)
    if rule.kind in ("int", "float"):
        with pytest.raises(ParameterError, match=rule.name):
            rule.parse("twelve")


@pytest.mark.parametrize("method, rule", NUMERIC)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_value_in_range_passes_and_every_other_is_refused(method, rule, data):
    if rule.kind == "int":
        inside = st.integers(min_value=rule.low, max_value=rule.high)
        low_out = None if rule.low is None else st.integers(max_value=rule.low - 1)
        high_out = None if rule.high is None else st.integers(min_value=rule.high + 1)
    else:
        inside = st.floats(min_value=rule.low, max_value=rule.high, allow_nan=False, allow_infinity=False)
        low_out = (
            None
            if rule.low is None
            else st.floats(max_value=rule.low, exclude_max=True, allow_nan=False, allow_infinity=False)
        )
        high_out = (
            None
            if rule.high is None
            else st.floats(min_value=rule.high, exclude_min=True, allow_nan=False, allow_infinity=False)
        )
    value = data.draw(inside)
    assert rule.check(value) == value
    assert check_params(method, {rule.name: value}) == {rule.name: value}
    for strategy in (low_out, high_out):
        if strategy is not None:
            refused(rule, data.draw(strategy))


def test_the_table_is_well_formed():
    assert set(RULES) >= {"projection", "pca", "umap", "tsne", "outliers", "shift", "retrieval", "depth"}
    for method, table in RULES.items():
        for name, rule in table.items():
            assert rule.name == name and rule.help and rule.owner, (method, name)
            if rule.kind in ("int", "float"):
                assert rule.low is not None, (method, name)  # every number has a floor
                assert rule.step is None or rule.step > 0
    with pytest.raises(ValueError, match="Rule x: its default breaks the rule"):
        Rule("x", "int", 0, 1, 10)  # a default outside its own range fails when declared
    with pytest.raises(ValueError, match="kind"):
        Rule("x", "text", "a")


def test_unknown_parameters_and_methods_are_named():
    with pytest.raises(
        ParameterError,
        match=r"UMAP has no parameter perplexity \(it takes n_neighbors, "
        r"min_dist, metric\)",
    ):
        check_params("umap", {"perplexity": 30})
    with pytest.raises(ParameterError, match=r"PCA has no parameter n_neighbors \(it takes none\)"):
        check_params("pca", {"n_neighbors": 5})
    with pytest.raises(ParameterError, match="No parameter rules for 'mds'; known: projection"):
        rules("mds")
    assert resolve("umap", {"min_dist": 0}) == {"n_neighbors": 15, "min_dist": 0.0, "metric": "cosine"}
    assert isinstance(resolve("umap", {"min_dist": 0})["min_dist"], float)


# --- the library checks through the rules ---------------------------------------------------------


@pytest.fixture(scope="module")
def vectors():
    return np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)


def library_calls(X):
    """For each rule the library enforces, a call that passes one value for it."""
    from analytics.outliers import find_outliers
    from analytics.projection import project
    from analytics.retrieval import ExactIndex, more_like_this, search_text
    from analytics.shift import ShiftResult, shift_test

    index = ExactIndex(X)
    result = ShiftResult(np.ones(3), np.ones(3), 0.5, 0.5, 0.0, 0.5, None, 0, "cosine")

    class Encoder:
        def encode(self, texts):
            return X[: len(texts)]

    return {
        ("projection", "method"): lambda v: project(X, v, n_neighbors=1),  # a bad method is named first
        ("umap", "n_neighbors"): lambda v: project(X, "umap", n_neighbors=v),
        ("umap", "min_dist"): lambda v: project(X, "umap", min_dist=v),
        ("umap", "metric"): lambda v: project(X, "umap", metric=v),
        ("tsne", "perplexity"): lambda v: project(X, "tsne", perplexity=v),
        ("tsne", "metric"): lambda v: project(X, "tsne", metric=v),
        ("outliers", "quantile"): lambda v: find_outliers(X, quantile=v),
        ("outliers", "count"): lambda v: find_outliers(X, count=v),
        ("outliers", "k"): lambda v: find_outliers(X, k=v),
        ("outliers", "by"): lambda v: find_outliers(X, by=v),
        ("shift", "permutations"): lambda v: shift_test(X[:20], X[20:], permutations=v),
        ("shift", "alpha"): lambda v: result.summary(alpha=v),
        ("retrieval", "k"): lambda v: (
            search_text(Encoder(), index, "a query", k=v),
            more_like_this(index, 0, k=v),
        ),
        **retrieval_calls(X),
        **issue12_calls(X),
    }


def retrieval_calls(X):
    """The calls for BM25's and the hybrid's rules, and the retrieval method's."""
    from analytics.retrieval import BM25Index, ExactIndex, HybridIndex, build_index

    texts = [f"text number {i}" for i in range(len(X))]
    dense, words = ExactIndex(X), BM25Index(texts)
    calls = {("retrieval", "method"): lambda v: build_index(v, vectors=X, texts=texts)}
    calls.update({("bm25", name): lambda v, n=name: BM25Index(texts, **{n: v}) for name in ("k1", "b")})
    for name in ("fusion", "weight", "rrf_k", "candidates"):
        calls["hybrid", name] = lambda v, n=name: HybridIndex(dense, words, **{n: v})
    return calls


def issue12_calls(X):
    """The calls for the representatives' and the overlap check's rules."""
    from analytics.overlap import check_overlap
    from analytics.representatives import pick_representatives

    calls = {
        ("representatives", name): lambda v, n=name: pick_representatives(X, **{n: v})
        for name in ("k", "method", "max_similarity")
    }
    texts = [f"text number {i}" for i in range(len(X))]
    for name in ("opening_chars", "min_similarity"):
        calls["overlap", name] = lambda v, n=name: check_overlap(texts, texts, X, X, **{n: v})
    return calls


def test_the_library_refuses_every_out_of_range_value(vectors):
    calls = library_calls(vectors)
    for (method, name), call in calls.items():
        rule = RULES[method][name]
        bad = outside(rule) if rule.kind in ("int", "float") else ["mds" if name == "method" else "hamming"]
        if rule.kind == "float":
            bad += [math.nan, math.inf]
        for value in bad:
            with pytest.raises(ParameterError, match=f"{rule.title} must be") as exc:
                call(value)
            assert "Traceback" not in str(exc.value)
    display_only = {("shift", "top"), ("depth", "top")}  # CLI display counts, no library call
    assert set(calls) | display_only == {(m, n) for m, t in RULES.items() for n in t}


def test_library_signature_defaults_are_the_rules_defaults():
    from analytics.outliers import find_outliers, local_depth
    from analytics.projection import DEFAULTS, METHODS, corpus_projection, project
    from analytics.report import build_report
    from analytics.retrieval import more_like_this, search_text
    from analytics.shift import ShiftResult, shift_test

    def default(fn, name):
        return inspect.signature(fn).parameters[name].default

    assert default(find_outliers, "quantile") == RULES["outliers"]["quantile"].default
    assert default(find_outliers, "k") == RULES["outliers"]["k"].default
    from analytics.overlap import check_overlap
    from analytics.representatives import pick_representatives

    for name, rule in RULES["representatives"].items():
        assert default(pick_representatives, name) == rule.default, name
    for name, rule in RULES["overlap"].items():
        assert default(check_overlap, name) == rule.default, name
    assert default(find_outliers, "by") == RULES["outliers"]["by"].default
    assert default(local_depth, "k") == RULES["outliers"]["k"].default
    assert default(shift_test, "permutations") == RULES["shift"]["permutations"].default
    assert default(build_report, "permutations") == RULES["shift"]["permutations"].default
    assert default(ShiftResult.significant, "alpha") == RULES["shift"]["alpha"].default
    assert default(ShiftResult.summary, "alpha") == RULES["shift"]["alpha"].default
    assert default(search_text, "k") == default(more_like_this, "k") == RULES["retrieval"]["k"].default
    assert (
        default(project, "method")
        == default(corpus_projection, "method")
        == RULES["projection"]["method"].default
    )
    assert set(METHODS) == set(RULES["projection"]["method"].choices)
    assert DEFAULTS == {m: defaults(m) for m in METHODS}


# --- the CLI's options come from the rules -------------------------------------------------------

CLI_OPTIONS = [
    ("depth", "--top", "depth", "top"),
    ("shift", "--top", "shift", "top"),
    ("shift", "--permutations", "shift", "permutations"),
    ("shift", "--alpha", "shift", "alpha"),
    ("report", "--permutations", "shift", "permutations"),
    ("report", "--method", "projection", "method"),
]


def subcommand(name: str) -> argparse.ArgumentParser:
    from analytics.cli import build_parser

    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]


def positional(command):
    return {"depth": ["c"], "shift": ["f", "g"], "report": ["c", "--out", "x.html"]}[command]


@pytest.mark.parametrize("command, flag, method, name", CLI_OPTIONS)
def test_cli_options_take_default_help_and_check_from_the_rule(command, flag, method, name, capsys):
    rule = RULES[method][name]
    sub = subcommand(command)
    action = next(a for a in sub._actions if flag in a.option_strings)
    assert action.default == rule.default
    assert rule.help in action.help
    assert (f"default {rule.default}" if rule.kind == "choice" else rule.describe()) in action.help
    args = sub.parse_args([*positional(command), flag, str(rule.default)])
    assert getattr(args, action.dest) == rule.default
    for value in outside(rule) if rule.kind in ("int", "float") else ["mds"]:
        with pytest.raises(SystemExit) as exc:
            sub.parse_args([*positional(command), flag, str(value)])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}: {rule.title} must be" in err, err


def test_cli_map_options_come_from_the_method_rules(capsys):
    sub = subcommand("report")
    args = sub.parse_args(
        ["c", "--out", "x.html", "--method", "tsne", "--perplexity", "12", "--metric", "euclidean"]
    )
    from analytics.cli import _map_params

    assert _map_params(args) == {"perplexity": 12.0, "metric": "euclidean"}
    args = sub.parse_args(["c", "--out", "x.html", "--method", "pca", "--n-neighbors", "30"])
    with pytest.raises(ParameterError, match="--n-neighbors does not apply to --method pca"):
        _map_params(args)
    with pytest.raises(SystemExit):
        sub.parse_args(["c", "--out", "x.html", "--min-dist", "nan"])
    assert "UMAP min_dist must be a finite number between 0 and 1, got nan" in capsys.readouterr().err
    help_text = sub.format_help()
    for method in ("umap", "tsne"):
        for rule in RULES[method].values():
            assert f"--{rule.name.replace('_', '-')}" in help_text


# --- acceptance: one change in the table reaches the library, the slider and the CLI help -------


@pytest.fixture
def tiny_store(tmp_path):
    """A real store of 60 texts with random vectors imported under model id "rand": no model."""
    from analytics import Store, import_vectors

    path = tmp_path / "tiny.duckdb"
    rng = np.random.default_rng(1)
    with Store(path) as s:
        s.add_corpus("tiny", make_corpus([f"text number {i}" for i in range(60)]))
        import_vectors(s, "tiny", rng.normal(size=(60, 16)).astype(np.float32), "rand")
    return path


def warnings(at) -> list[str]:
    """The page's warnings as read (markdown escapes removed)."""
    return [w.value.replace("\\", "") for w in at.warning]


def open_page(store_path, monkeypatch, page="views/map.py", **query):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(store_path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=240)
    at.session_state["corpus"] = "tiny"
    at.session_state["model_id"] = "rand"
    at.run()
    at.switch_page(page)
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.slow
def test_changing_one_range_changes_the_library_the_slider_and_the_cli_help(tiny_store, monkeypatch, capsys):
    from analytics import Store
    from analytics.cli import main
    from analytics.projection import corpus_projection, project

    narrower = replace(RULES["umap"]["n_neighbors"], high=60)
    monkeypatch.setitem(RULES["umap"], "n_neighbors", narrower)

    # (a) the library
    X = np.random.default_rng(2).normal(size=(10, 4))
    with pytest.raises(ParameterError, match="UMAP n_neighbors must be an integer between 2 and 60, got 61"):
        project(X, "umap", n_neighbors=61)
    with Store(tiny_store) as s:
        assert corpus_projection(s, "tiny", "rand", "umap", n_neighbors=60).params["n_neighbors"] == 60

    # (b) the Map page's slider; a link asking for more is told so and gets the default
    at = open_page(tiny_store, monkeypatch, method="umap", n_neighbors="61")
    n_neighbors = at.slider(key="map_n_neighbors")
    assert (n_neighbors.min, n_neighbors.max, n_neighbors.value) == (2, 60, 15)
    assert "2–60, default 15" in n_neighbors.help
    assert any(
        "Ignoring the link's n_neighbors=61" in text and "between 2 and 60" in text for text in warnings(at)
    )

    # (c) the CLI's help
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main(["report", "--help"])
    assert exc.value.code == 0
    assert "with --method umap: 2–60, default 15: neighbours" in capsys.readouterr().out


@pytest.mark.slow
def test_map_links_with_nan_or_junk_fall_back_to_the_default_with_a_warning(tiny_store, monkeypatch):
    at = open_page(tiny_store, monkeypatch, method="umap", min_dist="nan", n_neighbors="many")
    assert at.slider(key="map_min_dist").value == RULES["umap"]["min_dist"].default
    assert at.slider(key="map_n_neighbors").value == RULES["umap"]["n_neighbors"].default
    said = " ".join(warnings(at))
    assert "min_dist=nan" in said and "UMAP min_dist must be a finite number between 0 and 1" in said
    assert "n_neighbors=many" in said
    settle(at, tiny_store)  # the map is computed by a background job
    # the map is drawn, with the defaults (the WebGL component's payload; its caption names them)
    assert [e for e in at.get("bidi_component") if not e.proto.id.endswith("-channel")]
    default = RULES["umap"]["n_neighbors"].default
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any(f"UMAP (n_neighbors={default}," in c for c in captions), captions
    at = open_page(tiny_store, monkeypatch, method="mds")
    assert "method=mds" in warnings(at)[0] and "must be one of umap, pca, tsne" in warnings(at)[0]
    assert at.radio(key="map_method").value == "umap"


@pytest.mark.slow
def test_outliers_page_widgets_are_the_rules(tiny_store, monkeypatch):
    at = open_page(tiny_store, monkeypatch, "views/outliers.py")
    rules_ = RULES["outliers"]
    share = at.slider[0]
    assert share.label == "Share of the corpus (%)"
    assert (share.min, share.max, share.value) == pytest.approx(
        (rules_["quantile"].low * 100, rules_["quantile"].high * 100, rules_["quantile"].default * 100)
    )
    k = at.slider[1]
    assert (k.min, k.max, k.value) == (rules_["k"].low, rules_["k"].high, rules_["k"].default)
    assert rules_["k"].describe() in k.help
    settle(at, tiny_store)  # the outliers are ranked by a background job
    assert len(at.expander) == 3  # 5% of 60
    at.radio[0].set_value("lowest count").run()
    settle(at, tiny_store)
    count = at.number_input[0]
    assert (count.min, count.max, count.value) == (1, None, rules_["count"].default)
