"""End-to-end fixtures: a headless Chromium (Debian's, driven by Playwright) for the reports.

The fixture skips, saying what is missing, when the ``playwright`` package or
``/usr/bin/chromium`` is absent (Playwright's own browser download is not used).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PageEvents:
    """What a page did while it was open: console errors, dialogs, requested URLs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_in_chromium() -> Iterator[Callable[[Path], tuple[Any, PageEvents]]]:
    """``open(path) -> (page, events)``: the file loaded in headless Chromium, its errors,
    dialogs and requests recorded from the start."""
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def open_page(path: Path) -> tuple[Any, PageEvents]:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            events = PageEvents()
            page.on("console", lambda m: events.errors.append(m.text) if m.type == "error"
                    else None)  # fmt: skip
            page.on("pageerror", lambda e: events.errors.append(str(e)))
            page.on("dialog", lambda d: (events.dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: events.requests.append(r.url))
            page.goto(path.as_uri(), wait_until="load")
            return page, events

        try:
            yield open_page
        finally:
            browser.close()
