from __future__ import annotations

import io
import json

import pytest

from parsimon.governance.feedback import (
    KINDS,
    POLICIES,
    AdaptivePolicy,
    CallbackSink,
    FeedbackEmitter,
    FeedbackEvent,
    JsonlSink,
    TerminalSink,
    resolve_policy,
)


def _script(fb: FeedbackEmitter) -> None:
    """A scripted run: 24 events, numbered in the comments (index into the list of sent events)."""
    fb.plan("Book a table: search, pick, fill form, submit", steps=["search", "pick", "fill", "submit"])  # 0
    fb.step_started("Open the booking site", step=1, action="open")  # 1
    fb.step_result("Site loaded: 12 restaurants listed", step=1, action="open", verified=True)  # 2
    fb.step_started("Search for 'Luigi'", step=2, action="type")  # 3
    fb.step_result("3 matches, first is Luigi's Trattoria", step=2, action="type", verified=True)  # 4
    fb.step_started("Open Luigi's Trattoria", step=3, action="open")  # 5
    fb.step_result("Page shows free tables at 19:00 and 20:30", step=3, action="open", verified=True)  # 6
    fb.step_started("Pick 19:00", step=4, action="type")  # 7
    fb.step_result("19:00 selected", step=4, action="type", verified=True)  # 8
    fb.step_started("Tick 'terrace'", step=5, action="click")  # 9  (novel action)
    fb.step_result("Terrace ticked", step=5, action="click", verified=True)  # 10
    fb.step_started("Type the name", step=6, action="type", confidence=0.4)  # 11 (low confidence)
    fb.step_result("Name typed", step=6, action="type", verified=True)  # 12
    fb.step_started("Type the phone", step=7, action="type")  # 13
    fb.step_result("Phone typed but the field shows an error", step=7, action="type", verified=False)  # 14
    fb.error("Phone number rejected: wrong format", step=7)  # 15
    fb.step_started("Retype the phone with country code", step=8, action="type")  # 16
    fb.step_result("Phone accepted", step=8, action="type", verified=True)  # 17
    fb.needs_user("Submit the booking for 2 at 19:00?")  # 18
    fb.step_started("Submit the booking", step=9, action="submit", irreversible=True)  # 19
    fb.step_result("Confirmation #A17 shown", step=9, action="submit", verified=True, irreversible=True)  # 20
    fb.step_started("Type a note", step=10, action="type")  # 21
    fb.step_result("Note typed", step=10, action="type", verified=True)  # 22
    fb.final("Booked: Luigi's Trattoria, 19:00, terrace, confirmation #A17")  # 23


ALL = list(range(24))
EXPECTED = {
    "verbose": ALL,
    "silent_until_final": [18, 23],
    "plan_and_results": [0, 2, 4, 6, 8, 10, 12, 14, 15, 17, 18, 20, 22, 23],
    # quiet_after=3: transparent until 3 verified successes (events 0-6), then quiet for routine steps;
    # 9-10 novel "click"; 11-12 low confidence; 14 failed result; 15 error; after the failure transparent
    # again (16-22 with streak 1, 2, 3), 19-20 irreversible; 18 and 23 always.
    "adaptive": [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_policies_pass_exactly_the_expected_events(name):
    everything, passed = [], []
    recorder = FeedbackEmitter("verbose", sinks=[everything.append])
    _script(recorder)
    fb = FeedbackEmitter(name, sinks=[CallbackSink(passed.append)])
    _script(fb)
    indices = [i for i, e in enumerate(everything) if any(e is p or (e.kind, e.message, e.step) ==
                                                          (p.kind, p.message, p.step) for p in passed)]
    assert indices == EXPECTED[name]
    assert sum(fb.emitted.values()) == len(EXPECTED[name])
    assert sum(fb.emitted.values()) + sum(fb.suppressed.values()) == 24


def test_adaptive_goes_quiet_after_streak_without_failures():
    passed = []
    fb = FeedbackEmitter("adaptive", sinks=[passed.append], quiet_after=2)
    for i in range(5):
        fb.step_started(f"Scroll page {i}", step=i, action="scroll")
        fb.step_result(f"Page {i} shows 10 items", step=i, action="scroll", verified=True)
    # Two verified successes make it quiet; steps 2-4 are routine repeats of a known action.
    assert [(e.kind, e.step) for e in passed] == [("step_started", 0), ("step_result", 0),
                                                  ("step_started", 1), ("step_result", 1)]
    assert fb.policy.streak == 5 and fb.suppressed == {"step_started": 3, "step_result": 3}


def test_unverified_results_do_not_build_a_streak():
    fb = FeedbackEmitter("adaptive", quiet_after=1)
    fb.step_result("Read 3 rows", step=1, action="read")
    fb.step_result("Read 4 rows", step=2, action="read")
    assert fb.policy.streak == 0 and fb.emitted["step_result"] == 2


def test_step_result_needs_content():
    for bad in ("working…", "Working...", "  thinking  ", "in progress", ""):
        with pytest.raises(ValueError, match="message"):
            FeedbackEvent("step_result", bad)
    FeedbackEvent("step_started", "working…")  # only results must carry content
    FeedbackEvent("step_result", "Working hours found: 9-17")
    with pytest.raises(ValueError, match="`kind`.*'final'"):
        FeedbackEvent("progress", "x")
    with pytest.raises(ValueError, match="`confidence`"):
        FeedbackEvent("plan", "x", confidence=2)


def test_registry_resolves_names_and_objects():
    assert sorted(POLICIES) == ["adaptive", "plan_and_results", "silent_until_final", "verbose"]
    with pytest.raises(ValueError, match=r"\['adaptive', 'plan_and_results', 'silent_until_final', 'verbose'\]"):
        resolve_policy("chatty")
    custom = AdaptivePolicy(quiet_after=0)
    assert resolve_policy(custom) is custom
    with pytest.raises(ValueError, match="should_emit"):
        resolve_policy(object())
    with pytest.raises(ValueError, match="`quiet_after`"):
        resolve_policy("adaptive", quiet_after=-1)


def test_jsonl_and_terminal_sinks(tmp_path):
    from rich.console import Console

    out = io.StringIO()
    path = tmp_path / "fb" / "events.jsonl"
    fb = FeedbackEmitter("verbose", sinks=[JsonlSink(path), TerminalSink(Console(file=out, width=120))])
    fb.plan("Two steps", steps=["look", "act [now]"])
    fb.step_result("Found [3] items", step=1, verified=True, confidence=0.9)
    fb.error("Timeout after 30 s", step=2)
    fb.final("Done")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["plan", "step_result", "error", "final"]
    assert rows[1]["data"] == {"verified": True} and rows[1]["step"] == 1 and rows[1]["confidence"] == 0.9
    text = out.getvalue()
    assert "Two steps" in text and "2. act [now]" in text and "[1] Found [3] items (confidence 0.90)" in text
    assert "Timeout after 30 s" in text and set(KINDS) >= {r["kind"] for r in rows}
