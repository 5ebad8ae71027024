"""An MCP server (stdio) exposing the browser environment as tools: ``parsimon gui mcp-serve``.

Tools: ``start_task`` (a suite's task and seed; returns the instruction and the page), ``observe`` (the
accessibility tree, the Set-of-Marks text, optionally the screenshot), ``click``, ``type_text``,
``select_option``, ``scroll``, ``press_keys``, ``go_back``, ``act`` (any unified action as JSON) and
``task_status``. Every action goes through the same governance as the agent loop: irreversible actions
are escalated (``--approve``), and each executed action is written to the proof-of-action log with the
screenshot hashes before and after.

Playwright's sync API must stay on the thread that started it, so one worker thread owns the browser and
every tool call runs there (the MCP server itself is asynchronous). Uses ``mcp`` 2.x (``MCPServer``;
v2 renamed v1's ``FastMCP``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from parsimon.errors import ConfigError, DependencyNotInstalled, ParsimonError
from parsimon.gui.actions import Action, Element

try:  # module level: the tools' annotations are evaluated in this module's namespace
    from mcp.server.mcpserver import Image, MCPServer
except ImportError:  # pragma: no cover - the gui extra is not installed
    Image = MCPServer = None

__all__ = ["GUIToolbox", "build_server", "main"]


class GUIToolbox:
    """The environment behind the tools, confined to one thread (see the module docstring)."""

    def __init__(self, *, approve: str = "ask") -> None:
        from parsimon.gui.agent import ask_hook

        self.hook = ask_hook(approve)
        self.approve = approve
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parsimon-gui-mcp")
        self.env: Any = None
        self.suite: Any = None
        self.task: Any = None
        self.obs: Any = None

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the browser's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def start_task(self, suite: str, task: str, seed: int) -> dict:
        """Start an episode; the environment matches the suite (a browser, or the X desktop)."""
        from parsimon.gui.registry import SUITES

        s = SUITES.get(suite)()
        if self.env is None or type(s) is not type(self.suite):
            if self.env is not None:
                self.env.close()
            self.env = s.make_env()
        self.suite, self.task = s, s.task(task)
        self.obs, info = self.env.reset(seed=seed, options={"task": self.task})
        return {"goal": info["goal"], "task": info["task"], "seed": seed, **self._view(False)}

    def _view(self, screenshot: bool) -> dict:
        out = {"url": self.obs.url, "axtree": self.obs.axtree, "som": self.obs.som_text()}
        if screenshot:
            out["screenshot_png_bytes"] = len(self.obs.screenshot)
        return out

    def observe(self) -> dict:
        """The current page."""
        self._need()
        return self._view(True)

    def screenshot(self) -> bytes:
        """The current screenshot (PNG)."""
        self._need()
        return self.obs.screenshot

    def act(self, action: Action) -> dict:
        """Escalate if irreversible, run the action, audit it; return the outcome and the new page."""
        from parsimon.governance import EscalationPolicy, ProposedAction, escalate, get_audit_log, get_ledger
        from parsimon.gui.agent import _target

        self._need()
        audit = get_audit_log()
        element = self.env.element_at(action) if hasattr(self.env, "element_at") else None
        risky = action.kind == "interact" or self.task.irreversible(getattr(self.env, "page", None), action, element)
        if risky:
            gate = EscalationPolicy(irreversible_kinds={"pay", "interact"}, ledger=get_ledger())
            kind = "interact" if action.kind == "interact" else "pay"
            verdict = escalate(ProposedAction(kind, target=_target(action), args=action.to_dict(), irreversible=True),
                               policy=gate, ask=self.hook, audit=audit)
            if verdict.verdict != "auto":
                return {"refused": True, "reason": verdict.reason}
        before = self.obs
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        audit.append(actor="gui.mcp", action=action.kind, target=_target(action), args=action.to_dict(),
                     before={"screenshot_sha256": before.screenshot_sha256, "url": before.url},
                     after={"screenshot_sha256": self.obs.screenshot_sha256, "url": self.obs.url},
                     outcome="ok" if info.get("error") is None else f"error: {info['error'][:200]}")
        return {"reward": reward, "terminated": terminated, "truncated": truncated, "error": info.get("error"),
                "success": bool(info.get("success")), **self._view(False)}

    def status(self) -> dict:
        """The task's status (and the app's state, for our apps)."""
        self._need()
        st = self.env.status
        state = self.task.state(getattr(self.env, "page", None)) if hasattr(self.task, "state") else None
        return {"reward": st.reward, "done": st.done, "success": st.success, "state": state}

    def _need(self) -> None:
        if self.obs is None:
            raise ConfigError("no task is running: call start_task first")

    def close(self) -> None:
        """Close the environment and the worker thread."""
        if self.env is not None:
            self._pool.submit(self.env.close).result(timeout=60)
        self._pool.shutdown(wait=True)


def build_server(box: GUIToolbox) -> Any:
    """The MCP server with the tools of the module docstring."""
    if MCPServer is None:
        raise DependencyNotInstalled("mcp", "gui", "the MCP server (mcp >= 2)")

    server = MCPServer("parsimon-gui", instructions="Operate a real browser (or desktop) on Parsimon's GUI tasks. "
                       "Start with start_task, read the page with observe, act with click/type_text/... by the "
                       "element numbers ([12]) of the observation.")

    async def run(action: Action) -> str:
        try:
            return json.dumps(await box.call(box.act, action))
        except ParsimonError as exc:
            return json.dumps({"error": str(exc)})

    @server.tool()
    async def start_task(suite: str = "miniwob", task: str = "click-button", seed: int = 0) -> str:
        """Start a task (suite: miniwob, apps, mobile, desktop); returns the instruction and the page."""
        return json.dumps(await box.call(box.start_task, suite, task, seed))

    @server.tool()
    async def observe() -> str:
        """The page: accessibility tree (elements numbered [n]) and GUI-Owl's Set-of-Marks text."""
        return json.dumps(await box.call(box.observe))

    @server.tool()
    async def screenshot() -> Image:
        """The current screen as a PNG image."""
        return Image(data=await box.call(box.screenshot), format="png")

    @server.tool()
    async def click(label: int) -> str:
        """Click the element numbered ``label``."""
        return await run(Action("click", target=Element(label)))

    @server.tool()
    async def type_text(label: int, text: str, enter: bool = False) -> str:
        """Replace the text of field ``label`` with ``text`` (and press Enter if asked)."""
        return await run(Action("type", target=Element(label), text=text, clear=True, enter=enter))

    @server.tool()
    async def select_option(label: int, option: str) -> str:
        """Pick ``option`` in the select element ``label``."""
        return await run(Action("select", target=Element(label), option=option))

    @server.tool()
    async def scroll(direction: str = "down", label: int | None = None) -> str:
        """Scroll the page (or element ``label``) up, down, left or right by about a page."""
        target = Element(label) if label is not None else None
        return await run(Action("scroll", direction=direction, target=target))

    @server.tool()
    async def press_keys(keys: list[str]) -> str:
        """Press keys together, e.g. ["ctrl", "a"] or ["Enter"]."""
        return await run(Action("key", keys=tuple(keys)))

    @server.tool()
    async def go_back() -> str:
        """Go back to the previous page."""
        return await run(Action("go_back"))

    @server.tool()
    async def act(action: dict) -> str:
        """Any unified action as JSON, e.g. {"kind": "long_press", "target": {"point": [500, 400]}}."""
        try:
            parsed = Action.from_dict(action)
        except ParsimonError as exc:
            return json.dumps({"error": str(exc)})
        return await run(parsed)

    @server.tool()
    async def task_status() -> str:
        """Reward, whether the task ended, whether it is solved, and the app's state."""
        return json.dumps(await box.call(box.status), default=str)

    return server


def main(argv: list[str] | None = None) -> None:
    """``python -m parsimon.gui.mcp_server [--approve ask|deny|auto]``: serve on stdio until stdin closes."""
    parser = argparse.ArgumentParser(prog="parsimon gui mcp-serve", description=__doc__.split("\n")[0])
    parser.add_argument("--approve", choices=["ask", "deny", "auto"], default="deny",
                        help="irreversible actions: ask (refused without a terminal), deny, or auto-approve")
    args = parser.parse_args(argv)
    box = GUIToolbox(approve=args.approve)
    try:
        build_server(box).run("stdio")
    finally:
        box.close()


if __name__ == "__main__":
    main(sys.argv[1:])
