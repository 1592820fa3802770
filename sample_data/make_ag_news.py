"""Rebuild ``ag_news.csv`` from the AG News test split (run from the repo root).

    python sample_data/make_ag_news.py ../shared/data/ag_news
    python sample_data/make_ag_news.py --vectors     # ag_news.vectors.npy, with the bundled model
    python sample_data/make_ag_news.py --map         # ag_news.map.npz, the default map of those

The raw file has no header, HTML entities written without their ``&`` (``#39;``), and a
backslash where the original had a line break. We decode the entities, turn those
backslashes back into spaces, join title and description, and name the class.
"""

from __future__ import annotations

import csv
import html
import re
import sys
from pathlib import Path

LABELS = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}


def clean(text: str) -> str:
    text = re.sub(r"(?<!&)#(\d+);", r"&#\1;", text)  # '#39;' -> '&#39;'
    text = html.unescape(text)
    text = text.replace("\\$", "$").replace("\\", " ")
    return re.sub(r"\s+", " ", text).strip()


def convert(src: Path, dst: Path) -> int:
    with (
        open(src, newline="", encoding="utf-8") as f_in,
        open(dst, "w", newline="", encoding="utf-8") as f_out,
    ):
        writer = csv.writer(f_out)
        writer.writerow(["text", "label"])
        n = 0
        for label, title, description in csv.reader(f_in):
            title, description = clean(title), clean(description)
            sep = " " if title.endswith((".", "?", "!")) else ". "
            writer.writerow([f"{title}{sep}{description}", LABELS[label]])
            n += 1
    return n


def write_vectors(csv_path: Path, out: Path) -> None:
    """The sample's embeddings from the bundled all-MiniLM-L6-v2 (float32, unit rows, row
    order of the CSV), so a first start shows the map without waiting for the model."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analytics.embedding import Embedder

    with open(csv_path, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    np.save(out, Embedder(device="cpu").encode(texts))
    print(f"wrote {len(texts)} vectors to {out}")


def write_map() -> None:
    """The sample's default map (analytics.sample.write_sample_map: the Map page's own code),
    so a first start opens the map on a cache hit instead of a first UMAP."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from analytics.sample import SAMPLE_MAP, write_sample_map

    meta = write_sample_map()
    print(
        f"wrote the {meta['method'].upper()} map of {meta['n']} texts to {SAMPLE_MAP} ({meta['seconds']} s)"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--map"]:
        write_map()
        raise SystemExit
    if sys.argv[1:] == ["--vectors"]:
        here = Path(__file__).resolve().parent
        write_vectors(here / "ag_news.csv", here / "ag_news.vectors.npy")
        raise SystemExit
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ag_news")
    out = Path(__file__).with_name("ag_news.csv")
    print(f"wrote {convert(source / 'test.csv', out)} rows to {out}")
