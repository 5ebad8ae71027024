"""One experiment = one run of :mod:`parsimon.run`: train stage 1, train stage 2, evaluate, save.

Methods (registry ``METHODS``):

* ``ul`` — Unified Latents: stage 1 trains encoder + prior + decoder jointly (Algorithm 1); stage 2 trains
  the base model on the frozen encoder's latents (sigmoid weighting, max log-SNR = ``λ_z(0)``); samples
  come from Algorithm 2. ``stage2.steps = 0`` skips stage 2 (samples then come from the stage-1 prior).
* ``klae`` — the SD-style baseline: stage 1 trains diffusers' ``AutoencoderKL``; stage 2 trains the same base
  model on its (scaled) latents.
* ``pixel`` — pixel-space diffusion: stage 2 only, on the images.

The run folder holds ``config.json``, ``events.jsonl`` (losses), ``metrics.json``, ``checkpoint.pt`` (exact
resume at any point of either stage), ``figures/`` (samples, reconstructions) and the trained model
(``pipeline/`` for UL, loadable with :class:`~parsimon.latents.pipeline.ULPipeline`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from parsimon.errors import ConfigError
from parsimon.latents.baselines import KLAEConfig, KLAutoencoder
from parsimon.latents.data import DataConfig
from parsimon.latents.diffusion import DiffusionConfig
from parsimon.latents.evaluate import EvalConfig
from parsimon.latents.model import ULConfig, UnifiedLatents
from parsimon.latents.train import TrainConfig
from parsimon.registry import Registry

__all__ = ["METHODS", "ExperimentConfig", "run_experiment", "quick_config"]

METHODS: Registry = Registry("method")
METHODS.register("ul", "ul", describe="Unified Latents (stage 1 joint training, stage 2 base model)")
METHODS.register("klae", "klae", describe="SD-style KL autoencoder (diffusers AutoencoderKL) + the same base model")
METHODS.register("pixel", "pixel", describe="pixel-space diffusion")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one ``parsimon latents train`` run needs (written to ``config.json``)."""

    method: str = "ul"  # "ul" | "klae" | "pixel"
    data: DataConfig = field(default_factory=DataConfig)
    ul: ULConfig = field(default_factory=ULConfig)
    klae: KLAEConfig = field(default_factory=KLAEConfig)
    base: DiffusionConfig = field(default_factory=DiffusionConfig)  # stage 2 on UL / KL-AE latents
    pixel: DiffusionConfig = field(default_factory=lambda: DiffusionConfig(lambda_max=10.0))  # pixel diffusion
    stage1: TrainConfig = field(default_factory=TrainConfig)  # UL joint training / the KL autoencoder
    stage2: TrainConfig = field(default_factory=TrainConfig)  # base model / pixel model; steps=0 skips (ul only)
    eval: EvalConfig = field(default_factory=EvalConfig)
    fd_at: tuple[int, ...] = ()  # stage-2 steps at which to also measure gen FD (FD against training FLOPs)
    ae_data: DataConfig | None = None  # ablation C: train stage 1 on other data of the same shape

    def __post_init__(self) -> None:
        METHODS.check(self.method)
        if self.method == "ul" and self.base.lambda_max != self.ul.lambda_z0:
            raise ConfigError(f"`base.lambda_max` ({self.base.lambda_max}) must equal `ul.lambda_z0` "
                              f"({self.ul.lambda_z0}): the base model's max log-SNR is fixed at λ_z(0) (§3.3)")
        if self.method != "ul" and self.stage2.steps < 1:
            raise ConfigError(f"`stage2.steps` must be >= 1 for method {self.method!r}")
        bad = [s for s in self.fd_at if not 0 < s <= self.stage2.steps]
        if bad:
            raise ConfigError(f"`fd_at` steps must be in [1, stage2.steps={self.stage2.steps}], got {bad}")


def quick_config(**overrides: Any) -> ExperimentConfig:
    """The small setting of the quick reproduction and the tests, with nested overrides:
    ``quick_config(ul={"loss_factor": 1.7}, stage1={"steps": 300})``."""
    base = ExperimentConfig()
    kw: dict[str, Any] = {}
    for name, value in overrides.items():
        current = getattr(base, name)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            kw[name] = dataclasses.replace(current, **value)
        else:
            kw[name] = value
    return dataclasses.replace(base, **kw)


def _check_shapes(cfg: ExperimentConfig, data) -> None:
    if cfg.method == "ul":
        want = cfg.ul.image_shape
        if tuple(data.shape) != want:
            raise ConfigError(f"the data's images are {tuple(data.shape)} (C, H, W) but `ul.image_channels`/"
                              f"`ul.image_size` say {want}; set them to match (--image-size, --channels)")


def _stage1_job(cfg: ExperimentConfig, image_shape) -> torch.nn.Module | None:
    if cfg.method == "ul":
        return UnifiedLatents(cfg.ul)
    if cfg.method == "klae":
        return KLAutoencoder(cfg.klae, image_shape)
    return None


def run_experiment(cfg: ExperimentConfig, *, out_dir: str | Path | None = None, seed: int = 0, resume: bool = False,
                   progress: bool = True, ledger: bool = True, until: dict[str, int] | None = None,
                   name: str = "latents train") -> dict[str, Any]:
    """Run one experiment as a :mod:`parsimon.run` run and return its metrics.

    Args:
        cfg: The experiment.
        out_dir: The run folder (default ``runs/latents-train-<stamp>``).
        seed: The run's seed (model initialisation, batches, noise; evaluation has its own).
        resume: Continue the run in ``out_dir`` from its checkpoint.
        progress: Show progress.
        ledger: Charge the run's wall time to the ledger.
        until: ``{"stage1": n}`` or ``{"stage2": n}``: stop after that step of that stage (the checkpoint
            is written; a later ``resume`` continues). For tests of resumption.
        name: The run's name.
    """
    from parsimon.latents import runner

    return runner.run(cfg, out_dir=out_dir, seed=seed, resume=resume, progress=progress, ledger=ledger,
                      until=until or {}, name=name)
