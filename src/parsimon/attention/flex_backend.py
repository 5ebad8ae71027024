"""The same layout through PyTorch FlexAttention (``BlockMask.from_kv_blocks``): a second path and a peer.

Forward runs compiled on CPU and GPU; backward is FlexAttention's own and exists on GPU only (PyTorch raises
for CPU backward), so on CPU this backend refuses inputs that require grad: use ``backend="torch"`` there.

Block sizes: the compiled kernels need the mask's blocks to be multiples of their tiles. PyTorch picks the
tiles from the GPU and head size (on an H100/H200 with bf16: forward 128×128 at d=64, backward 64-128 at
d≤128) and, for the backward, skips every tile choice that does not divide the mask's blocks — so a layout
of 128×64 blocks has no valid backward kernel there. On the GPU, then, training runs through
:func:`flex_coarse_block_mask`: the same layout on 128×128 blocks, with a ``mask_mod`` that looks up the
layout's own blocks inside them (exact, at the cost of computing both halves of a half-kept block), and
the forward asks for tiles no wider than the layout's blocks.
"""

from __future__ import annotations

import functools

import torch

from parsimon.errors import ConfigError

from .mask import BlockSparseLayout

__all__ = ["flex_block_sparse_attention", "flex_block_mask", "flex_coarse_block_mask", "compiled_flex_attention"]

COARSE = 128  # the block size every tile PyTorch picks divides


@functools.cache
def compiled_flex_attention():
    """``torch.compile(flex_attention)`` built once per process (eager flex is unfused and slow)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, dynamic=False)


def _mask_mod(seq_k: int, causal: bool):
    if causal:
        def mod(b, h, q_idx, kv_idx):
            return (kv_idx <= q_idx) & (kv_idx < seq_k)
    else:
        def mod(b, h, q_idx, kv_idx):
            return kv_idx < seq_k
    return mod


def flex_block_mask(layout: BlockSparseLayout):
    """A FlexAttention ``BlockMask`` holding exactly the layout's kept blocks (ragged tails and causal masked)."""
    from torch.nn.attention.flex_attention import BlockMask

    nk = layout.num_k_blocks
    idx = layout.kv_indices
    if idx.shape[-1] < nk:  # FlexAttention reads the number of key blocks from the index width
        idx = torch.nn.functional.pad(idx, (0, nk - idx.shape[-1]))
    return BlockMask.from_kv_blocks(
        layout.kv_counts.contiguous(),
        idx.contiguous(),
        BLOCK_SIZE=(layout.block_q, layout.block_k),
        mask_mod=_mask_mod(layout.seq_k, layout.causal),
        seq_lengths=(layout.seq_q, layout.seq_k),
    )


def flex_coarse_block_mask(layout: BlockSparseLayout, size: int = COARSE):
    """The layout as a FlexAttention ``BlockMask`` on blocks of ``size`` (a multiple of the layout's blocks
    unless they already are one): a coarse block is listed when any of the layout's blocks inside it is
    kept, and the ``mask_mod`` keeps exactly the layout's blocks (and the causal and ragged-tail masks)."""
    from torch.nn.attention.flex_attention import BlockMask

    bq, bk = layout.block_q, layout.block_k
    for name, b in (("block_q", bq), ("block_k", bk)):
        if size % b and b % size:
            raise ConfigError(f"layout.{name}: {b} neither divides nor is a multiple of {size}; the flex "
                              "backend cannot train on it on the GPU")
    cq, ck = max(size // bq, 1), max(size // bk, 1)  # layout blocks per coarse block
    fine = layout.block_mask()
    b, h, nq, nk = fine.shape
    nq_c, nk_c = -(-nq // cq), -(-nk // ck)
    fine = torch.nn.functional.pad(fine, (0, nk_c * ck - nk, 0, nq_c * cq - nq))
    coarse = fine.view(b, h, nq_c, cq, nk_c, ck).any(dim=5).any(dim=3)
    counts = coarse.sum(-1, dtype=torch.int32)
    order = torch.argsort((~coarse).to(torch.int8), dim=-1, stable=True).to(torch.int32)  # kept first, ascending
    seq_k, causal = layout.seq_k, layout.causal

    def mod(bi, hi, q_idx, kv_idx):
        ok = fine[bi, hi, q_idx // bq, kv_idx // bk] & (kv_idx < seq_k)
        return ok & (kv_idx <= q_idx) if causal else ok

    return BlockMask.from_kv_blocks(counts.contiguous(), order.contiguous(), BLOCK_SIZE=(cq * bq, ck * bk),
                                    mask_mod=mod, seq_lengths=(layout.seq_q, layout.seq_k))


def _tile(block: int, cap: int) -> int:
    """The largest power of two ≤ ``cap`` that divides ``block`` (at least 16, Triton's smallest dot)."""
    t = cap
    while t > 16 and block % t:
        t //= 2
    return t


def _kernel_options(block_mask) -> dict:
    """Forward tiles that divide the mask's blocks (PyTorch's H100 default at d=64 is 128×128)."""
    bq, bk = block_mask.BLOCK_SIZE
    return {"fwd_BLOCK_M": _tile(bq, 128), "fwd_BLOCK_N": _tile(bk, 64)}


def flex_block_sparse_attention(q, k, v, layout: BlockSparseLayout, scale: float, *, need_lse: bool = True,
                                block_mask=None):
    """``(out, lse)`` via compiled FlexAttention (``lse`` is None unless ``need_lse``).

    ``block_mask`` may be passed to reuse a converted mask.  On CPU, compiled FlexAttention is inference-only
    and cannot return the LSE: both raise a ValueError there.
    """
    if not q.is_cuda and need_lse:
        raise ConfigError("return_lse: backend 'flex' cannot return the LSE on CPU (compiled FlexAttention on CPU "
                         "does not support it); use backend='torch'")
    if not q.is_cuda and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        raise ConfigError(
            "backend: 'flex' has no backward on CPU (a PyTorch limitation); use backend='torch' for CPU "
            "training, or run the flex forward under torch.no_grad()"
        )
    from torch.nn.attention.flex_attention import AuxRequest

    training = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
    if block_mask is not None:
        bm = block_mask
    elif q.is_cuda and training:
        bm = flex_coarse_block_mask(layout)
    else:
        bm = flex_block_mask(layout)
    gqa = k.shape[1] != q.shape[1]
    opts = {"kernel_options": _kernel_options(bm)} if q.is_cuda else {}
    if not need_lse:
        return compiled_flex_attention()(q, k, v, block_mask=bm, scale=scale, enable_gqa=gqa, **opts), None
    out, aux = compiled_flex_attention()(q, k, v, block_mask=bm, scale=scale, enable_gqa=gqa,
                                         return_aux=AuxRequest(lse=True), **opts)
    return out, aux.lse.float()
