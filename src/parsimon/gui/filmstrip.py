"""A filmstrip: the screenshots of one episode side by side, each captioned with the action that follows it."""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path

from parsimon.errors import ConfigError

__all__ = ["filmstrip"]


def filmstrip(frames: list[tuple[bytes, str]], path: str | os.PathLike, *, height: int = 360,
              max_frames: int = 8) -> Path:
    """Write ``frames`` ((PNG, caption) pairs) as one PNG strip of at most ``max_frames`` frames.

    Frames are scaled to ``height`` pixels; when there are more than ``max_frames`` the first ones and the
    last one are kept.
    """
    from PIL import Image, ImageDraw

    if not frames:
        raise ConfigError("`frames` must not be empty")
    if len(frames) > max_frames:
        frames = frames[: max_frames - 1] + frames[-1:]
    images = []
    for png, _ in frames:
        img = Image.open(io.BytesIO(png)).convert("RGB")
        images.append(img.resize((max(1, round(img.width * height / img.height)), height)))
    caption_h, pad = 46, 8
    width = sum(i.width for i in images) + pad * (len(images) + 1)
    strip = Image.new("RGB", (width, height + caption_h + 2 * pad), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x = pad
    for n, (img, (_, caption)) in enumerate(zip(images, frames, strict=True), 1):
        strip.paste(img, (x, pad))
        draw.rectangle((x - 1, pad - 1, x + img.width, pad + img.height), outline=(120, 120, 120))
        chars = max(12, img.width // 6)
        lines = textwrap.wrap(f"{n}. {caption}", chars)[:3]
        for i, line in enumerate(lines):
            draw.text((x, pad + height + 4 + 13 * i), line, fill=(0, 0, 0))
        x += img.width + pad
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    strip.save(out)
    return out
