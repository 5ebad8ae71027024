"""The sandbox scores failures (timeout, memory, network, exceptions) instead of raising, and cascades."""

from __future__ import annotations

import pytest

from parsimon.games.candidate import SEED_CFR_PLUS
from parsimon.games.evolve.sandbox import Limits, run_sandboxed

GAME = ["kuhn_poker"]


def test_seed_runs_and_matches_in_process():
    import parsimon.games as G

    res = run_sandboxed(SEED_CFR_PLUS, GAME, 20, limits=Limits(60, 512))
    assert res.ok, res.error
    want = G.run_candidate(SEED_CFR_PLUS, "kuhn_poker", 20).exploitability[-1][1]
    assert res.exploitability["kuhn_poker"] == pytest.approx(want, abs=1e-15)


def test_infinite_loop_is_killed():
    src = SEED_CFR_PLUS.replace("        acts = info_state_node.legal_actions\n",
                                "        acts = info_state_node.legal_actions\n        while True:\n            pass\n")
    res = run_sandboxed(src, GAME, 5, limits=Limits(2.5, 512))
    assert res.status == "timeout" and res.wall_s < 20
    assert not res.exploitability


def test_memory_hog_fails_cleanly():
    src = "hog = bytearray(8 << 30)\n" + SEED_CFR_PLUS
    res = run_sandboxed(src, GAME, 5, limits=Limits(60, 256))
    assert res.status == "memory", res.error


@pytest.mark.parametrize("code", [
    "import socket\nsocket.create_connection(('127.0.0.1', 9))\n",
    "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)\n",
    "import _socket\n_socket.socket()\n",
])
def test_network_is_blocked(code):
    res = run_sandboxed(code + SEED_CFR_PLUS, GAME, 5, limits=Limits(60, 256))
    assert res.status == "network", res.error


def test_exceptions_and_bad_values_are_scored():
    res = run_sandboxed("raise RuntimeError('boom')\n", GAME, 5, limits=Limits(60, 256))
    assert res.status == "error" and "boom" in res.error
    bad = SEED_CFR_PLUS.replace("return {a: pos[a] / total for a in acts}", "return {a: float('nan') for a in acts}")
    assert run_sandboxed(bad, GAME, 5, limits=Limits(60, 256)).status == "error"


def test_cascade_stops_after_threshold():
    res = run_sandboxed(SEED_CFR_PLUS, ["kuhn_poker", "kuhn_poker(players=3)"], 10, limits=Limits(60, 512),
                        thresholds={"kuhn_poker": 1e-9})
    assert res.status == "rejected"
    assert list(res.exploitability) == ["kuhn_poker"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="time_s"):
        Limits(0, 10)
    with pytest.raises(ValueError, match="iterations"):
        run_sandboxed(SEED_CFR_PLUS, GAME, 0)


def test_candidate_cannot_forge_its_fitness():
    import parsimon.games as G

    forge = ("import parsimon.games.best_response as _br, parsimon.games.solve as _s\n"
             "_br.exploitability = lambda *a, **k: 0.0\n_s._exploitability = lambda *a, **k: 0.0\n")
    res = run_sandboxed(forge + SEED_CFR_PLUS, GAME, 5, limits=Limits(60, 512))
    assert res.ok, res.error
    want = G.run_candidate(SEED_CFR_PLUS, "kuhn_poker", 5).exploitability[-1][1]
    assert res.exploitability["kuhn_poker"] == pytest.approx(want, abs=1e-15) and want > 1e-3


def test_candidate_cannot_reach_the_network_or_start_processes():
    code = "import os\nos.system('true')\n"
    res = run_sandboxed(code + SEED_CFR_PLUS, GAME, 5, limits=Limits(60, 256))
    assert res.status == "error" and "PermissionError" in res.error
    assert res.isolation in ("bubblewrap", "guarded")
