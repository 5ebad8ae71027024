"""SparsityPolicy: tiers, dense layers/steps, the quality guard and its counter, against the dense oracle."""

from __future__ import annotations

import pytest
import torch

from parsimon.attention import dense_masked_attention, hybrid_block_mask
from parsimon.attention.policy import TIERS, SparsityPolicy
from parsimon.testing import assert_close


def _qkv(b=1, h=2, n=96, d=16, seed=0, sink=0.0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g) for _ in range(3))
    if sink:
        k[:, :, :8] += sink  # one key block much more attractive than the rest
        q += sink / 4
    return q, k, v


def test_tiers_and_overrides():
    assert SparsityPolicy("balanced").settings() == TIERS.get("balanced")
    assert SparsityPolicy("fast").settings() == TIERS.get("fast")
    assert SparsityPolicy("dense").settings() is None
    assert SparsityPolicy("fast", topk=0.5).settings() == (0.5, TIERS.get("fast")[1])
    p = SparsityPolicy("quality", dense_layers={0, 2}, dense_steps={5}, dense_first_steps=2)
    assert p.settings(layer=0) is None and p.settings(layer=2) is None and p.settings(layer=1) is not None
    assert p.settings(step=0) is None and p.settings(step=1) is None and p.settings(step=5) is None
    assert p.settings(step=3) == TIERS.get("quality")
    with p.at_step(1):
        assert p.settings(layer=1) is None
    assert p.step is None
    fast = p.for_request("fast")
    assert fast.settings(layer=1) == TIERS.get("fast") and fast.stats is p.stats


@pytest.mark.parametrize("kw, word", [
    ({"tier": "turbo"}, "tier"), ({"topk": 1.5}, "topk"), ({"topp": -0.1}, "topp"), ({"block_q": 0}, "block_q"),
    ({"min_retained_mass": 0.0}, "min_retained_mass"), ({"mode": "both"}, "mode"),
    ({"dense_layers": [-1]}, "dense_layers"), ({"dense_first_steps": -2}, "dense_first_steps"),
])
def test_bad_arguments_name_the_argument(kw, word):
    with pytest.raises(ValueError, match=word):
        SparsityPolicy(**kw)


def test_sparse_call_matches_oracle_and_dense_layers_are_exact():
    q, k, v = _qkv()
    pol = SparsityPolicy(topk=0.2, topp=0.3, block_q=16, block_k=8, dense_layers={1}, backend="torch")
    out = pol(q, k, v, layer=0)
    lay = hybrid_block_mask(q, k, topk=0.2, topp=0.3, block_q=16, block_k=8)
    assert_close("sparse", dense_masked_attention(q, k, v, lay), out, 1e-4)
    dense = pol(q, k, v, layer=1)
    assert_close("dense layer", torch.nn.functional.scaled_dot_product_attention(q, k, v), dense, 1e-5)
    assert pol.stats.calls == 2 and pol.stats.dense_calls == 1
    assert abs(pol.stats.sparsity - lay.sparsity) < 1e-9


def test_quality_guard_makes_low_mass_rows_dense_and_counts_them():
    q, k, v = _qkv(n=128, seed=3)  # near-uniform rows: Top-k alone retains little mass
    kw = dict(topk=0.1, topp=0.0, block_q=16, block_k=8, mode="topk", backend="torch")
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.0, block_q=16, block_k=8, mode="topk")
    floor = float(lay.retained_mass.median())
    low = lay.retained_mass < floor
    assert 0 < int(low.sum()) < low.numel()
    pol = SparsityPolicy(min_retained_mass=floor, **kw)
    out = pol(q, k, v)
    assert pol.stats.fallback_rows == int(low.sum())
    assert pol.stats.fallback_rate == pytest.approx(int(low.sum()) / low.numel())
    # Expected: guarded rows see every key block, the others keep their sparse blocks.
    mask = lay.block_mask() | low[..., None]
    from parsimon.attention import BlockSparseLayout

    ref_lay = BlockSparseLayout.from_block_mask(mask, block_q=16, block_k=8, seq_q=128, seq_k=128)
    assert_close("guarded", dense_masked_attention(q, k, v, ref_lay), out, 1e-4)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    rows = low[0].repeat_interleave(16, dim=-1)  # [H, N] tokens of guarded rows
    assert_close("guarded rows are dense", dense[0][rows], out[0][rows], 1e-4)
    # Sparsity accounts for the extra blocks.
    assert pol.stats.sparsity < lay.sparsity


def test_guard_never_fires_when_floor_is_met():
    q, k, v = _qkv(sink=6.0, seed=1)
    pol = SparsityPolicy(topk=0.1, topp=0.5, block_q=16, block_k=8, min_retained_mass=0.5, backend="torch")
    pol(q, k, v)
    assert pol.stats.fallback_rows == 0 and pol.stats.rows == 2 * 6


def test_gradients_flow_through_policy():
    q, k, v = (t.requires_grad_() for t in _qkv(n=64))
    pol = SparsityPolicy(topk=0.25, topp=0.2, block_q=16, block_k=16, min_retained_mass=0.9, backend="torch")
    pol(q, k, v).sum().backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_dense_first_steps_during_sampling():
    from parsimon.attention.training import DiTConfig, TinyVideoDiT, euler_sample

    torch.manual_seed(0)
    model = TinyVideoDiT(DiTConfig(frames=4, size=16, dim=16, depth=2, heads=2)).eval()
    pol = SparsityPolicy(topk=0.25, topp=0.1, block_q=16, block_k=8, dense_first_steps=2, backend="torch")
    model.attention = pol
    noise = torch.randn(1, 1, 4, 16, 16, generator=torch.Generator().manual_seed(1))

    def on_step(i):
        pol.step = i

    euler_sample(model, noise, steps=4, on_step=on_step)
    assert pol.stats.calls == 8  # 4 steps × 2 layers
    assert pol.stats.dense_calls == 4  # steps 0 and 1 ran dense in both layers
