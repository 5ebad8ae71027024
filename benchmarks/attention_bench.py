"""Block-sparse attention benchmark: correctness against the dense oracle first, then speed.

CPU part (always; 1 thread, fp32, B1 H8 N4096 d64, ≈95% sparsity): dense SDPA vs our ``"torch"`` backend vs
compiled FlexAttention on the same layout, forward (and forward+backward for SDPA vs ours), side by side in one
run, plus the mask-construction time.

GPU part (``--gpu``, needs CUDA; bf16, d=128): the issue's shapes (480p B1 H12 N32760, 720p B1 H40 N75600):
cuDNN and FlashAttention-2 dense SDPA, compiled FlexAttention with the same layout, our Triton kernel forward
(with and without mask construction) and forward+backward, and the effective TFLOP/s on the computed blocks.

The layout is ``hybrid_block_mask(topk=0.03, topp=p)`` on inputs with block structure (so that the pooled
map is skewed as in real video models), with ``p`` calibrated by bisection to reach the target sparsity.

    python benchmarks/attention_bench.py              # CPU part
    python benchmarks/attention_bench.py --quick      # small sizes (N=1024)
    python benchmarks/attention_bench.py --gpu        # CPU part skipped, GPU part at the issue's shapes
    TRITON_INTERPRET=1 python benchmarks/attention_bench.py --gpu --rehearse-on-cpu
        # the GPU part's code end to end on the CPU at a tiny shape (kernels interpreted, fp32; cuDNN/FA2 are
        # recorded as failed there): checks that the one GPU command will run before a GPU is at hand

Writes ``attention_{cpu,gpu}.json`` and ``.png`` (``_quick`` suffix with ``--quick``) into a run folder
(``--out``, default ``runs/attention-bench-<UTC stamp>``); ``--save`` also writes them to ``benchmarks/results/``
and refreshes the copy shipped in the package (``parsimon/attention/speed_results.json``, read by the report).
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
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "parsimon_inductor"))

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _outputs import add_output_options, open_run, write_results  # noqa: E402

from parsimon.attention import dense_masked_attention, hybrid_block_mask, sparse_attention  # noqa: E402
from parsimon.testing import rel_err  # noqa: E402

#: The package's copy of the committed speed results (the report reads it; an installed wheel has no checkout).
PACKAGED = Path(__file__).resolve().parents[1] / "src" / "parsimon" / "attention" / "speed_results.json"


# ------------------------------------------------------------------------------------------------ inputs
def structured_qkv(b, h, n, d, *, hkv=None, dtype=torch.float32, device="cpu", seed=0, amp=1.5):
    """q, k, v where every 64-token span shares a random direction (a crude stand-in for video tokens)."""
    hkv = hkv or h
    g = torch.Generator().manual_seed(seed)
    span = 64
    ns = -(-n // span)
    cq = torch.randn(b, h, ns, d, generator=g) * amp
    ck = torch.randn(b, hkv, ns, d, generator=g) * amp
    def rep(c):
        return c.repeat_interleave(span, dim=2)[:, :, :n]
    q = rep(cq) + torch.randn(b, h, n, d, generator=g)
    k = rep(ck) + torch.randn(b, hkv, n, d, generator=g)
    v = torch.randn(b, hkv, n, d, generator=g)
    return [t.to(device=device, dtype=dtype) for t in (q, k, v)]


def calibrate_topp(q, k, *, topk, target, block_q=128, block_k=64, iters=14):
    """Smallest-error p in [0, 1] whose hybrid layout's sparsity is closest to ``target`` (bisection)."""
    lo, hi = 0.0, 1.0
    best = None
    for _ in range(iters):
        mid = (lo + hi) / 2
        lay = hybrid_block_mask(q, k, topk=topk, topp=mid, block_q=block_q, block_k=block_k)
        if best is None or abs(lay.sparsity - target) < abs(best[1].sparsity - target):
            best = (mid, lay)
        if lay.sparsity > target:
            lo = mid
        else:
            hi = mid
    return best


# ------------------------------------------------------------------------------------------------ timing
def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_interleaved(fns: dict, repeats: int, device: str, warmup: int = 1) -> dict:
    """Median seconds per function; runs are interleaved (a, b, c, a, b, c, ...) so load hits all alike.

    A function that fails in warm-up (e.g. a cuDNN build without that kernel) is reported with its error and
    left out of the timing instead of aborting the run.
    """
    errors = {}
    for name, f in list(fns.items()):
        try:
            for _ in range(warmup):
                f()
        except Exception as exc:  # noqa: BLE001 - recorded in the results
            errors[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            print(f"  {name}: FAILED in warm-up: {errors[name]['error']}")
            fns = {kk: vv for kk, vv in fns.items() if kk != name}
            if device == "cuda":
                torch.cuda.empty_cache()
    _sync(device)
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, f in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            f()
            _sync(device)
            samples[name].append(time.perf_counter() - t0)
    out = {name: {"median_s": statistics.median(s), "min_s": min(s), "runs": len(s)} for name, s in samples.items()}
    out.update(errors)
    return out


def _ratio(num: dict, den: dict):
    """num / den of two timing entries, or None when either failed."""
    if "median_s" not in num or "median_s" not in den:
        return None
    return num["median_s"] / den["median_s"]


def _fwd_bwd(fn, q, k, v):
    def run():
        qq, kk, vv = (t.detach().requires_grad_(True) for t in (q, k, v))
        out = fn(qq, kk, vv)
        out.backward(torch.ones_like(out))
    return run


# ------------------------------------------------------------------------------------------------ checks
def _backend_errors(q, k, v, lay, ro, rlse, name, device) -> dict:
    """Relative errors of one backend's output, LSE and gradients against the dense oracle's."""
    with torch.no_grad():
        if name == "flex" and device == "cpu":
            o, lse = sparse_attention(q, k, v, lay, backend=name), None
        else:
            o, lse = sparse_attention(q, k, v, lay, backend=name, return_lse=True)
    errs = {"out": rel_err(o.float(), ro.float())}
    if lse is not None:
        errs["lse"] = rel_err(lse, rlse)
    if not (name == "flex" and device == "cpu"):
        qq, kk, vv = (t.detach().requires_grad_(True) for t in (q, k, v))
        o2 = sparse_attention(qq, kk, vv, lay, backend=name)
        go = torch.randn_like(o2)
        grads = torch.autograd.grad((o2.float() * go.float()).sum(), (qq, kk, vv))
        qr, kr, vr = (t.detach().requires_grad_(True) for t in (q, k, v))
        rgrads = torch.autograd.grad((dense_masked_attention(qr, kr, vr, lay).float() * go.float()).sum(),
                                     (qr, kr, vr))
        for gname, a, r in zip(("dq", "dk", "dv"), grads, rgrads, strict=False):
            errs[gname] = rel_err(a.float(), r.float())
    return errs


def check_correctness(device, dtype, d, tol, backends, n=1024, h=2, hkv=None):
    """Forward, LSE and gradients of each backend vs the dense oracle on a small slice."""
    q, k, v = structured_qkv(1, h, n, d, hkv=hkv, dtype=dtype, device=device, seed=11)
    lay = hybrid_block_mask(q, k, topk=0.03, topp=0.3)
    ro, rlse = dense_masked_attention(q, k, v, lay, return_lse=True)
    report = {"n": n, "heads": h, "d": d, "dtype": str(dtype), "sparsity": lay.sparsity, "tolerance": tol}
    for name in backends:
        try:
            errs = _backend_errors(q, k, v, lay, ro, rlse, name, device)
        except Exception as exc:  # noqa: BLE001 - a peer (flex) that fails to build is recorded; ours must not fail
            if name != "flex":
                raise
            report[name] = {"error": f"{type(exc).__name__}: {exc}"[:500], "ok": None}
            print(f"  check {name:6s} FAILED to run: {report[name]['error'][:200]}")
            continue
        ok = all(e < tol for e in errs.values())
        report[name] = {"rel_err": errs, "ok": ok}
        print(f"  check {name:6s} {'OK ' if ok else 'FAIL'} " + " ".join(f"{kk}={vv:.2e}" for kk, vv in errs.items()))
        if not ok:
            raise SystemExit(f"correctness check failed for backend {name!r}: {errs}")
    return report


# ------------------------------------------------------------------------------------------------ CPU
def run_cpu(args) -> dict:
    torch.set_num_threads(1)
    n = 1024 if args.quick else 4096
    b, h, d = 1, 8, 64
    print(f"CPU: B{b} H{h} N{n} d{d} fp32, 1 thread; target sparsity {args.sparsity}")
    check = check_correctness("cpu", torch.float32, d, 1e-4, ["torch", "flex"], n=512 if args.quick else 1024)
    q, k, v = structured_qkv(b, h, n, d, seed=0)
    p, lay = calibrate_topp(q, k, topk=0.03, target=args.sparsity)
    print(f"  layout: topk=0.03 topp={p:.4f} sparsity={lay.sparsity:.4f}")
    from parsimon.attention.flex_backend import compiled_flex_attention, flex_block_mask
    from parsimon.attention.torch_backend import torch_block_sparse_attention

    scale = d ** -0.5
    bm = flex_block_mask(lay)
    flex = compiled_flex_attention()
    t0 = time.perf_counter()
    with torch.no_grad():
        flex(q, k, v, block_mask=bm, scale=scale)
    flex_compile_s = time.perf_counter() - t0
    sdpa = torch.nn.functional.scaled_dot_product_attention
    fwd = {
        "dense SDPA": lambda: sdpa(q, k, v),
        "ours torch (incl. mask)": lambda: sparse_attention(q, k, v, topk=0.03, topp=p, backend="torch"),
        "ours torch (layout given)": lambda: torch_block_sparse_attention(q, k, v, lay, scale),
        "flex compiled (same layout)": lambda: flex(q, k, v, block_mask=bm, scale=scale),
        "mask construction": lambda: hybrid_block_mask(q, k, topk=0.03, topp=p),
        "flex BlockMask conversion": lambda: flex_block_mask(lay),
    }
    with torch.no_grad():
        t_fwd = time_interleaved(fwd, args.repeats, "cpu")
    bwd = {
        "dense SDPA fwd+bwd": _fwd_bwd(sdpa, q, k, v),
        "ours torch fwd+bwd": _fwd_bwd(lambda a, bb, c: torch_block_sparse_attention(a, bb, c, lay, scale)[0], q, k, v),
    }
    t_bwd = time_interleaved(bwd, max(3, args.repeats // 2), "cpu")
    dense = t_fwd["dense SDPA"]["median_s"]
    speed = {name: dense / r["median_s"] for name, r in t_fwd.items() if name not in ("mask construction", "flex BlockMask conversion")}
    speed["ours torch fwd+bwd vs SDPA fwd+bwd"] = t_bwd["dense SDPA fwd+bwd"]["median_s"] / t_bwd["ours torch fwd+bwd"]["median_s"]
    for name, r in {**t_fwd, **t_bwd}.items():
        print(f"  {name:32s} {r['median_s'] * 1e3:9.2f} ms")
    for name, s in speed.items():
        print(f"  speed-up {name:40s} {s:6.2f}x")
    return {
        "part": "cpu", "shape": {"B": b, "H": h, "N": n, "D": d, "dtype": "float32"}, "threads": 1,
        "layout": {"topk": 0.03, "topp": p, "sparsity": lay.sparsity, "block_q": 128, "block_k": 64,
                   "kept_blocks": lay.kept},
        "correctness": check, "forward": t_fwd, "forward_backward": t_bwd, "speedup_vs_dense_sdpa": speed,
        "flex_first_call_s": flex_compile_s, "target_speedup_torch_vs_sdpa": 10.0,
    }


# ------------------------------------------------------------------------------------------------ GPU
GPU_SHAPES = {"480p (Wan 1.3B)": (1, 12, 32760, 0.20), "720p (Wan 14B)": (1, 40, 75600, 0.16)}
GPU_SHAPES_QUICK = {"quick 8k": (1, 8, 8192, 0.2)}
REHEARSAL_SHAPES = {"rehearsal 700": (1, 2, 700, 0.3)}  # ragged N (not a multiple of 128 or 64)


def run_gpu(args) -> dict:
    rehearse = args.rehearse_on_cpu
    if rehearse:
        if os.environ.get("TRITON_INTERPRET") != "1":
            raise SystemExit("--rehearse-on-cpu runs the Triton kernels in the interpreter: set TRITON_INTERPRET=1")
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        raise SystemExit("--gpu needs a CUDA device (or add --rehearse-on-cpu with TRITON_INTERPRET=1)")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from parsimon.attention.flex_backend import compiled_flex_attention, flex_block_mask
    from parsimon.attention.kernels.triton_attention import triton_block_sparse_attention

    if rehearse:  # the same code path; the interpreter computes in fp32 on CPU tensors
        dev, dtype, d, tol, n_check = "cpu", torch.float32, 128, 1e-3, 300
        name = "CPU rehearsal (TRITON_INTERPRET=1)"
    else:
        dev, dtype, d, tol, n_check = "cuda", torch.bfloat16, 128, 2e-2, None
        name = torch.cuda.get_device_name()
    print(f"GPU part on {name}; {dtype}, d={d}; target sparsity {args.sparsity}")
    checks = {
        "d128": check_correctness(dev, dtype, 128, tol, ["triton", "flex", "torch"], n=n_check or 4096, h=4),
        "d64_gqa": check_correctness(dev, dtype, 64, tol, ["triton"], n=n_check or 3000, h=4, hkv=2),
    }
    sdpa = torch.nn.functional.scaled_dot_product_attention
    flex = compiled_flex_attention()
    rows = {}
    shapes = REHEARSAL_SHAPES if rehearse else GPU_SHAPES_QUICK if args.quick else GPU_SHAPES

    def bench_shape(b, h, n):
        q, k, v = structured_qkv(b, h, n, d, dtype=dtype, device=dev, seed=1)
        p, lay = calibrate_topp(q, k, topk=0.03, target=args.sparsity)
        scale = d ** -0.5
        bm = flex_block_mask(lay)
        kept_flops = 4.0 * lay.kept * lay.block_q * lay.block_k * d  # upper bound (ragged tail counted)
        print(f"    B{b} H{h} N{n}; topp={p:.4f} sparsity={lay.sparsity:.4f}")

        def cudnn():
            with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                return sdpa(q, k, v)

        def fa2():
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return sdpa(q, k, v)

        fwd = {
            "cuDNN dense fwd": cudnn,
            "FA2 dense fwd": fa2,
            "flex fwd (same layout)": lambda: flex(q, k, v, block_mask=bm, scale=scale),
            "ours fwd (incl. mask)": lambda: sparse_attention(q, k, v, topk=0.03, topp=p, backend="triton"),
            "ours fwd (layout given)": lambda: triton_block_sparse_attention(q, k, v, lay, scale),
            "mask construction": lambda: hybrid_block_mask(q, k, topk=0.03, topp=p),
        }
        with torch.no_grad():
            t_fwd = time_interleaved(fwd, args.repeats, dev, warmup=2)
        t_bwd = {}
        if h * n <= 12 * 32760 or args.all_bwd:
            def cudnn_fb(a, bb, c):
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    return sdpa(a, bb, c)

            bwd = {
                "cuDNN dense fwd+bwd": _fwd_bwd(cudnn_fb, q, k, v),
                "flex fwd+bwd": _fwd_bwd(lambda a, bb, c: flex(a, bb, c, block_mask=bm, scale=scale), q, k, v),
                "ours fwd+bwd (incl. mask)": _fwd_bwd(
                    lambda a, bb, c: sparse_attention(a, bb, c, topk=0.03, topp=p, backend="triton"), q, k, v),
            }
            t_bwd = time_interleaved(bwd, args.repeats, dev, warmup=2)
        ours_given = t_fwd["ours fwd (layout given)"]
        row = {
            "shape": {"B": b, "H": h, "N": n, "D": d}, "topp": p, "sparsity": lay.sparsity, "kept_blocks": lay.kept,
            "forward": t_fwd, "forward_backward": t_bwd,
            "speedup_fwd_incl_mask_vs_cudnn": _ratio(t_fwd["cuDNN dense fwd"], t_fwd["ours fwd (incl. mask)"]),
            "speedup_fwd_incl_mask_vs_fa2": _ratio(t_fwd["FA2 dense fwd"], t_fwd["ours fwd (incl. mask)"]),
            "speedup_fwd_vs_flex": _ratio(t_fwd["flex fwd (same layout)"], ours_given),
            "mask_share_of_fwd": _ratio(t_fwd["mask construction"], t_fwd["ours fwd (incl. mask)"]),
            "ours_fwd_tflops_on_computed_blocks": (kept_flops / ours_given["median_s"] / 1e12
                                                   if "median_s" in ours_given else None),
            "flex_fwd_tflops_on_computed_blocks": (kept_flops / t_fwd["flex fwd (same layout)"]["median_s"] / 1e12
                                                   if "median_s" in t_fwd["flex fwd (same layout)"] else None),
        }
        if t_bwd:
            ours_fb = t_bwd["ours fwd+bwd (incl. mask)"]
            row["speedup_fwd_bwd_vs_cudnn"] = _ratio(t_bwd["cuDNN dense fwd+bwd"], ours_fb)
            row["speedup_fwd_bwd_vs_flex"] = _ratio(t_bwd["flex fwd+bwd"], ours_fb)
            row["ours_fwd_bwd_tflops_on_computed_blocks"] = (3.5 * kept_flops / ours_fb["median_s"] / 1e12
                                                             if "median_s" in ours_fb else None)
        for nm, r in {**t_fwd, **t_bwd}.items():
            print(f"    {nm:28s} " + (f"{r['median_s'] * 1e3:9.3f} ms" if "median_s" in r else r["error"]))
        for key in [kk for kk in row if kk.startswith(("speedup", "mask_share", "ours_", "flex_"))]:
            print(f"    {key:40s} " + ("failed" if row[key] is None else f"{row[key]:8.3f}"))
        return row

    for label, (b, h, n, _p_hint) in shapes.items():
        print(f"  {label}:")
        rows[label] = bench_shape(b, h, n)
        if dev == "cuda":
            torch.cuda.empty_cache()
    return {"part": "gpu_rehearsal" if rehearse else "gpu", "device": name,
            "dtype": str(dtype).removeprefix("torch."), "correctness": checks, "shapes": rows,
            "targets": {"fwd_incl_mask_vs_cudnn_720p": 15.0, "fwd_incl_mask_vs_cudnn_480p": 11.0,
                        "fwd_bwd_vs_cudnn_480p": 10.0, "vs_flex": 1.0}}


# ------------------------------------------------------------------------------------------------ output
def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result["part"] == "cpu":
        groups = {"forward": result["forward"], "forward+backward": result["forward_backward"]}
        title = f"CPU 1 thread, B1 H8 N{result['shape']['N']} d64 fp32, sparsity {result['layout']['sparsity']:.3f}"
    else:
        groups = {}
        for label, row in result["shapes"].items():
            groups[label + " fwd"] = row["forward"]
            if row["forward_backward"]:
                groups[label + " fwd+bwd"] = row["forward_backward"]
        title = f"{result['device']} bf16 d128"
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 4.5), squeeze=False)
    for ax, (gname, res) in zip(axes[0], groups.items(), strict=False):
        names = [nm for nm in res if "median_s" in res[nm]]
        vals = [res[nm]["median_s"] * 1e3 for nm in names]
        ax.barh(names, vals, color="tab:blue")
        ax.set_xscale("log")
        ax.set_xlabel("median ms (log)")
        ax.set_title(gname)
        for i, val in enumerate(vals):
            ax.text(val, i, f" {val:.2f}", va="center", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="run the GPU part (CUDA) instead of the CPU part")
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sparsity", type=float, default=0.95)
    ap.add_argument("--all-bwd", action="store_true", help="also time fwd+bwd at 720p")
    ap.add_argument("--rehearse-on-cpu", action="store_true",
                    help="with --gpu and TRITON_INTERPRET=1: run the GPU part's code on the CPU at a tiny shape")
    add_output_options(ap, "attention-bench")
    args = ap.parse_args(argv)
    with open_run("attention bench", args) as run:
        result = run_gpu(args) if args.gpu else run_cpu(args)
        result["env"] = {"torch": torch.__version__, "python": platform.python_version(),
                         "machine": platform.machine(), "argv": sys.argv[1:] if argv is None else list(argv),
                         "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        stem = f"attention_{result['part']}" + ("_quick" if args.quick else "")
        write_results(run, stem, result, lambda path: plot(result, path), args.save)
        if args.save and not args.quick and result["part"] in ("cpu", "gpu"):
            refresh_packaged(stem, result)
    return 0


def refresh_packaged(stem: str, result: dict, path: Path | None = None) -> None:
    """Put ``result`` into the package's copy of the committed speed results under ``<stem>.json``."""
    path = path or PACKAGED
    data = json.loads(path.read_text()) if path.is_file() else {"files": {}}
    data.setdefault("files", {})[f"{stem}.json"] = json.loads(json.dumps(result, default=str))
    path.write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
