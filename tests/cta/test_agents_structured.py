"""Every CTA LLM agent in constrained and free output modes against a loopback mock endpoint that checks what
each request carries (the JSON schema derived from the action space in that state, or the grammar)."""

from __future__ import annotations

import json

import pytest

from parsimon.cta import evaluate, make_policy
from parsimon.cta.pandora import PandoraTask
from parsimon.llm import ChatClient
from parsimon.llm.structured import forget_endpoint_support
from tests.llm.mock_openai import MockOpenAI, Reply, completion


@pytest.fixture(autouse=True)
def _fresh_support():
    forget_endpoint_support()
    yield
    forget_endpoint_support()


def _schema(req: dict) -> dict:
    return req["response_format"]["json_schema"]["schema"]


def _kinds(schema: dict) -> dict[str, dict]:
    action = schema["properties"]["action"]
    alts = action.get("anyOf", [action])
    return {a["properties"]["kind"]["enum"][0]: a["properties"] for a in alts}


def _client(mock: MockOpenAI) -> ChatClient:
    return ChatClient(mock.base_url, "mock-model", max_retries=0, ledger=False)


TASK = PandoraTask(["A", "B", "C"], {"A": 0.5, "B": 0.3, "C": 0.2}, 0.9, "B", task_id="t")


def test_pandora_constrained_schema_follows_the_remaining_labels():
    seen = []

    def respond(req):
        schema = _schema(req)
        kinds = _kinds(schema)
        assert set(kinds) == {"VERIFY", "GUESS"} and "thinking" not in schema["properties"]
        labels = kinds["VERIFY"]["label"]["enum"]
        assert kinds["GUESS"]["label"]["enum"] == labels
        seen.append(labels)
        kind = "VERIFY" if len(seen) == 1 else "GUESS"
        return json.dumps({"action": {"kind": kind, "label": labels[0]}})

    with MockOpenAI(respond=respond) as mock:
        m = evaluate("pandora", "llm-cta", [TASK], prior="true", policy_kwargs={"client": _client(mock)},
                     audit=False, ledger=False)
        system = mock.requests[0]["json"]["messages"][0]["content"]
    assert seen == [["A", "B", "C"], ["B", "C"]]  # A was verified NO: no longer offered
    assert m.episodes[0].actions == ["VERIFY A", "GUESS B"] and m.mean_reward == pytest.approx(0.9)
    assert '"kind": "VERIFY"' in system and "JSON object" in system
    st = m.policy_stats
    assert st["replies_constrained_schema"] == 2 and "parse_failures" not in st and st["llm_calls"] == 2


def test_pandora_thinking_field_is_capped_and_first():
    def respond(req):
        props = _schema(req)["properties"]
        assert list(props) == ["thinking", "action"] and props["thinking"]["maxLength"] == 4 * 100
        return json.dumps({"thinking": "A is most likely.", "action": {"kind": "GUESS", "label": "A"}})

    with MockOpenAI(respond=respond) as mock:
        m = evaluate("pandora", "llm-prompted-thinking", [TASK], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock), "thinking_tokens": 100})
        assert mock.requests[0]["json"]["max_tokens"] == 512
    assert m.episodes[0].actions == ["GUESS A"]


def test_pandora_grammar_form():
    def respond(req):
        g = req["grammar"]
        assert '"\\"VERIFY\\""' in g and '"\\"A\\"" | "\\"B\\"" | "\\"C\\""' in g
        return json.dumps({"action": {"kind": "GUESS", "label": "B"}})

    with MockOpenAI(accepts={"grammar"}, respond=respond) as mock:
        m = evaluate("pandora", "llm-prompted", [TASK], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock)})
    assert m.policy_stats["replies_constrained_grammar"] == 1 and m.mean_reward == 1.0


def test_pandora_fallback_reasks_then_acts():
    script = [Reply(body=completion("I pick bag B")), Reply(body=completion('{"action": {"kind": "GUESS", "label": "B"}}'))]
    with MockOpenAI(script, accepts=set()) as mock:
        m = evaluate("pandora", "llm-prompted", [TASK], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock)})
    st = m.policy_stats
    assert st["replies_fallback"] == 1 and st["reasks"] == 1 and "parse_failures" not in st
    assert m.episodes[0].actions == ["GUESS B"]


def test_pandora_free_mode_sends_no_structure():
    with MockOpenAI([Reply(body=completion("GUESS B"))]) as mock:
        m = evaluate("pandora", "llm-prompted", [TASK], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock), "output": "free"})
        req = mock.requests[0]["json"]
    assert "response_format" not in req and "grammar" not in req
    assert "Respond with exactly one action" in req["messages"][0]["content"]
    assert m.policy_stats["replies_free"] == 1 and m.mean_reward == 1.0


def test_qa_constrained_retrieve_then_answer_only():
    from parsimon.cta.qa import get_bench

    t = get_bench(0, 400).tasks(1)[0]
    kinds_seen = []

    def respond(req):
        kinds = _kinds(_schema(req))
        kinds_seen.append(sorted(kinds))
        if "RETRIEVE" in kinds:
            return json.dumps({"action": {"kind": "RETRIEVE"}})
        assert kinds["ANSWER"]["answer"]["maxLength"] == 80
        return json.dumps({"action": {"kind": "ANSWER", "answer": t.answer}})

    with MockOpenAI(respond=respond) as mock:
        m = evaluate("qa", "llm-cta", [t], prior="estimated", audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock)})
        assert mock.requests[0]["json"]["max_tokens"] == 64
    assert kinds_seen == [["ANSWER", "RETRIEVE"], ["ANSWER"]]  # one retrieval: then only ANSWER is offered
    assert m.episodes[0].actions == ["RETRIEVE", "ANSWER"] and m.mean_reward == pytest.approx(t.gamma)


def test_qa_free_mode():
    from parsimon.cta.qa import get_bench

    t = get_bench(0, 400).tasks(1)[0]
    with MockOpenAI([Reply(body=completion(f"ANSWER: {t.answer}"))]) as mock:
        m = evaluate("qa", "llm-prompted", [t], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock), "output": "free"})
        assert "response_format" not in mock.requests[0]["json"]
    assert m.mean_reward == 1.0


@pytest.fixture(scope="module")
def fr_task(tmp_path_factory):
    from parsimon.cta.filereading import Dataset

    return Dataset(seed=2, n=40, data_root=tmp_path_factory.mktemp("fr_struct")).tasks("test", n_base=1)[0]


def test_filereading_constrained_tests_then_answer(fr_task):
    from parsimon.cta.filereading.prior import ATTRS

    def respond(req):
        kinds = _kinds(_schema(req))
        assert set(kinds) == {"UNIT_TESTS", "CODE", "ANSWER"}
        assert kinds["UNIT_TESTS"]["tests"]["items"]["enum"] == list(ATTRS)
        assert kinds["CODE"]["code"]["maxLength"] == 1200
        if len([m for m in req["messages"] if m["role"] == "user"]) == 1:
            return json.dumps({"action": {"kind": "UNIT_TESTS", "tests": ["skiprows", "delimiter", "skiprows"]}})
        return json.dumps({"action": {"kind": "ANSWER", "answer": "  not\nknown "}})

    with MockOpenAI(respond=respond) as mock:
        m = evaluate("filereading", "llm-cta", [fr_task], prior="true", audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock)})
        assert mock.requests[0]["json"]["max_tokens"] == 384
    ep = m.episodes[0]
    # the duplicate test is dropped; the tests are written in the environment's own syntax and order
    assert ep.steps[0].action == f'UNIT_TESTS: test_delimiter("{fr_task.filename}"), test_skiprows("{fr_task.filename}")'
    assert ep.actions == ["UNIT_TESTS: delimiter,skiprows", "ANSWER"] and ep.summary["U"] == 2
    assert ep.steps[1].action == "ANSWER: not known"


def test_filereading_code_action_text(fr_task):
    from parsimon.cta.filereading.env import action_format, parse_action

    fmt = action_format("data.csv")
    text = fmt.action({"action": {"kind": "CODE", "code": "import pandas as pd\nprint(1)\n"}})
    assert text == "CODE\n```python\nimport pandas as pd\nprint(1)\n```"
    assert parse_action(text) == ("code", "import pandas as pd\nprint(1)\n")


def test_filereading_free_mode(fr_task):
    with MockOpenAI([Reply(body=completion("ANSWER: 3"))]) as mock:
        m = evaluate("filereading", "llm-prompted", [fr_task], audit=False, ledger=False,
                     policy_kwargs={"client": _client(mock), "output": "free"})
        assert "response_format" not in mock.requests[0]["json"]
    assert m.episodes[0].actions == ["ANSWER"] and "parse_failures" not in m.policy_stats


def test_bad_output_mode_is_a_config_error():
    from parsimon.errors import ConfigError

    with pytest.raises(ConfigError, match="`output`"):
        make_policy("pandora", "llm-cta", output="json")


@pytest.mark.parametrize("env,expected", [("pandora", (64, 512)), ("qa", (64, 512)), ("filereading", (384, 1024))])
def test_max_tokens_defaults_match_the_cli_help(env, expected):
    """The defaults `cta eval --help` states are the agents' defaults."""
    import re

    from typer.testing import CliRunner

    from parsimon.cli import app

    got = (make_policy(env, "llm-prompted").max_tokens, make_policy(env, "llm-prompted-thinking").max_tokens)
    assert got == expected
    help_text = " ".join(CliRunner().invoke(app, ["cta", "eval", "--help"], terminal_width=200).output.split())
    help_text = re.sub(r"[│╭╮╰╯─]", " ", help_text)
    help_text = " ".join(help_text.split())
    assert "default: 64 for pandora and qa, 384 for filereading; 512, and 1024 for filereading, with the " \
           "-thinking policies" in help_text
