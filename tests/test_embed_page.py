"""The Embed page before, during and after a run, and the estimate it shows first.

Fast: :func:`analytics.jobs.embed_estimate` on real stores: rows, distinct texts, already
cached and left to embed always add up (hypothesis), and the time is the characters left over
the speed measured by the last run (:func:`analytics.jobs._record_embed_rate`). Slow: the real
server, Chromium and the bundled model on a CLINC150 slice with repeated texts: the estimate
before, the progress panel with its Cancel button during, and after the run the final count,
no Cancel button, the rows-against-distinct-texts sentence, and the next corpus's estimate
from the speed this run measured.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_corpus
from hypothesis import given, settings
from hypothesis import strategies as hs

from analytics.embedding import EmbedReport
from analytics.jobs import COST_CHARS, _rate_key, _record_embed_rate, embed_estimate
from analytics.store import Store, text_hash

SLICE = ROOT / "tests" / "fixtures" / "clinc150_slice.jsonl"


def _slice() -> list[dict]:
    return [json.loads(line) for line in SLICE.read_text(encoding="utf-8").splitlines()]


def _report(corpus: str, n: int, seconds: float, model_id: str = "m", device: str = "cpu") -> EmbedReport:
    return EmbedReport(
        corpus=corpus,
        model_id=model_id,
        device=device,
        n_docs=n,
        n_cached=0,
        n_computed=n,
        n_truncated=0,
        max_seq_length=256,
        seconds=seconds,
        stopped=False,
    )


@settings(max_examples=25, deadline=None)
@given(
    hs.lists(hs.sampled_from([f"text number {i}" for i in range(15)]), min_size=1, max_size=40),
    hs.sets(hs.integers(0, 14), max_size=15),
)
def test_rows_distinct_cached_and_left_add_up(texts, cached_ids):
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.duckdb") as store:
        store.add_corpus("c", make_corpus(texts))
        cached = sorted({t for t in texts if int(t.rsplit(" ", 1)[1]) in cached_ids})
        if cached:
            store.put_vectors("m", [text_hash(t) for t in cached], np.ones((len(cached), 4), np.float32))
        est = embed_estimate(store, "c", "m", "cpu")
    assert est.rows == len(texts)
    assert est.distinct == len(set(texts))
    assert est.cached == len(cached) and est.to_embed == len(set(texts)) - len(cached)
    assert est.seconds is None  # no run measured a speed in this store
    line = est.describe()
    if len(texts) == len(set(texts)):
        assert line.startswith(f"{len(texts):,} rows, every text distinct. ")
    else:
        assert line.startswith(
            f"{len(texts):,} rows, {len(set(texts)):,} distinct texts: repeated texts are embedded once. "
        )


def test_the_estimate_is_the_characters_left_over_the_measured_speed(store):
    short = [f"query {i:03d}" for i in range(200)]  # 9 characters each
    store.add_corpus("measured", make_corpus(short))
    _record_embed_rate(store, _report("measured", 200, 4.0))  # 50 texts/s = 450 characters/s
    assert store.get_result(_rate_key("m", "cpu")) is not None
    longer = [f"a longer query {i:03d}" for i in range(90)] * 2  # 18 characters, each twice
    store.add_corpus("next", make_corpus(longer))
    est = embed_estimate(store, "next", "m", "cpu:0")  # the device's family keys the speed
    assert (est.rows, est.distinct, est.cached, est.to_embed) == (180, 90, 0, 90)
    assert est.seconds == pytest.approx(90 * 18 / 450)
    assert est.rate == pytest.approx(450 / 18)
    line = est.describe()
    assert "180 rows, 90 distinct texts: repeated texts are embedded once" in line
    assert "90 to embed, about 4 s at 25 texts/s" in line and "'measured' on cpu" in line
    # another model or device has no speed yet; a text's characters count up to COST_CHARS
    assert embed_estimate(store, "next", "other", "cpu").seconds is None
    assert embed_estimate(store, "next", "m", "cuda").seconds is None
    store.add_corpus("huge", make_corpus(["x" * (5 * COST_CHARS), "y" * COST_CHARS]))
    assert embed_estimate(store, "huge", "m", "cpu").seconds == pytest.approx(2 * COST_CHARS / 450)


def test_runs_too_short_to_time_keep_no_speed(store):
    store.add_corpus("tiny", make_corpus([f"t {i}" for i in range(500)]))
    _record_embed_rate(store, _report("tiny", 10, 5.0))  # too few texts
    _record_embed_rate(store, _report("tiny", 500, 0.2))  # too quick
    assert store.get_result(_rate_key("m", "cpu")) is None


# ---------------------------------------------------------------- slow: server + Chromium + model


@pytest.mark.slow
def test_the_embed_page_before_during_and_after_a_run(tmp_path, browser):
    from conftest import start_server

    from analytics.jobs import Job
    from analytics.screenshot import wait_for_app

    rows = _slice()
    texts = [r["text"] for r in rows] + [rows[i]["text"] for i in range(0, 50, 10)]  # 5 repeats
    labels = [r["intent"] for r in rows] + [rows[i]["intent"] for i in range(0, 50, 10)]
    path = tmp_path / "embed.duckdb"
    with Store(path) as s:
        s.add_corpus("clinc", make_corpus(texts, labels))
        s.add_corpus("next", make_corpus([f"{t} today" for t in texts[:100]]))
    proc, url = start_server(path, port=8751)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/embed?corpus=clinc")
        page.get_by_role("button", name="Embed", exact=True).wait_for(timeout=120_000)  # drawn last
        wait_for_app(page)
        main = page.locator('[data-testid="stMain"]')
        before = main.inner_text()
        assert "0 of 445 rows" in before
        assert "445 rows, 440 distinct texts: repeated texts are embedded once." in before
        assert "0 already have a vector; 440 to embed" in before
        assert "no speed measured yet" in before
        page.screenshot(path=str(tmp_path / "embed-before.png"))
        page.get_by_role("button", name="Embed", exact=True).click()
        cancel = page.get_by_role("button", name="Cancel")
        cancel.wait_for(timeout=120_000)  # the job's panel: progress and its Cancel button
        assert "runs in the background" in main.inner_text()
        page.get_by_text("Every text is embedded").wait_for(timeout=600_000)  # the page reruns itself
        page.get_by_text("445 of 445 rows").wait_for(timeout=30_000)
        wait_for_app(page)
        after = main.inner_text()
        page.screenshot(path=str(tmp_path / "embed-after.png"))
        assert cancel.count() == 0 and "runs in the background" not in after
        assert "445 of 445 rows" in after and "0 of 445" not in after
        assert "445 rows, 440 distinct texts: repeated texts are embedded once." in after
        assert (
            "This run embedded 440 new text(s) on cpu" in after and "before it, no row had a vector" in after
        )
        # the next corpus's estimate comes from the speed this run measured
        page.goto(f"{url}/embed?corpus=next")
        page.get_by_role("button", name="Embed", exact=True).wait_for(timeout=120_000)
        page.get_by_text("100 to embed").wait_for(timeout=60_000)
        wait_for_app(page)
        nxt = main.inner_text()
        assert "100 rows, every text distinct" in nxt, nxt
        # a run under a second is too short to time well and is not kept (jobs._record_embed_rate):
        # a quiet machine can embed these 440 short texts that fast
        took = float(re.search(r"This run embedded 440 new text\(s\) on cpu in ([\d.]+) s", after).group(1))
        if took >= 1.1:
            assert "100 to embed, about" in nxt, nxt
            assert "texts/s (measured embedding 440 texts of 'clinc' on cpu)" in nxt, nxt
        elif took <= 0.9:
            assert "100 to embed (no speed measured yet" in nxt, nxt
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store(path, read_only=True) as s:
        jobs = [Job.from_row(r) for r in s.job_rows()]
        assert [(j.kind, j.state) for j in jobs] == [("embed", "done")]
        assert s.embedded_count("clinc", jobs[0].params["model_id"]) == 445
