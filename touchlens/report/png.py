"""An SVG rendered to PNG by Chromium through Playwright (both optional: the SVG itself needs neither).

Playwright drives Debian's `chromium` package (`apt-get install chromium`); `playwright install`, a browser
download, is not needed. The page loads nothing: every request it would make is refused.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from touchlens.errors import TouchlensError

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_SIZE = re.compile(r'<svg[^>]*?\bwidth="(\d+)"[^>]*?\bheight="(\d+)"')


def chromium_path() -> str:
    """Debian's Chromium (or `chromium` on the PATH), or an error that says how to get it."""
    for candidate in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    raise TouchlensError(
        f"--png needs Chromium at {CHROMIUM} (Debian/Ubuntu: apt-get install chromium); the SVG itself needs nothing"
    )


def svg_to_png(svg: str, path: str | os.PathLike[str], scale: float = 2.0) -> None:
    """Render a standalone SVG document to a PNG file at `scale` device pixels per SVG pixel."""
    executable = chromium_path()
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise TouchlensError("--png needs Playwright: pip install playwright (no browser download needed)") from None
    size = _SIZE.search(svg)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (1200, 800)
    page_html = f"<!doctype html><html><body style='margin:0'>{svg}</body></html>"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=scale)
                page.route("**/*", lambda route: route.abort())
                page.set_content(page_html)
                page.locator("svg").first.screenshot(path=str(path))
            finally:
                browser.close()
    except Error as exc:
        raise TouchlensError(f"Chromium could not render the PNG: {exc.message}") from None
