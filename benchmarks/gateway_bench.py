"""Governance gateway benchmark: added latency, budget overshoot under concurrency, a SIGKILL under load, and
the cost-aware cascade, side by side with LiteLLM's proxy where it is installed.

1. Latency. A mock OpenAI upstream on loopback (its own process) answers at once. An open-loop client sends
   ``--rate`` requests/s for ``--seconds`` to the upstream directly, through the gateway (its own process, a
   key, a hard budget: the full governed path, ledger and proof-of-action log included) and through
   LiteLLM's proxy (same upstream), in alternating rounds. Added latency = a percentile through the proxy minus
   the same percentile direct, in the same round; the median over ``--rounds`` is reported. Targets: p50 < 2 ms,
   p99 < 10 ms at 200 requests/s. Each round also times ``--sequential`` calls one after another (no
   queueing: what one call costs when the machine keeps up) and reads each proxy's CPU seconds per request
   from /proc (robust to other load on the machine, which the open-loop percentiles are not).
2. Budgets. ``--clients`` concurrent clients call a 20 ms upstream until refused, against one hard money
   limit, ``--reps`` times. Overshoot = what the answered calls cost (from the usage the upstream reported, at
   the same prices for both proxies) minus the limit. LiteLLM without a database enforces budgets per
   deployment (``max_budget`` on a model; its per-key and proxy-wide budgets need Postgres): each repetition
   uses a fresh deployment. Target: 0 overshoot in every repetition.
3. SIGKILL. Clients call the gateway; it is killed with SIGKILL mid-load. Every answer a client saw must be in
   the log (same digest) and the ledger; the chain verifies; ledger events and call records match one to
   one (nothing half-written); a restarted gateway releases the dead one's reservations.
4. Cascade. Arithmetic questions answered by the local model (SmolLM2-135M via ``llm serve``'s server; a weak
   mock model if llama-cpp-python is missing) and a stronger, 100x pricier mock model: cheap-only, strong-only,
   and the cascade at several confidence thresholds (confidence = geometric mean of the local model's token
   probabilities), all through the gateway. Cost and accuracy, plotted as a Pareto front.

    python benchmarks/gateway_bench.py              # writes runs/gateway-bench-<stamp>/gateway.{json,png}
    python benchmarks/gateway_bench.py --save       # also benchmarks/results/gateway.{json,png}
    python benchmarks/gateway_bench.py --quick      # short (a smoke run)

LiteLLM must live in its own virtual environment (it pins packages the project's does not):
``python3 -m venv /work/venvs/litellm && /work/venvs/litellm/bin/pip install 'litellm[proxy]'``; point
``--litellm`` (or ``$PARSIMON_LITELLM``) at its ``litellm`` executable. Without it, its columns say "absent".
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import httpx  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SRC = str(Path(__file__).resolve().parents[1] / "src")
PY = sys.executable
PRICE = 0.001  # money per token, in and out, for both proxies in the budget test
TARGET_P50_MS, TARGET_P99_MS = 2.0, 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    e.update({k: str(v) for k, v in extra.items()})
    return e


def wait_http(url: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def start_mock(*, delay: float = 0.0, responder: str = "echo", accuracy: float = 1.0, name: str = "mock"):
    proc = subprocess.Popen([PY, "-m", "parsimon.gateway.mock", "--port", "0", "--delay", str(delay),
                             "--responder", responder, "--accuracy", str(accuracy), "--name", name],
                            stdout=subprocess.PIPE, env=env(), text=True)
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}/v1"


def start_gateway(config: str, home: Path, *, port: int | None = None) -> tuple[subprocess.Popen, str]:
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    path = home / "gateway.toml"
    path.write_text(config)
    proc = subprocess.Popen([PY, "-m", "parsimon.cli", "gateway", "serve", "--config", str(path), "--port",
                             str(port)], env=env(PARSIMON_HOME=home), stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc=proc)
    return proc, url


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def litellm_bin(given: str | None) -> str | None:
    for cand in (given, os.environ.get("PARSIMON_LITELLM"), "/work/venvs/litellm/bin/litellm", shutil.which("litellm")):
        if cand and Path(cand).is_file():
            return cand
    return None


def start_litellm(binary: str, upstream: str, workdir: Path, *, budgets: list[tuple[str, float]] = ()):
    """LiteLLM's proxy with model ``m`` (no budget) and one deployment per ``(name, max_budget)``."""
    port = free_port()
    lines = ["model_list:"]
    for name, budget in [("m", None), *budgets]:
        lines += [f"  - model_name: {name}", "    litellm_params:", "      model: openai/mock",
                  f"      api_base: {upstream}", "      api_key: sk-none",
                  f"      input_cost_per_token: {PRICE}", f"      output_cost_per_token: {PRICE}"]
        if budget is not None:
            lines += [f"      max_budget: {budget}", "      budget_duration: 30d"]
    lines += ["litellm_settings:", "  drop_params: true", "general_settings:", "  master_key: sk-master"]
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "litellm.yaml"
    cfg.write_text("\n".join(lines) + "\n")
    log = open(workdir / "litellm.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([binary, "--config", str(cfg), "--port", str(port), "--num_workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                            env=dict(os.environ, LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True"))
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/health/liveliness", timeout=240, proc=proc)
    return proc, url


# ---------------------------------------------------------------------------------------------- 1. latency
async def open_loop(url: str, headers: dict, model: str, rate: float, seconds: float) -> tuple[list[float], list[str]]:
    """Send ``rate`` requests/s for ``seconds`` on a fixed schedule; return the latencies of the answered ones
    and the errors (a request that failed is reported, not timed).

    The load generator is the gateway's own lean keep-alive client (``parsimon.gateway.fasthttp``, about
    0.03 ms of CPU a request), so that on a busy 2-core machine the client is not what falls behind.
    """
    from parsimon.gateway.fasthttp import FastPool

    base, _, path = url.rpartition("/chat/completions")
    pool = FastPool(base, timeout=30, max_idle=256)
    payload = json.dumps({"model": model, "messages": [{"role": "user", "content": "Say ok."}],
                          "max_tokens": 8}).encode()
    hdrs = [("content-type", "application/json"), *headers.items()]
    out: list[float] = []
    errors: list[str] = []

    async def one():
        t = time.perf_counter()
        try:
            status, body = await pool.post("/chat/completions", payload, hdrs)
        except httpx.HTTPError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        if status == 200:
            out.append(time.perf_counter() - t)
        else:
            errors.append(f"HTTP {status}: {body[:200]!r}")

    tasks = []
    t0 = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    await pool.aclose()
    return out, errors


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its direct children, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(d.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def sequential(url: str, headers: dict, model: str, n: int) -> list[float]:
    """``n`` calls one after another (closed loop): latency without queueing."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 8}
    out = []
    with httpx.Client(headers=headers, timeout=120) as c:
        for _ in range(n):
            t = time.perf_counter()
            c.post(url, json=body).raise_for_status()
            out.append(time.perf_counter() - t)
    return out


def drain(url: str, headers: dict, model: str, limit_s: float = 300.0) -> float:
    """Wait until a proxy that fell behind has worked off its queue (one call answers within a second)."""
    body = {"model": model, "messages": [{"role": "user", "content": "Say ok."}], "max_tokens": 8}
    t0 = time.time()
    with httpx.Client(headers=headers, timeout=limit_s) as c:
        while time.time() - t0 < limit_s:
            t = time.perf_counter()
            try:
                c.post(url, json=body)
            except httpx.HTTPError:
                pass
            if time.perf_counter() - t < 1.0:
                break
    return time.time() - t0


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p * len(xs))) - 1))] * 1000


def bench_latency(args, work: Path, lite: str | None) -> dict:
    mock, upstream = start_mock()
    gw_cfg = f"""
[gateway]
checkpoint_interval_s = 0
checkpoint_every = 1000
[upstreams.mock]
base_url = "{upstream}"
[models.m]
upstream = "mock"
name = "mock"
price_in_per_1k = 0.01
price_out_per_1k = 0.01
[keys.bench]
token = "sk-bench"
workflow = "bench"
[[budget]]
workflow = "bench"
metric = "money"
hard = 1000000.0
"""
    gw, gw_url = start_gateway(gw_cfg, work / "latency-gateway")
    targets = {"direct": (f"{upstream}/chat/completions", {}, "mock"),
               "gateway": (f"{gw_url}/v1/chat/completions", {"Authorization": "Bearer sk-bench"}, "m")}
    pids = {"direct": mock.pid, "gateway": gw.pid}
    lp = None
    if lite:
        lp, lite_url = start_litellm(lite, upstream, work / "latency-litellm")
        targets["litellm"] = (f"{lite_url}/v1/chat/completions", {"Authorization": "Bearer sk-master"}, "m")
        pids["litellm"] = lp.pid
    try:
        for url, headers, model in targets.values():  # warm-up: connections and caches
            asyncio.run(open_loop(url, headers, model, 50, 2))
        rounds = []
        for r in range(args.rounds):
            row = {}
            for name, (url, headers, model) in targets.items():
                seq = sequential(url, headers, model, args.sequential)
                cpu0 = proc_cpu(pids[name])
                lat, errs = asyncio.run(open_loop(url, headers, model, args.rate, args.seconds))
                drained = drain(url, headers, model)  # CPU counted until the queue is worked off
                cpu = (proc_cpu(pids[name]) - cpu0) / max(1, len(lat) + len(errs)) * 1000
                row[name] = {"drain_s": drained, "n": len(lat), "p50_ms": pct(lat, 0.5), "p90_ms": pct(lat, 0.9), "p99_ms": pct(lat, 0.99),
                             "errors": len(errs), "first_error": errs[0] if errs else None,
                             "cpu_ms_per_request": cpu,  # the proxy's process (for direct: the upstream's)
                             "seq_p50_ms": pct(seq, 0.5), "seq_p99_ms": pct(seq, 0.99)}
            for name in targets:
                if name != "direct":
                    for k in ("p50_ms", "p99_ms", "seq_p50_ms", "seq_p99_ms"):
                        row[name][f"added_{k}"] = row[name][k] - row["direct"][k]
            rounds.append(row)
            print(f"latency round {r + 1}: " + "; ".join(
                f"{k} p50 {v['p50_ms']:.2f} p99 {v['p99_ms']:.2f} ms" for k, v in row.items()), flush=True)
    finally:
        stop(gw)
        stop(lp)
        stop(mock)
    summary = {}
    for name in targets:
        if name == "direct":
            continue
        summary[name] = {k: statistics.median(r[name][k] for r in rounds)
                         for k in ("added_p50_ms", "added_p99_ms", "added_seq_p50_ms", "added_seq_p99_ms",
                                   "cpu_ms_per_request")}
    g = summary["gateway"]
    return {"rate_per_s": args.rate, "seconds_per_round": args.seconds, "rounds": rounds, "added": summary,
            "litellm": "absent" if not lite else "measured",
            "target": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS},
            "met": g["added_p50_ms"] < TARGET_P50_MS and g["added_p99_ms"] < TARGET_P99_MS}


# ---------------------------------------------------------------------------------------------- 2. budgets
def hammer(url: str, headers: dict, model: str, clients: int, per_client: int) -> tuple[float, int, int]:
    """``clients`` threads call until refused 3 times; return (cost of answered calls, answered, refused)."""
    lock = threading.Lock()
    totals = {"cost": 0.0, "ok": 0, "refused": 0}
    body = {"model": model, "messages": [{"role": "user", "content": "Count to three please."}], "max_tokens": 16}

    def client():
        refusals = 0
        with httpx.Client(headers=headers, timeout=60) as c:
            for _ in range(per_client):
                r = c.post(url, json=body)
                if r.status_code == 200:
                    u = r.json()["usage"]
                    with lock:
                        totals["cost"] += (u["prompt_tokens"] + u["completion_tokens"]) * PRICE
                        totals["ok"] += 1
                else:
                    refusals += 1
                    with lock:
                        totals["refused"] += 1
                    if refusals >= 3:
                        return

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return totals["cost"], totals["ok"], totals["refused"]


def bench_budget(args, work: Path, lite: str | None) -> dict:
    from parsimon.governance import Ledger

    limit = args.budget_limit
    mock, upstream = start_mock(delay=0.02)
    home = work / "budget-gateway"
    gw_cfg = f"""
[gateway]
checkpoint_interval_s = 0
[upstreams.mock]
base_url = "{upstream}"
[models.m]
upstream = "mock"
name = "mock"
price_in_per_1k = {PRICE * 1000}
price_out_per_1k = {PRICE * 1000}
"""
    gw, gw_url = start_gateway(gw_cfg, home)
    lp = None
    if lite:
        lp, lite_url = start_litellm(lite, upstream, work / "budget-litellm",
                                     budgets=[(f"m{i}", limit) for i in range(args.reps)])
    ledger = Ledger(home / "governance.sqlite")
    out = {"limit": limit, "clients": args.clients, "price_per_token": PRICE, "gateway": [], "litellm": []}
    try:
        for i in range(args.reps):
            wf = f"budget-rep-{i}"
            ledger.set_budget(workflow=wf, metric="money", hard=limit)
            cost, ok, refused = hammer(f"{gw_url}/v1/chat/completions", {"X-Parsimon-Workflow": wf}, "m",
                                       args.clients, args.per_client)
            spent = ledger.spent(workflow=wf, metric="money")
            out["gateway"].append({"cost": cost, "ledger_spent": spent, "ok": ok, "refused": refused,
                                   "overshoot": max(0.0, cost - limit)})
            if lite:
                cost_l, ok_l, ref_l = hammer(f"{lite_url}/v1/chat/completions", {"Authorization": "Bearer sk-master"},
                                             f"m{i}", args.clients, args.per_client)
                out["litellm"].append({"cost": cost_l, "ok": ok_l, "refused": ref_l,
                                       "overshoot": max(0.0, cost_l - limit)})
            last = out["litellm"][-1]["cost"] if lite else float("nan")
            print(f"budget rep {i + 1}/{args.reps}: gateway spent {cost:.4f} of {limit} ({ok} calls); "
                  f"litellm {last:.4f}", flush=True)
    finally:
        stop(gw)
        stop(lp)
        stop(mock)
    for name in ("gateway", "litellm"):
        reps = out[name]
        if reps:
            out[f"{name}_summary"] = {
                "reps_over_limit": sum(r["overshoot"] > 1e-12 for r in reps),
                "max_overshoot": max(r["overshoot"] for r in reps),
                "mean_spent_fraction": statistics.mean(r["cost"] for r in reps) / limit,
                "mean_answered": statistics.mean(r["ok"] for r in reps)}
    out["ledger_matches_client"] = all(abs(r["cost"] - r["ledger_spent"]) < 1e-9 for r in out["gateway"])
    return out


# ---------------------------------------------------------------------------------------------- 3. SIGKILL
def bench_sigkill(args, work: Path) -> dict:
    from parsimon.governance import AuditLog, Ledger

    mock, upstream = start_mock(delay=0.005)
    home = work / "sigkill-gateway"
    cfg = f"""
[gateway]
checkpoint_interval_s = 0
checkpoint_every = 50
[upstreams.mock]
base_url = "{upstream}"
[models.m]
upstream = "mock"
name = "mock"
price_in_per_1k = 1
price_out_per_1k = 1
[[budget]]
workflow = "gateway"
metric = "money"
hard = 1000000
"""
    port = free_port()
    gw, url = start_gateway(cfg, home, port=port)
    seen: list[tuple[int, str]] = []
    failed = [0]
    stop_flag = threading.Event()
    lock = threading.Lock()

    def client(i):
        with httpx.Client(timeout=10) as c:
            while not stop_flag.is_set():
                try:
                    r = c.post(f"{url}/v1/chat/completions", json={"model": "m", "max_tokens": 8,
                                                                     "messages": [{"role": "user", "content": f"c{i}"}]})
                except httpx.HTTPError:
                    with lock:
                        failed[0] += 1
                    time.sleep(0.01)
                    continue
                if r.status_code == 200:
                    with lock:
                        seen.append((int(r.headers["x-parsimon-audit-seq"]), hashlib.sha256(r.content).hexdigest()))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(args.kill_after)
    gw.send_signal(signal.SIGKILL)
    gw.wait()
    time.sleep(0.3)
    stop_flag.set()
    for t in threads:
        t.join()
    log, ledger = AuditLog(home / "governance.sqlite"), Ledger(home / "governance.sqlite")
    records = log.records()
    events = {e.id for e in ledger.events()}
    missing = [s for s, d in seen if s >= len(records) or records[s].after.get("response_digest") != d
               or records[s].after.get("ledger_event") not in events]
    calls = [r for r in records if r.action == "model.call"]
    orphans = len(ledger.reservations())
    report = log.verify()
    gw2, _ = start_gateway(cfg, home, port=port)  # a restart releases the dead gateway's reservations
    stop(gw2)
    stop(mock)
    return {"answers_seen": len(seen), "answers_missing_or_different": len(missing), "records": len(records),
            "model_call_records": len(calls), "ledger_events": len(events),
            "half_written": len(calls) != len(events), "chain_ok": report.ok, "chain_reason": report.reason,
            "reservations_left_by_kill": orphans, "reservations_after_restart": len(ledger.reservations()),
            "client_errors_after_kill": failed[0], "chain_ok_after_restart": AuditLog(home / "governance.sqlite").verify().ok}


# ---------------------------------------------------------------------------------------------- 4. cascade
def questions(n: int, seed: int) -> list[tuple[str, str]]:
    """Half one-digit sums (the local model gets some right), a quarter two-digit sums, a quarter products."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = (0, 1, 0, 2)[i % 4]
        if kind == 0:
            a, b, op = rng.randint(1, 9), rng.randint(1, 9), "+"
        elif kind == 1:
            a, b, op = rng.randint(10, 99), rng.randint(10, 99), "+"
        else:
            a, b, op = rng.randint(11, 99), rng.randint(11, 99), "*"
        truth = a + b if op == "+" else a * b
        out.append((f"What is {a} {op} {b}? Answer with the number only.", str(truth)))
    return out


def answer_of(text: str) -> str | None:
    """The number after the last ``=`` (models like to restate the sum: ``7 + 5 = 12``), else the first one."""
    text = text.replace(",", "")
    tail = text.rsplit("=", 1)[1] if "=" in text else text
    m = re.search(r"-?\d+", tail)
    return m.group(0) if m else None


def bench_cascade(args, work: Path) -> dict:
    thresholds = [0.5, 0.6, 0.7, 0.8, 0.9]
    srv = None
    try:
        import llama_cpp  # noqa: F401

        from parsimon.llm import LocalServer

        srv = LocalServer(port=0).start()
        cheap_url, cheap_name, cheap_kind = srv.base_url, "smollm2-135m-instruct", "SmolLM2-135M (llama.cpp, local)"
        weak = None
    except ImportError:
        weak, cheap_url = start_mock(responder="arithmetic", accuracy=0.5, name="weak")
        cheap_name, cheap_kind = "weak", "mock weak model (llama-cpp-python absent)"
    strong, strong_url = start_mock(responder="arithmetic", accuracy=1.0, name="strong")
    cascades = "\n".join(f'[cascades.auto-{int(t * 100)}]\nmodels = ["cheap", "strong"]\nthreshold = {t}\n'
                         for t in thresholds)
    cfg = f"""
[gateway]
checkpoint_interval_s = 0
[upstreams.cheap]
base_url = "{cheap_url}"
timeout_s = 120
[upstreams.strong]
base_url = "{strong_url}"
[models.cheap]
upstream = "cheap"
name = "{cheap_name}"
price_in_per_1k = 0.01
price_out_per_1k = 0.01
[models.strong]
upstream = "strong"
price_in_per_1k = 1.0
price_out_per_1k = 1.0
{cascades}
"""
    gw, url = start_gateway(cfg, work / "cascade-gateway")
    qs = questions(args.cascade_n, 0)
    results = {}
    try:
        with httpx.Client(base_url=url + "/v1", timeout=120) as c:
            for model in ["cheap", "strong"] + [f"auto-{int(t * 100)}" for t in thresholds]:
                correct, cost, escalated = 0, 0.0, 0
                for q, truth in qs:
                    r = c.post("/chat/completions", json={"model": model, "max_tokens": 12, "temperature": 0,
                                                          "messages": [{"role": "user", "content": q}]})
                    r.raise_for_status()
                    correct += answer_of(r.json()["choices"][0]["message"]["content"] or "") == truth
                    cost += float(r.headers["x-parsimon-cost"])
                    escalated += len(r.headers.get("x-parsimon-cascade", "").split(",")) > 1
                results[model] = {"accuracy": correct / len(qs), "cost": cost, "escalated": escalated / len(qs)}
                print(f"cascade {model}: accuracy {correct / len(qs):.2f}, cost {cost:.4f}, escalated "
                      f"{escalated}/{len(qs)}", flush=True)
    finally:
        stop(gw)
        stop(strong)
        stop(weak)
        if srv is not None:
            srv.stop()
    points = sorted(((v["cost"], v["accuracy"], k) for k, v in results.items()))
    front, best = [], -1.0
    for _cost, acc, k in points:
        if acc > best:
            front.append(k)
            best = acc
    return {"cheap_model": cheap_kind, "strong_model": "mock strong model (exact arithmetic), 100x the price",
            "questions": len(qs), "thresholds": thresholds, "results": results, "pareto_front": front}


# ---------------------------------------------------------------------------------------------- report
def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    lat = data.get("latency")
    if lat:
        names = list(lat["added"])
        metrics = [("added_p50_ms", "open loop p50"), ("added_p99_ms", "open loop p99"),
                   ("added_seq_p50_ms", "one at a time p50"), ("cpu_ms_per_request", "CPU ms / request")]
        width = 0.8 / len(metrics)
        for j, (key, label) in enumerate(metrics):
            vals = [max(1e-2, lat["added"][n][key]) for n in names]
            ax.bar([i + (j - 1.5) * width for i in range(len(names))], vals, width, label=label)
        ax.axhline(TARGET_P50_MS, color="k", ls="--", lw=1, label="target p50 2 ms")
        ax.axhline(TARGET_P99_MS, color="k", ls=":", lw=1, label="target p99 10 ms")
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)), names)
        ax.set_ylabel("ms: added over direct (latency); per request (CPU)")
        load = data.get("machine", {}).get("load_avg_start", [float("nan")])[0]
        ax.set_title(f"Latency at {lat['rate_per_s']:g} req/s, median of {len(lat['rounds'])} rounds "
                     f"(load avg {load:.1f} on {data.get('machine', {}).get('cpus')} CPUs)", fontsize=10)
        ax.legend(fontsize=7)
    ax = axes[0][1]
    bud = data.get("budget")
    if bud:
        for name, color in (("gateway", "C2"), ("litellm", "C3")):
            reps = bud[name]
            if reps:
                ax.plot(range(1, len(reps) + 1), [r["cost"] / bud["limit"] for r in reps], "o-", color=color,
                        label=f"{name} ({bud[name + '_summary']['reps_over_limit']} of {len(reps)} over)")
        ax.axhline(1.0, color="k", lw=1, label="hard limit")
        ax.set_xlabel("repetition")
        ax.set_ylabel("spent / limit")
        ax.set_title(f"{bud['clients']} concurrent clients against one hard budget")
        ax.legend(fontsize=8)
    ax = axes[1][0]
    kill = data.get("sigkill")
    if kill:
        ax.axis("off")
        lines = [f"answers clients saw: {kill['answers_seen']}",
                 f"... missing from log or ledger: {kill['answers_missing_or_different']}",
                 f"call records / ledger events: {kill['model_call_records']} / {kill['ledger_events']}",
                 f"chain verifies after SIGKILL: {kill['chain_ok']}",
                 f"reservations left by the kill: {kill['reservations_left_by_kill']}, "
                 f"after restart: {kill['reservations_after_restart']}"]
        ax.text(0.02, 0.9, "Gateway SIGKILLed under load", fontsize=12, weight="bold", transform=ax.transAxes)
        for i, line in enumerate(lines):
            ax.text(0.02, 0.75 - i * 0.12, line, fontsize=10, transform=ax.transAxes)
    ax = axes[1][1]
    cas = data.get("cascade")
    if cas:
        res = cas["results"]
        for k, v in res.items():
            color = "C3" if k in cas["pareto_front"] else "C7"
            ax.scatter(v["cost"], v["accuracy"], color=color)
            ax.annotate(k, (v["cost"], v["accuracy"]), fontsize=8, xytext=(4, 3), textcoords="offset points")
        front = [res[k] for k in cas["pareto_front"]]
        ax.plot([p["cost"] for p in front], [p["accuracy"] for p in front], "C3-", lw=1, label="Pareto front")
        ax.set_xlabel(f"cost of {cas['questions']} questions")
        ax.set_ylabel("accuracy")
        ax.set_title(f"Cascade: {cas['cheap_model']} then a strong mock", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="Run folder (default runs/gateway-bench-<UTC stamp>).")
    p.add_argument("--save", action="store_true", help="Also write benchmarks/results/gateway.{json,png}.")
    p.add_argument("--quick", action="store_true", help="Short settings (a smoke run).")
    p.add_argument("--litellm", default=None, help="LiteLLM's `litellm` executable (its own venv).")
    p.add_argument("--no-litellm", action="store_true", help="Skip LiteLLM even if installed.")
    p.add_argument("--rate", type=float, default=200.0, help="Requests per second in the latency test.")
    p.add_argument("--seconds", type=float, default=5.0, help="Seconds per latency round and target.")
    p.add_argument("--rounds", type=int, default=3, help="Latency rounds (the median is reported).")
    p.add_argument("--sequential", type=int, default=300, help="Closed-loop calls per latency round and target.")
    p.add_argument("--reps", type=int, default=20, help="Repetitions of the budget test.")
    p.add_argument("--clients", type=int, default=8, help="Concurrent clients (budget and SIGKILL tests).")
    p.add_argument("--per-client", type=int, default=40, help="Most calls per client per budget repetition.")
    p.add_argument("--budget-limit", type=float, default=0.5, help="The hard money limit per repetition.")
    p.add_argument("--kill-after", type=float, default=3.0, help="Seconds of load before the SIGKILL.")
    p.add_argument("--cascade-n", type=int, default=30, help="Questions in the cascade test.")
    p.add_argument("--only", action="append", choices=["latency", "budget", "sigkill", "cascade"],
                   help="Run only these parts (repeatable).")
    p.add_argument("--replot", type=Path, default=None, help="Only redraw the PNG of an earlier gateway.json.")
    args = p.parse_args()
    if args.replot is not None:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        return
    if args.quick:
        args.seconds, args.rounds, args.reps, args.cascade_n, args.kill_after = 2.0, 1, 3, 9, 1.5
    from parsimon.run import default_out

    out = args.out or default_out("gateway-bench")
    out.mkdir(parents=True, exist_ok=True)
    lite = None if args.no_litellm else litellm_bin(args.litellm)
    parts = args.only or ["latency", "budget", "sigkill", "cascade"]
    data: dict = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                              "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
                  "litellm": None}
    if lite:
        ver = subprocess.run([str(Path(lite).with_name("python")), "-c",
                              "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True)
        data["litellm"] = {"binary": lite, "version": ver.stdout.strip()}
    else:
        data["litellm"] = "absent: install it into its own venv (see the module docstring); its columns are skipped"
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for part in parts:
            print(f"== {part}", flush=True)
            if part == "latency":
                data["latency"] = bench_latency(args, work, lite)
            elif part == "budget":
                data["budget"] = bench_budget(args, work, lite)
            elif part == "sigkill":
                data["sigkill"] = bench_sigkill(args, work)
            elif part == "cascade":
                data["cascade"] = bench_cascade(args, work)
    data["machine"]["load_avg_end"] = os.getloadavg()
    data["seconds"] = round(time.time() - t0, 1)
    data["settings"] = {k: v for k, v in vars(args).items() if k not in ("out",)}
    (out / "gateway.json").write_text(json.dumps(data, indent=1, default=str))
    plot(data, out / "gateway.png")
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        shutil.copy(out / "gateway.json", RESULTS / "gateway.json")
        shutil.copy(out / "gateway.png", RESULTS / "gateway.png")
    print(f"wrote {out / 'gateway.json'} and {out / 'gateway.png'}" + (" (and benchmarks/results/)" if args.save else ""))


if __name__ == "__main__":
    main()
