"""The samplers against the exact Gaussian denoiser: samples have the data's variance (and z_0's)."""

from __future__ import annotations

import math

import pytest
import torch

from parsimon.errors import ConfigError
from parsimon.latents.sampling import sample
from parsimon.latents.schedules import alpha_sigma, make_schedule


def _oracle(v: float):
    def predict(z, lam):
        a, s = (t.view(-1, 1) for t in alpha_sigma(lam))
        x_hat = a * v * z / (a * a * v + s * s)
        return x_hat, (z - a * x_hat) / s
    return predict


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samples_have_the_data_variance(sampler):
    v, n = 0.25, 4000
    sched = make_schedule("linear", 10.0, -10.0)
    coarse = sample(_oracle(v), (n, 4), sched, 20, sampler, generator=torch.Generator().manual_seed(0))
    x = sample(_oracle(v), (n, 4), sched, 400, sampler, generator=torch.Generator().manual_seed(0))
    # first-order samplers shrink the variance by O(1/steps); the estimate of a variance from 16,000 draws
    # has a relative s.e. of about 1.1 %, so 5 % is about 4 s.e. plus the 400-step discretisation error
    assert float(x.var()) == pytest.approx(v, rel=0.05)
    assert abs(float(x.var()) - v) < abs(float(coarse.var()) - v)
    assert abs(float(x.mean())) < 0.03


def test_latent_sampler_returns_the_noisy_z0():
    """return_prediction=False: the sample at t = 0 has z_0's variance α_0² v + σ_0² (Algorithm 2 decodes it)."""
    v, n = 0.25, 4000
    sched = make_schedule("linear", 5.0, -10.0)
    z0 = sample(_oracle(v), (n, 4), sched, 400, "ddpm", generator=torch.Generator().manual_seed(1),
                return_prediction=False)
    a0, s0 = alpha_sigma(torch.tensor(5.0))
    assert float(z0.var()) == pytest.approx(float(a0 ** 2 * v + s0 ** 2), rel=0.05)


def test_sampler_is_seeded_and_checked():
    sched = make_schedule("linear", 5.0, -10.0)
    a = sample(_oracle(1.0), (3, 2), sched, 5, "ddpm", generator=torch.Generator().manual_seed(7))
    b = sample(_oracle(1.0), (3, 2), sched, 5, "ddpm", generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="steps"):
        sample(_oracle(1.0), (3, 2), sched, 0)
    with pytest.raises(ConfigError, match="sampler"):
        sample(_oracle(1.0), (3, 2), sched, 3, "euler")
    assert math.isfinite(float(a.sum()))


def test_two_step_sample_checks_decode_from():
    from parsimon.latents.model import ULConfig, UnifiedLatents
    from parsimon.latents.sampling import two_step_sample

    model = UnifiedLatents(ULConfig(encoder_hidden=16, prior_hidden=16, decoder_hidden=16))
    for mode in ("z0", "zhat"):
        x = two_step_sample(model, model, 3, latent_steps=2, decoder_steps=2, decode_from=mode,
                            generator=torch.Generator().manual_seed(0))
        assert x.shape == (3, 1, 8, 8) and x.abs().max() <= 1
    with pytest.raises(ConfigError, match="decode_from"):
        two_step_sample(model, model, 3, decode_from="mean")
