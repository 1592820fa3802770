"""One self-contained HTML report of what an analyst has on screen: a corpus (its map in the
colouring chosen on the Map page, depth, depth per label, every flagged outlier with its label
and its neighbours' labels), the session's selection (a section scoped to it, saying so), and a
shift test against a second corpus with F and G drawn together on one map. Figures are
interactive and plotly.js is inlined, so the file opens with no network.

A report is known by everything it shows (:class:`ReportRequest`): the dashboard builds it as
a job keyed by those inputs, so a report is never served for inputs other than its own.

User text (names, texts, labels, the model id, the selection's description) is escaped exactly
once for where it lands: with ``html.escape`` in this module's own HTML, and by the figure
builders (``plotly_text``) in the figures, which therefore get it raw.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from .depth import median_index, most_central, most_outlying, tte_depth
from .errors import ParameterError
from .figures import depth_histogram, map_figure, shift_histogram
from .overlap import check_overlap
from .params import RULES
from .projection import cached_projection, project, projection_request, require_texts, save_projection
from .shift import KINDS, ShiftResult, shift_test

#: the most outliers listed in the report's table (all are counted, per label too; the Outliers
#: page exports every one as CSV)
MAX_OUTLIER_ROWS = 1000
#: colourings that are not a metadata column
NO_COLOUR, DEPTH_COLOUR = "none", "depth"
#: what each part of the work costs, roughly (seconds per 10,000 texts on two CPU cores), so that
#: the progress bar moves with the time; a part already in the store costs next to nothing
_COST = {"umap": 40.0, "tsne": 60.0, "pca": 3.0, "outliers": 20.0, "shift": 25.0, "cached": 0.2}


class _Stages:
    """Progress over the report's parts, each filling a share of the bar in proportion to its
    cost; a part's own progress (a map's epochs, the permutations) moves within its share."""

    def __init__(self, progress, costs: dict[str, float]):
        self.progress, self.start, self.share = progress, {}, {}
        total, done = sum(costs.values()), 0.0
        for key, cost in costs.items():
            self.start[key], self.share[key] = done / total, cost / total
            done += cost

    def step(self, stage: str, key: str, within: float = 0.0) -> None:
        if self.progress is not None:
            self.progress(stage, self.start[key] + min(max(within, 0.0), 1.0) * self.share[key])

    def part(self, stage: str, key: str):
        """A progress hook for one part: its own words follow the part's name."""
        if self.progress is None:
            return None
        return lambda words, f: self.step(f"{stage} · {words}" if words else stage, key, f)


@dataclass
class Report:
    html: str
    figures: dict = field(repr=False)
    """name -> plotly figure, for exporting as PNG/SVG."""
    shift: ShiftResult | None = None
    created: str = ""
    """When it was built (UTC, ISO 8601), also in its file name."""


@dataclass(frozen=True)
class ReportRequest:
    """Everything a report shows, checked: its content key is made of these, so two reports
    with the same request are the same report, and any input changed is another report.

    ``color``: the map's colouring (None: the corpus's label column; "depth"; "none"; or a
    metadata column). ``selection``: a saved selection's id (:meth:`Store.save_selection`),
    shown in a section of its own, described by ``selection_note``. ``map_params``: the map
    method's parameters (see :mod:`analytics.params`), as the Map page has them.
    ``shift_selection``: test whether the selection has shifted away from the rest of the
    corpus (instead of a second corpus ``compare``)."""

    corpus: str
    model_id: str
    compare: str | None = None
    shift_selection: bool = False
    method: str = "umap"
    map_params: tuple[tuple[str, object], ...] = ()
    color: str | None = None
    selection: str | None = None
    selection_note: str = ""
    permutations: int = RULES["shift"]["permutations"].default

    def params(self) -> dict:
        """As a job's JSON parameters (``report_request`` reads them back)."""
        return {
            "corpus": self.corpus,
            "compare": self.compare,
            "model_id": self.model_id,
            "method": self.method,
            "map_params": dict(self.map_params),
            "color": self.color,
            "selection": self.selection,
            "selection_note": self.selection_note,
            "permutations": self.permutations,
            "shift_selection": self.shift_selection,
        }

    def map_requests(self, store) -> list:
        """The maps the report draws (:class:`~analytics.projection.ProjectionRequest`): the
        corpus's, then, with a comparison, F and G projected together onto one map."""
        maps = [projection_request(store, self.corpus, self.model_id, self.method, **dict(self.map_params))]
        if self.compare:
            maps.append(
                projection_request(
                    store,
                    self.corpus,
                    self.model_id,
                    self.method,
                    others=(self.compare,),
                    **dict(self.map_params),
                )
            )
        return maps

    def key_parts(self, store) -> list:
        """What the report's content key is made of: the corpora's contents (fingerprints), the
        maps' keys and every other input."""
        fps = [
            store.corpus_fingerprint(self.corpus),
            store.corpus_fingerprint(self.compare) if self.compare else None,
        ]
        return [fps, [m.key for m in self.map_requests(store)], self.params()]


def report_request(store, params: dict) -> ReportRequest:
    """A report's parameters (a job's, the page's) checked: a clear :class:`ParameterError`
    (or :class:`StoreError` for an unknown corpus) names what is wrong."""
    name, compare = params.get("corpus"), params.get("compare") or None
    model_id = params.get("model_id")
    if not model_id:
        raise ParameterError("A report needs model_id: the key of the vectors to report on.")
    require_texts(name, store.corpus_info(name).n_docs, "a report (its map and depths)")
    if compare is not None:
        if compare == name:
            raise ParameterError("Pick a corpus to compare with other than the one reported on.")
        store.corpus_info(compare)  # an unknown name raises here
    method = params.get("method") or RULES["projection"]["method"].default
    map_params = dict(params.get("map_params") or {})
    first = projection_request(store, name, model_id, method, **map_params)  # checks method and params
    color = params.get("color")
    if color is not None and (not isinstance(color, str) or not color):
        raise ParameterError(f"color must be a metadata column, 'depth' or 'none', got {color!r}.")
    selection, note = params.get("selection") or None, str(params.get("selection_note") or "")
    if selection is not None:
        found = store.selection(str(selection))
        if found is None or found[0] != name:
            raise ParameterError(
                f"The selection {selection!r} is not a selection of {name!r} in this store; "
                "select again on the Map page."
            )
    permutations = RULES["shift"]["permutations"].check(
        params.get("permutations", RULES["shift"]["permutations"].default)
    )
    shift_selection = params.get("shift_selection", False)
    if not isinstance(shift_selection, bool):
        raise ParameterError(f"shift_selection is true or false, got {shift_selection!r:.50}.")
    if shift_selection and (selection is None or compare is not None):
        raise ParameterError(
            "A report tests the selection against the rest of its corpus only with a selection "
            "and no second corpus: pick one of the two."
        )
    return ReportRequest(
        corpus=name,
        model_id=model_id,
        compare=compare,
        method=first.method,
        map_params=tuple(sorted(map_params.items())),
        color=color,
        selection=None if selection is None else str(selection),
        selection_note=note,
        permutations=permutations,
        shift_selection=shift_selection,
    )


def _subtitle(name, model_id, n, extra=""):
    return f"corpus: {name} · model: {model_id} · n = {n:,}" + (f" · {extra}" if extra else "")


def _table(rows: list[tuple], headers: tuple) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _projection(store, request, progress=None):
    """The stored map of ``request``, computed and stored first when it is not there (the
    dashboard's job computes it beforehand, in a worker process)."""
    proj = cached_projection(store, request)
    if proj is None:
        from .memory import shared_cache

        X = shared_cache().vectors(store, request.name, request.model_id)
        others = getattr(request, "others", ())
        if others:
            X = np.concatenate([X, *(shared_cache().vectors(store, o, request.model_id) for o in others)])
        proj = project(X, progress=progress, **request.kwargs())
        save_projection(store, request, proj)
    return proj


def _colouring(color, metadata, depths, label):
    """The map's colour values and their legend title for a colouring choice (as the Map page
    draws it: numbers when every value present is one, else categories with "" for missing)."""
    column = label if color is None else color
    if column == DEPTH_COLOUR:
        return depths, "depth", "depth"
    if not column or column == NO_COLOUR:
        return None, "", "none"
    cells = [m.get(column) for m in metadata]
    present = [v for v in cells if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return np.array([np.nan if v is None else v for v in cells], dtype=np.float64), column, column
    return ["" if v is None else str(v) for v in cells], column, column


def _stored(store, kind: str, params: dict) -> bool:
    """Whether the dashboard's ``kind`` job has stored its result for ``params``."""
    from .jobs import KINDS

    return store.has_result(KINDS[kind].prepare(store, params)[1])


def _shared(store, shared: bool, kind: str, params: dict, compute, cls):
    """``compute()``, or with ``shared`` the result the dashboard's ``kind`` job stored for the
    same inputs (its content key), storing what is computed here under that key for it."""
    if not shared:
        return compute()
    from .jobs import KINDS
    from .results import from_bytes, to_bytes

    _, key = KINDS[kind].prepare(store, params)
    payload = store.get_result(key)
    if payload is not None:
        return cls.from_bytes(payload) if hasattr(cls, "from_bytes") else from_bytes(cls, payload)
    value = compute()
    store.put_result(key, kind, value.to_bytes() if hasattr(value, "to_bytes") else to_bytes(value))
    return value


def _labels_of(metadata, label) -> list[str] | None:
    if not label:
        return None
    return ["" if m.get(label) is None else str(m.get(label)) for m in metadata]


def _label_depth_rows(labels, depths, rows, flagged) -> list[tuple]:
    """Per label (over ``rows``): texts, median and lowest depth, outliers flagged among them;
    the labels with the lowest median depth (the most outlying) first."""
    flagged_set = set(np.asarray(flagged).tolist())
    groups: dict[str, list[int]] = {}
    for i in rows:
        groups.setdefault(labels[i], []).append(i)
    out = []
    for value, ids in groups.items():
        d = depths[np.asarray(ids)]
        n_out = sum(1 for i in ids if i in flagged_set)
        out.append((float(np.median(d)), value, len(ids), float(d.min()), n_out))
    out.sort(key=lambda r: (r[0], r[1]))
    return [
        (value or "(missing)", f"{n:,}", f"{med:.4f}", f"{low:.4f}", f"{n_out:,} ({n_out / n:.0%})")
        for med, value, n, low, n_out in out
    ]


def _texts_table(ids, depths, texts, labels, label) -> str:
    if labels is None:
        return _table([(f"{depths[i]:.4f}", texts[i]) for i in ids], ("depth", "text"))
    return _table([(f"{depths[i]:.4f}", labels[i], texts[i]) for i in ids], ("depth", label, "text"))


def _neighbour_labels(ids, labels, top: int = 3) -> str:
    counts = Counter(labels[int(j)] for j in ids).most_common(top)
    return ", ".join(f"{value or '(missing)'} ×{c}" for value, c in counts)


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
    color: str | None = None,
    rows=None,
    selection_note: str = "",
    shift_selection: bool = False,
    progress=None,
    shared: bool = False,
) -> Report:
    """The report of corpus ``name``.

    ``map_params``: the map method's parameters (e.g. ``{"n_neighbors": 30}`` for UMAP; see
    :mod:`analytics.params`). ``color``: the map's colouring (None: the label column; "depth";
    "none"; or a metadata column). ``rows``: the analyst's selection (row ids), reported in a
    section of its own described by ``selection_note``. ``compare``: a second corpus G, tested
    for a shift away from ``name`` (F) with ``permutations`` and drawn with it on one map.
    ``shift_selection``: instead, test whether the selection (G) has shifted away from the
    rest of the corpus (F), the Shift page's "selection vs the rest".
    ``progress(stage, fraction)`` hears how far the work is (it may raise to stop it).
    ``shared``: take the outliers and the shift test from the store when the Outliers or Shift
    page computed them already (their jobs' results for the same inputs and default settings),
    and store them there when computed here (the dashboard's report job; needs a writable store)."""
    import secrets

    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    token = secrets.token_hex(8)  # figure placeholders no user text can contain
    require_texts(name, store.corpus_info(name).n_docs, "a report (its map and depths)")
    if shift_selection and (rows is None or compare):
        raise ParameterError(
            "shift_selection tests the selection against the rest of the corpus: give rows= "
            "(the selection) and no compare=."
        )
    map_params = dict(map_params or {})
    request = projection_request(store, name, model_id, method, **map_params)
    joint_request = (
        projection_request(store, name, model_id, method, others=(compare,), **map_params)
        if compare
        else None
    )
    size = (store.corpus_info(name).n_docs + (store.corpus_info(compare).n_docs if compare else 0)) / 1e4
    outliers_params = {"corpus": name, "model_id": model_id}
    shift_params = {"corpus": name, "compare": compare, "model_id": model_id, "permutations": permutations}

    def cost(kind: str, done: bool) -> float:
        return _COST["cached"] if done else _COST[kind] * max(size, 0.05)

    costs = {
        "reading": 0.5,
        "map": cost(method, store.has_result(request.key)),
        "joint": cost(method, store.has_result(joint_request.key)) if compare else 0.0,
        "depth": 0.5,
        "outliers": cost("outliers", shared and _stored(store, "outliers", outliers_params)),
        "labels": 0.5,
        "selection": 0.5 if rows is not None else 0.0,
        "shift": cost("shift", shared and _stored(store, "shift", shift_params))
        if compare
        else (cost("shift", False) if shift_selection else 0.0),
        "html": 1.0,
    }
    stages = _Stages(progress, costs)
    step, part = stages.step, stages.part
    step("reading texts and vectors", "reading")
    texts, metadata = store.texts(name), store.metadata(name)
    X = store.vectors(name, model_id)
    info = store.corpus_info(name)
    label = info.label_column
    labels = _labels_of(metadata, label)
    if rows is not None:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if rows.size and (rows[0] < 0 or rows[-1] >= len(texts)):
            raise ParameterError(f"The selection names rows outside {name!r}'s {len(texts):,} rows.")
        if shift_selection and min(rows.size, len(texts) - rows.size) < 2:
            raise ParameterError(
                f"The selection has {rows.size:,} of {len(texts):,} texts; testing it against the "
                "rest needs at least 2 on each side. Select more (or fewer) texts."
            )

    step(f"the {method.upper()} map", "map")
    proj = _projection(store, request, part(f"the {method.upper()} map", "map"))
    joint = None
    if compare:
        step("F and G on one map", "joint")
        joint = _projection(store, joint_request, part("F and G on one map", "joint"))
    step("depth of every text", "depth")
    d = tte_depth(X)
    step(f"outliers: each text's {RULES['outliers']['k'].default} nearest neighbours", "outliers")
    from .outliers import OutlierReport, find_outliers

    outliers = _shared(
        store,
        shared,
        "outliers",
        outliers_params,
        lambda: find_outliers(X, progress=part("outliers", "outliers")),
        OutlierReport,
    )
    flagged = np.asarray(outliers.flagged, dtype=np.int64)

    colour, colour_title, colour_name = _colouring(color, metadata, d, label)
    med = median_index(d)
    figures = {
        "map": map_figure(
            proj.coords,
            texts,
            color=colour,
            color_name=colour_title,
            title=f"{name}: {method.upper()} map",
            subtitle=_subtitle(name, model_id, len(texts), f"{proj.describe()} · colour: {colour_name}"),
        ),
        "depth": depth_histogram(
            d,
            title=f"{name}: TTE depth (cosine)",
            subtitle=_subtitle(name, model_id, len(d)),
            median_depth=float(d[med]),
        ),
    }
    scope = (
        "all rows"
        if rows is None
        else f"{len(rows):,} of {len(texts):,} texts: {selection_note or 'selected'}"
    )
    inputs = [
        ("corpus", name),
        ("model", model_id),
        ("map", proj.describe()),
        ("map colour", colour_name),
        ("selection", scope),
        ("compared with", compare or ("the selection vs the rest" if shift_selection else "(none)")),
    ]
    sections = [
        "<h2>Inputs</h2>",
        "<p>What was on screen when this report was built; the report shows exactly these.</p>",
        _table(inputs, ("input", "value")),
        f"<h2>Summary</h2><p>{len(texts):,} texts · model {html.escape(model_id)} · "
        f"source {html.escape(str(info.source))}</p>",
        "<h2>Map</h2>",
        f"@@{token}-map@@",
        "<h2>Depth</h2>",
        f"@@{token}-depth@@",
        f"<h3>The median text (depth {d[med]:.4f})</h3><blockquote>{html.escape(texts[med])}</blockquote>",
        f"<h3>Most representative {k}</h3>",
        _texts_table(most_central(d, k), d, texts, labels, label),
        f"<h3>Most outlying {k}</h3>",
        _texts_table(most_outlying(d, k), d, texts, labels, label),
    ]
    step("depth per label", "labels")
    if labels is not None:
        sections += [
            f"<h2>Depth per {html.escape(label)}</h2>",
            "<p>Median and lowest TTE depth of each label's texts (with respect to the whole corpus), "
            "and how many of them are flagged as outliers; the most outlying labels first.</p>",
            _table(
                _label_depth_rows(labels, d, range(len(texts)), flagged),
                (label, "texts", "median depth", "lowest depth", "outliers flagged"),
            ),
        ]
    shown = flagged[:MAX_OUTLIER_ROWS]
    how = {
        "local": "local depth (no near neighbours)",
        "global": "global TTE depth (far from the corpus as a whole)",
        "combined": "local and global depth together",
    }.get(outliers.by, outliers.by)
    rank_depths = d if outliers.local_depths is None else outliers.local_depths
    out_rows = []
    for pos, i in enumerate(shown.tolist()):
        row = [f"{pos + 1:,}", f"{d[i]:.4f}"]
        if outliers.local_depths is not None:
            row.append(f"{rank_depths[i]:.4f}")
        if labels is not None:
            row += [labels[i], _neighbour_labels(outliers.neighbours[pos], labels)]
        out_rows.append((*row, texts[i]))
    headers = ["rank", "depth"]
    if outliers.local_depths is not None:
        headers.append("local depth")
    if labels is not None:
        headers += [label, f"neighbours' {label}"]
    sections += [
        "<h2>Outliers</h2>",
        f"<p>{len(flagged):,} texts flagged: the {RULES['outliers']['quantile'].default:.0%} most outlying "
        f"by {html.escape(how)}, each with its {outliers.k} nearest neighbours' labels. "
        + (
            f"All {len(flagged):,} are listed, most outlying first.</p>"
            if len(shown) == len(flagged)
            else f"The {len(shown):,} most outlying are listed; the Outliers page exports all "
            f"{len(flagged):,} as CSV.</p>"
        ),
        _table(out_rows, (*headers, "text")),
    ]
    if rows is not None:
        step("the selection", "selection")
        sections += _selection_section(
            name, model_id, texts, labels, label, d, flagged, rows, selection_note, proj, figures, token, k
        )
    result = None
    if compare:
        G = store.vectors(compare, model_id)
        texts_g = store.texts(compare)
        step(f"shift test ({permutations:,} permutations)", "shift")
        overlap = check_overlap(texts, texts_g, X, G)  # shared texts make every test conservative
        result = _shared(
            store,
            shared,
            "shift",
            shift_params,
            lambda: shift_test(
                X,
                G,
                permutations=permutations,
                progress=part("shift test", "shift"),
            ).with_notes(overlap.warning()),
            ShiftResult,
        )
        sides = [f"F: {name}"] * len(texts) + [f"G: {compare}"] * len(texts_g)
        figures["joint"] = map_figure(
            joint.coords,
            [*texts, *texts_g],
            color=sides,
            color_name="corpus",
            title=f"{name} (F) and {compare} (G) on one {method.upper()} map",
            subtitle=_subtitle(f"{name} + {compare}", model_id, len(sides), joint.describe()),
        )
        figures["shift"] = _shift_figure(
            result, (name, compare), name, model_id, f"Depth with respect to {name}"
        )
        sections += _shift_section(result, (name, compare), (texts, texts_g), token, joint=True)
    elif shift_selection:
        rest = np.setdiff1d(np.arange(len(texts)), rows)
        texts_f, texts_g = [texts[i] for i in rest], [texts[i] for i in rows]
        step(f"shift test of the selection ({permutations:,} permutations)", "shift")
        F, G = X[rest], X[rows]
        overlap = check_overlap(texts_f, texts_g, F, G)
        result = shift_test(
            F, G, permutations=permutations, progress=part("shift test of the selection", "shift")
        ).with_notes(overlap.warning())
        sides = (f"the rest of {name}", "the selection")
        figures["shift"] = _shift_figure(
            result, sides, name, model_id, f"Depth with respect to the rest of {name}"
        )
        sections += _shift_section(result, sides, (texts_f, texts_g), token, joint=False)
    step("writing the HTML", "html")
    body = "\n".join(sections)
    for key, fig in figures.items():
        body = body.replace(
            f"@@{token}-{key}@@",
            pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"fig-{key}"),
        )
    title = f"Embedding Explorer report: {name}" + (f" vs {compare}" if compare else "")
    now = datetime.now(timezone.utc)
    created = now.strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>
body {{ font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.8em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }}
table {{ border-collapse: collapse; width: 100%; font-size: .9em; }}
td, th {{ border: 1px solid #ddd; padding: .35em .6em; text-align: left; vertical-align: top; }}
blockquote {{ background: #f6f8fa; padding: .8em 1em; margin: 0; }}
pre {{ white-space: pre-wrap; }}
.verdict {{ font-weight: 600; font-size: 1.1em; }}
.scope {{ background: #eef4fb; border-left: 4px solid #1f77b4; padding: .6em 1em; }}
</style></head>
<body><h1>{html.escape(title)}</h1><p>Created {created} by Embedding Explorer.</p>
{body}
</body></html>"""
    if progress is not None:
        progress("done", 1.0)
    return Report(page, figures, result, now.isoformat(timespec="seconds"))


def _shift_figure(result: ShiftResult, names, corpus: str, model_id: str, what: str):
    """The depth histogram of F and G (``names``), titled "``what``: F vs G"."""
    return shift_histogram(
        result.depths_f,
        result.depths_g,
        name_f=names[0],
        name_g=names[1],
        title=f"{what}: {names[0]} vs {names[1]}",
        subtitle=_subtitle(
            corpus,
            model_id,
            result.n_f + result.n_g,
            f"{KINDS[result.kind()]} · p = {result.p_verdict:.3g} · Q = {result.q:.3f}",
        ),
    )


def _shift_section(result: ShiftResult, names, texts, token: str, *, joint: bool) -> list[str]:
    """The shift test's section: the verdict, the statistics, F and G on one map (``joint``:
    two corpora; the selection's own map shows it against the rest), the depth histogram and
    examples of each side. ``names`` and ``texts`` are F's and G's."""
    (name_f, name_g), (texts_f, texts_g) = names, texts
    f, g = html.escape(name_f), html.escape(name_g)
    deep_f, out_g = result.examples(5)
    where = (
        [
            f"<h3>F and G on one map</h3><p>{f} (F) and {g} (G) projected together, so where G lies "
            "against F can be seen.</p>",
            f"@@{token}-joint@@",
        ]
        if joint
        else ["<p>The selection's section above shows it against the rest on the map.</p>"]
    )
    return [
        f"<h2>Shift test: has {g} shifted away from {f}?</h2>",
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
        *where,
        f"@@{token}-shift@@",
        f"<h3>Most representative of {f}</h3>",
        _table([(f"{result.depths_f[i]:.4f}", texts_f[i]) for i in deep_f], ("depth", "text")),
        f"<h3>Most outlying of {g}</h3>",
        _table([(f"{result.depths_g[i]:.4f}", texts_g[i]) for i in out_g], ("depth", "text")),
    ]


def _selection_section(name, model_id, texts, labels, label, d, flagged, rows, note, proj, figures, token, k):
    """The selection's own section: it says it covers the selection only, draws it on the
    corpus's map, and gives its depth per label, median, most outlying texts and outliers."""
    picked = np.zeros(len(texts), dtype=bool)
    picked[rows] = True
    n_out = int(picked[flagged].sum()) if len(flagged) else 0
    figures["selection"] = map_figure(
        proj.coords,
        texts,
        color=np.where(picked, "selection", "rest").tolist(),
        color_name="selection",
        title=f"{name}: the selection on the map",
        subtitle=_subtitle(name, model_id, len(texts), f"{len(rows):,} selected · {proj.describe()}"),
    )
    html_parts = [
        "<h2>The selection</h2>",
        f"<p class='scope'>This section covers the selection only: {len(rows):,} of {len(texts):,} texts "
        f"({html.escape(note or 'selected')}). Depths are with respect to the whole corpus; "
        f"{n_out:,} of the selected texts are among the flagged outliers.</p>",
        f"@@{token}-selection@@",
    ]
    if len(rows) == 0:
        return [*html_parts, "<p>The selection is empty: no text matches it.</p>"]
    ds = d[rows]
    med = int(rows[int(np.argmax(ds))])
    html_parts += [
        f"<h3>The selection's most representative text (depth {d[med]:.4f})</h3>"
        f"<blockquote>{html.escape(texts[med])}</blockquote>",
        f"<h3>The selection's most outlying {min(k, len(rows))}</h3>",
        _texts_table(rows[np.argsort(ds, kind="stable")[:k]], d, texts, labels, label),
    ]
    if labels is not None:
        html_parts += [
            f"<h3>Depth per {html.escape(label)} in the selection</h3>",
            _table(
                _label_depth_rows(labels, d, rows.tolist(), flagged),
                (label, "texts", "median depth", "lowest depth", "outliers flagged"),
            ),
        ]
    return html_parts


def build_request(store, request: ReportRequest, *, progress=None, shared: bool = True) -> Report:
    """:func:`build_report` of a checked :class:`ReportRequest` (the dashboard's job, which
    shares outliers and shift tests with the Outliers and Shift pages' jobs)."""
    rows = None
    if request.selection is not None:
        found = store.selection(request.selection)
        if found is None or found[0] != request.corpus:
            raise ParameterError(
                f"The selection {request.selection!r} is gone; select again on the Map page."
            )
        rows = found[1]
    return build_report(
        store,
        request.corpus,
        request.model_id,
        compare=request.compare,
        method=request.method,
        permutations=request.permutations,
        map_params=dict(request.map_params),
        color=request.color,
        rows=rows,
        selection_note=request.selection_note,
        shift_selection=request.shift_selection,
        progress=progress,
        shared=shared,
    )
