"""The sparse student: the teacher's weights with block-sparse attention swapped in."""

from __future__ import annotations

import copy
import math

import torch

__all__ = ["SparseAttentionFn", "sparse_student"]


class SparseAttentionFn:
    """``fn(q, k, v, layer)`` running hybrid block-sparse attention, recording realised sparsity.

    ``mode`` is "hybrid", "topk" or "topp"; ``dense_layers`` run full attention. The mask is built per
    call from the current q and k (no gradient through the selection, spec §2.1).
    """

    def __init__(self, *, topk: float, topp: float, block_q: int, block_k: int, mode: str = "hybrid",
                 backend: str = "auto", dense_layers=()):
        from parsimon.attention.policy import SparsityPolicy

        self.policy = SparsityPolicy(topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode,
                                     backend=backend, dense_layers=dense_layers)

    @property
    def sparsity(self) -> float:
        """Realised block sparsity over the calls so far (NaN before any)."""
        return self.policy.stats.sparsity

    def reset(self) -> None:
        self.policy.stats.reset()

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layer: int = 0) -> torch.Tensor:
        return self.policy.attention(q, k, v, layer=layer)

    def __repr__(self) -> str:
        p = self.policy
        s = self.sparsity
        return (f"SparseAttentionFn(mode={p.mode}, topk={p.topk}, topp={p.topp}, blocks=({p.block_q},{p.block_k}), "
                f"sparsity={'n/a' if math.isnan(s) else f'{s:.3f}'})")


def sparse_student(teacher: torch.nn.Module, **attn_kwargs) -> torch.nn.Module:
    """A trainable copy of ``teacher`` whose attention is :class:`SparseAttentionFn` (``attn_kwargs``)."""
    student = copy.deepcopy(teacher)
    student.requires_grad_(True)
    student.attention = SparseAttentionFn(**attn_kwargs)
    return student
