"""Static images of figures (PNG at a chosen scale, SVG) through kaleido, which drives a
Chromium: the system one (/usr/bin/chromium) where kaleido has none of its own."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DependencyError, ParameterError

SYSTEM_CHROMIUM = "/usr/bin/chromium"


def _use_system_chromium() -> None:
    if "BROWSER_PATH" not in os.environ and Path(SYSTEM_CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = SYSTEM_CHROMIUM


def figure_image(
    fig, format: str = "png", *, width: int = 1200, height: int = 700, scale: float = 2.0
) -> bytes:
    """The figure as PNG (``width*scale`` x ``height*scale`` pixels) or SVG bytes."""
    if format not in ("png", "svg"):
        raise ParameterError(f"format must be 'png' or 'svg', got {format!r}.")
    if not (0 < scale <= 8):
        raise ParameterError(f"scale must be in (0, 8], got {scale}.")
    _use_system_chromium()
    try:
        return fig.to_image(format=format, width=width, height=height, scale=scale if format == "png" else 1)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DependencyError(
            f"Static export failed ({exc}). It needs kaleido and a Chromium: install Debian's "
            "chromium, or set BROWSER_PATH to a Chrome/Chromium binary."
        ) from None
