"""GPU checks of the integration and training paths (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

from parsimon.testing import assert_close

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("d", [64, 128])
def test_sdpa_bf16_matches_oracle_with_grads(d):
    from parsimon.attention import dense_masked_attention, hybrid_block_mask
    from parsimon.attention.integrations import sdpa

    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(1, 4, 1000, d, device="cuda", dtype=torch.bfloat16, generator=g).requires_grad_()
               for _ in range(3))
    out = sdpa(q, k, v, topk=0.1, topp=0.3, block_q=128, block_k=64)
    lay = hybrid_block_mask(q, k, topk=0.1, topp=0.3, block_q=128, block_k=64)
    q2, k2, v2 = (t.detach().float().requires_grad_() for t in (q, k, v))
    ref = dense_masked_attention(q2, k2, v2, lay)
    assert_close("out", ref, out.float(), 2e-2)
    do = torch.randn_like(ref)
    out.backward(do.to(out.dtype))
    ref.backward(do)
    for name, a, b in (("dq", q2, q), ("dk", k2, k), ("dv", v2, v)):
        assert_close(name, a.grad, b.grad.float(), 2e-2)


def test_distill_steps_on_gpu(tmp_path):
    from parsimon.attention.training import (
        ClipConfig,
        ClipDataset,
        DiTConfig,
        TinyVideoDiT,
        distill,
        frozen_copy,
        sparse_student,
    )

    torch.manual_seed(0)
    teacher = frozen_copy(TinyVideoDiT(DiTConfig(frames=4, size=16, dim=32, depth=1, heads=2)).cuda())
    student = sparse_student(teacher, topk=0.25, topp=0.2, block_q=16, block_k=8)
    data = ClipDataset(16, ClipConfig(frames=4, size=16, digit=8), seed=0)
    res = distill(student, teacher, data, steps=3, lr=1e-3, batch_size=4, checkpoint=tmp_path / "s.pt")
    assert res.steps_done == 3 and all(torch.isfinite(torch.tensor(res.losses)))
    assert next(student.parameters()).is_cuda
