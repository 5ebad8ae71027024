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
from pathlib import Path

import torch

from ..configs import ExperimentConfig
from .data import ClipConfig, ClipDataset
from .flow import euler_sample, noisy, sample_t
from .loop import TrainConfig, distill, finetune, frozen_copy, load_model, train_teacher
from .model import TinyVideoDiT
from .student import sparse_student

__all__ = ["ExperimentConfig", "StageBars", "calibrate", "concentration", "evaluate_student", "mask_overlap", "probe_qk",
           "run_distill_experiment"]


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


class StageBars:
    """A ``progress(stage, step, total)`` callback with one bar per stage, each opened from
    ``factory(description, total=...)`` (a context manager: ``run.progress`` or ``ReproContext.progress``)."""

    def __init__(self, factory: Callable, prefix: str = "") -> None:
        self.factory, self.prefix = factory, prefix
        self._open: dict[str, tuple] = {}

    def __call__(self, stage: str, step: int, total: int) -> None:
        entry = self._open.get(stage)
        if entry is None:
            cm = self.factory(f"{self.prefix}{stage}", total=total)
            entry = self._open[stage] = (cm, cm.__enter__())
        entry[1].advance()
        if step >= total:
            self._open.pop(stage)[0].__exit__(None, None, None)

    def close(self) -> None:
        """End the bars of stages that did not reach their total."""
        while self._open:
            self._open.popitem()[1][0].__exit__(None, None, None)


def run_distill_experiment(cfg: ExperimentConfig = ExperimentConfig(), *, out_dir: str | Path | None = None,
                           progress: Callable[[str, int, int], None] | None = None, run=None) -> dict:
    """Train (or load from ``out_dir/teacher.pt``) the teacher, run every arm, return the results dict.

    ``progress(stage, step, total)`` is called after every training step. With ``run`` (a
    :class:`parsimon.run.Run`) each arm's metrics are logged to its ``events.jsonl`` and, without
    ``progress``, every stage gets a bar of the run.
    """
    bars = StageBars(run.progress, prefix=f"seed {cfg.seed}: ") if run is not None and progress is None else None
    try:
        return _experiment(cfg, out_dir, bars or progress, run)
    finally:
        if bars is not None:
            bars.close()


def _experiment(cfg: ExperimentConfig, out_dir, progress, run) -> dict:
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
        if run is not None:
            run.log(len(arms) - 1, seed=cfg.seed, **row)
    return {"config": cfg.to_dict(), "calibration": cal, "mask_overlap": overlap,
            "concentration_60": conc, "arms": arms, "teacher_losses": t_res_losses[-20:],
            "tokens": cfg.model.tokens, "seconds": time.perf_counter() - t_start}


def main(argv: list[str] | None = None) -> None:
    """``python -m parsimon.attention.training.experiment ...``: the same as ``parsimon attention experiment``."""
    import sys

    from parsimon.cli import app

    app(["attention", "experiment", *(sys.argv[1:] if argv is None else argv)], prog_name="parsimon")


if __name__ == "__main__":
    main()
