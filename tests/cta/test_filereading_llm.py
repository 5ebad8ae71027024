"""FILEREADING LLM agents: context-window handling (stand-in client) and a run with the real local model."""

from __future__ import annotations

import json
import time

import pytest

from parsimon.cta.evaluate import evaluate
from parsimon.cta.filereading import Dataset, FileReadingEnv
from parsimon.errors import LLMError


@pytest.fixture(scope="module")
def two_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("fr_llm_data")
    return Dataset(seed=2, n=40, data_root=root).tasks("test", n_base=1)[:2]


class _SmallContextClient:
    """Answers like an endpoint with a small context window: a request whose messages exceed
    ``limit`` characters is refused with llama-cpp-python's error text; otherwise the reply is an
    unparseable sentence (so the episode runs to the turn limit)."""

    model = "small-context"

    def __init__(self, limit: int):
        self.limit, self.sizes, self.refused = limit, [], 0

    def chat(self, messages, **_):
        from parsimon.llm.types import ChatResponse, Usage

        size = sum(len(m["content"]) for m in messages)
        if size > self.limit:
            self.refused += 1
            raise LLMError("http://x/v1/chat/completions answered HTTP 400: {\"error\":{\"message\":\"This model's "
                           "maximum context length is 2048 tokens.\",\"code\":\"context_length_exceeded\"}}")
        self.sizes.append(size)
        assert messages[0]["role"] == "system" and messages[1]["content"].startswith("File: ")
        assert messages[-1]["role"] == "user"
        return ChatResponse(text="I think the file is a CSV. " * 20, usage=Usage(size // 4, 100))


def test_context_overflow_drops_oldest_turns(two_tasks):
    from parsimon.cta.filereading.policies import _fr_first, _fr_system

    first = len(_fr_system(False)) + len(_fr_first(two_tasks[0].public(), None))
    client = _SmallContextClient(limit=first + 2000)  # room for about three exchanges
    env = FileReadingEnv(max_turns=8)
    m = evaluate(env, "llm-prompted", two_tasks[:1], policy_kwargs={"client": client, "output": "free"}, audit=False,
                 ledger=False)
    ep = m.episodes[0]
    assert ep.summary["truncated"] and ep.summary["turns"] == 8
    st = m.policy_stats
    # Every turn got a reply (no turn was lost to the full context), older turns were dropped instead.
    assert st["llm_calls"] == 8 and "llm_errors" not in st and st["parse_failures"] == 8
    assert client.refused == st["history_trimmed"] > 0
    assert len(client.sizes) == 8 and max(client.sizes) <= client.limit


def test_context_overflow_with_nothing_left_to_drop(two_tasks):
    client = _SmallContextClient(limit=10)  # not even the first turn fits
    m = evaluate(FileReadingEnv(max_turns=2), "llm-prompted", two_tasks[:1],
                 policy_kwargs={"client": client, "output": "free"},
                 audit=False, ledger=False)
    st = m.policy_stats
    assert st["llm_calls"] == 2 and st["llm_errors"] == 2 and st["parse_failures"] == 2
    assert "history_trimmed" not in st and m.mean_reward == 0.0


@pytest.mark.llm
@pytest.mark.slow
def test_real_local_model_runs_filereading_episodes(two_tasks, tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    from parsimon.governance import get_ledger
    from parsimon.llm import LocalServer

    t0 = time.perf_counter()
    out = tmp_path / "out"
    with LocalServer(port=0, log_path=tmp_path / "server.log") as srv:
        # 3 turns and 48 reply tokens keep this to about 20 s with the 135M model on one thread.
        m = evaluate(FileReadingEnv(max_turns=3), "llm-cta", two_tasks, prior="true", out_dir=out,
                     policy_kwargs={"base_url": srv.base_url, "max_tokens": 48})
    d = json.loads((out / "metrics.json").read_text())
    assert d["n_tasks"] == 2 and d["policy"] == "llm-cta"
    rows = [json.loads(line) for line in (out / "trajectories.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    for ep in m.episodes:
        # Each episode ended: an ANSWER (terminated) or the turn limit (truncated, reward 0).
        finished_by_answer = ep.actions[-1] == "ANSWER" and not ep.summary["truncated"]
        finished_by_limit = ep.summary["truncated"] and ep.summary["turns"] == 3 and ep.reward == 0.0
        assert finished_by_answer != finished_by_limit, ep.summary
        assert 1 <= ep.summary["turns"] <= 3 and len(ep.steps) == ep.summary["turns"]
    st = m.policy_stats
    turns = sum(ep.summary["turns"] for ep in m.episodes)
    assert st["llm_calls"] == turns > 0
    assert st.get("tokens_in", 0) > 0 and st.get("tokens_out", 0) > 0
    assert 0 <= st.get("parse_failures", 0) <= turns
    # Every answered call was charged to the cost ledger under the agent's component.
    rows = {r["component"]: r for r in get_ledger().totals("component")}
    assert rows["cta.llm"]["tokens_in"] == st["tokens_in"] and rows["cta.llm"]["tokens_out"] == st["tokens_out"]
    assert rows["cta.filereading"]["actions"] == turns
    assert time.perf_counter() - t0 < 120
