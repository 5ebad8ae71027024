"""The GUI-Owl prompt: byte-exact system prompts, the history window, MCP tools and tool responses."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from parsimon.errors import ConfigError
from parsimon.gui.prompt import PromptConfig, Turn, action_line, build_messages
from parsimon.gui.tools import mcp_tool_line, parameters_schema, system_prompt, tool_line

# SHA-256 of the SYSTEM_PROMPT strings of the official clients (X-PLUG/MobileAgent commit 11cea57:
# Mobile-Agent-v3.5/computer_use/utils.py, mobile_use/utils.py, browser_use/prompts.py).
OFFICIAL_SHA256 = {
    "computer": "c81ce4add7fdc174795fed0d197734479154bcade1462ac5e24781d181cb448e",
    "mobile": "28235cbaf0bd969239f5cdd3f1fa67a59edf8de4a39c49e96011feac2fbf62fe",
    "browser": "5b49d7c7f61b781731b56e75ff9019352a3104b988de32c91e0123619d38ec68",
}


def _png(w=40, h=30, color=(200, 10, 10)):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("platform", sorted(OFFICIAL_SHA256))
def test_system_prompt_is_byte_exact(platform):
    assert hashlib.sha256(system_prompt(platform).encode()).hexdigest() == OFFICIAL_SHA256[platform]


def test_tool_lines_keep_the_official_quirks():
    assert json.loads(tool_line("computer"))["function"]["name"] == "computer_use"
    assert '"select, "wait"' in tool_line("browser")  # the malformed enum the model was shown
    assert "\n* `click`" in tool_line("mobile")  # raw newlines inside the JSON string
    assert parameters_schema("browser")["properties"]["action"]["enum"][3:5] == ["select", "wait"]


def test_mcp_tools_are_appended_and_the_format_line_changes():
    tool = {"name": "CalcTools.get_column_data", "description": "Column values",
            "inputSchema": {"type": "object", "properties": {"column_name": {"type": "string"}},
                            "required": ["column_name"]}}
    prompt = system_prompt("computer", [tool])
    lines = prompt.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0].split("\n")
    assert lines[0] == tool_line("computer")
    assert json.loads(lines[1]) == {"type": "function", "function": {
        "name": "CalcTools.get_column_data", "description": "Column values", "parameters": tool["inputSchema"]}}
    assert "what to do in the UI, or specifying which tool to invoke.\n" in prompt
    assert mcp_tool_line({"type": "function", "function": {"name": "x", "parameters": {}}}).startswith('{"type"')
    with pytest.raises(ConfigError, match="name"):
        mcp_tool_line({"description": "nameless"})


def _reply(i):
    return f"Action: step {i}\n<tool_call>\n{{\"name\": \"computer_use\", \"arguments\": {{\"action\": \"wait\", \"time\": {i}}}}}\n</tool_call>"


def test_first_turn_layout():
    msgs = build_messages("Open the file", _png(), [], config=PromptConfig("computer"))
    assert [m["role"] for m in msgs] == ["system", "user"]
    text, image = msgs[1]["content"]
    assert text["text"] == ("Please generate the next move according to the UI screenshot, instruction and "
                            "previous actions.\n\nInstruction: Open the file\n\nPrevious actions:\nNone")
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


def test_history_window_collapses_old_steps():
    history = [Turn(_reply(i), _png()) for i in range(1, 7)]
    msgs = build_messages("Task", _png(color=(0, 0, 255)), history, config=PromptConfig("computer", history_n=4))
    roles = [m["role"] for m in msgs]
    assert roles == ["system"] + ["user", "assistant"] * 4 + ["user"]
    intro = msgs[1]["content"][0]["text"]
    assert intro.endswith("Previous actions:\nStep 1: step 1\nStep 2: step 2")
    assert [m["content"][0]["text"] for m in msgs if m["role"] == "assistant"] == [_reply(i) for i in range(3, 7)]
    assert all(p["type"] == "image_url" for p in msgs[-1]["content"])
    assert sum(p["type"] == "image_url" for m in msgs for p in m["content"]) == 5


def test_history_n_zero_keeps_only_text():
    history = [Turn(_reply(1), _png())]
    msgs = build_messages("Task", _png(), history, config=PromptConfig("mobile", history_n=0))
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "Step 1: step 1" in msgs[1]["content"][0]["text"]


def test_tool_response_wraps_the_next_turn():
    history = [Turn(_reply(1), _png(), tool_response='{"columns": ["A", "B"]}')]
    msgs = build_messages("Task", _png(), history, config=PromptConfig("computer", history_n=4))
    last = msgs[-1]["content"]
    assert last[0]["text"] == "<tool_response>\n" and last[1]["text"] == '{"columns": ["A", "B"]}'
    assert last[2]["type"] == "image_url" and last[3]["text"] == "\n</tool_response>"


def test_browser_layout_carries_the_observation_text():
    first = build_messages("Find X", _png(), [], config=PromptConfig("browser"), observation='[0]: <button> "Go";')
    assert first[1]["content"][-1] == {"type": "text", "text": 'observation:[0]: <button> "Go";'}
    history = [Turn(_reply(1), _png()), Turn(_reply(2), _png())]
    msgs = build_messages("Find X", _png(), history, config=PromptConfig("browser"), observation="[0]: \"a\";")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"][0]["text"].endswith("Previous actions:\nStep1: step 1")
    assert msgs[1]["content"][1]["text"] == "Current screenshot:"
    assert msgs[2]["content"][0]["text"] == _reply(2)


def test_images_are_smart_resized():
    import base64

    from PIL import Image

    msgs = build_messages("t", _png(w=333, h=215), [], config=PromptConfig("computer", image_factor=16))
    url = msgs[1]["content"][1]["image_url"]["url"]
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (336, 208)


def test_action_line_and_config_errors():
    assert action_line("<think>x</think>Action: Click A.\n<tool_call>{}</tool_call>") == "Click A."
    with pytest.raises(ConfigError, match="platform"):
        PromptConfig("tv")
    with pytest.raises(ConfigError, match="instruction"):
        build_messages("  ", None)
