"""Escalation: decide whether an agent may act on its own ("auto"), must ask a person ("ask"), or must not
act ("refuse").

:class:`EscalationPolicy` looks at four signals, each a rule with its own verdict; the most severe
verdict wins (refuse > ask > auto) and the reason lists every rule that fired:

0. Policy rules (optional, from a policy file, see :mod:`parsimon.governance.policy`): a rule on
   ``"action"`` whose pattern matches the action's kind and arguments: "deny" is "refuse",
   "require_approval" is "ask" (the rule's name is reported).
1. Risk: an irreversible action (its kind is in ``irreversible_kinds``, default delete, submit, pay,
   send, or the agent flagged it ``irreversible=True``) is "ask". A flag can add risk, never remove it:
   ``irreversible=False`` on a "delete" is still irreversible.
2. Confidence: below ``refuse_confidence`` is "refuse"; below ``auto_confidence`` is "ask"; an action
   without a confidence is not judged on it.
3. Budget: for every metric with a hard limit on the scope's run or workflow (read from the ledger's
   :meth:`~parsimon.governance.Ledger.remaining`), nothing left is "refuse" and less than
   ``ask_budget_fraction`` of the hard limit left is "ask".
4. Failures: ``refuse_failures`` or more failures in the last ``failure_window_s`` seconds is "refuse";
   ``ask_failures`` or more is "ask" (a circuit breaker: a failing agent stops acting alone).

:func:`escalate` turns "ask" into a final yes or no through a pluggable hook ``ask(action, decision)``;
the default asks on the terminal, and in a non-interactive run (stdin is not a TTY, or ``CI`` is set)
refuses without asking and says so. A hook may also return an object with ``approved`` and ``args``
(a person approved with edited arguments, as :class:`parsimon.governance.approvals.ApprovalAsk` does).
Each decision can be written to the proof-of-action log.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = [
    "DEFAULT_IRREVERSIBLE", "VERDICTS", "Decision", "EscalationConfig", "EscalationPolicy", "ProposedAction",
    "escalate", "is_interactive", "terminal_ask",
]

VERDICTS = ("auto", "ask", "refuse")
DEFAULT_IRREVERSIBLE = frozenset({"delete", "submit", "pay", "send"})
_SEVERITY = {v: i for i, v in enumerate(VERDICTS)}


@dataclass(frozen=True)
class ProposedAction:
    """An action an agent wants to take."""

    kind: str  # e.g. "click", "type", "delete", "pay"
    target: str | None = None  # what it acts on (a selector, a URL, a file)
    args: dict | None = None
    confidence: float | None = None  # the agent's confidence in [0, 1], if it has one
    irreversible: bool | None = None  # the agent's own flag; can only add risk

    def __post_init__(self):
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"`kind` must be a non-empty string, got {self.kind!r}")
        if self.confidence is not None and (isinstance(self.confidence, bool)
                                            or not isinstance(self.confidence, (int, float))
                                            or not 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"`confidence` must be a number in [0, 1] or None, got {self.confidence!r}")


@dataclass(frozen=True)
class Decision:
    """A verdict and why; ``asked`` is True when a person (or the ask hook) made the final call."""

    verdict: str  # "auto", "ask" or "refuse"
    reason: str
    asked: bool = False
    rules: tuple[str, ...] = ()  # the names of the rules that fired
    args: dict | None = None  # arguments a person edited when approving (None: unchanged)
    approval_id: str | None = None  # the durable approval record, when one was made


@dataclass(frozen=True)
class EscalationConfig:
    """Thresholds of :class:`EscalationPolicy` (defaults are this library's choices, not from a paper)."""

    irreversible_kinds: frozenset[str] = DEFAULT_IRREVERSIBLE
    auto_confidence: float = 0.8  # at or above: confident enough to act alone
    refuse_confidence: float = 0.3  # below: do not act at all
    ask_budget_fraction: float = 0.2  # less than this share of a hard limit left: ask
    ask_failures: int = 2  # this many recent failures: ask
    refuse_failures: int = 4  # this many recent failures: refuse
    failure_window_s: float = 300.0  # what "recent" means, in seconds

    def __post_init__(self):
        object.__setattr__(self, "irreversible_kinds", frozenset(self.irreversible_kinds))
        if not 0.0 <= self.refuse_confidence <= self.auto_confidence <= 1.0:
            raise ValueError("`refuse_confidence` and `auto_confidence` must satisfy 0 <= refuse <= auto <= 1, "
                             f"got {self.refuse_confidence!r}, {self.auto_confidence!r}")
        if not 0.0 <= self.ask_budget_fraction <= 1.0:
            raise ValueError(f"`ask_budget_fraction` must be in [0, 1], got {self.ask_budget_fraction!r}")
        if not 1 <= self.ask_failures <= self.refuse_failures:
            raise ValueError("`ask_failures` and `refuse_failures` must satisfy 1 <= ask <= refuse, "
                             f"got {self.ask_failures!r}, {self.refuse_failures!r}")
        if self.failure_window_s <= 0:
            raise ValueError(f"`failure_window_s` must be > 0, got {self.failure_window_s!r}")


class EscalationPolicy:
    """Decides "auto", "ask" or "refuse" for each :class:`ProposedAction` (rules in the module docstring).

    Args:
        config: Thresholds; keyword arguments override its fields (``irreversible_kinds`` is *added* to
            the defaults unless ``config`` is given explicitly).
        ledger: The ledger whose budgets are checked (None: budgets are not considered).
        run: The run whose budgets count (default: the current scope's run at decision time).
        workflow: The workflow whose budgets count (default: the current scope's workflow).
        clock: Seconds, monotonic (injectable for tests).
        policy: A :class:`~parsimon.governance.policy.Policy` whose ``"action"`` rules are applied first.

    Example:
        >>> policy = EscalationPolicy(irreversible_kinds={"deploy"})
        >>> policy.decide(ProposedAction("click", confidence=0.95)).verdict
        'auto'
        >>> policy.decide(ProposedAction("deploy", confidence=0.95)).verdict
        'ask'
    """

    def __init__(self, config: EscalationConfig | None = None, *, ledger=None, run: str | None = None,
                 workflow: str | None = None, clock: Callable[[], float] = time.monotonic, policy=None,
                 **overrides: Any):
        base = config or EscalationConfig()
        if "irreversible_kinds" in overrides and config is None:
            overrides["irreversible_kinds"] = base.irreversible_kinds | frozenset(overrides["irreversible_kinds"])
        unknown = sorted(set(overrides) - set(asdict(base)))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; accepted: {sorted(asdict(base))}")
        self.config = replace(base, **overrides)
        self.ledger, self.run, self.workflow, self._clock = ledger, run, workflow, clock
        self.policy = policy
        self._failures: deque[float] = deque()

    @classmethod
    def from_policy(cls, policy, *, ledger=None, run: str | None = None, workflow: str | None = None,
                    clock: Callable[[], float] = time.monotonic) -> EscalationPolicy:
        """The escalation policy a policy file describes: its ``[thresholds]`` and its ``"action"`` rules.

        Args:
            policy: A :class:`~parsimon.governance.policy.Policy` or the path of a policy file.
            ledger: As for the constructor (budgets are checked when given).
            run: As for the constructor.
            workflow: As for the constructor.
            clock: As for the constructor.
        """
        from parsimon.governance.policy import Policy, load_policy

        if not isinstance(policy, Policy):
            policy = load_policy(policy)
        return cls(policy.escalation_config(), ledger=ledger, run=run, workflow=workflow, clock=clock,
                   policy=policy)

    def record_failure(self) -> None:
        """Note that an action failed now."""
        self._failures.append(self._clock())

    def recent_failures(self) -> int:
        """The number of failures inside the window."""
        horizon = self._clock() - self.config.failure_window_s
        while self._failures and self._failures[0] < horizon:
            self._failures.popleft()
        return len(self._failures)

    def is_irreversible(self, action: ProposedAction) -> bool:
        """Whether the action cannot be undone (its kind is listed, or the agent says so)."""
        return action.irreversible is True or action.kind in self.config.irreversible_kinds

    def _budget_rules(self) -> list[tuple[str, str, str]]:
        from parsimon.governance.ledger import METRICS
        from parsimon.governance.scope import current_scope

        if self.ledger is None:
            return []
        scope = current_scope()
        run = self.run if self.run is not None else scope.run
        workflow = self.workflow if self.workflow is not None else scope.workflow
        fired = []
        for kind, name in (("run", run), ("workflow", workflow)):
            if name is None:
                continue
            for metric in METRICS:
                left = self.ledger.remaining(**{kind: name}, metric=metric)
                if left is None:
                    continue
                hard = self.ledger.limits(**{kind: name}, metric=metric)[1]
                if left <= 0:
                    fired.append(("refuse", "budget", f"no {metric} budget left for {kind} {name!r} "
                                  f"(hard limit {hard:g})"))
                elif hard > 0 and left / hard < self.config.ask_budget_fraction:
                    fired.append(("ask", "budget", f"only {left / hard:.0%} of the {metric} budget of {kind} "
                                  f"{name!r} is left ({left:g} of {hard:g})"))
        return fired

    def decide(self, action: ProposedAction) -> Decision:
        """Return the :class:`Decision` for ``action`` (no side effects)."""
        if not isinstance(action, ProposedAction):
            raise ValueError(f"`action` must be a ProposedAction, got {type(action).__name__}")
        cfg, fired = self.config, []
        if self.policy is not None:
            from parsimon.governance.scope import current_scope

            workflow = self.workflow if self.workflow is not None else current_scope().workflow
            verdict = self.policy.evaluate("action", action.kind, action.args, workflow=workflow)
            if verdict.rule not in ("default",) and not verdict.rule.startswith("risk:"):
                if verdict.effect == "deny":
                    fired.append(("refuse", f"policy:{verdict.rule}", f"denied by policy rule {verdict.rule!r}"))
                elif verdict.effect == "require_approval":
                    fired.append(("ask", f"policy:{verdict.rule}", f"policy rule {verdict.rule!r} requires "
                                  "approval"))
            elif verdict.effect == "deny":
                fired.append(("refuse", "policy:default", "the policy's default is deny"))
            elif verdict.effect == "require_approval":
                fired.append(("ask", "policy:default", "the policy's default is require_approval"))
        if self.is_irreversible(action):
            why = "flagged irreversible" if action.kind not in cfg.irreversible_kinds else "an irreversible kind"
            fired.append(("ask", "irreversible", f"{action.kind!r} is {why}"))
        if action.confidence is not None:
            if action.confidence < cfg.refuse_confidence:
                fired.append(("refuse", "confidence", f"confidence {action.confidence:.2f} is below "
                              f"{cfg.refuse_confidence:.2f}"))
            elif action.confidence < cfg.auto_confidence:
                fired.append(("ask", "confidence", f"confidence {action.confidence:.2f} is below "
                              f"{cfg.auto_confidence:.2f}"))
        fired.extend(self._budget_rules())
        failures = self.recent_failures()
        if failures >= cfg.refuse_failures:
            fired.append(("refuse", "failures", f"{failures} failures in the last {cfg.failure_window_s:g} s "
                          f"(limit {cfg.refuse_failures})"))
        elif failures >= cfg.ask_failures:
            fired.append(("ask", "failures", f"{failures} recent failures in the last "
                          f"{cfg.failure_window_s:g} s"))
        if not fired:
            return Decision("auto", f"{action.kind!r}: reversible, confident enough, within budget, "
                            "no recent failures")
        verdict = max((f[0] for f in fired), key=_SEVERITY.__getitem__)
        return Decision(verdict, f"{action.kind!r}: " + "; ".join(f[2] for f in fired),
                        rules=tuple(f[1] for f in fired))


def is_interactive() -> bool:
    """True when a person can answer: stdin is a TTY and ``CI`` is not set."""
    if os.environ.get("CI"):
        return False
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, AttributeError):
        return False


def terminal_ask(action: ProposedAction, decision: Decision) -> bool:
    """Ask on the terminal whether to go ahead (the default hook of :func:`escalate`)."""
    from rich.prompt import Confirm

    target = f" on {action.target}" if action.target else ""
    return Confirm.ask(f"The agent wants to {action.kind}{target}. {decision.reason}. Allow it?", default=False)


AskHook = Callable[[ProposedAction, Decision], bool]


def escalate(action: ProposedAction, *, policy: EscalationPolicy, ask: AskHook | None = None,
             audit=None) -> Decision:
    """Decide on ``action`` and resolve an "ask" into a final "auto" (approved) or "refuse".

    Args:
        action: The proposed action.
        policy: The policy that decides.
        ask: ``ask(action, decision) -> bool``; None uses :func:`terminal_ask` when interactive and
            refuses otherwise (stdin not a TTY, or ``CI`` set), saying so in the reason.
        audit: A proof-of-action log; when given, the decision is appended to it (actor "escalation").

    Returns:
        The final :class:`Decision`: "auto" or "refuse" (never "ask").
    """
    decision = policy.decide(action)
    if decision.verdict == "ask":
        if ask is None and not is_interactive():
            decision = Decision("refuse", decision.reason + "; refused without asking: non-interactive run "
                                "(stdin is not a TTY or CI is set) and no ask hook given",
                                asked=False, rules=decision.rules)
        else:
            answer = (ask or terminal_ask)(action, decision)
            approved = bool(getattr(answer, "approved", answer))
            edited = getattr(answer, "args", None)
            edited = edited if approved and isinstance(edited, dict) and edited != action.args else None
            decision = Decision("auto" if approved else "refuse",
                                decision.reason + ("; approved when asked" if approved else "; denied when asked")
                                + ("; arguments edited" if edited is not None else ""),
                                asked=True, rules=decision.rules, args=edited,
                                approval_id=getattr(answer, "id", None))
    if audit is not None:
        audit.append(actor="escalation", action="decide", target=action.target,
                     args={"kind": action.kind, "target": action.target, "args": action.args,
                           "confidence": action.confidence, "irreversible": action.irreversible},
                     after={"reason": decision.reason, "asked": decision.asked, "rules": list(decision.rules),
                            **({"edited_args": decision.args} if decision.args is not None else {}),
                            **({"approval": decision.approval_id} if decision.approval_id else {})},
                     outcome=decision.verdict)
    return decision

