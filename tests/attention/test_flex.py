"""FlexAttention path: the converted BlockMask reproduces the layout; compiled forward matches the oracle."""

from __future__ import annotations

import pytest
import torch

from parsimon.attention import dense_masked_attention, hybrid_block_mask, random_layout, sparse_attention
from parsimon.attention.flex_backend import _tile, flex_block_mask, flex_coarse_block_mask
from parsimon.testing import rel_err

flex_mod = pytest.importorskip("torch.nn.attention.flex_attention")


def _qkv(h, hkv, n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, h, n, d, generator=g), torch.randn(1, hkv, n, d, generator=g),
            torch.randn(1, hkv, n, d, generator=g))


@pytest.mark.parametrize("causal", [False, True])
def test_block_mask_conversion_matches_layout(causal):
    """The BlockMask holds exactly our kept blocks, in both its row (kv) and transposed (q) lists."""
    q, k, v = _qkv(4, 2, 200, 32, seed=1)
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.4, block_q=64, block_k=32, causal=causal)
    bm = flex_block_mask(lay)
    assert bm.BLOCK_SIZE == (64, 32) and tuple(bm.seq_lengths) == (200, 200)
    assert torch.equal(bm.to_dense().bool(), lay.block_mask())
    assert torch.equal(bm.q_num_blocks, lay.q_counts)


def _elementwise(bm, n):
    """Which (query, key) pairs a BlockMask computes: its listed blocks, then its mask_mod inside them."""
    blocks = bm.to_dense().bool()
    bq, bk = bm.BLOCK_SIZE
    listed = blocks.repeat_interleave(bq, 2).repeat_interleave(bk, 3)[:, :, :n, :n]
    return listed & flex_mod.create_mask(bm.mask_mod, 1, blocks.shape[1], n, n, device="cpu")


@pytest.mark.parametrize(("block_q", "block_k", "causal", "n"), [(128, 64, True, 1000), (64, 32, False, 300),
                                                                 (128, 64, False, 250), (256, 64, True, 520)])
def test_coarse_block_mask_computes_exactly_the_layout(block_q, block_k, causal, n):
    """The GPU training mask (128-multiples, layout looked up in mask_mod) keeps the same pairs as the
    layout's own mask, and attention through it matches the oracle."""
    q, k, v = _qkv(4, 4, n, 32, seed=4)
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.4, block_q=block_q, block_k=block_k, causal=causal)
    cm = flex_coarse_block_mask(lay)
    assert all(b % 128 == 0 for b in cm.BLOCK_SIZE)
    want = _elementwise(flex_block_mask(lay), n)
    assert want.any() and not want.all()
    assert torch.equal(_elementwise(cm, n), want)
    with torch.no_grad():
        out = flex_mod.flex_attention(q, k, v, block_mask=cm, scale=32 ** -0.5)
    assert rel_err(out, dense_masked_attention(q, k, v, lay, causal=causal)) < 1e-5


def test_coarse_block_mask_rejects_odd_blocks_and_tiles_divide():
    q, k, _ = _qkv(2, 2, 200, 16)
    lay = hybrid_block_mask(q, k, topk=0.3, topp=0.5, block_q=64, block_k=48)
    with pytest.raises(ValueError, match="layout.block_k: 48"):
        flex_coarse_block_mask(lay)
    assert [_tile(b, 64) for b in (128, 64, 32, 48, 16)] == [64, 64, 32, 16, 16]
    assert _tile(128, 128) == 128 and _tile(64, 128) == 64


def test_flex_cpu_refuses_backward_and_lse_with_clear_errors():
    q, k, v = _qkv(2, 2, 128, 32)
    lay = random_layout(1, 2, 128, density=0.5)
    with pytest.raises(ValueError, match="backward on CPU"):
        sparse_attention(q.requires_grad_(True), k, v, lay, backend="flex")
    with pytest.raises(ValueError, match="return_lse"):
        sparse_attention(q.detach(), k, v, lay, backend="flex", return_lse=True)


@pytest.mark.slow
def test_compiled_flex_forward_matches_oracle():
    """One compile (~20 s cold on CPU): ragged N, GQA, non-square blocks."""
    q, k, v = _qkv(4, 2, 300, 64, seed=2)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.3, block_q=64, block_k=32)
    with torch.no_grad():
        out = sparse_attention(q, k, v, lay, backend="flex")
    assert rel_err(out, dense_masked_attention(q, k, v, lay)) < 1e-4


@pytest.mark.gpu
def test_flex_gpu_forward_backward_bf16():
    g = torch.Generator().manual_seed(3)
    def mk(hh):
        return torch.randn(1, hh, 1000, 64, generator=g).cuda().bfloat16().requires_grad_(True)
    q, k, v = mk(4), mk(2), mk(2)
    lay = random_layout(1, 4, 1000, density=0.1, causal=True, seed=1, device="cuda")
    o, lse = sparse_attention(q, k, v, lay, causal=True, return_lse=True, backend="flex")
    ro, rlse = dense_masked_attention(q, k, v, lay, causal=True, return_lse=True)
    assert rel_err(o.float(), ro.float()) < 2e-2 and rel_err(lse, rlse) < 2e-2
    go = torch.randn_like(o)
    grads = torch.autograd.grad((o * go).sum(), (q, k, v))
    rgrads = torch.autograd.grad((ro * go).sum(), (q, k, v))
    for a, r in zip(grads, rgrads, strict=False):
        assert rel_err(a.float(), r.float()) < 2e-2
