"""The gathered-block PyTorch backend and the dense oracle agree (fp32 1e-4 relative, fp64 gradcheck)."""

from __future__ import annotations

import pytest
import torch

from parsimon.attention import dense_masked_attention, hybrid_block_mask, random_layout, sparse_attention
from parsimon.testing import rel_err


def _inputs(b, h, hkv, n, d, dtype=torch.float32, seed=0, dv=None):
    g = torch.Generator().manual_seed(seed)
    def mk(hh, dd):
        return torch.randn(b, hh, n, dd, generator=g, dtype=dtype).requires_grad_(True)
    return mk(h, d), mk(hkv, d), mk(hkv, dv or d)


def _check(q, k, v, lay, causal, backend="torch", tol=1e-4):
    o, lse = sparse_attention(q, k, v, lay, causal=causal, return_lse=True, backend=backend)
    assert rel_err(torch.autograd.grad(o.sum(), q, retain_graph=True)[0],
                   torch.autograd.grad(dense_masked_attention(q, k, v, lay, causal=causal).sum(), q)[0]) < tol
    ro, rlse = dense_masked_attention(q, k, v, lay, causal=causal, return_lse=True)
    assert rel_err(o, ro) < tol and rel_err(lse, rlse) < tol
    g = torch.Generator().manual_seed(9)
    go, gl = torch.randn(o.shape, generator=g), torch.randn(lse.shape, generator=g)
    grads = torch.autograd.grad((o * go).sum() + (lse * gl).sum(), (q, k, v))
    rgrads = torch.autograd.grad((ro * go).sum() + (rlse * gl).sum(), (q, k, v))
    for a, b in zip(grads, rgrads, strict=False):
        assert rel_err(a, b) < tol


@pytest.fixture(params=["fused", "matmul"])
def kernel_path(request, monkeypatch):
    """Run the torch backend through PyTorch's fused CPU kernel and through the plain matmul fallback."""
    if request.param == "matmul":
        import parsimon.attention.torch_backend as tb

        monkeypatch.setattr(tb, "_FLASH", None)
    return request.param


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shape", [(2, 4, 2, 300, 64), (1, 2, 2, 256, 128), (1, 6, 1, 130, 32)])
def test_hybrid_layout_matches_oracle(shape, causal, kernel_path):
    b, h, hkv, n, d = shape
    q, k, v = _inputs(b, h, hkv, n, d, seed=n)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.3, block_q=64, block_k=32, causal=causal)
    _check(q, k, v, lay, causal)


@pytest.mark.parametrize("density", [0.02, 0.5, 1.0])
def test_random_and_adversarial_layouts(density, kernel_path):
    q, k, v = _inputs(1, 2, 2, 200, 32, seed=5)
    lay = random_layout(1, 2, 200, density=density, block_q=64, block_k=32, seed=7)
    _check(q, k, v, lay, False)


def test_adversarial_single_last_partial_block(kernel_path):
    # every row keeps only the last (partial, 8-token) key block
    q, k, v = _inputs(1, 2, 2, 200, 32, seed=6)
    m = torch.zeros(1, 2, 4, 7, dtype=torch.bool)
    m[..., -1] = True
    from parsimon.attention import BlockSparseLayout

    lay = BlockSparseLayout.from_block_mask(m, block_q=64, block_k=32, seq_q=200, seq_k=200)
    _check(q, k, v, lay, False)


def test_chunked_groups_match(monkeypatch):
    import parsimon.attention.torch_backend as tb

    monkeypatch.setattr(tb, "_CHUNK_ELEMS", 64 * 32 * 2)  # about one row per chunk
    q, k, v = _inputs(1, 3, 3, 250, 16, seed=8)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.5, block_q=64, block_k=32, causal=True)
    assert len(tb._plan(lay, 3, "cpu")) > 6
    _check(q, k, v, lay, True)


def test_cross_attention_different_lengths_and_value_dim():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(1, 2, 100, 16, generator=g, requires_grad=True)
    k = torch.randn(1, 2, 170, 16, generator=g, requires_grad=True)
    v = torch.randn(1, 2, 170, 24, generator=g, requires_grad=True)
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.5, block_q=32, block_k=16)
    _check(q, k, v, lay, False)


def test_gradcheck_fp64():
    q, k, v = _inputs(1, 2, 1, 27, 4, dtype=torch.float64, seed=3)
    lay = random_layout(1, 2, 27, density=0.4, block_q=8, block_k=4, causal=True, seed=1)

    def f(q, k, v):
        o, lse = sparse_attention(q, k, v, lay, causal=True, return_lse=True, backend="torch")
        return o, lse

    assert torch.autograd.gradcheck(f, (q, k, v), eps=1e-6, atol=1e-6)


def test_auto_is_torch_on_cpu_and_bf16_runs():
    q, k, v = _inputs(1, 2, 2, 128, 64, dtype=torch.bfloat16, seed=4)
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.3)
    o = sparse_attention(q, k, v, lay)
    ro = dense_masked_attention(q, k, v, lay)
    assert o.dtype == torch.bfloat16 and rel_err(o.float(), ro.float()) < 2e-2
