"""The loss terms against hand-computed values, and the bitrate bound against the Gaussian oracle (spec B2)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from parsimon.latents import losses
from parsimon.latents.evaluate import rate_bound
from parsimon.latents.model import ULConfig, UnifiedLatents
from parsimon.latents.schedules import alpha_sigma


def test_prior_diffusion_term_by_hand():
    eps = torch.tensor([[1.0, 2.0], [0.5, -0.5]])
    eps_hat = torch.tensor([[0.0, 0.0], [0.5, 0.5]])
    out = losses.prior_diffusion_term(eps, eps_hat, torch.tensor([-15.0, -15.0]))
    # −λ'/2 · ||ε − ε̂||²: 7.5 · 5 and 7.5 · 1
    assert out.tolist() == pytest.approx([37.5, 7.5])


def test_prior_kl_term_by_hand():
    z = torch.tensor([[1.0, -2.0]])
    lam1 = -10.0
    a2, s2 = 1 / (1 + math.exp(10)), 1 / (1 + math.exp(-10))
    want = 0.5 * sum(a2 * v * v + s2 - 1 - math.log(s2) for v in (1.0, -2.0))
    assert float(losses.prior_kl_term(z, lam1)) == pytest.approx(want, rel=1e-6)
    assert float(losses.prior_kl_term(torch.zeros(1, 3), 2.0)) > 0  # a KL of differing Gaussians


def test_b6_2_decoder_term_uses_minus_dlambda():
    """Decision B6.2: the decoder term is −λ'/2 · c_lf · w · ||ε − ε̂||², positive since λ' < 0."""
    eps, eps_hat = torch.ones(2, 4), torch.zeros(2, 4)
    out = losses.decoder_term(eps, eps_hat, torch.tensor([-20.0, -20.0]), torch.tensor([0.25, 1.0]), 1.5)
    assert out.tolist() == pytest.approx([0.5 * 20 * 1.5 * 0.25 * 4, 0.5 * 20 * 1.5 * 4])
    assert (out > 0).all()


def test_mse_and_learned_variance_terms_by_hand():
    x, xh = torch.zeros(1, 4), torch.full((1, 4), 0.1)
    assert float(losses.mse_decoder_term(x, xh, 0.1, 2.0)) == pytest.approx(2.0 * 4 * 0.01 / (2 * 0.01))
    # Eq. 5 with σ_z² = 1 at λ_z(0) = 5: −½ log(e^5 + 1) per dimension
    assert float(losses.learned_variance_term(torch.zeros(1, 3), 5.0)) == pytest.approx(-1.5 * math.log(math.exp(5) + 1))
    kl = losses.gaussian_kl_to_standard(torch.tensor([[1.0]]), 0.5)
    assert float(kl) == pytest.approx(0.5 * (1 + 0.25 - 1 - 2 * math.log(0.5)))


class _GaussianOraclePrior(nn.Module):
    """The Bayes-optimal ε-predictor for latents z ~ N(0, v I): x̂ = α v z_t / (α² v + σ²)."""

    def __init__(self, v: float) -> None:
        super().__init__()
        self.v = v
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z_t, lam, cond=None):
        a, s = alpha_sigma(lam.double())
        a, s = a.view(-1, 1, 1, 1), s.view(-1, 1, 1, 1)
        x_hat = a * self.v * z_t.double() / (a * a * self.v + s * s)
        return ((z_t.double() - a * x_hat) / s).float()


class _Slice(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :32].reshape(-1, 2, 4, 4)


@pytest.mark.parametrize("v", [0.05, 1.0])
def test_bound_matches_gaussian_mutual_information(v):
    """With the optimal prior for Gaussian latents, E[L_z] = I(x; z_0) = ½ log(1 + v e^{λ_z(0)}) per
    dimension (up to O(e^{2 λ_z(1)})): the bound's sign, size and units (nats → bits → bits/pixel)."""
    model = UnifiedLatents(ULConfig())
    model.encoder, model.prior = _Slice(), _GaussianOraclePrior(v)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 1, 8, 8, generator=g) * math.sqrt(v)
    nats_per_dim = 0.5 * math.log(1 + v * math.exp(5.0))
    with torch.no_grad():
        per_example = model.rate(model.encode(x), torch.rand(2000, generator=g), torch.randn(2000, 2, 4, 4, generator=g))
    assert (per_example >= 0).all()  # each sample of the integrand and the KL are non-negative
    res = rate_bound(model, x, t_samples=32, generator=g)
    want_bits = 32 * nats_per_dim / math.log(2)
    assert res["bits_per_image"] == pytest.approx(want_bits, abs=4 * res["bits_per_image_stderr"] + 0.02 * want_bits)
    assert res["bits_per_pixel"] == pytest.approx(res["bits_per_image"] / 64)
    assert res["nats_per_image"] == pytest.approx(res["bits_per_image"] * math.log(2))
    assert 0 < res["bits_per_pixel_stderr"] < 0.02 * res["bits_per_pixel"]


def test_model_loss_matches_the_terms():
    """The joint loss of Algorithm 1 equals the sum of the terms computed by hand from the same noise."""
    torch.manual_seed(0)
    cfg = ULConfig(decoder_dropout=0.0, decoder_hidden=32, prior_hidden=32, encoder_hidden=32, bias=1.0,
                   loss_factor=1.7, rate_warmup=0)
    model = UnifiedLatents(cfg)
    for p in model.parameters():  # zero-initialised outputs would hide the networks' role
        nn.init.normal_(p, std=0.1)
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    noise = model.draw(5, torch.Generator().manual_seed(1))
    loss, logs = model(x, noise)
    z = model.encode(x)
    lam_z = 5.0 + (-15.0) * noise["t_z"]
    a, s = alpha_sigma(lam_z)
    z_t = a.view(-1, 1, 1, 1) * z + s.view(-1, 1, 1, 1) * noise["eps_z"]
    eps_hat_z = model.prior(z_t, lam_z)  # ε-parameterised prior
    rate = 7.5 * (noise["eps_z"] - eps_hat_z).pow(2).flatten(1).sum(1) + losses.prior_kl_term(z, -10.0)
    a0, s0 = alpha_sigma(torch.tensor(5.0))
    z0 = a0 * z + s0 * noise["eps_0"]
    lam_x = 10.0 - 20.0 * noise["t_x"]
    ax, sx = (v.view(-1, 1, 1, 1) for v in alpha_sigma(lam_x))
    x_t = ax * x + sx * noise["eps_x"]
    x_hat = model.decoder(x_t, lam_x, z0)  # x-parameterised decoder
    eps_hat_x = (x_t - ax * x_hat) / sx
    w = torch.sigmoid(1.0 - lam_x)
    dec = 10.0 * 1.7 * w * (noise["eps_x"] - eps_hat_x).pow(2).flatten(1).sum(1)
    assert float(loss.detach()) == pytest.approx(float((rate + dec).detach().mean()), rel=1e-4)
    assert float(logs["decoder"]) == pytest.approx(float(dec.detach().mean()), rel=1e-4)


def test_rate_warmup_ramps_only_the_training_weight():
    model = UnifiedLatents(ULConfig(decoder_hidden=32, prior_hidden=32, encoder_hidden=32, rate_warmup=10))
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    noise = model.draw(4, torch.Generator().manual_seed(0))
    weights = []
    for step in (0, 5, 10, 50):
        model.set_step(step)
        weights.append(model.rate_weight())
        loss, logs = model(x, noise)
        # the loss is weight × rate + decoder; the logged rate is the full bound
        rate_nats = float(logs["rate_bpp"]) * math.log(2) * 64
        assert float(loss.detach()) == pytest.approx(weights[-1] * rate_nats + float(logs["decoder"]), rel=1e-4)
    assert weights == [0.0, 0.5, 1.0, 1.0]
