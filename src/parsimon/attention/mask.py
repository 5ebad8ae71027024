"""The hybrid Top-k ∪ Top-p block mask (spec §2.1) and the block-sparse layout every backend consumes.

A :class:`BlockSparseLayout` describes, for each batch element, query head and query block, which key blocks
are computed.  It holds the same set twice: row-major (CSR: per query block, the kept key blocks, ascending)
for the forward pass and dQ, and column-major (CSC: per key block, the query blocks that chose it) for dK/dV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from parsimon.errors import ConfigError

from .registry import MODES

__all__ = ["BlockSparseLayout", "hybrid_block_mask", "block_mean", "random_layout", "MODES", "check_scale"]


def block_mean(x: torch.Tensor, block: int) -> torch.Tensor:
    """Mean of consecutive token blocks along dim -2 (fp32); a partial last block averages its valid tokens.

    Sums in fp32 straight from ``x``'s dtype without copying ``x`` (views only), so it is cheap on long inputs.
    """
    n, d = x.shape[-2], x.shape[-1]
    lead = x.shape[:-2]
    nfull, tail = divmod(n, block)
    parts = []
    if nfull:
        parts.append(x[..., : nfull * block, :].reshape(*lead, nfull, block, d).sum(-2, dtype=torch.float32) / block)
    if tail:
        parts.append(x[..., nfull * block:, :].sum(-2, keepdim=True, dtype=torch.float32) / tail)
    return torch.cat(parts, dim=-2) if len(parts) > 1 else parts[0]


def _causal_allowed(nq: int, nk: int, block_q: int, block_k: int, seq_q: int, device) -> torch.Tensor:
    """[nq, nk] bool: key block j has at least one key visible to some query of block i (top-left causal)."""
    last_q = torch.clamp((torch.arange(nq, device=device) + 1) * block_q - 1, max=seq_q - 1)
    first_k = torch.arange(nk, device=device) * block_k
    return first_k[None, :] <= last_q[:, None]


def _causal_diagonal(nq: int, nk: int, block_q: int, block_k: int, seq_q: int, device) -> torch.Tensor:
    """[nq, nk] bool: key blocks that overlap the token range of query block i (the block diagonal)."""
    first_q = torch.arange(nq, device=device) * block_q
    last_q = torch.clamp(first_q + block_q - 1, max=seq_q - 1)
    k_lo = torch.arange(nk, device=device) * block_k
    k_hi = k_lo + block_k - 1
    return (k_lo[None, :] <= last_q[:, None]) & (k_hi[None, :] >= first_q[:, None])


def _compress(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool [..., R, C] -> (counts int32 [..., R], indices int32 [..., R, max_count]) ascending, padded with 0."""
    c = mask.shape[-1]
    counts = mask.sum(-1, dtype=torch.int32)
    width = max(int(counts.max().item()) if counts.numel() else 0, 1)
    cols = torch.arange(c, device=mask.device, dtype=torch.int32)
    key = torch.where(mask, cols, cols + c)
    srt = torch.sort(key, dim=-1).values[..., :width]
    idx = torch.where(srt < c, srt, torch.zeros_like(srt))
    return counts, idx.to(torch.int32).contiguous()


@dataclass(frozen=True, eq=False)
class BlockSparseLayout:
    """Which (query block, key block) pairs are computed, per batch element and query head.

    Attributes:
        kv_counts: int32 ``[B, H, Nq_blocks]`` kept key blocks per query block (always ≥ 1).
        kv_indices: int32 ``[B, H, Nq_blocks, max_kept]`` kept key-block ids, ascending; entries past
            ``kv_counts`` are padding (0).
        q_counts: int32 ``[B, H, Nk_blocks]`` query blocks that kept each key block (the CSC transpose).
        q_indices: int32 ``[B, H, Nk_blocks, max_q]`` those query-block ids, ascending, padded with 0.
        retained_mass: float32 ``[B, H, Nq_blocks]`` pooled probability mass of the kept blocks (NaN when the
            layout was given rather than scored).
        block_q, block_k: block sizes in tokens; seq_q, seq_k: sequence lengths; causal: built for causal use.
    """

    kv_counts: torch.Tensor
    kv_indices: torch.Tensor
    q_counts: torch.Tensor
    q_indices: torch.Tensor
    retained_mass: torch.Tensor
    block_q: int
    block_k: int
    seq_q: int
    seq_k: int
    causal: bool = False

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_block_mask(
        cls,
        mask: torch.Tensor,
        *,
        block_q: int,
        block_k: int,
        seq_q: int,
        seq_k: int,
        causal: bool = False,
        retained_mass: torch.Tensor | None = None,
    ) -> BlockSparseLayout:
        """Build a layout from a bool ``[B, H, Nq_blocks, Nk_blocks]`` block mask.

        With ``causal=True`` blocks entirely above the diagonal are dropped and the diagonal blocks are added,
        so no query token is left without a key.  Otherwise every row must keep at least one block.
        """
        if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
            raise ConfigError("mask: expected a 4-d tensor [B, H, Nq_blocks, Nk_blocks]")
        for name, val in (("block_q", block_q), ("block_k", block_k), ("seq_q", seq_q), ("seq_k", seq_k)):
            if not isinstance(val, int) or val < 1:
                raise ConfigError(f"{name}: expected a positive int, got {val!r}")
        nq, nk = -(-seq_q // block_q), -(-seq_k // block_k)
        if tuple(mask.shape[-2:]) != (nq, nk):
            raise ConfigError(
                f"mask: expected block shape (Nq_blocks, Nk_blocks) = ({nq}, {nk}) for seq_q={seq_q}, "
                f"seq_k={seq_k}, block_q={block_q}, block_k={block_k}; got {tuple(mask.shape[-2:])}"
            )
        if causal and seq_q != seq_k:
            raise ConfigError(f"causal: needs seq_q == seq_k, got {seq_q} and {seq_k}")
        mask = mask.to(torch.bool)
        if causal:
            dev = mask.device
            mask = (mask & _causal_allowed(nq, nk, block_q, block_k, seq_q, dev)) | _causal_diagonal(
                nq, nk, block_q, block_k, seq_q, dev
            )
        if not bool(mask.any(-1).all()):
            raise ConfigError("mask: every query block must keep at least one key block")
        kv_counts, kv_indices = _compress(mask)
        q_counts, q_indices = _compress(mask.transpose(-1, -2))
        if retained_mass is None:
            retained_mass = torch.full(kv_counts.shape, float("nan"), device=mask.device)
        return cls(kv_counts, kv_indices, q_counts, q_indices, retained_mass, block_q, block_k, seq_q, seq_k,
                   causal)

    # ---------------------------------------------------------------- views
    @property
    def batch(self) -> int:
        return self.kv_counts.shape[0]

    @property
    def heads(self) -> int:
        return self.kv_counts.shape[1]

    @property
    def num_q_blocks(self) -> int:
        return self.kv_counts.shape[2]

    @property
    def num_k_blocks(self) -> int:
        return self.q_counts.shape[2]

    @property
    def device(self) -> torch.device:
        return self.kv_counts.device

    def to(self, device) -> BlockSparseLayout:
        """The same layout with its tensors on ``device``."""
        mv = lambda t: t.to(device)  # noqa: E731
        return BlockSparseLayout(mv(self.kv_counts), mv(self.kv_indices), mv(self.q_counts), mv(self.q_indices),
                                 mv(self.retained_mass), self.block_q, self.block_k, self.seq_q, self.seq_k,
                                 self.causal)

    def block_mask(self) -> torch.Tensor:
        """Bool ``[B, H, Nq_blocks, Nk_blocks]``: True where the block pair is computed."""
        b, h, nq = self.kv_counts.shape
        valid = torch.arange(self.kv_indices.shape[-1], device=self.device) < self.kv_counts[..., None]
        out = torch.zeros(b, h, nq, self.num_k_blocks + 1, dtype=torch.bool, device=self.device)
        idx = torch.where(valid, self.kv_indices.long(), torch.full_like(self.kv_indices, self.num_k_blocks).long())
        out.scatter_(-1, idx, True)
        return out[..., : self.num_k_blocks]

    @property
    def kept(self) -> int:
        return int(self.kv_counts.sum().item())

    @property
    def sparsity(self) -> float:
        """1 − kept block pairs / all block pairs (the SpargeAttn convention)."""
        total = self.kv_counts.numel() * self.num_k_blocks
        return 1.0 - self.kept / total

    def token_mask(self) -> torch.Tensor:
        """Bool ``[B, H, seq_q, seq_k]``: the expanded mask (block mask, ragged tails, causal). Dense: O(N²)."""
        m = self.block_mask()
        m = m.repeat_interleave(self.block_q, dim=-2)[..., : self.seq_q, :]
        m = m.repeat_interleave(self.block_k, dim=-1)[..., : self.seq_k]
        if self.causal:
            m = m & torch.ones(self.seq_q, self.seq_k, dtype=torch.bool, device=self.device).tril()
        return m

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"BlockSparseLayout(B={self.batch}, H={self.heads}, blocks={self.num_q_blocks}x{self.num_k_blocks}, "
                f"block=({self.block_q},{self.block_k}), seq=({self.seq_q},{self.seq_k}), causal={self.causal}, "
                f"sparsity={self.sparsity:.4f})")


def check_scale(scale) -> None:
    """``scale`` must be None or a finite positive number (NaN or inf would make every output NaN)."""
    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"`scale` must be a finite positive number or None, got {scale!r}")


def _check_frac(name: str, val) -> float:
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not (0.0 <= float(val) <= 1.0):
        raise ConfigError(f"{name}: expected a fraction in [0, 1], got {val!r}")
    return float(val)


@torch.no_grad()
def hybrid_block_mask(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    topk: float = 0.03,
    topp: float = 0.2,
    block_q: int = 128,
    block_k: int = 64,
    mode: str = "hybrid",
    causal: bool = False,
    scale: float | None = None,
) -> BlockSparseLayout:
    """SpargeAttention2's block mask: per query block, Top-k ∪ Top-p of the pooled block attention map.

    ``q``: ``[B, H, Nq, D]``, ``k``: ``[B, Hkv, Nk, D]`` with ``Hkv`` dividing ``H`` (query head ``h`` uses key
    head ``h // (H // Hkv)``).  Blocks are mean-pooled (partial last block: mean of its valid tokens), the pooled
    scores are soft-maxed with ``scale`` (default 1/√D) over key blocks, then per row:
    Top-k keeps ``max(1, ⌊topk · n⌋)`` blocks (``n`` = key blocks the row may see), Top-p keeps the minimal
    prefix of the descending row whose mass reaches ``topp``, and ``mode="hybrid"`` keeps their union
    (``"topk"``/``"topp"`` keep one of them; every row keeps ≥ 1 block).  With ``causal=True`` key blocks
    fully above the diagonal are excluded and the diagonal blocks are always kept.
    """
    _validate_qk(q, k)
    combine = MODES.get(mode)
    check_scale(scale)
    topk = _check_frac("topk", topk)
    topp = _check_frac("topp", topp)
    for name, val in (("block_q", block_q), ("block_k", block_k)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ConfigError(f"{name}: expected a positive int, got {val!r}")
    seq_q, seq_k = q.shape[2], k.shape[2]
    if causal and seq_q != seq_k:
        raise ConfigError(f"causal: needs equal query and key lengths, got {seq_q} and {seq_k}")
    d = q.shape[-1]
    scale = d ** -0.5 if scale is None else float(scale)
    h, hkv = q.shape[1], k.shape[1]
    qb = block_mean(q, block_q)  # [B,H,nq,D] fp32
    kb = block_mean(k, block_k)  # [B,Hkv,nk,D]
    if hkv != h:
        kb = kb.repeat_interleave(h // hkv, dim=1)
    nq, nk = qb.shape[2], kb.shape[2]
    logits = torch.matmul(qb, kb.transpose(-1, -2)) * scale  # [B,H,nq,nk]
    dev = q.device
    if causal:
        allowed = _causal_allowed(nq, nk, block_q, block_k, seq_q, dev)
        logits = logits.masked_fill(~allowed, float("-inf"))
        n_allowed = allowed.sum(-1)  # [nq]
    else:
        n_allowed = torch.full((nq,), nk, device=dev, dtype=torch.long)
    probs = torch.softmax(logits, dim=-1)
    vals, order = torch.sort(probs, dim=-1, descending=True)
    n_k = torch.clamp(torch.floor(topk * n_allowed.double() + 1e-9).long(), min=1)  # [nq]
    n_p = (torch.cumsum(vals, dim=-1) < topp).sum(-1) + 1  # minimal prefix with mass >= topp
    n = combine(n_k, n_p)
    n = torch.minimum(torch.clamp(n, min=1), n_allowed.expand_as(n))
    keep_sorted = torch.arange(nk, device=dev) < n[..., None]
    mask = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    if causal:
        mask = mask | _causal_diagonal(nq, nk, block_q, block_k, seq_q, dev)
    retained = (probs * mask).sum(-1)
    return BlockSparseLayout.from_block_mask(
        mask, block_q=block_q, block_k=block_k, seq_q=seq_q, seq_k=seq_k, causal=causal, retained_mass=retained
    )


def random_layout(
    batch: int,
    heads: int,
    seq_q: int,
    seq_k: int | None = None,
    *,
    density: float = 0.05,
    block_q: int = 128,
    block_k: int = 64,
    causal: bool = False,
    seed: int = 0,
    device="cpu",
) -> BlockSparseLayout:
    """A random layout keeping about ``density`` of the block pairs (≥ 1 per row), for tests and benchmarks."""
    _check_frac("density", density)
    seq_k = seq_q if seq_k is None else seq_k
    nq, nk = -(-seq_q // block_q), -(-seq_k // block_k)
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(batch, heads, nq, nk, generator=g) < density
    first = torch.randint(0, nk, (batch, heads, nq, 1), generator=g)
    mask.scatter_(-1, first, True)
    return BlockSparseLayout.from_block_mask(
        mask.to(device), block_q=block_q, block_k=block_k, seq_q=seq_q, seq_k=seq_k, causal=causal
    )


def _validate_qk(q, k) -> None:
    for name, t in (("q", q), ("k", k)):
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ConfigError(f"{name}: expected a 4-d tensor [B, H, N, D], got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ConfigError(f"{name}: expected a floating dtype (float32, float16, bfloat16), got {t.dtype}")
    if q.device != k.device:
        raise ConfigError(f"k: expected the same device as q ({q.device}), got {k.device}")
    if q.shape[0] != k.shape[0]:
        raise ConfigError(f"k: batch size {k.shape[0]} differs from q's {q.shape[0]}")
    if q.shape[-1] != k.shape[-1]:
        raise ConfigError(f"k: head dim {k.shape[-1]} differs from q's {q.shape[-1]}")
    if k.shape[1] < 1 or q.shape[1] % k.shape[1] != 0:
        raise ConfigError(f"k: key heads ({k.shape[1]}) must divide query heads ({q.shape[1]})")
    if q.shape[2] < 1 or k.shape[2] < 1:
        raise ConfigError("q, k: sequence length must be at least 1")
