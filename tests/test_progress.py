"""UMAP's progress as a map job reports it (analytics/projection.py: _UmapLog): the stages of
its own verbose account (nearest neighbours by NN-descent round, the neighbour graph, the
spectral start) and its layout epochs, so the bar moves through the whole wait.

Fast: a transcript of umap-learn's and pynndescent's lines, cut into writes at arbitrary places
(numba prints each argument separately), always gives the same stages, in order, never
backwards. Slow: a real UMAP of 4,200 points (NN-descent, as every corpus of 4,096 texts or
more) reports each stage, and the note about compiling only until that step has run once.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from analytics import projection
from analytics.projection import _UmapLog

# what umap-learn 0.5 (verbose=True) and pynndescent print for a 7,600-row fit, in order; the
# layout's epochs come through the tqdm bar instead ("n/total" lines)
TRANSCRIPT = (
    "UMAP(angular_rp_forest=True, metric='cosine', n_jobs=1, random_state=0, verbose=True)\n"
    "Thu Nov 26 16:47:46 2026 Construct fuzzy simplicial set\n"
    "Thu Nov 26 16:47:46 2026 Finding Nearest Neighbors\n"
    "Thu Nov 26 16:47:46 2026 Building RP forest with 9 trees\n"
    "Thu Nov 26 16:47:46 2026 NN descent for 13 iterations\n"
    + "".join(f"\t {k}  /  13\n" for k in range(1, 6))
    + "\tStopping threshold met -- exiting after 5 iterations\n"
    "Thu Nov 26 16:48:45 2026 Finished Nearest Neighbor Search\n"
    "Thu Nov 26 16:48:52 2026 Construct embedding\n"
    "\tcompleted  0  /  500 epochs\n"
    "\tcompleted  50  /  500 epochs\n"
)
EPOCHS = "".join(f"{n}/500\n" for n in (0, 1, 120, 250, 499, 500))


def _feed(chunks_out: list[int], epochs_at: list[int], compiled: bool):
    seen = []
    projection._compiled.discard("nn-descent")
    if compiled:
        projection._compiled.add("nn-descent")
    log = _UmapLog(lambda stage, f: seen.append((stage, f)), 7600, end=0.98)
    cuts = sorted({min(c, len(TRANSCRIPT)) for c in chunks_out} | {0, len(TRANSCRIPT)})
    for a, b in zip(cuts, cuts[1:], strict=False):
        log.write(TRANSCRIPT[a:b])
    bar = log.tqdm_kwds()["file"]
    cuts = sorted({min(c, len(EPOCHS)) for c in epochs_at} | {0, len(EPOCHS)})
    for a, b in zip(cuts, cuts[1:], strict=False):
        bar.write(EPOCHS[a:b])
    return seen


@settings(max_examples=60, deadline=None)
@given(hs.lists(hs.integers(0, 2000), max_size=40), hs.lists(hs.integers(0, 60), max_size=10))
def test_umaps_lines_become_stages_however_they_are_cut(cuts, epoch_cuts):
    whole = _feed([], [], compiled=True)
    assert _feed(cuts, epoch_cuts, compiled=True) == whole
    stages = [s for s, _ in whole]
    assert stages[:4] == [
        "finding each text's nearest neighbours among 7,600",
        "nearest neighbours: 9 random-projection trees",
        "nearest neighbours: NN-descent",
        "nearest neighbours: NN-descent round 1 of at most 13",
    ]
    assert stages[7:10] == [
        "nearest neighbours: NN-descent round 5 of at most 13",
        "building the neighbour graph",
        "laying out: spectral start",
    ]
    assert stages[10:] == [f"UMAP epoch {n} of 500" for n in (0, 1, 120, 250, 499, 500)]
    fractions = [f for _, f in whole]
    assert fractions == sorted(fractions) and fractions[0] > 0 and fractions[-1] == pytest.approx(0.98)
    assert fractions[stages.index("laying out: spectral start")] == pytest.approx(0.25)


def test_the_first_nn_descent_in_a_process_says_it_compiles_first():
    stages = [s for s, _ in _feed([], [], compiled=False)]
    assert (
        "nearest neighbours: NN-descent (the first large UMAP in this process compiles this step" in stages[2]
    )
    assert all("compiles" not in s for s in stages[3:])


def test_what_the_progress_callback_prints_is_not_taken_for_umaps_lines(capsys):
    import contextlib

    seen = []

    def report(stage, f):
        print(f"\t 3  /  3 {stage}")  # looks like a round of NN-descent; goes to the real stdout
        seen.append(stage)

    log = _UmapLog(report, 10)
    with contextlib.redirect_stdout(log):
        print("Thu Nov 26 16:47:46 2026 Construct embedding")
    assert seen == ["laying out: spectral start"]
    assert "\t 3  /  3 laying out: spectral start" in capsys.readouterr().out


@pytest.mark.slow
def test_a_real_nn_descent_umap_reports_every_stage_in_order():
    X = np.random.default_rng(3).normal(size=(4200, 16)).astype(np.float32)
    projection._compiled.discard("nn-descent")  # as in a fresh worker process
    runs = []
    for _ in range(2):
        seen = []
        projection.project(X, "umap", n_neighbors=10, progress=lambda s, f: seen.append((s, f)))
        runs.append(seen)
    for i, seen in enumerate(runs):
        stages = [s for s, _ in seen]
        fractions = [f for _, f in seen]
        assert stages[0] == "fitting UMAP on 4,200 texts" and stages[-1] == "done"
        assert any(s.startswith("nearest neighbours: NN-descent round 1 of at most") for s in stages)
        for stage in ("building the neighbour graph", "laying out: spectral start", "UMAP epoch 500 of 500"):
            assert stage in stages
        assert fractions == sorted(fractions) and fractions[-1] == 1.0
        assert len({round(f, 2) for f in fractions}) > 20  # the bar moves through the wait
        compiles = any("compiles this step" in s for s in stages)
        assert compiles == (i == 0)  # noted only until NN-descent has run in this process
    assert "nn-descent" in projection._compiled


@pytest.mark.slow
def test_a_sampled_umap_reports_the_fit_then_the_placing_of_the_rest():
    X = np.random.default_rng(4).normal(size=(900, 8)).astype(np.float32)
    seen = []
    projection.project(
        X, "umap", sample_threshold=600, sample_size=500, progress=lambda s, f: seen.append((s, f))
    )
    stages = [s for s, _ in seen]
    fit_end = stages.index("UMAP epoch 500 of 500")
    placing = stages.index("placing the other 400 texts on the map")
    assert stages[0] == "fitting UMAP on 500 texts" and fit_end < placing
    last = stages[-2].removeprefix("placing the other 400 texts: epoch ").split(" of ")
    assert len(last) == 2 and last[0] == last[1] and stages[-1] == "done"  # its last epoch
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    assert fractions[fit_end] == pytest.approx(0.85) and fractions[-2] == pytest.approx(0.98)
