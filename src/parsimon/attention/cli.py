"""``parsimon attention``: mask statistics, a quick speed check, velocity distillation and the experiment.

Only light modules are imported here (the registries and the frozen configs); torch and the attention
modules load inside the commands. ``distill`` and ``experiment`` are :mod:`parsimon.run` runs; every
command prints text, or JSON with ``--json``.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path

import typer

from parsimon.attention.configs import DISTILL_HELP, DistillConfig, ExperimentConfig
from parsimon.attention.registry import (
    BACKENDS,
    DEVICES,
    MODES,
    OBJECTIVES,
    PAPER_BLOCK_K,
    PAPER_BLOCK_Q,
    ROWS,
    TIERS,
)
from parsimon.cliutil import (
    choices,
    config_option,
    emit,
    json_option,
    out_option,
    resolve_config,
    resume_option,
    seed_option,
)
from parsimon.errors import ConfigError

__all__ = ["COMMANDS", "app"]

app = typer.Typer(
    help="SpargeAttention2: hybrid Top-k ∪ Top-p block-sparse attention — mask statistics, a speed check, "
    "velocity distillation of a sparse video DiT and the distillation experiment over seeds. Full benchmark: "
    "python benchmarks/attention_bench.py; kernel compile check without a GPU: "
    "python -m parsimon.attention.kernels.compile_check --arch 90.",
    no_args_is_help=True,
)
COMMANDS = {"attention": app}

BackendName = choices(BACKENDS)
DeviceName = choices(DEVICES)
ModeName = choices(MODES)
ObjectiveName = choices(OBJECTIVES)
RowsName = choices(ROWS)

# mask-stats and bench: the paper's balanced tier and block sizes, one default for both commands
TOPK, TOPP = TIERS.get("balanced")
SEQ_LEN, HEADS, DIM = 4096, 8, 64
_D = DistillConfig()
_E = ExperimentConfig()


def _renamed_n(value: int | None) -> None:
    if value is not None:
        raise ConfigError("`--n` was renamed `--seq-len` (attention's sequence length); e.g. --seq-len "
                          f"{value}")


def _frac(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"`{name}` must be a fraction in [0, 1], got {value}")


#: The options mask-stats and bench share, declared once so that their defaults cannot drift apart:
#: name -> (annotation, default, flag, extra keywords, help).
SHAPE_OPTIONS = {
    "seq_len": (int, SEQ_LEN, "--seq-len", {"min": 1}, "Sequence length N in tokens (queries and keys)."),
    "heads": (int, HEADS, "--heads", {"min": 1}, "Attention heads."),
    "dim": (int, DIM, "--dim", {"min": 1}, "Head dimension (even for skewed rows)."),
    "topk": (float, TOPK, "--topk", {}, "Top-k: fraction of key blocks every row keeps at least."),
    "topp": (float, TOPP, "--topp", {}, "Top-p: pooled attention mass every row keeps at least."),
    "block_q": (int, PAPER_BLOCK_Q, "--block-q", {"min": 1}, "Query block size in tokens."),
    "block_k": (int, PAPER_BLOCK_K, "--block-k", {"min": 1}, "Key block size in tokens."),
    "mode": (ModeName, "hybrid", "--mode", {}, "Mask rule: Top-k ∪ Top-p, or one of them."),
    "as_json": (bool, False, "--json", {}, "Print the result as JSON instead of text."),
    "n": (int, None, "--n", {"hidden": True}, "Renamed --seq-len."),
}


def _shape_options(fn):
    """Give ``fn`` the :data:`SHAPE_OPTIONS` (after its own options); it receives them as one dict ``shape``
    (checked: fractions in [0, 1], the renamed ``--n`` refused)."""
    own = [p for p in inspect.signature(fn).parameters.values() if p.name != "shape"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann,
                                default=typer.Option(default, flag, help=text, **kw))
              for name, (ann, default, flag, kw, text) in SHAPE_OPTIONS.items()]

    @functools.wraps(fn)
    def command(**values):
        shape = {name: values.pop(name) for name in SHAPE_OPTIONS}
        _renamed_n(shape.pop("n"))
        _frac("--topk", shape["topk"])
        _frac("--topp", shape["topp"])
        return fn(shape=shape, **values)

    command.__signature__ = inspect.Signature(own + shared)
    del command.__wrapped__  # typer must read the signature above, not fn's
    return command


@app.command("mask-stats")
@_shape_options
def mask_stats(
    shape: dict,
    rows: RowsName = typer.Option("skewed", "--rows", help="Generated q/k/v whose pooled rows are of this kind."),
    seed: int = seed_option(),
) -> None:
    """Build the hybrid block mask on generated q/k and report sparsity, kept blocks, retained mass and
    (for N ≤ 8192) the relative L1 error against dense attention."""
    n, heads, dim = shape["seq_len"], shape["heads"], shape["dim"]
    if rows == "skewed" and dim % 2:
        raise ConfigError(f"`--dim` must be even for --rows skewed (sine/cosine pairs), got {dim}")
    import torch

    from parsimon.attention import hybrid_block_mask, sparse_attention
    from parsimon.attention.training.operator_study import make_rows, relative_l1

    q, k, v = make_rows(rows, h=heads, n=n, d=dim, block_k=shape["block_k"], seed=seed)
    lay = hybrid_block_mask(q, k, **_mask_kw(shape))
    counts = lay.kv_counts.float()
    out = {"seq_len": n, "heads": heads, "dim": dim, "mode": shape["mode"], "rows": rows, "topk": shape["topk"],
           "topp": shape["topp"], "blocks": [lay.num_q_blocks, lay.num_k_blocks], "sparsity": lay.sparsity,
           "kept_per_row": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
           "retained_mass": {"mean": float(lay.retained_mass.mean()), "min": float(lay.retained_mass.min())}}
    if n <= 8192:
        with torch.no_grad():
            dense = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            out["rel_l1_vs_dense"] = relative_l1(sparse_attention(q, k, v, lay), dense)
    emit(out, shape["as_json"])


def _mask_kw(shape: dict) -> dict:
    return {k: shape[k] for k in ("topk", "topp", "block_q", "block_k", "mode")}


@app.command("bench")
@_shape_options
def bench(
    shape: dict,
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per function (the median is shown)."),
    backend: BackendName = typer.Option("auto", "--backend", help="Sparse attention backend."),
    device: DeviceName = typer.Option("auto", "--device", help="Where to run."),
) -> None:
    """Quick timing: dense SDPA vs sparse attention (mask construction included), median of --repeats, on
    skewed rows. The full benchmark (peers, fwd+bwd, correctness check, JSON and plot) is
    benchmarks/attention_bench.py."""
    n, heads, dim = shape["seq_len"], shape["heads"], shape["dim"]
    if dim % 2:
        raise ConfigError(f"`--dim` must be even (the inputs are skewed rows: sine/cosine pairs), got {dim}")
    import statistics
    import time

    import torch

    from parsimon.attention import hybrid_block_mask, sparse_attention
    from parsimon.attention.training.operator_study import make_rows

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if dev == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`--device` cuda: no CUDA device available")
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    q, k, v = (t.to(dev, dtype) for t in make_rows("skewed", h=heads, n=n, d=dim, block_k=shape["block_k"]))
    kw = _mask_kw(shape)

    def timed(fn):
        fn()
        if dev == "cuda":
            torch.cuda.synchronize()
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            if dev == "cuda":
                torch.cuda.synchronize()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts)

    with torch.no_grad():
        lay = hybrid_block_mask(q, k, **kw)
        t_dense = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
        t_sparse = timed(lambda: sparse_attention(q, k, v, hybrid_block_mask(q, k, **kw), backend=backend))
    emit({"device": dev, "dtype": str(dtype), "shape": [1, heads, n, dim], "backend": backend,
          "sparsity": lay.sparsity, "dense_ms": t_dense * 1e3, "sparse_incl_mask_ms": t_sparse * 1e3,
          "speedup": t_dense / t_sparse}, shape["as_json"])


def _dh(name: str) -> str:
    """The distill option's help: the config field's text and its default."""
    default = getattr(_D, name)
    return DISTILL_HELP[name] + (f" Default {default}." if default is not None else "")


@app.command("distill")
def distill_cmd(
    out: Path = out_option("attention distill"),
    resume: bool = resume_option(),
    config: Path = config_option(),
    seed: int = seed_option(None),
    teacher: Path = typer.Option(None, "--teacher", help=_dh("teacher")),
    teacher_steps: int = typer.Option(None, "--teacher-steps", min=0, help=_dh("teacher_steps")),
    teacher_lr: float = typer.Option(None, "--teacher-lr", help=_dh("teacher_lr")),
    steps: int = typer.Option(None, "--steps", min=0, help=_dh("steps")),
    lr: float = typer.Option(None, "--lr", help=_dh("lr")),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help=_dh("batch_size")),
    objective: ObjectiveName = typer.Option(None, "--objective", help=_dh("objective")),
    topk: float = typer.Option(None, "--topk", help=_dh("topk")),
    topp: float = typer.Option(None, "--topp", help=_dh("topp")),
    sparsity: float = typer.Option(None, "--sparsity", help=_dh("sparsity")),
    mode: ModeName = typer.Option(None, "--mode", help=_dh("mode")),
    block_q: int = typer.Option(None, "--block-q", min=1, help=_dh("block_q")),
    block_k: int = typer.Option(None, "--block-k", min=1, help=_dh("block_k")),
    clips: int = typer.Option(None, "--clips", min=1, help=_dh("clips")),
    dim: int = typer.Option(None, "--dim", min=2, help=_dh("dim")),
    depth: int = typer.Option(None, "--depth", min=1, help=_dh("depth")),
    heads: int = typer.Option(None, "--heads", min=1, help=_dh("heads")),
    ckpt_every: int = typer.Option(None, "--ckpt-every", min=0, help=_dh("ckpt_every")),
    backend: BackendName = typer.Option(None, "--backend", help=_dh("backend")),
    as_json: bool = json_option(),
) -> None:
    """Train (or load) a dense tiny video DiT, then fine-tune its sparse copy by velocity distillation.

    Multi-GPU/multi-process: `torchrun --nproc_per_node N -m parsimon.attention.training.ddp --out ...`.
    """
    values = {k: v for k, v in locals().items() if k not in ("out", "resume", "config", "as_json")}
    values["teacher"] = str(teacher) if teacher is not None else None
    cfg = resolve_config(DistillConfig(), config, values)
    from parsimon.run import start_run

    with start_run("attention distill", cfg, out_dir=out, seed=cfg.seed, resume=resume) as run:
        from parsimon.attention.training.recipe import distill_recipe

        res = distill_recipe(cfg, run=run)
    emit({**res.metrics(), "run": str(run.dir)}, as_json)


@app.command("experiment")
def experiment_cmd(
    out: Path = out_option("attention experiment"),
    resume: bool = resume_option(),
    config: Path = config_option(),
    seed: list[int] = typer.Option(None, "--seed", help="Random seed; repeat it for several seeds (default 0)."),
    teacher_steps: int = typer.Option(None, "--teacher-steps", min=0,
                                      help=f"Teacher training steps (default {_E.teacher_steps})."),
    tune_steps: int = typer.Option(None, "--tune-steps", min=0,
                                   help=f"Steps of every trained sparse arm (default {_E.tune_steps})."),
    target_sparsity: float = typer.Option(None, "--target-sparsity",
                                          help=f"Block sparsity every arm is calibrated to (default "
                                               f"{_E.target_sparsity})."),
    ablations: bool = typer.Option(None, "--ablations/--no-ablations",
                                   help="Also run the Top-k-only and Top-p-only arms (default on)."),
    backend: BackendName = typer.Option(None, "--backend", help=f"Sparse attention backend (default {_E.backend})."),
    seeds_old: list[int] = typer.Option(None, "--seeds", hidden=True, help="Renamed --seed (repeatable)."),
    as_json: bool = json_option(),
) -> None:
    """The model-level comparison (teacher, training-free, diffusion fine-tuning, velocity distillation and the
    Top-k/Top-p ablations at matched sparsity) over one or more seeds: mean ± std per arm."""
    from parsimon.run import start_run

    if seeds_old:
        raise ConfigError("`--seeds` was renamed `--seed` (repeat it: --seed 0 --seed 1 --seed 2)")
    seeds = list(seed or [0])
    values = {"teacher_steps": teacher_steps, "tune_steps": tune_steps, "target_sparsity": target_sparsity,
              "ablations": ablations, "backend": backend}
    cfg = resolve_config(ExperimentConfig(), config, values)
    identity = {k: v for k, v in cfg.to_dict().items() if k != "seed"}  # each seed replaces it
    with start_run("attention experiment", {"seeds": seeds, "experiment": identity}, out_dir=out, seed=seeds[0],
                   resume=resume) as run:
        import torch

        from parsimon.attention.training.study import run_seeds

        torch.set_num_threads(1)
        res = run_seeds(cfg, seeds, run=run)
    rows = {r["arm"]: {k: r[k] for k in ("sparsity", "rel_velocity_err", "rel_velocity_err_std", "sample_psnr_db",
                                         "sample_psnr_db_std")} for r in res.summary}
    emit({"seeds": seeds, "arms": rows, "run": str(run.dir)}, as_json)
