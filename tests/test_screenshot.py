"""analytics.screenshot's wait for a server: what every browser test and benchmark starts with."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import free_port

from analytics.screenshot import serving


def test_serving_gives_up_when_the_process_ends_or_the_time_is_up():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    t0 = time.monotonic()
    assert serving(url, ended, timeout=60) is False
    assert time.monotonic() - t0 < 10  # at once: the process is gone, no need to wait it out
    assert serving(url, timeout=0.5) is False  # no process to watch: the timeout bounds it


def test_serving_is_true_once_the_health_check_answers(tmp_path):
    (tmp_path / "_stcore").mkdir()
    (tmp_path / "_stcore" / "health").write_text("ok")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert serving(f"http://127.0.0.1:{port}", proc, timeout=30) is True
    finally:
        proc.kill()
        proc.wait()
