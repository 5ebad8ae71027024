"""Cross-checks against a peer: BrowserGym's ``browsergym-miniwob`` on the same pages and the same Chromium.

:func:`crosscheck` plays each (task, seed) in our environment with a policy, records where every action
landed (CSS pixels) and what it typed, then replays the same input events in BrowserGym's environment
with its coordinate actions (``mouse_click``, ``keyboard_type``, ``keyboard_press``) and compares the
raw rewards and the done flags. Both draw the page seed from the episode seed the same way, so seed k is
the same episode on both sides. BrowserGym runs in a child Python process (it starts its own
Playwright driver; ``python -m parsimon.gui.peers`` reads the episodes as JSON on stdin), pointed at our static server through ``MINIWOB_URL`` and at Debian's Chromium by
wrapping its driver's ``chromium.launch`` (BrowserGym's chat window launches a browser without an
executable path, which would need ``playwright install``).

Only pointer clicks, typing, key presses and waits can be replayed this way; an episode using any other
action is reported as not comparable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from parsimon.errors import ConfigError, DependencyNotInstalled

__all__ = ["browsergym_episode", "crosscheck", "to_browsergym"]


def to_browsergym(action: dict, effect: dict | None, scale: float) -> list[str] | None:
    """BrowserGym coordinate actions replaying one of our executed actions (None: not replayable)."""
    from parsimon.gui.web.executor import playwright_key

    kind = action["kind"]
    at = (effect or {}).get("at")
    if kind in ("answer", "terminate"):
        return []
    if kind == "click" and at:
        return [f"mouse_click({at[0] * scale!r}, {at[1] * scale!r})"]
    if kind == "type":
        out = [f"mouse_click({at[0] * scale!r}, {at[1] * scale!r})"] if at else []
        if action.get("clear"):
            out += ['keyboard_press("ControlOrMeta+a")', 'keyboard_press("Backspace")']
        out.append(f"keyboard_type({action.get('text', '')!r})")
        if action.get("enter"):
            out.append('keyboard_press("Enter")')
        return out
    if kind == "key":
        return [f"keyboard_press({'+'.join(playwright_key(k) for k in action['keys'])!r})"]
    if kind == "wait":
        return [f"noop({int(1000 * (action.get('seconds') or 1))})"]
    return None


def _launch_with_debian_chromium() -> None:
    from browsergym.core import _get_global_playwright

    from parsimon.gui.web.browser import CHROMIUM_ARGS, chromium_path

    pw = _get_global_playwright()
    original = pw.chromium.launch
    exe = chromium_path()

    def launch(**kwargs: Any) -> Any:
        kwargs["executable_path"] = exe
        kwargs["args"] = list(kwargs.get("args") or []) + list(CHROMIUM_ARGS)
        return original(**kwargs)

    pw.chromium.launch = launch


def browsergym_episode(task: str, seed: int, actions: list[tuple[dict, dict | None]], miniwob_url: str) -> dict:
    """Replay ``actions`` (our action dicts with their effects) in BrowserGym; runs in a child process."""
    os.environ["MINIWOB_URL"] = miniwob_url
    try:
        import browsergym.miniwob  # noqa: F401 - registers the tasks
        import gymnasium as gym
        from browsergym.core.action.highlevel import HighLevelActionSet
    except ImportError as exc:
        return {"error": f"browsergym-miniwob is not installed: {exc}"}
    _launch_with_debian_chromium()
    action_set = HighLevelActionSet(subsets=["coord"], strict=False, multiaction=False)
    env = gym.make(f"browsergym/miniwob.{task}", action_mapping=action_set.to_python_code)
    try:
        obs, info = env.reset(seed=seed)
        scale = getattr(env.unwrapped.page, "_bgym_scale_factor", 1.0)
        reward, done, raw, errors = 0.0, False, 0.0, []
        for action, effect in actions:
            steps = to_browsergym(action, effect, scale)
            if steps is None:
                return {"goal": obs["goal"], "comparable": False, "why": f"cannot replay {action['kind']!r}"}
            for code in steps:
                obs, reward, done, _, info = env.step(code)
                if obs.get("last_action_error"):
                    errors.append(obs["last_action_error"][:120])
                raw = float(info.get("task_info", {}).get("RAW_REWARD_GLOBAL", 0.0))
                if done:
                    break
            if done:
                break
        return {"goal": obs["goal"], "comparable": True, "reward": float(reward), "raw_reward": raw,
                "done": bool(done), "errors": errors}
    finally:
        env.close()


def crosscheck(tasks: list[str], seeds: list[int], *, policy: str = "rule") -> list[dict[str, Any]]:
    """One row per (task, seed): our raw reward and done flag beside BrowserGym's for the same inputs."""
    try:
        import browsergym.miniwob  # noqa: F401
    except ImportError as exc:
        raise DependencyNotInstalled("browsergym-miniwob", "gui", "the BrowserGym cross-check") from exc
    from parsimon.gui.evaluate import make_policy
    from parsimon.gui.suites.base import shared_server
    from parsimon.gui.suites.miniwob import MiniWoBTask
    from parsimon.gui.web.env import BrowserEnv

    if not tasks or not seeds:
        raise ConfigError("`tasks` and `seeds` must not be empty")
    url = shared_server().url("/miniwob/miniwob/")
    env = BrowserEnv(observe_axtree=False, observe_dom=False)
    pol = make_policy(policy)
    episodes = []
    try:
        for task in tasks:
            for seed in seeds:
                obs, info = env.reset(seed=seed, options={"task": MiniWoBTask(task)})
                pol.reset(info["goal"], info)
                played: list[tuple[dict, dict | None]] = []
                term = trunc = False
                step_info: dict = {}
                while not (term or trunc):
                    decision = pol.act(obs, step_info)
                    obs, _, term, trunc, step_info = env.step(decision.action)
                    played.append((decision.action.to_dict(), step_info.get("effect")))
                st = env.status
                episodes.append({"task": task, "seed": seed, "goal": info["goal"], "actions": played,
                                 "ours": {"raw_reward": st.info.get("raw_reward", 0.0), "done": st.done,
                                          "success": st.success}})
    finally:
        env.close()
    payload = json.dumps({"url": url, "episodes": [{k: ep[k] for k in ("task", "seed", "actions")}
                                                  for ep in episodes]})
    proc = subprocess.run([sys.executable, "-m", "parsimon.gui.peers"], input=payload, capture_output=True, text=True,
                          timeout=120 + 60 * len(episodes), env=dict(os.environ))
    if proc.returncode != 0:
        raise ConfigError(f"the BrowserGym child process failed: {proc.stderr.strip()[-800:]}")
    peers = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = []
    for ep, peer in zip(episodes, peers, strict=True):
        same_goal = peer.get("goal") == ep["goal"]
        agree = bool(peer.get("comparable")) and same_goal and peer.get("raw_reward") == ep["ours"]["raw_reward"]
        rows.append({"task": ep["task"], "seed": ep["seed"], "goal": ep["goal"], "same_goal": same_goal,
                     "actions": len(ep["actions"]), "ours_raw_reward": ep["ours"]["raw_reward"],
                     "ours_success": ep["ours"]["success"], "browsergym_raw_reward": peer.get("raw_reward"),
                     "browsergym_done": peer.get("done"), "comparable": peer.get("comparable", False),
                     "agree": agree, "note": peer.get("why") or peer.get("error") or ""})
    return rows


def main() -> None:
    """Child process: replay the episodes given as JSON on stdin in BrowserGym; print JSON rows."""
    job = json.loads(sys.stdin.read())
    out = []
    for ep in job["episodes"]:
        try:
            out.append(browsergym_episode(ep["task"], ep["seed"], [tuple(a) for a in ep["actions"]], job["url"]))
        except Exception as exc:  # noqa: BLE001 - one failed peer episode is a row, not a crash
            out.append({"error": f"{type(exc).__name__}: {exc}"[:400]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
