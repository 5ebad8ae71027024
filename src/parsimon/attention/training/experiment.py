"""The model-level comparison (spec §4, §8): a dense teacher and sparse students at matched sparsity.

Arms, all at the same target block sparsity (default 95%):

- ``teacher``: the dense model (reference);
- ``training-free``: the teacher's weights with hybrid sparse attention, no training;
- ``diffusion-ft``: the sparse student fine-tuned with the plain flow-matching loss (the paper's "–VD");
- ``velocity-distill``: the sparse student trained on ‖v_s − v_t‖² (SpargeAttention2's recipe);
- ablations, distilled the same way: ``topk-only`` and ``topp-only`` masks at matched sparsity.

Sparsity is matched by calibrating p (hybrid, Top-p) or k (Top-k) on the teacher's own q/k over an
evaluation batch: block selection only, so it is cheap. Metrics against the teacher: relative velocity
error E‖v_s − v_t‖² / E‖v_t‖² on held-out (x_t, t, y), and the PSNR of the student's Euler samples
against the teacher's samples from the same noise and labels; the realised sparsity is measured
while evaluating.

Block sizes: at 8 frames × 32×32 with 4×4 patches there are N = 512 tokens. The paper's 128×64 blocks
would leave 4×8 blocks, where 95% sparsity is impossible (one block is 12.5% of a row). We use
``block_q=16, block_k=8``: 32 × 64 blocks per head, so one key block is 1.6% of a row. The hybrid arm's
Top-k floor is 2 blocks (k = 0.0325): at 95% a row keeps ≈3.2 of 64 blocks, so the floor is ≈60% of the
budget, as the paper's k = 3% (15 of 512 blocks at 480p, against ≈26 at 95%). With k = 3% our grid would
round to 1 block, which every Top-p prefix already contains, and the union would equal Top-p only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .data import ClipConfig, ClipDataset
from .flow import euler_sample, noisy, sample_t
from .loop import TrainConfig, distill, finetune, frozen_copy, load_model, train_teacher
from .model import DiTConfig, TinyVideoDiT
from .student import sparse_student

__all__ = ["ExperimentConfig", "calibrate", "concentration", "evaluate_student", "mask_overlap", "probe_qk",
           "run_distill_experiment"]


@dataclass(frozen=True)
class ExperimentConfig:
    clips: int = 512
    eval_clips: int = 32
    model: DiTConfig = field(default_factory=lambda: DiTConfig(dim=48, depth=2, heads=4))
    teacher_steps: int = 300
    teacher_lr: float = 2e-3
    tune_steps: int = 100
    tune_lr: float = 5e-4
    batch_size: int = 8
    target_sparsity: float = 0.95
    topk: float = 0.0325  # the hybrid arm's Top-k floor: 2 of 64 key blocks (p is calibrated)
    block_q: int = 16
    block_k: int = 8
    sample_n: int = 8
    sample_steps: int = 10
    ablations: bool = True
    backend: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.target_sparsity < 1:
            raise ValueError(f"target_sparsity must be in (0, 1), got {self.target_sparsity}")
        for name in ("clips", "eval_clips", "batch_size", "sample_n", "sample_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d


class _QKProbe:
    """Dense attention that keeps each layer's (q, k) for calibration."""

    def __init__(self):
        self.qk: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, q, k, v, layer=0):
        self.qk.append((q.detach(), k.detach()))
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def _eval_inputs(cfg: ExperimentConfig) -> dict:
    data = ClipDataset(cfg.eval_clips, ClipConfig(frames=cfg.model.frames, size=cfg.model.size), seed=cfg.seed + 10_000)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    eps = torch.randn(data.x.shape, generator=g)
    t = sample_t(len(data), generator=g)
    noise = torch.randn((cfg.sample_n, *data.x.shape[1:]), generator=g)
    return {"x0": data.x, "y": data.y, "eps": eps, "t": t, "noise": noise, "ys": data.y[: cfg.sample_n]}


@torch.no_grad()
def _layout_sparsity(qk, *, mode: str, topk: float, topp: float, block_q: int, block_k: int) -> float:
    from parsimon.attention.mask import hybrid_block_mask

    kept = total = 0
    for q, k in qk:
        lay = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode)
        kept += lay.kept
        total += lay.kv_counts.numel() * lay.num_k_blocks
    return 1 - kept / total


@torch.no_grad()
def probe_qk(teacher: TinyVideoDiT, ev: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (q, k) when the dense teacher runs on the evaluation batch."""
    probe = _QKProbe()
    saved, teacher.attention = teacher.attention, probe
    try:
        teacher(noisy(ev["x0"], ev["eps"], ev["t"]), ev["t"], ev["y"])
    finally:
        teacher.attention = saved
    return probe.qk


@torch.no_grad()
def concentration(model: TinyVideoDiT, ev: dict, *, mass: float = 0.6, block_q: int, block_k: int) -> float:
    """Block sparsity at which the minimal Top-p prefix reaches ``mass`` of each pooled row (spec §5, Table 2):
    higher means attention is more concentrated. q/k come from ``model`` run with dense attention."""
    qk = probe_qk(model, ev)
    return _layout_sparsity(qk, mode="topp", topk=0.0, topp=mass, block_q=block_q, block_k=block_k)


@torch.no_grad()
def mask_overlap(qk, a: dict, b: dict, *, block_q: int, block_k: int) -> float:
    """Jaccard overlap of two masks' kept blocks (``a``/``b``: mode, topk, topp) over the probed layers."""
    from parsimon.attention.mask import hybrid_block_mask

    inter = union = 0
    for q, k in qk:
        ma = hybrid_block_mask(q, k, block_q=block_q, block_k=block_k, **a).block_mask()
        mb = hybrid_block_mask(q, k, block_q=block_q, block_k=block_k, **b).block_mask()
        inter += int((ma & mb).sum())
        union += int((ma | mb).sum())
    return inter / union if union else 1.0


@torch.no_grad()
def calibrate(teacher: TinyVideoDiT, ev: dict, *, mode: str, target: float, topk: float, block_q: int,
              block_k: int, iters: int = 30, qk=None) -> dict:
    """(topk, topp) giving block sparsity closest to ``target`` on the teacher's q/k over ``ev``.

    hybrid: k fixed, p bisected; topp: p bisected; topk: the k grid point (multiples of 1/N_k) closest.
    """
    qk = probe_qk(teacher, ev) if qk is None else qk
    kw = dict(block_q=block_q, block_k=block_k)
    if mode == "topk":
        nk = -(-qk[0][1].shape[2] // block_k)
        best = min((abs(_layout_sparsity(qk, mode="topk", topk=j / nk, topp=0.0, **kw) - target), j)
                   for j in range(1, nk + 1))
        k = (best[1] + 0.5) / nk
        return {"topk": k, "topp": 0.0, "sparsity": _layout_sparsity(qk, mode="topk", topk=k, topp=0.0, **kw)}
    lo, hi = 0.0, 1.0  # sparsity decreases as p grows
    kk = topk if mode == "hybrid" else 0.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if _layout_sparsity(qk, mode=mode, topk=kk, topp=mid, **kw) > target:
            lo = mid
        else:
            hi = mid
    cands = [(abs(_layout_sparsity(qk, mode=mode, topk=kk, topp=p, **kw) - target), p) for p in (lo, hi)]
    p = min(cands)[1]
    return {"topk": kk, "topp": p, "sparsity": _layout_sparsity(qk, mode=mode, topk=kk, topp=p, **kw)}


@torch.no_grad()
def evaluate_student(model: TinyVideoDiT, teacher: TinyVideoDiT, ev: dict, *, teacher_samples: torch.Tensor,
                     sample_steps: int) -> dict:
    """Velocity error and sample PSNR against the teacher, and realised sparsity."""
    attn = model.attention
    if hasattr(attn, "reset"):
        attn.reset()
    model.eval()
    xt = noisy(ev["x0"], ev["eps"], ev["t"])
    vt = teacher(xt, ev["t"], ev["y"])
    vs = model(xt, ev["t"], ev["y"])
    sparsity = getattr(attn, "sparsity", 0.0)
    rel_vel = float((vs - vt).square().mean() / vt.square().mean())
    flow_target = ev["eps"] - ev["x0"]
    fm_loss = float((vs - flow_target).square().mean())
    samples = euler_sample(model, ev["noise"], ev["ys"], steps=sample_steps)
    mse = float((samples.clamp(-1, 1) - teacher_samples.clamp(-1, 1)).square().mean())
    psnr = 10 * math.log10(4.0 / mse) if mse > 0 else math.inf  # signal range [-1, 1]: peak-to-peak 2
    return {"sparsity": float(sparsity), "rel_velocity_err": rel_vel, "flow_loss": fm_loss,
            "sample_mse": mse, "sample_psnr_db": psnr}


def run_distill_experiment(cfg: ExperimentConfig = ExperimentConfig(), *, out_dir: str | Path | None = None,
                           progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train (or load from ``out_dir/teacher.pt``) the teacher, run every arm, return the results dict."""
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    clip_cfg = ClipConfig(frames=cfg.model.frames, size=cfg.model.size)
    data = ClipDataset(cfg.clips, clip_cfg, seed=cfg.seed)
    ev = _eval_inputs(cfg)
    out = Path(out_dir) if out_dir is not None else None
    tpath = out / "teacher.pt" if out is not None else None

    def tick(stage: str, total: int):
        return (lambda s, _loss: progress(stage, s, total)) if progress is not None else None

    tcfg = TrainConfig(steps=cfg.teacher_steps, lr=cfg.teacher_lr, batch_size=cfg.batch_size, seed=cfg.seed,
                       warmup=20, ckpt_every=max(50, cfg.teacher_steps // 4))
    if tpath is not None and tpath.is_file():
        teacher = load_model(tpath)
        from .loop import load_checkpoint

        st = load_checkpoint(tpath)
        if st["step"] < cfg.teacher_steps or st.get("model_cfg") != cfg.model.to_dict():
            teacher, _ = train_teacher(data, cfg.model, tcfg, checkpoint=tpath, resume=st.get("model_cfg") ==
                                       cfg.model.to_dict(), on_step=tick("teacher", cfg.teacher_steps))
        t_res_losses = st["losses"]
    else:
        teacher, res = train_teacher(data, cfg.model, tcfg, checkpoint=tpath, on_step=tick("teacher", cfg.teacher_steps))
        t_res_losses = res.losses
    teacher = frozen_copy(teacher)
    t_teacher = time.perf_counter() - t_start
    with torch.no_grad():
        teacher_samples = euler_sample(teacher, ev["noise"], ev["ys"], steps=cfg.sample_steps)
        xt = noisy(ev["x0"], ev["eps"], ev["t"])
        teacher_flow = float((teacher(xt, ev["t"], ev["y"]) - (ev["eps"] - ev["x0"])).square().mean())

    kw = dict(block_q=cfg.block_q, block_k=cfg.block_k)
    qk = probe_qk(teacher, ev)
    cal = {m: calibrate(teacher, ev, mode=m, target=cfg.target_sparsity, topk=cfg.topk, qk=qk, **kw)
           for m in (("hybrid", "topk", "topp") if cfg.ablations else ("hybrid",))}
    overlap = {}
    if cfg.ablations:
        hyb = {"mode": "hybrid", "topk": cal["hybrid"]["topk"], "topp": cal["hybrid"]["topp"]}
        for m in ("topk", "topp"):
            overlap[f"hybrid vs {m}"] = mask_overlap(qk, hyb, {"mode": m, "topk": cal[m]["topk"],
                                                               "topp": cal[m]["topp"]}, **kw)
    arms: list[dict] = [{"arm": "teacher (dense)", "mode": "dense", "training": "-", "sparsity": 0.0,
                         "rel_velocity_err": 0.0, "flow_loss": teacher_flow, "sample_mse": 0.0,
                         "sample_psnr_db": math.inf, "seconds": t_teacher}]

    def student(mode: str):
        c = cal[mode]
        return sparse_student(teacher, topk=c["topk"], topp=c["topp"], mode=mode, backend=cfg.backend, **kw)

    plan = [("training-free", "hybrid", None), ("diffusion-ft", "hybrid", "diffusion"),
            ("velocity-distill", "hybrid", "distill")]
    if cfg.ablations:
        plan += [("topk-only, training-free", "topk", None), ("topk-only, distill", "topk", "distill"),
                 ("topp-only, training-free", "topp", None), ("topp-only, distill", "topp", "distill")]
    conc = {"teacher (dense)": concentration(teacher, ev, **kw)}
    for name, mode, how in plan:
        t0 = time.perf_counter()
        s = student(mode)
        kw_t = dict(steps=cfg.tune_steps, lr=cfg.tune_lr, batch_size=cfg.batch_size, seed=cfg.seed + 7,
                    on_step=tick(name, cfg.tune_steps))
        if how == "diffusion":
            finetune(s, data, **kw_t)
        elif how == "distill":
            distill(s, teacher, data, **kw_t)
        row = evaluate_student(s, teacher, ev, teacher_samples=teacher_samples, sample_steps=cfg.sample_steps)
        if mode == "hybrid":
            conc[name] = concentration(s, ev, **kw)
        row.update(arm=name, mode=mode, training=how or "none", topk=cal[mode]["topk"], topp=cal[mode]["topp"],
                   calibrated_sparsity=cal[mode]["sparsity"], seconds=time.perf_counter() - t0)
        arms.append(row)
    return {"config": cfg.to_dict(), "calibration": cal, "mask_overlap": overlap,
            "concentration_60": conc, "arms": arms, "teacher_losses": t_res_losses[-20:],
            "tokens": cfg.model.tokens, "seconds": time.perf_counter() - t_start}


def _summarise(runs: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each arm's metrics."""
    import statistics

    out = []
    for i, arm in enumerate(runs[0]["arms"]):
        row = {"arm": arm["arm"], "seeds": len(runs)}
        for key in ("sparsity", "rel_velocity_err", "sample_psnr_db", "flow_loss"):
            vals = [r["arms"][i][key] for r in runs]
            finite = [v for v in vals if math.isfinite(v)]
            row[key] = statistics.fmean(finite) if finite else math.inf
            row[key + "_std"] = statistics.stdev(finite) if len(finite) > 1 else 0.0
        out.append(row)
    return out


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


def main(argv: list[str] | None = None) -> None:
    """``python -m parsimon.attention.training.experiment --seeds 0 1 2 --out results.json`` (quick sizes)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="Distillation arms at matched sparsity over several seeds.")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--teacher-steps", type=int, default=250)
    ap.add_argument("--tune-steps", type=int, default=80)
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write")
    ap.add_argument("--cache", type=Path, default=None, help="folder for per-seed teacher checkpoints")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    runs = []
    for seed in args.seeds:
        cfg = ExperimentConfig(teacher_steps=args.teacher_steps, tune_steps=args.tune_steps, seed=seed)
        cache = args.cache / f"seed{seed}" if args.cache is not None else None
        runs.append(run_distill_experiment(cfg, out_dir=cache))
        print(f"seed {seed}: {runs[-1]['seconds']:.0f} s", flush=True)
    result = {"command": "python -m parsimon.attention.training.experiment " + " ".join(argv or []),
              "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threads": 1,
              "summary": _summarise(runs), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    plot_summary(result, args.out.with_suffix(".png"))
    for row in result["summary"]:
        print(f"{row['arm']:>26}: sparsity {row['sparsity']:.3f}  vel.err {row['rel_velocity_err']:.4f} "
              f"± {row['rel_velocity_err_std']:.4f}  PSNR {row['sample_psnr_db']:.2f} ± {row['sample_psnr_db_std']:.2f}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
