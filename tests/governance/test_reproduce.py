from __future__ import annotations

import json

import pytest

from parsimon.governance.reproduce import reproduce
from parsimon.report.section import ReproContext


@pytest.mark.slow
def test_governance_section_reports_budget_stop_and_tamper_detection(tmp_path):
    section = reproduce(ReproContext(out_dir=tmp_path, seed=3))
    assert section.name == "governance" and not section.error
    by_text = {c.text: c for c in section.claims}
    budget = by_text["A charge that would cross the hard budget is refused before it happens"]
    tamper = by_text["Editing one record is detected at that record"]
    assert budget.reproduced and tamper.reproduced
    data = json.loads((tmp_path / "governance.json").read_text())
    wf = data["workflow"]
    assert wf["money_spent"] <= 0.40 + 1e-12 and wf["budget_stop_before_step"] is not None
    # every executed step and every escalation decision is in the log
    assert wf["records"] >= wf["executed"]
    assert data["tamper"]["first_bad"] == data["tamper"]["edited_seq"]
    assert all(v > 0 for v in data["rates"].values())
    assert (tmp_path / "governance_appends.png").exists()
    lines = (tmp_path / "governance_feedback.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "plan" and json.loads(lines[-1])["kind"] == "final"
    # the gateway part: its correctness claims hold (its latency claim depends on the machine's load)
    gateway = [c for c in section.claims if "gateway" in c.text or "receipt" in c.text or "person" in c.text]
    assert len(gateway) == 3 and all(c.reproduced for c in gateway), [(c.text, c.ours) for c in gateway]
    assert (tmp_path / "gateway_receipt.json").exists()
