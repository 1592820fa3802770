"""Shared fixtures: the bundled sample corpus and its real embeddings from the bundled model."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "ag_news.csv"
CACHE = Path(__file__).resolve().parent / ".cache"


@pytest.fixture(scope="session")
def sample_rows() -> list[dict[str, str]]:
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def embed_cached():
    """Embed texts with the real bundled model; vectors are kept on disk keyed by the texts and
    the model's weights, so a second test run does not pay for the model again."""
    from analytics.embedding import default_model_path, embed_texts

    weights = default_model_path() / "model.safetensors"
    model_key = f"{weights.stat().st_size}-{weights.stat().st_mtime_ns}-fp32"

    def embed(texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\x1f".join([model_key, *texts]).encode()).hexdigest()[:24]
        path = CACHE / f"{key}.npy"
        if path.exists():
            return np.load(path)
        vectors = embed_texts(texts, device="cpu", precision="float32")  # the same on every CPU
        CACHE.mkdir(exist_ok=True)
        np.save(path, vectors)
        return vectors

    return embed


@pytest.fixture(scope="session")
def label_embeddings(sample_rows, embed_cached):
    """Real embeddings of every World text and the first 500 Sports texts, float32, unit rows."""
    world = [r["text"] for r in sample_rows if r["label"] == "World"]
    sports = [r["text"] for r in sample_rows if r["label"] == "Sports"][:500]
    return {"World": embed_cached(world), "Sports": embed_cached(sports)}


HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"


@pytest.fixture(scope="session")
def embedder():
    """The real bundled model, loaded once for the session."""
    from analytics.embedding import Embedder

    return Embedder(device="cpu", precision="float32", batch_size=32)


@pytest.fixture
def store(tmp_path):
    """A real DuckDB file on disk."""
    from analytics.store import Store

    with Store(tmp_path / "store.duckdb") as s:
        yield s


def make_corpus(texts, labels=None, source="test"):
    from analytics.corpus import Corpus

    labels = labels or ["x"] * len(texts)
    return Corpus(list(texts), [{"label": label} for label in labels], "text", source)


def settle(at, store_path):
    """Wait for the background jobs an AppTest page started (they run in this process's
    executor), then run the page again, as its polling fragment would."""
    from analytics.jobs import executor_for

    ex = executor_for(store_path)
    busy = ex.jobs(active=True)
    for job in busy:
        assert ex.wait(job.id, timeout=300).state == "done", ex.get(job.id)
    if busy:
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# Hypothesis's per-example deadline (200 ms) measures the machine, not the code: on a shared
# 2-core runner a sound example can take longer. Correctness is what these tests assert; speed
# is measured in benchmarks/.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("embex", deadline=None)
_hypothesis_settings.load_profile("embex")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


from contextlib import contextmanager  # noqa: E402


def start_server(
    store_path,
    *,
    port: int | None = None,
    sample: bool = False,
    timeout: float = 90,
    instance=None,
    host: str = "127.0.0.1",
):
    """Start the real dashboard as ``embex serve`` does (server + job executor) on a free
    localhost port, with its own store (or a team ``instance`` directory, then ``store_path``
    is None); returns (process, URL) once it answers. ``host`` is the URL's host (what a
    browser must use where a sign-in redirect names it)."""
    import os
    import subprocess
    import sys

    from analytics.screenshot import serving

    port = port or free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_SAMPLE": "1" if sample else "0"}
    where = ["--instance", str(instance)] if instance is not None else ["--store", str(store_path)]
    cmd = [sys.executable, "-m", "analytics.cli", "serve", *where]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--address", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://{host}:{port}"
    if not serving(url, proc, timeout=timeout):
        proc.kill()
        out = proc.stdout.read().decode(errors="replace")
        pytest.fail(f"the dashboard did not come up on {url}: {out[-2000:]}")
    return proc, url


@contextmanager
def streamlit_server(store_path, *, timeout: float = 90, sample: bool = False):
    """The real dashboard server (``embex serve``) on a free localhost port, with its own
    store; yields its URL. ``sample``: whether Home loads the bundled sample into an empty
    store (as a first start)."""
    proc, url = start_server(store_path, sample=sample, timeout=timeout)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by Playwright, headless, offline flags (analytics.screenshot)."""
    from playwright.sync_api import sync_playwright

    from analytics.screenshot import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


# The full tier: tests that load the model, start a server, a browser or a Ray cluster. The
# fast tier (`pytest -m "not slow"`, `scripts/test fast`) is everything else: under a minute.
SLOW_MODULES = {
    "test_app",
    "test_browser",
    "test_dashboard",
    "test_distributed",
    "test_embedding",
    "test_readme",
    "test_export",
    "test_inference",
    "test_jobs_browser",
    "test_upload_names",
    "test_sample",
}
SLOW_FIXTURES = {"embedder", "embed_cached", "label_embeddings", "dash_store", "app", "server", "cli_store"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module in SLOW_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    """Close the stores that the in-process dashboard tests cached (st.cache_resource), so no
    DuckDB connection outlives the run: duckdb's bindings warn about live objects at exit."""
    import gc
    import sys

    if "analytics.jobs" in sys.modules:  # the executors the pages opened, and their stores
        sys.modules["analytics.jobs"].shutdown_all()
    if "streamlit" in sys.modules:
        import streamlit as st

        st.cache_resource.clear()
    gc.collect()
