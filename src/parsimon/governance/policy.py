"""Policy as code: one TOML or YAML file of allow / deny / require-approval rules, budgets and thresholds.

The same file drives the gateway (model and tool calls) and the in-process
:class:`~parsimon.governance.EscalationPolicy` (an agent's proposed actions). Example::

    [policy]
    default = "allow"                 # the effect when no rule matches

    [thresholds]                      # EscalationConfig fields, plus the risk level that needs a person
    auto_confidence = 0.8
    refuse_confidence = 0.3
    approve_at_risk = "high"          # a call of this risk or higher needs approval when no rule matched
    approval_expires_s = 900          # an unanswered approval is rejected after this (fail closed)
    irreversible = ["deploy"]         # added to delete / submit / pay / send

    [[rule]]
    name = "no-shell-outside-tmp"
    on = "tool"                       # model | tool | action
    match = "shell.*"                 # glob(s) on the model name, tool name or action kind
    args = { cwd = "/tmp/*" }         # every listed argument must match (glob, "re:<regex>", ">100", ...)
    effect = "require_approval"       # allow | deny | require_approval
    risk = "high"

    [[budget]]
    workflow = "team-a"               # or run = "..."
    metric = "money"
    hard = 5.0

Evaluation: every rule whose target, name pattern, argument patterns, keys and workflows match is
collected; the most severe effect wins (deny > require_approval > allow) and the first rule with that
effect is reported. When no rule matches, ``[policy].default`` applies, and a call whose risk is at or
above ``approve_at_risk`` needs approval. Every error names the file and the line.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any

from parsimon.governance.document import Document, DocumentError, load_document

__all__ = [
    "EFFECTS", "GATEWAY_SECTIONS", "RISKS", "TARGETS", "BudgetSpec", "Policy", "PolicyVerdict", "Rule",
    "Thresholds", "load_policy", "policy_from_document",
]

EFFECTS = ("allow", "require_approval", "deny")  # in order of severity
TARGETS = ("model", "tool", "action")
RISKS = ("low", "medium", "high")
# Top-level sections the gateway reads from the same file; the policy loader leaves them alone.
GATEWAY_SECTIONS = ("gateway", "upstreams", "models", "cascades", "keys", "mcp", "rate_limits")
_POLICY_SECTIONS = ("policy", "thresholds", "rule", "budget")
_METRICS = ("tokens", "money", "actions", "wall_s", "gpu_s")
_CMP = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Rule:
    """One policy rule (see the module docstring)."""

    name: str
    effect: str
    on: str
    match: tuple[str, ...] = ("*",)
    args: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (dotted argument path, patterns: any may match)
    keys: tuple[str, ...] | None = None  # gateway keys it applies to (None: all)
    workflows: tuple[str, ...] | None = None  # workflow globs it applies to (None: all)
    risk: str | None = None
    expires_s: float | None = None  # approval expiry for this rule (None: the thresholds' default)
    reason: str = ""
    line: int | None = None

    def matches(self, on: str, name: str, args: dict | None, key: str | None, workflow: str | None) -> bool:
        """Whether the rule applies to this call."""
        if on != self.on or not any(fnmatch.fnmatchcase(name, p) for p in self.match):
            return False
        if self.keys is not None and key not in self.keys:
            return False
        if self.workflows is not None and not any(fnmatch.fnmatchcase(workflow or "", w) for w in self.workflows):
            return False
        for path, patterns in self.args:
            found, value = _lookup(args, path)
            if not found or not any(_match_value(p, value) for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class Thresholds:
    """Confidence, failure, budget and risk thresholds (``[thresholds]``); defaults as EscalationConfig."""

    auto_confidence: float = 0.8
    refuse_confidence: float = 0.3
    ask_budget_fraction: float = 0.2
    ask_failures: int = 2
    refuse_failures: int = 4
    failure_window_s: float = 300.0
    irreversible: tuple[str, ...] = ()  # added to the default irreversible kinds
    approve_at_risk: str = "high"  # a call at or above this risk needs approval when no rule matched
    approval_expires_s: float = 900.0  # an unanswered approval is rejected after this


@dataclass(frozen=True)
class BudgetSpec:
    """One ``[[budget]]`` entry."""

    kind: str  # "run" or "workflow"
    scope: str
    metric: str
    soft: float | None
    hard: float | None


@dataclass(frozen=True)
class PolicyVerdict:
    """What the policy says about one call."""

    effect: str  # allow | require_approval | deny
    rule: str  # the rule that decided ("default" or "risk:<level>" when no rule matched)
    risk: str  # low | medium | high
    reason: str
    expires_s: float  # how long an approval request stays open


@dataclass(frozen=True)
class Policy:
    """A loaded policy: rules, the default effect, thresholds and budgets."""

    rules: tuple[Rule, ...] = ()
    default: str = "allow"
    thresholds: Thresholds = field(default_factory=Thresholds)
    budgets: tuple[BudgetSpec, ...] = ()
    source: str = "<default>"

    def evaluate(self, on: str, name: str, args: dict | None = None, *, key: str | None = None,
                 workflow: str | None = None, risk: str | None = None) -> PolicyVerdict:
        """Decide on one call.

        Args:
            on: ``"model"``, ``"tool"`` or ``"action"``.
            name: The model name, the tool name (``server.tool``) or the action kind.
            args: The call's arguments (a JSON object).
            key: The gateway key making the call.
            workflow: The call's workflow.
            risk: The call's own risk level (from the tool's configuration, or "high" for an irreversible
                action); a matching rule's risk raises it.
        """
        if on not in TARGETS:
            raise ValueError(f"`on` must be one of {list(TARGETS)}, got {on!r}")
        if risk is not None and risk not in RISKS:
            raise ValueError(f"`risk` must be one of {list(RISKS)} or None, got {risk!r}")
        hits = [r for r in self.rules if r.matches(on, name, args, key, workflow)]
        level = risk or "low"
        for r in hits:
            if r.risk is not None and RISKS.index(r.risk) > RISKS.index(level):
                level = r.risk
        expires = self.thresholds.approval_expires_s
        if hits:
            effect = max((r.effect for r in hits), key=EFFECTS.index)
            rule = next(r for r in hits if r.effect == effect)
            why = rule.reason or f"{on} {name!r} matched rule {rule.name!r}"
            return PolicyVerdict(effect, rule.name, level, why,
                                 rule.expires_s if rule.expires_s is not None else expires)
        if RISKS.index(level) >= RISKS.index(self.thresholds.approve_at_risk) and self.default != "deny":
            return PolicyVerdict("require_approval", f"risk:{level}", level,
                                 f"{on} {name!r} has risk {level!r} (approval needed at "
                                 f"{self.thresholds.approve_at_risk!r} and above)", expires)
        return PolicyVerdict(self.default, "default", level, f"no rule matched {on} {name!r}; default "
                             f"{self.default!r}", expires)

    def escalation_config(self):
        """The :class:`~parsimon.governance.EscalationConfig` of ``[thresholds]``."""
        from parsimon.governance.escalation import DEFAULT_IRREVERSIBLE, EscalationConfig

        t = self.thresholds
        return EscalationConfig(irreversible_kinds=DEFAULT_IRREVERSIBLE | frozenset(t.irreversible),
                                auto_confidence=t.auto_confidence, refuse_confidence=t.refuse_confidence,
                                ask_budget_fraction=t.ask_budget_fraction, ask_failures=t.ask_failures,
                                refuse_failures=t.refuse_failures, failure_window_s=t.failure_window_s)

    def apply_budgets(self, ledger) -> int:
        """Set every ``[[budget]]`` on ``ledger``; return how many were set."""
        for b in self.budgets:
            ledger.set_budget(**{b.kind: b.scope}, metric=b.metric, soft=b.soft, hard=b.hard)
        return len(self.budgets)


def _lookup(args: Any, path: str) -> tuple[bool, Any]:
    value = args
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def _match_value(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, bool) or not isinstance(pattern, str):
        return value == pattern and type(value) is type(pattern)
    m = _CMP.match(pattern)
    if m:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                value = float(value)
            except (TypeError, ValueError):
                return False
        op, bound = m.group(1), float(m.group(2))
        return {">": value > bound, "<": value < bound, ">=": value >= bound, "<=": value <= bound,
                "==": value == bound, "!=": value != bound}[op]
    text = value if isinstance(value, str) else _text(value)
    if pattern.startswith("re:"):
        return re.search(pattern[3:], text) is not None
    return fnmatch.fnmatchcase(text, pattern)


def _text(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


# ------------------------------------------------------------------------------------------ validation

def _strs(doc: Document, path: tuple, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items) \
            or (not items and not allow_empty):
        raise doc.error(path, f"must be a non-empty string or a list of them, got {value!r}")
    return tuple(items)


def _number(doc: Document, path: tuple, value: Any, *, lo: float = 0.0, hi: float = math.inf,
            integer: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi or (integer and int(value) != value):
        kind = "a whole number" if integer else "a number"
        bound = f" in [{lo:g}, {hi:g}]" if hi != math.inf else f" >= {lo:g}"
        raise doc.error(path, f"must be {kind}{bound}, got {value!r}")
    return int(value) if integer else float(value)


def _choice(doc: Document, path: tuple, value: Any, accepted: tuple[str, ...]) -> str:
    if value not in accepted:
        raise doc.error(path, f"must be one of {list(accepted)}, got {value!r}")
    return value


def _table(doc: Document, path: tuple, value: Any, known: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise doc.error(path, f"must be a table, got {type(value).__name__}")
    for k in value:
        if k not in known:
            raise doc.error((*path, k), f"is not a known setting; accepted: {sorted(known)}")
    return value


def _flatten_args(doc: Document, path: tuple, value: Any, prefix: str = "") -> list[tuple[str, tuple]]:
    if not isinstance(value, dict):
        raise doc.error(path, f"must be a table of argument patterns, got {value!r}")
    out = []
    for k, v in value.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten_args(doc, (*path, k), v, name + "."))
            continue
        patterns = tuple(v) if isinstance(v, list) else (v,)
        if not patterns:
            raise doc.error((*path, k), "must not be an empty list")
        for p in patterns:
            if isinstance(p, str) and p.startswith("re:"):
                try:
                    re.compile(p[3:])
                except re.error as exc:
                    raise doc.error((*path, k), f"has an invalid regular expression {p[3:]!r}: {exc}") from None
            elif not isinstance(p, (str, int, float, bool)):
                raise doc.error((*path, k), f"patterns must be strings, numbers or booleans, got {p!r}")
        out.append((name, patterns))
    return out


def _rule(doc: Document, i: int, raw: Any, seen: set[str]) -> Rule:
    path = ("rule", i)
    known = ("name", "effect", "on", "match", "args", "keys", "workflows", "risk", "expires_s", "reason")
    raw = _table(doc, path, raw, known)
    for req in ("name", "effect", "on"):
        if req not in raw:
            raise doc.error(path, f"needs `{req}`")
    name = raw["name"]
    if not isinstance(name, str) or not name:
        raise doc.error((*path, "name"), f"must be a non-empty string, got {name!r}")
    if name in seen:
        raise doc.error((*path, "name"), f"repeats the rule name {name!r}; names must be unique")
    seen.add(name)
    expires = raw.get("expires_s")
    if expires is not None:
        expires = _number(doc, (*path, "expires_s"), expires, lo=1e-3)
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        raise doc.error((*path, "reason"), f"must be a string, got {reason!r}")
    return Rule(
        name=name,
        effect=_choice(doc, (*path, "effect"), raw["effect"], EFFECTS),
        on=_choice(doc, (*path, "on"), raw["on"], TARGETS),
        match=_strs(doc, (*path, "match"), raw.get("match", "*")),
        args=tuple(_flatten_args(doc, (*path, "args"), raw["args"])) if "args" in raw else (),
        keys=_strs(doc, (*path, "keys"), raw["keys"]) if "keys" in raw else None,
        workflows=_strs(doc, (*path, "workflows"), raw["workflows"]) if "workflows" in raw else None,
        risk=_choice(doc, (*path, "risk"), raw["risk"], RISKS) if "risk" in raw else None,
        expires_s=expires, reason=reason, line=doc.line(path),
    )


def _thresholds(doc: Document, raw: Any) -> Thresholds:
    known = tuple(f.name for f in fields(Thresholds))
    raw = _table(doc, ("thresholds",), raw, known)
    values: dict[str, Any] = {}
    for k, v in raw.items():
        p = ("thresholds", k)
        if k in ("auto_confidence", "refuse_confidence", "ask_budget_fraction"):
            values[k] = _number(doc, p, v, hi=1.0)
        elif k in ("ask_failures", "refuse_failures"):
            values[k] = _number(doc, p, v, lo=1, integer=True)
        elif k in ("failure_window_s", "approval_expires_s"):
            values[k] = _number(doc, p, v, lo=1e-3)
        elif k == "irreversible":
            values[k] = _strs(doc, p, v, allow_empty=True)
        elif k == "approve_at_risk":
            values[k] = _choice(doc, p, v, RISKS)
    t = Thresholds(**values)
    if t.refuse_confidence > t.auto_confidence:
        raise doc.error(("thresholds", "refuse_confidence"), f"must be <= auto_confidence "
                        f"({t.auto_confidence:g}), got {t.refuse_confidence:g}")
    if t.ask_failures > t.refuse_failures:
        raise doc.error(("thresholds", "ask_failures"), f"must be <= refuse_failures ({t.refuse_failures}), "
                        f"got {t.ask_failures}")
    return t


def _budget(doc: Document, i: int, raw: Any) -> BudgetSpec:
    path = ("budget", i)
    raw = _table(doc, path, raw, ("run", "workflow", "metric", "soft", "hard"))
    if ("run" in raw) == ("workflow" in raw):
        raise doc.error(path, "needs exactly one of `run` and `workflow`")
    kind = "run" if "run" in raw else "workflow"
    scope = raw[kind]
    if not isinstance(scope, str) or not scope:
        raise doc.error((*path, kind), f"must be a non-empty string, got {scope!r}")
    if "metric" not in raw:
        raise doc.error(path, "needs `metric`")
    metric = _choice(doc, (*path, "metric"), raw["metric"], _METRICS)
    soft = _number(doc, (*path, "soft"), raw["soft"]) if "soft" in raw else None
    hard = _number(doc, (*path, "hard"), raw["hard"]) if "hard" in raw else None
    if soft is None and hard is None:
        raise doc.error(path, "needs `soft` and/or `hard`")
    if soft is not None and hard is not None and soft > hard:
        raise doc.error((*path, "soft"), f"must be <= hard ({hard:g}), got {soft:g}")
    return BudgetSpec(kind, scope, metric, soft, hard)


def policy_from_document(doc: Document, *, extra_sections: tuple[str, ...] = GATEWAY_SECTIONS) -> Policy:
    """Validate the policy sections of a parsed document (see the module docstring).

    Args:
        doc: The parsed file.
        extra_sections: Other top-level sections allowed in the file (read by someone else).
    """
    data = doc.data
    for k in data:
        if k not in _POLICY_SECTIONS and k not in extra_sections:
            raise doc.error((k,), f"is not a known section; accepted: {sorted(_POLICY_SECTIONS + extra_sections)}")
    default = "allow"
    if "policy" in data:
        head = _table(doc, ("policy",), data["policy"], ("default", "version"))
        default = _choice(doc, ("policy", "default"), head.get("default", "allow"), EFFECTS)
        if "version" in head and head["version"] != 1:
            raise doc.error(("policy", "version"), f"must be 1, got {head['version']!r}")
    rules_raw = data.get("rule", [])
    if not isinstance(rules_raw, list):
        raise doc.error(("rule",), "must be an array of tables ([[rule]])")
    seen: set[str] = set()
    rules = tuple(_rule(doc, i, r, seen) for i, r in enumerate(rules_raw))
    thresholds = _thresholds(doc, data["thresholds"]) if "thresholds" in data else Thresholds()
    budgets_raw = data.get("budget", [])
    if not isinstance(budgets_raw, list):
        raise doc.error(("budget",), "must be an array of tables ([[budget]])")
    budgets = tuple(_budget(doc, i, b) for i, b in enumerate(budgets_raw))
    return Policy(rules, default, thresholds, budgets, doc.source)


def load_policy(path: str | os.PathLike, *, extra_sections: tuple[str, ...] = GATEWAY_SECTIONS) -> Policy:
    """Load and validate a policy file (``.toml``, ``.yaml`` or ``.yml``).

    Raises:
        DocumentError: The file does not parse or a value is invalid; the message names the line.
    """
    return policy_from_document(load_document(path), extra_sections=extra_sections)


# Re-exported so callers catch one type for every policy-file problem.
PolicyError = DocumentError
