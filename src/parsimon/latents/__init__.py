"""Unified Latents (arXiv 2602.17270): encoder, diffusion prior and diffusion decoder trained jointly.

Public API: :class:`ULConfig` / :class:`UnifiedLatents` (stage 1), :class:`DiffusionConfig` /
:class:`DiffusionModel` (stage-2 base model, pixel diffusion), :class:`ULPipeline` (sampling in the diffusers
idiom), :class:`ExperimentConfig` / :func:`run_experiment` (one training run), :func:`sweep` (the c_lf sweep),
:func:`fit` / :class:`TrainConfig` (the training loop), :func:`rate_bound` (the latent bitrate bound),
:class:`KLAutoencoder` (the SD-style baseline) and :func:`load_data` / :class:`DataConfig`.
"""

from __future__ import annotations

from .baselines import KLAEConfig, KLAutoencoder
from .data import DataConfig, ImageData, load_data
from .diffusion import DiffusionConfig, DiffusionModel
from .evaluate import EvalConfig, rate_bound
from .experiment import ExperimentConfig, quick_config, run_experiment
from .model import ULConfig, UnifiedLatents
from .pipeline import ULPipeline
from .sampling import sample, two_step_sample
from .sweep import sweep
from .train import TrainConfig, fit

__all__ = [
    "DataConfig", "DiffusionConfig", "DiffusionModel", "EvalConfig", "ExperimentConfig", "ImageData", "KLAEConfig",
    "KLAutoencoder", "TrainConfig", "ULConfig", "ULPipeline", "UnifiedLatents", "fit", "load_data", "quick_config",
    "rate_bound", "run_experiment", "sample", "sweep", "two_step_sample",
]
