"""Drop-in entry points: an SDPA look-alike, a context manager that patches SDPA, a diffusers processor.

- :func:`sdpa` has the signature of ``torch.nn.functional.scaled_dot_product_attention`` plus the sparse
  keyword arguments. It falls back to the real SDPA (dense, exact) when SDPA features the block-sparse
  kernel does not cover are asked for: an ``attn_mask``, ``dropout_p > 0``, inputs that are not 3-d or
  4-d, or a key sequence shorter than two key blocks (nothing to skip, e.g. text cross-attention).
- :func:`patch_attention` routes ``F.scaled_dot_product_attention`` calls made inside it (optionally only
  those made while one module runs) through :func:`sdpa`, and restores SDPA on exit, even on error.
- :class:`ParsimonAttnProcessor` is a diffusers attention processor (the ``Attention`` module's
  ``set_processor``) that computes self-attention with :func:`sdpa`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from parsimon.errors import ConfigError

__all__ = ["ParsimonAttnProcessor", "install_processor", "patch_attention", "real_sdpa", "sdpa"]

#: The SDPA function as torch defines it, captured at import (never the patched one).
_REAL_SDPA = F.scaled_dot_product_attention
_lock = threading.RLock()


def real_sdpa(*args, **kwargs) -> torch.Tensor:
    """PyTorch's own ``scaled_dot_product_attention`` even while :func:`patch_attention` is active."""
    return _REAL_SDPA(*args, **kwargs)


def _gqa(query: torch.Tensor, key: torch.Tensor) -> bool:
    """Grouped-query attention: 4-d inputs whose key heads divide the query heads and differ from them."""
    if query.dim() != 4 or key.dim() != 4:
        return False
    hq, hkv = query.shape[1], key.shape[1]
    return hkv >= 1 and hq != hkv and hq % hkv == 0


def sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
         dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None, enable_gqa: bool = False,
         *, topk: float = 0.03, topp: float = 0.2, block_q: int = 128, block_k: int = 64, mode: str = "hybrid",
         backend: str = "auto", policy=None, layer: int | None = None) -> torch.Tensor:
    """``scaled_dot_product_attention`` with SpargeAttention2's hybrid block-sparse attention.

    Inputs ``[B, H, L, E]`` (or ``[B, L, E]``, one head). With ``policy`` (a
    :class:`parsimon.attention.policy.SparsityPolicy`) the policy decides topk/topp/blocks/dense and
    ``layer`` is passed to it; otherwise ``topk``, ``topp``, ``block_q``, ``block_k``, ``mode`` and
    ``backend`` are used. Dense fallbacks (exact SDPA): ``attn_mask`` given, ``dropout_p > 0``, other
    ranks, or fewer than ``2·block_k`` keys. Grouped-query attention (key/value heads dividing the query
    heads) needs no ``enable_gqa=True`` here: it is inferred from the shapes.
    """
    if not isinstance(dropout_p, (int, float)) or not 0.0 <= dropout_p < 1.0:
        raise ConfigError(f"dropout_p: expected a float in [0, 1), got {dropout_p!r}")
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor):
            raise ConfigError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    dense_kw = dict(attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale)
    if enable_gqa or _gqa(query, key):
        dense_kw["enable_gqa"] = True
    bk = policy.block_k if policy is not None else block_k
    if attn_mask is not None or dropout_p > 0 or query.dim() not in (3, 4) or key.dim() != query.dim() \
            or key.shape[-2] < 2 * bk:
        return _REAL_SDPA(query, key, value, **dense_kw)
    squeeze = query.dim() == 3
    if squeeze:
        query, key, value = query[:, None], key[:, None], value[:, None]
    if query.shape[1] != key.shape[1] and (key.shape[1] < 1 or query.shape[1] % key.shape[1]):
        raise ConfigError(f"key: {key.shape[1]} heads must divide query's {query.shape[1]} (grouped-query "
                          "attention)")
    if policy is not None:
        out = policy.attention(query, key, value, layer=layer, scale=scale, causal=is_causal)
    else:
        from parsimon.attention import sparse_attention
        from parsimon.attention.mask import hybrid_block_mask

        lay = hybrid_block_mask(query, key, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode,
                                causal=is_causal, scale=scale)
        out = sparse_attention(query, key, value, lay, topk=topk, topp=topp, scale=scale, causal=is_causal,
                               backend=backend)
    return out[:, 0] if squeeze else out


@contextlib.contextmanager
def patch_attention(module: torch.nn.Module | None = None, **policy_kwargs) -> Iterator[object]:
    """Route ``torch.nn.functional.scaled_dot_product_attention`` calls through :func:`sdpa`.

    ``policy_kwargs`` are :class:`~parsimon.attention.policy.SparsityPolicy` fields (``tier``, ``topk``,
    ``topp``, ``block_q``, ``block_k``, ``mode``, ``dense_layers``, ``dense_steps``, ``min_retained_mass``,
    ``backend``) or ``policy=`` an existing policy. With ``module``, only calls made while that module's
    forward runs are routed, and the n-th SDPA call inside one forward is "layer n" for ``dense_layers``.
    Without it, every call in the block is routed. Yields the policy (its ``stats`` count calls and
    fallbacks). Code that bound SDPA to another name before the block (``from torch.nn.functional
    import scaled_dot_product_attention``) is not affected. Not thread-safe: patch one model at a time.
    """
    from parsimon.attention.policy import SparsityPolicy

    policy = policy_kwargs.pop("policy", None)
    if policy is None:
        policy = SparsityPolicy(**policy_kwargs)
    elif policy_kwargs:
        raise ConfigError(f"pass either policy= or policy fields, not both (got {sorted(policy_kwargs)})")
    if module is not None and not isinstance(module, torch.nn.Module):
        raise ConfigError(f"module: expected a torch.nn.Module or None, got {type(module).__name__}")
    state = {"active": module is None, "layer": 0}

    def patched(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if not state["active"]:
            return _REAL_SDPA(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                              scale=scale, enable_gqa=enable_gqa)
        layer = state["layer"]
        state["layer"] += 1
        return sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa, policy=policy,
                    layer=layer if module is not None else None)

    handles = []
    if module is not None:
        def pre(mod, args):
            state["active"], state["layer"] = True, 0

        def post(mod, args, out):
            state["active"] = False

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post, always_call=True))
    with _lock:
        previous = F.scaled_dot_product_attention
        F.scaled_dot_product_attention = patched
        try:
            yield policy
        finally:
            F.scaled_dot_product_attention = previous
            for h in handles:
                h.remove()


class ParsimonAttnProcessor:
    """A diffusers attention processor running self-attention through :func:`sdpa`.

    ``ParsimonAttnProcessor(policy)`` or ``ParsimonAttnProcessor(topk=..., topp=..., block_q=..., ...)``;
    install with :func:`install_processor` (every attention module of a model) or ``attention.set_processor(proc)``. It follows the
    structure of diffusers' SDPA processor (spatial/group norm, q/k norms, cross-attention, residual,
    output rescale); calls with an ``attention_mask`` or a short key sequence run dense SDPA.
    """

    def __init__(self, policy=None, **policy_kwargs):
        from parsimon.attention.policy import SparsityPolicy

        if policy is not None and policy_kwargs:
            raise ConfigError(f"pass either policy or policy fields, not both (got {sorted(policy_kwargs)})")
        self.policy = policy if policy is not None else SparsityPolicy(**policy_kwargs)
        self.layer: int | None = None  # set per instance to use dense_layers

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, *args,
                 **kwargs) -> torch.Tensor:
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch, seq_len, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, seq_len, batch)
            attention_mask = attention_mask.view(batch, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        elif attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = sdpa(query, key, value, attn_mask=attention_mask, scale=attn.scale, policy=self.policy,
                             layer=self.layer)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install_processor(model: torch.nn.Module, policy=None, **policy_kwargs):
    """Give every diffusers ``Attention`` module in ``model`` a :class:`ParsimonAttnProcessor`.

    The processors share one policy (returned); the i-th attention module in ``model.modules()`` order is
    layer i for ``dense_layers``. Raises ValueError when ``model`` has no diffusers attention module.
    """
    from parsimon.attention.policy import SparsityPolicy

    if policy is not None and policy_kwargs:
        raise ConfigError(f"pass either policy or policy fields, not both (got {sorted(policy_kwargs)})")
    policy = policy if policy is not None else SparsityPolicy(**policy_kwargs)
    layer = 0
    for mod in model.modules():
        if hasattr(mod, "set_processor") and hasattr(mod, "to_q"):
            proc = ParsimonAttnProcessor(policy)
            proc.layer = layer
            mod.set_processor(proc)
            layer += 1
    if layer == 0:
        raise ConfigError(f"model: no diffusers Attention module found in {type(model).__name__}")
    return policy
