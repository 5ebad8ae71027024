"""The LLM world model and the policy-as-judge against a scripted OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from parsimon.errors import MalformedReply
from parsimon.gui.actions import Action, Element
from parsimon.gui.world_model.delta import SetChecked, SetFocus
from parsimon.gui.world_model.judge import Judge
from parsimon.gui.world_model.llm import LLMWorldModel, ops_from_json
from parsimon.llm import ChatClient
from tests.llm.mock_openai import MockOpenAI, Reply, completion

PAGE = ('<html><head><title>T</title></head><body><div id="area" data-pid="0"><label data-pid="1">'
        '<input type="checkbox" data-pid="2">milk</label><button data-pid="3">Go</button></div></body></html>')


def test_llm_world_model_sends_the_schema_and_reads_the_ops(obs_from_html):
    reply = {"ops": [{"op": "checked", "id": 2, "checked": True}, {"op": "focus", "id": 2},
                     {"op": "value"}], "summary": "milk is ticked", "confidence": 0.8}
    with MockOpenAI([Reply(body=completion(json.dumps(reply)))]) as mock:
        wm = LLMWorldModel(ChatClient(base_url=mock.base_url, model="m", max_retries=0, ledger=False))
        pred = wm.predict(obs_from_html(PAGE), Action("click", target=Element(2)))
        body = mock.requests[0]["json"]
    assert pred.delta.ops == [SetChecked(2, True), SetFocus(2)]
    assert pred.meta["unusable_ops"] == 1 and pred.confidence == 0.8 and pred.delta.summary == "milk is ticked"
    schema = body["response_format"]["schema"]
    assert body["response_format"]["type"] == "json_object"
    assert schema["properties"]["ops"]["items"]["properties"]["op"]["enum"][0] == "checked"
    assert "[2] <input>" in body["messages"][1]["content"] and "click #2" in body["messages"][1]["content"]


def test_llm_world_model_rejects_a_reply_that_is_not_json(obs_from_html):
    with MockOpenAI([Reply(body=completion("sure, the box gets ticked"))]) as mock:
        wm = LLMWorldModel(ChatClient(base_url=mock.base_url, model="m", max_retries=0, ledger=False))
        with pytest.raises(MalformedReply, match="not a JSON object"):
            wm.predict(obs_from_html(PAGE), Action("click", target=Element(2)))


def test_ops_from_json_skips_what_it_cannot_read():
    ops, bad = ops_from_json([{"op": "remove", "id": 3}, {"op": "attr", "id": 1}, {"op": "add", "id": 0,
                                                                                    "value": "<x>"}, "junk"])
    assert [o.kind for o in ops] == ["remove", "add"] and bad == 2
    assert "&lt;x&gt;" in ops[1].html


def test_judge_constrains_the_choice_and_attaches_images():
    with MockOpenAI([Reply(body=completion('{"action_idx": 1, "thought": "the second checks milk"}'))]) as mock:
        judge = Judge(ChatClient(base_url=mock.base_url, model="m", max_retries=0, ledger=False), images=True)
        idx, thought = judge.choose("tick milk", "page", [{"action": "click #3"},
                                                          {"action": "click #2", "predicted_state_text": "milk ticked",
                                                           "predicted_state_image": b"\x89PNG"}], b"\x89PNG")
        body = mock.requests[0]["json"]
    assert (idx, thought) == (1, "the second checks milk")
    assert body["response_format"]["schema"]["properties"]["action_idx"]["enum"] == [0, 1]
    parts = body["messages"][1]["content"]
    assert sum(p["type"] == "image_url" for p in parts) == 2 and "predicted_state_text: milk ticked" in parts[0]["text"]


def test_judge_reply_out_of_range_is_malformed():
    with MockOpenAI([Reply(body=completion('{"action_idx": 7, "thought": "x"}'))]) as mock:
        judge = Judge(ChatClient(base_url=mock.base_url, model="m", max_retries=0, ledger=False))
        with pytest.raises(MalformedReply, match="option 7"):
            judge.choose("g", "p", [{"action": "a"}, {"action": "b"}])
