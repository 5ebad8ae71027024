"""Unified Latents (arXiv 2602.17270): encoder, diffusion prior and diffusion decoder trained jointly.

Public API: :class:`ULConfig` / :class:`UnifiedLatents` (stage 1), :class:`DiffusionConfig` /
:class:`DiffusionModel` (stage-2 base model, pixel diffusion), :class:`ULPipeline` (sampling in the diffusers
idiom), :class:`ExperimentConfig` / :func:`run_experiment` (one training run), :func:`run_sweep` (the c_lf sweep),
:func:`fit` / :class:`TrainConfig` (the training loop), :func:`rate_bound` (the latent bitrate bound),
:class:`KLAutoencoder` (the SD-style baseline) and :func:`load_data` / :class:`DataConfig`.

The names are re-exported lazily (PEP 562), so ``parsimon.latents.names`` and the command line import
without torch or diffusers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "KLAEConfig": "baselines", "KLAutoencoder": "baselines",
    "DataConfig": "data", "ImageData": "data", "load_data": "data",
    "DiffusionConfig": "diffusion", "DiffusionModel": "diffusion",
    "EvalConfig": "evaluate", "rate_bound": "evaluate",
    "ExperimentConfig": "experiment", "quick_config": "experiment", "run_experiment": "experiment",
    "ULConfig": "model", "UnifiedLatents": "model",
    "ULPipeline": "pipeline",
    "two_step_sample": "sampling", "sample_run": "generate",
    "run_sweep": "sweep",
    "TrainConfig": "train", "fit": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
