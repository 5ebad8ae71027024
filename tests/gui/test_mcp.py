"""The MCP server on stdio, driven by the ``mcp`` client."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest

pytestmark = pytest.mark.browser


def test_mcp_server_tools_drive_the_browser(tmp_path):
    from mcp import Client, StdioServerParameters

    env = dict(os.environ, PARSIMON_HOME=str(tmp_path))
    params = StdioServerParameters(command=sys.executable, args=["-m", "parsimon.gui.mcp_server", "--approve", "deny"],
                                   env=env)

    async def session():
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            start = json.loads((await client.call_tool("start_task", {"suite": "miniwob", "task": "click-button",
                                                                      "seed": 0})).content[0].text)
            label = int(start["som"].split('<button> "no"')[0].rsplit("[", 1)[1].split("]")[0])
            clicked = json.loads((await client.call_tool("click", {"label": label})).content[0].text)
            status = json.loads((await client.call_tool("task_status", {})).content[0].text)
            shot = (await client.call_tool("screenshot", {})).content[0]
            bad = json.loads((await client.call_tool("act", {"action": {"kind": "fly"}})).content[0].text)
            return names, start, clicked, status, shot, bad

    names, start, clicked, status, shot, bad = asyncio.run(session())
    assert {"start_task", "observe", "click", "type_text", "select_option", "scroll", "press_keys", "go_back", "act",
            "task_status", "screenshot"} <= names
    assert start["goal"] == 'Click on the "no" button.'
    assert clicked["success"] is True and clicked["terminated"] is True
    assert status == {"reward": status["reward"], "done": True, "success": True, "state": None}
    assert shot.type == "image" and getattr(shot, "mime_type", getattr(shot, "mimeType", None)) == "image/png"
    assert "kind" in bad["error"]
    from parsimon.governance import AuditLog

    log = AuditLog(tmp_path / "governance.sqlite")
    assert [r.actor for r in log.records()] == ["gui.mcp"] and log.records()[0].before["screenshot_sha256"]
