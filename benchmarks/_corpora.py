"""Labelled real corpora for the statistics benchmarks, embedded once with the bundled model
(float32 on the CPU) and cached under /tmp/embex-bench/: AG News (the sample's shipped
vectors), CLINC150's test split labelled by domain, and SIB-200's English sentences by topic."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
CACHE = Path("/tmp/embex-bench")
sys.path.insert(0, str(ROOT))


def _embedded(name: str, texts: list[str]) -> np.ndarray:
    from analytics.embedding import embed_texts

    path = CACHE / f"{name}-{len(texts)}.npy"
    if path.exists():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    X = embed_texts(texts, device="cpu", precision="float32")
    np.save(path, X)
    return X


def ag_news() -> tuple[np.ndarray, np.ndarray]:
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        labels = np.array([r["label"] for r in csv.DictReader(f)])
    return np.load(ROOT / "sample_data" / "ag_news.vectors.npy"), labels


def clinc_domains() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
    domain_of = {intent: d for d, intents in domains.items() for intent in intents}
    rows = [(t, domain_of[i]) for t, i in data["test"]]
    return _embedded("clinc-test", [t for t, _ in rows]), np.array([d for _, d in rows])


def clinc_oos() -> tuple[np.ndarray, np.ndarray]:
    """CLINC150's test split with its out-of-scope queries (label "oos")."""
    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    rows = data["test"] + data["oos_test"]
    return _embedded("clinc-test-oos", [t for t, _ in rows]), np.array([i for _, i in rows])


def sib200_english() -> tuple[np.ndarray, np.ndarray]:
    rows = []
    for split in ("train", "dev", "test"):
        with open(DATA / "sib200" / "eng_Latn" / f"{split}.tsv", newline="", encoding="utf-8") as f:
            rows += [(r["text"], r["category"]) for r in csv.DictReader(f, delimiter="\t")]
    return _embedded("sib200-eng", [t for t, _ in rows]), np.array([c for _, c in rows])


CORPORA = {"AG News": ag_news, "CLINC150 (domains)": clinc_domains, "SIB-200 (English)": sib200_english}
