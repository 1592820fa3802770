"""Hostile uploads through the real server and Chromium (issue 9).

A file name sent by a browser is never trusted: uploads to Retrieval → Evaluate whose multipart
file names are forged to point outside any temporary folder (``../`` runs and an absolute path)
are evaluated from their bytes, the forged names are seen on the wire, and no file appears where
they point. Hostile files dropped on the Upload page are previewed or refused, never raise, and
leave every table's checksum as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, make_corpus, start_server

from analytics.embedding import DEFAULT_MODEL
from analytics.screenshot import wait_for_app
from analytics.store import Store, text_hash

if not Path("/usr/bin/chromium").exists():
    pytest.skip("BROWSER TESTS SKIPPED: /usr/bin/chromium is missing.", allow_module_level=True)
pytest.importorskip("playwright.sync_api")


def test_forged_upload_names_write_no_file(tmp_path, sample_rows, embed_cached, browser):
    texts = [r["text"] for r in sample_rows[:60]]
    path = tmp_path / "names.duckdb"
    with Store(path) as s:
        s.add_corpus("news", make_corpus(texts))
        s.register_model(DEFAULT_MODEL, 384)
        s.put_vectors(DEFAULT_MODEL, [text_hash(t) for t in texts], embed_cached(texts))
    outside = tmp_path / "outside"
    outside.mkdir()
    relative = "../" * 12 + str(outside / "evil-queries.csv").lstrip("/")  # climbs to / and back down
    absolute = str(outside / "evil-qrels.tsv")
    proc, url = start_server(path)
    sent: list[bytes] = []
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})

        def keep_body(route, request):  # the multipart bodies as sent, forged names and all
            sent.append(request.post_data_buffer or b"")
            route.continue_()

        page.route("**/_stcore/upload_file/**", keep_body)
        page.goto(f"{url}/retrieval?corpus=news")
        wait_for_app(page, 180_000)
        page.get_by_text("Evaluate with relevance judgements").click()
        uploader = page.locator('[data-testid="stFileUploader"]')
        uploader.filter(has_text="Queries").locator("input[type=file]").set_input_files(
            files=[
                {"name": relative, "mimeType": "text/csv", "buffer": b"query-id,text\nq1,World news today\n"}
            ]
        )
        uploader.filter(has_text="Judgements").locator("input[type=file]").set_input_files(
            files=[
                {
                    "name": absolute,
                    "mimeType": "text/tab-separated-values",
                    "buffer": b"query-id\tcorpus-id\tscore\nq1\t0\t1\nq1\t3\t1\n",
                }
            ]
        )
        page.get_by_role("button", name="Evaluate").click()
        # it ran on the uploaded bytes: the metrics table (a canvas grid: its text is not in the DOM)
        page.locator('[data-testid="stExpander"] [data-testid="stDataFrame"]').first.wait_for(timeout=120_000)
        page.screenshot(path=str(tmp_path / "evaluated.png"), full_page=True)
        assert page.get_by_test_id("stAlertContentError").count() == 0
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    wire = b"".join(sent)
    assert b"evil-queries.csv" in wire and absolute.encode() in wire  # the forged names were sent
    assert list(outside.iterdir()) == []  # and nothing was written where they point
    assert not list(ROOT.glob("**/evil-q*")) and not list(tmp_path.glob("**/evil-q*"))


def test_hostile_files_through_the_upload_page_change_no_table(tmp_path, browser):
    """The hostile fixtures (and a few more) dropped on the Upload page of a real server: each is
    previewed or refused with a message, none raises, and every table's checksum is as before."""
    from conftest import HOSTILE

    path = tmp_path / "upload.duckdb"
    with Store(path) as s:
        s.add_corpus("keep", make_corpus(["a text to keep", "another text to keep", "a third one"]))
        before = s.digest()
    files = [
        (p.name, p.read_bytes())
        for p in sorted(HOSTILE.iterdir())
        if p.suffix in (".csv", ".jsonl", ".parquet")
    ]
    files += [
        ("empty_objects.jsonl", b"{}\n{}"),
        ("nul.csv", b"text\n\x00\x00\n"),
        ("bom.tsv", b"\xef\xbb\xbftext\tl\n\t\n"),
    ]
    proc, url = start_server(path)
    outcomes = {}
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        for name, data in files:  # a fresh page for each: nothing left over from the last file
            page.goto(f"{url}/upload")
            wait_for_app(page, 120_000)
            page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(
                files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
            )
            error, preview = page.get_by_test_id("stAlertContentError"), page.get_by_text("metadata columns:")
            error.or_(preview).first.wait_for(timeout=120_000)  # the page has said something
            wait_for_app(page, 120_000)
            assert page.locator('[data-testid="stException"]').count() == 0, name
            refused, previewed = error.count() > 0, preview.count() > 0
            assert refused != previewed, name  # one or the other
            outcomes[name] = "refused" if refused else "previewed"
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store(path, read_only=True) as s:
        assert s.digest() == before  # nothing was saved, nothing damaged
    assert (
        outcomes["garbage.csv"] == outcomes["zero_bytes.csv"] == outcomes["empty_objects.jsonl"] == "refused"
    )
