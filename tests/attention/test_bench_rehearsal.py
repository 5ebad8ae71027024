"""The GPU benchmark's one command, rehearsed on the CPU with the Triton interpreter.

No GPU is at hand in CI, so this runs `benchmarks/attention_bench.py --gpu --rehearse-on-cpu` end to end: the
correctness checks against the dense oracle (Triton, Flex and torch backends; d=128 and d=64 with GQA), the
layout calibration, every timed function of the GPU part, the JSON and the plot. cuDNN has no CPU kernel, so
its entries must be recorded as failures, not abort the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "attention_bench.py"


def test_gpu_benchmark_rehearsal_on_cpu(tmp_path):
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(BENCH), "--gpu", "--rehearse-on-cpu", "--repeats", "1",
                           "--out", str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((tmp_path / "attention_gpu_rehearsal.json").read_text())
    assert (tmp_path / "attention_gpu_rehearsal.png").stat().st_size > 0
    assert res["part"] == "gpu_rehearsal"
    for check in res["correctness"].values():
        assert check["triton"]["ok"] and max(check["triton"]["rel_err"].values()) < 1e-3
    row = res["shapes"]["rehearsal 700"]
    assert 0.0 < row["sparsity"] < 1.0
    for name in ("ours fwd (incl. mask)", "ours fwd (layout given)", "mask construction", "flex fwd (same layout)"):
        assert row["forward"][name]["median_s"] > 0, name
    assert row["forward_backward"]["ours fwd+bwd (incl. mask)"]["median_s"] > 0
    assert "error" in row["forward"]["cuDNN dense fwd"]  # no cuDNN on CPU: recorded, not fatal
    assert row["speedup_fwd_incl_mask_vs_cudnn"] is None
    assert row["ours_fwd_tflops_on_computed_blocks"] > 0


def test_gpu_benchmark_without_cuda_says_what_to_do(tmp_path):
    env = {kk: vv for kk, vv in os.environ.items() if kk != "TRITON_INTERPRET"}
    proc = subprocess.run([sys.executable, str(BENCH), "--gpu", "--out", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    if "needs a CUDA device" not in proc.stderr:
        pytest.skip("a CUDA device is present")
    assert proc.returncode != 0 and "--rehearse-on-cpu" in proc.stderr
