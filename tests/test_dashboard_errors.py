"""Errors shown to users (issue 9, item 5): an expected failure is a clear message, a bug an
error id on the page and its traceback in the server log; never a traceback in the browser.

Real stores, the real pages through streamlit's AppTest, and real ``embex`` processes. Vectors
are imported (random, 384-d) under the bundled model's key, so only the Retrieval test loads
the model.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
import tomllib

import numpy as np
import pytest
from conftest import ROOT, make_corpus, settle

from analytics import Store, import_vectors
from analytics.embedding import DEFAULT_MODEL

ID_MESSAGE = re.compile(
    r"Something went wrong \(error id ([0-9a-f]{8})\)\. The details are in the server log\."
)


def _shown(at) -> list[str]:
    """Every text the page shows (messages, markdown, text, code, exceptions)."""
    kinds = (
        at.error,
        at.warning,
        at.info,
        at.success,
        at.markdown,
        at.text,
        at.code,
        at.caption,
        at.exception,
    )
    return [str(getattr(e, "value", "")) for kind in kinds for e in kind]


def test_the_browser_gets_no_error_details():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"


# --- run_page, the wrapper app.py runs every page in ---------------------------------------------


def _script(dashboard: str, case: str):
    """A page run through dashboard/common.run_page, as app.py runs the real ones."""
    import sys

    sys.path.insert(0, dashboard)
    import streamlit as st
    from common import run_page

    from analytics import StoreError

    def page():
        st.markdown("page start")
        if case == "bug":
            print(1 / 0)
        elif case == "user":
            raise StoreError("No corpus named 'x'. Add it on the Upload page.")
        elif case == "stop":
            st.stop()
        elif case == "rerun" and not st.session_state.get("reran"):
            st.session_state["reran"] = True
            st.rerun()
        st.markdown("page end")

    run_page(page)
    st.markdown("script end")


def _run_script(case: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_script, args=(str(ROOT / "dashboard"), case), default_timeout=60)
    return at.run()


def test_a_bug_in_a_page_shows_an_error_id_and_logs_the_traceback_under_it(caplog):
    with caplog.at_level(logging.ERROR, logger="embex.dashboard"):
        at = _run_script("bug")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    match = ID_MESSAGE.fullmatch(at.error[0].value)
    assert match, at.error[0].value
    shown = "\n".join(_shown(at))
    for leak in ("Traceback", "ZeroDivisionError", "division by zero", "1 / 0", ".py"):
        assert leak not in shown, leak
    assert "script end" in shown  # the rest of the app (the sidebar) still runs
    records = [r for r in caplog.records if r.name == "embex.dashboard"]
    assert len(records) == 1 and records[0].levelno == logging.ERROR
    assert match.group(1) in records[0].getMessage()
    assert records[0].exc_info and records[0].exc_info[0] is ZeroDivisionError
    assert "Traceback" in caplog.text and "print(1 / 0)" in caplog.text


def test_each_error_gets_its_own_id():
    ids = {ID_MESSAGE.fullmatch(_run_script("bug").error[0].value).group(1) for _ in range(3)}
    assert len(ids) == 3


def test_a_user_error_in_a_page_shows_its_message_and_logs_nothing(caplog):
    with caplog.at_level(logging.ERROR, logger="embex.dashboard"):
        at = _run_script("user")
    assert not at.exception
    assert [e.value for e in at.error] == [r"No corpus named 'x'\. Add it on the Upload page\."]
    assert not [r for r in caplog.records if r.name == "embex.dashboard"]


def test_stop_and_rerun_pass_through_the_wrapper():
    at = _run_script("stop")
    assert not at.exception and not at.error
    shown = _shown(at)
    assert "page start" in shown and "page end" not in shown and "script end" not in shown
    at = _run_script("rerun")
    assert not at.exception and not at.error
    assert at.session_state["reran"] and {"page end", "script end"} <= set(_shown(at))


# --- the real pages --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """Corpora of 1, 2 and 3 texts, with vectors under the bundled model's key."""
    path = tmp_path_factory.mktemp("tiny") / "tiny.duckdb"
    rng = np.random.default_rng(0)
    with Store(path) as s:
        for n in (1, 2, 3):
            s.add_corpus(f"n{n}", make_corpus([f"text {i} about markets and sport" for i in range(n)]))
            import_vectors(s, f"n{n}", rng.normal(size=(n, 384)).astype(np.float32), DEFAULT_MODEL)
    return path


@pytest.fixture
def page(monkeypatch):
    from streamlit.testing.v1 import AppTest

    def open_page(store_path, name: str, **state):
        monkeypatch.setenv("EMBEX_STORE", str(store_path))
        monkeypatch.setenv("EMBEX_SAMPLE", "0")
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
        for k, v in state.items():
            at.session_state[k] = v
        at.run()
        at.switch_page(name)
        return at.run()

    return open_page


@pytest.mark.parametrize("n", [1, 2])
def test_a_tiny_corpus_on_the_map_says_how_many_texts_are_needed(page, tiny_store, n):
    at = page(tiny_store, "views/map.py", corpus=f"n{n}")
    assert not at.exception, [e.value for e in at.exception]
    texts = "text" if n == 1 else "texts"
    assert [e.value for e in at.error] == [
        rf"Corpus 'n{n}' has {n} {texts}; a map needs at least 3\. Add texts to it, or pick a larger corpus\."
    ]


@pytest.mark.slow  # several embex processes (or UMAP's JIT): the full tier
@pytest.mark.parametrize("method", ["umap", "pca", "tsne"])
def test_three_texts_draw_a_map(page, tiny_store, method):
    at = page(tiny_store, "views/map.py", corpus="n3")
    at.radio(key="map_method").set_value(method).run()
    settle(at, tiny_store)  # the map is computed by a background job
    assert not at.exception and not at.error, [e.value for e in at.error]
    # the WebGL map's payload: three points (the browser draws it: tests/test_map_page.py)
    sys.path.insert(0, str(ROOT / "dashboard"))
    from scatter import read_header

    (element,) = [e for e in at.get("bidi_component") if not e.proto.id.endswith("-channel")]
    assert read_header(element.proto.bytes)["n"] == 3


@pytest.mark.parametrize("n", [1, 2])
def test_a_tiny_corpus_on_the_report_page_says_how_many_texts_are_needed(page, tiny_store, n):
    at = page(tiny_store, "views/report.py", corpus=f"n{n}")  # said on opening, before any button
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1 and f"Corpus 'n{n}' has {n} text" in at.error[0].value
    assert "a report \\(its map and depths\\) needs at least 3" in at.error[0].value
    assert not at.button and not at.get("download_button")


@pytest.mark.slow  # the Retrieval page loads the model for its queries
def test_a_tiny_corpus_on_retrieval_finds_and_says_why_there_is_no_map(page, tiny_store):
    at = page(tiny_store, "views/retrieval.py", corpus="n2")
    at.text_input[0].input("markets").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.dataframe[0].value) == 2  # the results stand
    assert any(
        "no map of this corpus yet" in w.value or "a map needs at least 3" in w.value
        for w in [*at.warning, *at.info]
    )


def test_cuda_on_a_machine_without_one_says_so_on_the_embed_page(page, tiny_store):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    at = page(tiny_store, "views/embed.py", corpus="n2")
    at.selectbox[1].set_value("cuda").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        r"CUDA was asked for but torch sees no GPU here; use device auto or cpu\."
    ]
    if not torch.backends.mps.is_available():
        at.selectbox[1].set_value("mps").run()
        assert not at.exception and "MPS \\(Apple GPU\\) was asked for" in at.error[0].value


def test_a_store_held_by_another_process_is_a_message(page, tmp_path):
    path = tmp_path / "held.duckdb"
    with Store(path) as s:
        s.add_corpus("c", make_corpus(["alpha", "beta", "gamma"]))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from analytics import Store; s = Store(sys.argv[1]); "
            "print('held', flush=True); time.sleep(120)",
            str(path),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        at = page(path, "views/home.py")
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.error) == 1 and "is open in another process" in at.error[0].value
    finally:
        holder.terminate()
        holder.wait(timeout=20)
    deadline = time.monotonic() + 10
    while True:  # the lock is gone with the process: the next run works (a failure is not cached)
        at = page(path, "views/home.py")
        if not at.error or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not at.exception and not at.error, [e.value for e in at.error]


# --- the CLI ---------------------------------------------------------------------------------------


def _embex(args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("EMBEX_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "analytics.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )


def _one_line_error(proc, message: str):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("embex: error: ") and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.slow  # several embex processes (or UMAP's JIT): the full tier
def test_report_out_a_folder_or_an_existing_file_is_refused(tiny_store, tmp_path):
    import shutil

    store = tmp_path / "s.duckdb"
    shutil.copy(tiny_store, store)
    cli = ["--store", str(store), "report", "n3", "--method", "pca"]
    (tmp_path / "reports").mkdir()
    _one_line_error(_embex([*cli, "--out", "reports"], tmp_path), "--out 'reports' is a folder")
    assert list((tmp_path / "reports").iterdir()) == []
    existing = tmp_path / "old.html"
    existing.write_text("keep me", encoding="utf-8")
    _one_line_error(_embex([*cli, "--out", "old.html"], tmp_path), "pass --force to replace it")
    assert existing.read_text(encoding="utf-8") == "keep me"
    proc = _embex([*cli, "--out", "old.html", "--force"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert existing.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    _one_line_error(
        _embex(["--store", str(store), "report", "n2", "--out", "new.html"], tmp_path),
        "Corpus 'n2' has 2 texts; a report (its map and depths) needs at least 3",
    )
    assert not (tmp_path / "new.html").exists()


@pytest.mark.slow  # several embex processes (or UMAP's JIT): the full tier
def test_embed_on_a_device_this_machine_lacks_is_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    store = tmp_path / "s.duckdb"
    with Store(store) as s:  # no vectors yet: embed has work to do
        s.add_corpus("fresh", make_corpus(["alpha", "beta"]))
    proc = _embex(["--store", str(store), "embed", "fresh", "--device", "cuda"], tmp_path)
    _one_line_error(proc, "CUDA was asked for but torch sees no GPU here; use device auto or cpu.")
