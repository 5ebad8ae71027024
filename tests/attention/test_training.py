"""Training stack: data, model, rectified flow, exact resume, distillation, calibration, DDP equivalence."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from parsimon.attention.training import (
    ClipConfig,
    ClipDataset,
    DiTConfig,
    TinyVideoDiT,
    TrainConfig,
    distill,
    euler_sample,
    finetune,
    frozen_copy,
    load_checkpoint,
    load_model,
    moving_digits,
    noisy,
    sample_t,
    sparse_student,
    train_teacher,
)

TINY = DiTConfig(frames=4, size=16, patch=4, dim=16, depth=2, heads=2)  # 4 · 4 · 4 = 64 tokens
CLIPS = ClipConfig(frames=4, size=16, digit=8, max_speed=2)
SPARSE = dict(topk=0.25, topp=0.3, block_q=16, block_k=8, backend="torch")


def _teacher(seed=0) -> TinyVideoDiT:
    """A random teacher whose zero-initialised gates are perturbed, so attention matters."""
    torch.manual_seed(seed)
    m = TinyVideoDiT(TINY)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if "ada" in name or name.startswith("out."):
                p.add_(0.2 * torch.randn_like(p))
    return frozen_copy(m)


def test_moving_digits_shapes_range_and_determinism():
    x, y = moving_digits(6, CLIPS, seed=3)
    assert x.shape == (6, 1, 4, 16, 16) and y.shape == (6,)
    assert x.min() >= -1 and x.max() <= 1 and (x > -1).any()
    x2, y2 = moving_digits(6, CLIPS, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, moving_digits(6, CLIPS, seed=4)[0])
    # The sprite keeps its pixel mass inside the canvas in every frame (it bounces, never leaves).
    mass = (x + 1).sum(dim=(-1, -2))[:, 0]
    assert torch.allclose(mass, mass[:, :1].expand_as(mass), rtol=1e-5)
    with pytest.raises(ValueError, match="digit"):
        ClipConfig(size=8, digit=16)


def test_model_patchify_roundtrip_and_validation():
    m = TinyVideoDiT(TINY)
    x = torch.randn(2, 1, 4, 16, 16)
    assert torch.equal(m.unpatchify(m.patchify(x)), x)
    assert m(x, torch.rand(2), torch.tensor([1, 2])).shape == x.shape
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.randn(2, 1, 4, 8, 8), torch.rand(2))
    with pytest.raises(ValueError, match="patch"):
        DiTConfig(size=30, patch=4)


def test_rectified_flow_conventions():
    g = torch.Generator().manual_seed(0)
    t = sample_t(1000, generator=g)
    assert 0 < t.min() and t.max() < 1 and abs(float(t.median()) - 0.5) < 0.05  # p_mean = 0: median 1/2
    c = torch.randn(1, 1, 4, 16, 16)
    x0, eps = c.expand(3, -1, -1, -1, -1), torch.randn(3, 1, 4, 16, 16, generator=g)
    assert torch.allclose(noisy(x0, eps, torch.zeros(3)), x0) and torch.allclose(noisy(x0, eps, torch.ones(3)), eps)
    # For data concentrated at c the exact velocity is (x − c)/t; Euler along straight paths lands on c.
    out = euler_sample(lambda x, tt, y: (x - c) / tt.view(-1, 1, 1, 1, 1), eps, steps=7, shift=3.0)
    assert torch.allclose(out, x0, atol=1e-5)


def test_exact_resume(tmp_path):
    data = ClipDataset(32, CLIPS, seed=0)
    teacher = _teacher()
    kw = dict(steps=6, lr=1e-3, batch_size=4, seed=5)
    full = sparse_student(teacher, **SPARSE)
    distill(full, teacher, data, **kw)
    ck = tmp_path / "s.pt"
    half = sparse_student(teacher, **SPARSE)
    distill(half, teacher, data, **{**kw, "steps": 3}, checkpoint=ck)
    assert load_checkpoint(ck)["step"] == 3
    resumed = sparse_student(teacher, **SPARSE)  # fresh weights: everything must come from the checkpoint
    res = distill(resumed, teacher, data, **kw, checkpoint=ck, resume=True)
    assert res.steps_done == 6 and len(res.losses) == 6
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="objective"):
        finetune(sparse_student(teacher, **SPARSE), data, steps=7, lr=1e-3, batch_size=4, checkpoint=ck, resume=True)


def test_distillation_reduces_velocity_error_vs_training_free():
    data = ClipDataset(64, CLIPS, seed=1)
    teacher = _teacher(1)
    student = sparse_student(teacher, **{**SPARSE, "topk": 0.125, "topp": 0.0, "mode": "topk"})
    g = torch.Generator().manual_seed(9)
    x0, y = data.x[:16], data.y[:16]
    eps, t = torch.randn(x0.shape, generator=g), sample_t(16, generator=g)
    xt = noisy(x0, eps, t)

    def err():
        with torch.no_grad():
            vt = teacher(xt, t, y)
            return float((student(xt, t, y) - vt).square().mean() / vt.square().mean())

    before = err()
    assert before > 1e-3  # the sparse mask really changes the output
    res = distill(student, teacher, data, steps=40, lr=3e-3, batch_size=8, seed=2)
    after = err()
    assert after < 0.6 * before, (before, after)
    assert all(p.grad is None for p in teacher.parameters())
    assert 0.5 < student.attention.sparsity < 1
    assert math.isfinite(res.losses[-1])


def test_teacher_training_lowers_loss_and_checkpoint_roundtrip(tmp_path):
    data = ClipDataset(64, CLIPS, seed=2)
    model, res = train_teacher(data, TINY, TrainConfig(steps=30, lr=3e-3, batch_size=8, warmup=5),
                               checkpoint=tmp_path / "t.pt")
    first, last = sum(res.losses[:5]) / 5, sum(res.losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    again = load_model(tmp_path / "t.pt")
    x = data.x[:2]
    assert torch.equal(model(x, torch.rand(2, generator=torch.Generator().manual_seed(0)), data.y[:2]),
                       again(x, torch.rand(2, generator=torch.Generator().manual_seed(0)), data.y[:2]))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_calibration_hits_target_sparsity():
    from parsimon.attention.training.experiment import ExperimentConfig, _eval_inputs, calibrate

    teacher = _teacher(3)
    cfg = ExperimentConfig(model=TINY, eval_clips=4, sample_n=2)
    ev = _eval_inputs(cfg)
    ev["x0"] = torch.nn.functional.interpolate(ev["x0"], size=(4, 16, 16)) if ev["x0"].shape[-1] != 16 else ev["x0"]
    for mode in ("hybrid", "topp"):
        c = calibrate(teacher, ev, mode=mode, target=0.75, topk=0.125, block_q=16, block_k=8)
        assert abs(c["sparsity"] - 0.75) < 0.05, (mode, c)
    c = calibrate(teacher, ev, mode="topk", target=0.75, topk=0.0, block_q=16, block_k=8)
    assert c["sparsity"] == pytest.approx(0.75)  # 2 of 8 key blocks


def _run(cmd, env, timeout=120):
    """Run in a new process group; on timeout kill the whole group (torchrun's workers included)."""
    import signal

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
def test_ddp_two_ranks_equals_single_process(tmp_path):
    """torchrun, world size 2 on gloo: same weights as one process on the same global batch."""
    args = ["--steps", "3", "--teacher-steps", "3", "--batch-size", "4", "--clips", "16", "--dim", "16",
            "--depth", "1", "--heads", "2", "--topk", "0.1", "--topp", "0.2", "--backend", "torch"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    single = tmp_path / "single" / "s.pt"
    two = tmp_path / "two" / "s.pt"
    rc, err = _run([sys.executable, "-m", "parsimon.attention.training.ddp", "--out", str(single), *args], env)
    assert rc == 0, err
    rc, err = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "parsimon.attention.training.ddp", "--out", str(two), *args], env)
    assert rc == 0, err
    # The teacher (diffusion loss, real gradients) trained on both sides first: equal to float precision.
    ta, tb = load_checkpoint(single.with_name("s-teacher.pt")), load_checkpoint(two.with_name("s-teacher.pt"))
    assert ta["step"] == tb["step"] == 3
    for name, w in ta["model"].items():
        assert torch.allclose(w, tb["model"][name], atol=1e-6, rtol=1e-5), name
    # The distilled student: its loss starts near 0 (student = teacher), where Adam's normalisation turns
    # float-level gradient differences into update differences; the bound is still 30x below lr·steps.
    a, b = load_checkpoint(single), load_checkpoint(two)
    assert a["step"] == b["step"] == 3
    assert a["losses"] == pytest.approx(b["losses"], rel=1e-3, abs=1e-12)
    for name, w in a["model"].items():
        assert torch.allclose(w, b["model"][name], atol=5e-5), name


def test_exact_resume_with_warmup_schedule(tmp_path):
    tiny = DiTConfig(frames=4, size=16, patch=4, dim=16, depth=1, heads=2)
    data = ClipDataset(16, CLIPS, seed=0)
    full, _ = train_teacher(data, tiny, TrainConfig(steps=6, batch_size=4, warmup=4))
    train_teacher(data, tiny, TrainConfig(steps=3, batch_size=4, warmup=4), checkpoint=tmp_path / "w.pt")
    resumed, res = train_teacher(data, tiny, TrainConfig(steps=6, batch_size=4, warmup=4), checkpoint=tmp_path / "w.pt",
                                 resume=True)
    assert res.steps_done == 6
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
