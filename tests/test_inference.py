"""The fast encoder: same vectors as sentence-transformers, token-budget batches, precision in
the cache key, clear errors for bad models and missing backends. Real model, real texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.embedding import (
    DEFAULT_MODEL,
    Embedder,
    ModelError,
    embed_corpus,
    embedding_key,
    load_model,
    model_source,
    stored_model_id,
)
from analytics.inference import (
    FastEncoder,
    cpu_has_bf16,
    provenance_tag,
    resolve_precision,
)

ODD = [
    "",
    " ",
    "  leading and trailing  ",
    "emoji 🙂 and accents: café",
    "<script>x</script>",
    "x" * 30_000,
    " ".join(["statistics"] * 400),
    "日本語のテキスト",
    "a\nb\tc",
]


@pytest.fixture(scope="module")
def texts(sample_rows):
    return [r["text"] for r in sample_rows[:300]] + ODD


@pytest.fixture(scope="module")
def reference(texts):
    """Plain sentence-transformers encode in float32: the peer our vectors must equal."""
    model = load_model(None, device="cpu")
    return model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)


def test_float32_equals_plain_encode(embedder, texts, reference):
    V = embedder.encode(texts)
    assert V.dtype == np.float32 and V.shape == reference.shape
    np.testing.assert_allclose(V, reference, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), 1.0, atol=1e-6)
    # the two over-long texts are truncated (one by characters before tokenizing)
    assert embedder.last_truncated == 2


def test_bfloat16_agrees_with_float32_to_cosine_0_9999(texts, reference):
    bf16 = Embedder(device="cpu", precision="bfloat16")
    assert bf16.precision == "bfloat16" and bf16.model_id == DEFAULT_MODEL + "#bf16"
    V = bf16.encode(texts)
    cos = np.sum(V * reference, axis=1)
    assert cos.min() >= 0.9999, cos.min()


def test_tokenizer_processes_give_the_same_ids_as_threads(embedder, texts):
    other = Embedder(embedder.model, model_id="m", precision="float32", batch_size=embedder.batch_size)
    other.engine.processes = 2  # tokenization in two worker processes, as on a GPU machine
    np.testing.assert_array_equal(other.encode(texts), embedder.encode(texts))
    assert other.last_truncated == embedder.last_truncated


def test_encode_of_nothing_and_of_one(embedder):
    assert embedder.encode([]).shape == (0, 384)
    assert embedder.encode(["one"]).shape == (1, 384)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=400),
    budget=st.integers(1, 5000),
    max_batch=st.integers(1, 64),
)
def test_batches_cover_each_row_once_within_the_token_budget(lengths, budget, max_batch):
    enc = FastEncoder.__new__(FastEncoder)
    enc.token_budget, enc.max_batch = budget, max_batch
    lengths = np.asarray(lengths)
    seen = []
    for rows, longest in enc._batches(lengths):
        assert 1 <= len(rows) <= max_batch
        assert longest == lengths[rows].max()
        assert len(rows) == 1 or len(rows) * longest <= budget
        seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(lengths)))
    ordered = lengths[seen]
    assert (np.diff(ordered) <= 0).all()  # longest first: little padding


def test_precision_rules():
    assert resolve_precision("auto", "cuda") == "float16"
    assert resolve_precision("auto", "cpu") == ("bfloat16" if cpu_has_bf16() else "float32")
    assert resolve_precision("float32", "cuda") == "float32"
    with pytest.raises(ValueError, match="float16 is not supported on the CPU"):
        resolve_precision("float16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int4", "cpu")
    assert provenance_tag("float32") == "" and provenance_tag("float16") == "#fp16"
    assert provenance_tag("float32", "onnx") == "#onnx-fp32"
    assert model_source(DEFAULT_MODEL) == (None, "float32", "torch")
    assert model_source(DEFAULT_MODEL + "#bf16") == (None, "bfloat16", "torch")
    assert model_source("path:/m/x#fp16") == ("/m/x", "float16", "torch")
    assert model_source("org/m#onnx-fp32") == ("org/m", "float32", "onnx")


def test_precisions_are_kept_apart_in_the_store(store, embedder, sample_rows):
    docs = [r["text"] for r in sample_rows[:40]]
    store.add_corpus("news", make_corpus(docs))
    assert stored_model_id(store, "news") is None
    embed_corpus(store, "news", embedder)  # float32: the reference key
    assert stored_model_id(store, "news") == DEFAULT_MODEL
    assert stored_model_id(store, "news", precision="bfloat16") is None
    bf16 = Embedder(device="cpu", precision="bfloat16")
    report = embed_corpus(store, "news", bf16)
    assert report.model_id == DEFAULT_MODEL + "#bf16" and report.n_computed == 40
    assert set(store.model_ids()) == {DEFAULT_MODEL, DEFAULT_MODEL + "#bf16"}
    assert stored_model_id(store, "news", precision="bfloat16") == DEFAULT_MODEL + "#bf16"
    a, b = store.vectors("news", DEFAULT_MODEL), store.vectors("news", DEFAULT_MODEL + "#bf16")
    assert not np.array_equal(a, b) and np.sum(a * b, axis=1).min() >= 0.9999
    # what this machine would embed in comes first when it covers the corpus
    assert stored_model_id(store, "news") == embedding_key(None, device="auto")


def test_the_embed_cli_records_precision(tmp_path, sample_rows):
    import subprocess
    import sys

    from conftest import ROOT

    from analytics.store import Store

    path = tmp_path / "cli.duckdb"
    with Store(path) as s:
        s.add_corpus("news", make_corpus([r["text"] for r in sample_rows[:20]]))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "analytics.cli",
            "--store",
            str(path),
            "--json",
            "embed",
            "news",
            "--device",
            "cpu",
            "--precision",
            "float32",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(out.stdout)["model_id"] == DEFAULT_MODEL
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "analytics.cli",
            "--store",
            str(path),
            "embed",
            "news",
            "--device",
            "cpu",
            "--precision",
            "float16",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode != 0 and "float16 is not supported on the CPU" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    "make_bad, message",
    [
        (lambda p: p / "absent", "Could not load model"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "Could not load model"),
        (
            lambda p: (p / "file.bin").write_bytes(b"\x00not a model") and p / "file.bin",
            "Could not load model",
        ),
        (
            lambda p: (
                ((p / "garbled").mkdir(), (p / "garbled" / "config.json").write_text("{not json"))
                and p / "garbled"
            ),
            "Could not load model",
        ),
        (
            lambda p: (
                (
                    (p / "noweights").mkdir(),
                    (p / "noweights" / "config.json").write_text(json.dumps({"model_type": "bert"})),
                )
                and p / "noweights"
            ),
            "Could not load model",
        ),
    ],
)
def test_each_bad_model_path_is_a_clear_error(tmp_path, make_bad, message):
    with pytest.raises(ModelError, match=message) as info:
        Embedder(str(make_bad(tmp_path)), device="cpu")
    assert "Nothing is downloaded at run time" in str(info.value)


def test_a_model_that_is_not_a_name_or_path_is_refused():
    with pytest.raises(ModelError, match="not a int"):
        load_model(42)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_a_backend_that_is_not_installed_says_what_to_install(backend):
    import importlib.util

    if importlib.util.find_spec("optimum") is not None:
        pytest.skip("optimum is installed here")
    with pytest.raises(ModelError, match=rf"The '{backend}' backend needs .*pip install"):
        Embedder(device="cpu", backend=backend, precision="float32")


def test_an_unknown_backend_or_batch_size_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        Embedder(device="cpu", backend="tensorrt")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        Embedder(device="cpu", batch_size=0)
