"""SpargeAttention2-style trainable block-sparse attention: hybrid Top-k ∪ Top-p masks and fast kernels."""

from __future__ import annotations

# Every export is imported lazily, so that `parsimon --help` (which imports parsimon.attention.cli) does not
# load torch.
__all__ = [
    "ParsimonAttnProcessor",
    "SparsityPolicy",
    "distill",
    "install_processor",
    "patch_attention",
    "sdpa",
    "BlockSparseLayout",
    "dense_masked_attention",
    "hybrid_block_mask",
    "random_layout",
    "sparse_attention",
]

# The module each public name lives in; a missing optional module never breaks this import.
_LAZY = {
    "sparse_attention": "api",
    "BlockSparseLayout": "mask",
    "hybrid_block_mask": "mask",
    "random_layout": "mask",
    "dense_masked_attention": "reference",
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
