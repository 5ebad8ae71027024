"""Policies without a browser: proposal ranking, the constrained small-model policy, replay, roles, and the
GUI-Owl policy against a scripted OpenAI-compatible endpoint on loopback."""

from __future__ import annotations

import json

import pytest

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.policies.guiowl import GUIOwlConfig, GUIOwlPolicy
from parsimon.gui.policies.proposal import ExplorePolicy, ProposalPolicy, propose, values
from parsimon.gui.policies.replay import ReplayPolicy
from parsimon.gui.policies.roles import RolesPolicy, reflect, split_plan
from parsimon.gui.policies.textpolicy import AXTreePolicy, action_schema, candidate_strings
from parsimon.gui.reply import format_reply
from parsimon.gui.tools import system_prompt
from parsimon.llm import ChatClient
from parsimon.llm.types import ChatResponse, Usage
from tests.gui.fakes import form, observation
from tests.llm.mock_openai import MockOpenAI, Reply, completion


def test_proposal_ranks_goal_matches_first_and_does_not_repeat():
    obs = observation('Enter "ada" as the username, tick Remember me and press Submit.', form())
    ranked = [c.action for c in propose(obs)]
    typing, tick, submit = (Action("type", target=Element(1), text="ada", clear=True),
                            Action("click", target=Element(4)), Action("click", target=Element(2)))
    assert set(ranked[:2]) == {typing, tick} and ranked[-1] == Action("click", target=Element(3))
    pol = ProposalPolicy()
    pol.reset(obs.goal, {})
    chosen = [pol.act(obs, {}).action]
    # the page as it is after both steps: the box is ticked and the field holds "ada"
    import dataclasses

    done = [dataclasses.replace(e, checked=True) if e.pid == 4 else dataclasses.replace(e, value="ada")
            if e.pid == 1 else e for e in form()]
    chosen += [pol.act(observation(obs.goal, form() if i == 0 else done), {}).action for i in range(2)]
    assert set(chosen[:2]) == {typing, tick} and chosen[2] == submit  # done steps are not repeated
    assert any(c.action.kind == "terminate" for c in propose(obs, chosen))


def test_values_and_number_fields():
    assert values('Set the price of "bolts" to 9, then apply the coupon SAVE10.') == ["bolts", "9", "SAVE10"]
    assert values('Type "x 2" and 2.5, not v2 or 3rd.') == ["x 2", "2.5"]  # numbers outside the quotes, whole
    from parsimon.gui.web.observe import ElementInfo

    price = ElementInfo(5, "input", "spinbutton", name="Price of bolts", type="number", value="4", interactive=True,
                        bbox=(2, 46, 20, 10))
    obs = observation('Set the price of "bolts" to 9.', [*form(), price])
    typed = [c.action for c in propose(obs) if c.action.kind == "type"]
    on_price = [a for a in typed if a.target.id == 5]
    assert {(a.text, a.enter) for a in on_price} == {("9", True), ("9", False)}  # no word goes into a number
    assert {a.text for a in typed if a.target.id == 1} == {"bolts", "9"}
    assert propose(obs)[0].action == Action("type", target=Element(5), text="9", clear=True, enter=True)


def test_explore_types_values_of_its_own_and_otherwise_draws_a_candidate():
    from parsimon.gui.web.observe import ElementInfo

    qty = ElementInfo(5, "input", "spinbutton", name="Quantity", type="number", value="3", interactive=True,
                      bbox=(2, 46, 20, 10))
    off = ElementInfo(6, "input", "textbox", name="Locked", type="text", value="", interactive=True, disabled=True,
                      bbox=(2, 58, 20, 10))
    obs = observation("Press Submit.", [*form(), qty, off])  # nothing quoted: `random` never types here
    assert not any(c.action.kind == "type" for c in propose(obs))
    pol = ExplorePolicy(seed=3)
    acts = [pol.act(obs, {}).action for _ in range(300)]
    typed = [a for a in acts if a.kind == "type"]
    assert 0.25 < len(typed) / len(acts) < 0.45 and {a.target.id for a in typed} == {1, 5}  # never the disabled one
    assert {a.text for a in typed if a.target.id == 5} <= {"1", "2", "4", "5", "6"}  # near the field's 3, never 3
    assert all(a.text in {"submit", "cancel"} for a in typed if a.target.id == 1)
    assert 0.3 < sum(a.enter for a in typed) / len(typed) < 0.7 and all(a.clear for a in typed)
    clicks = {a.target.id for a in acts if a.kind == "click"}
    assert clicks == {2, 3, 4} and not any(a.kind == "terminate" for a in acts)
    again = ExplorePolicy(seed=3)
    assert [again.act(obs, {}).action for _ in range(300)] == acts  # seeded
    assert all(ExplorePolicy(seed=1, type_share=1.0).act(obs, {}).action.kind == "type" for _ in range(20))
    with pytest.raises(ConfigError, match="type_share"):
        ExplorePolicy(type_share=1.5)


def test_action_schema_is_an_enum_of_the_candidates():
    obs = observation('Enter "ada" and press Submit.', form())
    options = candidate_strings(obs, [], 8)
    fmt = action_schema(list(options))
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["action"]["enum"] == list(options)
    assert "stop" in options and all('"' not in c and "\\" not in c for c in options)
    with pytest.raises(ConfigError):
        action_schema([])


class ScriptedClient:
    """A ChatModel that answers from a list and records the requests."""

    def __init__(self, answers):
        self.answers, self.requests = list(answers), []

    def chat(self, messages, **kwargs):
        self.requests.append({"messages": messages, **kwargs})
        text = self.answers.pop(0)
        return ChatResponse(text, usage=Usage(10, 5), raw={"choices": [{"message": {"content": text}}]})


def test_axtree_policy_maps_the_constrained_reply_and_counts_bad_ones_invalid():
    obs = observation('Enter "ada" and press Submit.', form())
    options = list(candidate_strings(obs, [], 24))
    client = ScriptedClient([json.dumps({"action": options[0]}), "not json"])
    pol = AXTreePolicy(client)
    pol.reset(obs.goal, {})
    d = pol.act(obs, {})
    assert d.valid and d.action == Action("type", target=Element(1), text="ada", clear=True) and d.tokens == 15
    assert client.requests[0]["response_format"]["schema"]["properties"]["action"]["enum"][0] == options[0]
    d2 = pol.act(obs, {})
    assert not d2.valid and "allowed actions" in d2.error


def test_replay_policy(tmp_path):
    a1, a2 = Action("click", target=Element(2)), Action("type", text="x")
    path = tmp_path / "steps.jsonl"
    path.write_text("\n".join(json.dumps({"task": "t", "seed": 1, "action": a.to_dict()}) for a in (a1, a2))
                    + "\n" + json.dumps({"task": "t", "seed": 1, "action": None}) + "\n")
    pol = ReplayPolicy(trajectory=path)
    pol.reset("g", {"task": "t", "seed": 1})
    assert [pol.act(None, {}).action for _ in range(3)] == [a1, a2, Action("terminate", status="failure")]
    pol.reset("g", {"task": "t", "seed": 2})
    assert pol.act(None, {}).action.kind == "terminate"
    with pytest.raises(ConfigError, match="exactly one"):
        ReplayPolicy()


def test_roles_plan_reflection_and_stuck_recovery():
    assert split_plan('In the To-do app, add the task "a", then mark "a" as done.') == ['add the task "a"',
                                                                                      'mark "a" as done']
    obs = observation("Press Submit, then press Cancel.", form())
    changed = observation("Press Submit, then press Cancel.", form(), url="http://127.0.0.1/y.html")
    assert reflect(obs, obs, Action("click", target=Element(2))) == "C"
    assert reflect(obs, changed, Action("scroll", direction="down")) == "B"
    pol = RolesPolicy(ProposalPolicy(), stuck_after=2)
    pol.reset(obs.goal, {})
    acts = [pol.act(obs, {}) for _ in range(4)]  # the page never changes
    assert acts[-1].meta["roles"]["stuck"] is True and acts[-1].meta["roles"]["outcome"] == "C"
    assert pol.pool.plan == ["Press Submit", "press Cancel"] and pol.pool.completed == []


# -- GUI-Owl over a scripted OpenAI-compatible endpoint on loopback
def _reply(text):
    return Reply(body=completion(text, prompt_tokens=100, completion_tokens=20))


CLICK = {"name": "browser_use", "arguments": {"action": "click", "label": 2}}


def test_guiowl_policy_request_shape_and_reply_replay():
    obs = observation("Press Submit.", form())
    script = [_reply(format_reply("Click Submit.", CLICK, thought="the submit button is [2]")),
              _reply("Action: I am not sure what to do."),
              _reply('Action: Type.\n<tool_call>\n{"name": "browser_use", "arguments": {"action": "type", "label": 1, '
                     '"text": "ada"}}\n</tool_call>')]
    with MockOpenAI(script) as mock:
        pol = GUIOwlPolicy(ChatClient(base_url=mock.base_url, model="gui-owl", ledger=False, max_retries=0))
        pol.reset(obs.goal, {"platform": "browser"})
        d1 = pol.act(obs, {})
        d2 = pol.act(obs, {})
        d3 = pol.act(obs, {})
        body = mock.requests[0]["json"]
    assert d1.action == Action("click", target=Element(2)) and d1.thought == "the submit button is [2]"
    assert d1.tokens == 120
    assert not d2.valid and "no <tool_call>" in d2.error
    assert d3.action == Action("type", target=Element(1), text="ada", clear=True, enter=True)
    assert body["model"] == "gui-owl" and body["temperature"] == 0
    msgs = body["messages"]
    assert msgs[0]["role"] == "system" and msgs[0]["content"][0]["text"] == system_prompt("browser")
    user = msgs[1]["content"]
    assert user[0]["text"].startswith("Please generate the next move") and "Instruction: Press Submit." in user[0]["text"]
    assert user[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert user[2]["text"].startswith('observation:[1]: <input> "Username";')


def test_guiowl_policy_mcp_tool_round_trip():
    tools = [{"name": "lookup", "description": "find a value",
              "inputSchema": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}]
    calls = []

    def run_tool(name, args):
        calls.append((name, args))
        return '{"value": 42}'

    obs = observation("Find the value.", form())
    script = [_reply('Action: look it up\n<tool_call>\n{"name": "lookup", "arguments": {"key": "v"}}\n</tool_call>'),
              _reply(format_reply("Done.", {"name": "computer_use", "arguments": {"action": "answer", "text": "42"}}))]
    with MockOpenAI(script) as mock:
        pol = GUIOwlPolicy(ChatClient(base_url=mock.base_url, ledger=False, max_retries=0),
                           config=GUIOwlConfig(platform="computer"), mcp_tools=tools, mcp_call=run_tool)
        pol.reset(obs.goal, {})
        d1 = pol.act(obs, {})
        d2 = pol.act(obs, {})
        second = mock.requests[1]["json"]["messages"]
    assert d1.action is None and d1.valid and d1.mcp_call == {"name": "lookup", "arguments": {"key": "v"}}
    assert calls == [("lookup", {"key": "v"})]
    assert '"name": "lookup"' in second[0]["content"][0]["text"]  # declared in <tools>
    last = second[-1]["content"]
    assert last[0]["text"] == "<tool_response>\n" and last[1]["text"] == '{"value": 42}'
    assert d2.action == Action("answer", text="42")


def test_guiowl_policy_on_mobile_uses_points():
    obs = observation("Tap the box.", form())
    reply = format_reply("Tap.", {"name": "mobile_use", "arguments": {"action": "click", "coordinate": [250, 500]}})
    with MockOpenAI([_reply(reply)]) as mock:
        pol = GUIOwlPolicy(ChatClient(base_url=mock.base_url, ledger=False, max_retries=0))
        pol.reset(obs.goal, {"platform": "mobile"})
        d = pol.act(obs, {})
        sys_text = mock.requests[0]["json"]["messages"][0]["content"][0]["text"]
    assert d.action == Action("click", target=Point(250, 500)) and "mobile_use" in sys_text
