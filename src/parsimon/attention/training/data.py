"""Generated video clips: sklearn digits moving and bouncing on a small canvas.

Nothing is downloaded: the 8×8 digits ship inside scikit-learn. Each clip is a digit upsampled to
``digit`` pixels that starts at a random position with a random integer velocity and bounces off the
canvas edges. Values are scaled to [-1, 1] (background -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from parsimon.errors import ConfigError

__all__ = ["ClipConfig", "ClipDataset", "moving_digits"]


@dataclass(frozen=True)
class ClipConfig:
    """Shape of the generated clips."""

    frames: int = 8
    size: int = 32
    digit: int = 16  # side of the upsampled digit, pixels
    max_speed: int = 3  # pixels per frame, per axis

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if not 4 <= self.digit <= self.size:
            raise ConfigError(f"digit must be in [4, size={self.size}], got {self.digit}")
        if self.max_speed < 0:
            raise ConfigError(f"max_speed must be >= 0, got {self.max_speed}")


def _bounce(p0: torch.Tensor, v: torch.Tensor, frames: int, span: int) -> torch.Tensor:
    """Positions ``[n, frames]`` of a point moving at ``v`` and reflecting inside ``[0, span]``."""
    t = torch.arange(frames)
    raw = p0[:, None] + v[:, None] * t[None, :]
    if span == 0:
        return torch.zeros_like(raw)
    period = 2 * span
    r = raw.remainder(period)
    return torch.where(r > span, period - r, r)


def moving_digits(n: int, cfg: ClipConfig = ClipConfig(), *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips of shape ``[n, 1, frames, size, size]`` in [-1, 1] and their digit labels ``[n]``."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")
    from sklearn.datasets import load_digits

    g = torch.Generator().manual_seed(seed)
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32) / 16.0  # [1797, 8, 8] in [0, 1]
    labels_all = torch.tensor(digits.target, dtype=torch.long)
    pick = torch.randint(0, images.shape[0], (n,), generator=g)
    sprites = torch.nn.functional.interpolate(images[pick, None], size=(cfg.digit, cfg.digit), mode="bilinear",
                                              align_corners=False)[:, 0].clamp(0, 1)
    span = cfg.size - cfg.digit
    p0 = torch.randint(0, span + 1, (n, 2), generator=g)
    v = torch.randint(-cfg.max_speed, cfg.max_speed + 1, (n, 2), generator=g)
    ys = _bounce(p0[:, 0], v[:, 0], cfg.frames, span)
    xs = _bounce(p0[:, 1], v[:, 1], cfg.frames, span)
    clips = torch.zeros(n, cfg.frames, cfg.size, cfg.size)
    for f in range(cfg.frames):
        for i in range(n):
            y, x = int(ys[i, f]), int(xs[i, f])
            clips[i, f, y:y + cfg.digit, x:x + cfg.digit] = sprites[i]
    return clips[:, None] * 2 - 1, labels_all[pick]


class ClipDataset:
    """A fixed set of generated clips held in memory (``x``: ``[n, C, F, H, W]``, ``y``: ``[n]``)."""

    def __init__(self, n: int = 512, cfg: ClipConfig = ClipConfig(), *, seed: int = 0):
        self.cfg = cfg
        self.seed = seed
        self.x, self.y = moving_digits(n, cfg, seed=seed)

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.y[idx]
