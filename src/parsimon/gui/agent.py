"""One governed episode: observe, decide, escalate, act, log.

:func:`run_episode` drives a policy on an environment for one task and seed:

1. ``reset`` the environment; announce the plan (a ``plan`` feedback event with the instruction's steps).
2. Each step: the policy decides. An invalid decision (an unreadable model reply) is counted and
   reported; the environment does not move. An MCP tool call is run by the policy; the environment does
   not move either.
3. An action the app marks irreversible (checkout's "Pay now"), and every ``interact`` (hand over to a
   person), goes through :func:`parsimon.governance.escalate` first. ``approve="ask"`` asks a person on
   the terminal and refuses when nobody can be asked (no TTY, or ``CI`` set); ``"deny"`` refuses;
   ``"auto"`` approves, and the approval is recorded as such. A refused action is not taken and ends
   the episode (recorded). A ``needs_user`` event precedes every question.
4. The action runs; the proof-of-action log gets a record (actor, action, target, arguments, SHA-256 of
   the screenshot before and after, URL, outcome; the run id comes from the current ``run_scope``), the
   feedback emitter gets ``step_started`` and ``step_result`` (verified when the action ran without
   error), and the transition log gets (state, action, next state).
5. At the end a ``final`` event says whether the task was solved.

Model tokens are charged by :class:`parsimon.llm.ChatClient` itself, under the same run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from parsimon.errors import ConfigError, LLMError
from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.policies.base import Policy
from parsimon.gui.policies.roles import split_plan

__all__ = ["APPROVALS", "EpisodeResult", "StepRecord", "ask_hook", "run_episode"]

APPROVALS = ("ask", "deny", "auto")


@dataclass
class StepRecord:
    """One step of an episode (a line of ``steps.jsonl``)."""

    task: str
    seed: int
    step: int
    action: dict | None
    output: str
    valid: bool
    error: str | None = None
    reward: float = 0.0
    success: bool = False
    escalation: dict | None = None
    mcp_call: dict | None = None
    seconds: float = 0.0
    decide_s: float = 0.0
    tokens: int = 0
    url: str = ""
    before_sha256: str | None = None
    after_sha256: str | None = None


@dataclass
class EpisodeResult:
    """The outcome of one episode."""

    task: str
    seed: int
    goal: str
    success: bool
    reward: float
    steps: int
    decisions: int
    invalid: int
    refused: int
    ended_by: str  # task | agent | truncated | refused | error
    seconds: float
    tokens: int
    records: list[StepRecord] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """Everything but the step records (a line of ``episodes.jsonl``)."""
        d = asdict(self)
        d.pop("records")
        return d


def ask_hook(approve: str) -> Callable | None:
    """The escalation hook for ``approve``: None (ask a person, or refuse when none can answer), always no,
    or always yes."""
    if approve not in APPROVALS:
        raise ConfigError(f"`approve` must be one of {list(APPROVALS)}, got {approve!r}")
    return {"ask": None, "deny": lambda action, decision: False, "auto": lambda action, decision: True}[approve]


def _target(action: Action) -> str | None:
    t = action.target
    if isinstance(t, Element):
        return f"element {t.id}"
    if isinstance(t, Point):
        return f"point {t.x:g},{t.y:g} {t.space}"
    return None if t is None else "window"


def run_episode(env: Any, policy: Policy, task: Any, seed: int, *, approve: str = "ask", feedback: Any = None,
                audit: Any = None, recorder: Any = None, max_steps: int | None = None) -> EpisodeResult:
    """Run one episode (see the module docstring).

    Args:
        env: A browser or desktop environment.
        policy: The policy.
        task: The task object (``env.reset(options={"task": task})``).
        seed: The episode seed.
        approve: ``ask``, ``deny`` or ``auto`` for irreversible actions and ``interact``.
        feedback: A :class:`parsimon.governance.FeedbackEmitter` (None: no events).
        audit: A proof-of-action log (None: no records).
        recorder: A :class:`~parsimon.gui.transitions.TransitionRecorder` (None: no transitions).
        max_steps: Decisions allowed (default: the task's ``max_steps``).
    """
    from parsimon.governance import EscalationPolicy, ProposedAction, escalate, get_ledger

    hook = ask_hook(approve)
    gate = EscalationPolicy(irreversible_kinds={"pay", "interact"}, ledger=get_ledger())
    t_start = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"task": task})
    goal, task_id = info.get("goal", obs.goal), info.get("task", getattr(task, "id", str(task)))
    policy.reset(goal, info)
    limit = max_steps or getattr(task, "max_steps", 20)
    if feedback is not None:
        feedback.plan(f"{task_id} (seed {seed}): {goal}", steps=split_plan(goal))
    res = EpisodeResult(task_id, seed, goal, False, 0.0, 0, 0, 0, 0, "truncated", 0.0, 0)
    last_info: dict[str, Any] = info
    app_state = info.get("state")
    for n in range(1, limit + 1):
        t0 = time.perf_counter()
        try:
            decision = policy.act(obs, last_info)
        except LLMError as exc:
            res.ended_by, res.error = "error", f"{type(exc).__name__}: {exc}"
            if feedback is not None:
                feedback.error(f"step {n}: the model endpoint failed: {exc}", step=n)
            break
        decide_s = time.perf_counter() - t0
        res.decisions += 1
        res.tokens += decision.tokens
        rec = StepRecord(task_id, seed, n, decision.action.to_dict() if decision.action else None, decision.output,
                         decision.valid, decision.error, decide_s=decide_s, tokens=decision.tokens, url=obs.url)
        if not decision.valid:
            res.invalid += 1
            rec.seconds = time.perf_counter() - t0
            res.records.append(rec)
            if feedback is not None:
                feedback.step_result(f"step {n}: no valid action ({decision.error})", step=n, verified=False,
                                     action="invalid")
            continue
        if decision.action is None:  # an MCP tool call: the policy ran it, the screen did not change
            rec.mcp_call = decision.mcp_call
            rec.seconds = time.perf_counter() - t0
            res.records.append(rec)
            if feedback is not None:
                feedback.step_result(f"step {n}: called {decision.mcp_call['name']}", step=n, verified=True,
                                     action="mcp")
            continue
        action = decision.action
        element = env.element_at(action) if hasattr(env, "element_at") else None
        risky = action.kind == "interact" or bool(getattr(task, "irreversible", lambda *a: False)(
            getattr(env, "page", None), action, element))
        if risky:
            kind = "interact" if action.kind == "interact" else "pay"
            question = action.text if action.kind == "interact" else f"{action.describe()} cannot be undone. Go ahead?"
            if feedback is not None:
                feedback.needs_user(f"step {n}: {question}", data={"action": action.to_dict()})
            verdict = escalate(ProposedAction(kind, target=_target(action), args=action.to_dict(), irreversible=True),
                               policy=gate, ask=hook, audit=audit)
            rec.escalation = {"verdict": verdict.verdict, "reason": verdict.reason, "asked": verdict.asked}
            if verdict.verdict != "auto":
                res.refused += 1
                res.ended_by = "refused"
                rec.seconds = time.perf_counter() - t0
                res.records.append(rec)
                if feedback is not None:
                    feedback.step_result(f"step {n}: {action.describe()} was refused ({verdict.reason})", step=n,
                                         verified=False, action=action.kind, irreversible=True)
                break
        if feedback is not None:
            feedback.step_started(f"step {n}: {action.describe()}", step=n, action=action.kind,
                                  confidence=decision.confidence, irreversible=risky)
        before = obs
        obs, reward, terminated, truncated, step_info = env.step(action)
        res.steps += 1
        next_state = step_info.get("state") if "state" in step_info else (
            task.state(env.page) if hasattr(task, "state") and getattr(env, "page", None) is not None else None)
        rec.reward, rec.success = float(reward), bool(step_info.get("success"))
        rec.before_sha256 = before.screenshot_sha256 if before.screenshot else None
        rec.after_sha256 = obs.screenshot_sha256 if obs.screenshot else None
        rec.valid, rec.error = bool(step_info.get("valid", True)), step_info.get("error")
        if not rec.valid:
            res.invalid += 1
        if audit is not None:
            audit.append(actor=f"gui.{policy.name}", action=action.kind, target=_target(action), args=action.to_dict(),
                         before={"screenshot_sha256": rec.before_sha256, "url": before.url},
                         after={"screenshot_sha256": rec.after_sha256, "url": obs.url},
                         outcome="ok" if rec.error is None else f"error: {rec.error[:200]}")
        if recorder is not None:
            recorder.record(episode=f"{task_id}#{seed}", task=task_id, seed=seed, step=n, state=before, action=action,
                            next_state=obs, reward=float(reward), terminated=terminated, truncated=truncated,
                            info=step_info, app_state=app_state, next_app_state=next_state)
        app_state = next_state
        if feedback is not None:
            what = f"step {n}: {action.describe()}" + (f" failed: {rec.error}" if rec.error else " done")
            feedback.step_result(what, step=n, action=action.kind, verified=rec.error is None,
                                 confidence=decision.confidence, irreversible=risky)
        rec.seconds = time.perf_counter() - t0
        res.records.append(rec)
        last_info = step_info
        if terminated or truncated:
            res.ended_by = "agent" if action.terminal else ("task" if terminated else "truncated")
            break
    status = getattr(env, "status", None)
    res.success = bool(status.success) if status is not None else False
    res.reward = float(status.reward) if status is not None else 0.0
    res.seconds = time.perf_counter() - t_start
    if feedback is not None:
        outcome = "solved" if res.success else "not solved"
        feedback.final(f"{task_id} (seed {seed}): {outcome} in {res.steps} actions ({res.ended_by})",
                       data={"success": res.success, "reward": res.reward, "steps": res.steps})
    return res
