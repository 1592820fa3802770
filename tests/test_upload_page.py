"""The Upload page (issue 14): the page's own words (never ``text_column=``), label columns guessed
by cardinality (CLINC150's ``intent`` preselected, ``domain`` offered), vector files (.npy, .npz,
Parquet with a list column, with or without texts) stored through the library's import path with
clear errors and nothing stored damaged, and the note for texts the English-only default model
does not read.

The fast tests drive the library functions the page calls and the page itself in-process
(Streamlit's AppTest, a real DuckDB file); the slow one drives a real server from Chromium."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import HOSTILE, ROOT

from analytics.corpus import CorpusError
from analytics.errors import ExplorerError, ParameterError
from analytics.store import Store
from analytics.uploads import (
    UploadCache,
    check_model_id,
    default_model_id,
    for_page,
    is_vector_upload,
    needs_text_column,
    save_corpus_with_vectors,
    save_vectors,
)

FIXTURES = HOSTILE.parent
CLINC = FIXTURES / "clinc150_upload.csv"  # 200 queries: text, intent (21), domain (11)
SIB200 = FIXTURES / "sib200_languages.tsv"  # 300 sentences in 20 languages
#: an API word on the page: a keyword argument (``text_column=``) or a command-line option
API_WORD = re.compile(r"\b[a-z]+(?:_[a-z]+)*=(?![\w'\"])|(?<![\w-])--[a-z][a-z-]+")
HEX64 = re.compile(r"[0-9a-f]{64}")


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def clinc_vectors(n: int = 200, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(14).normal(size=(n, dim)).astype(np.float32)


# --- the library functions the page calls -----------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("nan_vectors.npy", r"^nan_vectors\.npy: 1 vector\(s\) contain NaN or inf \(rows \[0\]\)"),
        ("one_d_vectors.npy", r"^one_d_vectors\.npy: expected a 2-D array"),
        ("pickled_object.npy", r"^pickled_object\.npy could not be read as vectors: it holds Python objects"),
        (
            "ragged_vectors.parquet",
            r"^ragged_vectors\.parquet: the vectors in 'vector' have different lengths",
        ),
    ],
)
def test_hostile_vector_files_are_refused_in_the_browsers_name(tmp_path, name, message):
    data = (HOSTILE / name).read_bytes()
    assert is_vector_upload(data, name)
    cache = UploadCache(tmp_path / "up")
    for _ in range(2):  # the same refusal from the cache, read once
        with pytest.raises(CorpusError, match=message) as err:
            cache.read_vectors(data, name=name)
        assert not HEX64.search(str(err.value))  # the kept file's hash name is never shown
    assert cache.parses == 1


def test_what_is_a_vector_file():
    assert is_vector_upload(npy([[1.0, 2.0]]), "v.npy") and is_vector_upload(b"", "v.npz")
    texts_only = parquet(pa.table({"text": ["a", "b"], "tags": [["x"], ["y"]]}))
    assert not is_vector_upload(texts_only, "t.parquet")  # lists of strings are metadata
    assert is_vector_upload(parquet(pa.table({"emb": [[1.0], [2.0]]})), "v.parquet")
    assert not is_vector_upload((HOSTILE / "garbage.parquet").read_bytes(), "garbage.parquet")
    assert not is_vector_upload(b"text\nhello\n", "t.csv")


def test_vectors_for_a_stored_corpus_and_count_mismatch_stores_nothing(tmp_path):
    cache = UploadCache(tmp_path / "up")
    with Store(tmp_path / "s.duckdb") as s:
        s.add_corpus_stream("clinc", cache.read(CLINC.read_bytes(), name=CLINC.name), label_column="intent")
        before = s.digest()
        short = cache.read_vectors(npy(clinc_vectors(150)), name="short.npy")
        with pytest.raises(
            CorpusError, match=r"short\.npy holds 150 vectors, but corpus 'clinc' has 200 texts"
        ):
            save_vectors(s, short, corpus="clinc", model_id="uploaded:short")
        assert s.digest() == before
        V = clinc_vectors()
        upload = cache.read_vectors(npy(V), name="clinc vectors.npy")
        model = default_model_id("clinc vectors.npy")
        assert model == "uploaded:clinc-vectors"
        assert save_vectors(s, upload, corpus="clinc", model_id=model) == 200
        got = s.vectors("clinc", model)
        np.testing.assert_allclose(got, V / np.linalg.norm(V, axis=1, keepdims=True), rtol=1e-6)
        after = s.digest()
        # a second model name with another dimension is refused before anything is written
        with pytest.raises(CorpusError, match="dimension 8, but this model's are 16"):
            save_vectors(
                s,
                cache.read_vectors(npy(clinc_vectors(200, 8)), name="v8.npy"),
                corpus="clinc",
                model_id=model,
            )
        assert s.digest() == after


def test_a_parquet_file_with_texts_and_vectors_is_one_corpus(tmp_path):
    V = clinc_vectors(6, 4)
    table = pa.table(
        {
            "id": [5, 4, 3, 2, 1, 0],  # with texts, ids are metadata: row i's vector is text i's
            "text": ["alpha one", "beta two", "gamma three", "delta four", "epsilon five", "zeta six"],
            "topic": ["a", "b", "a", "b", "a", "b"],
            "embedding": list(V),
            "tags": [["x"]] * 6,
        }
    )
    cache = UploadCache(tmp_path / "up")
    upload = cache.read_vectors(parquet(table), name="with texts.parquet")
    assert upload.vector_column == "embedding" and upload.texts.n_docs == 6
    assert upload.texts.columns == ["id", "topic", "tags"]  # the vectors are not metadata
    with Store(tmp_path / "s.duckdb") as s:
        info, added = save_corpus_with_vectors(
            s, upload, name="both", model_id="uploaded:both", label_column="topic"
        )
        assert (info.name, info.n_docs, info.label_column, added) == ("both", 6, "topic", 6)
        assert s.texts("both")[0] == "alpha one"
        np.testing.assert_allclose(
            s.vectors("both", "uploaded:both"), V / np.linalg.norm(V, axis=1, keepdims=True), rtol=1e-6
        )


def test_empty_texts_beside_vectors_are_named_and_the_vectors_still_usable(tmp_path):
    table = pa.table({"text": ["one", "", "three"], "embedding": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]})
    upload = UploadCache(tmp_path / "up").read_vectors(parquet(table), name="gaps.parquet")
    assert (
        upload.texts is None
        and "1 row(s) have an empty text in column 'text' (rows 2)" in upload.texts_problem
    )
    assert upload.vectors.n == 3


def test_a_save_that_fails_after_the_corpus_is_written_takes_the_corpus_back(tmp_path):
    """The vector file is removed from the server between reading and saving (another session's
    uploads pushed it out): the new corpus is taken back, the store is as it was."""
    cache = UploadCache(tmp_path / "up")
    table = pa.table({"text": ["one text", "two texts"], "embedding": [[1.0, 0.0], [0.0, 1.0]]})
    upload = cache.read_vectors(parquet(table), name="gone.parquet")
    with Store(tmp_path / "s.duckdb") as s:
        before = s.digest()
        upload.path.unlink()
        with pytest.raises(CorpusError, match=r"^gone\.parquet was cleared from the server meanwhile"):
            save_corpus_with_vectors(s, upload, name="gone", model_id="uploaded:gone")
        assert s.digest() == before and s.list_corpora() == []
        # and should it go after the check, while the corpus is written: the corpus is taken back
        fresh = cache.read_vectors(parquet(table.slice(1)), name="late.parquet")
        reader = fresh.vectors.batches

        def batches(rows):
            fresh.path.unlink()  # as the import starts reading
            return reader(rows)

        late = replace(fresh, vectors=replace(fresh.vectors, batches=batches))
        with pytest.raises(
            CorpusError, match=r"^late\.parquet could not be read as Parquet near row 0"
        ) as err:
            save_corpus_with_vectors(s, late, name="late", model_id="uploaded:late")
        assert not HEX64.search(str(err.value).split("(")[0])
        assert s.digest() == before and s.list_corpora() == []


def test_model_names_of_uploaded_vectors():
    assert default_model_id("my vecs#1.parquet") == "uploaded:my-vecs-1"
    assert default_model_id("#.npy") == "uploaded:vectors"
    assert check_model_id("  uploaded:x ") == "uploaded:x"
    for bad in (
        "",
        "  ",
        "a#b",
        "all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "path:/m",
        "x" * 201,
    ):
        with pytest.raises(ParameterError):
            check_model_id(bad)


def refusals(tmp_path) -> dict[str, str]:
    """The messages the upload reader gives for the hostile corpus files and a few more (the
    limits lowered where a file over them would be large)."""
    cache = UploadCache(tmp_path / "up")
    files = {
        p.name: (p.read_bytes(), {}) for p in HOSTILE.iterdir() if p.suffix in (".csv", ".jsonl", ".parquet")
    }
    files.update(
        {
            "numbers.jsonl": (b'{"text": 1, "body": "words"}\n{"text": 2, "body": "more words"}\n', {}),
            "no_text.jsonl": (b'{"a": 1, "b": 2}\n{"a": 3, "b": 4}\n', {}),
            "long.csv": (b"text\n" + b"x" * 101 + b"\n", {"max_text_chars": 100}),
            "many.txt": (b"a\n" * 20, {"max_rows": 10}),
            "big.parquet": (parquet(pa.table({"text": ["y" * 1000] * 50})), {"max_decompressed_bytes": 1000}),
            "blank_text.csv": (b"text,label\n ,x\n ,y\n", {}),
        }
    )
    out = {}
    for name, (data, limits) in files.items():
        try:
            cache.read(data, name=name, **limits)
        except ExplorerError as exc:
            out[name] = str(exc)
    return out


def test_every_refusal_is_put_in_the_pages_words(tmp_path):
    messages = refusals(tmp_path)
    assert {"numbers.jsonl", "no_text.jsonl", "long.csv", "many.txt", "big.parquet", "latin1.csv"} <= set(
        messages
    )
    assert any(API_WORD.search(m) for m in messages.values())  # the library's own words have them
    for name, message in messages.items():
        for choose in (True, False):
            worded = for_page(message, choose=choose)
            assert not API_WORD.search(worded), (name, worded)
            assert ("below" in worded) == (choose and needs_text_column(message)), (name, worded)
    assert all(needs_text_column(messages[n]) for n in ("numbers.jsonl", "no_text.jsonl", "blank_text.csv"))
    assert not needs_text_column(messages["latin1.csv"]) and not needs_text_column(
        messages["ragged_rows.csv"]
    )
    assert for_page(messages["numbers.jsonl"]).endswith("Choose the text column below.")
    for name in ("many.txt", "long.csv", "big.parquet"):  # where a limit can be raised
        assert "from the command line (embex ingest), where the limit can be raised." in for_page(
            messages[name]
        )
    assert for_page(messages["latin1.csv"]).endswith("Re-save the file as UTF-8.")


# --- the page, in-process -----------------------------------------------------------------------


@pytest.fixture
def upload_page(tmp_path, monkeypatch):
    """The real app on a fresh DuckDB file, opened at the Upload page."""
    from streamlit.testing.v1 import AppTest

    store_path = tmp_path / "page.duckdb"
    Store(store_path).close()
    monkeypatch.setenv("EMBEX_STORE", str(store_path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def open_page():
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
        at.run()
        at.switch_page("views/upload.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    yield open_page, store_path
    from analytics.jobs import shutdown_all

    shutdown_all()  # the page's executor and its store, so the file can be read here


def drop(at, name: str, data: bytes):
    at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at) -> list[str]:
    """Every text the page shows in markdown, captions, alerts and widget labels."""
    texts = [
        e.value
        for kind in ("markdown", "caption", "error", "warning", "info", "success")
        for e in getattr(at, kind)
    ]
    return (
        [t.replace("\\", "") for t in texts]
        + [w.label for w in at.selectbox]
        + [w.label for w in at.text_input]
    )


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def page_store(store_path):
    from analytics.jobs import executor_for

    return executor_for(store_path).store  # this process's page holds the file


def test_clinc150_gets_intent_preselected_and_no_api_words(upload_page):
    open_page, store_path = upload_page
    at = drop(open_page(), CLINC.name, CLINC.read_bytes())
    text_col, label = at.selectbox[0], at.selectbox[1]
    assert (text_col.label, text_col.value) == ("Text column", "text")
    assert label.label == "Label column (colours the map)" and label.value == "intent"
    assert label.options[:3] == ["(none)", "intent", "domain"]
    assert any("few distinct values: intent, domain" in c for c in shown(at))
    assert "200 texts; metadata columns: intent, domain" in shown(at)
    assert not at.warning  # English queries: no language note
    assert not [t for t in shown(at) if API_WORD.search(t)]
    label.set_value("domain").run()  # the user's choice is kept
    button(at, "Save corpus").click().run()
    assert page_store(store_path).corpus_info("clinc150_upload").label_column == "domain"


def test_a_refused_text_column_offers_the_files_columns(upload_page):
    open_page, _ = upload_page
    data = b'{"text": 1, "body": "first words here"}\n{"text": 2, "body": "more words there"}\n'
    at = drop(open_page(), "numbers.jsonl", data)
    assert at.selectbox[0].label == "Text column" and at.selectbox[0].value is None
    errors = [e.value.replace("\\", "") for e in at.error]
    assert len(errors) == 1 and errors[0].endswith("Choose the text column below.")
    assert not [t for t in shown(at) if API_WORD.search(t)]
    at.selectbox[0].set_value("body").run()
    assert not at.error and "2 texts; metadata columns: text" in shown(at)


def test_vector_files_on_the_page_are_checked_and_stored_for_their_corpus(upload_page):
    open_page, store_path = upload_page
    at = drop(open_page(), CLINC.name, CLINC.read_bytes())
    button(at, "Save corpus").click().run()
    s = page_store(store_path)
    before = s.digest()

    bad = clinc_vectors()
    bad[150, 3] = np.nan  # deep in the file
    drop(at, "bad.npy", npy(bad))
    assert [e.value for e in at.error] and "bad.npy: 1 vector(s) contain NaN or inf (rows [150])" in shown(
        at
    )[0]
    assert not any(b.label == "Import vectors" for b in at.button)

    drop(at, "short.npy", npy(clinc_vectors(150)))
    assert "150 vectors of dimension 16." in shown(at)
    assert any(
        "150 vectors, but clinc150_upload has 200 texts" in w.value.replace("\\", "") for w in at.warning
    )
    button(at, "Import vectors").click().run()
    assert any("one row per text" in e.value for e in at.error)
    assert s.digest() == before  # nothing stored by either file

    drop(at, "clinc vectors.npy", npy(clinc_vectors()))
    target = next(w for w in at.selectbox if w.label == "Vectors for")
    assert target.value == "clinc150_upload"  # the corpus just saved, with as many texts
    model = next(w for w in at.text_input if w.label == "Model name for these vectors")
    assert model.value == "uploaded:clinc-vectors"
    button(at, "Import vectors").click().run()
    assert any("Stored 200 vectors for clinc150_upload as uploaded:clinc-vectors" in t for t in shown(at))
    assert s.embedded_count("clinc150_upload", "uploaded:clinc-vectors") == 200
    assert at.session_state["model_id"] == "uploaded:clinc-vectors"
    assert not [t for t in shown(at) if API_WORD.search(t)]


def test_a_parquet_file_of_texts_and_vectors_is_saved_from_the_page(upload_page):
    open_page, store_path = upload_page
    table = pa.table(
        {
            "text": [f"query number {i}" for i in range(40)],
            "intent": [f"i{i % 4}" for i in range(40)],
            "embedding": list(clinc_vectors(40, 8)),
        }
    )
    at = drop(open_page(), "embedded.parquet", parquet(table))
    target = next(w for w in at.selectbox if w.label == "Vectors for")
    assert target.value.startswith("\0")  # the file's own texts
    assert next(w for w in at.selectbox if w.label.startswith("Label column")).value == "intent"
    button(at, "Save corpus and vectors").click().run()
    s = page_store(store_path)
    assert s.corpus_info("embedded").n_docs == 40 and s.embedded_count("embedded", "uploaded:embedded") == 40


def test_non_english_texts_get_the_note_about_the_default_model(upload_page):
    open_page, _ = upload_page
    at = drop(open_page(), "sib200.tsv", SIB200.read_bytes())
    notes = [w.value.replace("\\", "") for w in at.warning]
    assert len(notes) == 1 and "is English-only" in notes[0] and "Model box of the Embed page" in notes[0]
    assert at.selectbox[1].value == "category"  # index_id repeats across languages, but is an id


# --- the page in Chromium, against a real server ----------------------------------------------


@pytest.mark.slow
def test_upload_page_in_chromium_labels_vectors_language_and_dark_theme(tmp_path, browser):
    """One server: CLINC150 slice dropped (intent preselected), saved; a vector file dropped and
    imported; a SIB-200 slice dropped (the language note); the page in a dark browser is dark."""
    from conftest import start_server

    from analytics.screenshot import wait_for_app

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is missing")
    path = tmp_path / "upload.duckdb"
    Store(path).close()
    vectors = tmp_path / "clinc vectors.npy"
    np.save(vectors, clinc_vectors())
    proc, url = start_server(path)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000}, color_scheme="dark")
        page.goto(f"{url}/upload")
        wait_for_app(page, 120_000)
        drop_zone = page.locator('[data-testid="stFileUploader"] input[type=file]')
        drop_zone.set_input_files(str(CLINC))
        page.get_by_text("200 texts; metadata columns: intent, domain").wait_for(timeout=60_000)
        wait_for_app(page, 60_000)
        assert page.get_by_role("combobox", name="Label column (colours the map)").input_value() == "intent"
        assert page.get_by_role("combobox", name="Text column").input_value() == "text"
        assert (
            API_WORD.search(page.locator("section.main, [data-testid='stMain']").first.inner_text()) is None
        )
        page.screenshot(path=str(tmp_path / "clinc.png"), full_page=True)
        page.get_by_role("button", name="Save corpus").click()
        page.get_by_text("Saved clinc150_upload: 200 texts").wait_for(timeout=60_000)

        drop_zone.set_input_files(str(vectors))
        page.get_by_text("200 vectors of dimension 16.").wait_for(timeout=60_000)
        wait_for_app(page, 60_000)
        page.get_by_role("button", name="Import vectors").click()
        page.get_by_text("Stored 200 vectors for clinc150_upload as uploaded:clinc-vectors").wait_for(
            timeout=60_000
        )
        page.screenshot(path=str(tmp_path / "vectors.png"), full_page=True)

        drop_zone.set_input_files(str(SIB200))
        note = page.get_by_text("The default model, all-MiniLM-L6-v2, is English-only", exact=False)
        note.wait_for(timeout=60_000)
        page.screenshot(path=str(tmp_path / "sib200.png"), full_page=True)
        # the theme follows the browser: a dark page background, not the forced light one
        background = page.evaluate("getComputedStyle(document.querySelector('.stApp')).backgroundColor")
        rgb = [int(x) for x in re.findall(r"\d+", background)[:3]]
        assert sum(rgb) < 3 * 80, background
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store(path, read_only=True) as s:
        assert s.embedded_count("clinc150_upload", "uploaded:clinc-vectors") == 200
        assert [c.name for c in s.list_corpora()] == ["clinc150_upload"]


def test_a_fresh_session_finds_uploaded_vectors_for_its_corpus(tmp_path, monkeypatch):
    """Vectors stored under a name of their own ("uploaded:...") are the corpus's vectors for
    a new session too: the Depth page ranks them instead of asking to embed."""
    from conftest import make_corpus
    from streamlit.testing.v1 import AppTest

    from analytics import import_vectors, tte_depth

    path = tmp_path / "uploaded.duckdb"
    X = clinc_vectors(40)
    with Store(path) as s:
        s.add_corpus("u", make_corpus([f"query {i}" for i in range(40)]))
        import_vectors(s, "u", X, "uploaded:clinc")
    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["corpus"] = "u"
    at.run()
    at.switch_page("views/depth.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [w.value for w in at.warning if "Embed this corpus" in w.value]
    table = at.dataframe[0].value
    depth = dict(zip(table["row"], table["depth"], strict=True))
    assert np.allclose([depth[i] for i in range(40)], tte_depth(X), atol=1e-5)
