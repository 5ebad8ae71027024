"""Frozen configs of the attention jobs, declared once and importable without torch (the CLI reads their
defaults for ``--help``): the tiny video DiT, the model-level experiment and the distillation recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from parsimon.errors import ConfigError

from .registry import BACKENDS, MODES, OBJECTIVES

__all__ = ["DISTILL_HELP", "DiTConfig", "DistillConfig", "ExperimentConfig"]


@dataclass(frozen=True)
class DiTConfig:
    """Model shape. ``tokens = (frames / tpatch) · (size / patch)²``."""

    frames: int = 8
    size: int = 32
    channels: int = 1
    patch: int = 4
    tpatch: int = 1
    dim: int = 64
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 10  # 0: unconditional

    def __post_init__(self) -> None:
        if self.size % self.patch:
            raise ConfigError(f"patch must divide size={self.size}, got patch={self.patch}")
        if self.frames % self.tpatch:
            raise ConfigError(f"tpatch must divide frames={self.frames}, got tpatch={self.tpatch}")
        if self.dim % self.heads:
            raise ConfigError(f"heads must divide dim={self.dim}, got heads={self.heads}")
        if (self.dim // self.heads) % 2:
            raise ConfigError(f"head dim dim/heads must be even, got {self.dim // self.heads}")
        for name in ("depth", "dim", "heads", "channels"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def grid(self) -> tuple[int, int, int]:
        return self.frames // self.tpatch, self.size // self.patch, self.size // self.patch

    @property
    def tokens(self) -> int:
        f, h, w = self.grid
        return f * h * w

    @property
    def patch_dim(self) -> int:
        return self.channels * self.tpatch * self.patch * self.patch

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ExperimentConfig:
    """The model-level comparison (:mod:`parsimon.attention.training.experiment`): model, data, training
    lengths, the target sparsity every arm is calibrated to, evaluation sizes."""

    clips: int = 512
    eval_clips: int = 32
    model: DiTConfig = field(default_factory=lambda: DiTConfig(dim=48, depth=2, heads=4))
    teacher_steps: int = 300
    teacher_lr: float = 2e-3
    tune_steps: int = 100
    tune_lr: float = 5e-4
    batch_size: int = 8
    target_sparsity: float = 0.95
    topk: float = 0.0325  # the hybrid arm's Top-k floor: 2 of 64 key blocks (p is calibrated)
    block_q: int = 16
    block_k: int = 8
    sample_n: int = 8
    sample_steps: int = 10
    ablations: bool = True
    backend: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):  # from a config file
            object.__setattr__(self, "model", DiTConfig(**self.model))
        BACKENDS.check(self.backend)
        if not 0 < self.target_sparsity < 1:
            raise ConfigError(f"`target_sparsity` must be in (0, 1), got {self.target_sparsity}")
        for name in ("clips", "eval_clips", "batch_size", "sample_n", "sample_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


@dataclass(frozen=True)
class DistillConfig:
    """Settings of one distillation run (defaults: the quick CPU setting of the report, spec §4).

    The block sizes and Top-k floor are chosen for the tiny model's 512-token grid (see
    :mod:`parsimon.attention.training.experiment`): with the paper's 128×64 blocks 95% sparsity is impossible.
    """

    teacher: str | None = None  # dense teacher checkpoint; None: train one into the run folder (teacher.pt)
    teacher_steps: int = 300
    teacher_lr: float = 2e-3
    steps: int = 100  # student steps, in total (a resumed run counts the steps already done)
    lr: float = 5e-4
    batch_size: int = 8
    objective: str = "distill"  # "distill" (velocity, the paper's) or "diffusion" (the "-VD" ablation)
    topk: float = 0.0325  # 2 of 64 key blocks: the hybrid mask's Top-k floor
    topp: float = 0.06
    sparsity: float | None = None  # calibrate p (k for mode topk) to this block sparsity instead of using topp
    mode: str = "hybrid"
    block_q: int = 16
    block_k: int = 8
    clips: int = 512
    dim: int = 48
    depth: int = 2
    heads: int = 4
    ckpt_every: int = 50
    backend: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        MODES.check(self.mode)
        OBJECTIVES.check(self.objective)
        BACKENDS.check(self.backend)
        for name in ("topk", "topp"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"`{name}` (--{name}) must be a fraction in [0, 1], got {v}")
        if self.sparsity is not None and not 0.0 < self.sparsity < 1.0:
            raise ConfigError(f"`sparsity` (--sparsity) must be in (0, 1), got {self.sparsity}")
        for name in ("lr", "teacher_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`{name}` (--{name.replace('_', '-')}) must be > 0, got {getattr(self, name)}")
        for name, low in (("teacher_steps", 0), ("steps", 0), ("ckpt_every", 0), ("batch_size", 1), ("clips", 1),
                          ("block_q", 1), ("block_k", 1), ("dim", 2), ("depth", 1), ("heads", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"`{name}` (--{name.replace('_', '-')}) must be an integer >= {low}, got {v!r}")
        if self.teacher is not None and not Path(self.teacher).is_file():
            raise ConfigError(f"`teacher` (--teacher) {self.teacher}: no such file")


#: One help text per :class:`DistillConfig` field, for every command line that sets it (``parsimon attention
#: distill``, ``torchrun -m parsimon.attention.training.ddp``).
DISTILL_HELP = {
    "teacher": "Dense teacher checkpoint (default: train one).",
    "teacher_steps": "Teacher training steps.",
    "teacher_lr": "Teacher learning rate (AdamW).",
    "steps": "Student steps in total (a resumed run counts the steps already done).",
    "lr": "Student learning rate (AdamW).",
    "batch_size": "Clips per step (the global batch: ranks split it).",
    "objective": "Student loss: velocity distillation or plain diffusion (the paper's -VD ablation).",
    "topk": "Top-k floor as a fraction of key blocks (0.0325 = 2 of the tiny model's 64 key blocks; the paper's "
            "3% would round to 1).",
    "topp": "Top-p mass threshold (ignored with --sparsity).",
    "sparsity": "Target block sparsity in (0, 1): calibrate p (k for --mode topk) on the teacher's attention "
                "instead of using --topp.",
    "mode": "Mask rule.",
    "block_q": "Query block size in tokens (16 suits the tiny model's 512 tokens).",
    "block_k": "Key block size in tokens.",
    "clips": "Generated training clips.",
    "dim": "Model width of the tiny video DiT.",
    "depth": "Transformer blocks.",
    "heads": "Attention heads.",
    "ckpt_every": "Checkpoint every k steps (0: at the end only).",
    "backend": "Sparse attention backend.",
    "seed": "Random seed.",
}

