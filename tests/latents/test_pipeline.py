"""save_pretrained / from_pretrained through ULPipeline, sampling and reconstruction."""

from __future__ import annotations

import torch

from parsimon.latents.diffusion import DiffusionConfig, DiffusionModel
from parsimon.latents.model import ULConfig, UnifiedLatents
from parsimon.latents.pipeline import ULPipeline


def _models():
    torch.manual_seed(0)
    model = UnifiedLatents(ULConfig(encoder_hidden=32, prior_hidden=32, decoder_hidden=32, loss_factor=1.7))
    base = DiffusionModel(DiffusionConfig(hidden=32, depth=1), shape=model.cfg.latent_shape)
    for p in list(model.parameters()) + list(base.parameters()):  # non-trivial weights (outputs are zero-init)
        torch.nn.init.normal_(p, std=0.05)
    return model.eval(), base.eval()


def test_save_load_roundtrip(tmp_path):
    model, base = _models()
    pipe = ULPipeline(model=model, base=base)
    pipe.save_pretrained(tmp_path / "ul")
    loaded = ULPipeline.from_pretrained(tmp_path / "ul")
    assert loaded.model.cfg == model.cfg and loaded.base.cfg == base.cfg and loaded.base.shape == base.shape
    for (name, w), v in zip(model.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(w, v), name
    a = pipe(4, latent_steps=3, decoder_steps=3, generator=torch.Generator().manual_seed(1)).images
    b = loaded(4, latent_steps=3, decoder_steps=3, generator=torch.Generator().manual_seed(1)).images
    assert a.shape == (4, 1, 8, 8) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    prior = loaded(2, latent_steps=3, decoder_steps=3, use_prior=True, output_type="np").images
    assert prior.shape == (2, 8, 8, 1)
    pil = loaded(2, latent_steps=2, decoder_steps=2, output_type="pil").images
    assert pil[0].size == (8, 8)


def test_pipeline_without_base_and_reconstruct(tmp_path):
    model, _ = _models()
    ULPipeline(model=model, base=None).save_pretrained(tmp_path / "p")
    pipe = ULPipeline.from_pretrained(tmp_path / "p")
    assert pipe.base is None
    x = torch.rand(3, 1, 8, 8) * 2 - 1
    rec = pipe.reconstruct(x, steps=2, generator=torch.Generator().manual_seed(0))
    assert rec.shape == x.shape and rec.abs().max() <= 1
    z0 = pipe.encode(x, generator=torch.Generator().manual_seed(0))
    assert z0.shape == (3, *model.cfg.latent_shape)
