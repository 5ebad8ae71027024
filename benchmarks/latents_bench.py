"""Unified Latents targets: bits/pixel monotone in c_lf, UL vs KL-AE at equal FLOPs, training throughput.

    python benchmarks/latents_bench.py                       # everything, into runs/latents-bench-<stamp>/
    python benchmarks/latents_bench.py --reuse reports/X/latents   # sweep + FLOPs parts from a reproduction
    python benchmarks/latents_bench.py --only throughput     # the speed part alone (a minute)
    python benchmarks/latents_bench.py --save                # also write benchmarks/results/latents.json/.png

1. **Bits/pixel against c_lf**: the quick reproduction's sweep (c_lf 1.3–2.1 × seeds, the settings of
   ``parsimon.latents.reproduce.SETTINGS["quick"]``): the means must rise and consecutive error bars
   (± standard error over seeds) must not overlap.
2. **UL vs KL-AE at equal FLOPs**: generation FD of the same base model on UL latents and on the SD-style
   KL-autoencoder latents at the largest equal stage-2 FLOPs budget (reported either way).
3. **Throughput**: images/s of UL's joint training step (encoder + prior + decoder, forward, backward, Adam)
   against a plain diffusers ``UNet2DModel`` denoiser of the decoder's size trained with the same batch;
   the two are timed alternately (side by side), median of several repeats, one thread. Target: the joint
   step costs at most 3× one denoiser step. Done for the UNet decoder (the comparison the target names) and,
   for information, for the MLP decoder the CPU runs use against an MLP denoiser of the decoder's size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

PARTS = ("sweep", "flops", "throughput")


def _sweep_and_flops(out: Path, reuse: Path | None, seeds: tuple[int, ...] | None) -> dict:
    """Run (or read back) the reproduction's sweep and FD-vs-FLOPs jobs, return their raw results."""
    import parsimon.latents.reproduce as R
    from parsimon.report.section import ReproContext

    if reuse is not None:
        raw = reuse / "latents_reproduce.json"
        if not raw.is_file():
            sys.exit(f"--reuse {reuse}: no latents_reproduce.json (give a report's latents/ folder)")
        data = json.loads(raw.read_text())
        data["source"] = f"reused from {raw}"
        return data
    s = dict(R.SETTINGS["quick"])
    if seeds:
        s["seeds"] = seeds
    ctx = ReproContext(out_dir=out)
    sweep = R._sweep_part(ctx, s)
    return {"sweep": sweep, "flops": R._flops_part(ctx, s, sweep), "source": f"run in {out}"}


def _sweep_result(data: dict) -> dict:
    rows = data["sweep"]["rows"]
    means = [r["bits_per_pixel"] for r in rows]
    ses = [r.get("bits_per_pixel_se", float("nan")) for r in rows]
    increasing = all(b > a for a, b in zip(means, means[1:], strict=False))
    disjoint = all(a + sa < b - sb for a, b, sa, sb in zip(means, means[1:], ses, ses[1:], strict=False))
    return {"loss_factors": [r["loss_factor"] for r in rows], "bits_per_pixel": means, "bits_per_pixel_se": ses,
            "psnr": [r.get("psnr") for r in rows], "seeds": rows[0]["seeds"] if rows else 0,
            "monotone": increasing, "error_bars_disjoint": disjoint, "target_met": increasing and disjoint}


def _flops_result(data: dict) -> dict:
    f = data["flops"]
    ul, ae, px = f["ul"]["curve"], f["klae"]["curve"], f["pixel"]["curve"]
    return {"curves": {"ul": ul, "klae": ae, "pixel": px},
            "largest_budget_flops": ul[-1][1] if ul else None,
            "gen_fd_ul": ul[-1][2] if ul else None, "gen_fd_klae": ae[-1][2] if ae else None,
            "gen_fd_pixel": px[-1][2] if px else None,
            "ul_better": bool(ul and ae and ul[-1][2] < ae[-1][2])}


def _time_steps(step, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - t0) / n


def _throughput_pair(ul_cfg, batch: int, repeats: int, steps: int) -> dict:
    from diffusers import UNet2DModel

    from parsimon.latents.model import UnifiedLatents
    from parsimon.latents.nets import MLPDenoiser, UNetDenoiser

    torch.manual_seed(0)
    ul = UnifiedLatents(ul_cfg)
    opt_ul = torch.optim.Adam(ul.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *ul_cfg.image_shape, generator=g) * 2 - 1
    if ul_cfg.decoder_arch == "unet":
        # the same UNet2DModel as the decoder, without the latent's input channels
        ref = UNetDenoiser(ul_cfg.image_shape, None, channels=ul_cfg.decoder_channels,
                           layers_per_block=ul_cfg.decoder_layers_per_block, attention=ul_cfg.decoder_attention,
                           dropout=ul_cfg.decoder_dropout)
        assert isinstance(ref.unet, UNet2DModel)
    else:
        ref = MLPDenoiser(ul_cfg.image_shape, None, hidden=ul_cfg.decoder_hidden, depth=ul_cfg.decoder_depth,
                          dropout=ul_cfg.decoder_dropout)
    opt_ref = torch.optim.Adam(ref.parameters(), 1e-4)

    def ul_step():
        loss, _ = ul(x, ul.draw(batch, g))
        opt_ul.zero_grad(set_to_none=True)
        loss.backward()
        opt_ul.step()

    def ref_step():
        eps = torch.randn(x.shape, generator=g)
        lam = 10 - 20 * torch.rand(batch, generator=g)
        a, s = torch.sigmoid(lam).sqrt().view(-1, 1, 1, 1), torch.sigmoid(-lam).sqrt().view(-1, 1, 1, 1)
        loss = (ref(a * x + s * eps, lam) - eps).pow(2).mean()
        opt_ref.zero_grad(set_to_none=True)
        loss.backward()
        opt_ref.step()

    ul_step(), ref_step()  # warm-up
    t_ul, t_ref = [], []
    for _ in range(repeats):  # alternate, so both see the same machine load
        t_ul.append(_time_steps(ul_step, steps))
        t_ref.append(_time_steps(ref_step, steps))
    mu, mr = statistics.median(t_ul), statistics.median(t_ref)
    ratios = [a / b for a, b in zip(t_ul, t_ref, strict=True)]
    return {"decoder_arch": ul_cfg.decoder_arch, "batch": batch, "repeats": repeats, "steps_per_repeat": steps,
            "ul_params": sum(p.numel() for p in ul.parameters()),
            "decoder_params": sum(p.numel() for p in ul.decoder.parameters()),
            "denoiser_params": sum(p.numel() for p in ref.parameters()),
            "ul_step_s": mu, "denoiser_step_s": mr, "ul_images_per_s": batch / mu,
            "denoiser_images_per_s": batch / mr, "ratio_median_of_times": mu / mr,
            "ratio_median_pairwise": statistics.median(ratios), "target_met": mu / mr <= 3.0}


def _throughput(batch: int, repeats: int) -> dict:
    from parsimon.latents.model import ULConfig

    unet = ULConfig(decoder_arch="unet", decoder_channels=(32, 64), encoder_hidden=128, prior_hidden=256)
    mlp = ULConfig(decoder_hidden=256, encoder_hidden=128, prior_hidden=256)
    return {"unet": _throughput_pair(unet, batch, repeats, 3), "mlp": _throughput_pair(mlp, batch, repeats, 20)}


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    if "sweep" in result:
        s = result["sweep"]
        axes[0].errorbar(s["loss_factors"], s["bits_per_pixel"], yerr=s["bits_per_pixel_se"], marker="o", capsize=3)
        axes[0].set_xlabel("c_lf")
        axes[0].set_ylabel("bits/pixel (± s.e.)")
        axes[0].set_title(f"monotone: {s['monotone']}, disjoint bars: {s['error_bars_disjoint']}", fontsize=9)
    if "flops" in result:
        for key, label in (("ul", "UL"), ("klae", "KL-AE"), ("pixel", "pixel")):
            c = result["flops"]["curves"][key]
            if c:
                axes[1].plot([p[1] for p in c], [p[2] for p in c], marker="o", label=label)
        axes[1].set_xscale("log")
        axes[1].set_xlabel("stage-2 training FLOPs")
        axes[1].set_ylabel("gen FD")
        axes[1].legend(fontsize=8)
    if "throughput" in result:
        t = result["throughput"]
        names = [f"UL joint ({k})" for k in t] + [f"denoiser ({k})" for k in t]
        vals = [t[k]["ul_images_per_s"] for k in t] + [t[k]["denoiser_images_per_s"] for k in t]
        axes[2].bar(names, vals, color=["C0"] * len(t) + ["C1"] * len(t))
        axes[2].set_ylabel("training images/s (1 thread)")
        axes[2].tick_params(axis="x", labelsize=7, rotation=20)
        axes[2].set_title(f"ratio (unet): {t['unet']['ratio_median_of_times']:.2f}×", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="run folder (default runs/latents-bench-<UTC stamp>)")
    ap.add_argument("--save", action="store_true", help="also write benchmarks/results/latents.json and .png")
    ap.add_argument("--only", choices=PARTS, action="append", help="run only these parts (repeatable)")
    ap.add_argument("--reuse", default=None, help="a report's latents/ folder: read its sweep and FLOPs results")
    ap.add_argument("--seeds", default=None, help="seeds of the sweep (default the quick reproduction's)")
    ap.add_argument("--batch", type=int, default=128, help="throughput batch size")
    ap.add_argument("--repeats", type=int, default=7, help="throughput repeats (median)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from parsimon.run import default_out, start_run

    parts = args.only or list(PARTS)
    out = Path(args.out) if args.out else default_out("latents bench")
    seeds = tuple(int(s) for s in args.seeds.split(",")) if args.seeds else None
    with start_run("latents bench", {"parts": parts, "reuse": args.reuse, "seeds": seeds, "batch": args.batch,
                                     "repeats": args.repeats}, out_dir=out) as run:
        result: dict = {"machine": platform.platform(), "torch": torch.__version__, "threads": 1, "parts": parts}
        if "sweep" in parts or "flops" in parts:
            data = _sweep_and_flops(run.dir, Path(args.reuse) if args.reuse else None, seeds)
            result["source"] = data["source"]
            if "sweep" in parts:
                result["sweep"] = _sweep_result(data)
            if "flops" in parts:
                result["flops"] = _flops_result(data)
        if "throughput" in parts:
            result["throughput"] = _throughput(args.batch, args.repeats)
        run.write_json("latents_bench.json", result)
        _plot(result, run.figure("latents_bench.png"))
        flat = {}
        if "sweep" in result:
            flat.update(sweep_monotone=result["sweep"]["monotone"], sweep_disjoint=result["sweep"]["error_bars_disjoint"])
        if "flops" in result:
            flat.update(gen_fd_ul=result["flops"]["gen_fd_ul"], gen_fd_klae=result["flops"]["gen_fd_klae"])
        if "throughput" in result:
            flat.update(throughput_ratio_unet=result["throughput"]["unet"]["ratio_median_of_times"],
                        throughput_ratio_mlp=result["throughput"]["mlp"]["ratio_median_of_times"])
        run.set_metrics(flat)
    if args.save:
        dst = Path(__file__).parent / "results"
        dst.mkdir(parents=True, exist_ok=True)
        (dst / "latents.json").write_text(json.dumps(result, indent=1, default=float))
        _plot(result, dst / "latents.png")
    print(json.dumps(result, indent=1, default=float))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
