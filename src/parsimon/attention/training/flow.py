"""Rectified flow: noising, the time sampler, the losses and an Euler sampler.

``x_t = (1 − t)·x0 + t·ε`` with t ∈ [0, 1] (t = 1 is pure noise); the target velocity of the plain
diffusion loss is ``ε − x0``. Time is log-normal: σ ~ LogNormal(p_mean, p_std), t = σ / (1 + σ)
(a logit-normal t, the sampler spec §4.2 reads from the group's public fine-tuning code).
"""

from __future__ import annotations

import torch

from parsimon.errors import ConfigError

__all__ = ["diffusion_loss", "euler_sample", "noisy", "sample_t", "velocity_distill_loss"]


def sample_t(n: int, *, p_mean: float = 0.0, p_std: float = 1.0, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` flow times in (0, 1): σ ~ LogNormal(p_mean, p_std), t = σ / (1 + σ)."""
    if p_std <= 0:
        raise ConfigError(f"p_std must be > 0, got {p_std}")
    z = torch.randn(n, generator=generator)
    sigma = torch.exp(p_mean + p_std * z)
    return (sigma / (1 + sigma)).to(device)


def noisy(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``x_t = (1 − t)·x0 + t·ε`` with t broadcast over the non-batch dims."""
    tt = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - tt) * x0 + tt * eps


def diffusion_loss(model, x0, y, eps, t) -> torch.Tensor:
    """Plain flow-matching loss ``‖v(x_t) − (ε − x0)‖²`` (mean)."""
    return (model(noisy(x0, eps, t), t, y) - (eps - x0)).square().mean()


def velocity_distill_loss(student, teacher, x0, y, eps, t) -> torch.Tensor:
    """Velocity distillation (spec §4): ``‖v_student(x_t) − v_teacher(x_t)‖²``, teacher frozen (no grad)."""
    xt = noisy(x0, eps, t)
    with torch.no_grad():
        target = teacher(xt, t, y)
    return (student(xt, t, y) - target).square().mean()


@torch.no_grad()
def euler_sample(model, noise: torch.Tensor, y: torch.Tensor | None = None, *, steps: int = 20,
                 shift: float = 1.0, on_step=None) -> torch.Tensor:
    """Integrate dx/dt = v from t = 1 (``noise``) to t = 0 with ``steps`` Euler steps.

    ``shift`` warps the time grid towards t = 1 (t' = s·t / (1 + (s − 1)·t)), as video models do.
    ``on_step(i)`` is called before step ``i`` (a sparsity policy uses it for dense-early steps).
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if shift <= 0:
        raise ConfigError(f"shift must be > 0, got {shift}")
    ts = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    ts = shift * ts / (1 + (shift - 1) * ts)
    x = noise
    for i in range(steps):
        if on_step is not None:
            on_step(i)
        t = ts[i].expand(x.shape[0])
        x = x + (ts[i + 1] - ts[i]) * model(x, t, y)
    return x
