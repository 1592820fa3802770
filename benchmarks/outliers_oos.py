"""Do the outlier rankings find CLINC150's out-of-scope queries?

    .venv/bin/python benchmarks/outliers_oos.py [--cache-dir benchmarks/.cache] [--k 5 10 20]

CLINC150 (Larson et al., EMNLP 2019; ../shared/data/clinc150/data_full.json): every split, 22,500
in-scope queries of 150 intents and 1,200 out-of-scope ("oos") ones, 23,700 texts in all,
embedded with the bundled model (float32, CPU; the vectors are cached in --cache-dir, keyed by
the texts and the model's weights, so a rerun skips the model). Each ranking of
``find_outliers`` scores every text; the oos queries are the known outliers. Reports the AUROC
(the chance that a random oos query ranks more outlying than a random in-scope one) and the
share of oos in the lowest 5% (precision: among the 1,185 texts ``find_outliers`` flags at its
default ``quantile=0.05``, as the Outliers page does; oos are 5.1% of the corpus, so 1.0 would
be all of them). Each ranking is named as the page names it. Prints a markdown table for
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine, timed  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from analytics.embedding import default_model_path, embed_texts  # noqa: E402
from analytics.outliers import find_outliers  # noqa: E402
from analytics.params import RULES  # noqa: E402

CLINC = ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json"
SPLITS = ("train", "val", "test", "oos_train", "oos_val", "oos_test")


def clinc150() -> tuple[list[str], np.ndarray]:
    """Every query of every split, and whether it is out of scope."""
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    rows = [row for split in SPLITS for row in data[split]]
    return [text for text, _ in rows], np.array([intent == "oos" for _, intent in rows])


def cached_vectors(texts: list[str], cache_dir: Path) -> np.ndarray:
    """The bundled model's float32 vectors of ``texts``, from ``cache_dir`` when there."""
    weights = default_model_path() / "model.safetensors"
    key = hashlib.sha256("\x1f".join([str(weights.stat().st_size), "fp32", *texts]).encode()).hexdigest()
    path = cache_dir / f"clinc150-{key[:16]}.npy"
    if path.exists():
        return np.load(path)
    seconds, X = timed(lambda: embed_texts(texts, device="cpu", precision="float32"))
    print(f"embedded {len(texts):,} texts in {seconds:.0f} s; cached in {path}", file=sys.stderr)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, X)
    return X


def evaluate(X: np.ndarray, oos: np.ndarray, *, by: str, k: int) -> dict:
    """AUROC and the share of oos in the lowest 5% (precision) of one ranking, and its time."""
    seconds, report = timed(lambda: find_outliers(X, quantile=0.05, k=k, by=by))
    return {
        "auroc": roc_auc_score(oos, -report.scores),  # low score = outlying
        "precision": oos[report.flagged].mean(),
        "flagged": len(report.flagged),
        "seconds": seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache-dir", type=Path, default=HERE / ".cache")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10, 20], help="neighbours for local depth")
    args = ap.parse_args()
    texts, oos = clinc150()
    X = cached_vectors(texts, args.cache_dir)
    default_by, default_k = RULES["outliers"]["by"].default, RULES["outliers"]["k"].default
    print(f"machine: {machine()}")
    print(f"CLINC150: {len(texts):,} queries, {oos.sum():,} out of scope ({oos.mean():.1%})\n")

    # named as the Outliers page names them (dashboard/views/outliers.py), with the library's `by`
    rows = [("depth (`global`)", "global", default_k)]
    rows += [(f"k-NN isolation (`local`), k = {k}", "local", k) for k in args.k]
    rows += [(f"both: mean of the two percentiles (`combined`), k = {k}", "combined", k) for k in args.k]
    print("| ranking | AUROC | oos share of the lowest 5% | time (s) |")
    print("|---|---:|---:|---:|")
    for label, by, k in rows:
        r = evaluate(X, oos, by=by, k=k)
        mark = " **(default)**" if (by, k) == (default_by, default_k) else ""
        print(f"| {label}{mark} | {r['auroc']:.3f} | {r['precision']:.3f} | {r['seconds']:.1f} |")
    print(f"\nlowest 5% = the {r['flagged']:,} texts find_outliers flags at quantile=0.05")


if __name__ == "__main__":
    main()
