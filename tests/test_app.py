"""The run command's app: a real Streamlit server on a free localhost port serves the page."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    store = tmp_path_factory.mktemp("server") / "store.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_STORE": str(store), "EMBEX_SAMPLE": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
                    pytest.fail(f"streamlit did not come up on {url}: {out[-2000:]}")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_server_serves_the_app_page(server):
    with urllib.request.urlopen(server, timeout=10) as r:
        html = r.read().decode()
    assert r.status == 200
    assert "<div id=\"root\">" in html or "id=\"root\"" in html
    with urllib.request.urlopen(f"{server}/_stcore/health", timeout=5) as r:
        assert r.read().decode().strip() == "ok"
