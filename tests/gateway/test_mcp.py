"""The MCP door: tools of a stdio and a streamable-HTTP server behind one namespace, each call checked against
the policy, charged as an action, and logged with argument and result digests."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import httpx
import pytest

from parsimon.governance import ApprovalStore, get_audit_log, get_ledger
from parsimon.governance.approvals import digest
from tests.gateway.conftest import MCP_SERVER, PY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def http_mcp():
    port = _free_port()
    proc = subprocess.Popen([PY, str(MCP_SERVER), "--http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


CONFIG = """
[gateway]
port = 0
approval_wait_s = 0
checkpoint_interval_s = 0
[mcp.files]
command = ["{py}", "{server}"]
risk = {{ delete_file = "high" }}
[mcp.remote]
url = "{url}"

[[rule]]
name = "nothing-under-etc"
on = "tool"
match = "*.read_file"
args = {{ path = "/etc/*" }}
effect = "deny"

[[budget]]
workflow = "gateway"
metric = "actions"
hard = 6
"""


def test_tools_routed_checked_and_logged(serve, http_mcp):
    gw = serve(CONFIG.format(py=PY, server=MCP_SERVER, url=http_mcp))
    http = httpx.Client(base_url=gw.base_url, timeout=30)
    names = {t["name"] for t in http.get("/tools").json()["data"]}
    assert {"files.read_file", "files.delete_file", "files.add", "remote.add", "remote.read_file"} <= names
    r = http.post("/tools/call", json={"name": "files.add", "arguments": {"a": 2, "b": 40}})
    assert r.status_code == 200 and r.json()["structuredContent"] == {"result": 42}
    r = http.post("/tools/call", json={"name": "remote.add", "arguments": {"a": 1, "b": 1}})
    assert r.status_code == 200 and r.json()["structuredContent"] == {"result": 2}
    rec = get_audit_log().records()[int(r.headers["x-parsimon-audit-seq"])]
    assert rec.action == "tool.call" and rec.target == "remote.add" and rec.outcome == "ok"
    assert rec.args["args_digest"] == digest({"a": 1, "b": 1}) and rec.after["result_digest"] == digest(r.json())
    # a denied call never reaches the server
    r = http.post("/tools/call", json={"name": "read_file", "arguments": {"path": "/etc/passwd"}})
    assert r.status_code == 400  # two servers have read_file: the bare name is ambiguous
    r = http.post("/tools/call", json={"name": "files.read_file", "arguments": {"path": "/etc/passwd"}})
    assert r.status_code == 403 and r.json()["error"]["rule"] == "nothing-under-etc"
    assert http.post("/tools/call", json={"name": "files.read_file", "arguments": {"path": "/tmp/a.txt"}}
                     ).json()["structuredContent"] == {"result": "alpha"}
    # a high-risk tool waits for a person; the person edits the path; the tool runs with the edit
    r = http.post("/tools/call", json={"name": "files.delete_file", "arguments": {"path": "/tmp/important"}})
    assert r.status_code == 409
    token = r.json()["error"]["resume_token"]
    ApprovalStore().decide(r.json()["error"]["approval_id"], approve=True, by="hank", args={"path": "/tmp/a.txt"})
    r = http.post("/tools/call", json={"name": "files.delete_file", "arguments": {"path": "/tmp/important"}},
                  headers={"X-Parsimon-Resume-Token": token})
    assert r.status_code == 200 and r.json()["structuredContent"] == {"result": "deleted /tmp/a.txt"}
    rec = get_audit_log().records()[int(r.headers["x-parsimon-audit-seq"])]
    assert rec.args["edited"] is True and rec.args["args_digest"] == digest({"path": "/tmp/a.txt"})
    assert http.post("/tools/call", json={"name": "files.read_file", "arguments": {"path": "/tmp/a.txt"}}
                     ).json()["structuredContent"] == {"result": "no such file: /tmp/a.txt"}
    # every executed tool call is one action; the hard limit of 6 stops the next one before it runs
    assert get_ledger().spent(workflow="gateway", metric="actions") == 5
    assert http.post("/tools/call", json={"name": "files.add", "arguments": {"a": 0, "b": 0}}).status_code == 200
    r = http.post("/tools/call", json={"name": "files.add", "arguments": {"a": 0, "b": 0}})
    assert r.status_code == 402
    assert get_audit_log().verify().ok


def test_gateway_speaks_mcp_to_mcp_clients(serve):
    gw = serve(CONFIG.replace('[mcp.remote]\nurl = "{url}"\n', "").format(py=PY, server=MCP_SERVER))
    from mcp import Client

    async def session():
        async with Client(f"{gw.url}/mcp") as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            ok = await client.call_tool("files.add", {"a": 20, "b": 22})
            denied = await client.call_tool("files.read_file", {"path": "/etc/shadow"})
            return tools, ok, denied

    tools, ok, denied = asyncio.run(session())
    assert {"files.add", "files.read_file", "files.delete_file"} <= tools
    assert ok.structured_content == {"result": 42} and not ok.is_error
    assert denied.is_error and "policy_denied" in denied.content[0].text
    assert [r.outcome.split(":")[0] for r in get_audit_log().records()] == ["ok", "refused"]
