"""CPU (and generic) block-sparse attention in plain PyTorch: gather only the kept key/value blocks.

Query blocks (one row of the layout each, over batch and heads) are grouped by how many key blocks they keep.
For each group the kept key/value blocks are gathered into one slab ``[G, kept · block_k, D]`` and the group is
processed at once -- by PyTorch's fused CPU attention kernel (``_scaled_dot_product_flash_attention_for_cpu``,
which also returns the LSE and has a backward) where available, else by batched matmuls and a fused softmax --
so there is no Python loop over blocks (only over the few distinct row lengths) and memory is
O(N · kept · block_k) instead of O(N²).  The backward pass recomputes the probabilities from the saved LSE
(no N² activations are kept) and scatters dK/dV back with ``index_add_``.
"""

from __future__ import annotations

import torch

from .mask import BlockSparseLayout

__all__ = ["torch_block_sparse_attention"]

_BUCKET_GROWTH = 1.0  # exact row lengths first; widened (×1.5 steps) only past _MAX_GROUPS groups
_MAX_GROUPS = 24
_CHUNK_ELEMS = 1 << 25  # scores (and masks) per processed chunk: 128 MB in fp32


def _pad_tokens(x: torch.Tensor, nblocks: int, block: int) -> torch.Tensor:
    pad = nblocks * block - x.shape[2]
    return torch.nn.functional.pad(x, (0, 0, 0, pad)) if pad else x


class _Group:
    __slots__ = ("rows", "flat", "valid")

    def __init__(self, rows, flat, valid):
        self.rows, self.flat, self.valid = rows, flat, valid


def _plan(layout: BlockSparseLayout, hkv: int, device) -> list[_Group]:
    """Group the layout's rows by kept count; per group: row ids, gathered block ids, validity mask or None."""
    b, h, nq = layout.kv_counts.shape
    nk, bq, bk = layout.num_k_blocks, layout.block_q, layout.block_k
    group = h // hkv
    counts = layout.kv_counts.reshape(-1).long()
    indices = layout.kv_indices.reshape(counts.numel(), -1).long()
    rows_all = torch.arange(counts.numel(), device=device)
    bh = rows_all // nq
    base = ((bh // h) * hkv + (bh % h) // group) * nk  # first block of this row's key head
    qpos_blk = (rows_all % nq) * bq  # first query position of the row
    order = torch.argsort(counts, stable=True)
    sc = counts[order]
    distinct, sizes = torch.unique_consecutive(sc, return_counts=True)
    distinct, sizes = distinct.tolist(), sizes.tolist()
    # merge neighbouring row lengths into buckets (bounded padding, bounded number of groups)
    growth = _BUCKET_GROWTH
    while True:
        buckets, cur_lo, cur_hi, cur_n = [], None, None, 0
        for c, s in zip(distinct, sizes, strict=False):
            if cur_lo is not None and c <= cur_lo * growth:
                cur_hi, cur_n = c, cur_n + s
            else:
                if cur_lo is not None:
                    buckets.append((cur_hi, cur_n))
                cur_lo, cur_hi, cur_n = c, c, s
        buckets.append((cur_hi, cur_n))
        if len(buckets) <= _MAX_GROUPS:
            break
        growth = growth * 1.5 if growth > 1.0 else 1.25
    ragged = layout.seq_k % bk != 0
    groups, start = [], 0
    chunks = []
    for width, n_rows in buckets:  # split big groups so one group's scores stay under _CHUNK_ELEMS
        step = max(1, _CHUNK_ELEMS // (bq * width * bk))
        for lo in range(0, n_rows, step):
            chunks.append((width, order[start + lo:start + min(n_rows, lo + step)]))
        start += n_rows
    for width, rows in chunks:
        idx = indices[rows, :width]  # [G, w]
        flat = (base[rows, None] + idx).reshape(-1)
        rc = counts[rows]
        need_slot = bool((rc < width).any())
        valid = None
        if need_slot or ragged or layout.causal:
            kpos = idx[..., None] * bk + torch.arange(bk, device=device)  # [G,w,bk]
            ok = kpos < layout.seq_k
            if need_slot:
                ok = ok & (torch.arange(width, device=device) < rc[:, None])[..., None]
            valid = ok.reshape(len(rows), 1, width * bk)
            if layout.causal:
                qpos = qpos_blk[rows, None] + torch.arange(bq, device=device)  # [G,bq]
                valid = valid & (kpos.reshape(len(rows), 1, width * bk) <= qpos[..., None])
        groups.append(_Group(rows, flat, valid))
    return groups


_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_BWD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)


def _use_flash(q: torch.Tensor, v: torch.Tensor) -> bool:
    """PyTorch's fused CPU attention kernel (returns the LSE, has a backward): CPU, equal q/v head dims."""
    return _FLASH is not None and _FLASH_BWD is not None and q.device.type == "cpu" and q.shape[-1] == v.shape[-1]


def _additive(valid, dtype):
    """Bool validity [G, 1|bq, S] -> additive mask [1, G, 1|bq, S] (0 / -inf) for the fused kernel."""
    if valid is None:
        return None
    return torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill_(~valid, float("-inf"))[None]


def _group_fwd(qg, kg, vg, valid, scale):
    """One group: qg [G, bq, D], kg/vg [G, S, D] -> (out [G, bq, Dv], lse [G, bq])."""
    if _use_flash(qg, vg):
        o, lse = _FLASH(qg[None], kg[None], vg[None], 0.0, False, attn_mask=_additive(valid, qg.dtype), scale=scale)
        return o[0], lse[0]
    s = torch.bmm(qg * scale, kg.transpose(1, 2))
    if valid is not None:
        s.masked_fill_(~valid, float("-inf"))
    m = s.amax(-1)
    p = torch.softmax(s, dim=-1)
    del s
    return torch.bmm(p, vg), m - torch.log(p.amax(-1))  # max p = 1 / sum exp(s - m)


def _group_bwd(qg, kg, vg, og, lseg, dog, dlseg, valid, scale):
    """Gradients of one group; dlseg (or None) is the incoming gradient of the LSE."""
    if dlseg is None and _use_flash(qg, vg):
        dq, dk, dv = _FLASH_BWD(dog[None], qg[None], kg[None], vg[None], og[None], lseg[None], 0.0, False,
                                attn_mask=_additive(valid, qg.dtype), scale=scale)
        return dq[0], dk[0], dv[0]
    s = torch.bmm(qg * scale, kg.transpose(1, 2))
    if valid is not None:
        s.masked_fill_(~valid, float("-inf"))
    p = torch.exp(s.sub_(lseg[..., None]))
    del s
    dv = torch.bmm(p.transpose(1, 2), dog)
    delta = (dog * og).sum(-1)
    if dlseg is not None:
        delta = delta - dlseg
    ds = torch.bmm(dog, vg.transpose(1, 2))
    ds.sub_(delta[..., None]).mul_(p)
    del p
    dq = torch.bmm(ds, kg) * scale
    dk = torch.bmm(ds.transpose(1, 2), qg) * scale
    return dq, dk, dv


class _TorchSparseAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, layout, scale):
        cdt = torch.float64 if q.dtype == torch.float64 else torch.float32
        b, h, n, d = q.shape
        hkv, dv = k.shape[1], v.shape[-1]
        nq, nk, bq, bk = layout.num_q_blocks, layout.num_k_blocks, layout.block_q, layout.block_k
        groups = _plan(layout, hkv, q.device)
        qb = _pad_tokens(q.to(cdt), nq, bq).reshape(b * h * nq, bq, d)
        kb = _pad_tokens(k.to(cdt), nk, bk).reshape(b * hkv * nk, bk, d)
        vb = _pad_tokens(v.to(cdt), nk, bk).reshape(b * hkv * nk, bk, dv)
        out = torch.empty(b * h * nq, bq, dv, dtype=cdt, device=q.device)
        lse = torch.empty(b * h * nq, bq, dtype=cdt, device=q.device)
        for g in groups:
            rows = g.rows.numel()
            og, lg = _group_fwd(qb.index_select(0, g.rows), kb.index_select(0, g.flat).reshape(rows, -1, d),
                                vb.index_select(0, g.flat).reshape(rows, -1, dv), g.valid, scale)
            out.index_copy_(0, g.rows, og)
            lse.index_copy_(0, g.rows, lg.to(cdt))
        out = out.reshape(b, h, nq * bq, dv)[:, :, :n]
        lse = lse.reshape(b, h, nq * bq)[:, :, :n].contiguous()
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.layout, ctx.scale, ctx.groups = layout, scale, groups
        return out.to(q.dtype), lse

    @staticmethod
    def backward(ctx, dout, dlse):
        q, k, v, out, lse = ctx.saved_tensors
        layout, scale, groups = ctx.layout, ctx.scale, ctx.groups
        cdt = out.dtype
        b, h, n, d = q.shape
        hkv, dv = k.shape[1], v.shape[-1]
        nq, nk, bq, bk = layout.num_q_blocks, layout.num_k_blocks, layout.block_q, layout.block_k
        do = torch.zeros_like(out) if dout is None else dout.to(cdt)
        if dlse is not None and not bool(dlse.any()):
            dlse = None
        qb = _pad_tokens(q.to(cdt), nq, bq).reshape(b * h * nq, bq, d)
        kb = _pad_tokens(k.to(cdt), nk, bk).reshape(b * hkv * nk, bk, d)
        vb = _pad_tokens(v.to(cdt), nk, bk).reshape(b * hkv * nk, bk, dv)
        ob = _pad_tokens(out, nq, bq).reshape(b * h * nq, bq, dv)
        dob = _pad_tokens(do, nq, bq).reshape(b * h * nq, bq, dv)  # padded query rows: dO = 0 -> no gradient
        lseb = _pad_tokens(lse[..., None], nq, bq).reshape(b * h * nq, bq)
        dlseb = None if dlse is None else _pad_tokens(dlse.to(cdt)[..., None], nq, bq).reshape(b * h * nq, bq)
        dq = torch.zeros(b * h * nq, bq, d, dtype=cdt, device=q.device)
        dk = torch.zeros(b * hkv * nk, bk, d, dtype=cdt, device=q.device)
        dvv = torch.zeros(b * hkv * nk, bk, dv, dtype=cdt, device=q.device)
        for g in groups:
            rows = g.rows.numel()
            dqg, dkg, dvg = _group_bwd(
                qb.index_select(0, g.rows), kb.index_select(0, g.flat).reshape(rows, -1, d),
                vb.index_select(0, g.flat).reshape(rows, -1, dv), ob.index_select(0, g.rows),
                lseb.index_select(0, g.rows), dob.index_select(0, g.rows),
                None if dlseb is None else dlseb.index_select(0, g.rows), g.valid, scale,
            )
            dq.index_copy_(0, g.rows, dqg)
            dk.index_add_(0, g.flat, dkg.reshape(-1, bk, d))
            dvv.index_add_(0, g.flat, dvg.reshape(-1, bk, dv))
        dq = dq.reshape(b, h, nq * bq, d)[:, :, :n].to(q.dtype)
        dk = dk.reshape(b, hkv, nk * bk, d)[:, :, : k.shape[2]].to(k.dtype)
        dvv = dvv.reshape(b, hkv, nk * bk, dv)[:, :, : v.shape[2]].to(v.dtype)
        return dq, dk, dvv, None, None


def torch_block_sparse_attention(q, k, v, layout: BlockSparseLayout, scale: float):
    """Block-sparse attention ``(out, lse)`` through gathered blocks; differentiable in q, k, v (and lse)."""
    return _TorchSparseAttn.apply(q, k, v, layout, scale)
