"""The ``oracle`` world model: replay the episode in a scratch copy of the page and try the action there.

For each candidate action the oracle opens a fresh browser context (its own storage, cookies and
pages, thrown away afterwards), starts the same task with the same seed, replays the actions taken so
far, performs the candidate and diffs the page it lands on against the current one. The environments
run on a virtual clock, so a replay lands on the same page as the real episode did (the oracle checks
this: ``meta["replay_matches"]``, on what can be seen), and the delta is the true one. It is the ground truth for scoring
the other world models and the upper bound of the search; it costs a reset and a replay per
candidate.

Isolation. :mod:`parsimon.sandbox` cannot host the replay: its seccomp filter refuses sockets and new
processes, and Chromium is a multi-process program driven over a pipe by Playwright's node driver
(launching it inside the sandbox fails with ``PermissionError: [Errno 1] Operation not permitted``).
What isolates a replay instead: a separate browser context per replay (nothing of the real episode's
context is visible to it, nor the other way round, and it is closed at once); every request outside the
local task server aborted (``context.route``), so a replayed action cannot reach the network; the
governance store and the real episode's objects are never handed to it; the replay only ever performs
the episode's own actions on the suite's own pages. The actions replayed are the agent's actions, not
code: nothing untrusted is executed in this process.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import urllib.parse
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.world_model.base import WORLD_MODELS, Context, Prediction, WorldModel
from parsimon.gui.world_model.delta import Delta, PageState, diff
from parsimon.gui.world_model.metrics import observable
from parsimon.gui.world_model.summary import summarize

__all__ = ["OracleWorldModel", "ScratchSession"]


class ScratchSession:
    """A browser session whose every context only reaches ``origin`` (requests elsewhere abort)."""

    def __init__(self, session: Any, origin: str) -> None:
        self._session = session
        self.origin = origin.rstrip("/")

    def new_context(self, **kwargs: Any) -> Any:  # noqa: D102 - BrowserSession's contract
        ctx = self._session.new_context(**kwargs)
        allowed = (self.origin + "/", "data:", "about:")

        def gate(route: Any) -> None:
            if route.request.url.startswith(allowed):
                route.continue_()
            else:
                route.abort()

        ctx.route("**/*", gate)
        return ctx

    def close(self) -> None:  # noqa: D102 - the real session is closed by its owner
        pass


def _rebase(obs: Any, like: str) -> Any:
    """``obs`` with its URL moved to the scheme and host of ``like`` (the same pages, another server port)."""
    a, b = urllib.parse.urlsplit(obs.url), urllib.parse.urlsplit(like)
    if a.netloc == b.netloc or not a.netloc.startswith(("127.0.0.1", "localhost")):
        return obs
    return dataclasses.replace(obs, url=urllib.parse.urlunsplit((b.scheme, b.netloc, a.path, a.query, a.fragment)))


class OracleWorldModel(WorldModel):
    """See the module docstring.

    Args:
        session: A :class:`~parsimon.gui.web.browser.BrowserSession` to open scratch contexts in (one
            is started if None and the context brings none).
        screenshots: Keep the screenshot of each replayed outcome as the prediction's image (the true
            next screen).
    """

    name = "oracle"

    def __init__(self, session: Any = None, *, screenshots: bool = True) -> None:
        self._session = session
        self._own = False
        self.screenshots = screenshots
        self._env = None
        self.replays = 0

    def _scratch_env(self, context: Context) -> Any:
        from parsimon.gui.suites.base import shared_server
        from parsimon.gui.web.env import BrowserEnv

        if self._env is None:
            session = context.session or self._session
            if session is None:
                from parsimon.gui.web.browser import BrowserSession

                session = self._session = BrowserSession()
                self._own = True
            scratch = ScratchSession(session, shared_server().url("/"))
            self._env = BrowserEnv(session=scratch, observe_axtree=False, observe_screenshot=self.screenshots)
        return self._env

    def _replay(self, context: Context, action: Action) -> tuple[Any, Any]:
        env = self._scratch_env(context)
        task = copy.copy(context.task)
        prefix = None
        obs, _ = env.reset(seed=context.seed, options={"task": task})
        for a in context.history:
            obs, _, term, trunc, _ = env.step(a)
            if term or trunc:
                break
        prefix = obs
        if action.terminal:
            return prefix, prefix
        nxt, *_ = env.step(action)
        self.replays += 1
        return prefix, nxt

    def predict(self, obs: Any, action: Action, context: Context | None = None) -> Prediction:  # noqa: D102
        if context is None or context.task is None or context.seed is None:
            raise ConfigError("the oracle world model needs the episode's task, seed and history (a Context)")
        if not hasattr(context.task, "setup"):
            raise ConfigError(f"the oracle replays browser tasks only, not {type(context.task).__name__}")
        t0 = time.perf_counter()
        before = PageState.from_observation(obs)
        prefix, nxt = self._replay(context, action)
        # a state logged by another process names that process's server port: compare on the same origin
        prefix, nxt = _rebase(prefix, obs.url), _rebase(nxt, obs.url)
        # an empty style attribute or event bookkeeping (data-*) may differ; nothing visible may
        matches = observable(PageState.from_observation(prefix)).canonical() == observable(before).canonical()
        delta = diff(before, PageState.from_observation(nxt)) if not action.terminal else Delta([])
        delta.summary = summarize(before, action.describe(), delta)
        image = nxt.screenshot if self.screenshots and nxt.screenshot else None
        return Prediction(action, delta, 1.0 if matches else 0.5, self.name, time.perf_counter() - t0, image=image,
                          meta={"replay_matches": matches, "next_url": nxt.url})

    def close(self) -> None:  # noqa: D102
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._own and self._session is not None:
            self._session.close()
            self._session = None


WORLD_MODELS.register("oracle", OracleWorldModel,
                      describe="replay the episode and the action in a scratch browser context (ground truth)")
