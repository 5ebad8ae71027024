"""Screen geometry of the GUI-Owl protocol: the 0–1000 coordinate grid and Qwen-VL's ``smart_resize``.

GUI-Owl-1.5 is told "The screen's resolution is 1000x1000" and answers integer coordinates on that grid
for both axes whatever the real aspect ratio; clients map them with ``x_px = x / 1000 * W`` (the
OSWorld-MCP client divides by 999 instead: pass ``scale=999``). Screenshots are resized before upload so
that both sides are multiples of the vision encoder's patch ``factor`` and the pixel count lies in
``[min_pixels, max_pixels]`` (the official clients use factor 16 on the desktop, 28 on the phone,
``min_pixels`` 3136 and ``max_pixels`` 10,035,200).

Example:
    >>> smart_resize(1080, 1920, factor=16)
    (1088, 1920)
    >>> to_pixels(Point(500, 250), (1280, 720))
    Point(x=640.0, y=180.0, space='px')
    >>> to_norm1000(Point(640, 180, "px"), (1280, 720))
    Point(x=500, y=250, space='norm1000')
"""

from __future__ import annotations

import math

from parsimon.errors import ConfigError, InvalidAction
from parsimon.gui.actions import Point

__all__ = ["MAX_PIXELS", "MIN_PIXELS", "NORM", "resize_for_model", "smart_resize", "to_norm1000", "to_pixels"]

NORM = 1000  # the grid GUI-Owl answers on (both axes)
MIN_PIXELS = 3136  # official clients
MAX_PIXELS = 10_035_200  # official clients
MAX_RATIO = 200  # Qwen-VL refuses more elongated images


def smart_resize(height: int, width: int, *, factor: int = 16, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """The (height, width) a Qwen-VL model sees for an image of ``height`` × ``width`` pixels.

    Both sides are rounded to the nearest multiple of ``factor`` (at least ``factor``); if the area then
    exceeds ``max_pixels`` the image is scaled down (sides floored to the factor), if it falls below
    ``min_pixels`` it is scaled up (sides ceiled), keeping the aspect ratio as closely as the grid allows.

    Raises:
        ConfigError: a side below 1, ``factor`` below 1, ``min_pixels > max_pixels``, or an aspect ratio
            above 200.
    """
    if height < 1 or width < 1:
        raise ConfigError(f"`height` and `width` must be >= 1, got {height} x {width}")
    if factor < 1:
        raise ConfigError(f"`factor` must be >= 1, got {factor}")
    if not 0 < min_pixels <= max_pixels:
        raise ConfigError(f"`min_pixels` must be in (0, max_pixels], got {min_pixels} > {max_pixels}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ConfigError(f"the aspect ratio must be at most {MAX_RATIO}, got {height} x {width}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_for_model(png: bytes, *, factor: int = 16, min_pixels: int = MIN_PIXELS,
                     max_pixels: int = MAX_PIXELS) -> bytes:
    """A PNG resized to :func:`smart_resize`'s size (unchanged bytes when the size already fits)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(png))
    h, w = smart_resize(img.height, img.width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    if (h, w) == (img.height, img.width):
        return png
    buf = io.BytesIO()
    img.convert("RGB").resize((w, h), Image.Resampling.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def _size(size: tuple[float, float]) -> tuple[float, float]:
    w, h = size
    if not (w > 0 and h > 0):
        raise ConfigError(f"`size` must be (width, height) > 0, got {size!r}")
    return float(w), float(h)


def to_pixels(point: Point, size: tuple[float, float], *, scale: int = NORM) -> Point:
    """A norm1000 point in pixels of a screen of ``size = (width, height)`` (px points pass through)."""
    if point.space == "px":
        return point
    w, h = _size(size)
    return Point(point.x / scale * w, point.y / scale * h, "px")


def to_norm1000(point: Point, size: tuple[float, float], *, scale: int = NORM) -> Point:
    """A pixel point on the integer 0–1000 grid (norm1000 points pass through).

    Raises:
        InvalidAction: the point lies outside the screen.
    """
    if point.space == "norm1000":
        return point
    w, h = _size(size)
    if not (0 <= point.x <= w and 0 <= point.y <= h):
        raise InvalidAction(f"point ({point.x:g}, {point.y:g}) px lies outside the {w:g} x {h:g} screen")
    return Point(min(scale, round(point.x / w * scale)), min(scale, round(point.y / h * scale)), "norm1000")
