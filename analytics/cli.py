"""``embex``: the command line over the analytics library (a thin shell: parse, call, print).

The store file comes from ``--store PATH``, else ``$EMBEX_STORE``, else a file in the user's
data directory. Every command prints for people, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .corpus import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MAX_TEXT_CHARS,
    DEFAULT_VECTOR_CHUNK_ROWS,
    open_vectors,
    stream_corpus,
)
from .errors import ExplorerError, ParameterError
from .params import RULES, Rule
from .store import Store, default_store_path


def _short(text: str, width: int = 110) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _emit(args, data: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        print("\n".join(lines))


def cmd_ingest(args, store: Store) -> None:
    """Stream the file into the store chunk by chunk (any size; one transaction, so a bad row
    deep in the file leaves the store as it was), with progress on stderr."""
    stream = stream_corpus(
        args.file,
        args.text_column,
        format=args.format,
        encoding=args.encoding,
        chunk_rows=args.chunk_rows,
        max_bytes=None if args.max_mb is None else int(args.max_mb * 2**20),
        max_rows=args.max_rows,
        max_text_chars=args.max_text_chars or None,
    )
    progress, done = _ingest_progress(args, stream)
    try:
        info = store.add_corpus_stream(args.name, stream, replace=args.replace, progress=progress)
    except KeyboardInterrupt:
        print("embex: stopped; nothing was stored (the store is as it was).", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        done()
    _emit(
        args,
        {
            "name": info.name,
            "n_docs": info.n_docs,
            "text_column": stream.text_column,
            "n_rows": stream.n_rows,
            "n_skipped": stream.n_skipped,
            "skipped_rows": stream.skipped_rows,
            "notes": stream.notes,
        },
        [
            *stream.notes,
            f"Stored corpus {info.name!r}: {info.n_docs:,} texts "
            f"(text column {stream.text_column!r}, metadata: {', '.join(stream.columns) or 'none'}).",
        ],
    )


def _ingest_progress(args, stream):
    """``(progress, done)`` callbacks for an ingest: a tqdm bar over the file's bytes when
    stderr is a terminal, else a plain line every 10 s (a quick ingest prints none); nothing
    with --json."""
    import time

    if args.json:
        return None, lambda: None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(
            total=stream.total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=f"ingesting {stream.source}",
            file=sys.stderr,
        )

        def progress(docs: int, bytes_read: int | None) -> None:
            if bytes_read is not None:
                bar.n = min(bytes_read, stream.total_bytes)
            bar.set_postfix_str(f"{docs:,} texts", refresh=False)
            bar.refresh()

        return progress, bar.close
    last = [time.monotonic()]

    def progress(docs: int, bytes_read: int | None) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            share = (
                f", {bytes_read / stream.total_bytes:.0%} of the file"
                if bytes_read and stream.total_bytes
                else ""
            )
            print(
                f"embex: ingesting {stream.source}: {docs:,} texts stored{share}", file=sys.stderr, flush=True
            )

    return progress, lambda: None


def cmd_embed(args, store: Store) -> None:
    from .embedding import Embedder, embed_corpus

    if args.engine == "ray":
        return _embed_ray(args, store)
    if args.precision == "auto" and args.backend == "torch":
        from .embedding import stored_model_id

        covered = stored_model_id(store, args.name, args.model)
        if covered is not None:  # vectors of this model, in some precision, cover the corpus
            n = store.corpus_info(args.name).n_docs
            _emit(
                args,
                {"corpus": args.name, "model_id": covered, "n_docs": n, "n_cached": n, "n_computed": 0},
                [
                    f"All {n:,} texts in {args.name!r} are already embedded with {covered}; "
                    "nothing to do (pass --precision to embed in another precision)."
                ],
            )
            return None
    embedder = Embedder(
        args.model,
        device=args.device,
        precision=args.precision,
        backend=args.backend,
        batch_size=args.batch_size,
    )
    bar = None
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="text", desc=f"embedding {args.name}")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.n = done
            bar.refresh()

    try:
        report = embed_corpus(store, args.name, embedder, progress=progress)
    except KeyboardInterrupt:
        print("embex: stopped; what was embedded is saved. Run embed again to resume.", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if bar is not None:
            bar.close()
    _emit(args, report.__dict__, [report.summary()])


def _embed_ray(args, store: Store) -> None:
    """``embed --engine ray``: the same cache, filled by actors on a Ray cluster."""
    from .distributed import embed_corpus_ray

    if getattr(args, "backend", "torch") != "torch":
        raise ParameterError("--engine ray runs the torch backend; leave --backend unset.")
    gpus = {"auto": None, "cpu": 0, "cuda": 1}.get(args.device, -1)
    if gpus == -1:
        raise ParameterError("--engine ray takes --device auto, cpu or cuda (one GPU per actor).")
    kwargs = {} if args.batch_size is None else {"batch_size": args.batch_size}
    report = embed_corpus_ray(
        store,
        args.name,
        model=args.model,
        precision=args.precision,
        address=args.address,
        num_actors=args.actors,
        num_gpus_per_actor=gpus,
        shard_dir=args.shards,
        **kwargs,
    )
    _emit(args, report.__dict__, [report.summary()])


def cmd_list(args, store: Store) -> None:
    corpora = store.list_corpora()
    data = [c.__dict__ for c in corpora]
    lines = [f"{'name':30} {'texts':>9}  created              source"]
    lines += [
        f"{c.name[:30]:30} {c.n_docs:>9,}  {c.created:%Y-%m-%d %H:%M:%S}  {c.source or ''}" for c in corpora
    ] or ["(no corpora yet: embex ingest FILE --name NAME)"]
    _emit(args, {"store": str(store.path), "corpora": data}, lines)


def _model_key(store: Store, name: str, model) -> str:
    """The cache key of the corpus's complete vectors from ``model`` (whatever precision made
    them); when there is none, the key ``embed`` would write, so the error says what to do."""
    from .embedding import embedding_key, stored_model_id

    return stored_model_id(store, name, model) or embedding_key(model)


def _vectors(store: Store, name: str, model):
    """The corpus's vectors for a model given as on the command line."""
    return store.vectors(name, _model_key(store, name, model))


def cmd_depth(args, store: Store) -> None:
    from . import depth_percentile, median_index, most_central, most_outlying, tte_depth

    d = tte_depth(_vectors(store, args.name, args.model), distance=args.distance)
    texts = store.texts(args.name)
    pct = depth_percentile(d)

    def rows(idx):
        return [
            {"position": int(i), "depth": float(d[i]), "percentile": float(pct[i]), "text": texts[i]}
            for i in idx
        ]

    med = median_index(d)
    central, outlying = rows(most_central(d, args.top)), rows(most_outlying(d, args.top))
    lines = [
        f"TTE depth ({args.distance}) of {len(d):,} texts in {args.name!r}",
        f"Median text (depth {d[med]:.4f}): {_short(texts[med])}",
        "",
        f"Most representative {len(central)}:",
    ]
    lines += [f"  {r['depth']:.4f}  #{r['position']:<6} {_short(r['text'])}" for r in central]
    lines += ["", f"Most outlying {len(outlying)}:"]
    lines += [f"  {r['depth']:.4f}  #{r['position']:<6} {_short(r['text'])}" for r in outlying]
    _emit(
        args,
        {
            "corpus": args.name,
            "distance": args.distance,
            "n": len(d),
            "median": rows([med])[0],
            "most_central": central,
            "most_outlying": outlying,
        },
        lines,
    )


def cmd_outliers(args, store: Store) -> None:
    """The most outlying texts by local depth, global depth or both, each with its nearest
    neighbours (what the Outliers page shows)."""
    from .outliers import find_outliers

    r = find_outliers(
        _vectors(store, args.name, args.model),
        quantile=args.quantile,
        count=args.count,
        k=args.k,
        by=args.by,
        distance=args.distance,
    )
    texts = store.texts(args.name)
    flagged = [
        {
            "rank": rank + 1,
            "position": int(i),
            "score": float(r.scores[i]),
            "depth": float(r.depths[i]),
            "percentile": float(r.percentiles[i]),
            "local_depth": float(r.local_depths[i]),
            "local_percentile": float(r.local_percentiles[i]),
            "text": texts[i],
            "neighbours": [
                {"position": int(j), "similarity": float(sim), "text": texts[j]}
                for j, sim in zip(r.neighbours[rank], r.neighbour_similarity[rank])
            ],
        }
        for rank, i in enumerate(r.flagged)
    ]
    lines = [
        f"{len(flagged):,} of {len(texts):,} texts in {args.name!r} flagged by {args.by} "
        f"({args.distance}, k = {r.k}), most outlying first:",
        "   depth   local  #row    text  (nearest neighbour)",
    ]
    for row in flagged:
        nearest = row["neighbours"][0] if row["neighbours"] else None
        lines.append(
            f"  {row['depth']:.4f}  {row['local_depth']:.4f}  #{row['position']:<6} {_short(row['text'], 70)}"
        )
        if nearest:
            lines.append(f"{'':26}({nearest['similarity']:.3f}: {_short(nearest['text'], 60)})")
    data = {"corpus": args.name, "by": args.by, "distance": args.distance, "k": r.k, "n": len(texts)}
    _emit(args, {**data, "outliers": flagged}, lines)


def cmd_shift(args, store: Store) -> None:
    from . import shift_test
    from .overlap import check_overlap

    F, G = _vectors(store, args.reference, args.model), _vectors(store, args.comparison, args.model)
    r = shift_test(F, G, distance=args.distance, permutations=args.permutations, random_state=args.seed)
    texts_f, texts_g = store.texts(args.reference), store.texts(args.comparison)
    overlap = check_overlap(texts_f, texts_g, F, G)  # shared texts make every test conservative
    r = r.with_notes(overlap.warning())
    summary = r.summary(args.alpha)
    deep_f, out_g = r.examples(args.top)
    data = {
        "reference": args.reference,
        "comparison": args.comparison,
        "q": r.q,
        "q_reference": r.q_reference,
        "w": r.w,
        "p": r.p,
        "p_permutation": r.p_permutation,
        "permutations": r.permutations,
        "n_f": r.n_f,
        "n_g": r.n_g,
        "distance": r.distance,
        "alpha": args.alpha,
        "significant": r.significant(args.alpha),
        "kind": r.kind(args.alpha),
        "p_combined": r.p_any,
        "p_concentrated": r.p_concentrated,
        "p_two_sided": r.p_two_sided,
        "q_concentrated": r.q_concentrated,
        "cross_checks": [c.__dict__ for c in r.checks],
        "overlap": overlap.summary(),
        "summary": summary,
        "most_representative_f": [texts_f[i] for i in deep_f],
        "most_outlying_g": [texts_g[i] for i in out_g],
    }
    lines = [
        f"F = {args.reference!r}, G = {args.comparison!r}",
        summary,
        "",
        f"Most representative texts of {args.reference!r}:",
    ]
    lines += [f"  {_short(texts_f[i])}" for i in deep_f]
    lines += ["", f"Most outlying texts of {args.comparison!r} (relative to {args.reference!r}):"]
    lines += [f"  {_short(texts_g[i])}" for i in out_g]
    _emit(args, data, lines)


def cmd_search(args, store: Store) -> None:
    from .retrieval import build_index, query_settings, search_text

    texts = store.texts(args.name)
    vectors = embedder = None
    if args.method != "bm25":  # BM25 reads words only: no vectors, no model
        from .embedding import Embedder

        key = _model_key(store, args.name, args.model)
        vectors = store.vectors(args.name, key)
        model, precision = query_settings(key)
        embedder = Embedder(model, precision=precision)
    index = build_index(args.method, vectors=vectors, texts=texts)
    hits = search_text(embedder, index, args.query, args.k)
    rows = [
        {"rank": r + 1, "position": int(i), "score": float(sc), "text": texts[i]}
        for r, (i, sc) in enumerate(zip(hits.ids[0], hits.scores[0]))
    ]
    lines = [f"Top {len(rows)} in {args.name!r} for {args.query!r} by {args.method}:"]
    lines += [f"  {r['rank']:>3}. {r['score']:.4f}  #{r['position']:<6} {_short(r['text'])}" for r in rows]
    _emit(args, {"corpus": args.name, "query": args.query, "method": args.method, "hits": rows}, lines)


def cmd_delete(args, store: Store) -> None:
    store.delete_corpus(args.name)
    _emit(args, {"deleted": args.name}, [f"Deleted corpus {args.name!r} (cached vectors kept)."])


def cmd_check(args, store: Store) -> None:
    report = store.check()
    lines = [
        f"{report.path}: {'ok' if report.ok else 'DAMAGED'}; {report.tables_checked} tables read whole",
        *[f"  {t}: {'unreadable' if n is None else f'{n:,} rows'}" for t, n in report.rows.items()],
        *[f"  note: {n}" for n in report.notes],
    ]
    data = {**report.__dict__, "tables_checked": report.tables_checked}
    _emit(args, data, lines)
    if report.ok:
        return
    for problem in report.problems:
        print(f"embex: problem: {problem}", file=sys.stderr)
    raise SystemExit(2)


def cmd_gc(args, store: Store) -> None:
    removed = store.prune_vectors()
    _emit(args, {"removed": removed}, [f"Removed {removed:,} cached vector(s) that no corpus uses."])


def cmd_backup(args, store: None) -> None:
    """A consistent copy of a store (or of every file of a team instance) while it is served:
    copied here when nobody holds the file, else by the server that holds it (analytics.backup)."""
    import os

    from .backup import backup_instance, backup_store

    instance, path = getattr(args, "instance", None), getattr(args, "store", None)
    if instance is not None and path is not None:
        raise ParameterError("Give --store FILE (one workspace) or --instance DIR (all of them), not both.")
    if instance is None and path is None:  # as embex serve: $EMBEX_INSTANCE, else the one store
        instance = os.environ.get("EMBEX_INSTANCE") or None
    waits = {"wait_for_server": args.wait_for_server, "timeout": args.timeout}
    if instance is None:
        results, failures = [backup_store(path or default_store_path(), args.out, **waits)], []
    else:
        done = backup_instance(instance, args.out, **waits)
        results, failures = done.results, done.failures
    _emit(
        args,
        {"backups": [r.__dict__ for r in results], "failures": failures},
        [r.line() for r in results] or ["(nothing to back up)"],
    )
    if failures:
        from .errors import StoreError

        raise StoreError(f"{len(failures)} file(s) were not backed up:\n  " + "\n  ".join(failures))


def cmd_representatives(args, store: Store) -> None:
    from collections import Counter

    from .representatives import pick_representatives

    labels, column = None, args.label_column
    if args.per_label or column:
        metadata = store.metadata(args.name)
        # the corpus's label column, else a metadata column named "label" (embex ingest sets none)
        column = column or store.corpus_info(args.name).label_column
        if column is None and any("label" in m for m in metadata[:1000]):
            column = "label"
        if column is None or not any(column in m for m in metadata[:1000]):
            has = ", ".join(dict.fromkeys(k for m in metadata[:1000] for k in m)) or "none"
            what = "no label column" if column is None else f"no metadata column {column!r}"
            raise ParameterError(
                f"Corpus {args.name!r} has {what} (its metadata columns: {has}); name one with "
                "--label-column COL, or leave out --per-label to pick from the whole corpus."
            )
        labels = [m.get(column) for m in metadata]
    X = _vectors(store, args.name, args.model)
    reps = pick_representatives(
        X,
        args.k,
        labels=labels,
        method=args.method,
        max_similarity=args.max_similarity,
        distance=args.distance,
        random_state=args.seed,
    )
    texts = store.texts(args.name)
    sizes = Counter(labels) if labels is not None else Counter({None: len(X)})
    picks, lines = [], []
    for pick in reps.rows(texts):
        if pick["rank"] == 1:
            where = f"{column} = {pick['label']}" if labels is not None else f"all of {args.name!r}"
            lines += ["", f"{where} ({sizes[pick['label']]:,} texts):"]
        shown = "     —" if pick["depth"] is None else f"{pick['depth']:.4f}"  # a label of one text
        lines.append(f"  {pick['rank']:>3}. {shown}  #{pick['row']:<6} {_short(pick['text'])}")
        picks.append({"position": pick.pop("row"), **pick})
    spread = ""
    if args.method == "depth":
        spread = f", no near-copies (cosine ≥ {args.max_similarity:g})" if args.max_similarity < 1 else ""
    per = f"per {column}" if labels is not None else "overall"
    head = (
        f"{args.k} representative text(s) {per} in {args.name!r} by {args.method}{spread} "
        f"(depth column: {args.distance} depth within the group)"
    )
    _emit(
        args,
        {
            "corpus": args.name,
            "method": args.method,
            "k": args.k,
            "label_column": column if labels is not None else None,
            "max_similarity": args.max_similarity,
            "distance": args.distance,
            "seed": args.seed,
            "picks": picks,
        },
        [head, *lines],
    )


def cmd_import_vectors(args, store: Store) -> None:
    """Read the file a chunk at a time (a .npy memory-mapped, Parquet by batches: no size limit,
    memory bounded by a chunk) and write it in one transaction, so a bad row deep in the file
    leaves the store as it was; progress on stderr."""
    from .embedding import import_vectors

    vectors = open_vectors(args.file, vector_column=args.vector_column, id_column=args.id_column)
    progress, done = _import_progress(args, vectors)
    try:
        added = import_vectors(
            store, args.name, vectors, args.model_id, progress=progress, chunk_rows=args.chunk_rows
        )
    except KeyboardInterrupt:
        print("embex: stopped; nothing was stored (the store is as it was).", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        done()
    _emit(
        args,
        {"name": args.name, "model_id": args.model_id, "rows": vectors.n, "dim": vectors.dim, "added": added},
        [
            f"Imported {vectors.n:,} vectors ({vectors.dim}-d) for {args.name!r} as {args.model_id!r} "
            f"({added:,} new)."
        ],
    )


def _import_progress(args, vectors):
    """``(progress, done)`` for an import: a tqdm bar over the rows when stderr is a terminal,
    else a plain line every 10 s (a quick import prints none); nothing with --json."""
    import time

    if args.json:
        return None, lambda: None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(
            total=vectors.n,
            unit=" vectors",
            unit_scale=True,
            desc=f"importing {vectors.source}",
            file=sys.stderr,
        )

        def progress(rows: int, total: int) -> None:
            bar.update(rows - bar.n)

        return progress, bar.close
    last = [time.monotonic()]

    def progress(rows: int, total: int) -> None:
        if time.monotonic() - last[0] >= 10:
            last[0] = time.monotonic()
            print(
                f"embex: importing {vectors.source}: {rows:,} of {total:,} vectors",
                file=sys.stderr,
                flush=True,
            )

    return progress, lambda: None


def cmd_report(args, store: Store) -> None:
    from .export import figure_image
    from .report import build_report

    map_params = _map_params(args)
    out = _report_out(args.out, args.force)  # before the work: a wrong --out fails at once
    report = build_report(
        store,
        args.name,
        _model_key(store, args.name, args.model),
        compare=args.compare,
        method=args.method,
        permutations=args.permutations,
        map_params=map_params,
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.html, encoding="utf-8")
    except OSError as exc:  # no permission, a file where a folder should be, a full disk...
        raise ParameterError(f"Cannot write the report to {str(out)!r}: {exc.strerror or exc}.") from None
    written = [str(out)]
    if args.png_dir:
        png_dir = Path(args.png_dir)
        png_dir.mkdir(parents=True, exist_ok=True)
        for key, fig in report.figures.items():
            path = png_dir / f"{key}.png"
            path.write_bytes(figure_image(fig, "png", scale=args.scale))
            written.append(str(path))
    data = {"report": str(out), "files": written}
    if report.shift is not None:
        data.update(q=report.shift.q, p=report.shift.p, p_permutation=report.shift.p_permutation)
    _emit(args, data, [f"Wrote {f}" for f in written])


def _report_out(path: str, force: bool) -> Path:
    """``--out`` as a path to write, or a :class:`ParameterError` when it is a folder, or a file
    that exists and ``--force`` was not given (a report never silently replaces one)."""
    out = Path(path)
    if out.is_dir():
        raise ParameterError(
            f"--out {path!r} is a folder; give the report's file name, e.g. --out {str(out / 'report.html')!r}."
        )
    if out.exists() and not force:
        raise ParameterError(
            f"--out {path!r} already exists; pass --force to replace it, or pick another name."
        )
    return out


def _map_params(args) -> dict:
    """The map parameters given on the command line; one of another method is an error."""
    given = {name: value for name in args.map_options if (value := getattr(args, f"map_{name}")) is not None}
    takes = RULES[args.method]
    wrong = [f"--{name.replace('_', '-')}" for name in given if name not in takes]
    if wrong:
        options = ", ".join(f"--{n.replace('_', '-')}" for n in takes) or "no parameters"
        raise ParameterError(
            f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to "
            f"--method {args.method} (it takes {options})."
        )
    return given


def _rule_type(rule: Rule):
    """An argparse ``type`` that parses and checks a value by its rule, so a value out of range
    fails as a usage error that says the range."""

    def parse(text: str):
        try:
            return rule.parse(text)
        except ParameterError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = rule.name
    return parse


def _rule_help(rule: Rule, before: str = "") -> str:
    """Help text from the rule: ``"2–200, default 15: neighbours each text's layout..."``."""
    # a choice's values are in its metavar already
    where = f"default {rule.default}" if rule.kind == "choice" else rule.describe()
    return f"{before}{where}: {rule.help}".replace("%", "%%")


def _rule_option(
    parser, rule: Rule, flag: str | None = None, *, default=..., before: str = "", **kwargs
) -> None:
    """An option whose type, range, default and help come from ``rule`` (analytics/params.py)."""
    metavar = "{" + ",".join(map(str, rule.choices)) + "}" if rule.kind == "choice" else "N"
    parser.add_argument(
        flag or f"--{rule.name.replace('_', '-')}",
        type=_rule_type(rule),
        default=rule.default if default is ... else default,
        metavar=metavar,
        help=_rule_help(rule, before),
        **kwargs,
    )


def _map_options(parser) -> None:
    """One option per map parameter (--n-neighbors, --min-dist, --perplexity, --metric), each
    from its rule; a name several methods share is one option."""
    methods = RULES["projection"]["method"].choices
    owners: dict[str, list[str]] = {}
    for method in methods:
        for name in RULES[method]:
            owners.setdefault(name, []).append(method)
    for name, which in owners.items():
        # unset means the method's own default, so a parameter of another method is noticed
        _rule_option(
            parser,
            RULES[which[0]][name],
            default=None,
            dest=f"map_{name}",
            before=f"with --method {' or '.join(which)}: ",
        )
    parser.set_defaults(map_options=list(owners))


def cmd_screenshot(args, store: None) -> None:
    from .screenshot import screenshot_urls

    paths = screenshot_urls(args.urls, args.out, width=args.width, height=args.height)
    _emit(args, {"files": [str(p) for p in paths]}, [f"Wrote {p}" for p in paths])


def _job_lines(jobs) -> list[str]:
    import time

    if not jobs:
        return ["(no jobs yet: the dashboard records its embeddings and maps here)"]
    lines = [f"{'job':>5}  {'kind':8} {'state':10} {'created':19}  what"]
    for j in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created))
        detail = j.describe().split(" ", 2)[-1]  # without "#id kind"
        lines.append(f"{j.id:>5}  {j.kind:8} {j.state:10} {created}  {_short(detail, 80)}")
    return lines


def cmd_jobs(args, store: None) -> None:
    """List or cancel jobs. While the dashboard holds the store, list what it last published
    beside the store, and leave it a cancel request."""
    from .errors import StoreLockedError
    from .jobs import Job, published_jobs, request_cancel

    path = getattr(args, "store", None) or default_store_path()
    try:
        store = Store(path, read_only=args.action == "list" and Path(path).exists())
    except StoreLockedError:
        published = published_jobs(path)
        if args.action == "cancel":
            request_cancel(path, args.id)
            _emit(
                args,
                {"requested": args.id},
                [
                    f"Asked the process that holds {path} (the dashboard) to cancel job {args.id}; "
                    "`embex jobs` shows when it has stopped."
                ],
            )
            return
        if published is None:
            raise
        pid, written, jobs = published
        _emit(
            args,
            {"pid": pid, "written": written, "jobs": [j.__dict__ for j in jobs]},
            [f"The store is held by process {pid} (the dashboard); its jobs as it last published them:"]
            + _job_lines(jobs),
        )
        return
    with store:
        if args.action == "cancel":
            rows = store.job_rows(job_id=args.id, limit=1)
            if not rows:
                raise ParameterError(f"There is no job {args.id} in {path}; `embex jobs` lists them.")
            job = Job.from_row(rows[0])
            if job.active:  # no process holds the store, so nothing runs it: it ends here
                import time

                store.update_job(
                    job.id, state="cancelled", finished=time.time(), message="cancelled from the CLI"
                )
            _emit(args, {"cancelled": job.id}, [f"Job {job.id} is cancelled."])
            return
        if store.schema_version() < 5:
            jobs = []
        else:
            jobs = [Job.from_row(r) for r in store.job_rows(limit=args.limit)]
        _emit(args, {"jobs": [j.__dict__ for j in jobs]}, _job_lines(jobs))


def cmd_serve(args, store: None) -> None:
    """Start the dashboard with its job executor (``dashboard/serve.py``, run in place of this
    process: the library itself never imports streamlit)."""
    import os

    instance = getattr(args, "instance", None)
    if instance is None and getattr(args, "store", None) is None and os.environ.get("EMBEX_INSTANCE"):
        instance = Path(os.environ["EMBEX_INSTANCE"])
    if instance is not None:
        where = ["--instance", str(Path(instance).expanduser().resolve())]
    else:
        where = [
            "--store",
            str(Path(getattr(args, "store", None) or default_store_path()).expanduser().resolve()),
        ]
    serve = Path(__file__).resolve().parent.parent / "dashboard" / "serve.py"
    argv = [
        sys.executable,
        str(serve),
        *where,
        "--port",
        str(args.port),
        "--address",
        args.address,
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


# -- a team instance: people, workspaces, roles, audit, settings (analytics.instance) ----------------

#: who the accounts' change log names for changes made here
_CLI_ACTOR = "cli"


def _instance(args, *, create: bool = False):
    """The instance of ``--instance DIR``, else ``$EMBEX_INSTANCE``, else a clear error."""
    from .instance import Instance

    root = getattr(args, "instance", None)
    return Instance.from_env(create=create) if root is None else Instance(root, create=create)


def _printable(text) -> str:
    """Stored text shown in a terminal: control characters (escape sequences, newlines) as
    escapes, so a name or an audit detail cannot move the cursor or fake a line."""
    text = "" if text is None else str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _read_password(args, name: str) -> str:
    """A password from standard input (its first line; ``--password-stdin``, or whenever stdin
    is not a terminal), else typed twice at a prompt that does not echo. Never an argument:
    arguments are visible to every user of the machine (ps) and kept in shell history."""
    if getattr(args, "password_stdin", False) or not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise ParameterError(
                "No password on standard input (give it on the first line), or pass --no-password "
                "for someone who signs in through the identity provider; nothing was changed."
            )
        return password
    import getpass

    try:
        first = getpass.getpass(f"Password for {name}: ")
        again = getpass.getpass("The same password again: ")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        raise ParameterError("No password given; nothing was changed.") from None
    if first != again:
        raise ParameterError("The two passwords differ; nothing was changed.")
    return first


def _when(seconds) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def cmd_user(args, store: None) -> None:
    """Add, remove, change and list the people of an instance."""
    from .accounts import user_name, workspace_name

    action = args.user_action
    instance = _instance(args, create=action == "add")
    accounts = instance.accounts
    if action == "list":
        import time

        now, users = time.time(), accounts.users()
        roles = {u.name: accounts.memberships(u.name) for u in users}
        data = [
            {
                **u.__dict__,
                "locked": u.locked(now),
                "workspaces": {m.workspace: m.role for m in roles[u.name]},
            }
            for u in users
        ]
        lines = [f"{'user':40} {'password':8}  {'state':24} workspaces"]
        for u in users:
            state = f"locked until {_when(u.locked_until)}" if u.locked(now) else "ok"
            if state == "ok" and u.failures:
                state = f"{u.failures} failed sign-in(s)"
            where = ", ".join(f"{m.workspace} ({m.role})" for m in roles[u.name]) or "none"
            lines.append(f"{u.name:40} {'yes' if u.has_password else 'no':8}  {state:24} {where}")
        if not users:
            lines = ["(no users yet: embex user add NAME)"]
        _emit(args, {"instance": str(instance.root), "users": data}, lines)
        return
    name = user_name(args.name)
    if action == "add":
        if args.role is not None and args.workspace is None:
            raise ParameterError("--role needs --workspace W: the workspace the role is in.")
        workspace = None if args.workspace is None else workspace_name(args.workspace)
        if workspace is not None and not accounts.has_workspace(workspace):  # before anything changes
            raise ParameterError(
                f"There is no workspace named {workspace!r}; create it first (embex workspace add "
                f"{workspace}). Nothing was changed."
            )
        if accounts.user(name) is not None:  # before asking for a password
            raise ParameterError(
                f"A user named {name!r} already exists (embex user passwd changes a password)."
            )
        password = None if args.no_password else _read_password(args, name)
        accounts.add_user(name, password, by=_CLI_ACTOR)
        role = None
        if workspace is not None:
            role = args.role or "viewer"
            accounts.set_role(name, workspace, role, by=_CLI_ACTOR, keep_admin=False)
        how = "signs in through the identity provider" if password is None else "password set"
        where = f", {role} in workspace {workspace!r}" if workspace else ""
        _emit(
            args,
            {"user": name, "password": password is not None, "workspace": workspace, "role": role},
            [f"Added user {name!r} ({how}{where})."],
        )
    elif action == "remove":
        accounts.remove_user(name, by=_CLI_ACTOR, keep_admin=False)
        _emit(args, {"removed": name}, [f"Removed user {name!r} and their roles."])
    elif action == "passwd":
        if accounts.user(name) is None:  # before asking for a password
            raise ParameterError(f"There is no user named {name!r} (embex user list shows them).")
        accounts.set_password(name, _read_password(args, name), by=_CLI_ACTOR)
        _emit(args, {"user": name, "password": True}, [f"Set the password of {name!r} (and unlocked it)."])
    elif action == "role":
        role = None if args.role == "none" else args.role
        before = accounts.set_role(name, args.workspace, role, by=_CLI_ACTOR, keep_admin=False)
        workspace = workspace_name(args.workspace)
        _emit(
            args,
            {"user": name, "workspace": workspace, "role": role, "before": before},
            [
                f"{name!r} in {workspace!r}: {before or 'no role'} -> {role or 'no role'}"
                + ("" if role else " (no longer a member)")
                + "."
            ],
        )
    elif action == "unlock":
        accounts.unlock(name, by=_CLI_ACTOR)
        _emit(args, {"unlocked": name}, [f"Unlocked {name!r}; failed sign-ins forgotten."])


def cmd_workspace(args, store: None) -> None:
    """Create and list the workspaces of an instance (each its own store file)."""
    action = args.workspace_action
    instance = _instance(args, create=action == "add")
    if action == "add":
        path = instance.create_workspace(args.name, by=_CLI_ACTOR)
        name = path.stem
        _emit(
            args,
            {"workspace": name, "path": str(path)},
            [
                f"Created workspace {name!r} ({path}). Give people a role in it: embex user role NAME {name} ROLE."
            ],
        )
        return
    rows = [
        {
            "workspace": name,
            "path": str(instance.workspace_path(name)),
            "exists": instance.workspace_path(name).exists(),
            "members": {m.user: m.role for m in instance.accounts.members(name)},
        }
        for name in instance.workspaces()
    ]
    lines = [f"{'workspace':40} {'members':>7}  file"]
    lines += [
        f"{r['workspace']:40} {len(r['members']):>7}  {r['path']}{'' if r['exists'] else '  (MISSING)'}"
        for r in rows
    ] or ["(no workspaces yet: embex workspace add NAME)"]
    _emit(args, {"instance": str(instance.root), "workspaces": rows}, lines)


def cmd_audit(args, store: None) -> None:
    """A workspace's audit log (also while the dashboard holds its store: as last published
    beside it), or without --workspace the instance's sign-ins and account changes."""
    from .errors import StoreLockedError

    instance = _instance(args)
    if args.workspace is None:
        entries = [
            {
                "time": e.time,
                "user": e.user or "(not a user)",
                "action": f"sign-in {e.outcome}",
                "target": e.method,
                "detail": "",
            }
            for e in instance.accounts.sign_ins(args.limit)
        ] + [
            {"time": c.time, "user": c.actor, "action": c.action, "target": c.target, "detail": c.detail}
            for c in instance.accounts.changes(args.limit)
        ]
        entries = sorted(entries, key=lambda e: -e["time"])[: args.limit]
        head = [f"Sign-ins and account changes of the instance {instance.root}, newest first:"]
        data = {"instance": str(instance.root), "entries": entries}
    else:
        from . import audit
        from .accounts import workspace_name

        name = workspace_name(args.workspace)
        if not instance.accounts.has_workspace(name):
            raise ParameterError(f"There is no workspace named {name!r} (embex workspace list shows them).")
        path = instance.workspace_path(name)
        try:
            with Store(path, read_only=True) as ws:
                rows = audit.recent(ws, args.limit)
            head = [f"Audit log of workspace {name!r}, newest first:"]
            data = {"workspace": name}
        except StoreLockedError:
            published = audit.published(path)
            if published is None:
                raise
            pid, written, rows = published
            rows = rows[: args.limit]
            head = [
                f"The store of {name!r} is held by process {pid} (the dashboard); its audit log as "
                f"published at {_when(written)}, newest first:"
            ]
            data = {"workspace": name, "pid": pid, "written": written}
        entries = [{k: v for k, v in e.__dict__.items() if k != "id"} for e in rows]
        data["entries"] = entries
    lines = head + [
        f"  {_when(e['time'])}  {_printable(e['user'])[:40]:20} {_printable(e['action'])[:30]:14} "
        f"{_short(_printable(e['target']), 60)}"
        + (f"  ({_short(_printable(e['detail']), 60)})" if e["detail"] else "")
        for e in entries
    ]
    if not entries:
        lines.append("  (nothing recorded yet)")
    _emit(args, data, lines)


def cmd_settings(args, store: None) -> None:
    """The effective limits: of --file F, else of the instance (--instance or $EMBEX_INSTANCE),
    else of $EMBEX_SETTINGS, else the defaults; --markdown prints the documentation table."""
    import os

    from .instance import ENV as INSTANCE_ENV
    from .settings import SETTINGS, load_settings, settings_markdown

    if args.markdown:
        print(settings_markdown(), end="")
        return
    if args.file is not None:
        settings = load_settings(args.file)
    elif getattr(args, "instance", None) is not None or os.environ.get(INSTANCE_ENV):
        settings = _instance(args).settings
    else:
        settings = load_settings()
    source = settings.source or "defaults (no settings file)"
    lines = [f"Settings from {source}:"]
    for name, rule in SETTINGS.items():
        value = getattr(settings, name)
        mark = "" if value == rule.default else f"   (default {rule.default:,})"
        lines.append(f"  {name:30} {value:>13,}{mark}")
    _emit(args, {"source": settings.source, "settings": settings.as_dict()}, lines)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        type=Path,
        default=argparse.SUPPRESS,
        help="store file (default: $EMBEX_STORE or the user data directory)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    p = argparse.ArgumentParser(
        prog="embex", parents=[common], description="Embedding Explorer from the command line."
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ingest", parents=[common], help="read a corpus file into the store")
    s.add_argument("file")
    s.add_argument("--name", required=True)
    s.add_argument("--text-column")
    s.add_argument("--format", choices=["csv", "tsv", "jsonl", "parquet", "txt"])
    s.add_argument("--encoding", default="utf-8")
    s.add_argument(
        "--max-mb",
        type=float,
        default=None,
        help="refuse files larger than this (default: no limit). Files on disk are "
        "streamed in chunks, so their size does not bound memory; the 200 MiB "
        "limit applies only where a whole input is loaded in memory (dashboard "
        "uploads, load_corpus)",
    )
    s.add_argument(
        "--chunk-rows",
        type=int,
        default=DEFAULT_CHUNK_ROWS,
        help=f"rows read and written at a time (default {DEFAULT_CHUNK_ROWS:,}); bounds memory",
    )
    s.add_argument(
        "--max-rows", type=int, default=None, help="refuse files with more rows than this (default: no limit)"
    )
    s.add_argument(
        "--max-text-chars",
        type=int,
        default=DEFAULT_MAX_TEXT_CHARS,
        help=f"refuse a text (or metadata value) longer than this many characters, naming its row "
        f"(default {DEFAULT_MAX_TEXT_CHARS:,}; 0: no limit)",
    )
    s.add_argument("--replace", action="store_true", help="replace a corpus of the same name")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("embed", parents=[common], help="embed a corpus (only texts not cached)")
    s.add_argument("name")
    s.add_argument(
        "--model", default=None, help="model name or local path (default: bundled all-MiniLM-L6-v2)"
    )
    s.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    s.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="auto: float16 on CUDA, bfloat16 on a CPU with native bf16, else float32; "
        "the store keeps each precision under its own key",
    )
    s.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnx", "openvino"],
        help="inference backend (onnx/openvino need their packages installed)",
    )
    s.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="most texts per forward pass (default 1024 on CUDA, 256 on CPU)",
    )
    s.add_argument(
        "--engine",
        default="local",
        choices=["local", "ray"],
        help="local: this process; ray: actors on a Ray cluster (pip install 'embedding-explorer[ray]')",
    )
    s.add_argument(
        "--address",
        default=None,
        help="with --engine ray: 'auto' (the cluster of `ray start`), ray://HEAD:10001, "
        "or unset for a local cluster on this machine",
    )
    s.add_argument(
        "--actors",
        type=int,
        default=None,
        help="with --engine ray: model copies (default: one per GPU, else one per CPU)",
    )
    s.add_argument(
        "--shards",
        default=None,
        metavar="DIR",
        help="with --engine ray: folder for the vector shards; on several machines, "
        "storage every node and this one share (NFS, a mounted bucket)",
    )
    s.set_defaults(func=cmd_embed)

    s = sub.add_parser("list", parents=[common], help="list corpora")
    s.set_defaults(func=cmd_list, read_only=True)

    s = sub.add_parser("depth", parents=[common], help="rank a corpus's texts by TTE depth")
    s.add_argument("name")
    _rule_option(s, RULES["depth"]["top"])
    s.add_argument("--model", default=None)
    s.add_argument("--distance", choices=["cosine", "chord"], default="cosine")
    s.set_defaults(func=cmd_depth, read_only=True)

    rules = RULES["outliers"]
    s = sub.add_parser(
        "outliers", parents=[common], help="the most outlying texts (local or global depth), with neighbours"
    )
    s.add_argument("name")
    _rule_option(s, rules["by"])
    share = s.add_mutually_exclusive_group()
    _rule_option(share, rules["quantile"])
    share.add_argument(
        "--count",
        type=_rule_type(rules["count"]),
        default=None,
        metavar="N",
        help=f"at least 1: {rules['count'].help}",
    )
    _rule_option(s, rules["k"])
    s.add_argument("--model", default=None)
    s.add_argument("--distance", choices=["cosine", "chord"], default="cosine")
    s.set_defaults(func=cmd_outliers, read_only=True)

    s = sub.add_parser("shift", parents=[common], help="has corpus G shifted away from F?")
    s.add_argument("reference", metavar="F")
    s.add_argument("comparison", metavar="G")
    s.add_argument("--model", default=None)
    s.add_argument("--distance", choices=["cosine", "chord"], default="cosine")
    _rule_option(s, RULES["shift"]["permutations"])
    _rule_option(s, RULES["shift"]["alpha"])
    s.add_argument("--seed", type=int, default=0)
    _rule_option(s, RULES["shift"]["top"])
    s.set_defaults(func=cmd_shift, read_only=True)

    s = sub.add_parser("search", parents=[common], help="the texts of a corpus that best match a query")
    s.add_argument("name", metavar="CORPUS")
    s.add_argument("query", metavar="QUERY")
    _rule_option(s, RULES["retrieval"]["method"])
    _rule_option(s, RULES["retrieval"]["k"], "-k")
    s.add_argument("--model", default=None, help="with --method dense or hybrid: the corpus's model")
    s.set_defaults(func=cmd_search, read_only=True)

    s = sub.add_parser("delete", parents=[common], help="delete a corpus")
    s.add_argument("name")
    s.set_defaults(func=cmd_delete)

    s = sub.add_parser("report", parents=[common], help="write a self-contained HTML report")
    s.add_argument("name")
    s.add_argument("--compare", metavar="NAME2", help="also test whether NAME2 has shifted away from NAME")
    s.add_argument("--out", required=True, help="FILE.html (an existing file only with --force)")
    s.add_argument("--force", action="store_true", help="replace --out if it exists")
    s.add_argument("--model", default=None)
    _rule_option(s, RULES["projection"]["method"], before="the map: ")
    _map_options(s)
    _rule_option(s, RULES["shift"]["permutations"], before="with --compare: ")
    s.add_argument("--png-dir", help="also write each figure as a PNG here")
    s.add_argument("--scale", type=float, default=2.0, help="PNG scale (2 = twice 1200x700)")
    s.set_defaults(func=cmd_report, read_only=True)

    s = sub.add_parser(
        "screenshot", parents=[common], help="save PNGs of pages (deep links) in headless Chromium"
    )
    s.add_argument("urls", nargs="+", metavar="URL")
    s.add_argument("--out", required=True, help="folder for the PNGs")
    s.add_argument("--width", type=int, default=1400)
    s.add_argument("--height", type=int, default=900)
    # no store: it runs beside the dashboard, which holds the store file open
    s.set_defaults(func=cmd_screenshot, needs_store=False)

    s = sub.add_parser("check", parents=[common], help="read the whole store and report damage")
    s.set_defaults(func=cmd_check, read_only=True)

    s = sub.add_parser("gc", parents=[common], help="remove cached vectors that no corpus uses")
    s.set_defaults(func=cmd_gc)

    s = sub.add_parser(
        "backup",
        parents=[common],
        help="a consistent copy of a store, or of a team instance, while it is served",
    )
    s.add_argument(
        "--instance",
        type=Path,
        metavar="DIR",
        help="back up every workspace, the accounts and the settings (default: $EMBEX_INSTANCE, "
        "else --store's one store)",
    )
    s.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="folder for <name>-<UTC time> files"
    )
    s.add_argument(
        "--wait-for-server",
        type=float,
        default=15.0,
        metavar="S",
        help="when a server holds the store: how long it has to take the request (default 15 s)",
    )
    s.add_argument(
        "--timeout", type=float, default=3600.0, metavar="S", help="the longest wait for a copy (default 1 h)"
    )
    s.set_defaults(func=cmd_backup, needs_store=False)

    s = sub.add_parser(
        "representatives", parents=[common], help="pick k representative texts, per label or overall"
    )
    s.add_argument("name")
    _rule_option(s, RULES["representatives"]["k"], "-k")
    s.add_argument(
        "--per-label",
        action="store_true",
        help="k per label (the corpus's label column, else its metadata column 'label')",
    )
    s.add_argument("--label-column", metavar="COL", help="k per value of this metadata column")
    _rule_option(s, RULES["representatives"]["method"])
    _rule_option(s, RULES["representatives"]["max_similarity"])
    s.add_argument("--seed", type=int, default=0, help="seed of --method medoid and random (default 0)")
    s.add_argument("--model", default=None)
    s.add_argument("--distance", choices=["cosine", "chord"], default="cosine")
    s.set_defaults(func=cmd_representatives, read_only=True)

    s = sub.add_parser("jobs", parents=[common], help="list the dashboard's background jobs, or cancel one")
    s.add_argument("action", nargs="?", choices=["list", "cancel"], default="list")
    s.add_argument("id", nargs="?", type=int, help="the job to cancel")
    s.add_argument("--limit", type=int, default=30, help="how many of the newest jobs to list")
    s.set_defaults(func=cmd_jobs, needs_store=False)

    s = sub.add_parser("serve", parents=[common], help="start the dashboard (and its background jobs)")
    s.add_argument("--port", type=int, default=8501)
    s.add_argument(
        "--address",
        default="localhost",
        help="localhost (default): only this machine. Any other address needs --instance with "
        "sign-in configured (see docs/deploy.md); without it the server refuses to start.",
    )
    s.add_argument(
        "--instance",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="serve a team instance: its workspaces, with sign-in (default: $EMBEX_INSTANCE, "
        "else --store's single store)",
    )
    s.set_defaults(func=cmd_serve, needs_store=False)

    # a team instance: --instance DIR (or $EMBEX_INSTANCE) instead of --store
    from .access import ROLES

    team = argparse.ArgumentParser(add_help=False)
    team.add_argument(
        "--instance",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="the instance directory (default: $EMBEX_INSTANCE)",
    )
    team.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    team_common = [team]  # no --store: an instance's stores are its workspaces
    user = sub.add_parser("user", parents=team_common, help="people of a team instance and their roles")
    users = user.add_subparsers(dest="user_action", required=True)
    s = users.add_parser("add", parents=team_common, help="add a person (password from a prompt or stdin)")
    s.add_argument("name", metavar="NAME", help="user name or e-mail address (case does not matter)")
    how = s.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first line of stdin"
    )
    how.add_argument(
        "--no-password", action="store_true", help="no password: signs in through the identity provider only"
    )
    s.add_argument("--workspace", metavar="W", help="also give them a role in workspace W")
    s.add_argument("--role", choices=ROLES, help="their role in --workspace (default viewer)")
    s = users.add_parser("remove", parents=team_common, help="remove a person and their roles")
    s.add_argument("name", metavar="NAME")
    s = users.add_parser("passwd", parents=team_common, help="set a password (and unlock the account)")
    s.add_argument("name", metavar="NAME")
    s.add_argument("--password-stdin", action="store_true", help="read it from the first line of stdin")
    s = users.add_parser("role", parents=team_common, help="set a person's role in a workspace")
    s.add_argument("name", metavar="NAME")
    s.add_argument("workspace", metavar="WORKSPACE")
    s.add_argument("role", choices=[*ROLES, "none"], help="none: take them out of the workspace")
    s = users.add_parser("unlock", parents=team_common, help="end a lock-out after failed sign-ins")
    s.add_argument("name", metavar="NAME")
    users.add_parser("list", parents=team_common, help="people, their workspaces and roles")
    user.set_defaults(func=cmd_user, needs_store=False)

    ws = sub.add_parser("workspace", parents=team_common, help="workspaces of a team instance")
    workspaces = ws.add_subparsers(dest="workspace_action", required=True)
    s = workspaces.add_parser("add", parents=team_common, help="create a workspace (its own store file)")
    s.add_argument("name", metavar="NAME", help="1-40 of a-z, 0-9 and -")
    workspaces.add_parser("list", parents=team_common, help="workspaces, their members and files")
    ws.set_defaults(func=cmd_workspace, needs_store=False)

    s = sub.add_parser(
        "audit", parents=team_common, help="a workspace's audit log, or the instance's sign-ins and changes"
    )
    s.add_argument("--workspace", metavar="W", help="the workspace (default: the instance's own log)")
    _rule_option(s, Rule("limit", "int", 50, low=1, high=10_000, help="newest entries shown"))
    s.set_defaults(func=cmd_audit, needs_store=False)

    s = sub.add_parser("settings", parents=team_common, help="the limits in effect (settings.toml)")
    s.add_argument("--file", type=Path, metavar="F", help="check and show this settings file")
    s.add_argument("--markdown", action="store_true", help="print every setting as a Markdown table")
    s.set_defaults(func=cmd_settings, needs_store=False)

    s = sub.add_parser("import-vectors", parents=[common], help="cache precomputed vectors")
    s.add_argument("name")
    s.add_argument(
        "file",
        help=".npy (n_texts, dim) array, .npz (vectors, ids) or .parquet with a list column; any size: "
        "it is read a chunk at a time",
    )
    s.add_argument("--model-id", required=True, help="a name for the model that made them")
    s.add_argument(
        "--vector-column", help="Parquet: the list column holding the vectors (default: the only one)"
    )
    s.add_argument("--id-column", help="Parquet: the column of document positions (default: 'id' if present)")
    s.add_argument(
        "--chunk-rows",
        type=int,
        default=None,
        help=f"vectors read and written at a time (default {DEFAULT_VECTOR_CHUNK_ROWS:,}, fewer for vectors "
        "over 384-d: at most 96 MiB); bounds memory",
    )
    s.set_defaults(func=cmd_import_vectors)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    store_path = getattr(args, "store", None) or default_store_path()
    try:
        if getattr(args, "action", None) == "cancel" and args.id is None:
            raise ParameterError("Which job? `embex jobs cancel ID` (`embex jobs` lists them).")
        if not getattr(args, "needs_store", True):
            args.func(args, None)
            return 0
        # read-only commands open an existing store read-only (a missing one is created as
        # before, except by check); check opens a damaged store to say what still reads
        read_only = getattr(args, "read_only", False) and (
            args.func is cmd_check or Path(store_path).exists()
        )
        on_damage = "allow" if args.func is cmd_check else "raise"
        with Store(store_path, read_only=read_only, on_damage=on_damage) as store:
            args.func(args, store)
    except ExplorerError as exc:  # a user error: its message says what to do
        print(f"embex: error: {exc}", file=sys.stderr)
        return 2
    # anything else is a bug: it propagates, with its traceback and exit status 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
