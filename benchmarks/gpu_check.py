"""Check the library's CUDA paths against their CPU results, on a machine with a GPU.

    python3 benchmarks/gpu_check.py [--model .gpu/model]

Imports only what the GPU image has (torch, numpy, scipy, sentence-transformers): embedding
in float16 vs float32 (cosine), chord depth (torch vs numpy), exact search (torch vs numpy),
PCA (torch vs numpy). Prints one line per check with the largest difference; exits 1 on a
failure. The test suite runs none of this (CI has no GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument(
        "--device",
        default="cuda",
        help="cuda (the point of this script); cpu runs the same code paths here, so that CI "
        "notices when they change under it",
    )
    ap.add_argument("--texts", type=int, default=3000)
    args = ap.parse_args()
    import torch

    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    print("device:", torch.cuda.get_device_name() if dev == "cuda" else dev)
    from analytics.depth import tte_depth
    from analytics.embedding import Embedder, load_model
    from analytics.projection import _pca
    from analytics.retrieval import ExactIndex

    failures = 0

    def check(name, ok, detail):
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    import csv

    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)][: args.texts]
    texts += ["", " ", "x" * 50_000, "emoji 🙂 and accents: café", "<script>alert(1)</script>"]
    # on the CPU the automatic precision may be bfloat16, which is not what this checks
    gpu = Embedder(args.model, device=dev, **({} if dev == "cuda" else {"precision": "float32"}))
    ref = load_model(args.model, device=dev)
    V = gpu.encode(texts)
    R = ref.encode(texts, batch_size=256, normalize_embeddings=True, convert_to_numpy=True)
    cos = np.sum(V * R, axis=1)
    check(
        f"embedding {gpu.precision} on {dev} vs float32 encode",
        cos.min() >= 0.9999,
        f"min cosine {cos.min():.6f}, key {gpu.model_id}, truncated {gpu.last_truncated}",
    )
    f32 = Embedder(args.model, device=dev, precision="float32")
    V32 = f32.encode(texts)
    check(
        f"embedding float32 on {dev} vs encode",
        np.abs(V32 - R).max() < 1e-4,
        f"max |diff| {np.abs(V32 - R).max():.1e}",
    )

    X = R[:2000].astype(np.float32)
    d_gpu = tte_depth(X, distance="chord", device=dev)
    d_cpu = tte_depth(X, distance="chord", device="cpu")
    check(
        f"chord depth torch/{dev} vs numpy",
        np.abs(d_gpu - d_cpu).max() < 1e-6,
        f"max |diff| {np.abs(d_gpu - d_cpu).max():.1e}",
    )
    idx_gpu, idx_cpu = ExactIndex(X, device=dev), ExactIndex(X, device="cpu")
    a, b = idx_gpu.search(X[:50], 10), idx_cpu.search(X[:50], 10)
    check(
        f"exact search {dev} vs numpy",
        np.abs(a.scores - b.scores).max() < 1e-5,
        f"ids equal {np.mean(a.ids == b.ids):.3f}, max |score diff| {np.abs(a.scores - b.scores).max():.1e}",
    )
    fit, norms = np.arange(len(X)), np.linalg.norm(X, axis=1)
    p_gpu, p_cpu = _pca(X, norms, fit, dev), _pca(X, norms, fit, None)
    sign = np.sign(np.sum(p_gpu * p_cpu, axis=0))
    check(
        f"PCA torch/{dev} vs numpy (up to sign)",
        np.abs(p_gpu * sign - p_cpu).max() < 1e-3,
        f"max |diff| {np.abs(p_gpu * sign - p_cpu).max():.1e}",
    )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
