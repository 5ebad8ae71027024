"""The model-level experiment over several seeds (``parsimon attention experiment``): mean ± std per arm.

Inside a :class:`parsimon.run.Run` each finished seed is saved with ``run.save_checkpoint`` (a resumed run
skips it), each seed's teacher is cached in ``seed<N>/teacher.pt`` of the run folder, the arms' metrics go to
``events.jsonl``, the summary to ``metrics.json`` (``<arm>/<metric>``), ``result.json`` holds everything and
``figures/summary.png`` the bar chart.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from parsimon.errors import ConfigError
from parsimon.run import Result

from ..configs import ExperimentConfig

__all__ = ["StudyResult", "plot_summary", "run_seeds", "summarise"]

SUMMARY_KEYS = ("sparsity", "rel_velocity_err", "sample_psnr_db", "flow_loss")


@dataclass
class StudyResult(Result):
    """Per-seed results (``runs``) and their per-arm mean and standard deviation (``summary``)."""

    FINAL = "distill_velocity_err"

    seeds: list[int]
    summary: list[dict]
    runs: list[dict]

    @property
    def distill_velocity_err(self) -> float:
        """Mean relative velocity error of the velocity-distilled arm (the paper's recipe)."""
        row = next((r for r in self.summary if r["arm"] == "velocity-distill"), None)
        return row["rel_velocity_err"] if row else float("nan")

    def metrics(self) -> dict:
        """``<arm>/<metric>`` for every summary value."""
        return {f"{r['arm']}/{k}": r[k] for r in self.summary for k in r if k not in ("arm", "seeds")}


def summarise(runs: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each arm's metrics."""
    out = []
    for i, arm in enumerate(runs[0]["arms"]):
        row = {"arm": arm["arm"], "seeds": len(runs)}
        for key in SUMMARY_KEYS:
            vals = [r["arms"][i][key] for r in runs]
            finite = [v for v in vals if math.isfinite(v)]
            row[key] = statistics.fmean(finite) if finite else math.inf
            row[key + "_std"] = statistics.stdev(finite) if len(finite) > 1 else 0.0
        out.append(row)
    return out


def run_seeds(cfg: ExperimentConfig, seeds: list[int], *, run=None, cache_dir: str | Path | None = None,
              progress=None) -> StudyResult:
    """Run :func:`~parsimon.attention.training.experiment.run_distill_experiment` for each seed (``cfg`` with
    its ``seed`` replaced) and summarise; see the module docstring for what a ``run`` keeps."""
    from .experiment import run_distill_experiment

    if not seeds:
        raise ConfigError("`seeds` must name at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"`seeds` must be distinct, got {seeds}")
    cache = Path(cache_dir) if cache_dir is not None else (run.dir if run is not None else None)
    done: dict[int, dict] = {}
    if run is not None and run.resumed:
        state = run.load_checkpoint() or {}
        done = {int(k): v for k, v in state.get("runs", {}).items()}
    bar = run.progress("seeds", total=len(seeds)) if run is not None else None
    try:
        for seed in seeds:
            if seed not in done:
                done[seed] = run_distill_experiment(replace(cfg, seed=seed), run=run, progress=progress,
                                                    out_dir=cache / f"seed{seed}" if cache is not None else None)
                if run is not None:
                    run.save_checkpoint({"runs": done})
            if bar is not None:
                bar.advance()
    finally:
        if bar is not None:
            bar.close()
    runs = [done[s] for s in seeds]
    result = StudyResult(seeds=list(seeds), summary=summarise(runs), runs=runs)
    if run is not None:
        run.set_metrics(result.metrics())
        run.write_json("result.json", result.to_dict())
        plot_summary({"summary": result.summary}, run.figure("summary.png"))
    return result


def plot_summary(result: dict, path: str | Path) -> Path:
    """Bar chart (mean ± std over seeds) of velocity error and sample PSNR per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["summary"] if r["arm"] != "teacher (dense)"]
    names = [r["arm"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    axes[0].barh(names, [r["rel_velocity_err"] for r in rows], xerr=[r["rel_velocity_err_std"] for r in rows],
                 color="tab:blue")
    axes[0].set_xlabel("relative velocity error vs teacher (lower is better)")
    axes[1].barh(names, [r["sample_psnr_db"] for r in rows], xerr=[r["sample_psnr_db_std"] for r in rows],
                 color="tab:green")
    axes[1].set_xlabel("sample PSNR vs teacher samples, dB (higher is better)")
    axes[0].invert_yaxis()
    fig.suptitle(f"Sparse students at ≈95% block sparsity, mean ± std over {rows[0]['seeds']} seeds")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
