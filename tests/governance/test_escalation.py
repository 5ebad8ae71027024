from __future__ import annotations

import pytest

from parsimon.governance import get_audit_log, get_ledger, run_scope
from parsimon.governance.escalation import (
    Decision,
    EscalationConfig,
    EscalationPolicy,
    ProposedAction,
    escalate,
    is_interactive,
)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# (name, action, failures before deciding, budget spent of a hard limit of 1.0 money or None, verdict, rules)
CASES = [
    ("plain click", ProposedAction("click"), 0, None, "auto", ()),
    ("confident click", ProposedAction("click", confidence=0.9), 0, None, "auto", ()),
    ("confidence at auto threshold", ProposedAction("click", confidence=0.8), 0, None, "auto", ()),
    ("unsure click", ProposedAction("click", confidence=0.5), 0, None, "ask", ("confidence",)),
    ("confidence at refuse threshold", ProposedAction("click", confidence=0.3), 0, None, "ask", ("confidence",)),
    ("guessing click", ProposedAction("click", confidence=0.1), 0, None, "refuse", ("confidence",)),
    ("delete", ProposedAction("delete", target="/tmp/x", confidence=0.99), 0, None, "ask", ("irreversible",)),
    ("pay", ProposedAction("pay"), 0, None, "ask", ("irreversible",)),
    ("send", ProposedAction("send"), 0, None, "ask", ("irreversible",)),
    ("submit", ProposedAction("submit"), 0, None, "ask", ("irreversible",)),
    ("flagged irreversible", ProposedAction("type", irreversible=True), 0, None, "ask", ("irreversible",)),
    ("flag cannot remove risk", ProposedAction("delete", irreversible=False), 0, None, "ask", ("irreversible",)),
    ("configured kind", ProposedAction("deploy"), 0, None, "ask", ("irreversible",)),
    ("unsure delete", ProposedAction("delete", confidence=0.1), 0, None, "refuse", ("irreversible", "confidence")),
    ("one failure", ProposedAction("click"), 1, None, "auto", ()),
    ("two failures", ProposedAction("click"), 2, None, "ask", ("failures",)),
    ("four failures", ProposedAction("click"), 4, None, "refuse", ("failures",)),
    ("budget ample", ProposedAction("click"), 0, 0.5, "auto", ()),
    ("budget at 25% left", ProposedAction("click"), 0, 0.75, "auto", ()),
    ("budget low", ProposedAction("click"), 0, 0.9, "ask", ("budget",)),
    ("budget exhausted", ProposedAction("click"), 0, 1.0, "refuse", ("budget",)),
    ("low budget and delete", ProposedAction("delete"), 0, 0.9, "ask", ("irreversible", "budget")),
]


@pytest.mark.parametrize("name, action, failures, spent, verdict, rules", CASES, ids=[c[0] for c in CASES])
def test_decision_table(name, action, failures, spent, verdict, rules):
    ledger = get_ledger()
    with run_scope("r-esc"):
        if spent is not None:
            ledger.set_budget(run="r-esc", metric="money", hard=1.0)
            ledger.charge(component="agent", money=spent)
        clock = Clock()
        policy = EscalationPolicy(ledger=ledger, clock=clock, irreversible_kinds={"deploy"})
        for _ in range(failures):
            policy.record_failure()
        decision = policy.decide(action)
    assert decision.verdict == verdict, decision
    assert decision.rules == rules
    assert decision.reason.startswith(repr(action.kind))


def test_failures_leave_the_window():
    clock = Clock()
    policy = EscalationPolicy(clock=clock, failure_window_s=60)
    for _ in range(4):
        policy.record_failure()
    assert policy.decide(ProposedAction("click")).verdict == "refuse"
    clock.t += 61
    assert policy.recent_failures() == 0 and policy.decide(ProposedAction("click")).verdict == "auto"


def test_workflow_budget_counts_and_reason_is_readable():
    ledger = get_ledger()
    ledger.set_budget(workflow="wf", metric="tokens", hard=1000)
    ledger.charge(component="llm", tokens_in=950, workflow="wf")
    policy = EscalationPolicy(ledger=ledger, workflow="wf")
    d = policy.decide(ProposedAction("click"))
    assert d.verdict == "ask" and "5% of the tokens budget of workflow 'wf' is left (50 of 1000)" in d.reason


def test_config_validation_and_overrides():
    with pytest.raises(ValueError, match="refuse_confidence"):
        EscalationConfig(auto_confidence=0.2, refuse_confidence=0.5)
    with pytest.raises(ValueError, match="ask_failures"):
        EscalationConfig(ask_failures=5, refuse_failures=2)
    with pytest.raises(ValueError, match="unknown setting"):
        EscalationPolicy(threshold=0.5)
    with pytest.raises(ValueError, match="`confidence`"):
        ProposedAction("click", confidence=1.5)
    only = EscalationPolicy(EscalationConfig(irreversible_kinds={"deploy"}))
    assert only.decide(ProposedAction("delete")).verdict == "auto"  # an explicit config replaces the defaults
    added = EscalationPolicy(irreversible_kinds={"deploy"})
    assert added.config.irreversible_kinds >= {"delete", "deploy"}


def test_escalate_uses_hook_and_audits():
    log = get_audit_log()
    asked = []

    def hook(action, decision):
        asked.append((action.kind, decision.verdict))
        return action.target == "ok.txt"

    policy = EscalationPolicy()
    yes = escalate(ProposedAction("delete", target="ok.txt"), policy=policy, ask=hook, audit=log)
    no = escalate(ProposedAction("delete", target="precious.txt"), policy=policy, ask=hook, audit=log)
    auto = escalate(ProposedAction("click"), policy=policy, ask=hook, audit=log)
    assert asked == [("delete", "ask"), ("delete", "ask")]
    assert (yes.verdict, yes.asked, "approved when asked" in yes.reason) == ("auto", True, True)
    assert (no.verdict, no.asked, "denied when asked" in no.reason) == ("refuse", True, True)
    assert (auto.verdict, auto.asked) == ("auto", False)
    records = log.records()
    assert [(r.actor, r.action, r.target, r.outcome) for r in records] == [
        ("escalation", "decide", "ok.txt", "auto"), ("escalation", "decide", "precious.txt", "refuse"),
        ("escalation", "decide", None, "auto")]
    assert records[0].args["kind"] == "delete" and records[0].after["asked"] is True
    assert log.verify().ok


def test_non_interactive_refuses_without_asking(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert not is_interactive()
    d = escalate(ProposedAction("pay", target="invoice-7"), policy=EscalationPolicy())
    assert d == Decision("refuse", d.reason, asked=False, rules=("irreversible",))
    assert "non-interactive" in d.reason
    # A reversible, confident action needs no one.
    assert escalate(ProposedAction("click", confidence=0.99), policy=EscalationPolicy()).verdict == "auto"


def test_default_hook_prompts_on_a_tty(monkeypatch):
    import parsimon.governance.escalation as esc

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(esc, "is_interactive", lambda: True)
    monkeypatch.setattr("rich.prompt.Confirm.ask", lambda *a, **k: True)
    d = escalate(ProposedAction("send", target="mail"), policy=EscalationPolicy())
    assert d.verdict == "auto" and d.asked
