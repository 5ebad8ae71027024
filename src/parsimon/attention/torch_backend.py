"""CPU (and generic) block-sparse attention in plain PyTorch: gather only the kept key/value blocks.

For every query block the kept key blocks are gathered into one padded slab ``[max_kept · block_k, D]``;
all query blocks, heads and batch elements are processed in one batched matmul, so there is no Python loop
over blocks and memory is O(N · max_kept · block_k) instead of O(N²).  The backward pass recomputes the
probabilities from the saved log-sum-exp (no N² activations are kept) and scatters dK/dV back with
``index_add_``.
"""

from __future__ import annotations

import torch

from .mask import BlockSparseLayout

__all__ = ["torch_block_sparse_attention"]


def _pad_tokens(x: torch.Tensor, nblocks: int, block: int) -> torch.Tensor:
    pad = nblocks * block - x.shape[2]
    return torch.nn.functional.pad(x, (0, 0, 0, pad)) if pad else x


class _Plan:
    """Index tensors shared by forward and backward (built once per call)."""

    def __init__(self, layout: BlockSparseLayout, hkv: int, device):
        b, h, nq = layout.kv_counts.shape
        nk, bq, bk = layout.num_k_blocks, layout.block_q, layout.block_k
        c = layout.kv_indices.shape[-1]
        group = h // hkv
        kvh = torch.arange(h, device=device) // group
        bidx = torch.arange(b, device=device)
        base = (bidx[:, None] * hkv + kvh[None, :]) * nk  # [B,H]
        idx = layout.kv_indices.long()
        self.flat = (base[:, :, None, None] + idx).reshape(-1)  # [B*H*nq*c] rows of [B*Hkv*nk, bk, D]
        slot_ok = torch.arange(c, device=device) < layout.kv_counts[..., None].long()  # [B,H,nq,c]
        kpos = idx[..., None] * bk + torch.arange(bk, device=device)  # [B,H,nq,c,bk]
        valid = slot_ok[..., None] & (kpos < layout.seq_k)
        valid = valid.reshape(b, h, nq, 1, c * bk)
        if layout.causal:
            qpos = torch.arange(nq * bq, device=device).reshape(nq, bq)
            valid = valid & (kpos.reshape(b, h, nq, 1, c * bk) <= qpos[None, None, :, :, None])
        self.valid = valid  # broadcastable to [B,H,nq,bq,c*bk]
        self.shape = (b, h, nq, c, nk, bq, bk, hkv)


def _gather(x: torch.Tensor, plan: _Plan) -> torch.Tensor:
    b, h, nq, c, nk, bq, bk, hkv = plan.shape
    xb = _pad_tokens(x, nk, bk).reshape(b * hkv * nk, bk, x.shape[-1])
    return xb.index_select(0, plan.flat).reshape(b, h, nq, c * bk, x.shape[-1])


def _scores(qb, kg, plan, scale):
    s = torch.matmul(qb, kg.transpose(-1, -2)) * scale
    return s.masked_fill(~plan.valid, float("-inf"))


class _TorchSparseAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, layout, scale):
        in_dtype = q.dtype
        cdt = torch.float64 if q.dtype == torch.float64 else torch.float32
        q32, k32, v32 = q.to(cdt), k.to(cdt), v.to(cdt)
        plan = _Plan(layout, k.shape[1], q.device)
        b, h, nq, c, nk, bq, bk, hkv = plan.shape
        n = q.shape[2]
        qb = _pad_tokens(q32, nq, bq).reshape(b, h, nq, bq, q.shape[-1])
        kg, vg = _gather(k32, plan), _gather(v32, plan)
        s = _scores(qb, kg, plan, scale)
        lse = torch.logsumexp(s, dim=-1)  # [B,H,nq,bq]
        p = torch.exp(s - lse[..., None])
        del s
        o = torch.matmul(p, vg)  # [B,H,nq,bq,Dv]
        out = o.reshape(b, h, nq * bq, v.shape[-1])[:, :, :n]
        lse = lse.reshape(b, h, nq * bq)[:, :, :n].contiguous()
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.layout, ctx.scale, ctx.plan, ctx.in_dtype = layout, scale, plan, in_dtype
        return out.to(in_dtype), lse

    @staticmethod
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        plan, scale = ctx.plan, ctx.scale
        b, h, nq, c, nk, bq, bk, hkv = plan.shape
        n, d, dv_dim = q.shape[2], q.shape[-1], v.shape[-1]
        cdt = out.dtype
        q32, k32, v32 = q.to(cdt), k.to(cdt), v.to(cdt)
        if dout is None:
            dout = torch.zeros_like(out)
        do = dout.to(cdt)
        delta = (do * out).sum(-1)  # [B,H,N]
        if dlse is not None:
            delta = delta - dlse.to(cdt)
        qb = _pad_tokens(q32, nq, bq).reshape(b, h, nq, bq, d)
        dob = _pad_tokens(do, nq, bq).reshape(b, h, nq, bq, dv_dim)
        lseb = _pad_tokens(lse[..., None], nq, bq).reshape(b, h, nq, bq)
        deltab = _pad_tokens(delta[..., None], nq, bq).reshape(b, h, nq, bq)
        kg, vg = _gather(k32, plan), _gather(v32, plan)
        s = _scores(qb, kg, plan, scale)
        p = torch.exp(s - lseb[..., None])  # masked entries -> 0; padded rows: lse 0, zeroed by dO=0 below
        del s
        qvalid = (torch.arange(nq * bq, device=q.device) < n).reshape(nq, bq)
        p = p * qvalid[..., None]
        dvg = torch.matmul(p.transpose(-1, -2), dob)  # [B,H,nq,c*bk,Dv]
        dp = torch.matmul(dob, vg.transpose(-1, -2))
        ds = p * (dp - deltab[..., None]) * scale
        del p, dp
        dq = torch.matmul(ds, kg).reshape(b, h, nq * bq, d)[:, :, :n]
        dkg = torch.matmul(ds.transpose(-1, -2), qb)  # [B,H,nq,c*bk,D]
        dk = torch.zeros(b * hkv * nk, bk, d, dtype=cdt, device=q.device)
        dvv = torch.zeros(b * hkv * nk, bk, dv_dim, dtype=cdt, device=q.device)
        dk.index_add_(0, plan.flat, dkg.reshape(-1, bk, d))
        dvv.index_add_(0, plan.flat, dvg.reshape(-1, bk, dv_dim))
        dk = dk.reshape(b, hkv, nk * bk, d)[:, :, : k.shape[2]]
        dvv = dvv.reshape(b, hkv, nk * bk, dv_dim)[:, :, : v.shape[2]]
        return dq.to(q.dtype), dk.to(k.dtype), dvv.to(v.dtype), None, None


def torch_block_sparse_attention(q, k, v, layout: BlockSparseLayout, scale: float):
    """Block-sparse attention ``(out, lse)`` through gathered blocks; differentiable in q, k, v (and lse)."""
    return _TorchSparseAttn.apply(q, k, v, layout, scale)
