"""The stages of one experiment (see :mod:`parsimon.latents.experiment`): stage 1, stage 2, evaluation, saving.

Exact resume: the run's checkpoint holds the stage in progress (the loop's state) and the finished stages'
final (EMA) weights. The global RNG states in the checkpoint are restored right before the interrupted
stage continues, after everything the uninterrupted run did before it, so dropout draws match.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

import torch

from parsimon.errors import ConfigError
from parsimon.latents.evaluate import generation_metrics, rate_bound, reconstruction_metrics
from parsimon.latents.figures import save_grid
from parsimon.latents.flops import step_flops
from parsimon.latents.metrics import bits_per_pixel, feature_net_for
from parsimon.latents.sampling import two_step_sample
from parsimon.latents.train import dist_info, ema_weights, fit

__all__ = ["run"]


class _Checkpoint:
    """The run's one checkpoint dict, accumulated over the stages and saved whole (rank 0)."""

    def __init__(self, run, state: dict | None) -> None:
        self.run, self.state = run, dict(state or {})

    def put(self, **items: Any) -> None:
        self.state.update(items)
        self.run.save_checkpoint(self.state)


class _Bar:
    def advance(self, n: float = 1) -> None:
        pass

    def update(self, **kw: Any) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class _RankRun:
    """What a DDP rank other than 0 sees of the run: it reads the checkpoint, writes nothing."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = Path(out_dir)

    def log(self, *a: Any, **k: Any) -> None:
        pass

    def set_metrics(self, *a: Any, **k: Any) -> dict:
        return {}

    def save_checkpoint(self, state: Any) -> None:
        pass

    def progress(self, *a: Any, **k: Any) -> _Bar:
        return _Bar()

    def figure(self, name: str) -> Path:
        return self.dir / "figures" / name

    def load_checkpoint(self, *, restore_rng: bool = True) -> dict | None:
        from parsimon.run import _load_state, _set_rng_state

        path = self.dir / "checkpoint.pt"
        if not path.is_file():
            return None
        payload = _load_state(path)
        if restore_rng:
            _set_rng_state(payload.get("rng", {}))
        return payload["state"]


@contextlib.contextmanager
def _open_run(cfg, *, out_dir, seed, resume, progress, ledger, name):
    rank, world = dist_info()
    if world > 1 and out_dir is None:
        raise ConfigError("`--out` is required when training on several processes (torchrun)")
    if rank == 0:
        from parsimon.run import start_run

        with start_run(name, cfg, out_dir=out_dir, seed=seed, resume=resume, progress=progress,
                       ledger=ledger) as r:
            yield r
    else:
        yield _RankRun(Path(out_dir))


def _flops(job: torch.nn.Module, x: torch.Tensor, batch_size: int, steps: int) -> dict[str, float]:
    """Training FLOPs of ``steps`` steps at ``batch_size`` (paper count and measured), from a small batch."""
    n = min(8, len(x))
    with torch.random.fork_rng():
        f = step_flops(job, x[:n].to(next(job.parameters()).device), torch.Generator().manual_seed(0))
    per_image = {k: v / n for k, v in f.items()}
    return {"paper": per_image["paper"] * batch_size * steps, "measured": per_image["measured"] * batch_size * steps,
            "paper_per_step": per_image["paper"] * batch_size}


def _stage(run, ck: _Checkpoint, key: str, job, data, tcfg, *, seed: int, until: int | None,
           eval_at=(), on_eval=None, extra_state=None) -> tuple[bool, dict[str, Any]]:
    """Train ``job`` as stage ``key`` (or load its final weights); True when the stage is complete."""
    if ck.state.get(f"{key}_done"):
        job.load_state_dict(ck.state[f"{key}_final"])
        return True, ck.state[f"{key}_info"]
    state = ck.state.get(key)
    if state is not None:
        run.load_checkpoint(restore_rng=True)

    def save(snapshot: dict) -> None:
        ck.put(**{key: snapshot}, **(extra_state() if extra_state else {}))

    def log(step: int, values: dict[str, float]) -> None:
        run.log(step, stage=key, **values)

    with run.progress(f"latents {key}", total=tcfg.steps) as bar:
        res, ema = fit(job, data, tcfg, seed=seed, state=state, until=until, on_log=log, on_checkpoint=save,
                       progress=bar, eval_at=tuple(eval_at), on_eval=on_eval)
    if res.steps < tcfg.steps:
        return False, {"steps": res.steps}
    ema.copy_to(job.parameters())
    info = {"steps": res.steps, "seconds": res.seconds, "images_per_s": res.images_per_s,
            "final_loss": res.losses[-1][1] if res.losses else float("nan")}
    ck.put(**{f"{key}_done": True, f"{key}_final": job.state_dict(), f"{key}_info": info, key: None})
    return True, info


@torch.no_grad()
def _encode_all(fn, x: torch.Tensor, device, batch: int = 512) -> torch.Tensor:
    return torch.cat([fn(x[i:i + batch].to(device)).float().cpu() for i in range(0, len(x), batch)])


def run(cfg, *, out_dir, seed: int, resume: bool, progress: bool, ledger: bool, until: dict[str, int],
        name: str) -> dict[str, Any]:
    from parsimon.latents.data import load_data
    from parsimon.latents.diffusion import DiffusionModel
    from parsimon.latents.experiment import _check_shapes, _stage1_job
    from parsimon.latents.train import resolve_device

    bad = sorted(set(until) - {"stage1", "stage2"})
    if bad:
        raise ConfigError(f"`until` keys must be stage1/stage2, got {bad}")
    device = resolve_device(cfg.stage1.device)
    rank, _ = dist_info()
    with _open_run(cfg, out_dir=out_dir, seed=seed, resume=resume, progress=progress, ledger=ledger,
                   name=name) as r:
        t_start = time.perf_counter()
        ck = _Checkpoint(r, r.load_checkpoint(restore_rng=False))
        data = load_data(cfg.data)
        _check_shapes(cfg, data)
        ae_data = load_data(cfg.ae_data) if cfg.ae_data is not None else data
        if tuple(ae_data.shape) != tuple(data.shape):
            raise ConfigError(f"`ae_data` images are {tuple(ae_data.shape)}, the data's {tuple(data.shape)}; "
                              "they must match")
        metrics: dict[str, Any] = {"method": cfg.method, "data": data.name, "stage1_data": ae_data.name}
        torch.manual_seed(seed)
        job1 = _stage1_job(cfg, data.shape)
        if job1 is not None:
            job1.to(device)
            done, info1 = _stage(r, ck, "stage1", job1, ae_data.train, cfg.stage1, seed=seed,
                                 until=until.get("stage1"))
            if not done:
                return {"stopped": "stage1", **info1}
            job1.requires_grad_(False).eval()
            f1 = _flops(job1, ae_data.train, cfg.stage1.batch_size, cfg.stage1.steps)
            metrics.update({f"stage1_{k}": v for k, v in info1.items()},
                           train_flops_stage1=f1["paper"], train_flops_stage1_measured=f1["measured"])
        # stage 2: the base model on the frozen stage-1 latents, or the pixel model
        torch.manual_seed(seed + 1)
        if cfg.method == "ul":
            train2 = _encode_all(job1.encode, data.train, device)
            base = DiffusionModel(cfg.base, shape=cfg.ul.latent_shape) if cfg.stage2.steps else None
        elif cfg.method == "klae":
            lat = _encode_all(job1.encode, data.train, device)
            scale = float(lat.std())  # SD's scaling factor: latents / std have unit variance
            train2 = lat
            base = DiffusionModel(cfg.base, shape=job1.latent_shape, data_scale=scale)
        else:
            train2 = data.train
            base = DiffusionModel(cfg.pixel, shape=data.shape)
        features = feature_net_for(data, cfg.eval.features, seed=0)
        fd_curve: list[list[float]] = [list(p) for p in ck.state.get("fd_curve", [])]
        sample_fn = _sampler(cfg, job1, base, device)
        if base is not None:
            base.to(device)
            f2 = _flops(base, train2, cfg.stage2.batch_size, cfg.stage2.steps)

            def on_eval(step: int, ema) -> None:
                with ema_weights(base, ema):
                    g = torch.Generator().manual_seed(cfg.eval.seed)
                    m, _ = generation_metrics(lambda k: sample_fn(k, g), cfg.eval.n_samples, data.test, data.train,
                                              features)
                flops = f2["paper_per_step"] * step
                fd_curve.append([step, flops, m["gen_fd"]])
                r.log(step, stage="stage2", gen_fd=m["gen_fd"], train_flops_stage2=flops)

            with torch.random.fork_rng():
                done, info2 = _stage(r, ck, "stage2", base, train2, cfg.stage2, seed=seed + 1,
                                     until=until.get("stage2"), eval_at=cfg.fd_at, on_eval=on_eval,
                                     extra_state=lambda: {"fd_curve": fd_curve})
            if not done:
                return {"stopped": "stage2", **info2}
            base.requires_grad_(False).eval()
            metrics.update({f"stage2_{k}": v for k, v in info2.items()},
                           train_flops_stage2=f2["paper"], train_flops_stage2_measured=f2["measured"])
        if rank != 0:
            return metrics
        metrics["train_flops"] = metrics.get("train_flops_stage1", 0.0) + metrics.get("train_flops_stage2", 0.0)
        metrics["train_flops_measured"] = (metrics.get("train_flops_stage1_measured", 0.0)
                                           + metrics.get("train_flops_stage2_measured", 0.0))
        for step, flops, fd in fd_curve:
            metrics[f"fd_curve/{int(step)}/gen_fd"] = fd
            metrics[f"fd_curve/{int(step)}/train_flops_stage2"] = flops
        metrics.update(_evaluate(cfg, r, job1, base, data, features, device, sample_fn))
        _save_models(cfg, r, job1, base)
        metrics["seconds"] = time.perf_counter() - t_start
        return r.set_metrics(metrics)


def _sampler(cfg, job1, base, device):
    """``fn(n, generator) -> images in [−1, 1]`` for the method."""
    ev = cfg.eval
    if cfg.method == "ul":
        def fn(n, g):
            return two_step_sample(job1, base if base is not None else job1, n, latent_steps=ev.latent_steps,
                                   decoder_steps=ev.decoder_steps, sampler=ev.sampler, generator=g, device=device)
    elif cfg.method == "klae":
        def fn(n, g):
            return job1.decode(base.generate(n, steps=ev.latent_steps, sampler=ev.sampler, generator=g))
    else:
        def fn(n, g):
            return base.generate(n, steps=ev.latent_steps, sampler=ev.sampler, generator=g).clamp(-1, 1)
    return fn


def _evaluate(cfg, r, job1, base, data, features, device, sample_fn) -> dict[str, Any]:
    ev = cfg.eval

    def fresh() -> torch.Generator:  # common random numbers for every measurement
        return torch.Generator().manual_seed(ev.seed)

    out: dict[str, Any] = {"feature_net": features.kind, "eval_images": len(data.test), "eval_samples": ev.n_samples}
    if features.accuracy is not None:
        out["feature_net_accuracy"] = features.accuracy
    test = data.test
    rec = None
    if cfg.method == "ul":
        out.update(rate_bound(job1, test, t_samples=ev.t_samples, generator=fresh()))
        m, rec = reconstruction_metrics(job1, test, features, steps=ev.decoder_steps, sampler=ev.sampler,
                                        generator=fresh())
        out.update(m)
        if cfg.ul.encoder_variance == "learned":
            with torch.no_grad():
                _, log_var = job1.encode_stats(test.to(device))
            std = float((0.5 * log_var).exp().mean())
            sigma0 = math.sqrt(1 / (1 + math.exp(cfg.ul.lambda_z0)))
            out.update(encoder_std=std, encoder_std_over_sigma0=std / sigma0)
        if base is not None:
            g = fresh()
            m, prior_samples = generation_metrics(
                lambda k: two_step_sample(job1, job1, k, latent_steps=ev.latent_steps, decoder_steps=ev.decoder_steps,
                                          sampler=ev.sampler, generator=g, device=device),
                ev.n_samples, test, data.train, features)
            out.update(gen_fd_prior=m["gen_fd"], nn_dist_prior=m["nn_dist"])
            save_grid(prior_samples[:64], r.figure("samples_prior.png"), nrow=8)
    elif cfg.method == "klae":
        from parsimon.latents.metrics import frechet_distance, psnr

        with torch.no_grad():
            rec = job1.decode(job1.encode(test.to(device))).cpu()
            kl = float(job1.kl(test.to(device)).mean())
        p = psnr(rec, test)
        out.update(psnr=float(p.mean()), psnr_stderr=float(p.std() / math.sqrt(len(p))),
                   recon_fd=frechet_distance(features.features(test), features.features(rec)),
                   kl_bits_per_pixel=bits_per_pixel(kl, data.image_size))
    g = fresh()
    m, samples = generation_metrics(lambda k: sample_fn(k, g), ev.n_samples, test, data.train, features)
    out.update(m)
    out["gen_fd_source"] = "base" if (cfg.method != "ul" or base is not None) else "prior"
    save_grid(samples[:64], r.figure("samples.png"), nrow=8)
    if rec is not None:
        save_grid(torch.cat([test[:16], rec[:16]]), r.figure("reconstructions.png"), nrow=16)
    return out


def _save_models(cfg, r, job1, base) -> None:
    if not hasattr(r, "path"):
        return
    if cfg.method == "ul":
        from parsimon.latents.pipeline import ULPipeline

        ULPipeline(model=job1.to("cpu"), base=base.to("cpu") if base is not None else None).save_pretrained(
            r.dir / "pipeline")
    elif cfg.method == "klae":
        job1.ae.save_pretrained(r.dir / "klae")
        base.save_pretrained(r.dir / "base")
    else:
        base.save_pretrained(r.dir / "pixel")
