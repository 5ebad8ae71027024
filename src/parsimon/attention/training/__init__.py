"""Velocity-distillation fine-tuning of sparse-attention video diffusion transformers (spec §4).

Public API: generated clips (:func:`moving_digits`, :class:`ClipDataset`), a tiny video DiT with
pluggable attention (:class:`TinyVideoDiT`), rectified flow (:func:`euler_sample`), training with exact
resume and DDP (:func:`train_teacher`, :func:`distill`, :func:`finetune`), the sparse student
(:func:`sparse_student`) and the model-level comparison (:func:`run_distill_experiment`).
"""

from __future__ import annotations

from .data import ClipConfig, ClipDataset, moving_digits
from .flow import diffusion_loss, euler_sample, noisy, sample_t, velocity_distill_loss
from .loop import (
    TrainConfig,
    TrainResult,
    distill,
    finetune,
    frozen_copy,
    load_checkpoint,
    load_model,
    save_checkpoint,
    train,
    train_teacher,
)
from .model import DiTConfig, TinyVideoDiT, dense_attention
from .student import SparseAttentionFn, sparse_student

__all__ = [
    "ClipConfig",
    "ClipDataset",
    "DiTConfig",
    "SparseAttentionFn",
    "TinyVideoDiT",
    "TrainConfig",
    "TrainResult",
    "dense_attention",
    "diffusion_loss",
    "distill",
    "euler_sample",
    "finetune",
    "frozen_copy",
    "load_checkpoint",
    "load_model",
    "moving_digits",
    "noisy",
    "sample_t",
    "save_checkpoint",
    "sparse_student",
    "train",
    "train_teacher",
    "velocity_distill_loss",
]
