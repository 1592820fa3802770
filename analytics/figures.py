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


def _title(main: str, sub: str) -> dict:
    """A title and its subtitle; the ``<br><sup>`` markup is ours, the words are the user's."""
    text = f"{plotly_text(main, TITLE_LEN)}<br><sup>{plotly_text(sub, SUBTITLE_LEN)}</sup>"
    return dict(text=text, x=0.01, xanchor="left")


def map_figure(
    coords, texts, *, color=None, color_name: str = "", highlight=None, title: str = "", subtitle: str = ""
):
    """A WebGL scatter of a 2D map. ``color``: labels (categorical) or numbers (continuous)."""
    import plotly.graph_objects as go

    coords = np.asarray(coords)
    hover = [plotly_text(t, HOVER_LEN) for t in texts]
    fig = go.Figure()
    ids = np.arange(len(coords))
    if color is None:
        fig.add_trace(
            go.Scattergl(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                customdata=ids,
                hovertext=hover,
                hoverinfo="text",
                name="texts",
                marker=dict(size=5, color=PALETTE[0], opacity=0.7),
            )
        )
    elif np.issubdtype(np.asarray(color).dtype, np.number):
        fig.add_trace(
            go.Scattergl(
                x=coords[:, 0],
                y=coords[:, 1],
                mode="markers",
                customdata=ids,
                hovertext=hover,
                hoverinfo="text",
                name=plotly_text(color_name, LEGEND_LEN),
                marker=dict(
                    size=5,
                    color=color,
                    colorscale="Viridis",
                    opacity=0.8,
                    colorbar=dict(title=plotly_text(color_name, LEGEND_LEN)),
                ),
            )
        )
    else:
        labels = np.asarray([str(c) for c in color])
        for i, value in enumerate(dict.fromkeys(labels)):
            m = labels == value
            fig.add_trace(
                go.Scattergl(
                    x=coords[m, 0],
                    y=coords[m, 1],
                    mode="markers",
                    customdata=ids[m],
                    hovertext=[hover[j] for j in np.flatnonzero(m)],
                    hoverinfo="text",
                    name=plotly_text(value, LEGEND_LEN),
                    marker=dict(size=5, color=PALETTE[i % len(PALETTE)], opacity=0.7),
                )
            )
    if highlight is not None and len(highlight):
        h = np.asarray(highlight)
        fig.add_trace(
            go.Scattergl(
                x=coords[h, 0],
                y=coords[h, 1],
                mode="markers",
                customdata=h,
                hovertext=[hover[j] for j in h],
                hoverinfo="text",
                name="highlighted",
                marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(width=2, color=HIGHLIGHT)),
            )
        )
    fig.update_layout(
        **_LAYOUT,
        title=_title(title, subtitle),
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
