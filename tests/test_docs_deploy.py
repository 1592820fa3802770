"""docs/deploy.md says what the code does: every ``embex`` command it shows parses with the real
command line parser, the systemd unit starts one of those commands, and the proxy, the unit and
the settings agree on the port, the backup folder and the upload limit.

Commands that another part of issue 15 adds are listed in FUTURE: while the parser lacks them
they are reported as pending (not failures); once it has them, they are checked like the rest.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from analytics.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"

#: subcommands the doc shows that the team-instance work adds (user, workspace, settings, audit)
FUTURE_SUBCOMMANDS = {"user", "workspace", "settings", "audit"}
#: options of existing subcommands that it adds
FUTURE_OPTIONS = {("serve", "--instance")}

_SHELL_WORDS = {"if", "then", "else", "elif", "do", "while", "until", "!"}
_SPLIT = {"|", "||", "&&", ";", "&"}
_REDIRECT = re.compile(r"^\d*[<>]")


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of each fenced code block."""
    out, lang, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                out.append((lang, lines))
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def _simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line: split at ``;``, ``&&``, ``|``..., redirections dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, current, target = [], [], False
    for token in lexer:
        if target:  # the file of a redirection written apart ("> out.txt")
            target = False
        elif token in _SPLIT or set(token) <= set(";&|"):
            commands.append(current)
            current = []
        elif _REDIRECT.match(token):
            target = re.fullmatch(r"\d*(>>?|<)", token) is not None
        else:
            current.append(token)
    return [c for c in commands + [current] if c]


def _embex_argv(words: list[str]) -> list[str] | None:
    """The arguments of ``embex`` when it is the command these words run (after shell keywords,
    variable assignments, ``sudo`` and its options, ``env``), else None."""
    i = 0
    while i < len(words):
        w = words[i]
        if w in _SHELL_WORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w) or w == "env":
            i += 1
        elif w == "sudo":
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 2 if words[i] in ("-u", "-g", "--user", "--group") else 1
        else:
            break
    if i < len(words) and Path(words[i]).name == "embex":
        return words[i + 1 :]
    return None


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(where, argv) of every embex command the doc shows: in bash and ini code blocks (an
    ini ``Exec...=`` value is a command line) and in inline code spans."""
    found = []
    for lang, lines in _blocks(text):
        if lang not in ("bash", "sh", "ini"):
            continue
        for line in lines:
            if lang == "ini":
                m = re.match(r"^Exec\w*=(.*)$", line)
                if not m:
                    continue
                line = m.group(1)
            for words in _simple_commands(line):
                argv = _embex_argv(words)
                if argv is not None:
                    found.append((line.strip(), argv))
    prose = re.sub(r"(?ms)^```.*?^```", "", text)
    for span in re.findall(r"`([^`\n]+)`", prose):
        for words in _simple_commands(span):
            argv = _embex_argv(words)
            if argv is not None:
                found.append((span, argv))
    return found


def _subparsers(parser):
    import argparse

    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _pending(argv: list[str], subs) -> str | None:
    """Why this command cannot be checked yet (a FUTURE part the parser lacks), or None."""
    name = argv[0]
    if name in FUTURE_SUBCOMMANDS and name not in subs:
        return f"subcommand {name!r}"
    for sub, option in FUTURE_OPTIONS:
        if name == sub and option in argv and option not in subs[sub]._option_string_actions:
            return f"option {sub} {option}"
    return None


def _parse(parser, argv: list[str]) -> str | None:
    """None when the parser takes ``argv``, else its error message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            parser.parse_args(argv)
    except SystemExit as exc:
        return err.getvalue().strip().splitlines()[-1] if exc.code else None
    return None


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_embex_command_in_the_doc_parses(doc):
    parser = build_parser()
    subs = _subparsers(parser)
    found = commands(doc)
    assert len(found) >= 30, [a for _, a in found]
    failures, pending = [], set()
    for where, argv in found:
        if not argv:
            continue  # the program named alone ("embex stands for ...")
        why = _pending(argv, subs)
        if why:
            pending.add(why)
            continue
        if len(argv) == 1 and where.strip() == f"embex {argv[0]}":  # a subcommand named in prose
            if argv[0] not in subs:
                failures.append(f"{where}: no subcommand {argv[0]!r}")
            continue
        message = _parse(parser, argv)
        if message:
            failures.append(f"{where}: {message}")
    assert not failures, "\n".join(failures)
    if pending:
        print("pending, not yet in the parser:", sorted(pending))


def test_the_command_finder_sees_commands_and_only_commands():
    text = (
        "```bash\n"
        "sudo -u embex /opt/x/.venv/bin/embex list --instance /srv/embex  # a comment\n"
        "sudo install -d -o embex -g embex /srv/embex && journalctl -u embex\n"
        "if [ -e a ]; then sudo -u embex mv a b; fi\n"
        "EMBEX_INSTANCE=/srv/embex embex check > out.txt\n"
        "```\n"
        "```ini\nExecStart=/opt/x/bin/embex serve --port 1\n"
        "ExecStartPost=/usr/bin/find /var/backups/embex -delete\n```\n"
        "Prose `embex gc` and `sudo -u embex /bin/embex` and `embex:embex`.\n"
    )
    assert [a for _, a in commands(text)] == [
        ["list", "--instance", "/srv/embex"],
        ["check"],
        ["serve", "--port", "1"],
        ["gc"],
        [],
    ]


def _unit(doc: str, description: str) -> list[str]:
    return next(
        lines for lang, lines in _blocks(doc) if lang == "ini" and f"Description={description}" in lines
    )


def _setting(lines: list[str], key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in lines if line.startswith(key + "=")]


def test_the_service_starts_a_command_the_doc_shows_and_the_proxies_reach_it(doc):
    unit = _unit(doc, "Embedding Explorer (team instance)")
    (exec_start,) = _setting(unit, "ExecStart")
    argv = _embex_argv(shlex.split(exec_start))
    assert argv is not None and argv[:3] == ["serve", "--instance", "/srv/embex"]
    shown = [a for where, a in commands(doc) if not where.startswith("/opt/embex/app/.venv/bin/embex serve")]
    assert argv[:3] in [a[:3] for a in shown]  # the prose shows how to run it by hand
    parser = build_parser()
    if not _pending(argv, _subparsers(parser)):
        assert _parse(parser, argv) is None
    args = dict(zip(argv[3::2], argv[4::2]))
    address, port = args["--address"], args["--port"]
    assert address == "127.0.0.1"  # behind the proxy: never reachable around it
    assert re.findall(r"proxy_pass (http://[^;]+);", doc) == [f"http://{address}:{port}"] * 2
    assert re.findall(r"reverse_proxy (\S+)", doc) == [f"{address}:{port}"]
    assert f"curl -fsS http://{address}:{port}/_stcore/health" in doc
    for key in ("User", "Restart", "ProtectSystem", "NoNewPrivileges"):
        assert _setting(unit, key), key
    assert "HF_HUB_OFFLINE=1" in _setting(unit, "Environment")
    assert _setting(unit, "Restart") == ["on-failure"] and _setting(unit, "User") == ["embex"]
    assert not _setting(unit, "MemoryDenyWriteExecute")  # numba and torch compile at run time


def test_the_server_may_write_where_the_backup_timer_puts_backups(doc):
    """The server writes the copies of the stores it holds: its unit must allow the folder."""
    unit = _unit(doc, "Embedding Explorer (team instance)")
    backup = _unit(doc, "Back up the Embedding Explorer instance")
    (exec_start,) = _setting(backup, "ExecStart")
    argv = _embex_argv(shlex.split(exec_start))
    assert argv[0] == "backup" and _parse(build_parser(), argv) is None
    out = argv[argv.index("--out") + 1]
    (writable,) = _setting(unit, "ReadWritePaths")
    assert out in writable.split() and "/srv/embex" in writable.split()
    assert _setting(backup, "User") == _setting(unit, "User")


def test_the_proxies_take_an_upload_of_the_largest_size_the_server_allows(doc):
    settings = pytest.importorskip("analytics.settings")
    limit = settings.SETTINGS["max_upload_mb"].default
    assert re.findall(r"client_max_body_size (\d+)m;", doc) == [str(limit + 1)]  # nginx: m is MiB
    assert re.findall(r"max_size (\d+)MiB", doc) == [str(limit + 1)]


def test_the_settings_table_is_the_one_the_code_declares(doc):
    """Written by `embex settings --markdown`: a setting added, removed or changed in
    analytics/settings.py fails here until the doc is regenerated."""
    from analytics.settings import settings_markdown

    start = doc.index("<!-- BEGIN SETTINGS TABLE")
    table = doc[doc.index("\n", start) : doc.index("<!-- END SETTINGS TABLE -->")]
    assert table.strip() == settings_markdown().strip()


def test_the_sizing_table_is_marked(doc):
    start = doc.index("<!-- BEGIN SIZING TABLE")
    table = doc[start : doc.index("<!-- END SIZING TABLE -->")]
    header = [c.strip().lower() for c in table.splitlines()[2].strip("|").split("|")]
    assert header == [
        "sessions",
        "workspaces",
        "corpus size",
        "p50 page time",
        "p95 page time",
        "server rss",
        "cpu cores",
    ]
    assert "measured by benchmarks/load.py" in table
    assert "0 errors" in table.splitlines()[4]  # a measured row, not a placeholder
