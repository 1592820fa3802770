"""Plotly figures for the dashboard and reports. Every chart carries a title that says what it
shows (corpus, model, method, parameters, n), so a screenshot explains itself.

User text is data: plotly.js renders a subset of HTML (<a href>, <b>, <i>, <br>, <span style>,
<sub>, <sup>) in every title, axis title, legend name, annotation, tick label and hover label.
So every piece of user text (corpus names, labels, metadata values, texts, search strings, model
ids) reaches a figure through :func:`plotly_text` and nothing else, and the builders take raw
text: callers never escape.
"""

from __future__ import annotations

import html

import numpy as np

PALETTE = [
    "#2c5d8f",
    "#e07b39",
    "#3a9a5b",
    "#c2413b",
    "#7b5ea7",
    "#8c6d31",
    "#d45f9e",
    "#5f6b73",
    "#b5b83a",
    "#2aa5b8",
]
HIGHLIGHT = "#d62728"
_LAYOUT = dict(template="plotly_white", font=dict(size=13), margin=dict(l=40, r=20, t=70, b=40))


HOVER_LEN, LEGEND_LEN, AXIS_NAME_LEN, TITLE_LEN, SUBTITLE_LEN = 160, 40, 60, 120, 200


def plotly_text(text, max_len: int | None = None) -> str:
    """User text as plotly.js shows it literally: whitespace collapsed (plotly turns newlines into
    spaces anyway), shortened to ``max_len`` characters with an ellipsis, then escaped once.

    Shortening comes first so an entity is never cut in half (``&am``). Only ``&``, ``<`` and
    ``>`` are escaped: plotly splits out tags first and then decodes just ``&amp; &lt; &gt;``
    (plus a few symbols and numeric entities), so ``&quot;`` would show as those six characters.
    """
    t = " ".join(str(text).split())
    if max_len is not None and len(t) > max_len:
        t = t[: max_len - 1] + "…"
    return html.escape(t, quote=False)


def _title(main: str, sub: str, note: str = "") -> dict:
    """A title and its subtitle; the ``<br><sup>`` markup is ours, the words are the user's.
    ``note`` (our own words, with numbers) follows the shortened subtitle, so it is never cut."""
    sub = plotly_text(sub, SUBTITLE_LEN) + (f" · {plotly_text(note)}" if note else "")
    text = f"{plotly_text(main, TITLE_LEN)}<br><sup>{sub}</sup>"
    return dict(text=text, x=0.01, xanchor="left")


#: the most points :func:`map_figure` draws by default (a seeded random sample beyond it)
MAP_MAX_POINTS = 100_000


def map_sample(n: int, max_points: int | None, highlight=None, *, seed: int = 0) -> np.ndarray:
    """The rows a map of ``n`` points draws, ascending: all of them when ``n <= max_points``,
    else ``max_points`` of them: every highlighted row first (a seeded sample of them when they
    alone are too many), the rest a seeded random sample of the others. The others are taken in
    one fixed random order, so a new search changes the sample only by the rows it needs."""
    if max_points is None or n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    keep = np.zeros(n, dtype=bool)
    h = np.unique(np.asarray(highlight, dtype=np.int64)) if highlight is not None else np.empty(0, np.int64)
    if h.size > max_points:
        h = np.sort(rng.choice(h, max_points, replace=False))
    keep[h] = True
    others = order[~keep[order]][: max_points - h.size]
    keep[others] = True
    return np.flatnonzero(keep)


def map_figure(
    coords,
    texts,
    *,
    color=None,
    color_name: str = "",
    highlight=None,
    title: str = "",
    subtitle: str = "",
    max_points: int | None = MAP_MAX_POINTS,
    seed: int = 0,
    max_categories: int | None = None,
    highlight_name: str = "highlighted",
):
    """A WebGL scatter of a 2D map. ``color``: labels (categorical) or numbers (continuous).
    ``max_categories``: only the most frequent labels get a colour and a legend entry, the rest
    are drawn grey as "other" (as the dashboard's map draws them; a legend of 150 intents does
    not fit a report's picture). ``highlight_name``: the legend's name for the circled rows.

    Above ``max_points`` texts (``None``: no cap) it draws a seeded random sample of them, always
    with the highlighted rows (:func:`map_sample`), and the subtitle says "showing a random N
    of M texts". Each point's ``customdata`` is its row in ``coords``, sampled or not, so a
    selection names the corpus's rows."""
    import plotly.graph_objects as go

    coords = np.asarray(coords)
    n = len(coords)
    shown = map_sample(n, max_points, highlight, seed=seed)
    note = ""
    if shown.size < n:
        note = f"showing a random {shown.size:,} of {n:,} texts"
        if highlight is not None and len(highlight):
            kept = np.isin(np.unique(np.asarray(highlight, dtype=np.int64)), shown).sum()
            note += f" (with {kept:,} of the {np.unique(highlight).size:,} highlighted)"
    hover = [plotly_text(texts[i], HOVER_LEN) for i in shown.tolist()]  # aligned with ``shown``
    xy = coords[shown]
    fig = go.Figure()
    if color is None:
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                customdata=shown,
                hovertext=hover,
                hoverinfo="text",
                name="texts",
                marker=dict(size=5, color=PALETTE[0], opacity=0.7),
            )
        )
    elif np.issubdtype(np.asarray(color).dtype, np.number):
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                customdata=shown,
                hovertext=hover,
                hoverinfo="text",
                name=plotly_text(color_name, LEGEND_LEN),
                marker=dict(
                    size=5,
                    color=np.asarray(color)[shown],
                    colorscale="Viridis",
                    opacity=0.8,
                    colorbar=dict(title=plotly_text(color_name, LEGEND_LEN)),
                ),
            )
        )
    else:
        # colours follow every label's first appearance in the corpus, sampled or not
        values = list(dict.fromkeys(str(c) for c in color))
        labels = np.array([str(color[i]) for i in shown.tolist()], dtype=object)

        def group(m, name: str, colour: str, opacity: float):
            """The drawn points where ``m`` holds, as one legend entry."""
            return go.Scattergl(
                x=xy[m, 0],
                y=xy[m, 1],
                mode="markers",
                customdata=shown[m],
                hovertext=[hover[j] for j in np.flatnonzero(m)],
                hoverinfo="text",
                name=plotly_text(name, LEGEND_LEN),
                marker=dict(size=5, color=colour, opacity=opacity),
            )

        if max_categories is not None and len(values) > max_categories:
            counts: dict[str, int] = {}
            for c in color:
                counts[str(c)] = counts.get(str(c), 0) + 1
            kept = set(sorted(values, key=lambda v: -counts[v])[:max_categories])
            rest = len(values) - len(kept)
            other = f"other ({rest:,} values)"
            m = ~np.isin(labels, list(kept))
            if m.any():  # drawn first, under the coloured ones
                fig.add_trace(group(m, other, "#b8b8b8", 0.6))
            values = [v for v in values if v in kept]
        for i, value in enumerate(values):
            m = labels == value
            if not m.any():
                continue
            fig.add_trace(group(m, value, PALETTE[i % len(PALETTE)], 0.7))
    if highlight is not None and len(highlight):
        h = np.asarray(highlight, dtype=np.int64)
        h = h[np.isin(h, shown)] if shown.size < n else h
        at = np.searchsorted(shown, h)  # each highlighted row's place among the drawn ones
        fig.add_trace(
            go.Scattergl(
                x=coords[h, 0],
                y=coords[h, 1],
                mode="markers",
                customdata=h,
                hovertext=[hover[j] for j in at.tolist()],
                hoverinfo="text",
                name=plotly_text(f"{highlight_name} ({len(np.unique(h)):,})", LEGEND_LEN),
                marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(width=2, color=HIGHLIGHT)),
            )
        )
    fig.update_layout(
        **_LAYOUT,
        title=_title(title, subtitle, note),
        dragmode="lasso",
        height=620,
        legend=dict(title=plotly_text(color_name, LEGEND_LEN)),
        xaxis=dict(showticklabels=False),
        yaxis=dict(showticklabels=False),
    )
    return fig


def depth_histogram(depths, *, title: str, subtitle: str, median_depth: float | None = None):
    import plotly.graph_objects as go

    fig = go.Figure(go.Histogram(x=np.asarray(depths), nbinsx=50, marker_color=PALETTE[0], name="texts"))
    if median_depth is not None:
        fig.add_vline(x=median_depth, line_color=HIGHLIGHT, annotation_text="median text")
    fig.update_layout(
        **_LAYOUT,
        title=_title(title, subtitle),
        height=380,
        xaxis_title="TTE depth (higher = more representative)",
        yaxis_title="texts",
    )
    return fig


def shift_histogram(depths_f, depths_g, *, name_f: str, name_g: str, title: str, subtitle: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for depths, name, c in ((depths_f, name_f, PALETTE[0]), (depths_g, name_g, PALETTE[1])):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(depths),
                nbinsx=40,
                name=plotly_text(name, LEGEND_LEN),
                marker_color=c,
                opacity=0.6,
                histnorm="probability density",
            )
        )
    fig.update_layout(
        **_LAYOUT,
        barmode="overlay",
        title=_title(title, subtitle),
        height=400,
        xaxis_title=f"depth with respect to {plotly_text(name_f, AXIS_NAME_LEN)}",
        yaxis_title="density",
    )
    return fig
