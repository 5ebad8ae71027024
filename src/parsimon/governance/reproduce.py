"""Report section for the production layer: budgets with a hard stop, a tamper-evident proof-of-action log,
escalation decisions and adaptive feedback, exercised on a simulated agent workflow, plus measured
append and verification speed."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from parsimon.report.section import Claim, Figure, ReproContext, Section, Table

__all__ = ["PAPER", "reproduce"]

PAPER = "Production layer (the papers leave it out): ledger and budgets, proof-of-action log, escalation, feedback"


def _append_rate(kind: str, synchronous: str, n: int, d: Path) -> float:
    from parsimon.governance import AuditLog, JsonlAuditLog

    path = d / f"{kind}-{synchronous}.{'sqlite' if kind == 'sqlite' else 'jsonl'}"
    log = AuditLog(path, synchronous=synchronous) if kind == "sqlite" else JsonlAuditLog(path, synchronous=synchronous)
    log.head()
    t0 = time.perf_counter()
    for i in range(n):
        log.append(actor="agent", action="click", target=f"#b{i}", args={"i": i},
                   before={"screenshot_sha256": "ab" * 32}, outcome="ok", run="bench")
    dt = time.perf_counter() - t0
    log.close()
    return n / dt


def _workflow(ctx: ReproContext, rng: random.Random) -> dict:
    """A simulated agent: 40 proposed steps under a money budget, every step escalated and logged."""
    from parsimon.errors import BudgetExceeded
    from parsimon.governance import (
        BudgetWarning,
        EscalationConfig,
        EscalationPolicy,
        FeedbackEmitter,
        JsonlSink,
        ProposedAction,
        escalate,
        get_audit_log,
        get_ledger,
        run_scope,
    )

    ledger, audit = get_ledger(), get_audit_log()
    run = f"reproduce-governance-{int(time.time())}"
    ledger.set_budget(run=run, metric="money", soft=0.25, hard=0.40)
    policy = EscalationPolicy(EscalationConfig(), ledger=ledger, run=run)
    events_path = ctx.path("governance_feedback.jsonl")
    emitter = FeedbackEmitter("adaptive", sinks=[JsonlSink(events_path)])
    kinds = ["click", "type", "scroll", "open", "submit", "delete", "click", "type"]
    verdicts = {"auto": 0, "ask": 0, "refuse": 0}
    approved = refused = executed = 0
    stopped_at = None
    emitted = 0
    soft_warnings: list[str] = []
    with warnings.catch_warnings(record=True) as caught, run_scope(run=run, workflow="reproduce-governance"):
        emitted += emitter.plan("simulated form-filling agent, 40 steps", steps=kinds)
        for step in range(40):
            kind = kinds[step % len(kinds)]
            conf = round(rng.uniform(0.55, 1.0), 2)
            action = ProposedAction(kind=kind, target=f"#field-{step}", confidence=conf)
            decision = policy.decide(action)
            verdicts[decision.verdict] += 1
            # A scripted reviewer: approves reversible actions, and irreversible ones at confidence >= 0.8.
            final = escalate(action, policy=policy, audit=audit,
                             ask=lambda a, d: not policy.is_irreversible(a) or (a.confidence or 0) >= 0.8)
            if final.verdict == "refuse":
                refused += 1
                emitted += emitter.needs_user(f"step {step}: {kind} not allowed ({decision.reason})")
                continue
            approved += decision.verdict == "ask"
            emitted += emitter.step_started(f"{kind} {action.target}", step=step, action=kind)
            try:
                ledger.charge(component="agent.step", money=0.03, actions=1, tokens_in=300, tokens_out=40)
            except BudgetExceeded as exc:
                stopped_at = step
                emitted += emitter.error(f"budget stop before step {step}: {exc}")
                break
            success = rng.random() > 0.1
            if not success:
                policy.record_failure()
            audit.append(actor="agent", action=kind, target=action.target, args={"step": step},
                         before={"screenshot_sha256": hashlib.sha256(f"b{step}".encode()).hexdigest()},
                         after={"screenshot_sha256": hashlib.sha256(f"a{step}".encode()).hexdigest()},
                         outcome="ok" if success else "error: element not found")
            executed += 1
            emitted += emitter.step_result(f"{kind} {'done' if success else 'failed'}", step=step, action=kind,
                                           verified=success, confidence=conf)
        emitted += emitter.final(f"{executed} steps executed")
    soft_warnings = [str(w.message) for w in caught if issubclass(w.category, BudgetWarning)]
    spent = ledger.spent(run=run, metric="money")
    return {"run": run, "verdicts": verdicts, "approved_by_person": approved, "refused": refused,
            "executed": executed, "budget_stop_before_step": stopped_at, "money_spent": spent,
            "hard_limit": 0.40, "soft_limit_warnings": soft_warnings, "events_emitted": emitted,
            "records": len(audit.records(run=run)), "audit_path": str(audit.path)}


def _tamper_check(audit_path: str, d: Path) -> dict:
    """Copy the log, change one field of one record, and check verification names that record."""
    from parsimon.governance import AuditLog

    copy = d / "tampered.sqlite"
    src = sqlite3.connect(audit_path)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    n = dst.execute("SELECT COUNT(*) FROM audit_records").fetchone()[0]
    victim = n // 2
    dst.execute("UPDATE audit_records SET outcome = 'ok (edited)' WHERE seq = ?", (victim,))
    dst.commit()
    dst.close()
    report = AuditLog(copy).verify()
    clean = AuditLog(audit_path).verify()
    return {"records": n, "edited_seq": victim, "clean_ok": clean.ok, "tampered_ok": report.ok,
            "first_bad": report.first_bad, "reason": report.reason}


def reproduce(ctx: ReproContext) -> Section:
    section = Section(
        name="governance",
        paper=PAPER,
        summary=(
            "A simulated 40-step agent runs under a run-level money budget (soft 0.25, hard 0.40): every "
            "proposed action goes through the escalation policy (a scripted reviewer approves reversible "
            "actions, and irreversible ones only at confidence >= 0.8), every executed action is charged to the ledger and written to "
            "the hash-chained proof-of-action log, and feedback events go through the adaptive verbosity policy. "
            "Then one record of a copy of the log is edited and verification must name it. Finally the append "
            "and verification speeds are measured on this machine."
        ),
    )
    rng = random.Random(ctx.seed)
    with tempfile.TemporaryDirectory() as tmp, ctx.progress("governance", total=3) as bar:
        d = Path(tmp)
        wf = _workflow(ctx, rng)
        bar.advance()
        tamper = _tamper_check(wf["audit_path"], d)
        bar.advance()
        n = 2000 if ctx.full else 500
        rates = {}
        for kind, sync in (("sqlite", "normal"), ("sqlite", "full"), ("jsonl", "normal"), ("jsonl", "full")):
            runs = []
            for r in range(3):
                sub = d / f"{kind}-{sync}-{r}"
                sub.mkdir()
                runs.append(_append_rate(kind, sync, n, sub))
            rates[f"{kind} {sync}"] = statistics.median(runs)
        from parsimon.governance import AuditLog

        vlog = AuditLog(d / "verify.sqlite")
        nv = 50_000 if ctx.full else 10_000
        for i in range(nv):
            vlog.append(actor="agent", action="click", target=f"#b{i}", args={"i": i}, outcome="ok", run="v")
        t0 = time.perf_counter()
        vrep = vlog.verify()
        vrate = nv / (time.perf_counter() - t0)
        bar.advance()
    section.tables.append(Table(
        "Simulated workflow under governance",
        ["quantity", "value"],
        [["proposed steps", 40], ["verdict auto / ask / refuse",
                                  f"{wf['verdicts']['auto']} / {wf['verdicts']['ask']} / {wf['verdicts']['refuse']}"],
         ["approved by the reviewer", wf["approved_by_person"]], ["refused", wf["refused"]],
         ["executed and logged", wf["executed"]], ["records in the audit log for the run", wf["records"]],
         ["money spent / hard limit", f"{wf['money_spent']:.3f} / {wf['hard_limit']:.2f}"],
         ["soft-limit warnings (0.25)", len(wf["soft_limit_warnings"])],
         ["budget stop raised before step", wf["budget_stop_before_step"]],
         ["feedback events shown (adaptive)", wf["events_emitted"]]],
    ))
    section.tables.append(Table(
        "Proof-of-action log speed on this machine (median of 3)",
        ["log", "appends/s"], [[k, round(v)] for k, v in rates.items()],
        note=f"{n} appends per run; 'normal' survives a process crash, 'full' also a power loss. "
             f"Verification: {vrate:,.0f} records/s over {nv:,} records.",
    ))
    best_durable = max(rates["sqlite full"], rates["jsonl full"])
    section.claims += [
        Claim("A charge that would cross the hard budget is refused before it happens",
              "required by the issue", f"stopped before step {wf['budget_stop_before_step']}; spent "
              f"{wf['money_spent']:.3f} <= 0.40", reproduced=wf["money_spent"] <= 0.40 + 1e-12
              and wf["budget_stop_before_step"] is not None),
        Claim("Editing one record is detected at that record", "required by the issue",
              f"edited seq {tamper['edited_seq']}, verify reports first bad seq {tamper['first_bad']}",
              reproduced=(tamper["clean_ok"] and not tamper["tampered_ok"]
                          and tamper["first_bad"] == tamper["edited_seq"])),
        Claim(">= 1,000 durable appends per second in one process", ">= 1,000/s (target)",
              f"{best_durable:,.0f}/s (power-loss durable), {rates['sqlite normal']:,.0f}/s (crash durable)",
              reproduced=best_durable >= 1000),
        Claim("Verification >= 100,000 records per second", ">= 100,000/s (target)", f"{vrate:,.0f}/s",
              reproduced=vrate >= 100_000 and vrep.ok),
    ]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        ax.bar(list(rates), list(rates.values()), color="#4c72b0")
        ax.axhline(1000, color="r", ls="--", label="target 1,000/s")
        ax.set_yscale("log")
        ax.set_ylabel("appends / s")
        ax.legend()
        fig.tight_layout()
        png = ctx.path("governance_appends.png")
        fig.savefig(png, dpi=100)
        plt.close(fig)
        section.figures.append(Figure(png, "Proof-of-action appends per second by store and durability level"))
    except ImportError:  # pragma: no cover
        pass
    ctx.path("governance.json").write_text(json.dumps({"workflow": wf, "tamper": tamper, "rates": rates,
                                                       "verify_per_s": vrate}, indent=2, default=str))
    section.config = {"seed": ctx.seed, "appends_per_run": n, "verified_records": nv}
    section.not_reproduced.append("No paper numbers exist for this layer; the targets are the project's own.")
    return section
