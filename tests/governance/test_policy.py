"""Policy files: validation errors name the line (TOML and YAML), evaluation, and the EscalationPolicy they drive."""

from __future__ import annotations

import pytest

from parsimon.governance import EscalationPolicy, ProposedAction, load_policy
from parsimon.governance.document import DocumentError, parse_document
from parsimon.governance.policy import policy_from_document

TOML = """
[policy]
default = "allow"

[thresholds]
auto_confidence = 0.9
refuse_confidence = 0.2
approve_at_risk = "high"
irreversible = ["deploy"]

[[rule]]
name = "no-big-payments"
on = "action"
match = "pay"
args = { amount = ">100" }
effect = "require_approval"
risk = "high"

[[rule]]
name = "never-rm-root"
on = "tool"
match = ["shell.*", "files.delete*"]
args = { path = ["/", "/etc/*"] }
effect = "deny"

[[rule]]
name = "allow-tmp"
on = "tool"
match = "files.delete*"
args = { path = "re:^/tmp/" }
effect = "allow"

[[rule]]
name = "gpt-only-for-team-a"
on = "model"
match = "gpt-*"
keys = ["team-b"]
effect = "deny"

[[budget]]
workflow = "team-a"
metric = "money"
soft = 1.0
hard = 2.0
"""


def _policy(text: str, fmt: str = "toml"):
    return policy_from_document(parse_document(text, fmt=fmt, source=f"p.{fmt}"))


def test_evaluation_rules_patterns_and_severity():
    p = _policy(TOML)
    assert p.evaluate("action", "pay", {"amount": 150}).effect == "require_approval"
    assert p.evaluate("action", "pay", {"amount": 100}).effect == "allow"  # ">100" is strict
    assert p.evaluate("action", "pay", {"amount": "lots"}).rule == "default"
    v = p.evaluate("tool", "files.delete_file", {"path": "/etc/hosts"})
    assert (v.effect, v.rule) == ("deny", "never-rm-root")
    assert p.evaluate("tool", "files.delete_file", {"path": "/tmp/x"}).rule == "allow-tmp"
    # a tool's own risk needs a person when no rule matched, but not when a rule allowed it explicitly
    assert p.evaluate("tool", "files.delete_file", {"path": "/home/x"}, risk="high").effect == "require_approval"
    assert p.evaluate("tool", "files.delete_file", {"path": "/tmp/x"}, risk="high").effect == "allow"
    assert p.evaluate("model", "gpt-5", key="team-b").effect == "deny"
    assert p.evaluate("model", "gpt-5", key="team-a").effect == "allow"
    assert p.evaluate("action", "pay", {"amount": 150}).risk == "high"


def test_budgets_apply_to_the_ledger():
    from parsimon.governance import get_ledger

    ledger = get_ledger()
    assert _policy(TOML).apply_budgets(ledger) == 1
    assert ledger.limits(workflow="team-a", metric="money") == (1.0, 2.0)


@pytest.mark.parametrize("bad, line, words", [
    ('[[rule]]\nname = "x"\non = "tool"\neffect = "block"\n', 4, "`rule[0].effect` must be one of"),
    ('[[rule]]\nname = "x"\non = "tool"\neffect = "deny"\n\n[[rule]]\nname = "x"\non = "tool"\neffect = "deny"\n',
     7, "repeats the rule name"),
    ('[thresholds]\nauto_confidence = 0.5\nrefuse_confidence = 0.7\n', 3, "must be <= auto_confidence"),
    ('[[rule]]\nname = "x"\non = "tool"\neffect = "deny"\nargs = { path = "re:([" }\n', 5, "invalid regular expression"),
    ('[[budget]]\nrun = "r"\nworkflow = "w"\nmetric = "money"\nhard = 1\n', 1, "exactly one of `run` and `workflow`"),
    ('[policy]\ndefault = "allow"\n\n[extras]\nx = 1\n', 4, "`extras` is not a known section"),
    ('[[rule]]\nname = "x"\non = "tool"\neffect = "deny"\ncolour = "red"\n', 5, "`rule[0].colour` is not a known"),
    ('[policy]\ndefault = \n', 2, "not valid TOML"),
])
def test_errors_name_the_line_toml(bad, line, words):
    with pytest.raises(DocumentError) as exc:
        _policy(bad)
    assert str(exc.value).startswith(f"p.toml:{line}: ") and words in str(exc.value)


def test_errors_name_the_line_yaml(tmp_path):
    text = "policy:\n  default: allow\nrule:\n  - name: a\n    on: tool\n    effect: deny\n  - name: b\n    on: model\n" \
           "    effect: maybe\n"
    with pytest.raises(DocumentError, match=r"^p.yaml:9: `rule\[1\].effect` must be one of"):
        _policy(text, "yaml")
    path = tmp_path / "policy.yaml"
    path.write_text("rule:\n  - name: a\n    on: action\n    match: deploy\n    effect: deny\n")
    assert load_policy(path).evaluate("action", "deploy").effect == "deny"
    with pytest.raises(DocumentError, match=r"policy.yml:3: not valid YAML"):
        (tmp_path / "policy.yml").write_text("rule:\n - name: [\n")
        load_policy(tmp_path / "policy.yml")


def test_same_file_drives_the_in_process_escalation_policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(TOML + '\n[[rule]]\nname = "no-prod-deploys"\non = "action"\nmatch = "deploy"\n'
                           'args = { env = "prod*" }\neffect = "deny"\n')
    policy = EscalationPolicy.from_policy(path)
    assert policy.config.auto_confidence == 0.9 and "deploy" in policy.config.irreversible_kinds
    d = policy.decide(ProposedAction("deploy", args={"env": "production"}, confidence=0.99))
    assert d.verdict == "refuse" and "policy:no-prod-deploys" in d.rules
    d = policy.decide(ProposedAction("deploy", args={"env": "staging"}, confidence=0.99))
    assert d.verdict == "ask" and d.rules == ("irreversible",)
    d = policy.decide(ProposedAction("pay", args={"amount": 500}, confidence=0.99))
    assert d.verdict == "ask" and "policy:no-big-payments" in d.rules
    assert policy.decide(ProposedAction("click", confidence=0.95)).verdict == "auto"
    assert policy.decide(ProposedAction("click", confidence=0.85)).verdict == "ask"  # 0.9 from the file
