"""Start Chromium through Playwright: Debian's ``/usr/bin/chromium``, never a downloaded browser.

``playwright install`` is never run (it downloads a browser; machines here are offline). The executable
comes from ``$PARSIMON_CHROMIUM``, else ``/usr/bin/chromium``, else ``chromium`` on the ``PATH``; the
flags keep the browser off the network and quiet. One :class:`BrowserSession` holds one Playwright driver
and one browser; environments open a fresh context (cookies, storage, viewport, phone emulation) per
episode, which costs milliseconds instead of a browser start.

Checked: Playwright 1.44 (pinned by browsergym-core) drives Chromium 156 (Debian 156.0.8078) for
everything used here (pages, mouse, keyboard, touch, CDP accessibility tree, screenshots, device
emulation); its ``Locator.aria_snapshot`` (Playwright >= 1.49) is not used.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Any

from parsimon.errors import ConfigError, DependencyNotInstalled

__all__ = ["CHROMIUM_ARGS", "BrowserSession", "chromium_path", "phone_profile"]

CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--font-render-hinting=none")


def chromium_path() -> str:
    """The Chromium executable: ``$PARSIMON_CHROMIUM``, ``/usr/bin/chromium`` or ``chromium`` on the PATH."""
    env = os.environ.get("PARSIMON_CHROMIUM")
    if env:
        if not os.access(env, os.X_OK):
            raise ConfigError(f"$PARSIMON_CHROMIUM={env} is not an executable file")
        return env
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigError("Chromium was not found: install Debian's package (`apt-get install chromium`) or set "
                      "$PARSIMON_CHROMIUM; `playwright install` is not used")


@dataclass(frozen=True)
class PhoneProfile:
    """Phone emulation for a browser context (a Pixel 5 by default, as Playwright describes it)."""

    width: int = 393
    height: int = 727
    device_scale_factor: float = 2.75
    user_agent: str = ("Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/124.0.0.0 Mobile Safari/537.36")

    def context_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``browser.new_context`` for this phone."""
        return {"viewport": {"width": self.width, "height": self.height},
                "screen": {"width": self.width, "height": self.height},
                "device_scale_factor": self.device_scale_factor, "is_mobile": True, "has_touch": True,
                "user_agent": self.user_agent}


def phone_profile(name: str = "pixel5") -> PhoneProfile:
    """A named phone profile (``pixel5``, ``small``: a 360 x 640 phone at scale 2)."""
    profiles = {"pixel5": PhoneProfile(), "small": PhoneProfile(360, 640, 2.0)}
    if name not in profiles:
        raise ConfigError(f"`phone` must be one of {sorted(profiles)}, got {name!r}")
    return profiles[name]


class BrowserSession:
    """One Playwright driver and one headless Chromium; close it (or use ``with``) when done.

    Args:
        headless: Run without a window.
        executable: The Chromium binary (default :func:`chromium_path`).
        args: Extra command-line flags (added to :data:`CHROMIUM_ARGS`).
        playwright: An already started sync Playwright to reuse (its owner stops it).
    """

    def __init__(self, *, headless: bool = True, executable: str | None = None, args: tuple[str, ...] = (),
                 playwright: Any = None) -> None:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:
            raise DependencyNotInstalled("playwright", "gui", "the browser environments") from exc
        self._own = playwright is None
        self.playwright = sync_playwright().start() if playwright is None else playwright
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=executable or chromium_path(), headless=headless,
                args=[*CHROMIUM_ARGS, *args])
        except Exception:
            if self._own:
                self.playwright.stop()
            raise
        self.closed = False

    @property
    def version(self) -> str:
        """The browser's version string."""
        return self.browser.version

    def new_context(self, *, viewport: tuple[int, int] | None = None, phone: PhoneProfile | None = None,
                    **kwargs: Any) -> Any:
        """A fresh browser context: a desktop viewport, or a phone's screen with touch."""
        if phone is not None:
            opts = phone.context_kwargs()
        else:
            w, h = viewport or (1280, 720)
            opts = {"viewport": {"width": int(w), "height": int(h)}, "device_scale_factor": 1}
        opts.update(kwargs)
        opts.setdefault("locale", "en-US")
        opts.setdefault("timezone_id", "UTC")
        return self.browser.new_context(**opts)

    def close(self) -> None:
        """Close the browser (and the driver, if this session started it)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.browser.close()
        finally:
            if self._own:
                self.playwright.stop()

    def __enter__(self) -> BrowserSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
