"""sdpa drop-in, patch_attention (routing, restore on error, layer counting) and the diffusers processor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from parsimon.attention import dense_masked_attention, hybrid_block_mask
from parsimon.attention.integrations import install_processor, patch_attention, real_sdpa, sdpa
from parsimon.testing import assert_close


def _qkv(b=2, h=2, n=80, d=16, hkv=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, n, d, generator=g)
    k, v = (torch.randn(b, hkv or h, n, d, generator=g) for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_matches_masked_oracle(causal):
    q, k, v = _qkv()
    out = sdpa(q, k, v, is_causal=causal, topk=0.2, topp=0.3, block_q=16, block_k=8, backend="torch")
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.3, block_q=16, block_k=8, causal=causal)
    assert_close("sdpa", dense_masked_attention(q, k, v, lay, causal=causal), out, 1e-4)


def test_sdpa_keeping_every_block_equals_real_sdpa_and_gqa():
    q, k, v = _qkv(h=4, hkv=2)
    out = sdpa(q, k, v, enable_gqa=True, topk=1.0, topp=1.0, block_q=16, block_k=8, backend="torch")
    assert_close("full", F.scaled_dot_product_attention(q, k, v, enable_gqa=True), out, 1e-5)
    # enable_gqa is inferred when the key heads divide the query heads (the README's call)
    inferred = sdpa(q, k, v, topk=1.0, topp=1.0, block_q=16, block_k=8, backend="torch")
    assert torch.equal(inferred, out)
    q3, k3, v3 = _qkv(h=3, hkv=2)
    with pytest.raises(ValueError, match="divide"):
        sdpa(q3, k3, v3, topk=1.0, block_q=16, block_k=8)


def test_readme_gqa_snippet_runs():
    """The README's attention snippet: 8 query heads, k = v with 2 heads, sdpa without enable_gqa."""
    from parsimon.attention import hybrid_block_mask, sparse_attention

    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 8, 1024, 64, generator=g, requires_grad=True)
    k = v = torch.randn(1, 2, 1024, 64, generator=g, requires_grad=True)
    layout = hybrid_block_mask(q, k, topk=0.03, topp=0.2, block_q=128, block_k=64)
    out = sparse_attention(q, k, v, layout)
    y = sdpa(q, k, v, topk=0.03, topp=0.2)
    assert torch.equal(y, out)  # the same layout and backend: the same numbers
    dense = sdpa(q, k, v, attn_mask=torch.ones(1024, 1024, dtype=torch.bool))  # dense fallback, GQA inferred
    assert_close("dense", F.scaled_dot_product_attention(q, k, v, enable_gqa=True), dense, 1e-6)


def test_sdpa_dense_fallbacks_are_exact():
    q, k, v = _qkv()
    mask = torch.rand(80, 80, generator=torch.Generator().manual_seed(1)) > 0.3
    mask.fill_diagonal_(True)
    kw = dict(topk=0.05, topp=0.0, block_q=16, block_k=8)
    assert torch.allclose(sdpa(q, k, v, attn_mask=mask, **kw), F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    short_k, short_v = k[:, :, :12], v[:, :, :12]  # fewer than 2 key blocks: nothing to skip
    assert torch.allclose(sdpa(q, short_k, short_v, **kw), F.scaled_dot_product_attention(q, short_k, short_v))
    q3 = q[:, 0]
    out3 = sdpa(q3, k[:, 0], v[:, 0], backend="torch", **kw)
    assert out3.shape == q3.shape
    with pytest.raises(ValueError, match="dropout_p"):
        sdpa(q, k, v, dropout_p=1.5)


class _TwoLayer(torch.nn.Module):
    def forward(self, q, k, v):
        a = F.scaled_dot_product_attention(q, k, v)
        return F.scaled_dot_product_attention(a, k, v)


def test_patch_attention_routes_counts_layers_and_restores():
    q, k, v = _qkv()
    model = _TwoLayer()
    dense = model(q, k, v)
    with patch_attention(model, topk=0.1, topp=0.0, mode="topk", block_q=16, block_k=8, dense_layers={1},
                         backend="torch") as pol:
        out = model(q, k, v)
        outside = F.scaled_dot_product_attention(q, k, v)  # not inside the module's forward: untouched
    assert F.scaled_dot_product_attention is real_sdpa.__globals__["_REAL_SDPA"]
    assert pol.stats.calls == 2 and pol.stats.dense_calls == 1
    assert torch.equal(outside, F.scaled_dot_product_attention(q, k, v))
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.0, block_q=16, block_k=8, mode="topk")
    a = dense_masked_attention(q, k, v, lay)
    assert_close("patched", F.scaled_dot_product_attention(a, k, v), out, 1e-4)
    assert (out - dense).abs().max() > 1e-3  # the sparse layer really changed the result


def test_patch_attention_restores_on_error_and_global_mode():
    q, k, v = _qkv()
    original = F.scaled_dot_product_attention
    with pytest.raises(RuntimeError, match="boom"):
        with patch_attention(topk=1.0, topp=1.0, block_q=16, block_k=8, backend="torch") as pol:
            F.scaled_dot_product_attention(q, k, v)
            raise RuntimeError("boom")
    assert F.scaled_dot_product_attention is original and pol.stats.calls == 1
    with pytest.raises(ValueError, match="module"):
        with patch_attention("not a module"):
            pass


def _tiny_diffusers_transformer():
    diffusers = pytest.importorskip("diffusers")
    torch.manual_seed(0)
    return diffusers.DiTTransformer2DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, num_layers=2,
        sample_size=16, patch_size=2, num_embeds_ada_norm=10,
    ).eval()


def test_diffusers_processor_on_a_small_transformer():
    model = _tiny_diffusers_transformer()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 16, 16, generator=g)  # 8x8 = 64 tokens
    t = torch.tensor([10, 500])
    y = torch.tensor([1, 3])
    with torch.no_grad():
        ref = model(x, timestep=t, class_labels=y).sample
        install_processor(model, topk=1.0, topp=1.0, block_q=16, block_k=8, backend="torch")
        full = model(x, timestep=t, class_labels=y).sample
        assert_close("all blocks kept", ref, full, 1e-4)
        pol = install_processor(model, topk=0.25, topp=0.1, block_q=16, block_k=8, backend="torch")
        sparse = model(x, timestep=t, class_labels=y).sample
        install_processor(model, topk=0.25, topp=0.1, block_q=16, block_k=8, backend="dense")
        oracle = model(x, timestep=t, class_labels=y).sample
    assert_close("torch backend vs dense-mask oracle", oracle, sparse, 1e-4)
    assert (sparse - ref).abs().max() > 1e-4
    assert pol.stats.calls == 2 and 0 < pol.stats.sparsity < 1
    with pytest.raises(ValueError, match="no diffusers Attention"):
        install_processor(torch.nn.Linear(2, 2))


def test_patch_attention_on_diffusers_default_processor():
    model = _tiny_diffusers_transformer()
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2))
    kw = dict(timestep=torch.tensor([100]), class_labels=torch.tensor([2]))
    with torch.no_grad():
        ref = model(x, **kw).sample
        with patch_attention(model, topk=1.0, topp=1.0, block_q=16, block_k=8, backend="torch") as pol:
            out = model(x, **kw).sample
    assert pol.stats.calls == 2
    assert_close("patched diffusers", ref, out, 1e-4)
