"""One error family (issue 10): every error a user can cause is an ``ExplorerError``; the CLI and
the pages catch that alone, so anything else (a bug) surfaces as a bug, with its traceback."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import analytics
from analytics import errors
from analytics.errors import (
    CorpusError,
    DependencyError,
    EmbeddingError,
    ExplorerError,
    ModelError,
    ParameterError,
    StoreError,
)

# --- (a) the family ----------------------------------------------------------------------------


def test_every_error_class_derives_from_explorer_error_and_keeps_its_builtin_base():
    classes = {
        name: obj
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and obj.__module__ == errors.__name__
    }
    assert set(classes) == set(errors.__all__)
    for cls in classes.values():
        assert issubclass(cls, ExplorerError), cls
        assert cls is ExplorerError or issubclass(cls, (ValueError, RuntimeError)), cls
    # `except ValueError` / `except RuntimeError` written before the family still catch them
    for cls in (ParameterError, EmbeddingError, CorpusError):
        assert issubclass(cls, ValueError)
    for cls in (StoreError, ModelError, DependencyError):
        assert issubclass(cls, RuntimeError)


def test_each_error_is_the_same_class_from_its_old_module_and_the_package():
    from analytics import _validate, corpus, embedding, store

    assert _validate.EmbeddingError is EmbeddingError
    assert corpus.CorpusError is CorpusError
    assert store.StoreError is StoreError
    assert embedding.ModelError is ModelError
    for name in errors.__all__:
        assert getattr(analytics, name) is getattr(errors, name), name
        assert name in analytics.__all__


# --- (b) no handler turns a bug into a user message ---------------------------------------------

#: The only handlers in analytics/ and dashboard/ that catch Exception, BaseException or
#: RuntimeError (alone or in a tuple), or everything (a bare ``except:``). Each either re-raises
#: (``raises``) or hands the exception on to code that re-raises it. A new one fails
#: test_no_broad_handler_outside_the_allowed_list: catch ExplorerError, or the narrow
#: third-party exception, instead.
ALLOWED_BROAD = {
    ("analytics/store.py", "except BaseException:"): (
        "raises",
        "a write transaction rolls back, then the error goes on",
    ),
    ("analytics/uploads.py", "except BaseException:"): (
        "raises",
        "a failed (or interrupted) vector save removes the corpus it just wrote, then the error goes on",
    ),
    ("analytics/embedding.py", "except BaseException as exc:"): (
        "hands on",
        "the writer thread keeps the error; embed_corpus re-raises it",
    ),
    ("analytics/embedding.py", "except (OSError, ValueError, RuntimeError, KeyError) as exc:"): (
        "raises",
        "sentence-transformers cannot load the model: ModelError",
    ),
    ("analytics/export.py", "except (RuntimeError, ValueError, OSError) as exc:"): (
        "raises",
        "kaleido or its Chromium fails: DependencyError",
    ),
    ("analytics/distributed.py", "except (ConnectionError, RuntimeError, ValueError) as exc:"): (
        "raises",
        "ray.init cannot reach the cluster: ModelError",
    ),
    ("analytics/jobs.py", "except Exception:"): (
        "logs",
        "a bug in a background job is logged with its traceback and an id; the job records the id",
    ),
    ("analytics/pool.py", "except Exception:"): (
        "hands on",
        "a bug in a worker process goes to the parent whole (traceback), which raises WorkerError",
    ),
    ("analytics/backup.py", "except Exception:"): (
        "logs",
        "a bug while the server copies a store for embex backup is logged with an id, which the "
        "waiting command is told",
    ),
    ("analytics/corpus.py", "except BaseException:"): (
        "raises",
        "an upload's half-written Arrow file is removed, then the error goes on",
    ),
    ("dashboard/common.py", "except Exception:"): (
        "logs",
        "run_page: a bug in a page is logged with its traceback and an id; the user sees the id",
    ),
}
_BROAD = {"Exception", "BaseException", "RuntimeError"}


def _names(node) -> set[str]:
    if node is None:
        return {"<bare>"}
    parts = node.elts if isinstance(node, ast.Tuple) else [node]
    out = set()
    for p in parts:
        if isinstance(p, ast.Starred):  # except (*ERRORS, ...): cannot be checked, so refused
            out.add("<starred>")
        elif isinstance(p, ast.Attribute):
            out.add(p.attr)
        elif isinstance(p, ast.Name):
            out.add(p.id)
    return out


def _broad_handlers():
    for folder in ("analytics", "dashboard"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            lines = source.splitlines()
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ExceptHandler) and _names(node.type) & (
                    _BROAD | {"<bare>", "<starred>"}
                ):
                    line = lines[node.lineno - 1].split("#")[0].strip()
                    yield (path.relative_to(ROOT).as_posix(), line), node


def test_no_broad_handler_outside_the_allowed_list():
    found = {key: node for key, node in _broad_handlers()}
    assert sorted(set(found) - set(ALLOWED_BROAD)) == [], (
        "a handler catches Exception/BaseException/RuntimeError: it would turn a bug into a "
        "user message. Catch analytics.errors.ExplorerError (or the narrow third-party error)."
    )
    assert sorted(set(ALLOWED_BROAD) - set(found)) == [], "stale entry in ALLOWED_BROAD"
    for key, node in found.items():
        if ALLOWED_BROAD[key][0] == "raises":
            assert any(isinstance(n, ast.Raise) for n in ast.walk(node)), f"{key} does not re-raise"


def test_user_facing_raises_use_the_family():
    """Library code raises an ExplorerError for what a user can fix; builtin raises are left only
    for caller bugs and internal invariants, listed here."""
    allowed = {
        ("analytics/corpus.py", "TypeError", "stream_corpus reads files on disk"),  # a caller's bug
        ("analytics/inference.py", "RuntimeError", "A tokenizer worker process ended"),  # internal
        ("analytics/params.py", "ValueError", "Rule {self.name}: "),  # a rules table that breaks itself
    }
    found = set()
    for path in sorted((ROOT / "analytics").glob("*.py")):
        if path.name == "projection.py":  # its parameter checks move to the params table (issue 10)
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Raise)
                and isinstance(node.exc, ast.Call)
                and isinstance(node.exc.func, ast.Name)
                and node.exc.func.id in {"ValueError", "RuntimeError", "TypeError", "Exception"}
            ):
                first = node.exc.args[0] if node.exc.args else None
                text = first.value if isinstance(first, ast.Constant) else ast.unparse(first or node)
                found.add((f"analytics/{path.name}", node.exc.func.id, text))
    unexpected = {f for f in found if not any(f[:2] == a[:2] and a[2] in f[2] for a in allowed)}
    assert unexpected == set()


def test_dashboard_pages_show_only_explorer_errors():
    """A page's ``st.error(...)`` under an ``except`` shows a user error; the handler catches
    ExplorerError or one of its subclasses, never a builtin (a bug would become a red box)."""
    family = set(errors.__all__)
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and "st.error" in ast.unparse(node):
                if ("dashboard/common.py", "except Exception:") in ALLOWED_BROAD and _names(node.type) == {
                    "Exception"
                }:  # run_page: shows an error id, never the exception's text (test_dashboard_errors)
                    # unbound (no ``as exc``): the exception's text cannot reach the page
                    assert node.name is None and "log.exception" in ast.unparse(node)
                    continue
                assert _names(node.type) <= family, (path.name, node.lineno, ast.unparse(node.type))


# --- (c) through the CLI: a bug is a traceback, a user error one line ---------------------------


def _run(code_or_args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("EMBEX_STORE", None)
    return subprocess.run(
        [sys.executable, *code_or_args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )


#: a stand-in bug in a command: ``embex list`` on a real store runs this instead of cmd_list
_BUGGY_LIST = """
import sys
from analytics import cli

def cmd_list(args, store):
    assert store.list_corpora() == []  # the real store was opened
    {bug}

cli.cmd_list = cmd_list  # build_parser reads it when main() builds the parser
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "bug, name",
    [
        ("1 / 0", "ZeroDivisionError"),
        ("int('not a number')", "ValueError"),  # a builtin ValueError is a bug, not a user error
        ("raise RuntimeError('invariant broken')", "RuntimeError"),  # the old CLI swallowed these
        ("{}['missing']", "KeyError"),
    ],
)
def test_an_internal_error_in_a_command_surfaces_with_its_traceback(tmp_path, bug, name):
    code = _BUGGY_LIST.format(bug=bug)
    proc = _run(["-c", code, "list", "--store", str(tmp_path / "s.duckdb")], tmp_path)
    assert proc.returncode not in (0, 2), proc.stderr  # 2 is the user-error status
    assert "Traceback (most recent call last)" in proc.stderr
    assert f"{name}" in proc.stderr.strip().splitlines()[-1]
    assert "embex: error:" not in proc.stderr
    assert (tmp_path / "s.duckdb").exists()


@pytest.mark.slow  # several embex processes (or UMAP's JIT): the full tier
def test_user_errors_are_one_line_without_a_traceback(tmp_path):
    store = str(tmp_path / "s.duckdb")
    (tmp_path / "c.csv").write_text("text\nalpha beta\ngamma delta\nepsilon zeta\n", encoding="utf-8")
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(3, 8)))
    np.save(tmp_path / "v4.npy", np.random.default_rng(0).normal(size=(4, 8)))
    cli = ["-m", "analytics.cli", "--store", store]
    assert _run([*cli, "ingest", "c.csv", "--name", "c"], tmp_path).returncode == 0
    assert _run([*cli, "import-vectors", "c", "v.npy", "--model-id", "x"], tmp_path).returncode == 0
    assert "TTE depth" in _run([*cli, "depth", "c", "--model", "x"], tmp_path).stdout
    cases = [
        (["depth", "nosuchcorpus"], "No corpus named 'nosuchcorpus'"),  # StoreError
        (["ingest", "missing.csv", "--name", "m"], "No such file"),  # CorpusError
        (["import-vectors", "c", "v4.npy", "--model-id", "y"], "4 vectors for 3 documents"),  # EmbeddingError
        (["embed", "c", "--engine", "ray", "--backend", "onnx"], "--engine ray runs the torch backend"),
    ]
    for args, message in cases:
        proc = _run([*cli, *args], tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("embex: error: ") and message in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr


# --- (d) converted raises -------------------------------------------------------------------------


def test_library_parameter_errors_are_parameter_errors():
    from analytics.depth import most_central
    from analytics.evaluation import load_qrels
    from analytics.export import figure_image
    from analytics.inference import resolve_precision
    from analytics.outliers import find_outliers
    from analytics.retrieval import ExactIndex, more_like_this

    X = np.random.default_rng(0).normal(size=(20, 4))
    index = ExactIndex(X)
    cases = [
        # ranges (k, permutations, quantile) word their messages from analytics/params.py
        (lambda: index.search(X[0], 0), "k"),
        (lambda: most_central(np.ones(5), -1), "k"),
        (lambda: analytics.shift_test(X, X, permutations=-1), "permutations"),
        (lambda: find_outliers(X, quantile=2), "quantile"),
        (lambda: more_like_this(index, 20), r"row must be in 0\.\.19"),
        (lambda: analytics.tte_depth(X, distance="euclid"), "distance must be one of"),
        (lambda: figure_image(None, "gif"), "format must be 'png' or 'svg'"),
        (lambda: resolve_precision("float16", "cpu"), "float16 is not supported on the CPU"),
        (lambda: load_qrels(b"query-id,corpus-id,score\n"), "Pass format='csv', 'tsv' or 'jsonl'"),
        (lambda: analytics.load_corpus(b"text\na\n", empty="maybe"), "empty must be 'skip' or 'error'"),
    ]
    for call, message in cases:
        with pytest.raises(ParameterError, match=message):
            call()


def test_file_and_array_errors_are_their_family_members(tmp_path):
    from analytics.evaluation import evaluate, load_qrels
    from analytics.tables import save_subset, split_corpus

    with pytest.raises(CorpusError, match="Unknown format 'xls'"):
        analytics.load_corpus(b"text\na\n", format="xls")
    with pytest.raises(CorpusError, match="score 'high' is not a number"):
        load_qrels(b"query-id,corpus-id,score\nq1,d1,high\n", format="csv")
    with pytest.raises(CorpusError, match="No judged query has a relevant document"):
        evaluate({"q": ["d"]}, {"q": {"d": 0}})
    with analytics.Store(tmp_path / "s.duckdb") as store:
        store.add_corpus("c", analytics.load_corpus(b"text,lang\nalpha,en\nbeta,de\n", format="csv"))
        with pytest.raises(EmbeddingError, match=r"ids must be 2 positions in 0\.\.1"):
            analytics.import_vectors(store, "c", np.ones((2, 3)), "m", ids=[0, 5])
        with pytest.raises(EmbeddingError, match="3 vectors for 2 documents"):
            analytics.import_vectors(store, "c", np.ones((3, 3)), "m")
        with pytest.raises(ParameterError, match="Select at least one text"):
            save_subset(store, "c", "d", [])
        with pytest.raises(ParameterError, match="has no metadata column 'genre'"):
            split_corpus(store, "c", "genre")
        with pytest.raises(StoreError):
            store.texts("nosuchcorpus")
