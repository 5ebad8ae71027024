"""Parsing GUI-Owl replies: the official fallbacks, strict mode, and errors that quote the problem."""

from __future__ import annotations

import pytest

from parsimon.errors import InvalidAction, MalformedReply
from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.reply import format_reply, parse_reply

CLICK = '{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [512, 88]}}'


def test_plain_reply():
    r = parse_reply(f"Action: Click the search bar.\n<tool_call>\n{CLICK}\n</tool_call>", "computer")
    assert r.action == Action("click", target=Point(512, 88)) and r.action_text == "Click the search bar."
    assert r.thought is None and r.warnings == ()


def test_think_and_reasoning_content():
    r = parse_reply(f"<think>\nthe bar is on top\n</think>\nAction: Click.\n<tool_call>{CLICK}</tool_call>",
                    "computer")
    assert r.thought == "the bar is on top"
    r = parse_reply(f"Action: Click.\n<tool_call>{CLICK}</tool_call>", "computer", reasoning="separately")
    assert r.thought == "separately"
    with pytest.raises(MalformedReply, match="never closes"):
        parse_reply("<think>I am still thinking about", "computer")


@pytest.mark.parametrize("text,warning", [
    ("Action: x\n<tool_call>{'name': 'computer_use', 'arguments': {'action': 'left_click', "
     "'coordinate': [512, 88]}}</tool_call>", "ast.literal_eval"),
    (f"Action: x\n<tool_call>\n{CLICK}", "missing </tool_call>"),
    (f"Action: x\n```json\n{CLICK}\n```", "no <tool_call> tags"),
    (f"<tool_call>{CLICK}</tool_call>", "no Action: line"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": "{\\"action\\": \\"left_click\\", '
     '\\"coordinate\\": [512, 88]}"}</tool_call>', "JSON string"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": {"action": "click", "coordinate": [512, 88]}}'
     "</tool_call>", "read as `left_click`"),
    (f"Action: x\n<tool_call>{CLICK}</tool_call>\n<tool_call>{CLICK}</tool_call>", "acted on the first"),
])
def test_fallbacks_are_used_and_recorded(text, warning):
    r = parse_reply(text, "computer")
    assert r.action == Action("click", target=Point(512, 88))
    assert any(warning in w for w in r.warnings), r.warnings
    with pytest.raises((MalformedReply, InvalidAction)):
        parse_reply(text, "computer", strict=True)


@pytest.mark.parametrize("text,error,match", [
    ("Action: Click the button.", MalformedReply, "no <tool_call> block"),
    ("Action: x\n<tool_call>{name: computer_use}</tool_call>", MalformedReply, "neither JSON"),
    ('Action: x\n<tool_call>{"arguments": {}}</tool_call>', MalformedReply, "string `name`"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": [1]}</tool_call>', MalformedReply, "object"),
    ('Action: x\n<tool_call>{"name": "browser_use", "arguments": {"action": "click", "label": 1}}</tool_call>',
     InvalidAction, "undeclared tool 'browser_use'"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": "512,88"}}'
     "</tool_call>", InvalidAction, "breaks the schema"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": {"action": "left_click"}}</tool_call>',
     InvalidAction, "needs"),
    ('Action: x\n<tool_call>{"name": "computer_use", "arguments": {"action": "jump"}}</tool_call>',
     InvalidAction, "jump"),
])
def test_errors_quote_the_problem(text, error, match):
    with pytest.raises(error, match=match):
        parse_reply(text, "computer")


def test_mcp_calls_are_validated_against_their_schema():
    tools = [{"name": "get_column", "description": "d",
              "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}]
    r = parse_reply('Action: read it\n<tool_call>{"name": "get_column", "arguments": {"name": "A"}}</tool_call>',
                    "computer", mcp_tools=tools)
    assert r.action is None and r.mcp_call.name == "get_column" and r.mcp_call.arguments == {"name": "A"}
    with pytest.raises(InvalidAction, match="get_column"):
        parse_reply('Action: x\n<tool_call>{"name": "get_column", "arguments": {"name": 3}}</tool_call>',
                    "computer", mcp_tools=tools)


def test_browser_and_mobile_replies():
    r = parse_reply('Action: Type the query.\n<tool_call>\n{"name": "browser_use", "arguments": {"action": "type", '
                    '"label": 12, "text": "weather"}}\n</tool_call>', "browser")
    assert r.action == Action("type", target=Element(12), text="weather", clear=True, enter=True)
    r = parse_reply(format_reply("Go back.", {"name": "mobile_use", "arguments": {"action": "system_button",
                                                                                  "button": "Back"}}), "mobile")
    assert r.action == Action("go_back")
