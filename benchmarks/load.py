"""Load test of a hosted team instance (issue 15): many people using it at once.

    .venv/bin/python benchmarks/load.py                 # 25 sessions, 5 minutes, 100k texts per corpus
    .venv/bin/python benchmarks/load.py --quick         # smoke run: 2 sessions, 30 s, 5k texts per corpus
    .venv/bin/python benchmarks/load.py --quick --sessions 4 --minutes 1.5 --port 8780 --work /tmp/x

What runs, all on this machine over loopback:

- A team instance (``WORK/instance-N``, built once and reused): workspaces ``news`` and
  ``intents``, each with two corpora of N texts (default 100,000), so the Shift page has an F and
  a G. Four people with built-in accounts: an editor and a viewer per workspace.
- The texts are real, the 100k are not all distinct: AG News (the 7,600 bundled sample texts and
  their shipped vectors from the bundled model) and CLINC150's test split (4,500 queries,
  embedded once with the bundled model, cached in /tmp/embex-bench). Each corpus takes half of
  its source's texts (news: even / odd rows; intents: five domains / the other five) and repeats
  them as "text (k)" until it holds N; each copy's vector is its text's real vector plus seeded
  Gaussian noise (sigma 0.015 a dimension, cosine ~0.96 to the original), imported as
  precomputed vectors under the bundled model's id, so the pages treat the corpora as embedded.
- The real server (``embex serve --instance``), serving a copy of analytics/ and dashboard/
  taken at the start (others edit the tree meanwhile, and Streamlit reloads changed modules).
- Sessions (``--sessions``, default 25) that speak Streamlit's own websocket protocol
  (:class:`Wire`): the BackMsg/ForwardMsg protobufs the frontend sends and receives, with the
  same widget states, page changes, fragment auto-reruns and message cache, so the server does
  the work a browser asks of it, minus the drawing. Two Chromium sessions more (``--browsers``)
  time pages as a person sees them, drawn (WebGL map included), while the others load the
  server. ``--clients browser`` makes every session a Chromium context instead: on two cores
  Chromium drawing 10 pages at once already took more CPU than the server (47% against 31%,
  page p50 23 s, no errors), and 25 timed out (180 s), so 25 browsers measure the client
  machine, not the server; a real team's browsers run on their own machines.
- Each session signs in once, then loops until the time is up: pick Map, Depth, Shift test or
  Retrieval (a quarter each) as the sidebar does, wait until it is drawn (the script run ended
  with the page's chart or input; in Chromium, drawn on the page), think 1-3 s. The Shift test
  runs nothing on arrival: its visit opens the page (two corpora, F and G the workspace's two)
  and presses Run, and is timed from the sidebar to the verdict's chart (the stored result of
  the cold pass, read again).
  Varying requests: a fifth of the Map/Depth/Retrieval visits switch to the workspace's other
  corpus ("corpus switch"), three in ten Map visits then search for a word in "Select texts
  containing" ("map highlight": the map highlights the "search hits" and says "N of M texts
  selected"), and every Retrieval visit runs a random query of a fixed list by a random method
  (dense half the time, BM25 or hybrid the rest; "search"). A search is the session's selection
  of that corpus from then on (and in its URL as q=), as for a person: a later Depth visit of
  that corpus ranks the selected texts (its chart says "N selected texts").

What is measured: a cold pass first (timed separately), in which one editor per workspace opens
every page for both corpora, which computes and caches in the store the UMAP maps and the shift
tests (background jobs) and warms the process's caches (vectors, depths, indexes, the model);
then the steady state under load. Errors: an exception element, "Something went wrong", any
error alert (a failed job, a user error such as a busy file) but the Shift page's verdict, a
sign-in form where a signed-in page should be, a page without its chart, a timeout, a
lost connection or crashed page, or an error in the server log. Server RSS (the server and its
worker processes, summed VmRSS) at start, after the cold pass, at its peak and at the end; the
clients' PSS; CPU seconds of the server, the clients and the rest of the machine. Then the
server stops and every store file gets ``embex check`` and accounts.sqlite ``PRAGMA
integrity_check``. Exit status 1 on any error.

Bounded: every page wait has a timeout, the load stops at its deadline, and the whole run stops
when the machine's available memory falls under ``--min-free-gib``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402

from analytics.screenshot import serving  # noqa: E402

PYTHON = sys.executable
NOISE = 0.015
PAGES = {"map": "Map", "depth": "Depth", "shift": "Shift test", "retrieval": "Retrieval"}
SWITCH, HIGHLIGHT = 0.2, 0.3  # shares of visits that switch corpus / highlight on the map
METHODS = {"dense": "Dense", "bm25": "BM25", "hybrid": "Hybrid"}
SCORED_BY = {"dense": "cosine similarity", "bm25": "BM25 score", "hybrid": "fused score"}


@dataclass(frozen=True)
class Person:
    name: str
    password: str
    workspace: str
    role: str


PEOPLE = (
    Person("ana", "ana-load-pw-1", "news", "editor"),
    Person("ben", "ben-load-pw-2", "news", "viewer"),
    Person("cai", "cai-load-pw-3", "intents", "editor"),
    Person("dee", "dee-load-pw-4", "intents", "viewer"),
)
QUERIES = {
    "news": [
        "oil prices and the economy",
        "election results",
        "football match tonight",
        "new space mission",
        "stock market falls",
        "software company profits",
        "war in the middle east",
        "olympic gold medal",
        "interest rates rise",
        "mobile phone sales",
        "hurricane damage",
        "tennis final",
    ],
    "intents": [
        "what is my account balance",
        "book a flight to paris",
        "set an alarm for seven",
        "how do I cook rice",
        "my card was declined",
        "what's the weather tomorrow",
        "tell me a joke",
        "schedule a meeting with my boss",
        "how much gas is left in the car",
        "change the language setting",
        "transfer money to savings",
        "turn off the lights",
    ],
}
WORDS = {
    "news": ["oil", "election", "game", "market", "space", "price", "iraq", "microsoft"],
    "intents": ["bank", "flight", "recipe", "alarm", "weather", "card", "car", "meeting"],
}


# -- the instance: two workspaces, two corpora each, four people ----------------------------------


def corpus_names(workspace: str) -> tuple[str, str]:
    return f"{workspace}-a", f"{workspace}-b"


def news_source():
    """The bundled AG News sample: texts, labels and the shipped vectors of the bundled model."""
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    X = np.load(ROOT / "sample_data" / "ag_news.vectors.npy")
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    even = np.arange(len(rows)) % 2 == 0
    return (texts, labels, X, even, ~even)


def intents_source():
    """CLINC150's test split labelled by domain, embedded once (benchmarks/_corpora.py's cache)."""
    from _corpora import DATA, _embedded

    data = json.loads((DATA / "clinc150" / "data_full.json").read_text())
    domains = json.loads((DATA / "clinc150" / "domains.json").read_text())
    domain_of = {intent: d for d, intents in domains.items() for intent in intents}
    texts = [t for t, _ in data["test"]]
    labels = [domain_of[i] for _, i in data["test"]]
    X = _embedded("clinc-test", texts)
    first = np.isin(labels, sorted(domains)[:5])
    return (texts, labels, X, first, ~first)


def variants(texts, labels, X, rows, n: int, seed: int):
    """``n`` texts from the chosen ``rows``: each repeated as "text (k)", with its vector plus
    seeded noise (import_vectors scales the rows back to unit length)."""
    rows = np.flatnonzero(rows)
    pick = rows[np.arange(n) % len(rows)]
    copy = np.arange(n) // len(rows)
    out_texts = [f"{texts[i]} ({k})" for i, k in zip(pick.tolist(), copy.tolist())]
    meta = [{"label": labels[i], "copy": str(k)} for i, k in zip(pick.tolist(), copy.tolist())]
    rng = np.random.default_rng(seed)
    V = X[pick].astype(np.float32) + rng.normal(0, NOISE, size=(n, X.shape[1])).astype(np.float32)
    return out_texts, meta, V


def build_instance(root: Path, n: int) -> None:
    """The instance for ``n`` texts a corpus, built once (a marker file says it is complete)."""
    import shutil

    from analytics import Store, import_vectors
    from analytics.corpus import Corpus
    from analytics.embedding import DEFAULT_MODEL
    from analytics.instance import Instance

    marker = root / "load-ready.json"
    if marker.exists():
        print(f"instance: {root} (built before; its store caches are reused)")
        return
    if root.exists():
        shutil.rmtree(root)
    t0 = time.perf_counter()
    team = Instance(root, create=True)
    for ws, source in (("news", news_source), ("intents", intents_source)):
        team.create_workspace(ws)
        texts, labels, X, rows_a, rows_b = source()
        with Store(team.workspace_path(ws)) as s:
            for seed, (name, rows) in enumerate(zip(corpus_names(ws), (rows_a, rows_b))):
                T, M, V = variants(texts, labels, X, rows, n, seed)
                s.add_corpus(name, Corpus(T, M, "text", "benchmarks/load.py"), label_column="label")
                import_vectors(s, name, V, DEFAULT_MODEL)
                print(f"  {ws}/{name}: {n:,} texts from {int(rows.sum()):,} distinct, vectors imported")
    for p in PEOPLE:
        team.accounts.add_user(p.name, p.password)
        team.accounts.set_role(p.name, p.workspace, p.role)
    marker.write_text(json.dumps({"texts": n, "noise": NOISE}))
    print(f"instance: {root} built in {time.perf_counter() - t0:.0f} s")


# -- the server and the machine --------------------------------------------------------------------


def free_port(port: int = 0) -> int:
    """``port`` if it is free (0: any free port the system gives)."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise SystemExit(f"port {port} is taken ({exc}): pass another with --port") from None
        return s.getsockname()[1]


def snapshot(work: Path) -> tuple[Path, str]:
    """A copy of the code the server runs (analytics/, dashboard/ without node_modules,
    sample_data/) and a short hash of it: other people edit the tree while a run lasts, and
    Streamlit reloads changed modules in a running server (a reloaded sign-in module signs
    every session out), so the run serves one fixed version of the code."""
    import hashlib
    import shutil

    target = work / "code"
    if target.exists():
        shutil.rmtree(target)
    ignore = shutil.ignore_patterns("node_modules", "__pycache__", "*.pyc")
    for part in ("analytics", "dashboard", "sample_data", ".streamlit"):
        shutil.copytree(ROOT / part, target / part, ignore=ignore)
    digest = hashlib.sha256()
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(target)).encode() + b"\0" + path.read_bytes())
    return target, digest.hexdigest()[:12]


def start_server(root: Path, log_path: Path, code: Path = ROOT, timeout: float = 120, port: int = 0):
    port = free_port(port)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_SAMPLE": "0"}
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [PYTHON, "-m", "analytics.cli", "serve", "--instance", str(root), "--port", str(port)]
        + ["--address", "127.0.0.1"],
        cwd=code,  # ``python -m analytics.cli`` runs the analytics package found here first
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: stopped as one, with its workers
    )
    log.close()  # the server holds its own copy of the file
    url = f"http://127.0.0.1:{port}"
    if not serving(url, proc, timeout=timeout):
        stop_server(proc)
        raise SystemExit(f"the server did not come up: {log_path.read_text()[-2000:]}")
    return proc, url


def stop_server(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def _status_kib(pid: int, field_name: str, path: str = "status") -> int:
    try:
        with open(f"/proc/{pid}/{path}") as f:
            for line in f:
                if line.startswith(field_name):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pids) -> float:
    """Summed VmRSS of these processes, MiB."""
    return sum(_status_kib(p, "VmRSS:") for p in pids) / 1024


def pss_mib(pids) -> float:
    """Summed proportional set size (shared pages split between their users), MiB."""
    return sum(_status_kib(p, "Pss:", "smaps_rollup") for p in pids) / 1024


def _meminfo(key: str) -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 2**20
    return 0.0


# -- one person in the browser ----------------------------------------------------------------------

# Whether a script run started since arm() (an attribute observer sees every change, however
# short the run) and has ended: the page is drawn.
_ARM = """() => {
  window.__embexRan = false;
  if (!window.__embexObserver) {
    window.__embexObserver = new MutationObserver((records) => {
      for (const r of records) {
        if (r.oldValue === 'running' || r.target.getAttribute('data-test-script-state') === 'running') {
          window.__embexRan = true;
        }
      }
    });
    window.__embexObserver.observe(document.body, {
      attributes: true, subtree: true, attributeOldValue: true,
      attributeFilter: ['data-test-script-state'],
    });
  }
}"""
_RAN = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return window.__embexRan === true && app !== null
    && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
_IDLE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""
_SIGN_IN_FORM = "Sign in to see your team's workspaces."
#: every error alert counts (a bug's error id, a failed job, a user error such as a busy file), but
#: the Shift page's verdict, which it draws as an error when the test finds a shift: the first line
#: of ShiftResult.summary() (G more outlying, G in another location, G more concentrated) or, for
#: "Each value vs the rest", of ValueTable.summary() when a value differs
_VERDICT = re.compile(
    r"^\s*(G has shifted away from F|G is more concentrated than F"
    r"|[1-9][\d,]* of [\d,]+ values of .+ differ from the rest)"
)
_SELECTED = re.compile(r"([\d,]+) of ([\d,]+) texts selected")  # the Map's count of the selection


class PageError(Exception):
    """What a page showed that counts as an error."""


@dataclass
class Session:
    """One simulated person: their browser page and what their session shows."""

    index: int
    person: Person
    url: str
    page: object = None
    n: int = 0  # texts a corpus
    corpus: str = ""
    crashed: bool = False
    rng: random.Random = field(default_factory=random.Random)

    @property
    def ws(self) -> str:
        return self.person.workspace


async def wait_ran(page, timeout_ms: float) -> None:
    await page.wait_for_function(_RAN, timeout=timeout_ms, polling=100)


async def wait_idle(page, timeout_ms: float) -> None:
    await page.wait_for_function(_IDLE, timeout=timeout_ms, polling=100)


async def check_page(s: Session) -> None:
    """Raise PageError for what counts as an error on the page now."""
    page = s.page
    if s.crashed:
        raise PageError("the page crashed")
    if await page.locator('[data-testid="stException"]').count():
        text = await page.locator('[data-testid="stException"]').first.inner_text()
        raise PageError(f"exception element: {text[:300]}")
    for text in await page.locator('[data-testid="stAlertContentError"]').all_inner_texts():
        if not _VERDICT.match(text):
            raise PageError(f"error alert: {text[:300]}")
    if await page.locator(".exs-root[data-error]").count():
        raise PageError(f"map: {await page.locator('.exs-root').first.get_attribute('data-error')}")
    if await page.get_by_text(_SIGN_IN_FORM).count():
        raise PageError("the sign-in form came back")


async def sign_in(s: Session, timeout_ms: float) -> float:
    page = s.page
    t0 = time.monotonic()
    await page.goto(f"{s.url}/?ws={s.ws}", timeout=timeout_ms)
    await page.get_by_role("textbox", name="User name").fill(s.person.name, timeout=timeout_ms)
    await page.get_by_role("textbox", name="Password").fill(s.person.password, timeout=timeout_ms)
    await page.get_by_role("button", name="Sign in").click(timeout=timeout_ms)
    await sidebar_link(page, "Map").wait_for(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)
    s.corpus = corpus_names(s.ws)[0]  # a new browser session starts on the first corpus
    return time.monotonic() - t0


def sidebar_link(page, title: str):
    return page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True)


def key_element(s: Session, kind: str):
    """What shows that page ``kind`` has drawn the session's corpus."""
    page, name = s.page, s.corpus
    if kind == "map":  # the WebGL map says when all its points are drawn; a plotly map has no such flag
        title = f"{name}: UMAP map"
        webgl = page.locator(f'.exs-root[data-drawn="{s.n}"]').filter(has_text=title)
        return webgl.or_(page.locator(".js-plotly-plot").filter(has_text=title)).first
    if kind == "depth":  # the whole corpus, or the selection (a search made on the map)
        return page.get_by_text(depth_title(name)).first
    if kind == "shift":
        f, g = corpus_names(s.ws)
        return page.get_by_text(f"Depth with respect to {f}: {f} vs {g}").first
    return page.get_by_role("textbox", name="Query")


def depth_title(name: str) -> re.Pattern:
    """The Depth chart's title for corpus ``name``: "name: TTE depth (cosine)", or with a
    selection "name, N selected texts: TTE depth within the selection (cosine)" (or "in the
    corpus")."""
    return re.compile(re.escape(name) + r"(: |, [\d,]+ selected texts: )TTE depth( \(| within| in)")


def run_button(page):
    """The Shift page's Run button."""
    return page.locator(".st-key-shift-run").get_by_role("button")


def failure(page):
    """Any of what check_page counts as an error (to stop waiting for a page that shows one)."""
    alerts = page.locator('[data-testid="stAlertContentError"]').filter(has_not_text=_VERDICT)
    exception = page.locator('[data-testid="stException"]')
    return (
        exception.or_(alerts).or_(page.get_by_text(_SIGN_IN_FORM)).or_(page.locator(".exs-root[data-error]"))
    )


async def timed_run(s: Session, act, done, timeout_ms: float) -> float:
    """Seconds from ``act()`` (a click, a key) until a new script run ended and ``done`` shows
    (or an error: check_page then raises it)."""
    page = s.page
    await page.evaluate(_ARM)
    t0 = time.monotonic()
    await act()
    await wait_ran(page, timeout_ms)
    await done.or_(failure(page)).first.wait_for(timeout=timeout_ms)
    await wait_idle(page, timeout_ms)
    seconds = time.monotonic() - t0
    await check_page(s)
    return seconds


async def visit(s: Session, kind: str, timeout_ms: float, *, switch: str | None = None) -> list:
    """Open page ``kind`` from the sidebar (then switch corpus to ``switch``): [(what, seconds)]."""
    page = s.page
    if kind == "shift":  # nothing runs on arrival: open the page, press Run, wait for the chart
        opened = await timed_run(s, sidebar_link(page, PAGES[kind]).click, run_button(page), timeout_ms)
        await check_page(s)
        ran = await timed_run(s, run_button(page).click, key_element(s, kind), timeout_ms)
        await check_page(s)
        return [(kind, opened + ran)]
    out = [
        (kind, await timed_run(s, sidebar_link(page, PAGES[kind]).click, key_element(s, kind), timeout_ms))
    ]
    await check_page(s)
    if switch and switch != s.corpus and kind != "shift":

        async def pick():
            await page.locator('[data-testid="stSelectbox"]').filter(has_text="Corpus").first.click()
            await page.get_by_role("option", name=switch, exact=True).click()

        s.corpus = switch
        out.append(("corpus switch", await timed_run(s, pick, key_element(s, kind), timeout_ms)))
        await check_page(s)
    return out


async def highlight(s: Session, timeout_ms: float) -> list:
    """Search the map for a word: the search hits are the selection, named in the map's legend."""
    page = s.page
    box = page.get_by_role("textbox", name="Select texts containing")
    current = await box.input_value()
    word = s.rng.choice([w for w in WORDS[s.ws] if w != current])

    async def act():
        await box.fill(word)
        await box.press("Enter")

    seconds = await timed_run(s, act, page.get_by_text(_SELECTED).first, timeout_ms)
    drawn = page.locator(f'.exs-root[data-drawn="{s.n}"]').filter(has_text=f"{s.corpus}: UMAP map")
    await drawn.locator(".exs-hits").filter(has_text="search hits").first.wait_for(timeout=timeout_ms)
    return [("map highlight", seconds)]


async def search(s: Session, method: str, timeout_ms: float) -> list:
    page = s.page
    radio = page.locator('[data-testid="stRadio"]').filter(has_text="Method").first
    if not await radio.get_by_role("radio", name=METHODS[method], exact=True).is_checked():
        label = radio.get_by_text(METHODS[method], exact=True)
        await timed_run(s, label.click, page.get_by_role("textbox", name="Query"), timeout_ms)
    box = page.get_by_role("textbox", name="Query")
    current = await box.input_value()
    query = s.rng.choice([q for q in QUERIES[s.ws] if q != current])

    async def act():
        await box.fill(query)
        await box.press("Enter")

    done = page.get_by_text(f"for the query, by {SCORED_BY[method]}").first
    seconds = await timed_run(s, act, done, timeout_ms)
    # the hits on the analyst's WebGL map, "news-a: results for 'query' on the UMAP map"
    drawn = page.locator(f'.exs-root[data-drawn="{s.n}"]').filter(has_text=f"{s.corpus}: results for")
    await drawn.first.wait_for(timeout=timeout_ms)
    return [(f"search ({method})", seconds)]


async def one_action(s: Session, kind: str, timeout_ms: float) -> list:
    a, b = corpus_names(s.ws)
    other = b if s.corpus == a else a
    switch = other if kind != "shift" and s.rng.random() < SWITCH else None
    out = await visit(s, kind, timeout_ms, switch=switch)
    if kind == "map" and s.rng.random() < HIGHLIGHT:
        out += await highlight(s, timeout_ms)
        await check_page(s)
    if kind == "retrieval":
        r = s.rng.random()
        out += await search(s, "dense" if r < 0.5 else "bm25" if r < 0.75 else "hybrid", timeout_ms)
        await check_page(s)
    return out


# -- one person at the wire: Streamlit's websocket protocol ------------------------------------------


class Wire:
    """A browser session without the browser: Streamlit's own websocket protocol (the protobuf
    BackMsg / ForwardMsg that the frontend speaks), so the server does exactly the work a browser
    asks of it: the same script runs, widget states, page changes, fragment auto-reruns (the jobs
    badge, every 5 s) and message cache (messages the client holds come back as hash references),
    over the same compressed websocket, with nothing drawn. A request is done when its script run
    has ended and all its messages have arrived."""

    def __init__(self, url: str, query: str):
        self.url, self.query = url, query
        self.page = ""  # page script hash; "" = the default page
        self.pages: dict[str, str] = {}  # page name -> script hash
        self.elements: list = []  # the elements of the last full run
        self.fragments: dict[str, list[float]] = {}  # fragment id -> [interval, next due]
        self.cache: dict[str, list] = {}  # message hash -> [message, last run it was used]
        self.max_age = 2
        self.runs = 0  # full runs finished
        self.busy = False
        self.bytes_in = 0
        self.closed: str = ""
        self._finished = asyncio.Event()
        self.trail: collections.deque = collections.deque(maxlen=80)  # for the error report

    def note(self, what: str) -> None:
        self.trail.append(f"{time.monotonic():.2f} {what}")

    async def open(self, timeout: float) -> None:
        from websockets.asyncio.client import connect

        host = self.url.split("://", 1)[1]
        self.ws = await connect(
            f"ws://{host}/_stcore/stream",
            subprotocols=["streamlit"],
            origin=f"http://{host}",
            max_size=None,
            open_timeout=timeout,
        )
        self._reader = asyncio.create_task(self._read())
        self._timer = asyncio.create_task(self._auto_reruns())

    async def close(self) -> None:
        for task in (self._reader, self._timer):
            task.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        try:
            async for data in self.ws:
                self.bytes_in += len(data)
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._receive(msg)
        except Exception as exc:  # noqa: BLE001 - the connection ended: the waiting request fails
            self.closed = f"{type(exc).__name__}: {exc}"
        else:
            self.closed = "the server closed the connection"
        self._finished.set()

    def _receive(self, msg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":  # a message this client said it holds
            cached = self.cache.get(msg.ref_hash)
            if cached is None:
                self.closed = f"the server referred to a message this client does not hold ({msg.ref_hash})"
                self._finished.set()
                return
            cached[1] = self.runs
            full = type(msg)()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg, kind = full, full.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash:
            self.cache[msg.hash] = [msg, self.runs]
        if kind in ("new_session", "script_finished"):
            run = msg.metadata.run
            status = f" status {msg.script_finished}" if kind == "script_finished" else ""
            self.note(f"{kind} run {run.script_run_id[:8]} fragments {list(run.fragment_ids)}{status}")
        if kind == "new_session":
            if not msg.metadata.run.fragment_ids:  # a full run: the page starts again
                self.elements = []
                self.fragments = {}
            self.max_age = msg.new_session.config.max_cached_message_age or self.max_age
        elif kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
            self.page = msg.navigation.page_script_hash or self.page
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            interval = msg.auto_rerun.interval
            self.fragments[msg.auto_rerun.fragment_id] = [interval, time.monotonic() + interval]
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self.fragments.pop(fid, None)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self.elements.append(msg.delta.new_element)
        elif kind == "script_finished" and msg.script_finished == msg.FINISHED_SUCCESSFULLY:
            self.runs += 1
            old = [h for h, (_, used) in self.cache.items() if self.runs - used > self.max_age]
            for h in old:
                del self.cache[h]
            self._finished.set()

    def _back(self, *, page: str, query: str, widgets=(), fragment: str = ""):
        from streamlit.proto.BackMsg_pb2 import BackMsg

        back = BackMsg()
        state = back.rerun_script
        state.query_string, state.page_script_hash = query, page
        state.widget_states.widgets.extend(widgets)
        state.cached_message_hashes.extend(self.cache)
        if fragment:
            state.fragment_id, state.is_auto_rerun = fragment, True
        self.note(
            f"send rerun page {page[:8]} query {query!r} widgets {len(widgets)} fragment {fragment[:8]}"
        )
        return back.SerializeToString()

    async def _auto_reruns(self) -> None:
        """The frontend's timers for fragments that rerun themselves (``run_every``), while the
        page is idle."""
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for fid, due in list(self.fragments.items()):
                if now >= due[1] and not self.busy:
                    due[1] = now + due[0]
                    await self.ws.send(self._back(page=self.page, query=self.query, fragment=fid))

    async def run(
        self, timeout: float, *, page: str | None = None, query: str | None = None, widgets=()
    ) -> float:
        """Ask for a full script run (another page, or this one with new widget values); seconds
        until it ended. A page change starts with an empty query string, as the sidebar's links do."""
        if self.closed:
            raise PageError(f"the connection is gone: {self.closed}")
        self.busy = True
        try:
            before = self.runs
            self._finished.clear()
            t0 = time.monotonic()
            if query is None:
                query = self.query if page is None else ""
            await self.ws.send(
                self._back(page=self.page if page is None else page, query=query, widgets=widgets)
            )
            await self._wait_run(before, t0 + timeout)
            return time.monotonic() - t0
        finally:
            self.busy = False

    async def _wait_run(self, before: int, deadline: float) -> None:
        """Until a full run after the ``before``-th has ended."""
        while self.runs == before:
            if self.closed:
                raise PageError(f"the connection is gone: {self.closed}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no end of the script run within the page's timeout")
            self._finished.clear()
            try:
                await asyncio.wait_for(self._finished.wait(), left)
            except TimeoutError:
                pass

    def following_job(self) -> bool:
        """Whether the page follows a background job (common.follow_job's panel): its fragment
        polls each second and reruns the whole page when the job ends."""
        return any("runs in the background" in t for t in self.texts())

    async def next_run(self, timeout: float) -> None:
        """Wait (the fragments' timers running, as in an idle browser) for the next full run,
        one the server starts itself (``st.rerun`` from a fragment)."""
        await self._wait_run(self.runs, time.monotonic() + max(timeout, 0))

    # what the last run drew

    def widget(self, kind: str, label: str):
        for e in self.elements:
            if e.WhichOneof("type") == kind and getattr(e, kind).label == label:
                return getattr(e, kind)
        raise PageError(f"the page has no {kind} labelled {label!r}")

    def texts(self) -> list[str]:
        """Markdown, headings, plain text and alerts, with markdown's escapes taken out."""
        out = []
        for e in self.elements:
            kind = e.WhichOneof("type")
            if kind in ("markdown", "heading", "text", "alert"):
                out.append(getattr(e, kind).body.replace("\\", ""))
        return out

    def component(self, name: str) -> bool:
        """Whether the last run drew the custom component ``name`` (v2 components are
        ``bidi_component`` elements; their name may carry a module prefix)."""
        return any(
            e.WhichOneof("type") == "bidi_component"
            and e.bidi_component.component_name.rsplit(".", 1)[-1].rsplit(":", 1)[-1] == name
            for e in self.elements
        )

    def has(self, kind: str, contains: str = "") -> bool:
        for e in self.elements:
            if e.WhichOneof("type") == kind:
                if not contains or contains in str(getattr(e, kind)):
                    return True
        return False

    def check(self) -> None:
        """Raise PageError for what counts as an error in the last run."""
        for e in self.elements:
            kind = e.WhichOneof("type")
            if kind == "exception":
                raise PageError(f"exception element: {e.exception.type}: {e.exception.message[:300]}")
            if kind == "alert" and e.alert.format == e.alert.ERROR:
                body = e.alert.body.replace("\\", "")  # markdown's escapes out, as drawn
                if not _VERDICT.match(body):
                    raise PageError(f"error alert: {body[:300]}")
        if any(
            e.WhichOneof("type") == "text_input" and e.text_input.label == "User name" for e in self.elements
        ):
            raise PageError("the sign-in form came back")


def widget_state(widget, **value):
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    return WidgetState(id=widget.id, **value)


@dataclass
class WireSession:
    """One simulated person over the wire (the same visits as :class:`Session` in a browser)."""

    index: int
    person: Person
    url: str
    n: int = 0
    corpus: str = ""
    rng: random.Random = field(default_factory=random.Random)
    wire: Wire | None = None
    bytes_in: int = 0  # received by its connections that ended

    @property
    def ws(self) -> str:
        return self.person.workspace

    def drawn(self, kind: str) -> bool:
        """Whether the last run drew page ``kind`` for the session's corpus."""
        w, name = self.wire, self.corpus
        if kind == "map":  # the WebGL map (the page's plotly charts are the facet bars beside it)
            caption = any(t.startswith(f"corpus: {name} ·") and "UMAP" in t for t in w.texts())
            return caption and w.component("embex_scatter")
        if kind == "depth":  # the whole corpus, or the selection (a search made on the map)
            title = depth_title(name)
            return any(
                e.WhichOneof("type") == "plotly_chart" and title.search(e.plotly_chart.spec)
                for e in w.elements
            )
        if kind == "shift":
            f, g = corpus_names(self.ws)
            return w.has("plotly_chart", f"Depth with respect to {f}: {f} vs {g}")
        return any(e.WhichOneof("type") == "text_input" and e.text_input.label == "Query" for e in w.elements)

    async def request(self, what: str, done, timeout: float, **run) -> tuple[str, float]:
        """One script run asked for (``run``: Wire.run's page, query, widgets), and if it
        follows a background job, the runs after it until the job's result is drawn: (what,
        seconds until ``done()``)."""
        t0 = time.monotonic()
        await self.wire.run(timeout, **run)
        self.wire.check()
        while not done() and self.wire.following_job():
            await self.wire.next_run(t0 + timeout - time.monotonic())
            self.wire.check()
        if not done():
            raise PageError(f"{what}: the run ended without drawing what it should")
        return what, time.monotonic() - t0


async def wire_sign_in(s: WireSession, timeout: float) -> float:
    if s.wire is not None:
        s.bytes_in += s.wire.bytes_in
        await s.wire.close()
    s.wire = Wire(s.url, f"ws={s.ws}")
    t0 = time.monotonic()
    await s.wire.open(timeout)
    await s.wire.run(timeout, page="", query=f"ws={s.ws}")
    user, password = s.wire.widget("text_input", "User name"), s.wire.widget("text_input", "Password")
    submit = s.wire.widget("button", "Sign in")
    states = [
        widget_state(user, string_value=s.person.name),
        widget_state(password, string_value=s.person.password),
        widget_state(submit, trigger_value=True),
    ]
    await s.wire.run(timeout, widgets=states)
    s.wire.check()
    if not any(t.startswith(f"Signed in as {s.person.name}") for t in s.wire.texts()):
        raise PageError("sign-in: the run ended without signing in")
    s.corpus = corpus_names(s.ws)[0]
    return time.monotonic() - t0


async def wire_visit(s: WireSession, kind: str, timeout: float) -> tuple[str, float]:
    if kind == "shift":  # nothing runs on arrival: open the page, press Run, wait for the chart
        t0 = time.monotonic()
        await s.wire.run(timeout, page=s.wire.pages[PAGES[kind]])
        s.wire.check()
        run = widget_state(s.wire.widget("button", "Run"), trigger_value=True)
        await s.request(kind, lambda: s.drawn(kind), t0 + timeout - time.monotonic(), widgets=[run])
        return kind, time.monotonic() - t0
    return await s.request(kind, lambda: s.drawn(kind), timeout, page=s.wire.pages[PAGES[kind]])


async def wire_switch(s: WireSession, kind: str, timeout: float) -> tuple[str, float]:
    """Pick the workspace's other corpus on page ``kind``."""
    a, b = corpus_names(s.ws)
    s.corpus = b if s.corpus == a else a
    picker = widget_state(s.wire.widget("selectbox", "Corpus"), string_value=s.corpus)
    return await s.request("corpus switch", lambda: s.drawn(kind), timeout, widgets=[picker])


async def wire_highlight(s: WireSession, word: str, timeout: float) -> tuple[str, float]:
    """Search the map for ``word``: the hits become the selection, counted beside the map."""
    w = s.wire
    box = widget_state(w.widget("text_input", "Select texts containing"), string_value=word)

    def done():
        counts = [m.groups() for m in map(_SELECTED.search, w.texts()) if m]
        return any(int(of.replace(",", "")) == s.n for _, of in counts) and s.drawn("map")

    return await s.request("map highlight", done, timeout, widgets=[box])


async def wire_search(s: WireSession, method: str, query: str, timeout: float) -> tuple[str, float]:
    w = s.wire
    states = [
        widget_state(w.widget("radio", "Method"), string_value=METHODS[method]),
        widget_state(w.widget("text_input", "Query"), string_value=query),
    ]

    def done():
        said = any(f"for the query, by {SCORED_BY[method]}" in t for t in w.texts())
        return said and w.has("dataframe")

    return await s.request(f"search ({method})", done, timeout, widgets=states)


async def wire_action(s: WireSession, kind: str, timeout: float) -> list:
    """One visit, with its random variations (:func:`one_action` over the wire)."""
    out = [await wire_visit(s, kind, timeout)]
    if kind != "shift" and s.rng.random() < SWITCH:
        out.append(await wire_switch(s, kind, timeout))
    if kind == "map" and s.rng.random() < HIGHLIGHT:
        out.append(await wire_highlight(s, s.rng.choice(WORDS[s.ws]), timeout))
    if kind == "retrieval":
        r = s.rng.random()
        method = "dense" if r < 0.5 else "bm25" if r < 0.75 else "hybrid"
        out.append(await wire_search(s, method, s.rng.choice(QUERIES[s.ws]), timeout))
    return out


async def solo_pass(url: str, n: int, server_pid: int, timeout: float, repeats: int = 3) -> list[tuple]:
    """One session alone on the warm server, each request ``repeats`` times: (request, seconds,
    server CPU seconds, bytes received) each. What a request costs the server, without others."""
    s = WireSession(999, PEOPLE[0], url, n=n, rng=random.Random(7))
    out = []

    def server_cpu() -> float:
        return sum(cpu_seconds(p) for p in tree(server_pid))

    async def measure(step) -> None:
        c0, b0 = server_cpu(), s.wire.bytes_in
        what, seconds = await step()
        out.append((what, seconds, server_cpu() - c0, s.wire.bytes_in - b0))

    c0 = server_cpu()
    seconds = await wire_sign_in(s, timeout)
    out.append(("sign-in", seconds, server_cpu() - c0, s.wire.bytes_in))
    try:
        for i in range(repeats):
            await measure(lambda: wire_visit(s, "map", timeout))
            if i == 0:  # the map's points go to a session once; later visits get a stub
                out[-1] = ("map (first in the session)", *out[-1][1:])
            await measure(lambda i=i: wire_highlight(s, WORDS[s.ws][i], timeout))
            for kind in ("depth", "shift", "retrieval"):
                await measure(lambda kind=kind: wire_visit(s, kind, timeout))
            for method in METHODS:
                await measure(lambda m=method, i=i: wire_search(s, m, QUERIES[s.ws][i], timeout))
    finally:
        await s.wire.close()
    return out


def solo_table(rows: list[tuple]) -> str:
    lines = [
        "| request, one session alone | median (s) | server CPU, median (s) | received, median (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for what in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == what]
        cells = [float(np.median([r[k] for r in mine])) for k in (1, 2, 3)]
        lines.append(f"| {what} | {cells[0]:.2f} | {cells[1]:.2f} | {cells[2] / 2**20:.2f} |")
    return "\n".join(lines)


async def wire_loop(
    s: WireSession, records, deadline, stop, timeout: float, shots: Path | None = None, think=(1.0, 3.0)
) -> None:
    """:func:`person_loop` over the wire."""
    needs_sign_in = True
    try:
        while time.monotonic() < deadline and not stop.is_set():
            kind, started = "sign-in", time.monotonic()
            try:
                if needs_sign_in:
                    seconds = await asyncio.wait_for(wire_sign_in(s, timeout), 3 * timeout + 5)
                    records.append(Record("sign-in", seconds, s.index, started))
                    needs_sign_in = False
                    continue
                kind = s.rng.choice(list(PAGES))
                done = await asyncio.wait_for(wire_action(s, kind, timeout), 4 * timeout + 5)
                records += [Record(what, sec, s.index, started) for what, sec in done]
            except Exception as exc:  # noqa: BLE001 - every failure of a visit is a recorded error
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
                records.append(Record(kind, None, s.index, started, message))
                if s.wire is not None and shots is not None:  # what the connection saw, for the report
                    texts = "\n".join(s.wire.texts())
                    trail = "\n".join(s.wire.trail)
                    (shots / f"wire-s{s.index:02d}-{int(started)}-{kind}.txt").write_text(
                        f"{message}\n\nmessages:\n{trail}\n\nthe page's text:\n{texts}\n"
                    )
                needs_sign_in = True  # start over as a new browser session would
            await asyncio.sleep(s.rng.uniform(*think))
    finally:
        if s.wire is not None:
            s.bytes_in += s.wire.bytes_in
            await s.wire.close()


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Record:
    what: str
    seconds: float | None
    session: int
    at: float
    error: str = ""
    client: str = "wire"  # "wire" (the websocket protocol) or "browser" (Chromium)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, all cores."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / tick, idle / tick


class Monitor:
    """Samples the server's and the browser's memory, their CPU time and the machine's
    available memory."""

    def __init__(self, server_pid: int, min_free_gib: float):
        self.server_pid, self.min_free_gib = server_pid, min_free_gib
        self.server_peak = self.client_peak = 0.0
        self.low_memory = ""
        self.cpu = {"server": {}, "clients": {}}  # pid -> last CPU seconds seen
        self.base = {"server": {}, "clients": {}}
        self.machine_base = machine_cpu()

    def _track_cpu(self) -> None:
        server = tree(self.server_pid)
        clients = [p for p in tree(os.getpid()) if p not in set(server)]  # this script, Playwright, Chromium
        for side, pids in (("server", server), ("clients", clients)):
            for p in pids:
                self.cpu[side][p] = cpu_seconds(p) or self.cpu[side].get(p, 0.0)

    def start_cpu(self) -> None:
        """From now on, count CPU time (the load's)."""
        self._track_cpu()
        self.base = {side: dict(seen) for side, seen in self.cpu.items()}
        self.machine_base = machine_cpu()

    def cpu_used(self) -> dict[str, float]:
        """CPU seconds since start_cpu(): the server's tree, the clients' (this script and its
        children), the whole machine's busy and idle time."""
        self._track_cpu()
        out = {
            side: sum(v - self.base[side].get(p, 0.0) for p, v in seen.items())
            for side, seen in self.cpu.items()
        }
        busy, idle = machine_cpu()
        out["machine busy"], out["machine idle"] = busy - self.machine_base[0], idle - self.machine_base[1]
        return out

    def server_rss(self) -> float:
        return rss_mib(tree(self.server_pid))

    def client_pss(self) -> float:
        server = set(tree(self.server_pid))
        return pss_mib([p for p in tree(os.getpid()) if p not in server])

    def sample(self) -> None:
        self._track_cpu()
        self.server_peak = max(self.server_peak, self.server_rss())
        self.client_peak = max(self.client_peak, self.client_pss())
        free = _meminfo("MemAvailable")
        if free < self.min_free_gib and not self.low_memory:
            self.low_memory = f"available memory fell to {free:.1f} GiB (under {self.min_free_gib} GiB)"

    async def run(self, stop: asyncio.Event, every: float = 2.0) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            if self.low_memory:
                stop.set()
                return
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass


async def new_page(s: Session, context) -> None:
    s.page = await context.new_page()
    s.crashed = False

    def crashed(_page, s=s):
        s.crashed = True

    s.page.on("crash", crashed)


async def person_loop(s, browser, records, deadline, stop, timeout_ms, shots: Path, think=(1.0, 3.0)):
    """Sign in, then visit pages until the deadline (or ``stop``); every visit is recorded."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        await new_page(s, context)
        needs_sign_in = True
        while time.monotonic() < deadline and not stop.is_set():
            kind, started = "sign-in", time.monotonic()
            try:
                if needs_sign_in:
                    seconds = await asyncio.wait_for(sign_in(s, timeout_ms), timeout_ms / 1000 + 5)
                    await check_page(s)
                    records.append(Record("sign-in", seconds, s.index, started, client="browser"))
                    needs_sign_in = False
                    continue
                kind = s.rng.choice(list(PAGES))
                done = await asyncio.wait_for(one_action(s, kind, timeout_ms), 3 * timeout_ms / 1000 + 5)
                records += [Record(what, sec, s.index, started, client="browser") for what, sec in done]
            except Exception as exc:  # noqa: BLE001 - every failure of a visit is a recorded error
                message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
                if s.crashed:
                    message = "the page crashed; " + message
                records.append(Record(kind, None, s.index, started, message, client="browser"))
                if len(list(shots.glob("*.png"))) < 10:
                    try:
                        await s.page.screenshot(path=str(shots / f"s{s.index:02d}-{int(started)}-{kind}.png"))
                    except Exception:  # noqa: BLE001 - a crashed page has no picture
                        pass
                if s.crashed:
                    await s.page.close()
                    await new_page(s, context)
                needs_sign_in = True  # start over as a new browser session would
            await asyncio.sleep(s.rng.uniform(*think))
    finally:
        await context.close()


async def cold_pass(browser, url, n: int, timeout_ms: float, records: list, shots: Path) -> None:
    """One editor per workspace opens every page for both corpora (in parallel across the
    workspaces): this computes the maps and shift tests the store caches, and warms the
    process's caches. Each step is timed."""

    class Steps(list):
        def append(self, r: Record) -> None:  # say each step as it ends: the pass is long
            print(f"  cold: {r.what}: {r.seconds:.1f} s", flush=True)
            records.append(r)

    async def one(person: Person, index: int) -> None:
        s = Session(index, person, url, n=n, rng=random.Random(index))
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            await new_page(s, context)
            await walk(s, Steps())
        except BaseException:
            try:
                await s.page.screenshot(path=str(shots / f"cold-{person.workspace}.png"))
            except Exception:  # noqa: BLE001 - a crashed page has no picture
                pass
            raise
        finally:
            await context.close()

    async def walk(s: Session, records: list) -> None:
        person, index = s.person, s.index
        records.append(Record("sign-in", await sign_in(s, timeout_ms), index, time.monotonic()))
        a, b = corpus_names(person.workspace)
        for name in (a, b):
            for kind in ("map", "depth", "retrieval"):
                started, before = time.monotonic(), s.corpus
                for what, sec in await visit(s, kind, timeout_ms, switch=name):
                    where = f"{kind} {before}" if what == kind else f"{kind} {name} (corpus switch)"
                    records.append(Record(where, sec, index, started))
                if kind == "retrieval":
                    for method in METHODS:
                        for what, sec in await search(s, method, timeout_ms):
                            records.append(Record(f"{what} {name}", sec, index, started))
                            await check_page(s)
        started = time.monotonic()
        for _what, sec in await visit(s, "shift", timeout_ms):
            records.append(Record(f"shift {a} vs {b}", sec, index, started))

    editors = [p for p in PEOPLE if p.role == "editor"]
    await asyncio.gather(*(one(p, 100 + i) for i, p in enumerate(editors)))


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def table(records: list[Record]) -> str:
    order = ["sign-in", *PAGES, "map highlight", *(f"search ({m})" for m in METHODS), "corpus switch"]
    kinds = sorted(dict.fromkeys(r.what for r in records), key=lambda k: (order + [k]).index(k))
    lines = ["| request | count | p50 (s) | p95 (s) | max (s) | errors |", "|---|---:|---:|---:|---:|---:|"]
    for kind in kinds + ["all"]:
        rs = [r for r in records if kind == "all" or r.what == kind]
        ok = [r.seconds for r in rs if r.seconds is not None]
        errors = sum(1 for r in rs if r.error)
        cells = (
            [f"{percentile(ok, 50):.2f}", f"{percentile(ok, 95):.2f}", f"{max(ok):.2f}"] if ok else ["-"] * 3
        )
        lines.append(f"| {kind} | {len(rs):,} | {' | '.join(cells)} | {errors} |")
    return "\n".join(lines)


def cold_table(records: list[Record]) -> str:
    lines = ["| cold pass step | seconds |", "|---|---:|"]
    lines += [f"| {r.what} | {r.seconds:.1f} |" for r in records]
    return "\n".join(lines)


_LOG_ERROR = re.compile(r"Traceback|Unexpected error|error id|\bERROR\b|Exception")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def server_log_errors(log_path: Path) -> list[str]:
    """The errors the server logged: each traceback whole (to its exception line), or the line
    that reports an error, with the terminal colours taken out."""
    lines = _ANSI.sub("", log_path.read_text(errors="replace")).splitlines()
    out, i = [], 0
    while i < len(lines):
        if not _LOG_ERROR.search(lines[i]):
            i += 1
            continue
        j = i + 1
        if (
            "Traceback" in lines[i]
        ):  # to the exception's own line: the first one not indented after the frames
            while j < len(lines) and (lines[j][:1] in (" ", "│", "─", "╭", "╰") or not lines[j].strip()):
                j += 1
            j = min(j + 3, len(lines))
        out.append("\n".join(line.rstrip() for line in lines[i:j] if line.strip()))
        i = j
    return out


def integrity(root: Path, code: Path = ROOT) -> list[tuple[str, bool, str]]:
    """``embex check`` of every store file, and SQLite's integrity check of the accounts."""
    out = []
    for path in sorted((root / "workspaces").glob("*.duckdb")):
        done = subprocess.run(
            [PYTHON, "-m", "analytics.cli", "check", "--store", str(path)],
            cwd=code,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        out.append((path.name, done.returncode == 0, (done.stdout + done.stderr).strip()))
    con = sqlite3.connect(f"file:{root / 'accounts.sqlite'}?mode=ro", uri=True)
    try:
        result = con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()
    text = "; ".join(r[0] for r in result)
    out.append(("accounts.sqlite", text == "ok", f"PRAGMA integrity_check: {text}"))
    return out


async def load(args, url: str, monitor: Monitor, work: Path, cold: list, records: list, memory: dict) -> None:
    """The cold pass, then the load; results are appended to ``cold``, ``records`` and ``memory``
    as they come (so a run that stops early still reports what it saw)."""
    from playwright.async_api import async_playwright

    from analytics.screenshot import CHROMIUM_ARGS

    timeout_ms = args.timeout * 1000
    shots = work / "errors"
    for old in [*shots.glob("*.png"), *shots.glob("*.txt")]:  # this run's only
        old.unlink()
    shots.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as p:
        # SwiftShader's WebGL for the map, as tests/test_scatter_component.py runs it
        flags = [*CHROMIUM_ARGS, "--enable-unsafe-swiftshader"]
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
        try:
            t0 = time.monotonic()
            await asyncio.wait_for(
                cold_pass(browser, url, args.texts, args.cold_timeout * 1000, cold, shots),
                args.cold_timeout * 3,
            )
            memory["cold_pass_s"] = time.monotonic() - t0
            memory["after_cold"] = monitor.server_rss()
            monitor.server_peak = memory["after_cold"]
            print(cold_table(cold), flush=True)
            print(
                f"\ncold pass: {memory['cold_pass_s']:.0f} s; server RSS after it {memory['after_cold']:,.0f} MiB"
            )
            solo = await solo_pass(url, args.texts, monitor.server_pid, args.timeout)
            memory["solo"] = solo
            print("\n" + solo_table(solo), flush=True)
            print(
                f"\nload: {args.sessions} {args.clients} sessions and {args.browsers} more in Chromium "
                f"for {args.minutes:g} min ...",
                flush=True,
            )
            stop = asyncio.Event()
            monitor.start_cpu()
            watcher = asyncio.create_task(monitor.run(stop))
            start = time.monotonic()
            deadline = start + args.minutes * 60
            kinds = [args.clients] * args.sessions + ["browser"] * (
                args.browsers if args.clients == "wire" else 0
            )
            spread = min(0.5, 10 / max(1, len(kinds)))  # arrivals over the first 10 s at most
            wires = []

            async def person(i: int, kind: str) -> None:
                who, rng = PEOPLE[i % len(PEOPLE)], random.Random(args.seed * 1000 + i)
                await asyncio.sleep(i * spread)
                if kind == "wire":
                    s = WireSession(i, who, url, n=args.texts, rng=rng)
                    wires.append(s)
                    await wire_loop(s, records, deadline, stop, args.timeout, shots)
                else:
                    s = Session(i, who, url, n=args.texts, rng=rng)
                    await person_loop(s, browser, records, deadline, stop, timeout_ms, shots)

            # bounded whatever happens: the deadline plus one visit's time (four page waits)
            await asyncio.wait_for(
                asyncio.gather(*(person(i, kind) for i, kind in enumerate(kinds))),
                args.minutes * 60 + 4 * args.timeout + 60,
            )
            memory["load_s"] = time.monotonic() - start
            memory["wire_bytes"] = sum(s.bytes_in for s in wires)
            stop.set()
            await watcher
            memory["client_peak"] = monitor.client_peak
            memory["cpu"] = monitor.cpu_used()
        finally:
            await browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=None, help="concurrent sessions (default 25)")
    ap.add_argument(
        "--clients",
        choices=("wire", "browser"),
        default="wire",
        help="wire: the sessions speak Streamlit's websocket protocol (default); browser: each is a "
        "Chromium context (two cores cannot draw 25 at once: see the module docstring)",
    )
    ap.add_argument(
        "--browsers",
        type=int,
        default=None,
        help="with --clients wire: this many more sessions in Chromium (default 2)",
    )
    ap.add_argument("--minutes", type=float, default=None, help="length of the load (default 5)")
    ap.add_argument("--texts", type=int, default=None, help="texts per corpus (default 100,000)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 sessions, 30 s, 5,000 texts a corpus")
    ap.add_argument("--work", type=Path, default=Path("/tmp/h7"), help="instance, logs and error screenshots")
    ap.add_argument("--timeout", type=float, default=180, help="most seconds one page may take under load")
    ap.add_argument(
        "--cold-timeout", type=float, default=1200, help="most seconds one cold-pass step may take"
    )
    ap.add_argument(
        "--min-free-gib", type=float, default=2.0, help="stop when the machine has less available"
    )
    ap.add_argument("--port", type=int, default=0, help="the server's port (default: any free one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--in-place", action="store_true", help="serve the working tree itself, not a copy taken at the start"
    )
    ap.add_argument(
        "--code",
        type=Path,
        help="serve this copy of the code (a folder with analytics/ and dashboard/) instead of a fresh one",
    )
    args = ap.parse_args()
    args.sessions = args.sessions or (2 if args.quick else 25)
    args.browsers = (1 if args.quick else 2) if args.browsers is None else args.browsers
    args.minutes = args.minutes or (0.5 if args.quick else 5)
    args.texts = args.texts or (5_000 if args.quick else 100_000)

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    root = work / f"instance-{args.texts}"
    print(
        f"machine: {machine()}; memory {_meminfo('MemTotal'):.1f} GiB, available {_meminfo('MemAvailable'):.1f} GiB"
    )
    print(
        f"load test: {args.sessions} sessions, {args.minutes:g} min, 2 workspaces x 2 corpora x "
        f"{args.texts:,} texts (real texts repeated as 'text (k)', vectors = real + noise "
        f"sigma {NOISE}, imported)\n"
    )
    build_instance(root, args.texts)
    if args.code is not None:
        code, digest = args.code.resolve(), "given with --code"
    else:
        code, digest = (ROOT, "working tree") if args.in_place else snapshot(work)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(
        f"code: {code} (commit {commit.stdout.strip() or '?'} plus the tree's uncommitted changes; {digest})"
    )
    log_path = work / f"server-{args.texts}.log"
    proc, url = start_server(root, log_path, code, port=args.port)
    monitor = Monitor(proc.pid, args.min_free_gib)
    rss_start = monitor.server_rss()
    failed, cold, records, memory = [], [], [], {}
    try:
        asyncio.run(load(args, url, monitor, work, cold, records, memory))
    except Exception as exc:  # noqa: BLE001 - reported, then the server stops and the files are checked
        failed.append(f"the run stopped: {type(exc).__name__}: {str(exc)[:500]}")
        if "after_cold" not in memory:
            print(cold_table(cold))
    finally:
        rss_end = monitor.server_rss()
        stop_server(proc)

    span_s = memory.get("load_s", 0)
    for client, what in (
        (
            "wire",
            "websocket-protocol sessions: from the request to the end of its script run, every message received",
        ),
        ("browser", "Chromium sessions: from the click to the page drawn"),
    ):
        mine = [r for r in records if r.client == client]
        if mine:
            sessions = len({r.session for r in mine})
            print(f"\nsteady state, {sessions} {what}; {span_s:.0f} s of load")
            print(table(mine))
    per_min = len([r for r in records if r.seconds is not None]) / max(span_s / 60, 1e-9)
    print(f"\nrequests completed per minute (all sessions): {per_min:.0f}")
    if memory.get("wire_bytes"):
        print(f"received by the websocket sessions: {memory['wire_bytes'] / 2**20:,.0f} MiB")
    print(
        f"server RSS (server + workers, MiB): start {rss_start:,.0f}, after the cold pass "
        f"{memory.get('after_cold', float('nan')):,.0f}, peak under load {monitor.server_peak:,.0f}, "
        f"end {rss_end:,.0f}"
    )
    print(f"client PSS peak (this script, Playwright, Chromium; MiB): {memory.get('client_peak', 0):,.0f}")
    print(f"CPU count: {os.cpu_count()}; load average at the end: {os.getloadavg()}")
    if "cpu" in memory:
        cpu, span = memory["cpu"], memory["load_s"] * (os.cpu_count() or 1)
        others = cpu["machine busy"] - cpu["server"] - cpu["clients"]
        print(
            f"CPU during the load, core-seconds of {span:,.0f} available: server {cpu['server']:,.0f} "
            f"({cpu['server'] / span:.0%}), clients {cpu['clients']:,.0f} ({cpu['clients'] / span:.0%}), "
            f"other processes on the machine {others:,.0f} ({others / span:.0%}), idle {cpu['machine idle']:,.0f}"
        )
        done = [r for r in records if r.seconds is not None]
        if done:
            print(
                f"server CPU per completed request under load: {cpu['server'] / len(done):.2f} s "
                f"({len(done):,} requests, sign-ins included)"
            )
    errors = [r for r in records if r.error]
    for r in errors[:20]:
        print(f"  error: {r.client} session {r.session}, {r.what}: {r.error}")
    if monitor.low_memory:
        failed.append(monitor.low_memory)
    log_errors = server_log_errors(log_path)
    for e in log_errors[:2]:
        print(f"server log:\n{e}\n")
    if len(log_errors) > 2:
        print(f"server log: {len(log_errors) - 2} more like these in {log_path}")
    if log_errors:
        failed.append(f"{len(log_errors)} error line(s) in the server log {log_path}")
    print("\nintegrity, after the server stopped:")
    for name, ok, text in integrity(root, code):
        print(f"  {name}: {'ok' if ok else 'DAMAGED'}\n    " + text.replace("\n", "\n    "))
        if not ok:
            failed.append(f"{name} failed its integrity check")
    if errors:
        failed.append(f"{len(errors)} request(s) failed")
    if not records:
        failed.append("no request was recorded")
    for f in failed:
        print(f"FAILED: {f}")
    print("result: " + ("FAILED" if failed else "ok: 0 errors"))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
