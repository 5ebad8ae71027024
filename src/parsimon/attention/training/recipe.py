"""The velocity-distillation recipe behind ``parsimon attention distill``, as one library function.

A dense tiny video DiT is trained (or loaded), its sparse copy is fine-tuned (velocity distillation by
default) and evaluated against it. Inside a :class:`parsimon.run.Run` the teacher is cached as
``teacher.pt`` in the run folder, the student's training state goes through ``run.save_checkpoint`` (so
``--resume`` continues it exactly), the student's weights are written to ``student.pt``, losses to
``events.jsonl`` and the evaluation to ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parsimon.errors import ConfigError
from parsimon.run import Result

from ..configs import DistillConfig

__all__ = ["DistillConfig", "DistillResult", "distill_recipe"]


@dataclass
class DistillResult(Result):
    """The student measured against its teacher (held-out velocity error, sample PSNR, realised sparsity)."""

    FINAL = "rel_velocity_err"

    sparsity: float
    rel_velocity_err: float
    flow_loss: float
    sample_mse: float
    sample_psnr_db: float
    steps: int
    last_loss: float | None
    topk: float
    topp: float
    calibrated_sparsity: float | None = None

    def metrics(self) -> dict:
        """The fields that are set, for ``metrics.json``."""
        return {k: v for k, v in self.to_dict().items() if v is not None}


def distill_recipe(cfg: DistillConfig, *, run=None, out_dir: str | Path | None = None,
                   resume: bool = False) -> DistillResult:
    """Train (or load) the teacher, distil its sparse student, evaluate; see the module docstring.

    Args:
        cfg: The recipe.
        run: A :class:`parsimon.run.Run` (its folder holds every file; ``resume`` defaults to ``run.resumed``).
        out_dir: Without a run: the folder for ``teacher.pt`` and ``student.pt`` (the student's state is then
            checkpointed in ``student.pt`` itself).
        resume: Continue the teacher's and the student's training from their checkpoints.
    """
    import torch

    from .data import ClipConfig, ClipDataset
    from .experiment import ExperimentConfig, _eval_inputs, calibrate, evaluate_student
    from .flow import euler_sample
    from .loop import TrainConfig, frozen_copy, load_model, save_checkpoint, train, train_teacher
    from .model import DiTConfig
    from .student import sparse_student

    if run is None and out_dir is None:
        raise ConfigError("distill_recipe needs `run` or `out_dir`")
    out = Path(run.dir if run is not None else out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = resume or bool(run is not None and run.resumed)
    torch.manual_seed(cfg.seed)
    mcfg = DiTConfig(dim=cfg.dim, depth=cfg.depth, heads=cfg.heads)
    data = ClipDataset(cfg.clips, ClipConfig(frames=mcfg.frames, size=mcfg.size), seed=cfg.seed)

    def bar(description: str, total: int):
        if run is None:
            return None, None
        b = run.progress(description, total)
        return b, (lambda s, _loss: b.update(completed=s))

    if cfg.teacher is not None:
        teacher = load_model(cfg.teacher)
    else:
        tbar, tick = bar("teacher (dense)", cfg.teacher_steps)
        teacher, tres = train_teacher(data, mcfg, TrainConfig(steps=cfg.teacher_steps, lr=cfg.teacher_lr,
                                                              batch_size=cfg.batch_size, seed=cfg.seed, warmup=20,
                                                              ckpt_every=cfg.ckpt_every),
                                      checkpoint=out / "teacher.pt", resume=resume, on_step=tick)
        if tbar is not None:
            tbar.update(completed=tres.steps_done)  # a resumed teacher may have nothing left to do
            tbar.close()
    teacher = frozen_copy(teacher)
    ecfg = ExperimentConfig(model=mcfg, eval_clips=16, sample_n=4, sample_steps=10, seed=cfg.seed)
    ev = _eval_inputs(ecfg)
    topk, topp, cal_sparsity = cfg.topk, cfg.topp, None
    if cfg.sparsity is not None:
        cal = calibrate(teacher, ev, mode=cfg.mode, target=cfg.sparsity, topk=cfg.topk, block_q=cfg.block_q,
                        block_k=cfg.block_k)
        topk, topp, cal_sparsity = cal["topk"], cal["topp"], cal["sparsity"]
        if run is not None:
            run.set_metrics(calibrated_topk=topk, calibrated_topp=topp, calibrated_sparsity=cal_sparsity)
    student = sparse_student(teacher, topk=topk, topp=topp, block_q=cfg.block_q, block_k=cfg.block_k,
                             mode=cfg.mode, backend=cfg.backend)
    sbar, tick = bar(f"student ({cfg.objective})", cfg.steps)
    tcfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed + 7,
                       ckpt_every=cfg.ckpt_every)
    res = train(student, data, tcfg, objective=cfg.objective,
                teacher=teacher if cfg.objective == "distill" else None,
                checkpoint=None if run is not None else out / "student.pt", resume=resume, on_step=tick, run=run)
    if sbar is not None:
        sbar.update(completed=res.steps_done)
        sbar.close()
    if run is not None:  # the student's weights as a model file, next to the run's training state
        save_checkpoint(out / "student.pt", model=student, optimizer=None, step=res.steps_done, generator=None,
                        objective=cfg.objective, train_cfg=tcfg, losses=res.losses)
    with torch.no_grad():
        ts = euler_sample(teacher, ev["noise"], ev["ys"], steps=ecfg.sample_steps)
    m = evaluate_student(student, teacher, ev, teacher_samples=ts, sample_steps=ecfg.sample_steps)
    result = DistillResult(**m, steps=res.steps_done, last_loss=res.losses[-1] if res.losses else None,
                           topk=topk, topp=topp, calibrated_sparsity=cal_sparsity)
    if run is not None:
        run.set_metrics(result.metrics())
        run.write_json("result.json", result.to_dict())
    return result
