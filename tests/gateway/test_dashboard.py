"""The dashboard in real headless Chromium: a person approves a pending call in the page and the waiting
agent goes ahead. Screenshots go to $PARSIMON_SCREENSHOT_DIR (or the test's temporary folder)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from parsimon.governance import get_audit_log
from parsimon.llm import ChatClient
from tests.gateway.conftest import one_model

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
RULES = """
[[rule]]
name = "deploys-need-a-person"
on = "model"
match = "m"
args = { content = "*deploy*" }
effect = "require_approval"
risk = "high"

[[budget]]
workflow = "release"
metric = "money"
hard = 5.0

[keys.agent]
token = "sk-agent"
workflow = "release"
"""


def test_approve_in_the_page_and_the_agent_proceeds(mock_upstream, serve, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is part of the dev extra")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    shots = Path(os.environ.get("PARSIMON_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    gw = serve(one_model(mock_upstream.base_url).replace("port = 0\n", "port = 0\napproval_wait_s = 60\n") + RULES)
    with ChatClient(base_url=gw.base_url, model="m", api_key="sk-agent", max_retries=0) as warmup:
        warmup.chat([{"role": "user", "content": "status report"}], max_tokens=4)
    out: dict = {}

    def agent():
        with ChatClient(base_url=gw.base_url, model="m", api_key="sk-agent", max_retries=0, timeout=90) as c:
            out["reply"] = c.chat([{"role": "user", "content": "Please deploy release 1.4 to production"}],
                                  max_tokens=8)

    waiting = threading.Thread(target=agent)
    waiting.start()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        script_errors: list = []
        page.on("pageerror", lambda error: script_errors.append(error))
        page.goto(f"{gw.url}/dashboard?who=tess")
        row = page.locator("#approvals tbody tr")
        row.first.wait_for(timeout=20_000)
        assert "deploys-need-a-person" in row.first.inner_text() and "high" in row.first.inner_text()
        page.wait_for_function("document.querySelector('#by-run tbody').children.length > 0", timeout=10_000)
        page.screenshot(path=str(shots / "dashboard_pending.png"), full_page=True)
        assert waiting.is_alive() and "reply" not in out  # the agent is still paused
        row.first.get_by_role("button", name="Approve").click()
        waiting.join(30)
        assert out["reply"].text == "ok"
        page.wait_for_function("document.querySelector('#approvals tbody').children.length === 0", timeout=10_000)
        page.wait_for_function("document.querySelector('#audit').innerText.includes('dashboard:tess')"
                               " && document.querySelector('#audit tbody').children.length >= 4", timeout=10_000)
        assert "verified" in page.locator("#verify").inner_text()
        page.screenshot(path=str(shots / "dashboard_approved.png"), full_page=True)
        # a second paused call: the person edits its arguments in the page, then it runs with the edit
        second = threading.Thread(target=agent)
        second.start()
        row.first.wait_for(timeout=20_000)

        def edit(dialog):
            args = json.loads(dialog.default_value)
            args["messages"][0]["content"] = "Please deploy release 1.4 to staging"
            dialog.accept(json.dumps(args))

        page.once("dialog", edit)
        row.first.get_by_role("button", name="Edit").click()
        second.join(30)
        assert out["reply"].text == "ok"
        assert mock_upstream.requests[-1]["json"]["messages"][0]["content"] == "Please deploy release 1.4 to staging"
        assert script_errors == []
        browser.close()
    log = [(r.actor, r.action, r.outcome) for r in get_audit_log().records()]
    assert ("dashboard:tess", "approval.approve", "approved") in log
    assert ("dashboard:tess", "approval.edit", "approved") in log
    assert log[-1][:2] == ("key:agent", "model.call") and log[-1][2] == "ok"
