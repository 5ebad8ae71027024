"""Log-SNR schedules, loss weightings and network parameterisations of Unified Latents (arXiv 2602.17270).

Variance-preserving diffusion: ``z_t = α_t x + σ_t ε`` with ``α_t² + σ_t² = 1`` and log-SNR
``λ(t) = log(α_t² / σ_t²)``, so ``α² = sigmoid(λ)`` and ``σ² = sigmoid(−λ)`` (spec B1). A schedule maps
``t ∈ [0, 1]`` to ``λ(t)``, decreasing from ``λ(0) = lambda_max`` (least noise) to ``λ(1) = lambda_min``.

The paper does not state its schedule shapes or endpoints [UNCONFIRMED]; our defaults (spec B7) are a
linear prior schedule from ``λ_z(0) = 5`` (stated, §3) to ``−10``, whose constant ``−λ' = 15`` keeps the
ELBO estimate's variance low, and a linear decoder schedule from ``+10`` to ``−10``.

Weightings multiply the ε-form ELBO integrand ``−λ'(t)/2 · ||ε − ε̂||²``:

* ``elbo``: ``w ≡ 1`` (the prior, spec B1: a weighted prior would let the encoder hide information at
  discounted noise levels).
* ``sigmoid``: ``w(λ) = sigmoid(b − λ)``. Decision B6.1: §2/§3.2 write ``sigmoid(λ − b)`` while Fig. 3
  writes ``c_lf · sigmoid(b − λ)`` on the ε-MSE; only the latter discounts the low-noise (high-λ) levels
  as the text intends, so we use ``sigmoid(b − λ)`` on the ε-form.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from parsimon.errors import ConfigError
from parsimon.registry import Registry

__all__ = [
    "CosineSchedule",
    "LinearSchedule",
    "LogSNRSchedule",
    "PARAMETERIZATIONS",
    "SCHEDULES",
    "WEIGHTINGS",
    "alpha_sigma",
    "make_schedule",
    "sample_t",
    "to_x_eps",
    "weight",
]


def alpha_sigma(lam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(α, σ)`` of a log-SNR: ``α = sqrt(sigmoid(λ))``, ``σ = sqrt(sigmoid(−λ))`` (σ is a standard deviation,
    decision B6.3)."""
    return torch.sigmoid(lam).sqrt(), torch.sigmoid(-lam).sqrt()


class LogSNRSchedule(ABC):
    """A decreasing log-SNR schedule ``λ(t)`` on ``t ∈ [0, 1]`` with ``λ(0) = lambda_max``, ``λ(1) = lambda_min``.

    Args:
        lambda_max: The log-SNR at ``t = 0`` (the least noisy level).
        lambda_min: The log-SNR at ``t = 1`` (the noisiest level); must be below ``lambda_max``.
    """

    kind = "base"

    def __init__(self, lambda_max: float, lambda_min: float) -> None:
        if not (math.isfinite(lambda_max) and math.isfinite(lambda_min)):
            raise ConfigError(f"schedule endpoints must be finite, got {lambda_max}, {lambda_min}")
        if not lambda_min < lambda_max:
            raise ConfigError(f"`lambda_min` ({lambda_min}) must be below `lambda_max` ({lambda_max})")
        self.lambda_max, self.lambda_min = float(lambda_max), float(lambda_min)

    @abstractmethod
    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """``λ(t)``."""

    @abstractmethod
    def dlam_dt(self, t: torch.Tensor) -> torch.Tensor:
        """``dλ/dt`` (negative everywhere)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lambda_max={self.lambda_max}, lambda_min={self.lambda_min})"


class LinearSchedule(LogSNRSchedule):
    """``λ(t) = λ_max + (λ_min − λ_max) t``: constant ``dλ/dt``, so the ELBO integrand's weight is flat in t."""

    kind = "linear"

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        return self.lambda_max + (self.lambda_min - self.lambda_max) * t

    def dlam_dt(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, self.lambda_min - self.lambda_max)


class CosineSchedule(LogSNRSchedule):
    """The cosine schedule ``λ = −2 log tan(u)`` with ``u`` linear in t between the angles of the endpoints
    (Nichol & Dhariwal's cosine schedule, interpolated so that ``λ(0) = λ_max`` and ``λ(1) = λ_min``)."""

    kind = "cosine"

    def __init__(self, lambda_max: float, lambda_min: float) -> None:
        super().__init__(lambda_max, lambda_min)
        self.u0 = math.atan(math.exp(-0.5 * self.lambda_max))
        self.u1 = math.atan(math.exp(-0.5 * self.lambda_min))

    def _u(self, t: torch.Tensor) -> torch.Tensor:
        return self.u0 + (self.u1 - self.u0) * t

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        return -2.0 * torch.log(torch.tan(self._u(t)))

    def dlam_dt(self, t: torch.Tensor) -> torch.Tensor:
        # d/du [−2 log tan u] = −2 / (sin u cos u) = −4 / sin 2u
        return -4.0 * (self.u1 - self.u0) / torch.sin(2.0 * self._u(t))


SCHEDULES: Registry[type[LogSNRSchedule]] = Registry("schedule")
SCHEDULES.register("linear", LinearSchedule, describe="λ linear in t (constant −λ'; our default, spec B7)")
SCHEDULES.register("cosine", CosineSchedule, describe="cosine schedule with interpolated endpoints")


def make_schedule(kind: str, lambda_max: float, lambda_min: float) -> LogSNRSchedule:
    """A schedule by registry name (``"linear"`` or ``"cosine"``)."""
    return SCHEDULES.get(kind)(lambda_max, lambda_min)


def _elbo_weight(lam: torch.Tensor, bias: float) -> torch.Tensor:
    return torch.ones_like(lam)


def _sigmoid_weight(lam: torch.Tensor, bias: float) -> torch.Tensor:
    # Decision B6.1: sigmoid(b − λ) on the ε-form (Fig. 3), not sigmoid(λ − b) (§2/§3.2).
    return torch.sigmoid(bias - lam)


WEIGHTINGS: Registry[Callable[[torch.Tensor, float], torch.Tensor]] = Registry("weighting")
WEIGHTINGS.register("elbo", _elbo_weight, describe="w = 1 (unweighted ELBO; the prior)")
WEIGHTINGS.register("sigmoid", _sigmoid_weight, describe="w = sigmoid(b − λ) on the ε-MSE (decision B6.1)")


def weight(kind: str, lam: torch.Tensor, bias: float = 0.0) -> torch.Tensor:
    """The weighting ``w(λ)`` named ``kind`` (``"elbo"`` or ``"sigmoid"``) at log-SNR ``lam``."""
    return WEIGHTINGS.get(kind)(lam, bias)


def _from_eps(out, z_t, alpha, sigma):
    return (z_t - sigma * out) / alpha, out


def _from_x(out, z_t, alpha, sigma):
    return out, (z_t - alpha * out) / sigma


def _from_v(out, z_t, alpha, sigma):
    return alpha * z_t - sigma * out, sigma * z_t + alpha * out


PARAMETERIZATIONS: Registry[Callable] = Registry("parameterization")
PARAMETERIZATIONS.register("eps", _from_eps, describe="the network predicts ε")
PARAMETERIZATIONS.register("x", _from_x, describe="the network predicts the clean data x")
PARAMETERIZATIONS.register("v", _from_v, describe="the network predicts v = α ε − σ x")


def to_x_eps(kind: str, out: torch.Tensor, z_t: torch.Tensor, alpha: torch.Tensor,
             sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a network output into ``(x̂, ε̂)`` for ``z_t = α x + σ ε`` (``alpha``/``sigma`` broadcast to z_t)."""
    return PARAMETERIZATIONS.get(kind)(out, z_t, alpha, sigma)


def sample_t(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` times in ``[0, 1)``, low-discrepancy: ``(u + i/n) mod 1`` with one uniform ``u`` (as VDM samples
    t), so a batch covers the schedule evenly and the ELBO estimate has lower variance."""
    u = torch.rand(1, generator=generator)
    return torch.remainder(u + torch.arange(n, dtype=torch.float32) / n, 1.0)


def expand(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-example ``[B]`` tensor reshaped to broadcast against ``like`` (``[B, ...]``)."""
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))
