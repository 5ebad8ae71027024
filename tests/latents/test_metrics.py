"""PSNR, Fréchet distance, nearest-neighbour distance, feature nets and FLOP counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from parsimon.latents.flops import measured_flops, paper_forward_flops, step_flops
from parsimon.latents.metrics import (
    bits_per_pixel,
    frechet_distance,
    nn_distance,
    psnr,
    random_conv_features,
)


def test_frechet_distance_against_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6))
    b = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) * 0.7 + 0.3
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    want = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_psnr_and_bits_by_hand():
    ref = torch.zeros(2, 1, 4, 4)
    x = torch.full((2, 1, 4, 4), 0.2)  # error 0.1 on the [0, 1] scale: MSE 0.01 → 20 dB
    assert psnr(x, ref).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert bits_per_pixel(64 * math.log(2), 8) == pytest.approx(1.0)


def test_nn_distance():
    train = torch.rand(10, 1, 4, 4) * 2 - 1
    assert torch.allclose(nn_distance(train[:3], train), torch.zeros(3), atol=1e-3)
    far = train[:1] + 0.4  # +0.2 on the [0, 1] scale, per pixel
    assert float(nn_distance(far, train[:1])) == pytest.approx(0.2, abs=1e-5)


def test_random_conv_features_are_fixed_by_the_seed():
    x = torch.rand(4, 3, 16, 16)
    f1, f2 = random_conv_features(3, seed=0), random_conv_features(3, seed=0)
    assert torch.equal(f1.features(x), f2.features(x))
    assert f1.features(x).shape == (4, 128)
    assert not torch.equal(f1.features(x), random_conv_features(3, seed=1).features(x))


def test_flops_paper_count_and_measured():
    lin = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
    x = torch.randn(3, 10)
    assert paper_forward_flops(lambda: lin(x), [lin]) == 2 * 3 * (10 * 20 + 20 * 5)
    assert measured_flops(lambda: lin(x)) == 2 * 3 * (10 * 20 + 20 * 5)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    assert paper_forward_flops(lambda: conv(torch.randn(1, 2, 5, 5)), [conv]) == 2 * 25 * 4 * 2 * 9


def test_step_flops_of_a_job():
    from parsimon.latents.model import ULConfig, UnifiedLatents

    job = UnifiedLatents(ULConfig(decoder_hidden=64, prior_hidden=64, encoder_hidden=64))
    f = step_flops(job, torch.rand(4, 1, 8, 8) * 2 - 1, torch.Generator().manual_seed(0))
    assert f["paper"] == 3 * f["forward"]
    # backward skips the input gradients of the first layers, so the measurement is a little under 3×
    assert 0.8 * f["paper"] < f["measured"] <= f["paper"]
    assert all(p.grad is None for p in job.parameters())
