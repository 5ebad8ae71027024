"""Governance benchmark: proof-of-action appends per second and verification speed.

Measures, on this machine:
- durable appends/s in one process, for the SQLite log (``synchronous="normal"``: a committed record
  survives a process crash; ``"full"``: also a power loss) and the JSONL log;
- appends/s with four processes writing the same SQLite log at once (every record must land: the
  chain is verified afterwards and the count checked);
- verification speed (records/s) of a log of ``--verify-n`` records, SQLite and JSONL.

Each figure is the median of ``--repeats`` runs. Writes ``benchmarks/results/governance.json`` and a PNG.

    python benchmarks/governance_bench.py            # defaults: 3,000 appends, 200,000 records verified
    python benchmarks/governance_bench.py --quick
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_APPENDS = 1_000.0
TARGET_VERIFY = 100_000.0


def _append_many(kind: str, path: str, n: int, synchronous: str, tag: str) -> float:
    from parsimon.governance import AuditLog, JsonlAuditLog

    log = AuditLog(path, synchronous=synchronous) if kind == "sqlite" else JsonlAuditLog(path, synchronous=synchronous)
    log.head()  # open the store before timing
    t0 = time.perf_counter()
    for i in range(n):
        log.append(actor="agent", action="click", target=f"#button-{i}", args={"i": i, "tag": tag},
                   before={"screenshot_sha256": "ab" * 32}, after={"url": f"https://app.test/{i}"}, outcome="ok",
                   run="bench")
    dt = time.perf_counter() - t0
    log.close()
    return dt


def _worker(args) -> float:
    return _append_many(*args)


def bench_single(kind: str, synchronous: str, n: int, repeats: int) -> dict:
    rates = []
    for r in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "log.sqlite" if kind == "sqlite" else "log.jsonl")
            dt = _append_many(kind, path, n, synchronous, f"r{r}")
            rates.append(n / dt)
    return {"kind": kind, "synchronous": synchronous, "n": n, "appends_per_s": statistics.median(rates),
            "runs": rates}


def bench_multi(n_per_proc: int, procs: int, repeats: int) -> dict:
    from parsimon.governance import AuditLog

    rates, ok = [], True
    ctx = mp.get_context("spawn")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "log.sqlite")
            AuditLog(path).head()  # create the file and switch it to WAL before the writers start
            t0 = time.perf_counter()
            with ctx.Pool(procs) as pool:
                pool.map(_worker, [("sqlite", path, n_per_proc, "normal", f"p{p}") for p in range(procs)])
            dt = time.perf_counter() - t0
            log = AuditLog(path)
            report = log.verify()
            ok = ok and report.ok and log.head().n == procs * n_per_proc
            rates.append(procs * n_per_proc / dt)
    return {"procs": procs, "n_per_proc": n_per_proc, "appends_per_s": statistics.median(rates), "runs": rates,
            "all_records_landed_and_verified": ok, "note": "wall time includes starting the worker processes"}


def bench_verify(n: int, repeats: int) -> dict:
    from parsimon.governance import AuditLog, JsonlAuditLog, verify_jsonl

    out = {}
    with tempfile.TemporaryDirectory() as d:
        sq = AuditLog(os.path.join(d, "log.sqlite"), synchronous="normal")
        # Fill quickly: one process, normal sync (the fill is not what is measured).
        for i in range(n):
            sq.append(actor="agent", action="click", target=f"#b{i}", args={"i": i},
                      before={"screenshot_sha256": "cd" * 32}, outcome="ok", run="bench")
        jsonl = os.path.join(d, "log.jsonl")
        sq.export_jsonl(jsonl)
        for name, fn in (("sqlite", sq.verify), ("jsonl", lambda: verify_jsonl(jsonl))):
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                report = fn()
                times.append(time.perf_counter() - t0)
                if not report.ok:
                    raise SystemExit(f"verification of the {name} log failed: {report}")
            out[name] = {"n": n, "records_per_s": n / statistics.median(times), "seconds": times}
        # A JSONL log written directly (not exported) verifies the same way.
        del JsonlAuditLog
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = [f"{s['kind']}\n{s['synchronous']}" for s in result["single"]] + [f"sqlite\n{result['multi']['procs']} procs"]
    vals = [s["appends_per_s"] for s in result["single"]] + [result["multi"]["appends_per_s"]]
    a.bar(labels, vals, color="#4c72b0")
    a.axhline(TARGET_APPENDS, color="r", ls="--", label="target 1,000/s")
    a.set_ylabel("durable appends / s")
    a.set_yscale("log")
    a.legend()
    v = result["verify"]
    b.bar(list(v), [v[k]["records_per_s"] for k in v], color="#55a868")
    b.axhline(TARGET_VERIFY, color="r", ls="--", label="target 100,000/s")
    b.set_ylabel("records verified / s")
    b.legend()
    fig.suptitle("parsimon.governance proof-of-action log (median of runs)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=3000, help="appends per single-process run")
    p.add_argument("--multi-n", type=int, default=2000, help="appends per process in the 4-process run")
    p.add_argument("--verify-n", type=int, default=200_000, help="records in the verified log")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.multi_n, a.verify_n, a.repeats = 300, 200, 20_000, 1
    a.out.mkdir(parents=True, exist_ok=True)
    single = [bench_single(k, s, a.n, a.repeats) for k, s in
              (("sqlite", "normal"), ("sqlite", "full"), ("jsonl", "normal"), ("jsonl", "full"))]
    for s in single:
        print(f"{s['kind']:6s} synchronous={s['synchronous']:6s} {s['appends_per_s']:10.0f} appends/s", flush=True)
    multi = bench_multi(a.multi_n, 4, a.repeats)
    print(f"sqlite 4 processes       {multi['appends_per_s']:10.0f} appends/s  "
          f"(all landed and verified: {multi['all_records_landed_and_verified']})", flush=True)
    verify = bench_verify(a.verify_n, a.repeats)
    for k, v in verify.items():
        print(f"verify {k:6s} {v['records_per_s']:12.0f} records/s (n={v['n']})", flush=True)
    result = {
        "benchmark": "governance", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_avg": os.getloadavg()},
        "targets": {"appends_per_s": TARGET_APPENDS, "verify_records_per_s": TARGET_VERIFY},
        "single": single, "multi": multi, "verify": verify,
    }
    name = "governance_quick" if a.quick else "governance"
    (a.out / f"{name}.json").write_text(json.dumps(result, indent=2))
    plot(result, a.out / f"{name}.png")
    print(f"wrote {a.out / (name + '.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
