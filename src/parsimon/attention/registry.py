"""The attention subpackage's named choices and constants, each declared once.

Every registry here is a :class:`parsimon.registry.Registry`; the command line takes its ``--help``
choices and its error messages from the same objects. This module imports no torch (the CLI reads it at
start-up); the factories import their backend when called.

* :data:`BACKENDS`: ``name -> fn(q, k, v, layout, scale, causal, need_lse) -> (out, lse)``;
* :data:`MODES`: ``name -> fn(n_k, n_p) -> blocks kept per row`` from the Top-k and Top-p counts;
* :data:`OBJECTIVES`: ``name -> loss function`` of the training loop;
* :data:`ROWS`: the generated inputs of ``parsimon attention mask-stats``;
* :data:`TRITON_HEAD_DIMS`: the head dimensions the Triton kernels are built for.
"""

from __future__ import annotations

from parsimon.registry import Registry

__all__ = ["BACKENDS", "DEVICES", "MODES", "OBJECTIVES", "PAPER_BLOCK_K", "PAPER_BLOCK_Q", "ROWS", "TIERS",
           "TRITON_HEAD_DIMS", "resolve_backend"]

#: Head dimensions the Triton kernels accept (``tl.dot`` tiles; the kernels load a whole head at once).
TRITON_HEAD_DIMS = (16, 32, 64, 128)
#: The paper's block sizes in tokens (query blocks of 128, key blocks of 64).
PAPER_BLOCK_Q, PAPER_BLOCK_K = 128, 64

#: tier → (topk, topp) or None (dense). "balanced" is the paper's 1.3B setting (k = 3%, p = 0.2);
#: "quality" keeps more blocks, "fast" fewer.
TIERS: Registry = Registry("tier")
TIERS.register("quality", (0.05, 0.40), describe="k = 5%, p = 0.4")
TIERS.register("balanced", (0.03, 0.20), describe="k = 3%, p = 0.2 (the paper's Wan2.1-1.3B setting)")
TIERS.register("fast", (0.02, 0.10), describe="k = 2%, p = 0.1")
TIERS.register("dense", None, describe="full attention")

DEVICES: Registry = Registry("device")
DEVICES.register("auto", "auto", describe="cuda when available, else cpu")
DEVICES.register("cpu", "cpu", describe="the CPU")
DEVICES.register("cuda", "cuda", describe="the current CUDA device")

# ---------------------------------------------------------------------------------------------- modes
MODES: Registry = Registry("mode")
MODES.register("hybrid", lambda n_k, n_p: n_p.maximum(n_k.expand_as(n_p)),
               describe="Top-k ∪ Top-p: the larger of the two prefixes of the sorted row (the paper's mask)")
MODES.register("topk", lambda n_k, n_p: n_k.expand_as(n_p), describe="Top-k only: the floor(k·n) best key blocks")
MODES.register("topp", lambda n_k, n_p: n_p, describe="Top-p only: the shortest prefix whose mass reaches p")


# ------------------------------------------------------------------------------------------- backends
def resolve_backend(backend: str, q) -> str:
    """``"auto"`` → ``"triton"`` for CUDA fp16/bf16 inputs with a supported head dim (when Triton imports),
    else ``"torch"``; any other registered name is returned unchanged."""
    BACKENDS.check(backend)
    if backend != "auto":
        return backend
    import torch

    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and q.shape[-1] in TRITON_HEAD_DIMS:
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch"
        return "triton"
    return "torch"


def _dense(q, k, v, layout, scale, causal, need_lse):
    from .reference import dense_masked_attention

    return dense_masked_attention(q, k, v, layout, scale=scale, causal=causal, return_lse=True)


def _torch(q, k, v, layout, scale, causal, need_lse):
    from .torch_backend import torch_block_sparse_attention

    return torch_block_sparse_attention(q, k, v, layout, scale)


def _flex(q, k, v, layout, scale, causal, need_lse):
    from .flex_backend import flex_block_sparse_attention

    return flex_block_sparse_attention(q, k, v, layout, scale, need_lse=need_lse)


def _triton(q, k, v, layout, scale, causal, need_lse):
    from .kernels.triton_attention import triton_block_sparse_attention

    return triton_block_sparse_attention(q, k, v, layout, scale)


def _auto(q, k, v, layout, scale, causal, need_lse):
    return BACKENDS.get(resolve_backend("auto", q))(q, k, v, layout, scale, causal, need_lse)


BACKENDS: Registry = Registry("backend")
BACKENDS.register("auto", _auto, describe="triton for CUDA fp16/bf16 inputs, torch otherwise")
BACKENDS.register("triton", _triton, describe="Triton kernels (CUDA, or CPU under TRITON_INTERPRET=1)")
BACKENDS.register("flex", _flex, describe="PyTorch FlexAttention on the same layout (no CPU backward)")
BACKENDS.register("torch", _torch, describe="gathered kept blocks in plain PyTorch (any device)")
BACKENDS.register("dense", _dense, describe="expanded-mask oracle, O(N^2) memory (tests)")


# ----------------------------------------------------------------------------------------- objectives
def _diffusion_loss():
    from .training.flow import diffusion_loss

    return diffusion_loss


def _distill_loss():
    from .training.flow import velocity_distill_loss

    return velocity_distill_loss


OBJECTIVES: Registry = Registry("objective")
OBJECTIVES.register("distill", _distill_loss, describe="velocity distillation ||v_student - v_teacher||^2")
OBJECTIVES.register("diffusion", _diffusion_loss, describe="plain flow matching ||v - (eps - x0)||^2")

# --------------------------------------------------------------------------------------- mask-stats
ROWS: Registry = Registry("rows")
ROWS.register("uniform", "uniform", describe="near-uniform pooled rows (block-level Gaussian structure)")
ROWS.register("skewed", "skewed", describe="an attention sink plus a smooth positional term")
ROWS.register("random", "random", describe="i.i.d. Gaussian q, k, v")
