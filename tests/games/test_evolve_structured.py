"""The LLM mutator's constrained output: SEARCH constrained to the parent's snippets, against a mock endpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.llm.mock_openai import MockOpenAI, Reply, completion

from parsimon.games.candidate import SEED_CFR_PLUS
from parsimon.games.evolve.mutate import EditError, LLMMutator, edit_output, search_snippets
from parsimon.llm import ChatClient
from parsimon.llm.structured import forget_endpoint_support

LINE = "        w = (iteration_number + 1) * reach_prob"


@pytest.fixture(autouse=True)
def _fresh_support():
    forget_endpoint_support()
    yield
    forget_endpoint_support()


def test_snippets_are_runs_of_whole_lines_that_occur():
    snippets = search_snippets(SEED_CFR_PLUS)
    assert LINE in snippets and len(snippets) == len(set(snippets))
    assert all(s in SEED_CFR_PLUS and s.strip() for s in snippets)
    assert max(s.count("\n") for s in snippets) == 2  # at most three lines
    assert search_snippets("a\n\nb\nc\n", 2) == ["a", "b", "b\nc", "c"]  # never across a blank line
    with pytest.raises(EditError):
        edit_output("\n \n")


def test_constrained_request_carries_the_snippet_enum_and_edit_applies():
    def respond(req):
        schema = req["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["thinking", "edits"]
        item = schema["properties"]["edits"]["items"]["properties"]
        assert item["search"]["enum"] == search_snippets(SEED_CFR_PLUS)
        assert "JSON object" in req["messages"][0]["content"]
        return json.dumps({"thinking": "weight late iterates more",
                           "edits": [{"search": LINE, "replace": LINE.replace("+ 1)", "+ 1) ** 2")}]})

    with MockOpenAI(respond=respond) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", ledger=False, max_retries=0)
        mut = LLMMutator(client).mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
    assert "(iteration_number + 1) ** 2 * reach_prob" in mut.source
    assert mut.usage["mode"] == "constrained-schema" and mut.usage["reasks"] == 0


def test_grammar_form_and_fallback():
    reply = json.dumps({"thinking": "", "edits": [{"search": LINE, "replace": LINE.replace("1)", "2)")}]})
    with MockOpenAI(accepts={"grammar"}, respond=lambda req: reply) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", ledger=False, max_retries=0)
        mut = LLMMutator(client).mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
        assert json.dumps(LINE)[1:-1].replace("\\", "\\\\").replace('"', '\\"') in srv.requests[-1]["json"]["grammar"]
    assert mut.usage["mode"] == "constrained-grammar" and "(iteration_number + 2)" in mut.source
    forget_endpoint_support()
    # an endpoint without constraints: a SEARCH that is not in the program is refused by the schema check,
    # the re-ask gets a valid one
    bad = json.dumps({"thinking": "", "edits": [{"search": "    def nope(self):", "replace": "x"}]})
    with MockOpenAI([Reply(body=completion(bad)), Reply(body=completion(reply))], accepts=set()) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", ledger=False, max_retries=0)
        mut = LLMMutator(client).mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
        reask = [r for r in srv.requests if not r["refused"]][1]["json"]["messages"][-1]["content"]
    assert "$.edits[0].search must be one of" in reask
    assert mut.usage["mode"] == "fallback" and mut.usage["reasks"] == 1


def test_unusable_reply_is_a_parse_stage_failure_with_its_tokens():
    with MockOpenAI([Reply(body=completion("no edits here", 500, 7))], accepts=set()) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", ledger=False, max_retries=0)
        with pytest.raises(EditError) as err:
            LLMMutator(client).mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
    assert err.value.stage == "parse" and err.value.usage["completion_tokens"] == 14  # both calls counted


def test_free_mode_sends_no_structure():
    text = f"<<<<<<< SEARCH\n{LINE}\n=======\n{LINE.replace('1)', '3)')}\n>>>>>>> REPLACE\n"
    with MockOpenAI([Reply(body=completion(text))]) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", ledger=False, max_retries=0)
        mut = LLMMutator(client, output="free").mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
        req = srv.requests[0]["json"]
    assert "response_format" not in req and "grammar" not in req and "<<<<<<< SEARCH" in req["messages"][0]["content"]
    assert "(iteration_number + 3)" in mut.source and mut.usage["mode"] == "free"
