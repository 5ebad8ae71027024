"""Triton kernels for block-sparse attention (import needs ``triton``; on CPU set ``TRITON_INTERPRET=1`` first)."""
