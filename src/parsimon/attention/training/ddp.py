"""Multi-process training entry point for ``torchrun`` (DDP; NCCL on GPUs, gloo on CPU).

    torchrun --nproc_per_node 2 -m parsimon.attention.training.ddp --teacher teacher.pt --out student.pt \\
        --steps 500 --lr 1e-4 --batch-size 16 --topk 0.03 --topp 0.2 --block-q 16 --block-k 8

Without ``--teacher`` a dense teacher is trained first (``--teacher-steps``) and saved beside ``--out``.
Every rank draws the same global batch and trains on its slice (see :mod:`.loop`), so the result
equals single-process training on the global batch; rank 0 writes the checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import torch

from ..configs import DISTILL_HELP, DistillConfig
from ..registry import BACKENDS, MODES, OBJECTIVES

__all__ = ["main"]


#: DistillConfig fields this entry point does not take (it has no calibration step).
_SKIPPED = ("sparsity",)


def _parser() -> argparse.ArgumentParser:
    """``--out``, ``--resume`` and one option per :class:`~parsimon.attention.configs.DistillConfig` field (its
    default, its help text, and the registry's choices)."""
    p = argparse.ArgumentParser(prog="parsimon.attention.training.ddp", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="student checkpoint path")
    p.add_argument("--resume", action="store_true", help="continue from --out")
    registries = {"mode": MODES, "objective": OBJECTIVES, "backend": BACKENDS}
    for f in dataclasses.fields(DistillConfig):
        if f.name in _SKIPPED:
            continue
        kind = {"int": int, "float": float}.get(str(f.type).split(" ")[0], str)
        choices = registries[f.name].names() if f.name in registries else None
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, choices=choices,
                       help=f"{DISTILL_HELP[f.name]} (default {f.default})".replace("%", "%%"))
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
                teacher, _ = train_teacher(data, mcfg, TrainConfig(steps=args.teacher_steps, lr=args.teacher_lr,
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
        if distributed:  # every rank done (rank 0's checkpoint written) before gloo's threads are torn down
            dist.barrier()
    finally:
        if distributed:
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
