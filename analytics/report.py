"""One self-contained HTML report of a corpus (and optionally a shift test against a second):
summary, map, depth histogram, median and most outlying texts, shift verdict. Figures are
interactive and plotly.js is inlined, so the file opens with no network.

User text (names, texts, labels, the model id) is escaped exactly once for where it lands: with
``html.escape`` in this module's own HTML, and by the figure builders (``plotly_text``) in the
figures, which therefore get it raw.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .depth import median_index, most_central, most_outlying, tte_depth
from .figures import depth_histogram, map_figure, shift_histogram
from .overlap import check_overlap
from .projection import corpus_projection, require_texts
from .shift import KINDS, ShiftResult, shift_test


@dataclass
class Report:
    html: str
    figures: dict = field(repr=False)
    """name -> plotly figure, for exporting as PNG/SVG."""
    shift: ShiftResult | None = None


def _subtitle(name, model_id, n, extra=""):
    return f"corpus: {name} · model: {model_id} · n = {n:,}" + (f" · {extra}" if extra else "")


def _table(rows: list[tuple], headers: tuple) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(
    store,
    name: str,
    model_id: str,
    *,
    compare: str | None = None,
    method: str = "umap",
    k: int = 10,
    permutations: int = 999,
    map_params: dict | None = None,
) -> Report:
    """The report of corpus ``name``; ``map_params`` are the map method's parameters
    (e.g. ``{"n_neighbors": 30}`` for UMAP; see :mod:`analytics.params`)."""
    import secrets

    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    token = secrets.token_hex(8)  # figure placeholders no user text can contain

    require_texts(name, store.corpus_info(name).n_docs, "a report (its map and depths)")
    texts, metadata = store.texts(name), store.metadata(name)
    X = store.vectors(name, model_id)
    d = tte_depth(X)
    info = store.corpus_info(name)
    label = info.label_column
    proj = corpus_projection(store, name, model_id, method, **(map_params or {}))
    color = [m.get(label, "") for m in metadata] if label else None
    figures = {
        "map": map_figure(
            proj.coords,
            texts,
            color=color,
            color_name=label or "",
            title=f"{name}: {method.upper()} map",
            subtitle=_subtitle(name, model_id, len(texts), proj.describe()),
        ),
        "depth": depth_histogram(
            d,
            title=f"{name}: TTE depth (cosine)",
            subtitle=_subtitle(name, model_id, len(d)),
            median_depth=float(d[median_index(d)]),
        ),
    }
    med = median_index(d)
    sections = [
        f"<h2>Summary</h2><p>{len(texts):,} texts · model {html.escape(model_id)} · "
        f"source {html.escape(str(info.source))}</p>",
        "<h2>Map</h2>",
        f"@@{token}-map@@",
        "<h2>Depth</h2>",
        f"@@{token}-depth@@",
        f"<h3>The median text (depth {d[med]:.4f})</h3><blockquote>{html.escape(texts[med])}</blockquote>",
        f"<h3>Most representative {k}</h3>",
        _table([(f"{d[i]:.4f}", texts[i]) for i in most_central(d, k)], ("depth", "text")),
        f"<h3>Most outlying {k}</h3>",
        _table([(f"{d[i]:.4f}", texts[i]) for i in most_outlying(d, k)], ("depth", "text")),
    ]
    result = None
    if compare:
        G = store.vectors(compare, model_id)
        texts_g = store.texts(compare)
        overlap = check_overlap(texts, texts_g, X, G)  # shared texts make every test conservative
        result = shift_test(X, G, permutations=permutations).with_notes(overlap.warning())
        figures["shift"] = shift_histogram(
            result.depths_f,
            result.depths_g,
            name_f=name,
            name_g=compare,
            title=f"Depth with respect to {name}: {name} vs {compare}",
            subtitle=_subtitle(
                name,
                model_id,
                result.n_f + result.n_g,
                f"{KINDS[result.kind()]} · p = {result.p_verdict:.3g} · Q = {result.q:.3f}",
            ),
        )
        deep_f, out_g = result.examples(5)
        sections += [
            f"<h2>Shift test: has {html.escape(compare)} shifted away from {html.escape(name)}?</h2>",
            f"<p class='verdict'>{html.escape(result.summary().splitlines()[0])}</p>",
            _table(
                [
                    ("kind of shift", KINDS[result.kind()]),
                    ("p (combined: depth both ways, MMD, mean embedding)", f"{result.p_verdict:.4g}"),
                    ("p: G more outlying (the paper's test, permutation)", f"{result.p_permutation:.4g}"),
                    ("p: G more concentrated", f"{result.p_concentrated:.4g}"),
                    *[(f"cross-check: {c.name}", f"p = {c.p:.4g} ({c.detail})") for c in result.checks],
                    ("Q (the paper's, one-sided)", f"{result.q:.4f}"),
                    ("W", f"{result.w:.4f}"),
                    ("p (asymptotic, one-sided)", f"{result.p:.4g}"),
                    ("n F", result.n_f),
                    ("n G", result.n_g),
                ],
                ("statistic", "value"),
            ),
            "<pre>" + html.escape(result.summary()) + "</pre>",
            f"@@{token}-shift@@",
            f"<h3>Most representative of {html.escape(name)}</h3>",
            _table([(f"{result.depths_f[i]:.4f}", texts[i]) for i in deep_f], ("depth", "text")),
            f"<h3>Most outlying of {html.escape(compare)}</h3>",
            _table([(f"{result.depths_g[i]:.4f}", texts_g[i]) for i in out_g], ("depth", "text")),
        ]
    body = "\n".join(sections)
    for key, fig in figures.items():
        body = body.replace(
            f"@@{token}-{key}@@",
            pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"fig-{key}"),
        )
    title = f"Embedding Explorer report: {name}" + (f" vs {compare}" if compare else "")
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.8em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9em; }}
td, th {{ border: 1px solid #ddd; padding: .35em .6em; text-align: left; vertical-align: top; }}
blockquote {{ background: #f6f8fa; padding: .8em 1em; margin: 0; }}
.verdict {{ font-weight: 600; font-size: 1.1em; }}
</style></head>
<body><h1>{html.escape(title)}</h1><p>Created {created} by Embedding Explorer.</p>
{body}
</body></html>"""
    return Report(page, figures, result)
