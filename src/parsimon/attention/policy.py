"""Runtime control of sparsity: tiers, dense layers and steps, and a quality guard.

A :class:`SparsityPolicy` answers "which (topk, topp), or dense?" for one attention call, given the
layer and the denoising step, and runs that call. The quality guard looks at each query block's
retained pooled mass (``layout.retained_mass``); a row whose mass falls below ``min_retained_mass``
keeps *all* its key blocks (dense for that row only), and the policy counts how often that happened.

Example::

    policy = SparsityPolicy("balanced", dense_layers={0}, dense_steps={0, 1}, min_retained_mass=0.1)
    out = policy(q, k, v, layer=3)            # [B, H, N, D]
    fast = policy.for_request("fast")         # per-request tier, same counters
    policy.stats.fallback_rate                # share of rows the guard made dense
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import torch

from parsimon.errors import ConfigError

from .registry import MODES, TIERS

__all__ = ["TIERS", "PolicyStats", "SparsityPolicy"]



@dataclass
class PolicyStats:
    """Counters, shared by every copy made with :meth:`SparsityPolicy.for_request`."""

    calls: int = 0
    dense_calls: int = 0  # calls that ran dense (tier, layer or step)
    rows: int = 0  # query-block rows seen by sparse calls, over batch and heads
    fallback_rows: int = 0  # rows the quality guard made dense
    kept_blocks: int = 0  # computed block pairs in sparse calls (after the guard)
    total_blocks: int = 0  # all block pairs in sparse calls

    @property
    def fallback_rate(self) -> float:
        """Share of rows that fell back to dense (0 when no sparse call ran)."""
        return self.fallback_rows / self.rows if self.rows else 0.0

    @property
    def sparsity(self) -> float:
        """Realised block sparsity over the sparse calls (1 − kept / total); NaN before any."""
        return 1.0 - self.kept_blocks / self.total_blocks if self.total_blocks else math.nan

    def reset(self) -> None:
        for name in ("calls", "dense_calls", "rows", "fallback_rows", "kept_blocks", "total_blocks"):
            setattr(self, name, 0)

    def as_dict(self) -> dict:
        return {"calls": self.calls, "dense_calls": self.dense_calls, "rows": self.rows,
                "fallback_rows": self.fallback_rows, "fallback_rate": self.fallback_rate,
                "sparsity": self.sparsity}


def _as_set(name: str, vals: Iterable[int] | None) -> frozenset[int]:
    if vals is None:
        return frozenset()
    out = frozenset(vals)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in out):
        raise ConfigError(f"{name}: expected non-negative ints, got {sorted(out, key=str)}")
    return out


@dataclass
class SparsityPolicy:
    """Tier → (topk, topp), dense layers / denoising steps, and a per-row quality guard.

    Args:
        tier: one of :data:`TIERS` ("quality", "balanced", "fast", "dense").
        topk, topp: override the tier's values (fractions in [0, 1]).
        block_q, block_k: block sizes in tokens (paper: 128 and 64).
        mode: "hybrid" (Top-k ∪ Top-p), "topk" or "topp".
        dense_layers: layer indices that always run dense.
        dense_steps: denoising step indices that run dense; ``dense_first_steps=n`` adds steps 0..n-1.
        min_retained_mass: quality-guard floor in (0, 1]; rows whose pooled retained mass is below it run
            dense. None disables the guard.
        backend: passed to :func:`parsimon.attention.sparse_attention`.
    """

    tier: str = "balanced"
    topk: float | None = None
    topp: float | None = None
    block_q: int = 128
    block_k: int = 64
    mode: str = "hybrid"
    dense_layers: Iterable[int] | None = None
    dense_steps: Iterable[int] | None = None
    dense_first_steps: int = 0
    min_retained_mass: float | None = None
    backend: str = "auto"
    stats: PolicyStats = field(default_factory=PolicyStats)
    step: int | None = None  # the current denoising step (set by the sampler through ``at_step``)

    def __post_init__(self) -> None:
        TIERS.check(self.tier)
        MODES.check(self.mode)
        for name in ("topk", "topp"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                raise ConfigError(f"{name}: expected a fraction in [0, 1] or None, got {v!r}")
        for name in ("block_q", "block_k"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name}: expected a positive int, got {v!r}")
        if self.min_retained_mass is not None and not 0 < self.min_retained_mass <= 1:
            raise ConfigError(f"min_retained_mass: expected a value in (0, 1] or None, got {self.min_retained_mass!r}")
        if isinstance(self.dense_first_steps, bool) or not isinstance(self.dense_first_steps, int) \
                or self.dense_first_steps < 0:
            raise ConfigError(f"dense_first_steps: expected an int >= 0, got {self.dense_first_steps!r}")
        self.dense_layers = _as_set("dense_layers", self.dense_layers)
        self.dense_steps = _as_set("dense_steps", self.dense_steps) | frozenset(range(self.dense_first_steps))

    # ------------------------------------------------------------------ decisions
    def settings(self, *, layer: int | None = None, step: int | None = None) -> tuple[float, float] | None:
        """(topk, topp) for this call, or None when it runs dense."""
        step = self.step if step is None else step
        base = TIERS.get(self.tier)
        if base is None or (layer is not None and layer in self.dense_layers) or \
                (step is not None and step in self.dense_steps):
            return None
        return (base[0] if self.topk is None else float(self.topk), base[1] if self.topp is None else float(self.topp))

    def for_request(self, tier: str | None = None, **overrides) -> SparsityPolicy:
        """A copy for one request (another tier or overrides); it shares this policy's counters."""
        kw = dict(overrides)
        if tier is not None:
            kw["tier"] = tier
            kw.setdefault("topk", None)
            kw.setdefault("topp", None)
        return replace(self, **kw)

    @contextlib.contextmanager
    def at_step(self, step: int) -> Iterator[SparsityPolicy]:
        """Within the block, calls use denoising step ``step`` (for ``dense_steps``)."""
        old, self.step = self.step, step
        try:
            yield self
        finally:
            self.step = old

    # ------------------------------------------------------------------ running
    def layout(self, q: torch.Tensor, k: torch.Tensor, *, topk: float, topp: float, causal: bool = False,
               scale: float | None = None):
        """The block layout for one call, after the quality guard (counters updated)."""
        from parsimon.attention.mask import BlockSparseLayout, hybrid_block_mask

        lay = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=self.block_q, block_k=self.block_k,
                                mode=self.mode, causal=causal, scale=scale)
        rows = lay.kv_counts.numel()
        n_fallback = 0
        if self.min_retained_mass is not None:
            low = lay.retained_mass < self.min_retained_mass  # [B, H, Nq]
            n_fallback = int(low.sum())
            if n_fallback:
                mask = lay.block_mask() | low[..., None]
                lay = BlockSparseLayout.from_block_mask(
                    mask, block_q=lay.block_q, block_k=lay.block_k, seq_q=lay.seq_q, seq_k=lay.seq_k,
                    causal=lay.causal, retained_mass=torch.where(low, torch.ones_like(lay.retained_mass),
                                                                 lay.retained_mass))
        self.stats.rows += rows
        self.stats.fallback_rows += n_fallback
        self.stats.kept_blocks += lay.kept
        self.stats.total_blocks += rows * lay.num_k_blocks
        return lay

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, layer: int | None = None,
                  step: int | None = None, scale: float | None = None, causal: bool = False) -> torch.Tensor:
        """Attention ``[B, H, N, D]`` under this policy (dense through SDPA when the policy says so)."""
        self.stats.calls += 1
        st = self.settings(layer=layer, step=step)
        if st is None:
            self.stats.dense_calls += 1
            from parsimon.attention.integrations import real_sdpa

            enable_gqa = q.shape[1] != k.shape[1]
            return real_sdpa(q, k, v, is_causal=causal, scale=scale, enable_gqa=enable_gqa)
        from parsimon.attention import sparse_attention

        lay = self.layout(q, k, topk=st[0], topp=st[1], causal=causal, scale=scale)
        return sparse_attention(q, k, v, lay, topk=st[0], topp=st[1], scale=scale, causal=causal,
                                backend=self.backend)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int | None = None) -> torch.Tensor:
        """The attention-function form ``fn(q, k, v, layer)`` used by the training model."""
        return self.attention(q, k, v, layer=layer)
