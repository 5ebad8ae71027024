"""sparse_attention: argument validation and the default (layout-building) path."""

from __future__ import annotations

import pytest
import torch

import parsimon.attention as pa
from parsimon.attention import dense_masked_attention, hybrid_block_mask, random_layout, sparse_attention
from parsimon.testing import rel_err


def _qkv(n=128, d=64, h=2, hkv=2, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(1, h, n, d, generator=g, dtype=dtype), torch.randn(1, hkv, n, d, generator=g, dtype=dtype),
            torch.randn(1, hkv, n, d, generator=g, dtype=dtype))


def test_default_layout_matches_explicit_layout():
    q, k, v = _qkv(300)
    out = sparse_attention(q, k, v, topk=0.1, topp=0.3, backend="torch")
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.3)
    assert rel_err(out, dense_masked_attention(q, k, v, lay)) < 1e-4


def test_dense_backend_full_layout_equals_sdpa():
    q, k, v = _qkv(200)
    lay = random_layout(1, 2, 200, density=1.0)
    for causal in (False, True):
        lay_c = random_layout(1, 2, 200, density=1.0, causal=causal)
        out = sparse_attention(q, k, v, lay_c, causal=causal, backend="dense")
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        assert rel_err(out, ref) < 1e-5
    assert lay.sparsity == 0.0


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda q, k, v: (q[0], k, v), "q"),
        (lambda q, k, v: (q, k.double(), v), "dtype"),
        (lambda q, k, v: (q.int(), k.int(), v.int()), "floating"),
        (lambda q, k, v: (q, k, v[:, :, :10]), "v"),
        (lambda q, k, v: (q, k[..., :32], v), "head dim"),
    ],
)
def test_bad_inputs(mutate, match):
    q, k, v = mutate(*_qkv())
    with pytest.raises(ValueError, match=match):
        sparse_attention(q, k, v, backend="torch")


def test_bad_options():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="backend"):
        sparse_attention(q, k, v, backend="cuda")
    with pytest.raises(ValueError, match="topk"):
        sparse_attention(q, k, v, topk=2.0)
    with pytest.raises(ValueError, match="topp"):
        sparse_attention(q, k, v, topp=-1.0)
    with pytest.raises(ValueError, match="layout"):
        sparse_attention(q, k, v, random_layout(1, 3, 128))
    with pytest.raises(ValueError, match="layout"):
        sparse_attention(q, k, v, random_layout(1, 2, 128), causal=True)
    with pytest.raises(ValueError, match="causal"):
        sparse_attention(q, k[:, :, :64], v[:, :, :64], causal=True)


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -1.0, 0.0])
def test_bad_scale_is_refused_naming_it(scale):
    """Issue 10: scale=nan returned all-NaN output instead of an error."""
    from parsimon.errors import ConfigError

    q, k, v = _qkv()
    with pytest.raises(ConfigError, match="`scale` must be a finite positive number"):
        sparse_attention(q, k, v, scale=scale, backend="torch")
    with pytest.raises(ValueError, match="`scale`"):
        hybrid_block_mask(q, k, scale=scale)


def test_choices_come_from_one_registry():
    from parsimon.attention.registry import BACKENDS, MODES
    from parsimon.errors import ConfigError

    q, k, v = _qkv()
    with pytest.raises(ConfigError, match=r"`backend` must be one of \['auto', 'dense', 'flex', 'torch', 'triton'\]"):
        sparse_attention(q, k, v, backend="cuda")
    with pytest.raises(ConfigError, match=r"`mode` must be one of \['hybrid', 'topk', 'topp'\]"):
        hybrid_block_mask(q, k, mode="both")
    for mode in MODES:  # every registered mode builds a layout, every registered CPU backend runs
        lay = hybrid_block_mask(q, k, topk=0.1, topp=0.3, block_q=64, block_k=32, mode=mode)
        for backend in ("auto", "torch", "dense"):
            assert backend in BACKENDS
            assert rel_err(sparse_attention(q, k, v, lay, backend=backend), dense_masked_attention(q, k, v, lay)) < 1e-4


def test_device_mismatch():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="device"):
        sparse_attention(q, k.to("meta"), v, backend="torch")
    with pytest.raises(ValueError, match="device"):
        sparse_attention(q, k, v.to("meta"), random_layout(1, 2, 128), backend="torch")


def test_triton_on_plain_cpu_is_a_clear_error(monkeypatch):
    pytest.importorskip("triton")
    import parsimon.attention.kernels.triton_attention as ta

    monkeypatch.setattr(ta, "INTERPRET", False)
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="CUDA"):
        sparse_attention(q, k, v, backend="triton")


def test_public_names():
    for name in ("hybrid_block_mask", "BlockSparseLayout", "sparse_attention", "dense_masked_attention"):
        assert hasattr(pa, name)
    with pytest.raises(AttributeError):
        pa.no_such_name  # noqa: B018
