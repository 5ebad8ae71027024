"""SpargeAttention2-style trainable block-sparse attention: hybrid Top-k ∪ Top-p masks and fast kernels."""

from __future__ import annotations

from .api import sparse_attention
from .mask import BlockSparseLayout, hybrid_block_mask, random_layout
from .reference import dense_masked_attention

__all__ = [
    "BlockSparseLayout",
    "dense_masked_attention",
    "hybrid_block_mask",
    "random_layout",
    "sparse_attention",
]

# Names from the training/integration modules (attn-train's); a missing module never breaks this import.
_LAZY = {
    "sdpa": "integrations",
    "patch_attention": "integrations",
    "ParsimonAttnProcessor": "integrations",
    "install_processor": "integrations",
    "SparsityPolicy": "policy",
    "distill": "training",
}


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'parsimon.attention' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(f".{mod}", __name__)
    except ImportError as exc:  # pragma: no cover - depends on the other modules being present
        raise AttributeError(f"parsimon.attention.{name} is unavailable: {exc}") from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
