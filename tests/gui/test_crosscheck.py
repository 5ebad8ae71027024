"""Same inputs, same pages, same Chromium: our rewards agree with BrowserGym's browsergym-miniwob."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_rewards_agree_with_browsergym():
    pytest.importorskip("browsergym.miniwob")
    from parsimon.gui.peers import crosscheck

    rows = crosscheck(["click-button", "enter-text"], [0], policy="rule")
    rows += crosscheck(["click-checkboxes"], [2], policy="random")  # a policy that also fails (raw reward -1)
    assert all(r["comparable"] and r["same_goal"] for r in rows), rows
    assert all(r["agree"] for r in rows), rows
    assert {r["ours_raw_reward"] for r in rows} >= {1.0}
