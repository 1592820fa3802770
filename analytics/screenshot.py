"""PNG screenshots of dashboard pages (deep links) or reports in headless Chromium, for
scripted report pipelines. Uses Playwright with the system Chromium."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from .errors import DependencyError
from .export import SYSTEM_CHROMIUM

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def serving(url: str, proc=None, *, timeout: float = 120) -> bool:
    """Wait for the Streamlit server at ``url`` to answer its health check: True once it does,
    False when its process ``proc`` ended first or ``timeout`` seconds passed (the caller stops
    it and says why, from its own log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return True
        except OSError:
            if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
                return False
            time.sleep(0.3)


_SCRIPT_DONE = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app !== null && app.getAttribute('data-test-script-state') === 'notRunning';
}"""


# The WebGL maps (dashboard/scatter.py) draw after the page's script has ended: each one
# registers itself in window.__embexScatter and says when its points are on the canvas.
_MAPS_DRAWN = """() => Object.values(window.__embexScatter || {}).every(
  h => !h.view.root.isConnected || h.drawn() > 0 || h.view.root.dataset.error !== undefined)"""


def wait_for_app(page, timeout_ms: float = 120_000) -> None:
    """Wait until a Streamlit page has finished running its script (not just started drawing)."""
    page.wait_for_function(_SCRIPT_DONE, timeout=timeout_ms)


def _file_name(url: str, i: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "-", url.split("://", 1)[-1]).strip("-")[:80] or "page"
    return f"{i + 1:02d}-{stem}.png"


def screenshot_urls(
    urls, out_dir, *, width: int = 1400, height: int = 900, timeout_s: float = 120
) -> list[Path]:
    """Open each URL, wait until the page (a Streamlit app or a plotly report) has drawn, and
    save a PNG of ``width`` x ``height``. Returns the paths written."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise DependencyError(
            "screenshot needs Playwright: pip install playwright "
            "(it drives the system Chromium; no browser download)."
        ) from None
    if not Path(SYSTEM_CHROMIUM).exists():
        raise DependencyError(
            f"screenshot needs Chromium at {SYSTEM_CHROMIUM} (Debian: apt-get install chromium)."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=SYSTEM_CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for i, url in enumerate(urls):
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(url, timeout=timeout_s * 1000)
                if page.locator('[data-testid="stApp"]').count():
                    wait_for_app(page, timeout_s * 1000)
                    page.wait_for_timeout(800)  # let plotly finish drawing (and a map's code load)
                    page.wait_for_function(_MAPS_DRAWN, timeout=timeout_s * 1000)
                elif page.locator(".js-plotly-plot").count():
                    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=timeout_s * 1000)
                path = out / _file_name(url, i)
                page.screenshot(path=str(path))
                paths.append(path)
                page.close()
        finally:
            browser.close()
    return paths
