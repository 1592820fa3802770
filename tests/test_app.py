"""The run command's app: a real Streamlit server on a free localhost port serves the page."""

from __future__ import annotations

import urllib.request

import pytest
from conftest import streamlit_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("server") / "store.duckdb") as url:
        yield url


def test_server_serves_the_app_page(server):
    with urllib.request.urlopen(server, timeout=10) as r:
        html = r.read().decode()
    assert r.status == 200
    assert 'id="root"' in html
    with urllib.request.urlopen(f"{server}/_stcore/health", timeout=5) as r:
        assert r.read().decode().strip() == "ok"
