"""Start the dashboard and its job executor in one process (what ``embex serve`` runs).

The executor is created before the server starts, so jobs that a crash interrupted resume at
once rather than when the first visitor arrives. Streamlit lives here, in the dashboard: the
``analytics`` library only launches this file.

    python dashboard/serve.py --store PATH [--port 8501] [--address localhost]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the analytics package beside this folder


def main(argv: list[str] | None = None) -> int:
    from streamlit import config as st_config
    from streamlit.web import bootstrap

    from analytics.errors import ExplorerError
    from analytics.jobs import executor_for

    ap = argparse.ArgumentParser(prog="embex serve", description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--port", type=int, default=8501)
    ap.add_argument("--address", default="localhost")
    args = ap.parse_args(argv)
    path = args.store.expanduser().resolve()
    os.environ["EMBEX_STORE"] = str(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        executor_for(path).warm()  # opens the store (a clear error if it cannot), takes up its jobs
    except ExplorerError as exc:
        print(f"embex: error: {exc}", file=sys.stderr)
        return 2
    app = HERE / "app.py"
    flags = {
        "server.port": args.port,
        "server.address": args.address,
        "server.headless": True,
        # the settings a hosted instance must have, whatever folder this starts from
        "client.showErrorDetails": "none",
        "browser.gatherUsageStats": False,
        "runner.magicEnabled": False,
    }
    st_config._main_script_path = str(app)
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(app), False, [], flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
