"""DDP: ``torchrun`` with two gloo ranks on the CPU trains to the same weights as one process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CONFIG = """
[ul]
decoder_dropout = 0.0
encoder_hidden = 32
prior_hidden = 32
prior_depth = 1
decoder_hidden = 32
decoder_depth = 1
[base]
dropout = 0.0
hidden = 32
depth = 1
[stage1]
steps = 4
batch_size = 8
warmup = 1
ckpt_every = 2
[stage2]
steps = 3
batch_size = 8
warmup = 1
[eval]
n_samples = 8
t_samples = 2
decoder_steps = 2
latent_steps = 2
"""


def _run(cmd, env, timeout=300):
    """Run in a new process group; on timeout kill the whole group (torchrun's workers included)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, err[-3000:]


@pytest.mark.slow
def test_two_gloo_ranks_equal_one_process(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    args = ["latents", "train", "--config", str(cfg), "--seed", "4"]
    rc, err = _run([sys.executable, "-m", "parsimon.cli", *args, "--out", str(tmp_path / "one")], env)
    assert rc == 0, err
    rc, err = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "parsimon.cli", *args, "--out", str(tmp_path / "two")], env)
    assert rc == 0, err
    a = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)["state"]
    b = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)["state"]
    for stage in ("stage1_final", "stage2_final"):
        for name, w in a[stage].items():
            # averaged gradients of two half-batches equal the full-batch gradient up to float rounding
            assert torch.allclose(w, b[stage][name], atol=2e-5, rtol=1e-4), (stage, name)
    assert (tmp_path / "two" / "metrics.json").is_file() and (tmp_path / "two" / "pipeline").is_dir()
