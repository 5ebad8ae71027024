"""Block-sparse flash attention in Triton over a :class:`BlockSparseLayout`.

* forward: one program per (query tile, batch·head), longest rows launched first; it walks the CSR list of its query block with an online
  softmax in base 2 and writes O and the natural-log LSE (fp32);
* backward: a delta pre-pass (``rowsum(dO∘O) − dLSE``), dQ on the forward's grid re-walking the CSR list, and
  dK/dV with one program per (key block, batch·key head) walking the CSC list of every query head that shares
  the key head (GQA without atomics), so a key block visits only the query blocks that chose it.

Tiles: ``BLOCK_N`` is the layout's key block; ``BLOCK_M`` divides the layout's query block (a query block is
split into ``BLOCK_Q // BLOCK_M`` sub-tiles that walk the same list).  On CUDA the launch parameters are
autotuned (configs aimed at Hopper); under ``TRITON_INTERPRET=1`` a single config (``BLOCK_M = BLOCK_Q``) runs.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from parsimon.errors import ConfigError

from ..mask import BlockSparseLayout
from ..registry import TRITON_HEAD_DIMS

__all__ = ["triton_block_sparse_attention", "INTERPRET", "HEAD_DIMS"]

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
HEAD_DIMS = TRITON_HEAD_DIMS
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@triton.jit
def _row_program(ROW_ORDER, K, V, KV_CNT, KV_IDX, s_kb, s_kh, s_vb, s_vh, s_idx, H, GROUP, N_Q, NQB,
                 BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr):
    """Decode this program of a 1-D grid over (row, sub-tile). ROW_ORDER lists the rows (batch·head·query
    block) longest list first, so the heavy rows of the union start early and the tail of the launch is short
    rows. Returns (batch·head, batch, head, the sub-tile's query tokens, their validity, its first query
    token, the kv head's K and V bases, the row's kept-block count and the pointer to its list).

    Batch, head and kv head are int64: multiplied by the batch and head strides they address tensors of
    more than 2^31 elements (batch 7 at the Wan 720p shape), where int32 products wrap around."""
    SUB: tl.constexpr = BLOCK_Q // BLOCK_M
    pid = tl.program_id(0)
    sub = pid % SUB
    row = tl.load(ROW_ORDER + pid // SUB)
    pid_bh = row // NQB
    qblk = row % NQB
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    kvh = h // GROUP
    q_first = qblk * BLOCK_Q + sub * BLOCK_M
    offs_m = q_first + tl.arange(0, BLOCK_M)
    return (pid_bh, b, h, offs_m, offs_m < N_Q, q_first, K + b * s_kb + kvh * s_kh, V + b * s_vb + kvh * s_vh,
            tl.load(KV_CNT + row), KV_IDX + row.to(tl.int64) * s_idx)


@triton.jit
def _fwd_kernel(
    Q, K, V, O, LSE, KV_CNT, KV_IDX, ROW_ORDER,  # noqa: E741
    sm_scale,
    s_qb, s_qh, s_qn, s_kb, s_kh, s_kn, s_vb, s_vh, s_vn, s_ob, s_oh, s_on,
    s_idx,
    H, GROUP, N_Q, N_K, NQB,
    CAUSAL: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid_bh, b, h, offs_m, m_ok, q_first, k_base, v_base, cnt, idx_ptr = _row_program(
        ROW_ORDER, K, V, KV_CNT, KV_IDX, s_kb, s_kh, s_vb, s_vh, s_idx, H, GROUP, N_Q, NQB, BLOCK_Q, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    q = tl.load(Q + b * s_qb + h * s_qh + offs_m[:, None] * s_qn + offs_d[None, :], mask=m_ok[:, None], other=0.0)
    qk_scale = sm_scale * 1.4426950408889634
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for t in range(0, cnt):
        j = tl.load(idx_ptr + t)
        offs_n = j * BLOCK_N + offs_n0
        n_ok = offs_n < N_K
        k = tl.load(k_base + offs_n[:, None] * s_kn + offs_d[None, :], mask=n_ok[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        # only edge blocks need a mask: the ragged last key block, and (causal) blocks crossing the diagonal
        edge = j * BLOCK_N + BLOCK_N > N_K
        if CAUSAL:
            edge = edge | (j * BLOCK_N + BLOCK_N - 1 > q_first)
        if edge:
            keep = n_ok[None, :]
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None])
            # a large finite negative (not -inf): a row fully masked in this block stays finite and is wiped
            # (alpha = 0) by the first block where it has a visible key, which every row has by construction
            s = tl.where(keep, s, -1.0e30)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + offs_n[:, None] * s_vn + offs_d[None, :], mask=n_ok[:, None], other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    acc = acc / l_i[:, None]
    lse = (m_i + tl.log2(l_i)) * 0.6931471805599453
    tl.store(O + b * s_ob + h * s_oh + offs_m[:, None] * s_on + offs_d[None, :], acc.to(O.dtype.element_ty),
             mask=m_ok[:, None])
    tl.store(LSE + pid_bh.to(tl.int64) * N_Q + offs_m, lse, mask=m_ok)


@triton.jit
def _delta_kernel(O, DO, DLSE, DELTA, N_Q, HAS_DLSE: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):  # noqa: E741
    pid = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    ok = offs < N_Q
    offs_d = tl.arange(0, BLOCK_D)
    base = bh * N_Q * BLOCK_D
    o = tl.load(O + base + offs[:, None] * BLOCK_D + offs_d[None, :], mask=ok[:, None], other=0.0).to(tl.float32)
    do = tl.load(DO + base + offs[:, None] * BLOCK_D + offs_d[None, :], mask=ok[:, None], other=0.0)
    delta = tl.sum(o * do.to(tl.float32), 1)
    if HAS_DLSE:
        delta = delta - tl.load(DLSE + bh * N_Q + offs, mask=ok, other=0.0)
    tl.store(DELTA + bh * N_Q + offs, delta, mask=ok)


@triton.jit
def _dq_kernel(
    Q, K, V, DO, DQ, LSE, DELTA, KV_CNT, KV_IDX, ROW_ORDER,
    sm_scale,
    s_qb, s_qh, s_qn, s_kb, s_kh, s_kn, s_vb, s_vh, s_vn,
    s_idx,
    H, GROUP, N_Q, N_K, NQB,
    CAUSAL: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # Q, DO and DQ share strides (contiguous [B, H, N, D]); K and V are contiguous [B, Hkv, N, D]
    pid_bh, b, h, offs_m, m_ok, q_first, k_base, v_base, cnt, idx_ptr = _row_program(
        ROW_ORDER, K, V, KV_CNT, KV_IDX, s_kb, s_kh, s_vb, s_vh, s_idx, H, GROUP, N_Q, NQB, BLOCK_Q, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    offs_n0 = tl.arange(0, BLOCK_N)
    q_off = b * s_qb + h * s_qh + offs_m[:, None] * s_qn + offs_d[None, :]
    q = tl.load(Q + q_off, mask=m_ok[:, None], other=0.0)
    do = tl.load(DO + q_off, mask=m_ok[:, None], other=0.0)
    lse2 = tl.load(LSE + pid_bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=0.0)
    qk_scale = sm_scale * 1.4426950408889634
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for t in range(0, cnt):
        j = tl.load(idx_ptr + t)
        offs_n = j * BLOCK_N + offs_n0
        n_ok = offs_n < N_K
        k = tl.load(k_base + offs_n[:, None] * s_kn + offs_d[None, :], mask=n_ok[:, None], other=0.0)
        v = tl.load(v_base + offs_n[:, None] * s_vn + offs_d[None, :], mask=n_ok[:, None], other=0.0)
        s = tl.dot(q, tl.trans(k)) * qk_scale
        p = tl.exp2(s - lse2[:, None])
        # padded query rows have dO = 0 and delta = 0, so they add nothing; only edge key blocks need a mask
        edge = j * BLOCK_N + BLOCK_N > N_K
        if CAUSAL:
            edge = edge | (j * BLOCK_N + BLOCK_N - 1 > q_first)
        if edge:
            keep = n_ok[None, :] & m_ok[:, None]
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None])
            p = tl.where(keep, p, 0.0)
        dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k)
    dq = dq * sm_scale
    tl.store(DQ + q_off, dq.to(DQ.dtype.element_ty), mask=m_ok[:, None])


@triton.jit
def _dkdv_kernel(
    Q, K, V, DO, DK, DV, LSE, DELTA, Q_CNT, Q_IDX, COL_ORDER,
    sm_scale,
    s_qb, s_qh, s_qn, s_kb, s_kh, s_kn,
    s_idx,
    H, HKV, GROUP, N_Q, N_K, NKB,
    CAUSAL: tl.constexpr, BLOCK_Q: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # Q, DO share strides; K, V, DK, DV share strides (all contiguous)
    SUB: tl.constexpr = BLOCK_Q // BLOCK_M
    # 1-D grid over (batch·key head·key block), busiest key blocks (summed over the query heads) first
    col0 = tl.load(COL_ORDER + tl.program_id(0))
    kblk = col0 % NKB
    pid = col0 // NKB
    b = (pid // HKV).to(tl.int64)  # int64 offsets: see _row_program
    kvh = (pid % HKV).to(tl.int64)
    offs_n = kblk * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_m0 = tl.arange(0, BLOCK_M)
    n_ok = offs_n < N_K
    n_edge = kblk * BLOCK_N + BLOCK_N > N_K
    kv_off = b * s_kb + kvh * s_kh + offs_n[:, None] * s_kn + offs_d[None, :]
    k = tl.load(K + kv_off, mask=n_ok[:, None], other=0.0)
    v = tl.load(V + kv_off, mask=n_ok[:, None], other=0.0)
    qk_scale = sm_scale * 1.4426950408889634
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    for g in range(0, GROUP):
        h = kvh * GROUP + g
        bh = b * H + h
        col = bh * NKB + kblk
        cnt = tl.load(Q_CNT + col)
        idx_ptr = Q_IDX + col.to(tl.int64) * s_idx
        q_base = Q + b * s_qb + h * s_qh
        do_base = DO + b * s_qb + h * s_qh
        for t in range(0, cnt):
            i = tl.load(idx_ptr + t)
            for sub in tl.static_range(SUB):
                offs_m = i * BLOCK_Q + sub * BLOCK_M + offs_m0
                m_ok = offs_m < N_Q
                q = tl.load(q_base + offs_m[:, None] * s_qn + offs_d[None, :], mask=m_ok[:, None], other=0.0)
                do = tl.load(do_base + offs_m[:, None] * s_qn + offs_d[None, :], mask=m_ok[:, None], other=0.0)
                lse2 = tl.load(LSE + bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=0.0) * 1.4426950408889634
                delta = tl.load(DELTA + bh.to(tl.int64) * N_Q + offs_m, mask=m_ok, other=0.0)
                st = tl.dot(k, tl.trans(q)) * qk_scale  # [BLOCK_N, BLOCK_M]
                pt = tl.exp2(st - lse2[None, :])
                tile_first = i * BLOCK_Q + sub * BLOCK_M
                edge = n_edge | (tile_first + BLOCK_M > N_Q)
                if CAUSAL:
                    edge = edge | (kblk * BLOCK_N + BLOCK_N - 1 > tile_first)
                if edge:  # ragged tails or the causal diagonal; interior tiles need no mask
                    keep = n_ok[:, None] & m_ok[None, :]
                    if CAUSAL:
                        keep = keep & (offs_n[:, None] <= offs_m[None, :])
                    pt = tl.where(keep, pt, 0.0)
                dv += tl.dot(pt.to(do.dtype), do)
                dpt = tl.dot(v, tl.trans(do))
                dst = pt * (dpt - delta[None, :])
                dk += tl.dot(dst.to(q.dtype), q)
    dk = dk * sm_scale
    tl.store(DK + kv_off, dk.to(DK.dtype.element_ty), mask=n_ok[:, None])
    tl.store(DV + kv_off, dv.to(DV.dtype.element_ty), mask=n_ok[:, None])


# ---------------------------------------------------------------------------------------------- autotuning
def _prune(configs, named_args, **kwargs):
    bq = kwargs.get("BLOCK_Q", named_args.get("BLOCK_Q"))
    kept = [c for c in configs if c.kwargs["BLOCK_M"] <= bq and bq % c.kwargs["BLOCK_M"] == 0]
    return kept or [triton.Config({"BLOCK_M": bq}, num_warps=4, num_stages=2)]


def _configs(stages):
    return [
        triton.Config({"BLOCK_M": bm}, num_warps=w, num_stages=s)
        for bm in (64, 128)
        for w in (4, 8)
        for s in stages
    ]


_KEY = ["N_Q", "N_K", "BLOCK_Q", "BLOCK_N", "BLOCK_D", "CAUSAL"]
if not INTERPRET:
    _fwd = triton.autotune(_configs((2, 3, 4)), key=_KEY, prune_configs_by={"early_config_prune": _prune})(
        _fwd_kernel)
    _dq = triton.autotune(_configs((2, 3)), key=_KEY, prune_configs_by={"early_config_prune": _prune})(_dq_kernel)
    _dkdv = triton.autotune(_configs((2, 3)), key=_KEY, prune_configs_by={"early_config_prune": _prune})(
        _dkdv_kernel)
else:  # the interpreter runs one config: a whole query block per program (fewest program × step pairs)
    _fwd, _dq, _dkdv = _fwd_kernel, _dq_kernel, _dkdv_kernel


INTERPRET_BLOCK_M: int | None = None  # tests set this to split query blocks into sub-tiles, as on GPU


def _launch_kw(block_q):
    if not INTERPRET:
        return {}
    bm = INTERPRET_BLOCK_M or block_q
    if block_q % bm:
        raise ConfigError(f"INTERPRET_BLOCK_M={bm} must divide block_q={block_q}")
    return {"BLOCK_M": bm}


def _grid_rows(nrows, block_q):
    return lambda meta: (nrows * (block_q // meta["BLOCK_M"]),)


def _row_order(layout: BlockSparseLayout) -> torch.Tensor:
    """Row ids (flattened batch·head·query block) sorted by kept count, longest first."""
    return torch.argsort(layout.kv_counts.reshape(-1), descending=True, stable=True).to(torch.int32)


# ---------------------------------------------------------------------------------------------- autograd
def _check(q, k, v, layout):
    if not (q.is_cuda or INTERPRET):
        raise ConfigError("backend: 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 set before "
                         "parsimon.attention.kernels is imported); use backend='torch' on CPU")
    d = q.shape[-1]
    if d not in HEAD_DIMS:
        raise ConfigError(f"q: head dim {d} is not supported by backend 'triton'; accepted: {HEAD_DIMS}")
    if v.shape[-1] != d:
        raise ConfigError(f"v: backend 'triton' needs the value head dim to equal q's ({d}), got {v.shape[-1]}")
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ConfigError(f"q: backend 'triton' accepts float16, bfloat16 or float32, got {q.dtype}")
    for name, bsz in (("block_q", layout.block_q), ("block_k", layout.block_k)):
        if bsz < 16 or bsz & (bsz - 1):
            raise ConfigError(f"layout.{name}: backend 'triton' needs a power of two ≥ 16, got {bsz}")


class _TritonSparseAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, layout: BlockSparseLayout, scale: float):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        b, h, n_q, d = q.shape
        hkv, n_k = k.shape[1], k.shape[2]
        nqb, bq, bk = layout.num_q_blocks, layout.block_q, layout.block_k
        kv_cnt = layout.kv_counts.contiguous()
        kv_idx = layout.kv_indices.contiguous()
        o = torch.empty_like(q)
        lse = torch.empty(b, h, n_q, dtype=torch.float32, device=q.device)
        order = _row_order(layout)
        _fwd[_grid_rows(order.numel(), bq)](
            q, k, v, o, lse, kv_cnt, kv_idx, order, scale,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), o.stride(0), o.stride(1), o.stride(2),
            kv_idx.stride(-2),
            h, h // hkv, n_q, n_k, nqb,
            CAUSAL=bool(layout.causal), BLOCK_Q=bq, BLOCK_N=bk, BLOCK_D=d, **_launch_kw(bq),
        )
        ctx.save_for_backward(q, k, v, o, lse, order)
        ctx.layout, ctx.scale = layout, scale
        return o, lse

    @staticmethod
    def backward(ctx, do, dlse):
        q, k, v, o, lse, order = ctx.saved_tensors
        layout, scale = ctx.layout, ctx.scale
        b, h, n_q, d = q.shape
        hkv, n_k = k.shape[1], k.shape[2]
        nqb, nkb, bq, bk = layout.num_q_blocks, layout.num_k_blocks, layout.block_q, layout.block_k
        do = torch.zeros_like(o) if do is None else do.contiguous()
        delta = torch.empty_like(lse)
        has_dlse = dlse is not None
        dlse_t = dlse.float().contiguous() if has_dlse else lse
        blk = 64
        _delta_kernel[(triton.cdiv(n_q, blk), b * h)](o, do, dlse_t, delta, n_q, HAS_DLSE=has_dlse, BLOCK=blk,
                                                      BLOCK_D=d)
        dq = torch.empty_like(q)
        kv_cnt, kv_idx = layout.kv_counts.contiguous(), layout.kv_indices.contiguous()
        _dq[_grid_rows(order.numel(), bq)](
            q, k, v, do, dq, lse, delta, kv_cnt, kv_idx, order, scale,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), kv_idx.stride(-2),
            h, h // hkv, n_q, n_k, nqb,
            CAUSAL=bool(layout.causal), BLOCK_Q=bq, BLOCK_N=bk, BLOCK_D=d, **_launch_kw(bq),
        )
        dk, dv = torch.empty_like(k), torch.empty_like(v)
        q_cnt, q_idx = layout.q_counts.contiguous(), layout.q_indices.contiguous()
        col_order = torch.argsort(q_cnt.reshape(b, hkv, h // hkv, nkb).sum(2).reshape(-1), descending=True,
                                  stable=True).to(torch.int32)
        _dkdv[(col_order.numel(),)](
            q, k, v, do, dk, dv, lse, delta, q_cnt, q_idx, col_order, scale,
            q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            q_idx.stride(-2),
            h, hkv, h // hkv, n_q, n_k, nkb,
            CAUSAL=bool(layout.causal), BLOCK_Q=bq, BLOCK_N=bk, BLOCK_D=d, **_launch_kw(bq),
        )
        return dq, dk, dv, None, None


def triton_block_sparse_attention(q, k, v, layout: BlockSparseLayout, scale: float):
    """``(out, lse)`` through the Triton kernels; differentiable in q, k, v (and lse)."""
    _check(q, k, v, layout)
    return _TritonSparseAttn.apply(q, k, v, layout, scale)
