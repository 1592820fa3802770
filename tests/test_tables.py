"""analytics.tables: depth tables name the corpus's rows, also for a selection of them."""

from __future__ import annotations

import csv
import io

import numpy as np

from analytics.tables import depth_csv, depth_rows


def test_depth_rows_of_a_selection_name_the_corpus_rows():
    texts, meta = ["a", "b", "c"], [{"k": 1}, {"k": 2}, {}]
    d = np.array([0.2, 0.5, 0.1])
    rows = depth_rows(texts, meta, d, row_ids=np.array([10, 40, 7]))
    assert [(r["rank"], r["row"], r["text"]) for r in rows] == [(1, 40, "b"), (2, 10, "a"), (3, 7, "c")]
    assert [r["row"] for r in depth_rows(texts, meta, d)] == [1, 0, 2]
    table = list(csv.DictReader(io.StringIO(depth_csv(texts, meta, d, row_ids=[10, 40, 7]).decode())))
    assert [r["row"] for r in table] == ["40", "10", "7"] and table[0]["k"] == "2" and table[2]["k"] == ""
