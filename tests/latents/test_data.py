"""The data sources: digits, photo patches, a folder of images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from parsimon.errors import ConfigError
from parsimon.latents.data import DataConfig, load_data


def test_digits_split_and_range():
    d = load_data(DataConfig())
    assert d.train.shape == (1500, 1, 8, 8) and d.test.shape == (297, 1, 8, 8)
    assert float(d.train.min()) == -1.0 and float(d.train.max()) == 1.0
    assert len(set(d.train_labels.tolist())) == 10
    # 17 grey levels (0..16) on [−1, 1]
    assert len(torch.unique(d.train)) == 17
    up = load_data(DataConfig(image_size=16))
    assert up.train.shape == (1500, 1, 16, 16)
    assert torch.equal(load_data(DataConfig()).test, d.test)  # the split is seeded


def test_patches_shapes_and_grey_conversion():
    d = load_data(DataConfig(name="patches", image_size=8, n_train=50, n_test=20))
    assert d.train.shape == (50, 3, 8, 8) and d.test.shape == (20, 3, 8, 8) and d.train_labels is None
    assert d.train.min() >= -1 and d.train.max() <= 1
    g = load_data(DataConfig(name="patches", image_size=8, n_train=50, n_test=20, channels=1))
    assert g.train.shape == (50, 1, 8, 8)


def test_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(tmp_path / f"im{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    d = load_data(DataConfig(name="folder", path=str(tmp_path), image_size=8, test_fraction=0.34))
    assert d.train.shape == (4, 3, 8, 8) and d.test.shape == (2, 3, 8, 8)
    with pytest.raises(ConfigError, match="no such folder"):
        load_data(DataConfig(name="folder", path=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match="path"):
        DataConfig(name="folder")
