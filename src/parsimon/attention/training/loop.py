"""Training loops: dense teacher training, plain diffusion fine-tuning and velocity distillation.

All three share one loop with checkpoints and exact resume: the model, the optimizer, the step and
the state of the loop's own random generator (batch indices, noise, times) are saved together, so
``N`` steps + save + resume + ``N`` steps gives the same weights as ``2N`` steps in one go.

Multi-process training uses PyTorch DDP when ``torch.distributed`` is initialised (``torchrun``):
every rank draws the same *global* batch from the shared generator and trains on its own slice, so
the averaged gradient equals the single-process gradient on the global batch. Only rank 0 writes
checkpoints.

Inside a :class:`parsimon.run.Run` (``run=``), every step's loss goes to the run's ``events.jsonl`` and,
when no checkpoint path is given, the same training state is saved through ``run.save_checkpoint`` (which
adds the global RNG states) and a resumed run continues from ``run.load_checkpoint()``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from parsimon.attention.registry import OBJECTIVES
from parsimon.attention.training.data import ClipDataset
from parsimon.attention.training.flow import diffusion_loss, sample_t, velocity_distill_loss
from parsimon.attention.training.model import DiTConfig, TinyVideoDiT
from parsimon.errors import ConfigError
from parsimon.run import Result

__all__ = [
    "TrainConfig",
    "TrainResult",
    "distill",
    "finetune",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "train",
    "training_state",
    "train_teacher",
]

@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. ``batch_size`` is the global batch (split across DDP ranks)."""

    steps: int = 200
    lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    warmup: int = 0
    p_mean: float = 0.0
    p_std: float = 1.0
    seed: int = 0
    ckpt_every: int = 0  # 0: only at the end (when a checkpoint path is given)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.ckpt_every < 0 or self.warmup < 0:
            raise ConfigError("ckpt_every and warmup must be >= 0")


@dataclass
class TrainResult(Result):
    """Steps done (resumed ones included), every step's loss, the seconds of this call, the checkpoint."""

    FINAL = "final_loss"

    steps_done: int
    losses: list[float]
    seconds: float
    checkpoint: Path | None = None

    @property
    def final_loss(self) -> float:
        """The last step's loss (NaN when no step ran)."""
        return self.losses[-1] if self.losses else float("nan")


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def training_state(*, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, step: int,
                   generator: torch.Generator | None, objective: str, train_cfg: TrainConfig,
                   losses: list[float]) -> dict:
    """Everything an exact resume needs: weights, optimizer, step, the loop's generator, losses."""
    return {
        "model": model.state_dict(),
        "model_cfg": model.cfg.to_dict() if hasattr(model, "cfg") else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        "generator": generator.get_state() if generator is not None else None,
        "objective": objective,
        "train_cfg": asdict(train_cfg),
        "losses": list(losses),
    }


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    step: int, generator: torch.Generator | None, objective: str, train_cfg: TrainConfig,
                    losses: list[float]) -> Path:
    """Write :func:`training_state` to ``path`` atomically (temporary file then rename)."""
    state = training_state(model=model, optimizer=optimizer, step=step, generator=generator, objective=objective,
                           train_cfg=train_cfg, losses=losses)
    return _Store(path, None).save(state)


def load_checkpoint(path: str | Path) -> dict:
    """The dict written by :func:`save_checkpoint` (raises FileNotFoundError naming the path)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: str | Path) -> TinyVideoDiT:
    """Rebuild a :class:`TinyVideoDiT` (dense attention) from a checkpoint."""
    state = load_checkpoint(path)
    if state.get("model_cfg") is None:
        raise ConfigError(f"checkpoint {path} holds no model config")
    model = TinyVideoDiT(DiTConfig(**state["model_cfg"]))
    model.load_state_dict(state["model"])
    return model


class _Store:
    """Where the loop's state is saved: a checkpoint file, or the run's checkpoint (``run.save_checkpoint``)."""

    def __init__(self, path: str | Path | None, run) -> None:
        self.path = Path(path) if path is not None else None
        self.run = run if path is None else None

    @property
    def active(self) -> bool:
        return self.path is not None or self.run is not None

    def load(self) -> dict | None:
        if self.path is not None:
            return load_checkpoint(self.path) if self.path.is_file() else None
        return self.run.load_checkpoint() if self.run is not None else None

    def save(self, state: dict) -> Path:
        if self.path is None:
            return self.run.save_checkpoint(state)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)
        return self.path


def train(model: torch.nn.Module, data: ClipDataset, cfg: TrainConfig, *, objective: str = "diffusion",
          teacher: torch.nn.Module | None = None, checkpoint: str | Path | None = None, resume: bool = False,
          on_step: Callable[[int, float], None] | None = None, run=None) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` total steps (counting steps already in a resumed checkpoint).

    Args:
        objective: A name in :data:`parsimon.attention.registry.OBJECTIVES`: ``"diffusion"``
            (‖v − (ε − x0)‖²) or ``"distill"`` (‖v − v_teacher‖², needs ``teacher``).
        checkpoint: File to save to (every ``cfg.ckpt_every`` steps and at the end); with ``resume`` and an
            existing file, training continues from it exactly.
        run: A :class:`parsimon.run.Run`: each step's loss is logged to it; without ``checkpoint`` the state
            is saved with ``run.save_checkpoint`` and, with ``resume``, restored from the run's checkpoint.
    """
    OBJECTIVES.check(objective)
    if objective == "distill":
        if teacher is None:
            raise ConfigError("objective='distill' needs a teacher model")
        if teacher is model:
            raise ConfigError("teacher must be a separate (frozen) copy, not the student itself")
        teacher.eval()
        teacher.requires_grad_(False)
    store = _Store(checkpoint, run)
    if resume and not store.active:
        raise ConfigError("resume=True needs a checkpoint path (or a run)")
    rank, world = _dist()
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size={cfg.batch_size} must be divisible by the world size {world}")
    local = cfg.batch_size // world
    device = next(model.parameters()).device

    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, losses = 0, []
    state = store.load() if resume else None
    if state is not None:
        if state["objective"] != objective:
            raise ConfigError(f"checkpoint {store.path or 'of the run'} was written by objective "
                              f"{state['objective']!r}, not {objective!r}")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])  # AdamW moves its state to the parameters' device
        gen.set_state(state["generator"])
        step, losses = state["step"], list(state["losses"])

    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    model.train()
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup) if cfg.warmup else 1.0, last_epoch=step - 1
    ) if cfg.warmup else None
    t0 = time.perf_counter()
    saved = None
    sl = slice(rank * local, (rank + 1) * local)

    def save() -> Path:
        return store.save(training_state(model=model, optimizer=opt, step=step, generator=gen, objective=objective,
                                         train_cfg=cfg, losses=losses))

    while step < cfg.steps:
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
        x0, y = data.batch(idx)
        eps = torch.randn(x0.shape, generator=gen)
        t = sample_t(cfg.batch_size, p_mean=cfg.p_mean, p_std=cfg.p_std, generator=gen)
        x0, y, eps, t = (a[sl].to(device) for a in (x0, y, eps, t))
        if objective == "distill":
            loss = velocity_distill_loss(net, teacher, x0, y, eps, t)
        else:
            loss = diffusion_loss(net, x0, y, eps, t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if sched is not None:
            sched.step()
        step += 1
        lv = loss.detach()
        if world > 1:
            torch.distributed.all_reduce(lv)
            lv = lv / world
        losses.append(float(lv))
        if run is not None and rank == 0:
            run.log(step, **{f"{objective}_loss": losses[-1]})
        if on_step is not None:
            on_step(step, losses[-1])
        if store.active and rank == 0 and cfg.ckpt_every and step % cfg.ckpt_every == 0:
            saved = save()
    if store.active and rank == 0 and (saved is None or cfg.ckpt_every == 0 or step % cfg.ckpt_every):
        saved = save()
    model.eval()
    return TrainResult(steps_done=step, losses=losses, seconds=time.perf_counter() - t0,
                       checkpoint=saved if saved is not None else (store.path if store.path else None))


def train_teacher(data: ClipDataset, model_cfg: DiTConfig = DiTConfig(), cfg: TrainConfig = TrainConfig(), *,
                  checkpoint: str | Path | None = None, resume: bool = False, on_step=None,
                  device: torch.device | str = "cpu", run=None) -> tuple[TinyVideoDiT, TrainResult]:
    """A dense-attention teacher trained from scratch with the plain diffusion loss (on ``device``)."""
    torch.manual_seed(cfg.seed)
    model = TinyVideoDiT(model_cfg).to(device)
    res = train(model, data, cfg, objective="diffusion", checkpoint=checkpoint, resume=resume, on_step=on_step,
                run=run)
    return model, res


def distill(student: torch.nn.Module, teacher: torch.nn.Module, data: ClipDataset, *, steps: int, lr: float,
            batch_size: int = 16, seed: int = 0, checkpoint: str | Path | None = None, resume: bool = False,
            ckpt_every: int = 0, p_mean: float = 0.0, p_std: float = 1.0, grad_clip: float | None = 1.0,
            on_step=None, run=None) -> TrainResult:
    """Velocity distillation (spec §4): train ``student`` (sparse attention, initialised from the teacher)
    on ``‖v_student(x_t, t, y) − v_teacher(x_t, t, y)‖²`` with the teacher frozen. The data only builds x_t.
    """
    cfg = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed, ckpt_every=ckpt_every, p_mean=p_mean,
                      p_std=p_std, grad_clip=grad_clip)
    return train(student, data, cfg, objective="distill", teacher=teacher, checkpoint=checkpoint, resume=resume,
                 on_step=on_step, run=run)


def finetune(student: torch.nn.Module, data: ClipDataset, *, steps: int, lr: float, batch_size: int = 16,
             seed: int = 0, checkpoint: str | Path | None = None, resume: bool = False, ckpt_every: int = 0,
             p_mean: float = 0.0, p_std: float = 1.0, grad_clip: float | None = 1.0, on_step=None,
             run=None) -> TrainResult:
    """Plain diffusion fine-tuning of the sparse student (the paper's "–VD" arm)."""
    cfg = TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed, ckpt_every=ckpt_every, p_mean=p_mean,
                      p_std=p_std, grad_clip=grad_clip)
    return train(student, data, cfg, objective="diffusion", checkpoint=checkpoint, resume=resume, on_step=on_step,
                 run=run)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy with gradients off, in eval mode (the teacher)."""
    t = copy.deepcopy(model)
    t.eval()
    t.requires_grad_(False)
    return t
