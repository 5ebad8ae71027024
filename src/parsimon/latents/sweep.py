"""The loss-factor sweep (the paper's Table 2): one experiment per (c_lf, seed), in-process or over Ray.

The sweep is itself a run (``latents sweep``) whose folder holds one child run per point
(``runs/clf-1.5-seed-0``), ``sweep.json`` (every point's metrics and the per-c_lf mean and standard error
over seeds) and ``figures/sweep.png``. A rerun with ``--resume`` skips the points whose child run finished.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["PAPER_TABLE2", "aggregate", "plot_sweep", "run_sweep", "sweep_points"]

# Table 2 of the paper (ImageNet-512): c_lf → (bits/pixel, rFID@50k, PSNR, gFID small, gFID medium).
PAPER_TABLE2 = {1.3: (0.035, 0.79, 25.7, 1.42, 1.37), 1.5: (0.059, 0.47, 27.6, 1.54, 1.31),
                1.7: (0.083, 0.36, 28.9, 1.77, 1.38), 1.9: (0.101, 0.31, 29.6, 2.02, 1.45),
                2.1: (0.116, 0.27, 30.1, 2.38, 1.58)}
SWEEP_METRICS = ("bits_per_pixel", "psnr", "recon_fd", "gen_fd")


def sweep_points(loss_factors, seeds) -> list[tuple[float, int]]:
    """Every (c_lf, seed) pair, validated."""
    lfs = [float(v) for v in loss_factors]
    seeds = [int(s) for s in seeds]
    if not lfs or not seeds:
        raise ConfigError("`--loss-factors` and `--seeds` must each name at least one value")
    bad = [v for v in lfs if not (v > 0 and math.isfinite(v))]
    if bad:
        raise ConfigError(f"`--loss-factors` must be positive numbers, got {bad}")
    return [(lf, s) for lf in lfs for s in seeds]


def _point_dir(root: Path, lf: float, seed: int) -> Path:
    return root / "runs" / f"clf-{lf:g}-seed-{seed}"


def _run_point(cfg, lf: float, seed: int, out: str, resume: bool) -> dict[str, Any]:
    from parsimon.latents.experiment import run_experiment

    point = dataclasses.replace(cfg, ul=dataclasses.replace(cfg.ul, loss_factor=lf))
    m = run_experiment(point, out_dir=out, seed=seed, resume=resume, progress=False)
    return {"loss_factor": lf, "seed": seed, **m}


def _finished(path: Path) -> dict[str, Any] | None:
    try:
        status = json.loads((path / "run.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    return metrics if status.get("status") == "ok" and "bits_per_pixel" in metrics else None


def aggregate(points: list[dict[str, Any]], metrics=SWEEP_METRICS) -> list[dict[str, Any]]:
    """Per c_lf: the mean, standard deviation and standard error over seeds of each metric."""
    by_lf: dict[float, list[dict]] = {}
    for p in points:
        by_lf.setdefault(float(p["loss_factor"]), []).append(p)
    rows = []
    for lf in sorted(by_lf):
        row: dict[str, Any] = {"loss_factor": lf, "seeds": len(by_lf[lf])}
        for m in metrics:
            vals = [float(p[m]) for p in by_lf[lf] if p.get(m) is not None]
            if not vals:
                continue
            mean = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else float("nan")
            row[m] = mean
            row[f"{m}_sd"] = sd
            row[f"{m}_se"] = sd / math.sqrt(len(vals)) if len(vals) > 1 else float("nan")
        rows.append(row)
    return rows


def plot_sweep(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """bits/pixel and PSNR against c_lf (mean ± standard error over seeds), the paper's Table 2 beside."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lfs = [r["loss_factor"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, col in ((axes[0], "bits_per_pixel", 0), (axes[1], "psnr", 2)):
        ax.errorbar(lfs, [r.get(key, float("nan")) for r in rows], yerr=[r.get(f"{key}_se", 0) for r in rows],
                    marker="o", capsize=3, label="ours (digits 8×8, ± s.e. over seeds)")
        paper = sorted(PAPER_TABLE2)
        twin = ax.twinx()
        twin.plot(paper, [PAPER_TABLE2[k][col] for k in paper], "s--", color="grey", label="paper (ImageNet-512)")
        twin.set_ylabel(f"paper {key}", color="grey")
        ax.set_xlabel("loss factor c_lf")
        ax.set_ylabel(key)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _ray_map(calls: list[tuple], ray_address: str) -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError as exc:
        from parsimon.errors import DependencyNotInstalled

        raise DependencyNotInstalled("ray", "ray", "--ray") from exc
    if not ray.is_initialized():
        try:
            if ray_address == "local":
                ray.init(address="local", include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
            else:
                ray.init(address=ray_address, log_to_driver=False, ignore_reinit_error=True)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"--ray: could not start or reach Ray at {ray_address!r}: {exc}") from exc
    env = {"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}}
    remote = ray.remote(num_cpus=1, runtime_env=env)(_run_point)
    return ray.get([remote.remote(*c) for c in calls])


def run_sweep(cfg, loss_factors, seeds, *, out_dir: str | Path | None = None, resume: bool = False,
          ray_address: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train and evaluate one UL experiment per (c_lf, seed); return ``{"points", "rows"}``.

    Args:
        cfg: The :class:`~parsimon.latents.experiment.ExperimentConfig` of every point (c_lf replaced).
        loss_factors: The c_lf values (the paper's Table 2: 1.3, 1.5, 1.7, 1.9, 2.1).
        seeds: The seeds per c_lf (error bars).
        out_dir: The sweep's run folder.
        resume: Skip finished points and continue unfinished ones.
        ray_address: Run the points as Ray tasks (``local``, ``auto`` or ``ray://host:port``).
    """
    from parsimon.run import start_run

    if cfg.method != "ul":
        raise ConfigError(f"the loss-factor sweep needs method 'ul', got {cfg.method!r}")
    pts = sweep_points(loss_factors, seeds)
    record = {"experiment": cfg, "loss_factors": sorted({p[0] for p in pts}), "seeds": sorted({p[1] for p in pts}),
              "ray": ray_address is not None}
    with start_run("latents sweep", record, out_dir=out_dir, resume=resume, progress=progress) as run:
        done, todo = [], []
        for lf, seed in pts:
            path = _point_dir(run.dir, lf, seed)
            prior = _finished(path) if resume else None
            if prior is not None:
                done.append({"loss_factor": lf, "seed": seed, **prior})
            else:
                todo.append((cfg, lf, seed, str(path), resume and path.exists()))
        if ray_address:
            done += _ray_map(todo, ray_address)
        else:
            with run.progress("latents sweep", total=len(todo)) as bar:
                for call in todo:
                    done.append(_run_point(*call))
                    bar.advance()
        done.sort(key=lambda p: (p["loss_factor"], p["seed"]))
        rows = aggregate(done)
        run.write_json("sweep.json", {"points": done, "rows": rows, "paper_table2": PAPER_TABLE2})
        plot_sweep(rows, run.figure("sweep.png"))
        run.set_metrics({f"clf_{r['loss_factor']:g}/{k}": v for r in rows for k, v in r.items()
                         if k != "loss_factor" and isinstance(v, (int, float))})
    return {"points": done, "rows": rows, "dir": str(run.dir)}
