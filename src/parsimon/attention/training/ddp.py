"""Multi-process training entry point for ``torchrun`` (DDP; NCCL on GPUs, gloo on CPU).

    torchrun --nproc_per_node 2 -m parsimon.attention.training.ddp --teacher teacher.pt --out student.pt \\
        --steps 500 --lr 1e-4 --batch-size 16 --topk 0.03 --topp 0.2 --block-q 16 --block-k 8

Without ``--teacher`` a dense teacher is trained first (``--teacher-steps``) and saved beside ``--out``.
Every rank draws the same global batch and trains on its slice (see :mod:`.loop`), so the result
equals single-process training on the global batch; rank 0 writes the checkpoints.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ..registry import BACKENDS, MODES, OBJECTIVES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="parsimon.attention.training.ddp", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="student checkpoint path")
    p.add_argument("--teacher", default=None, help="dense teacher checkpoint (trained if absent)")
    p.add_argument("--objective", default="distill", choices=OBJECTIVES.names(), help="student loss")
    p.add_argument("--steps", type=int, default=100, help="student steps in total")
    p.add_argument("--teacher-steps", type=int, default=300, help="teacher steps when no --teacher is given")
    p.add_argument("--lr", type=float, default=5e-4, help="student learning rate")
    p.add_argument("--batch-size", type=int, default=8, help="global batch (split across ranks)")
    p.add_argument("--clips", type=int, default=256, help="generated training clips")
    p.add_argument("--topk", type=float, default=0.03, help="Top-k floor as a fraction of key blocks")
    p.add_argument("--topp", type=float, default=0.2, help="Top-p mass threshold")
    p.add_argument("--mode", default="hybrid", choices=MODES.names(), help="mask rule")
    p.add_argument("--block-q", type=int, default=16, help="query block size in tokens")
    p.add_argument("--block-k", type=int, default=8, help="key block size in tokens")
    p.add_argument("--dim", type=int, default=48, help="model width")
    p.add_argument("--depth", type=int, default=2, help="transformer blocks")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--backend", default="auto", choices=BACKENDS.names(), help="sparse attention backend")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--ckpt-every", type=int, default=0, help="checkpoint every k steps (0: at the end)")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import torch.distributed as dist

    from .data import ClipConfig, ClipDataset
    from .loop import TrainConfig, frozen_copy, load_model, train, train_teacher
    from .model import DiTConfig
    from .student import sparse_student

    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    device = torch.device("cpu")
    if distributed:
        use_cuda = torch.cuda.is_available()
        if use_cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    try:
        rank = dist.get_rank() if distributed else 0
        mcfg = DiTConfig(dim=args.dim, depth=args.depth, heads=args.heads)
        data = ClipDataset(args.clips, ClipConfig(frames=mcfg.frames, size=mcfg.size), seed=args.seed)
        out = Path(args.out)
        if args.teacher is not None:
            teacher = load_model(args.teacher)
        else:
            tpath = out.with_name(out.stem + "-teacher.pt")
            if tpath.is_file():
                teacher = load_model(tpath)
            else:
                # Every rank trains the same teacher (same seed, DDP-averaged) — no broadcast needed.
                teacher, _ = train_teacher(data, mcfg, TrainConfig(steps=args.teacher_steps, lr=2e-3,
                                                                   batch_size=args.batch_size, seed=args.seed,
                                                                   warmup=20), checkpoint=tpath, device=device)
        teacher = frozen_copy(teacher).to(device)
        student = sparse_student(teacher, topk=args.topk, topp=args.topp, block_q=args.block_q,
                                 block_k=args.block_k, mode=args.mode, backend=args.backend).to(device)
        cfg = TrainConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed + 7,
                          ckpt_every=args.ckpt_every)
        res = train(student, data, cfg, objective=args.objective,
                    teacher=teacher if args.objective == "distill" else None, checkpoint=out, resume=args.resume)
        if rank == 0:
            print(f"done: {res.steps_done} steps, last loss {res.losses[-1] if res.losses else float('nan'):.5f}, "
                  f"checkpoint {out}")
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
