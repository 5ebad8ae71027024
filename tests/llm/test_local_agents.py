"""Every LLM agent against the real local model (SmolLM2-135M, one thread): constrained replies always parse.

Kept short (a few decisions each): the 135M model is slow on a shared CPU and is not expected to act well,
only to act in the right shape.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from parsimon.llm.structured import forget_endpoint_support

pytestmark = [pytest.mark.llm, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    from parsimon.llm import LocalServer

    forget_endpoint_support()
    with LocalServer(port=0, log_path=tmp_path_factory.mktemp("llm") / "server.log") as srv:
        yield srv
    forget_endpoint_support()


def _client(server):
    from parsimon.llm import ChatClient

    return ChatClient(server.base_url, max_retries=1, ledger=False)


def test_pandora_and_qa_constrained_always_parse(server):
    from parsimon.cta import evaluate
    from parsimon.cta.pandora import generate_tasks
    from parsimon.cta.qa import get_bench

    client = _client(server)
    m = evaluate("pandora", "llm-cta", generate_tasks(3, seed=5), prior="true", audit=False, ledger=False,
                 policy_kwargs={"client": client})
    st = m.policy_stats
    assert st.get("parse_failures", 0) == 0 and st.get("llm_errors", 0) == 0
    # llama-cpp-python refuses the OpenAI form (HTTP 500) and takes our GBNF grammar
    assert st["replies_constrained_grammar"] == st["llm_calls"] > 0
    assert all(a != "INVALID" for e in m.episodes for a in e.actions)
    q = evaluate("qa", "llm-prompted", get_bench(0, 400).tasks(3), audit=False, ledger=False,
                 policy_kwargs={"client": client})
    assert q.policy_stats.get("parse_failures", 0) == 0 and q.summary["invalid"] == 0


def test_filereading_constrained_parses_unless_cut(server, tmp_path):
    from parsimon.cta import evaluate
    from parsimon.cta.filereading import Dataset, FileReadingEnv

    task = Dataset(seed=2, n=40, data_root=tmp_path).tasks("test", n_base=1)[0]
    m = evaluate(FileReadingEnv(max_turns=2), "llm-cta", [task], prior="true", audit=False, ledger=False,
                 policy_kwargs={"client": _client(server), "max_tokens": 128})
    st = m.policy_stats
    assert st["llm_calls"] >= 1 and st.get("llm_errors", 0) == 0
    assert st.get("parse_failures", 0) == st.get("replies_cut", 0)  # a reply fails only when cut at max_tokens


def test_mutator_constrained_edit_applies(server):
    from parsimon.games.candidate import SEED_CFR_PLUS
    from parsimon.games.evolve.mutate import EditError, LLMMutator

    mut = LLMMutator(_client(server), temperature=0.0, max_tokens=200, thinking_tokens=0)
    try:
        child = mut.mutate(SEED_CFR_PLUS, [], np.random.default_rng(0))
    except EditError as exc:  # only a reply cut at max_tokens, or a second edit over the first one's lines
        assert exc.usage["finish_reason"] == "length" or exc.stage == "apply", exc
        return
    assert child.usage["mode"] == "constrained-grammar" and child.edits
    assert all(e.search in SEED_CFR_PLUS for e in child.edits)


def test_cta_eval_starts_the_local_model_at_the_default_endpoint(tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    from typer.testing import CliRunner

    from parsimon.cli import app
    from parsimon.llm.endpoint import endpoint_answers

    monkeypatch.delenv("PARSIMON_LLM_BASE_URL", raising=False)
    if endpoint_answers("http://127.0.0.1:8765/v1", timeout=0.5):
        pytest.skip("something already serves the default endpoint")
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 8765)) == 0:
            pytest.skip("port 8765 is taken")
    r = CliRunner().invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-prompted", "--n", "1",
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "starting the local model" in r.output and "parse_failures=0/" in r.output
