"""``ULPipeline``: a trained Unified Latents model in the diffusers idiom.

    from parsimon.latents import ULPipeline

    pipe = ULPipeline.from_pretrained("runs/latents-train-…/pipeline")
    images = pipe(batch_size=16, generator=torch.Generator().manual_seed(0)).images   # [16, C, H, W] in [0, 1]
    recon = pipe.reconstruct(x)                                                      # x in [−1, 1]
    pipe.save_pretrained("my-ul")

Components: ``model`` (:class:`~parsimon.latents.model.UnifiedLatents`: encoder, prior, decoder) and ``base``
(the stage-2 :class:`~parsimon.latents.diffusion.DiffusionModel`, or None: then the stage-1 prior generates
the latents). Sampling is Algorithm 2: latent first, then the decoder conditioned on it.
"""

from __future__ import annotations

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput

from parsimon.errors import ConfigError
from parsimon.latents.diffusion import DiffusionModel
from parsimon.latents.model import UnifiedLatents
from parsimon.latents.sampling import SAMPLERS, decode_latent, two_step_sample

__all__ = ["ULPipeline"]

OUTPUT_TYPES = ("pt", "np", "pil")


class ULPipeline(DiffusionPipeline):
    """Two-step sampling (Algorithm 2), encoding and reconstruction with a trained UL model.

    Args:
        model: The stage-1 model.
        base: The stage-2 base model on the latents, or None.
    """

    model_cpu_offload_seq = "base->model"
    _optional_components = ["base"]

    # `base` has no default: diffusers saves only the components that are required arguments.
    def __init__(self, model: UnifiedLatents, base: DiffusionModel | None) -> None:
        super().__init__()
        if isinstance(base, (list, tuple)) and all(b is None for b in base):  # how diffusers loads a None slot
            base = None
        self.register_modules(model=model, base=base)

    @classmethod
    def from_pretrained(cls, path, **kwargs) -> ULPipeline:
        """Load a saved pipeline folder (``low_cpu_mem_usage=False`` unless given: no accelerate needed)."""
        from diffusers.utils import logging as diffusers_logging

        kwargs.setdefault("low_cpu_mem_usage", False)
        shown = diffusers_logging.is_progress_bar_enabled()
        diffusers_logging.disable_progress_bar()
        try:
            pipe = super().from_pretrained(path, **kwargs)
        finally:
            if shown:
                diffusers_logging.enable_progress_bar()
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @torch.no_grad()
    def __call__(self, batch_size: int = 16, *, latent_steps: int = 50, decoder_steps: int = 50,
                 sampler: str = "ddpm", use_prior: bool = False, decode_from: str = "z0",
                 generator: torch.Generator | None = None, output_type: str = "pt",
                 return_dict: bool = True) -> ImagePipelineOutput | tuple:
        """Generate ``batch_size`` images.

        Args:
            batch_size: Number of images.
            latent_steps: Sampler steps of the latent model.
            decoder_steps: Sampler steps of the decoder.
            sampler: ``"ddpm"`` (ancestral) or ``"ddim"``.
            use_prior: Generate the latents with the stage-1 prior even when a base model is present.
            decode_from: ``"z0"`` (Algorithm 2) or ``"zhat"`` (see :func:`~parsimon.latents.sampling.two_step_sample`).
            generator: A CPU ``torch.Generator`` for reproducible samples.
            output_type: ``"pt"`` (``[N, C, H, W]`` in ``[0, 1]``), ``"np"`` (``[N, H, W, C]``) or ``"pil"``.
            return_dict: Return an ``ImagePipelineOutput`` (else a tuple).
        """
        if batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}")
        SAMPLERS.check(sampler)
        if output_type not in OUTPUT_TYPES:
            raise ConfigError(f"`output_type` must be one of {list(OUTPUT_TYPES)}, got {output_type!r}")
        latent_model = self.model if (use_prior or self.base is None) else self.base
        x = two_step_sample(self.model, latent_model, batch_size, latent_steps=latent_steps,
                            decoder_steps=decoder_steps, sampler=sampler, decode_from=decode_from,
                            generator=generator, device=self.model.device)
        images = self._to_output((x + 1) / 2, output_type)
        return ImagePipelineOutput(images=images) if return_dict else (images,)

    @staticmethod
    def _to_output(x: torch.Tensor, output_type: str):
        x = x.clamp(0, 1).cpu()
        if output_type == "pt":
            return x
        arr = x.permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return arr
        from PIL import Image

        arr = (arr * 255).round().astype("uint8")
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in arr]

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy latents ``z_0 = α_0 E(x) + σ_0 ε`` of images in ``[−1, 1]``."""
        z = self.model.encode(images.to(self.model.device))
        return self.model.noisy_latent(z, torch.randn(z.shape, generator=generator).to(z.device))

    @torch.no_grad()
    def decode(self, z0: torch.Tensor, *, steps: int = 50, sampler: str = "ddpm",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder samples in ``[−1, 1]`` from noisy latents."""
        return decode_latent(self.model, z0.to(self.model.device), steps, sampler, generator=generator)

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor, *, steps: int = 50, sampler: str = "ddpm",
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Encode then decode images in ``[−1, 1]``."""
        return self.decode(self.encode(images, generator), steps=steps, sampler=sampler, generator=generator)
