"""Browser fixtures: one Chromium for every browser test of a module, and a local test page."""

from __future__ import annotations

from pathlib import Path

import pytest

PAGES = Path(__file__).resolve().parent / "pages"


@pytest.fixture(scope="module")
def session():
    """One headless Chromium per test module (skipped where Debian's Chromium is missing)."""
    from parsimon.errors import ConfigError
    from parsimon.gui.web.browser import BrowserSession, chromium_path

    try:
        chromium_path()
    except ConfigError as exc:
        pytest.skip(str(exc))
    s = BrowserSession()
    yield s
    s.close()


@pytest.fixture(scope="module")
def pages_server():
    """The test pages on loopback."""
    from parsimon.gui.web.server import StaticServer

    with StaticServer({"/t/": PAGES}) as srv:
        yield srv
