"""Training FLOPs, counted as the paper counts them and measured beside it.

* **Paper count** (spec B3): FLOPs of the linear projections (``nn.Linear``, and convolutions, which are
  linear projections over patches) and of attention (``QKᵀ`` and ``AV``: ``4·N²·d`` per sequence), in the
  forward pass; training cost = 3 × forward. Counted with forward hooks on one training forward.
* **Measured**: ``torch.utils.flop_counter.FlopCounterMode`` over one full training step's forward and
  backward (matrix products, convolutions, SDPA), for the same batch.

The two agree up to the first layer's input gradient (not computed in backward) and the small terms the
paper's convention leaves out (time embeddings count as linear layers in both).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["measured_flops", "paper_forward_flops", "step_flops"]


def _attention_types() -> tuple[type, ...]:
    try:
        from diffusers.models.attention_processor import Attention

        return (Attention,)
    except ImportError:  # pragma: no cover
        return ()


def paper_forward_flops(fn: Callable[[], object], roots: list[nn.Module]) -> int:
    """Forward FLOPs of ``fn()`` over the linear projections and attention inside ``roots`` (2 FLOPs per
    multiply-add)."""
    total = [0]
    handles = []
    attn_types = _attention_types()

    def linear_hook(m: nn.Linear, inp, out):
        total[0] += 2 * (inp[0].numel() // m.in_features) * m.in_features * m.out_features

    def conv_hook(m: nn.Conv2d, inp, out):
        kh, kw = m.kernel_size
        total[0] += 2 * out.numel() * (m.in_channels // m.groups) * kh * kw

    def attn_hook(m, inp, out):
        h = inp[0] if inp else None
        if h is None:
            return
        n = h.shape[2] * h.shape[3] if h.dim() == 4 else h.shape[1]
        total[0] += 4 * h.shape[0] * n * n * m.inner_dim

    for root in roots:
        for mod in root.modules():
            if isinstance(mod, nn.Linear):
                handles.append(mod.register_forward_hook(linear_hook))
            elif isinstance(mod, nn.Conv2d):
                handles.append(mod.register_forward_hook(conv_hook))
            elif attn_types and isinstance(mod, attn_types):
                handles.append(mod.register_forward_hook(attn_hook))
    try:
        with torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return int(total[0])


def measured_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` (forward and whatever backward it runs) by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def step_flops(job: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, int]:
    """Per-step FLOPs of a training job (``job(x, job.draw(n)) -> (loss, logs)``) on batch ``x``:
    ``{"paper": 3 × forward, "forward": forward, "measured": forward + backward}``. Gradients are cleared."""
    noise = job.draw(x.shape[0], generator)
    was_training = job.training
    flags = [p.requires_grad for p in job.parameters()]
    job.train()
    job.requires_grad_(True)
    try:
        fwd = paper_forward_flops(lambda: job(x, noise), [job])

        def step():
            loss, _ = job(x, noise)
            loss.backward()

        measured = measured_flops(step)
    finally:
        job.zero_grad(set_to_none=True)
        for p, flag in zip(job.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        job.train(was_training)
    return {"paper": 3 * fwd, "forward": fwd, "measured": measured}
