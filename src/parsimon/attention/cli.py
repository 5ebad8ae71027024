"""``parsimon attention``: mask statistics, velocity-distillation fine-tuning, a quick speed check.

Only light modules are imported here; torch and the attention modules load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

__all__ = ["COMMANDS", "app"]

app = typer.Typer(
    help="SpargeAttention2: hybrid Top-k ∪ Top-p block-sparse attention — mask statistics, velocity "
    "distillation of a sparse video DiT, and a quick CPU/GPU speed check.",
    no_args_is_help=True,
)
COMMANDS = {"attention": app}

_MODES = ("hybrid", "topk", "topp")
_ROWS = ("uniform", "skewed", "random")


def _check(name: str, value, choices) -> None:
    if value not in choices:
        raise typer.BadParameter(f"must be one of {list(choices)}, got {value!r}", param_hint=name)


def _frac(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise typer.BadParameter(f"must be a fraction in [0, 1], got {value}", param_hint=name)


@app.command("mask-stats")
def mask_stats(
    n: int = typer.Option(2048, "--n", min=1, help="Sequence length (tokens)."),
    heads: int = typer.Option(4, "--heads", min=1),
    dim: int = typer.Option(64, "--dim", min=1, help="Head dimension."),
    topk: float = typer.Option(0.03, "--topk", help="Top-k as a fraction of key blocks."),
    topp: float = typer.Option(0.2, "--topp", help="Top-p mass threshold."),
    block_q: int = typer.Option(128, "--block-q", min=1),
    block_k: int = typer.Option(64, "--block-k", min=1),
    mode: str = typer.Option("hybrid", "--mode", help=f"One of {', '.join(_MODES)}."),
    rows: str = typer.Option("skewed", "--rows", help=f"Generated inputs: {', '.join(_ROWS)}."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Build the hybrid block mask on generated q/k and report sparsity, kept blocks, retained mass and
    (for N ≤ 8192) the relative L1 error against dense attention."""
    _check("--mode", mode, _MODES)
    _check("--rows", rows, _ROWS)
    _frac("--topk", topk)
    _frac("--topp", topp)
    import torch

    from parsimon.attention import hybrid_block_mask, sparse_attention
    from parsimon.attention.training.operator_study import make_rows, relative_l1

    if rows == "random":
        g = torch.Generator().manual_seed(seed)
        q, k, v = (torch.randn(1, heads, n, dim, generator=g) for _ in range(3))
    else:
        q, k, v = make_rows(rows, h=heads, n=n, d=dim, block_k=block_k, seed=seed)
    lay = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode)
    counts = lay.kv_counts.float()
    out = {"n": n, "heads": heads, "dim": dim, "mode": mode, "rows": rows, "topk": topk, "topp": topp,
           "blocks": [lay.num_q_blocks, lay.num_k_blocks], "sparsity": lay.sparsity,
           "kept_per_row": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
           "retained_mass": {"mean": float(lay.retained_mass.mean()), "min": float(lay.retained_mass.min())}}
    if n <= 8192:
        with torch.no_grad():
            dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            out["rel_l1_vs_dense"] = relative_l1(sparse_attention(q, k, v, lay, topk=topk, topp=topp), dense)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for key, val in out.items():
        typer.echo(f"{key:>16}: {val}")


@app.command("distill")
def distill_cmd(
    out: Path = typer.Option(Path("attention-distill"), "--out", help="Output folder (checkpoints, config, eval)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoints in --out."),
    teacher: Path = typer.Option(None, "--teacher", help="Dense teacher checkpoint (trained into --out if absent)."),
    teacher_steps: int = typer.Option(300, "--teacher-steps", min=0),
    steps: int = typer.Option(100, "--steps", min=0, help="Distillation steps (total, including resumed ones)."),
    lr: float = typer.Option(5e-4, "--lr"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    objective: str = typer.Option("distill", "--objective", help="distill (velocity) or diffusion (plain)."),
    topk: float = typer.Option(0.0325, "--topk"),
    topp: float = typer.Option(0.06, "--topp"),
    sparsity: float = typer.Option(None, "--sparsity", help="Target block sparsity in (0, 1): calibrate p (k for "
                                   "--mode topk) on the teacher's attention instead of using --topp."),
    mode: str = typer.Option("hybrid", "--mode", help=f"One of {', '.join(_MODES)}."),
    block_q: int = typer.Option(16, "--block-q", min=1),
    block_k: int = typer.Option(8, "--block-k", min=1),
    clips: int = typer.Option(512, "--clips", min=1, help="Generated training clips."),
    dim: int = typer.Option(48, "--dim", min=2),
    depth: int = typer.Option(2, "--depth", min=1),
    heads: int = typer.Option(4, "--heads", min=1),
    ckpt_every: int = typer.Option(50, "--ckpt-every", min=0),
    backend: str = typer.Option("auto", "--backend"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train (or load) a dense tiny video DiT, then fine-tune its sparse copy by velocity distillation.

    Multi-GPU/multi-process: `torchrun --nproc_per_node N -m parsimon.attention.training.ddp --out ...`.
    """
    _check("--mode", mode, _MODES)
    _check("--objective", objective, ("distill", "diffusion"))
    _frac("--topk", topk)
    _frac("--topp", topp)
    if not lr > 0:
        raise typer.BadParameter(f"must be > 0, got {lr}", param_hint="--lr")
    if sparsity is not None and not 0 < sparsity < 1:
        raise typer.BadParameter(f"must be in (0, 1), got {sparsity}", param_hint="--sparsity")
    if teacher is not None and not teacher.is_file():
        raise typer.BadParameter(f"no such file: {teacher}", param_hint="--teacher")
    import torch

    from parsimon.attention.training import (
        ClipConfig,
        ClipDataset,
        DiTConfig,
        TrainConfig,
        frozen_copy,
        load_model,
        sparse_student,
        train,
        train_teacher,
    )
    from parsimon.attention.training.experiment import (
        ExperimentConfig,
        _eval_inputs,
        calibrate,
        evaluate_student,
    )
    from parsimon.attention.training.flow import euler_sample
    from parsimon.progress import standard_progress

    torch.manual_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    mcfg = DiTConfig(dim=dim, depth=depth, heads=heads)
    data = ClipDataset(clips, ClipConfig(frames=mcfg.frames, size=mcfg.size), seed=seed)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in locals().items()
              if k in ("teacher", "teacher_steps", "steps", "lr", "batch_size", "objective", "topk", "topp", "sparsity",
                       "mode",
                       "block_q", "block_k", "clips", "dim", "depth", "heads", "seed", "backend")}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    with standard_progress() as progress:
        if teacher is not None:
            tmodel = load_model(teacher)
        else:
            tpath = out / "teacher.pt"
            task = progress.add_task("teacher (dense)", total=teacher_steps)
            tmodel, _ = train_teacher(data, mcfg, TrainConfig(steps=teacher_steps, lr=2e-3, batch_size=batch_size,
                                                              seed=seed, warmup=20, ckpt_every=ckpt_every),
                                      checkpoint=tpath, resume=resume,
                                      on_step=lambda s, _l: progress.update(task, completed=s))
        tmodel = frozen_copy(tmodel)
        ecfg = ExperimentConfig(model=mcfg, eval_clips=16, sample_n=4, sample_steps=10, seed=seed)
        ev = _eval_inputs(ecfg)
        if sparsity is not None:
            cal = calibrate(tmodel, ev, mode=mode, target=sparsity, topk=topk, block_q=block_q, block_k=block_k)
            topk, topp = cal["topk"], cal["topp"]
            config.update(calibrated=cal)
            (out / "config.json").write_text(json.dumps(config, indent=2))
        student = sparse_student(tmodel, topk=topk, topp=topp, block_q=block_q, block_k=block_k, mode=mode,
                                 backend=backend)
        task = progress.add_task(f"student ({objective})", total=steps)
        res = train(student, data, TrainConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed + 7,
                                               ckpt_every=ckpt_every),
                    objective=objective, teacher=tmodel if objective == "distill" else None,
                    checkpoint=out / "student.pt", resume=resume,
                    on_step=lambda s, _l: progress.update(task, completed=s))
    with torch.no_grad():
        ts = euler_sample(tmodel, ev["noise"], ev["ys"], steps=ecfg.sample_steps)
    metrics = evaluate_student(student, tmodel, ev, teacher_samples=ts, sample_steps=ecfg.sample_steps)
    metrics.update(steps=res.steps_done, last_loss=res.losses[-1] if res.losses else None)
    (out / "eval.json").write_text(json.dumps(metrics, indent=2))
    typer.echo(json.dumps(metrics, indent=2))
    typer.echo(f"student checkpoint: {out / 'student.pt'}")


@app.command("bench")
def bench(
    n: int = typer.Option(4096, "--n", min=1),
    heads: int = typer.Option(8, "--heads", min=1),
    dim: int = typer.Option(64, "--dim", min=1),
    topk: float = typer.Option(0.03, "--topk"),
    topp: float = typer.Option(0.1, "--topp"),
    block_q: int = typer.Option(128, "--block-q", min=1),
    block_k: int = typer.Option(64, "--block-k", min=1),
    repeats: int = typer.Option(3, "--repeats", min=1),
    backend: str = typer.Option("auto", "--backend"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Quick timing: dense SDPA vs sparse attention (mask construction included), median of --repeats.

    The full benchmark (peers, fwd+bwd, correctness check, JSON and plot) is benchmarks/attention_bench.py.
    """
    _frac("--topk", topk)
    _frac("--topp", topp)
    _check("--device", device, ("auto", "cpu", "cuda"))
    import statistics
    import time

    import torch

    from parsimon.attention import hybrid_block_mask, sparse_attention

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dev == "cuda" and not torch.cuda.is_available():
        raise typer.BadParameter("no CUDA device available", param_hint="--device")
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    from parsimon.attention.training.operator_study import make_rows

    q, k, v = (t.to(dev, dtype) for t in make_rows("skewed", h=heads, n=n, d=dim, block_k=block_k))

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        fn()
        sync()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    def sparse():
        lay = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k)
        return sparse_attention(q, k, v, lay, topk=topk, topp=topp, backend=backend)

    with torch.no_grad():
        lay = hybrid_block_mask(q, k, topk=topk, topp=topp, block_q=block_q, block_k=block_k)
        t_dense = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
        t_sparse = timed(sparse)
    result = {"device": dev, "dtype": str(dtype), "shape": [1, heads, n, dim], "sparsity": lay.sparsity,
              "dense_ms": t_dense * 1e3, "sparse_incl_mask_ms": t_sparse * 1e3, "speedup": t_dense / t_sparse}
    typer.echo(json.dumps(result, indent=2))
