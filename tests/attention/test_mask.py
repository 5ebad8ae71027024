"""hybrid_block_mask against a per-row brute-force implementation of spec §2.1, and layout invariants."""

from __future__ import annotations

import math

import pytest
import torch

from parsimon.attention import BlockSparseLayout, hybrid_block_mask, random_layout
from parsimon.attention.mask import block_mean


def _brute(q, k, topk, topp, bq, bk, mode, causal):
    """Row-by-row Python version of the rule (no batching tricks)."""
    b, h, n, d = q.shape
    hkv = k.shape[1]
    nq, nk = math.ceil(n / bq), math.ceil(k.shape[2] / bk)
    out = torch.zeros(b, h, nq, nk, dtype=torch.bool)
    mass = torch.zeros(b, h, nq)
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // hkv)
            qbar = [q[bi, hi, i * bq:(i + 1) * bq].double().mean(0) for i in range(nq)]
            kbar = [k[bi, kh, j * bk:(j + 1) * bk].double().mean(0) for j in range(nk)]
            for i in range(nq):
                allowed = list(range(nk))
                if causal:
                    last_q = min((i + 1) * bq - 1, n - 1)
                    allowed = [j for j in range(nk) if j * bk <= last_q]
                logits = torch.tensor([float(qbar[i] @ kbar[j]) / math.sqrt(d) for j in allowed])
                p = torch.softmax(logits, 0)
                order = sorted(range(len(allowed)), key=lambda t: -float(p[t]))
                n_k = max(1, int(math.floor(topk * len(allowed) + 1e-9)))
                acc, n_p = 0.0, 0
                for t in order:
                    n_p += 1
                    acc += float(p[t])
                    if acc >= topp:
                        break
                n_p = max(n_p, 1)
                cnt = {"hybrid": max(n_k, n_p), "topk": n_k, "topp": n_p}[mode]
                for t in order[:cnt]:
                    out[bi, hi, i, allowed[t]] = True
                    mass[bi, hi, i] += float(p[t])
                if causal:
                    lo, hi_ = i * bq, min((i + 1) * bq - 1, n - 1)
                    for j in range(nk):
                        if j * bk <= hi_ and j * bk + bk - 1 >= lo and not out[bi, hi, i, j]:
                            out[bi, hi, i, j] = True
                            if j in allowed:
                                mass[bi, hi, i] += float(p[allowed.index(j)])
    return out, mass


@pytest.mark.parametrize("mode", ["hybrid", "topk", "topp"])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_brute_force(mode, causal):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 333, 16, generator=g) * 2
    k = torch.randn(2, 2, 333, 16, generator=g) * 2
    lay = hybrid_block_mask(q, k, topk=0.25, topp=0.6, block_q=32, block_k=16, mode=mode, causal=causal)
    ref, mass = _brute(q, k, 0.25, 0.6, 32, 16, mode, causal)
    assert torch.equal(lay.block_mask(), ref)
    torch.testing.assert_close(lay.retained_mass, mass.float(), rtol=1e-4, atol=1e-5)


def test_block_mean_partial_block():
    x = torch.arange(10.0).reshape(1, 1, 10, 1)
    m = block_mean(x, 4)
    assert m.flatten().tolist() == [1.5, 5.5, 8.5]


def test_csr_csc_and_counts_consistent():
    lay = random_layout(2, 3, 500, density=0.2, block_q=64, block_k=32, seed=3)
    m = lay.block_mask()
    assert torch.equal(lay.kv_counts, m.sum(-1).int())
    assert torch.equal(lay.q_counts, m.sum(-2).int())
    # CSR rows are ascending and point at kept blocks; CSC is the transpose
    for t, cnt, mm in ((lay.kv_indices, lay.kv_counts, m), (lay.q_indices, lay.q_counts, m.transpose(-1, -2))):
        valid = torch.arange(t.shape[-1]) < cnt[..., None]
        assert bool(mm.gather(-1, t.long())[valid].all())
        diffs = t[..., 1:] - t[..., :-1]
        assert bool((diffs[valid[..., 1:]] > 0).all())
    assert lay.sparsity == pytest.approx(1 - m.float().mean().item())
    assert bool((lay.kv_counts >= 1).all())


def test_layout_to_device_roundtrip():
    lay = random_layout(1, 2, 300, density=0.3, seed=2)
    moved = lay.to("cpu")
    assert torch.equal(moved.block_mask(), lay.block_mask()) and moved.seq_q == 300


def test_topk_keeps_at_least_one_block_and_topp_extremes():
    q, k = torch.randn(1, 2, 256, 8), torch.randn(1, 2, 256, 8)
    lay = hybrid_block_mask(q, k, topk=0.0, topp=0.0, block_q=64, block_k=32)
    assert bool((lay.kv_counts == 1).all())
    full = hybrid_block_mask(q, k, topk=0.0, topp=1.0, block_q=64, block_k=32, mode="topp")
    assert full.sparsity == pytest.approx(0.0)
    assert torch.allclose(full.retained_mass, torch.ones(1, 2, 4), atol=1e-5)


def test_union_is_max_of_prefixes_and_sink_example():
    # A skewed row: block 0 is a sink holding most of the mass -> Top-p alone keeps one block, Top-k adds more.
    k = torch.zeros(1, 1, 64 * 10, 4)
    k[:, :, :64, 0] = 6.0
    q = torch.zeros(1, 1, 128, 4)
    q[..., 0] = 1.0
    only_p = hybrid_block_mask(q, k, topk=0.3, topp=0.5, mode="topp", scale=1.0)
    union = hybrid_block_mask(q, k, topk=0.3, topp=0.5, mode="hybrid", scale=1.0)
    only_k = hybrid_block_mask(q, k, topk=0.3, topp=0.5, mode="topk", scale=1.0)
    assert only_p.kv_counts.item() == 1 and only_k.kv_counts.item() == 3 and union.kv_counts.item() == 3
    assert bool(union.block_mask()[0, 0, 0, 0])


def test_causal_excludes_upper_blocks_and_keeps_diagonal():
    q, k = torch.randn(1, 2, 300, 8), torch.randn(1, 2, 300, 8)
    lay = hybrid_block_mask(q, k, topk=0.0, topp=0.0, block_q=64, block_k=32, causal=True)
    m = lay.block_mask()[0, 0]
    for i in range(m.shape[0]):
        last = min(i * 64 + 63, 299)
        for j in range(m.shape[1]):
            if j * 32 > last:
                assert not m[i, j]
            if j * 32 <= last and j * 32 + 31 >= i * 64:
                assert m[i, j]
    tm = lay.token_mask()
    assert bool(tm.any(-1).all())  # no query token without a key


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(topk=1.5), "topk"),
        (dict(topp=-0.1), "topp"),
        (dict(mode="nope"), "mode"),
        (dict(block_q=0), "block_q"),
    ],
)
def test_bad_arguments(kwargs, match):
    q, k = torch.randn(1, 2, 64, 8), torch.randn(1, 2, 64, 8)
    with pytest.raises(ValueError, match=match):
        hybrid_block_mask(q, k, **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match="q"):
        hybrid_block_mask(torch.randn(2, 64, 8), torch.randn(1, 2, 64, 8))
    with pytest.raises(ValueError, match="divide"):
        hybrid_block_mask(torch.randn(1, 3, 64, 8), torch.randn(1, 2, 64, 8))
    with pytest.raises(ValueError, match="at least one"):
        BlockSparseLayout.from_block_mask(torch.zeros(1, 1, 1, 2, dtype=torch.bool), block_q=64, block_k=32,
                                          seq_q=64, seq_k=64)


@pytest.mark.gpu
def test_gpu_layout_equals_cpu_layout():
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(1, 4, 3000, 64, generator=g) * 2, torch.randn(1, 4, 3000, 64, generator=g) * 2
    cpu = hybrid_block_mask(q, k, topk=0.03, topp=0.3)
    gpu = hybrid_block_mask(q.cuda(), k.cuda(), topk=0.03, topp=0.3)
    assert gpu.kv_counts.is_cuda
    # identical up to ties broken differently by the two sorts
    assert (gpu.block_mask().cpu() != cpu.block_mask()).float().mean().item() < 1e-3
