"""Compile the Triton kernels ahead of time for a GPU architecture, without a GPU.

This checks what the interpreter cannot: that every kernel variant lowers through Triton's compiler to PTX and
machine code (``ptxas`` ships with Triton).  Must run in a process where ``TRITON_INTERPRET`` is unset::

    python -m parsimon.attention.kernels.compile_check --arch 90
"""

from __future__ import annotations

import argparse
import itertools
import os


def compile_all(arch: int = 90, dtypes=("bf16", "fp16"), head_dims=(64, 128), block_ms=(64, 128),
                num_warps: int = 8, num_stages: int = 3) -> list[str]:
    """Compile forward, delta, dQ and dK/dV for every dtype × head dim × causal × query sub-tile (BLOCK_M, with
    128-token query blocks); returns one line per kernel."""
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise RuntimeError("compile_check: unset TRITON_INTERPRET (the interpreter does not compile)")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import triton_attention as ta

    target = GPUTarget("cuda", arch, 32)
    done = []

    def build(fn, ptrs, const, floats=("sm_scale",)):
        names = fn.arg_names
        sig = {}
        for n in names:
            sig[n] = "constexpr" if n in const else ("*" + ptrs[n] if n in ptrs else ("fp32" if n in floats else "i32"))
        src = ASTSource(fn=fn, signature=sig, constexprs={(names.index(k),): v for k, v in const.items()})
        kern = triton.compile(src, target=target, options={"num_warps": num_warps, "num_stages": num_stages})
        assert kern.asm.get("cubin"), f"{fn.__name__}: no cubin"
        done.append(f"{fn.__name__} {const} sm_{arch}")

    for dt, d, causal, block_m in itertools.product(dtypes, head_dims, (False, True), block_ms):
        const = dict(CAUSAL=causal, BLOCK_Q=128, BLOCK_M=block_m, BLOCK_N=64, BLOCK_D=d)
        idx = dict(LSE="fp32", DELTA="fp32")
        build(ta._fwd_kernel, dict(Q=dt, K=dt, V=dt, O=dt, LSE="fp32", KV_CNT="i32", KV_IDX="i32", ROW_ORDER="i32"),
              const)
        build(ta._dq_kernel, dict(Q=dt, K=dt, V=dt, DO=dt, DQ=dt, KV_CNT="i32", KV_IDX="i32", ROW_ORDER="i32", **idx),
              const)
        build(ta._dkdv_kernel, dict(Q=dt, K=dt, V=dt, DO=dt, DK=dt, DV=dt, Q_CNT="i32", Q_IDX="i32",
                                       COL_ORDER="i32", **idx), const)
    for dt, d in itertools.product(dtypes, head_dims):
        build(ta._delta_kernel, dict(O=dt, DO=dt, DLSE="fp32", DELTA="fp32"),
              dict(HAS_DLSE=True, BLOCK=64, BLOCK_D=d), floats=())
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="compile the block-sparse attention kernels for a GPU arch")
    ap.add_argument("--arch", type=int, default=90, help="compute capability ×10, e.g. 80, 90")
    ap.add_argument("--quick", action="store_true", help="bf16, head dim 128 only")
    args = ap.parse_args(argv)
    kw = dict(dtypes=("bf16",), head_dims=(128,), block_ms=(64,)) if args.quick else {}
    for line in compile_all(args.arch, **kw):
        print("ok", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
