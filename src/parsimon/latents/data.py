"""Image data with nothing downloaded: scikit-learn's digits, patches of its two sample photographs, or any
folder of images.

* ``digits``: ``sklearn.datasets.load_digits`` — 1,797 grey 8×8 images with 17 levels (0–16) and labels,
  scaled to ``[−1, 1]``; ``image_size`` > 8 upsamples bilinearly. Split by a seeded permutation (default
  1,500 train / 297 test, spec B7).
* ``patches``: RGB patches cut from ``load_sample_images()`` (china.jpg and flower.jpg, 427×640), after
  downscaling the photographs by ``scale``. Training patches come from the left 80 % of each photograph and
  test patches from the right 20 %, so the two sets share no pixel.
* ``folder``: every ``.png``/``.jpg``/``.jpeg``/``.bmp``/``.gif``/``.webp`` file under ``path`` (recursively),
  centre-cropped to a square and resized to ``image_size``; split by a seeded permutation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from parsimon.errors import ConfigError, DependencyNotInstalled
from parsimon.registry import Registry

__all__ = ["DATASETS", "DataConfig", "ImageData", "IMAGE_SUFFIXES", "load_data"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True)
class DataConfig:
    """Which images, at what size, split how."""

    name: str = "digits"  # "digits" | "patches" | "folder" (registry DATASETS)
    path: str = ""  # folder only: the image folder
    image_size: int = 8  # digits: 8 (native) or larger (upsampled); patches/folder: side of the square image
    channels: int = 0  # 0 = the data's own (digits 1, patches 3, folder 3); 1 or 3 converts
    n_test: int = 297  # digits: held-out images (spec B7: ~1,500 / 297); patches: test patches
    n_train: int = 4000  # patches only: training patches
    scale: int = 4  # patches only: downscale factor of the photographs before cutting
    test_fraction: float = 0.15  # folder only: held-out share
    split_seed: int = 0  # the split's permutation (and the patch positions)

    def __post_init__(self) -> None:
        DATASETS.check(self.name)
        if self.name == "folder" and not self.path:
            raise ConfigError("`data` folder needs a path (--data DIR)")
        if self.image_size < 2:
            raise ConfigError(f"`image_size` must be >= 2, got {self.image_size}")
        if self.channels not in (0, 1, 3):
            raise ConfigError(f"`channels` must be 0 (the data's own), 1 or 3, got {self.channels}")
        if self.n_test < 1 or self.n_train < 1 or self.scale < 1:
            raise ConfigError("`n_test`, `n_train` and `scale` must be >= 1")
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"`test_fraction` must be in (0, 1), got {self.test_fraction}")

    def replace(self, **kw) -> DataConfig:
        return dataclasses.replace(self, **kw)


@dataclass
class ImageData:
    """A train/test split of images ``[N, C, H, W]`` in ``[−1, 1]`` (labels where the data has them)."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])

    @property
    def channels(self) -> int:
        return int(self.train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.shape[2])


def _convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if channels == 0 or x.shape[1] == channels:
        return x
    if channels == 1:  # ITU-R 601 luma
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x.expand(-1, 3, -1, -1).contiguous()


def _split(n: int, n_test: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0 < n_test < n:
        raise ConfigError(f"`n_test` must be between 1 and {n - 1} for {n} images, got {n_test}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:], perm[:n_test]


def _digits(cfg: DataConfig) -> ImageData:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DependencyNotInstalled("scikit-learn", "latents", "the digits data") from exc
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # [1797, 1, 8, 8] in [0, 1]
    y = torch.tensor(d.target, dtype=torch.long)
    if cfg.image_size != 8:
        x = F.interpolate(x, size=(cfg.image_size, cfg.image_size), mode="bilinear", align_corners=False).clamp(0, 1)
    x = _convert_channels(x * 2 - 1, cfg.channels)
    tr, te = _split(len(x), cfg.n_test, cfg.split_seed)
    return ImageData("digits", x[tr], x[te], y[tr], y[te])


def _patches(cfg: DataConfig) -> ImageData:
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as exc:  # pragma: no cover
        raise DependencyNotInstalled("scikit-learn", "latents", "the photo patches") from exc
    photos = [torch.tensor(np.asarray(im), dtype=torch.float32).permute(2, 0, 1)[None] / 255.0
              for im in load_sample_images().images]
    if cfg.scale > 1:
        photos = [F.avg_pool2d(p, cfg.scale) for p in photos]
    g = torch.Generator().manual_seed(cfg.split_seed)
    p = cfg.image_size

    def cut(n: int, left: bool) -> torch.Tensor:
        out = []
        for i in range(n):
            img = photos[i % len(photos)][0]
            _, h, w = img.shape
            cut_x = int(0.8 * w)
            lo, hi = (0, cut_x - p) if left else (cut_x, w - p)
            if hi < lo or h < p:
                raise ConfigError(f"patches of {p} px do not fit photographs of {h}×{w} px at `scale` {cfg.scale}")
            y0 = int(torch.randint(0, h - p + 1, (1,), generator=g))
            x0 = int(torch.randint(lo, hi + 1, (1,), generator=g))
            out.append(img[:, y0:y0 + p, x0:x0 + p])
        return torch.stack(out)

    train, test = cut(cfg.n_train, True), cut(cfg.n_test, False)
    return ImageData("patches", _convert_channels(train * 2 - 1, cfg.channels),
                     _convert_channels(test * 2 - 1, cfg.channels))


def _folder(cfg: DataConfig) -> ImageData:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover
        raise DependencyNotInstalled("pillow", "latents", "image folders") from exc
    root = Path(cfg.path)
    if not root.is_dir():
        raise ConfigError(f"`--data` {root}: no such folder")
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if len(files) < 2:
        raise ConfigError(f"`--data` {root}: needs at least 2 images ({', '.join(IMAGE_SUFFIXES)}), found {len(files)}")
    mode = "L" if cfg.channels == 1 else "RGB"
    arrays = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert(mode)
                w, h = im.size
                s = min(w, h)
                im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                im = im.resize((cfg.image_size, cfg.image_size), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(im, dtype=np.float32) / 255.0)
        except OSError as exc:
            raise ConfigError(f"`--data` {f}: not a readable image ({exc})") from None
    x = torch.tensor(np.stack(arrays))
    x = x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)
    n_test = max(1, int(round(cfg.test_fraction * len(x))))
    tr, te = _split(len(x), n_test, cfg.split_seed)
    x = x * 2 - 1
    return ImageData(f"folder:{root}", x[tr].contiguous(), x[te].contiguous())


DATASETS: Registry = Registry("data")
DATASETS.register("digits", _digits, describe="scikit-learn digits, 8×8 grey (upsampled if image_size > 8)")
DATASETS.register("patches", _patches, describe="RGB patches of scikit-learn's two sample photographs")
DATASETS.register("folder", _folder, describe="every image under --data DIR")


def load_data(cfg: DataConfig) -> ImageData:
    """Load and split the images named by ``cfg``."""
    return DATASETS.get(cfg.name)(cfg)
