"""Report section for ``parsimon.latents`` (Unified Latents, arXiv 2602.17270), at small scale: trends, not numbers.

Jobs, each a :mod:`parsimon.run` run under ``<report>/latents/runs/`` (the section is built from their
``metrics.json``):

1. the loss-factor sweep c_lf ∈ {1.3, 1.5, 1.7, 1.9, 2.1} × several seeds (Table 2): bits/pixel, PSNR,
   reconstruction FD, generation FD (stage-2 base model), and the stage-1 prior's samples beside them;
2. ablations of Table 6: B (λ_z(0) = 10) and D (learned encoder variance) in quick mode; A (stop-gradient
   prior + discounted KL), C (stage 1 trained on other data: grey photo patches) and Table 5's MSE decoder in
   full mode;
3. generation FD against training FLOPs (Fig. 4): the same base model on UL latents and on the latents of the
   SD-style KL autoencoder, and pixel-space diffusion, evaluated at equal base-model training FLOPs.
"""

from __future__ import annotations

import json
import time
from typing import Any

from parsimon.report.section import ReproContext, Section

__all__ = ["PAPER", "SETTINGS", "reproduce"]

PAPER = "Unified Latents (UL): How to train your latents (arXiv 2602.17270)"
LOSS_FACTORS = (1.3, 1.5, 1.7, 1.9, 2.1)
# Table 6 of the paper: (bits/pixel, rFID, gFID).
PAPER_TABLE6 = {"baseline (c_lf 1.5)": (0.059, 0.47, 1.54), "A: stop-grad prior + KL": (0.121, 1.81, 7.80),
                "B: λ_z(0) = 10": (0.008, 28.27, None), "C: AE on other data": (0.034, 1.37, 1.63),
                "D: learned variance": (0.060, 0.69, 1.81), "MSE decoder (Table 5)": (0.072, 1.1, 2.4)}

# Sizes of the quick (CPU, under 10 minutes on one core) and full settings. Everything else is the
# ExperimentConfig default; see docs/latents.md for the choices.
SETTINGS: dict[str, dict[str, Any]] = {
    "quick": {
        "seeds": (0, 1, 2),
        "ul": {"rate_warmup": 500},
        "stage1": {"steps": 1000, "batch_size": 96, "warmup": 100, "ckpt_every": 500, "log_every": 50},
        "stage2": {"steps": 500, "batch_size": 128, "warmup": 50, "ckpt_every": 250, "log_every": 50},
        "base": {"hidden": 192, "depth": 2},
        "klae": {},
        "klae_stage1": {"steps": 400, "batch_size": 64},
        "eval": {"n_samples": 1000, "t_samples": 24, "decoder_steps": 30, "latent_steps": 30},
        "fd_at": (125, 250, 500),
        "ablations": ("B", "D"),
    },
    "full": {
        "seeds": (0, 1, 2, 3, 4),
        "ul": {"rate_warmup": 3000},
        "stage1": {"steps": 6000, "batch_size": 128, "warmup": 200, "ckpt_every": 1000, "log_every": 100},
        "stage2": {"steps": 4000, "batch_size": 128, "warmup": 200, "ckpt_every": 1000, "log_every": 100},
        "base": {"hidden": 512, "depth": 3},
        "klae": {},
        "klae_stage1": {"steps": 2000, "batch_size": 64},
        "eval": {"n_samples": 1000, "t_samples": 64, "decoder_steps": 100, "latent_steps": 100},
        "fd_at": (500, 1000, 2000, 4000),
        "ablations": ("A", "B", "C", "D", "MSE"),
    },
}


def _experiment(s: dict[str, Any], **over: Any):
    from parsimon.latents.experiment import quick_config

    kw = {k: dict(s[k]) for k in ("ul", "stage1", "stage2", "base", "klae", "eval")}
    for key, value in over.items():
        if isinstance(value, dict) and key in kw:
            kw[key].update(value)
        else:
            kw[key] = value
    return quick_config(**kw)


def _run(ctx: ReproContext, name: str, cfg, seed: int) -> dict[str, Any]:
    """One experiment as a run under ``<out>/runs/<name>`` (a finished one is read back, not rerun)."""
    from parsimon.latents.experiment import run_experiment

    path = ctx.out_dir / "runs" / name
    try:
        status = json.loads((path / "run.json").read_text())
        if status.get("status") == "ok":
            return json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        pass
    return run_experiment(cfg, out_dir=path, seed=seed, resume=path.exists(), progress=False)


def reproduce(ctx: ReproContext) -> Section:
    section = Section(
        name="latents",
        paper=PAPER,
        summary=(
            "Unified Latents at small scale on scikit-learn's 8×8 digits (1,500 train / 297 held-out images), CPU, "
            "one thread: a deterministic encoder with fixed noise at λ_z(0) = 5, a diffusion prior trained with the "
            "unweighted ELBO and a diffusion decoder trained with the sigmoid-weighted ELBO × c_lf, all jointly "
            "(Algorithm 1); a stage-2 base model on the frozen latents; two-step sampling (Algorithm 2). Bits are "
            "the prior term's bound on held-out images; FD is a Fréchet distance in the features of a small digits "
            "classifier (our stand-in for FID). The networks are small MLPs, so compare trends, not values."),
    )
    try:
        import diffusers  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        section.not_reproduced.append(f"diffusers and scikit-learn are needed ({exc}); install the `latents` extra")
        return section
    s = SETTINGS["full" if ctx.full else "quick"]
    t0 = time.perf_counter()
    sweep = _sweep_part(ctx, s)
    ablations = _ablation_part(ctx, s, sweep)
    flops = _flops_part(ctx, s, sweep)
    from parsimon.latents import report_parts as parts

    parts.sweep_tables(section, sweep)
    parts.ablation_table(section, ablations, PAPER_TABLE6)
    parts.flops_tables(section, flops)
    parts.figures(ctx, section, sweep, flops)
    parts.claims(section, sweep, ablations, flops)
    parts.not_reproduced(section, s, ctx.full)
    section.config.update({"mode": "full" if ctx.full else "quick", "seeds": list(s["seeds"]),
                           "loss_factors": list(LOSS_FACTORS), "settings": _jsonable(s),
                           "seconds": round(time.perf_counter() - t0, 1)})
    ctx.path("latents_reproduce.json").write_text(json.dumps(
        {"sweep": sweep, "ablations": ablations, "flops": flops}, indent=1, default=float))
    return section


def _jsonable(s: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(s, default=list))


def _sweep_part(ctx: ReproContext, s: dict[str, Any]) -> dict[str, Any]:
    from parsimon.latents.sweep import aggregate

    points = []
    with ctx.progress("latents: c_lf sweep", total=len(LOSS_FACTORS) * len(s["seeds"])) as bar:
        for lf in LOSS_FACTORS:
            for seed in s["seeds"]:
                # the Fig. 4 point: the baseline c_lf = 1.5, seed 0 also measures FD during stage 2
                fd_at = tuple(s["fd_at"]) if (lf == 1.5 and seed == s["seeds"][0]) else ()
                cfg = _experiment(s, ul={"loss_factor": lf}, fd_at=fd_at)
                m = _run(ctx, f"clf-{lf:g}-seed-{seed}", cfg, seed)
                points.append({"loss_factor": lf, "seed": seed, **m})
                bar.advance()
    rows = aggregate(points, metrics=("bits_per_pixel", "psnr", "recon_fd", "gen_fd", "gen_fd_prior", "nn_dist"))
    return {"points": points, "rows": rows, "baseline": f"clf-1.5-seed-{s['seeds'][0]}"}


def _ablation_configs(s: dict[str, Any]) -> dict[str, Any]:
    from parsimon.latents.data import DataConfig

    return {
        "A": ("A: stop-grad prior + KL", _experiment(s, ul={"prior_mode": "stopgrad_kl"})),
        "B": ("B: λ_z(0) = 10", _experiment(s, ul={"lambda_z0": 10.0}, base={"lambda_max": 10.0})),
        "C": ("C: AE on other data", _experiment(s, ae_data=DataConfig(name="patches", image_size=8, channels=1,
                                                                       n_train=1500, n_test=297))),
        "D": ("D: learned variance", _experiment(s, ul={"encoder_variance": "learned"})),
        "MSE": ("MSE decoder (Table 5)", _experiment(s, ul={"decoder_kind": "mse"})),
    }


def _ablation_part(ctx: ReproContext, s: dict[str, Any], sweep: dict[str, Any]) -> dict[str, Any]:
    seed = s["seeds"][0]
    base = next(p for p in sweep["points"] if p["loss_factor"] == 1.5 and p["seed"] == seed)
    out = {"baseline (c_lf 1.5)": base}
    configs = _ablation_configs(s)
    with ctx.progress("latents: ablations", total=len(s["ablations"])) as bar:
        for key in s["ablations"]:
            label, cfg = configs[key]
            out[label] = _run(ctx, f"ablation-{key}-seed-{seed}", cfg, seed)
            bar.advance()
    return out


def _flops_part(ctx: ReproContext, s: dict[str, Any], sweep: dict[str, Any]) -> dict[str, Any]:
    """The same base model on UL and KL-AE latents, and pixel diffusion, at equal stage-2 training FLOPs."""
    import torch

    from parsimon.latents.diffusion import DiffusionModel
    from parsimon.latents.flops import step_flops

    seed = s["seeds"][0]
    ul = next(p for p in sweep["points"] if p["loss_factor"] == 1.5 and p["seed"] == seed)
    klae = _run(ctx, f"klae-seed-{seed}", _experiment(s, method="klae", fd_at=tuple(s["fd_at"]),
                                                      stage1=s.get("klae_stage1", {})), seed)
    # pixel diffusion: a model of the base model's width on the images; its steps chosen to match the budgets
    width = {"hidden": s["base"]["hidden"], "depth": s["base"]["depth"]}
    cfg0 = _experiment(s, method="pixel", pixel=width)
    x = torch.zeros(8, 1, 8, 8)
    lat = torch.zeros(8, *cfg0.ul.latent_shape)
    pixel_per_img = step_flops(DiffusionModel(cfg0.pixel, shape=(1, 8, 8)), x)["paper"] / 8
    base_per_img = step_flops(DiffusionModel(cfg0.base, shape=cfg0.ul.latent_shape), lat)["paper"] / 8
    ratio = base_per_img / pixel_per_img
    pixel_at = tuple(sorted({max(1, round(k * ratio)) for k in s["fd_at"]}))
    pcfg = _experiment(s, method="pixel", pixel=width, stage2={"steps": max(pixel_at)}, fd_at=pixel_at)
    pixel = _run(ctx, f"pixel-seed-{seed}", pcfg, seed)

    def curve(m: dict[str, Any]) -> list[list[float]]:
        steps = sorted({int(k.split("/")[1]) for k in m if k.startswith("fd_curve/")})
        return [[k, m[f"fd_curve/{k}/train_flops_stage2"], m[f"fd_curve/{k}/gen_fd"]] for k in steps]

    return {"ul": {"metrics": ul, "curve": curve(ul)}, "klae": {"metrics": klae, "curve": curve(klae)},
            "pixel": {"metrics": pixel, "curve": curve(pixel)}, "pixel_steps": list(pixel_at),
            "flops_per_image": {"base": base_per_img, "pixel": pixel_per_img}}


def replace_settings(mode: str, **changes: Any) -> None:
    """Change the sizes of a mode in place (tests shrink the quick mode)."""
    SETTINGS[mode] = {**SETTINGS[mode], **changes}
