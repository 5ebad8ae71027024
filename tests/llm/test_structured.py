"""Structured output: the schema subset, its GBNF grammar, reply parsing, and the client's request forms,
per-endpoint support cache and fallback against a loopback mock endpoint."""

from __future__ import annotations

import json

import pytest

from parsimon.errors import ConfigError
from parsimon.llm import ChatClient
from parsimon.llm.structured import (
    StructuredError,
    StructuredOutput,
    endpoint_support,
    extract_json,
    forget_endpoint_support,
    refuses_form,
    schema_to_gbnf,
    validate_json,
)
from tests.llm.mock_openai import MockOpenAI, Reply, completion

MSG = [{"role": "user", "content": "act"}]
ACTION = {"anyOf": [
    {"type": "object", "properties": {"kind": {"type": "string", "enum": ["RETRIEVE"]}}, "required": ["kind"],
     "additionalProperties": False},
    {"type": "object", "properties": {"kind": {"type": "string", "enum": ["ANSWER"]},
                                      "answer": {"type": "string", "minLength": 1, "maxLength": 20}},
     "required": ["kind", "answer"], "additionalProperties": False}]}
SCHEMA = {"type": "object", "properties": {"thinking": {"type": "string", "maxLength": 40}, "action": ACTION,
                                           "n": {"type": "integer"}, "xs": {"type": "array", "items": {"type": "number"},
                                                                            "minItems": 1, "maxItems": 3}},
          "required": ["thinking", "action", "n", "xs"], "additionalProperties": False}
GOOD = {"thinking": "short", "action": {"kind": "ANSWER", "answer": "Oslo"}, "n": 3, "xs": [1.5]}


@pytest.fixture(autouse=True)
def _fresh_support():
    forget_endpoint_support()
    yield
    forget_endpoint_support()


@pytest.mark.parametrize("value,where", [
    ({**GOOD, "n": "3"}, "$.n"),
    ({**GOOD, "thinking": "x" * 41}, "$.thinking"),
    ({**GOOD, "action": {"kind": "ANSWER"}}, "$.action"),
    ({**GOOD, "action": {"kind": "RETRIEVE", "answer": "x"}}, "$.action"),
    ({**GOOD, "xs": []}, "$.xs"),
    ({**GOOD, "extra": 1}, "unexpected"),
    ({k: v for k, v in GOOD.items() if k != "n"}, "lacks the field 'n'"),
])
def test_validate_names_the_place(value, where):
    validate_json(GOOD, SCHEMA)
    with pytest.raises(StructuredError, match=where.replace("$", r"\$").replace(".", r"\.")):
        validate_json(value, SCHEMA)


@pytest.mark.parametrize("bad,match", [
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": []}, "must be required"),
    ({"type": "string", "pattern": "^a$"}, "unsupported keyword"),
    ({"type": "object", "properties": {}, "additionalProperties": True}, "additionalProperties"),
    ({"type": "tuple"}, "type must be one of"),
    ({"enum": []}, "non-empty"),
])
def test_unsupported_schemas_are_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        StructuredOutput(bad)


def test_grammar_shape_and_literals():
    g = schema_to_gbnf(SCHEMA)
    assert g.startswith("root ::= ")
    assert 'char{0,40}' in g and 'char{1,20}' in g and '"\\"RETRIEVE\\""' in g
    # the thinking field comes first in the object rule
    obj = next(line for line in g.splitlines() if line.startswith("value ::="))
    assert obj.index("thinking") < obj.index("action") < obj.index('"\\"n\\""') < obj.index("xs")
    # quotes, backslashes and newlines of enum values are escaped (a program line as a SEARCH snippet)
    g2 = schema_to_gbnf({"enum": ['x = "a\\\\b"\n    y']})
    assert r'"\"x = \\\"a\\\\\\\\b\\\"\\n    y\""' in g2


def test_grammar_is_accepted_by_llama_cpp():
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    from parsimon.cta.filereading.env import action_format as fr_format
    from parsimon.cta.pandora import action_format as pandora_format
    from parsimon.cta.qa.env import action_format as qa_format
    from parsimon.games.candidate import SEED_CFR_PLUS
    from parsimon.games.evolve.mutate import edit_output

    outs = [StructuredOutput(SCHEMA), pandora_format(["A", "C"]).output(400), qa_format(False).output(0),
            fr_format("f.csv").output(1024), edit_output(SEED_CFR_PLUS)]
    for out in outs:
        llama_cpp.LlamaGrammar.from_string(out.grammar, verbose=False)


@pytest.mark.parametrize("text", [json.dumps(GOOD), "Here you go:\n```json\n" + json.dumps(GOOD) + "\n```",
                                  "Sure! " + json.dumps(GOOD) + " Anything else?"])
def test_extract_json_finds_the_object(text):
    assert extract_json(text) == GOOD


def test_refusal_detection():
    assert refuses_form("json_schema", 500, "Input should be 'text' or 'json_object' ... response_format")
    assert refuses_form("grammar", 400, "Unrecognized request argument supplied: grammar")
    assert not refuses_form("grammar", 400, "maximum context length is 2048 tokens")
    assert not refuses_form("json_object", 200, "response_format")


def _client(url, **kw):
    kw.setdefault("max_retries", 0)
    c = ChatClient(base_url=url, ledger=False, **kw)
    c._sleep = lambda s: None
    return c


def test_openai_form_carries_the_schema():
    out = StructuredOutput(SCHEMA, name="act")
    with MockOpenAI(respond=lambda req: json.dumps(GOOD)) as mock:
        r = _client(mock.base_url).chat(MSG, structured=out)
    req = mock.requests[0]["json"]
    assert req["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "act", "schema": SCHEMA, "strict": True}}
    assert "grammar" not in req
    assert (r.mode, r.parsed, r.parse_error, r.reasks, r.requests) == ("constrained-schema", GOOD, "", 0, 1)


def test_llama_cpp_python_forms_and_the_cache():
    """llama-cpp-python answers the OpenAI form with HTTP 500 and takes our grammar; the refusal is remembered,
    so the next call goes straight to the accepted form."""
    out = StructuredOutput(SCHEMA)
    with MockOpenAI(accepts={"json_object", "grammar"}, refusal_status=500,
                    respond=lambda req: json.dumps(GOOD)) as mock:
        c = _client(mock.base_url, max_retries=3)
        r1 = c.chat(MSG, structured=out)
        r2 = c.chat(MSG, structured=out)
    assert [q["form"] for q in mock.requests] == ["json_schema", "grammar", "grammar"]
    assert mock.requests[1]["json"]["grammar"] == out.grammar and "response_format" not in mock.requests[1]["json"]
    assert r1.mode == r2.mode == "constrained-grammar" and r1.parsed == GOOD
    assert r1.attempts == 2 and r2.attempts == 1  # the 500 refusal was not retried as a transient error
    sup = endpoint_support(c.base_url, c.model)
    assert sup.forms == {"json_schema": False, "grammar": True}


def test_json_object_form_carries_the_schema():
    out = StructuredOutput(SCHEMA)
    with MockOpenAI(accepts={"json_object"}, respond=lambda req: json.dumps(GOOD)) as mock:
        r = _client(mock.base_url).chat(MSG, structured=out)
    assert [q["form"] for q in mock.requests] == ["json_schema", "grammar", "json_object"]
    assert mock.requests[-1]["json"]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert r.mode == "constrained-schema" and r.parsed == GOOD


def test_grammar_form_carries_the_grammar():
    out = StructuredOutput(SCHEMA)
    with MockOpenAI(accepts={"grammar"}, respond=lambda req: json.dumps(GOOD)) as mock:
        r = _client(mock.base_url).chat(MSG, structured=out)
    assert [q["form"] for q in mock.requests] == ["json_schema", "grammar"]
    assert mock.requests[-1]["json"]["grammar"] == out.grammar and "response_format" not in mock.requests[-1]["json"]
    assert r.mode == "constrained-grammar" and r.parsed == GOOD


def test_fallback_parses_and_reasks_once_with_the_error():
    out = StructuredOutput(SCHEMA)
    script = [Reply(body=completion("I would answer Oslo.")), Reply(body=completion(json.dumps(GOOD), 40, 20))]
    with MockOpenAI(script, accepts=set()) as mock:
        r = _client(mock.base_url).chat(MSG, structured=out)
    served = [q for q in mock.requests if not q["refused"]]
    assert len(served) == 2 and all(q["form"] == "plain" for q in served)
    reask = served[1]["json"]["messages"]
    assert reask[-2] == {"role": "assistant", "content": "I would answer Oslo."}
    assert "could not be used" in reask[-1]["content"] and "no JSON value" in reask[-1]["content"]
    assert (r.mode, r.parsed, r.reasks, r.requests) == ("fallback", GOOD, 1, 2)
    assert r.usage.prompt_tokens == 11 + 40 and r.usage.completion_tokens == 3 + 20  # both calls counted
    # a second call does not try the refused forms again
    with MockOpenAI([Reply(body=completion(json.dumps(GOOD)))], accepts=set()) as mock2:
        forget_endpoint_support()
        c = _client(mock2.base_url)
        c.chat(MSG, structured=out)
        c.chat(MSG, structured=out)
    assert [q["form"] for q in mock2.requests] == ["json_schema", "grammar", "json_object", "plain", "plain"]


def test_fallback_gives_up_after_one_reask():
    with MockOpenAI([Reply(body=completion("no idea"))], accepts=set()) as mock:
        r = _client(mock.base_url).chat(MSG, structured=StructuredOutput(SCHEMA))
    assert r.parsed is None and r.reasks == 1 and "no JSON value" in r.parse_error and r.mode == "fallback"
    assert len([q for q in mock.requests if not q["refused"]]) == 2


def test_endpoint_that_ignores_the_constraint_is_demoted():
    """An endpoint that accepts the `grammar` field but ignores it: after two broken replies the form is
    taken as unsupported and the client falls back (each broken reply was re-asked once)."""
    with MockOpenAI(accepts={"grammar"}, respond=lambda req: "prose, not JSON") as mock:
        c = _client(mock.base_url)
        out = StructuredOutput(SCHEMA)
        r1 = c.chat(MSG, structured=out)
        sup = endpoint_support(c.base_url, c.model)
        assert r1.mode == "constrained-grammar" and sup.forms.get("grammar") is False
        r2 = c.chat(MSG, structured=out)
    assert r2.mode == "fallback" and r1.parsed is None and r2.parsed is None
    assert "ignored the constraint" in sup.reasons["grammar"]


def test_constrained_reply_cut_at_max_tokens_is_not_reasked():
    cut = completion('{"thinking": "abc", "act')
    cut["choices"][0]["finish_reason"] = "length"
    with MockOpenAI([Reply(body=cut)]) as mock:
        r = _client(mock.base_url).chat(MSG, structured=StructuredOutput(SCHEMA), max_tokens=9)
    assert len(mock.requests) == 1 and r.parsed is None and "cut at max_tokens=9" in r.parse_error


def test_free_mode_and_constrain_false():
    with MockOpenAI([Reply(body=completion(json.dumps(GOOD)))]) as mock:
        c = _client(mock.base_url)
        free = c.chat(MSG)
        plain = c.chat(MSG, structured=StructuredOutput(SCHEMA), constrain=False)
    assert [q["form"] for q in mock.requests] == ["plain", "plain"]
    assert (free.mode, free.parsed) == ("free", None)
    assert (plain.mode, plain.parsed) == ("fallback", GOOD)
