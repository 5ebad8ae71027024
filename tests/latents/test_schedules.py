"""Schedules, weightings and parameterisations (spec B1, B3; decisions B6.1 and B6.3)."""

from __future__ import annotations

import math

import pytest
import torch

from parsimon.errors import ConfigError
from parsimon.latents.schedules import (
    PARAMETERIZATIONS,
    alpha_sigma,
    make_schedule,
    sample_t,
    to_x_eps,
    weight,
)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("lmax,lmin", [(5.0, -10.0), (10.0, -10.0), (3.0, -7.5)])
def test_schedule_endpoints_and_derivative(kind, lmax, lmin):
    s = make_schedule(kind, lmax, lmin)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert s.lam(t).tolist() == pytest.approx([lmax, lmin], abs=1e-9)
    ts = torch.linspace(0.01, 0.99, 49, dtype=torch.float64)
    h = 1e-6
    fd = (s.lam(ts + h) - s.lam(ts - h)) / (2 * h)
    assert torch.allclose(s.dlam_dt(ts), fd, rtol=1e-5, atol=1e-6)
    assert (s.dlam_dt(ts) < 0).all()  # λ decreases in t


def test_linear_prior_schedule_has_constant_rate():
    s = make_schedule("linear", 5.0, -10.0)  # spec B7: −λ' = 15
    assert torch.equal(s.dlam_dt(torch.rand(7)), torch.full((7,), -15.0))


def test_bad_schedule_rejected():
    with pytest.raises(ConfigError, match="lambda_min"):
        make_schedule("linear", -10.0, 5.0)
    with pytest.raises(ConfigError, match="schedule"):
        make_schedule("quadratic", 5.0, -10.0)


def test_b6_3_sigma_is_a_standard_deviation():
    """λ_z(0) = 5: α_0 = sqrt(sigmoid(5)) ≈ 0.9966 and σ_0 = sqrt(sigmoid(−5)) ≈ 0.0818 (spec B1; B6.3)."""
    a, s = alpha_sigma(torch.tensor(5.0, dtype=torch.float64))
    assert float(a) == pytest.approx(0.996648, abs=1e-6)
    assert float(s) == pytest.approx(0.081810, abs=1e-6)
    lam = torch.linspace(-12, 12, 25, dtype=torch.float64)
    a, s = alpha_sigma(lam)
    assert torch.allclose(a ** 2 + s ** 2, torch.ones_like(lam))
    assert torch.allclose(torch.log(a ** 2 / s ** 2), lam)


def test_b6_1_sigmoid_weight_discounts_low_noise():
    """Decision B6.1: w(λ) = sigmoid(b − λ) (Fig. 3), decreasing in λ: the low-noise (high-λ) levels are
    discounted, the high-noise ones weighted up to 1 (× c_lf in the decoder)."""
    lam = torch.linspace(-10, 10, 41)
    for b in (-2.0, 0.0, 2.0):
        w = weight("sigmoid", lam, b)
        assert torch.allclose(w, 1 / (1 + torch.exp(lam - b)))
        assert (w[1:] < w[:-1]).all()
        assert float(weight("sigmoid", torch.tensor([b]), b)) == pytest.approx(0.5)
        assert float(w[-1]) < 1e-3 < 0.999 < float(w[0])
    assert torch.equal(weight("elbo", lam, 3.0), torch.ones_like(lam))


@pytest.mark.parametrize("kind", PARAMETERIZATIONS.names())
def test_parameterizations_recover_x_and_eps(kind):
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(16, 3, generator=g, dtype=torch.float64), torch.randn(16, 3, generator=g, dtype=torch.float64)
    lam = torch.linspace(-8, 8, 16, dtype=torch.float64)[:, None]
    a, s = alpha_sigma(lam)
    z = a * x + s * eps
    out = {"eps": eps, "x": x, "v": a * eps - s * x}[kind]
    x_hat, eps_hat = to_x_eps(kind, out, z, a, s)
    assert torch.allclose(x_hat, x, atol=1e-9) and torch.allclose(eps_hat, eps, atol=1e-9)


def test_sample_t_is_low_discrepancy():
    t = sample_t(64, torch.Generator().manual_seed(3))
    assert ((t >= 0) & (t < 1)).all()
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, 1 / 64), atol=1e-6)
    assert math.isclose(float(torch.sort(t).values[0]), float(t.min()))
