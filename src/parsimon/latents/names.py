"""The names of every choice in ``parsimon.latents``, importable without torch (the command line's choices).

The registries (``METHODS``, ``DATASETS``, ``SAMPLERS``, ``DENOISERS``, ...) register exactly these names;
``tests/latents/test_cli.py`` checks that they agree.
"""

from __future__ import annotations

__all__ = ["ARCHS", "DATASET_NAMES", "DECODER_KINDS", "ENCODER_ARCHS", "ENCODER_VARIANCES", "FEATURE_NAMES",
           "METHOD_NAMES", "PRECISIONS", "PRIOR_MODES", "SAMPLER_NAMES"]

METHOD_NAMES = ("klae", "pixel", "ul")
DATASET_NAMES = ("digits", "folder", "patches")
ARCHS = ("mlp", "patch", "unet")
ENCODER_ARCHS = ("conv", "mlp")
ENCODER_VARIANCES = ("fixed", "learned")
PRIOR_MODES = ("joint", "stopgrad_kl")
DECODER_KINDS = ("diffusion", "mse")
SAMPLER_NAMES = ("ddim", "ddpm")
PRECISIONS = ("bf16", "fp32")
FEATURE_NAMES = ("auto", "classifier", "random-conv")
