"""Test helpers shared by every subpackage's tests."""

from __future__ import annotations

__all__ = ["assert_close", "rel_err"]


def rel_err(ref, out) -> float:
    """RMS-relative error ``||ref - out|| / ||ref||`` computed in float64."""

    ref64 = ref.detach().double()
    out64 = out.detach().double()
    denom = ref64.norm().item()
    num = (ref64 - out64).norm().item()
    return num / denom if denom > 0 else num


def assert_close(name: str, ref, out, ratio: float, atol_floor: float = 1e-6) -> None:
    """Fail unless ``out`` matches ``ref``.

    Passes when the max absolute error is below ``atol_floor``; otherwise requires the RMS-relative
    error to be below ``ratio``. Fails on NaN or on a shape mismatch, and names ``name`` with both
    numbers in the message.
    """
    import torch

    if tuple(ref.shape) != tuple(out.shape):
        raise AssertionError(f"{name}: shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    if torch.isnan(out).any():
        raise AssertionError(f"{name}: output contains NaN")
    if torch.isnan(ref).any():
        raise AssertionError(f"{name}: reference contains NaN")
    abs_err = (ref.detach().double() - out.detach().double()).abs().max().item() if ref.numel() else 0.0
    rel = rel_err(ref, out)
    if abs_err <= atol_floor:
        return
    if not rel < ratio:
        raise AssertionError(f"{name}: max abs err {abs_err:.3e}, rms-relative err {rel:.3e} >= {ratio:.1e}")
