"""The one training loop of ``parsimon.latents``: Unified Latents (stage 1), the stage-2 base model and the
baselines (KL autoencoder, pixel diffusion) all train through :func:`fit`.

A job is an ``nn.Module`` with ``draw(n, generator) -> noise`` and ``forward(x, noise) -> (loss, logs)``, so the
loss is a deterministic function of the batch, its noise and the step (a job may define ``set_step(step)``).
Each step:

1. draw the indices of the global batch and its noise from the loop's own generator;
2. take this rank's slice (DDP under ``torchrun``: every rank draws the same global batch, so the averaged
   gradient equals the single-process gradient on the global batch);
3. forward under bf16 autocast when ``precision="bf16"``, backward, clip, Adam with the schedule ``lr_at``;
4. update the EMA of the weights (diffusers' ``EMAModel``).

A checkpoint holds the job's and optimizer's state, the EMA, the step and the generator's state; the run
adds the global RNG states (dropout), so N steps + resume + N steps equals 2N steps.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from parsimon.errors import ConfigError
from parsimon.latents.names import PRECISIONS

__all__ = ["FitResult", "TrainConfig", "PRECISIONS", "LR_SCHEDULES", "dist_info", "ema_weights", "fit", "lr_at",
           "resolve_device"]

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of one training stage. ``batch_size`` is the global batch (split across DDP ranks).

    The paper states none of these [UNCONFIRMED]; defaults are ours for 8×8 data on a CPU (spec B7: Adam
    1e-3 with a cosine decay, EMA 0.999; B7's 20–50k steps at batch 256 do not fit a CPU quick run).
    """

    steps: int = 2000  # ours (B7: 20-50k)
    batch_size: int = 128  # ours (B7: 256)
    lr: float = 1e-3  # B7
    lr_schedule: str = "cosine"  # B7: cosine decay after a linear warm-up
    warmup: int = 100  # linear warm-up steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm; 0 = off
    ema_decay: float = 0.99  # ours for runs of a few thousand steps (B7: 0.999 for 20-50k); diffusers EMAModel
    ckpt_every: int = 500  # steps between checkpoints (and one at the end); 0 = only at the end
    log_every: int = 50  # steps between logged averages
    precision: str = "fp32"  # "bf16": autocast to bfloat16 (GPUs)
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "ckpt_every", "log_every", "warmup"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name in ("batch_size", "log_every") else 0):
                raise ConfigError(f"`{name}` must be an integer >= {1 if name in ('batch_size', 'log_every') else 0}, "
                                  f"got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"`lr` must be > 0, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"`lr_schedule` must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"`precision` must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"`ema_decay` must be in [0, 1), got {self.ema_decay}")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ConfigError("`grad_clip` and `weight_decay` must be >= 0")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise ConfigError(f"`device` must be cpu, cuda or cuda:N, got {self.device!r}")


@dataclass
class FitResult:
    """What :func:`fit` did: steps reached, logged loss averages, seconds and images per second."""

    steps: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_s: float = 0.0


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then constant or cosine to 0."""
    warm = min(1.0, (step + 1) / cfg.warmup) if cfg.warmup else 1.0
    if cfg.lr_schedule == "cosine":
        return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / max(1, cfg.steps)))
    return cfg.lr * warm


def dist_info() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside ``torch.distributed``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``; a CUDA device without CUDA is a :class:`ConfigError`."""
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"`--device {name}`: CUDA is not available on this machine")
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return torch.device(name)


@contextlib.contextmanager
def ema_weights(job: nn.Module, ema: Any) -> Iterator[nn.Module]:
    """Swap the EMA weights into ``job`` for the block (the training weights come back after)."""
    if ema is None:
        yield job
        return
    params = list(job.parameters())
    ema.store(params)
    ema.copy_to(params)
    try:
        yield job
    finally:
        ema.restore(params)


def _make_optimizer(params, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    kw: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    try:
        return torch.optim.Adam(params, fused=True, **kw)
    except (RuntimeError, TypeError):  # pragma: no cover - fused Adam missing on this build/device
        return torch.optim.Adam(params, foreach=True, **kw)


def fit(job: nn.Module, data: torch.Tensor, cfg: TrainConfig, *, seed: int = 0, state: dict | None = None,
        until: int | None = None, on_log: Callable[[int, dict[str, float]], None] | None = None,
        on_checkpoint: Callable[[dict], None] | None = None, progress: Any = None,
        eval_at: tuple[int, ...] = (), on_eval: Callable[[int, Any], None] | None = None) -> tuple[FitResult, Any]:
    """Train ``job`` in place on ``data`` ``[N, ...]`` for ``cfg.steps`` steps in all.

    Args:
        job: The module to train (see the module docstring).
        data: The training set (kept on the CPU; batches move to the device).
        cfg: The optimisation settings.
        seed: Seeds the loop's generator (batch indices and noise).
        state: A checkpoint dict from an earlier call (``on_checkpoint``'s argument) to continue from.
        until: Stop after this step (the schedule still spans ``cfg.steps``), e.g. to test resumption.
        on_log: ``on_log(step, averages)`` every ``cfg.log_every`` steps (rank 0).
        on_checkpoint: ``on_checkpoint(state)`` every ``cfg.ckpt_every`` steps, at the end and on Ctrl-C (rank 0).
        progress: A handle with ``advance(n)`` (and ``update(completed=)``).
        eval_at: Steps after which ``on_eval(step, ema)`` runs (e.g. FD against training FLOPs).
        on_eval: See ``eval_at``; wrap with :func:`ema_weights` to evaluate the EMA weights.

    Returns:
        ``(FitResult, ema)``; the job holds the training weights, ``ema.copy_to(job.parameters())`` the EMA ones.
    """
    from diffusers.training_utils import EMAModel

    device = resolve_device(cfg.device)
    rank, world = dist_info()
    if cfg.batch_size % world:
        raise ConfigError(f"`batch_size` {cfg.batch_size} must be divisible by the world size {world}")
    if len(data) < 1:
        raise ConfigError("the training set is empty")
    local = cfg.batch_size // world
    job.to(device)
    opt = _make_optimizer(job.parameters(), cfg, device)
    ema = EMAModel(job.parameters(), decay=cfg.ema_decay, foreach=True)
    gen = torch.Generator().manual_seed(seed)
    step, losses = 0, []
    if state is not None:
        job.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        ema.to(device)
        gen.set_state(state["generator"])
        step, losses = int(state["step"]), [tuple(p) for p in state.get("losses", [])]
    net: nn.Module = job
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(job, device_ids=[device.index] if device.type == "cuda" else None)
    if progress is not None and step:
        progress.update(completed=step)

    def snapshot() -> dict:
        return {"model": job.state_dict(), "optimizer": opt.state_dict(), "ema": ema.state_dict(), "step": step,
                "generator": gen.get_state(), "losses": [list(p) for p in losses]}

    stop = cfg.steps if until is None else min(until, cfg.steps)
    sl = slice(rank * local, (rank + 1) * local)
    sums: dict[str, float] = {}
    count = 0
    job.train()
    t0 = time.perf_counter()
    start = step
    saved_at = -1
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    try:
        while step < stop:
            idx = torch.randint(0, len(data), (cfg.batch_size,), generator=gen)
            noise = job.draw(cfg.batch_size, gen)
            x = data[idx][sl].to(device, non_blocking=True)
            noise = {k: v[sl].to(device, non_blocking=True) for k, v in noise.items()}
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
            if hasattr(job, "set_step"):
                job.set_step(step)
            with autocast:
                loss, logs = net(x, noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(job.parameters(), cfg.grad_clip)
            opt.step()
            ema.step(job.parameters())
            step += 1
            values = {"loss": loss.detach(), **logs}
            if world > 1:
                stacked = torch.stack([v.float() for v in values.values()])
                torch.distributed.all_reduce(stacked)
                values = dict(zip(values, stacked / world, strict=True))
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            count += 1
            if not math.isfinite(float(values["loss"])):
                raise ConfigError(f"training diverged at step {step} (loss {float(values['loss'])}); lower `lr`")
            if progress is not None:
                progress.advance(1)
            if step % cfg.log_every == 0 or step == stop:
                avg = {k: v / count for k, v in sums.items()}
                losses.append((step, avg["loss"]))
                if on_log is not None and rank == 0:
                    on_log(step, avg)
                sums, count = {}, 0
            if on_checkpoint is not None and rank == 0 and cfg.ckpt_every and step % cfg.ckpt_every == 0:
                on_checkpoint(snapshot())
                saved_at = step
            if on_eval is not None and step in eval_at:
                job.eval()
                on_eval(step, ema)
                job.train()
    except KeyboardInterrupt:
        if on_checkpoint is not None and rank == 0 and saved_at != step:
            on_checkpoint(snapshot())
        raise
    if on_checkpoint is not None and rank == 0 and saved_at != step:
        on_checkpoint(snapshot())
    job.eval()
    seconds = time.perf_counter() - t0
    done = step - start
    return FitResult(steps=step, losses=losses, seconds=seconds,
                     images_per_s=done * cfg.batch_size / seconds if seconds > 0 and done else 0.0), ema
