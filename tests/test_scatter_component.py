"""The WebGL map component (dashboard/scatter.py + the committed bundle).

Fast: the payload (top-20 categories, coordinates, binary packing), the answers to hover and
click requests, and the committed bundle. Slow: a real Streamlit server running a small app
that calls ``scatter_map``, driven by Debian's Chromium (headless, software GL through
SwiftShader): the canvas draws, hover shows the label and then the row's text and metadata, a
click reaches Python and shows the neighbours, a lasso and a box send back exactly the rows
inside them, and a million points render.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "dashboard"))

import scatter  # noqa: E402
from scatter import (  # noqa: E402
    MAX_CATEGORIES,
    answer,
    build_payload,
    encode_labels,
    normalize_xy,
    pack_payload,
    read_header,
    stub_payload,
    top_categories,
    unpack_payload,
)

from analytics.errors import ParameterError  # noqa: E402
from analytics.screenshot import serving  # noqa: E402

# ---------------------------------------------------------------- fast: the payload


@settings(max_examples=60, deadline=None)
@given(
    hs.integers(1, 40).flatmap(
        lambda k: hs.tuples(
            hs.just(k), hnp.arrays(np.int32, hs.integers(0, 400), elements=hs.integers(0, k - 1))
        )
    )
)
def test_top_categories_keeps_the_largest_and_folds_the_rest(case):
    k, codes = case
    cats = [f"c{i}" for i in range(k)]
    top = top_categories(codes, cats)
    counts = np.bincount(codes, minlength=k)
    assert len(top.labels) <= MAX_CATEGORIES and top.wire.dtype == np.uint8
    assert list(top.counts) == sorted(top.counts, reverse=True)
    assert sum(top.counts) + top.other == len(codes)
    kept = {int(label[1:]) for label in top.labels}
    folded = [c for c in range(k) if c not in kept]
    assert all(counts[c] > 0 for c in kept)
    if folded and kept:  # nothing folded is larger than anything kept
        assert counts[folded].max() <= min(top.counts)
    for i, c in enumerate(codes[:50]):
        w = top.wire[i]
        assert (w == MAX_CATEGORIES) if c not in kept else (top.labels[w] == cats[c])


def test_top_categories_breaks_ties_by_category_order_and_rejects_bad_codes():
    codes = np.repeat(np.arange(25), 3)  # 25 categories of 3 points each
    top = top_categories(codes, [f"c{i}" for i in range(25)])
    assert top.labels == tuple(f"c{i}" for i in range(20)) and top.other == 15
    with pytest.raises(ParameterError, match="must lie in"):
        top_categories(np.array([0, 3]), ["a", "b"])
    with pytest.raises(ParameterError, match="integers"):
        top_categories(np.array([0.5]), ["a"])


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        hs.tuples(hs.integers(1, 200), hs.just(2)),
        elements=hs.floats(-1e6, 1e6, allow_nan=False),
    ),
    hs.sampled_from([np.float64, np.float32]),
)
def test_normalize_xy_fits_one_square_and_inverts(xy, dtype):
    xy = xy.astype(dtype)
    ndc, center, scale = normalize_xy(xy)
    assert ndc.dtype == np.float32 and ndc.shape == xy.shape
    assert np.abs(ndc).max() <= 1.0
    back = ndc.astype(np.float64) * scale + np.array(center)
    assert np.allclose(back, xy, rtol=0, atol=scale * 1e-6 + 1e-9)
    span = xy.max(axis=0) - xy.min(axis=0)
    if span.max() > 0:  # the longer axis spans [-1, 1]; the same scale for both axes
        assert np.isclose(np.ptp(ndc[:, int(np.argmax(span))]), 2.0, atol=1e-5)


def test_normalize_xy_refuses_bad_coordinates():
    with pytest.raises(ParameterError, match="missing or infinite"):
        normalize_xy(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ParameterError, match=r"\(n, 2\)"):
        normalize_xy(np.zeros((3, 3)))
    with pytest.raises(ParameterError, match="empty"):
        normalize_xy(np.zeros((0, 2)))


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float32, hs.integers(0, 50), elements=hs.floats(-10, 10, width=32)),
    hnp.arrays(np.uint8, hs.integers(0, 50)),
    hnp.arrays(np.uint32, hs.integers(0, 50)),
    hs.text(max_size=20),
)
def test_pack_payload_round_trips_with_aligned_buffers(f, u, i, title):
    data = pack_payload({"title": title}, {"f": f, "u": u, "i": i})
    header, buffers = unpack_payload(data)
    assert header["title"] == title
    assert np.array_equal(buffers["f"], f) and np.array_equal(buffers["u"], u)
    assert np.array_equal(buffers["i"], i)
    length = int.from_bytes(data[4:8], "little")
    assert (8 + length) % 8 == 0  # the buffers start 8-byte aligned, as typed arrays need
    assert all(offset % 8 == 0 for offset, _, _ in header["buffers"].values())
    # the version names the content: same data, same version; other data, another version
    assert (
        unpack_payload(pack_payload({"title": title}, {"f": f, "u": u, "i": i}))[0]["version"]
        == header["version"]
    )
    changed = pack_payload({"title": title}, {"f": f, "u": u, "i": np.append(i, 7).astype(np.uint32)})
    assert unpack_payload(changed)[0]["version"] != header["version"]


def test_build_payload_sends_binary_columns_legend_and_colour_bar():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(500, 2))
    labels = ["a"] * 300 + ["b"] * 150 + [f"r{i}" for i in range(50)]  # 52 categories
    codes, cats = encode_labels(labels)
    header, buf = unpack_payload(build_payload(xy, codes=codes, categories=cats, highlight=[3, 3, 7]))
    assert header["n"] == 500 and header["mode"] == "category"
    assert buf["xy"].dtype == np.float32 and len(buf["xy"]) == 1000
    assert buf["codes"].dtype == np.uint8
    assert [e["label"] for e in header["legend"][:2]] == ["a", "b"]
    assert [e["count"] for e in header["legend"][:2]] == [300, 150]
    assert len(header["legend"]) == 20 and header["other"]["count"] == 500 - 450 - 18
    assert list(buf["highlight"]) == [3, 7] and header["highlight"] == {"count": 2, "name": "search hits"}
    values = rng.normal(size=500).astype(np.float32)
    values[:4] = np.nan
    header, buf = unpack_payload(build_payload(xy, values=values, value_name="depth"))
    assert header["mode"] == "value" and header["value"]["name"] == "depth"
    assert header["value"]["missing"] == 4
    assert header["value"]["min"] == pytest.approx(float(np.nanmin(values)))
    assert np.array_equal(buf["values"], values, equal_nan=True)


def test_build_payload_refuses_mismatched_inputs():
    xy = np.zeros((4, 2))
    with pytest.raises(ParameterError, match="categories"):
        build_payload(xy, codes=[0, 0, 0, 0])
    with pytest.raises(ParameterError, match="3 entries for 4"):
        build_payload(xy, codes=np.array([0, 0, 0]), categories=["a"])
    with pytest.raises(ParameterError, match="values has 2"):
        build_payload(xy, values=[1.0, 2.0])
    with pytest.raises(ParameterError, match="0..3"):
        build_payload(xy, highlight=[4])
    with pytest.raises(ParameterError, match="one entry per point"):
        build_payload(xy, highlight=np.array([True, False]))


def test_stub_stands_for_a_payload_in_a_few_hundred_bytes():
    payload = build_payload(np.random.default_rng(0).normal(size=(10_000, 2)), key="k")
    header = read_header(payload)
    stub = stub_payload({k: header[k] for k in ("format", "key", "n", "height", "version")})
    assert len(stub) < 300 < len(payload) // 100
    head, buffers = unpack_payload(stub)
    assert head["stub"] is True and head["version"] == header["version"] and buffers == {}
    assert (8 + int.from_bytes(stub[4:8], "little")) % 8 == 0


def test_encode_labels_codes_in_order_of_first_appearance():
    codes, cats = encode_labels(["x", "y", "x", None, 3])
    assert cats == ["x", "y", "", "3"] and list(codes) == [0, 1, 0, 2, 3]


# ---------------------------------------------------------------- fast: hover and click answers


def test_answer_gives_text_metadata_and_neighbours_without_the_row_itself():
    texts = [f"text {i}" for i in range(10)]

    def hover(row):
        return {"text": texts[row], "label": "L" * 500, "n": row}

    reply = answer({"kind": "hover", "row": 4, "seq": 9}, n=10, hover=hover)
    assert reply["row"] == 4 and reply["seq"] == 9 and reply["text"] == "text 4"
    assert reply["fields"][1] == ["n", "4"]
    assert len(reply["fields"][0][1]) == scatter.FIELD_CHARS and reply["fields"][0][1].endswith("…")
    assert "neighbors" not in reply
    reply = answer(
        {"kind": "click", "row": 2, "seq": 1}, n=10, hover=texts, neighbors=lambda r: [r, 5, (6, 0.5), 99]
    )
    assert reply["text"] == "text 2" and reply["fields"] == []
    assert reply["neighbors"] == [
        {"row": 5, "score": None, "text": "text 5"},
        {"row": 6, "score": 0.5, "text": "text 6"},
    ]


@pytest.mark.parametrize(
    "request_",
    [
        {"kind": "hover", "row": 10, "seq": 1},
        {"kind": "hover", "row": -1, "seq": 1},
        {"kind": "drop table", "row": 1, "seq": 1},
        {"kind": "hover", "row": "x", "seq": 1},
        {"row": 1},
    ],
)
def test_answer_ignores_requests_a_browser_should_not_send(request_):
    assert answer(request_, n=10, hover=[str(i) for i in range(10)]) is None


# ---------------------------------------------------------------- fast: the committed bundle


def test_bundle_is_committed_self_contained_and_not_ignored():
    build = ROOT / "dashboard" / "components" / "scatter" / "build"
    js = (build / "scatter.js").read_text(encoding="utf-8")
    channel = (build / "channel.js").read_text(encoding="utf-8")
    assert (build / "scatter.css").exists()
    assert "export{" in js.replace(" ", "") and "export{" in channel.replace(" ", "")
    assert "\n" in js.strip() and "\n" in channel.strip()  # Streamlit would take one line for a path
    for code in (js, channel):  # loads nothing at run time: no imports, fetches or remote assets
        assert "import(" not in code and "fetch(" not in code and "@import" not in code
        assert 'from"http' not in code.replace(" ", "") and "<script" not in code
    css = (build / "scatter.css").read_text(encoding="utf-8")
    assert "url(" not in css and "@import" not in css
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(build / "scatter.js")], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 1, "the built bundle must be committed, not ignored"


def test_map_key_may_not_hold_streamlits_delimiter():
    with pytest.raises(ParameterError, match="__"):
        scatter.scatter_map(np.zeros((2, 2)), key="a__b")


# ---------------------------------------------------------------- slow: server + Chromium

APP = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np
    import streamlit as st
    sys.path.insert(0, {dashboard!r})
    from scatter import scatter_map

    DIR = Path({dir!r})
    st.set_page_config(layout="wide")


    def map_page():
        name = st.query_params.get("data", "small")
        d = np.load(DIR / f"{{name}}.npz")
        xy = d["xy"]
        kw = {{}}
        if "codes" in d:
            kw.update(codes=d["codes"], categories=list(d["categories"]))
        if "values" in d:
            kw.update(values=d["values"], value_name="depth")
        if "highlight" in d:
            kw.update(highlight=d["highlight"])
        texts = [f"text number {{i}}" for i in range(len(xy))] if len(xy) < 100_000 else None

        def hover(row):
            return {{"text": texts[row] if texts else f"row {{row}}", "source": f"src-{{row % 3}}"}}

        def neighbors(row):
            dist = ((xy - xy[row]) ** 2).sum(axis=1)
            return [int(i) for i in np.argsort(dist, kind="stable")[:6] if i != row][:5]

        def on_click(row):
            with open(DIR / f"{{name}}-clicks.jsonl", "a") as f:
                f.write(json.dumps({{"row": row}}) + "\\n")

        event = scatter_map(xy, **kw, hover=hover, neighbors=neighbors, on_click=on_click,
                            title=f"map {{name}}", height=560, key="m")
        with open(DIR / f"{{name}}-runs.log", "a") as f:  # one line per page run (fragments excluded)
            f.write("run\\n")
        (DIR / f"{{name}}-event.json").write_text(json.dumps(
            {{"selection": list(event.selection), "mode": event.mode, "clicked": event.clicked}}))
        st.write(f"python saw {{len(event.selection)}} selected rows")


    def other_page():
        st.write("another page")


    st.navigation([st.Page(map_page, title="Map", default=True), st.Page(other_page, title="Other")]).run()
    """
)
# SwiftShader serves WebGL in headless Chromium with --disable-gpu (verified on Chromium 156);
# --enable-unsafe-swiftshader keeps it so where a newer Chromium stops falling back silently.
SWIFTSHADER = ["--enable-unsafe-swiftshader"]
HANDLE = "window.__embexScatter && window.__embexScatter.m"
BETA_PROBE, DELTA_PROBE = 570, 571  # the isolated points that _clusters adds


def _clusters(n_per=(300, 150, 80, 40), seed=0):
    """Well separated blobs (so a polygon can pass through empty space), labelled, plus one
    isolated point per blob for hover and click."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-6.0, -6.0], [6.0, -6.0], [-6.0, 6.0], [6.0, 6.0]])
    xy = np.concatenate([c + rng.normal(0, 1.0, size=(k, 2)) for c, k in zip(centres, n_per, strict=True)])
    codes = np.repeat(np.arange(len(n_per)), n_per).astype(np.int32)
    probes = np.array([[0.0, 0.0], [0.0, 9.5]])
    return np.concatenate([xy, probes]), np.concatenate([codes, [1, 3]]).astype(np.int32)


def _inside(points, poly):
    """Even-odd ray casting, the rule the lasso uses."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), dtype=bool)
    j = len(poly) - 1
    for i in range(len(poly)):
        (xi, yi), (xj, yj) = poly[i], poly[j]
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= crosses & (x < xcross)
        j = i
    return inside


def _edge_distance(points, poly):
    d = np.full(len(points), np.inf)
    for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        ab = b - a
        t = np.clip(((points - a) @ ab) / (ab @ ab), 0, 1)
        d = np.minimum(d, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return d


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """A real Streamlit server running the test app, on a free localhost port."""
    from conftest import free_port

    d = tmp_path_factory.mktemp("scatter")
    xy, codes = _clusters()
    labels = np.array(["alpha", "beta", "<img src=x onerror=alert(1)>", "delta"])
    np.savez(d / "small.npz", xy=xy, codes=codes, categories=labels)
    depth = np.linalg.norm(xy, axis=1).astype(np.float32)
    np.savez(d / "values.npz", xy=xy, values=depth, highlight=np.arange(0, len(xy), 10))
    rng = np.random.default_rng(1)
    big = rng.normal(size=(1_000_000, 2)).astype(np.float32)
    np.savez(d / "million.npz", xy=big, codes=(np.abs(big[:, 0] * 8).astype(np.int32) % 30),
             categories=np.array([f"k{i}" for i in range(30)]))  # fmt: skip
    (d / "app.py").write_text(APP.format(dashboard=str(ROOT / "dashboard"), dir=str(d)))
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(d / "app.py"), "--server.port", str(port)]
    cmd += [
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy()
    )
    url = f"http://127.0.0.1:{port}"
    if not serving(url, proc, timeout=60):
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read().decode(errors='replace')[-2000:]}")
    try:
        yield url, d, {"xy": xy, "codes": codes, "labels": labels}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def gl_browser():
    from playwright.sync_api import sync_playwright

    from analytics.screenshot import CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS + SWIFTSHADER
        )
        yield b
        b.close()


def _open(browser, url, data, *, timeout=120_000):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/?data={data}")
    page.wait_for_function(f"() => {HANDLE} && {HANDLE}.drawn() > 0", timeout=timeout)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]')"
        ".getAttribute('data-test-script-state') === 'notRunning'"
    )
    return page, errors


def _event(d, name):
    path = d / f"{name}-event.json"
    return json.loads(path.read_text()) if path.exists() else None


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


@pytest.mark.slow
def test_map_draws_every_point_in_its_category_colour(app_server, gl_browser):
    url, d, data = app_server
    page, errors = _open(gl_browser, url, "small")
    assert page.evaluate(f"() => {HANDLE}.drawn()") == len(data["xy"])
    # the legend: the four labels with their counts, the hostile one as plain text
    legend = page.locator(".exs-legend-item").all_inner_texts()
    assert [" ".join(t.split()) for t in legend] == [
        "alpha 300",
        "beta 151",
        "<img src=x onerror=alert(1)> 80",
        "delta 41",
    ]
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    # the canvas drew: the isolated probe point (DELTA_PROBE, "delta") is drawn in delta's colour
    x, y, rgba = page.evaluate(
        f"""() => {{
            const h = {HANDLE}; const c = h.view.canvas; const r = c.getBoundingClientRect();
            const [x, y] = h.rowToClient({DELTA_PROBE}); const s = c.width / r.width;
            const px = c.getContext('2d').getImageData(Math.round((x - r.left) * s), Math.round((y - r.top) * s), 1, 1);
            return [x, y, Array.from(px.data)];
        }}"""
    )
    delta = scatter.PALETTE[3]
    want = [int(delta[i : i + 2], 16) for i in (1, 3, 5)]
    assert rgba[3] > 200 and max(abs(a - b) for a, b in zip(rgba[:3], want, strict=True)) < 40, rgba
    painted = page.evaluate(
        f"""() => {{ const c = {HANDLE}.view.canvas;
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let k = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) k++; return k; }}"""
    )
    assert painted > 2000
    assert not errors
    page.close()


@pytest.mark.slow
def test_hover_shows_label_then_text_and_metadata_from_python(app_server, gl_browser):
    url, d, data = app_server
    page, errors = _open(gl_browser, url, "small")
    runs = (d / "small-runs.log").read_text().count("run")
    x, y = page.evaluate(f"() => {HANDLE}.rowToClient({BETA_PROBE})")  # the isolated "beta" probe
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=4)
    tip = page.locator(".exs-tooltip")
    tip.wait_for(state="visible", timeout=10_000)
    assert "beta" in page.locator(".exs-tip-head").inner_text()
    page.wait_for_function(f"() => {HANDLE}.view.tooltip.dataset.loaded === '{BETA_PROBE}'", timeout=15_000)
    text = tip.inner_text()
    assert f"text number {BETA_PROBE}" in text and "source" in text and f"src-{BETA_PROBE % 3}" in text
    # only the channel's fragment ran for it, not the page
    assert (d / "small-runs.log").read_text().count("run") == runs
    assert not errors
    page.close()


@pytest.mark.slow
def test_click_reaches_python_and_shows_nearest_neighbours(app_server, gl_browser):
    url, d, data = app_server
    (d / "small-clicks.jsonl").unlink(missing_ok=True)
    page, errors = _open(gl_browser, url, "small")
    runs = (d / "small-runs.log").read_text().count("run")
    row = DELTA_PROBE
    x, y = page.evaluate(f"() => {HANDLE}.rowToClient({row})")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    clicks = _wait_for(lambda: (d / "small-clicks.jsonl").exists() and (d / "small-clicks.jsonl").read_text())
    assert [json.loads(line)["row"] for line in clicks.splitlines()] == [row]
    page.wait_for_function(f"() => {HANDLE}.view.panel.dataset.row === '{row}'", timeout=15_000)
    xy = data["xy"]
    dist = ((xy - xy[row]) ** 2).sum(axis=1)
    expected = [int(i) for i in np.argsort(dist, kind="stable")[:6] if i != row][:5]
    shown = page.locator(".exs-neighbour").evaluate_all("els => els.map(e => Number(e.dataset.row))")
    assert shown == expected
    assert f"text number {expected[0]}" in page.locator(".exs-panel").inner_text()
    assert (d / "small-runs.log").read_text().count("run") == runs  # no page rerun for a click
    assert not errors
    page.close()


def _drag_polygon(page, vertices, *, shift):
    """Press at the first vertex and move through the others back to it, resting at each one
    (the lasso records a point at most every few milliseconds)."""
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(*vertices[0])
    page.mouse.down()
    for v in [*vertices[1:], vertices[0]]:
        page.mouse.move(*v, steps=6)
        page.wait_for_timeout(40)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


@pytest.mark.slow
def test_lasso_and_box_send_back_exactly_the_rows_inside(app_server, gl_browser):
    url, d, data = app_server
    xy = data["xy"]
    page, errors = _open(gl_browser, url, "small")
    # a pentagon around the "alpha" blob, its edges in empty space
    (lx, ly), (hx, hy) = xy.min(axis=0) - 0.3, xy.max(axis=0) + 0.3  # inside the drawn margin
    poly = np.array([[lx, ly], [-1.0, ly], [-1.0, -1.0], [-5.0, 1.0], [lx, 0.5]])
    to_client = f"(p) => p.map(([x, y]) => {HANDLE}.dataToClient(x, y))"
    vertices = page.evaluate(to_client, poly.tolist())
    px_per_unit = abs(vertices[1][0] - vertices[0][0]) / abs(poly[1, 0] - poly[0, 0])
    assert _edge_distance(xy, poly).min() * px_per_unit > 2, "test data too close to the lasso"
    _drag_polygon(page, vertices, shift=True)
    want = sorted(np.flatnonzero(_inside(xy, poly)).tolist())
    assert len(want) > 250
    got = _wait_for(lambda: (_event(d, "small") or {}).get("selection") or None)
    assert got == want
    assert _event(d, "small")["mode"] == "lasso"
    page.get_by_text(f"python saw {len(want)} selected rows").wait_for(timeout=10_000)
    # that rerun sent a stub, not the points again, and the map kept what it had drawn
    assert page.evaluate(f"() => Number({HANDLE}.view.root.dataset.stubs || 0)") >= 1
    # box mode from the toolbar: a rectangle around the "delta" blob
    page.locator(".exs-button", has_text="Box").click()
    box = np.array([[1.0, 1.0], [hx, 1.0], [hx, hy], [1.0, hy]])
    (x0, y0), _, (x1, y1), _ = page.evaluate(to_client, box.tolist())
    assert _edge_distance(xy, box).min() * px_per_unit > 2
    page.mouse.move(x0 - 6, y0 + 6)  # the box starts where the first move is recorded
    page.mouse.down()
    page.mouse.move(x0, y0)
    page.wait_for_timeout(40)
    page.mouse.move(x1, y1, steps=8)
    page.wait_for_timeout(60)
    page.mouse.up()
    want_box = sorted(np.flatnonzero(_inside(xy, box)).tolist())
    got = _wait_for(
        lambda: (
            ((_event(d, "small") or {}).get("selection") or [None])[0] == want_box[0] and _event(d, "small")
        )
    )
    assert got["selection"] == want_box and got["mode"] == "box"
    # Escape clears the selection, and Python hears that once
    page.keyboard.press("Escape")
    assert _wait_for(lambda: _event(d, "small")["selection"] == [])
    assert not errors
    page.close()


@pytest.mark.slow
def test_values_get_a_colour_bar_and_search_hits_a_legend_entry(app_server, gl_browser):
    url, d, data = app_server
    page, errors = _open(gl_browser, url, "values")
    legend = page.locator(".exs-legend")
    assert legend.locator(".exs-legend-name").inner_text() == "depth"
    assert legend.locator(".exs-colorbar").count() == 1
    depth = np.linalg.norm(data["xy"], axis=1).astype(np.float32)
    assert float(legend.locator(".exs-max").inner_text()) == pytest.approx(float(depth.max()), rel=1e-3)
    hits = " ".join(legend.locator(".exs-hits").inner_text().split())
    assert hits == f"search hits {len(range(0, len(depth), 10))}"
    x, y = page.evaluate(f"() => {HANDLE}.rowToClient({DELTA_PROBE})")
    page.mouse.move(x, y)
    page.locator(".exs-tooltip").wait_for(state="visible", timeout=10_000)
    head = page.locator(".exs-tip-label").inner_text()
    assert head.startswith("depth: ") and float(head[7:]) == pytest.approx(
        float(depth[DELTA_PROBE]), rel=1e-3
    )
    assert not errors
    page.close()


@pytest.mark.slow
def test_a_million_points_render(app_server, gl_browser):
    url, d, data = app_server
    page, errors = _open(gl_browser, url, "million", timeout=300_000)
    assert page.evaluate(f"() => {HANDLE}.drawn()") == 1_000_000
    painted = page.evaluate(
        f"""() => {{ const c = {HANDLE}.view.canvas;
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let k = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) k++; return k; }}"""
    )
    assert painted > 50_000
    assert page.locator(".exs-status").inner_text().startswith("1,000,000 points")
    assert not errors
    page.close()


@pytest.mark.slow
def test_a_map_left_and_reopened_asks_for_its_points_again(app_server, gl_browser):
    """Python sends the points to a session once; a map mounted afresh in the same session
    (back from another page) gets a stub, asks for the points, and draws them all."""
    url, d, data = app_server
    page, errors = _open(gl_browser, url, "small")
    version = page.evaluate(f"() => {HANDLE}.view.version")
    page.get_by_role("link", name="Other").click()
    page.get_by_text("another page").wait_for(timeout=30_000)
    page.get_by_role("link", name="Map").click()
    page.wait_for_function(
        f"() => {HANDLE} && {HANDLE}.view.needAsked === '{version}' && {HANDLE}.drawn() === {len(data['xy'])}",
        timeout=60_000,
    )
    assert page.evaluate(f"() => {HANDLE}.view.version") == version
    assert not errors
    page.close()
