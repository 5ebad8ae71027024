"""SEARCH/REPLACE parsing and application, the offline mutator, the LLM mutator against a mock server."""

from __future__ import annotations

import numpy as np
import pytest
from tests.llm.mock_openai import MockOpenAI, Reply, completion

from parsimon.games.candidate import SEED_CFR_PLUS
from parsimon.games.evolve.mutate import (
    Edit,
    EditError,
    LLMMutator,
    OfflineMutator,
    apply_edits,
    build_prompt,
    format_edits,
    parse_search_replace,
)

REPLY = """I will switch to quadratic averaging, which weights late iterates more.

<<<<<<< SEARCH
        w = (iteration_number + 1) * reach_prob
=======
        w = (iteration_number + 1) ** 2 * reach_prob
>>>>>>> REPLACE

And floor the regrets a little differently:
<<<<<<< SEARCH
            a: max(0.0, info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])
=======
            a: max(0.0, 0.9 * info_state_node.cumulative_regret.get(a, 0.0) + cfr_regrets[a])
>>>>>>> REPLACE
"""


def test_parse_and_apply_blocks():
    edits = parse_search_replace(REPLY)
    assert len(edits) == 2
    assert edits[0].replace.strip() == "w = (iteration_number + 1) ** 2 * reach_prob"
    out = apply_edits(SEED_CFR_PLUS, edits)
    assert "** 2 * reach_prob" in out and "0.9 * info_state_node" in out
    assert out.count("\n") == SEED_CFR_PLUS.count("\n")
    # round trip through the formatter
    assert apply_edits(SEED_CFR_PLUS, parse_search_replace(format_edits(edits))) == out


def test_all_occurrences_replaced_and_errors():
    assert apply_edits("x = 1\ny = 1\n", [Edit("1", "2")]) == "x = 2\ny = 2\n"
    with pytest.raises(EditError, match="does not match"):
        apply_edits(SEED_CFR_PLUS, [Edit("no such line", "x")])
    with pytest.raises(EditError, match="no <<<<<<< SEARCH"):
        parse_search_replace("just prose, no edit")


def test_prompt_structure():
    p = build_prompt("CODE_HERE", [("PRIOR_SRC", {"mean": -0.01, "kuhn_poker": -0.02})])
    for part in ("## Task", "## Previous programs", "PRIOR_SRC", "mean=-0.01", "CODE_HERE", "SEARCH", "REPLACE"):
        assert part in p


def test_offline_mutator_is_deterministic_and_changes_code():
    m = OfflineMutator()
    a = m.mutate(SEED_CFR_PLUS, [], np.random.default_rng(5))
    b = m.mutate(SEED_CFR_PLUS, [], np.random.default_rng(5))
    assert a.source == b.source and a.description == b.description
    assert a.source != SEED_CFR_PLUS and a.edits
    seen = {OfflineMutator().mutate(SEED_CFR_PLUS, [], np.random.default_rng(s)).description for s in range(30)}
    assert len(seen) >= 3
    compile(a.source, "<mutant>", "exec")
    with pytest.raises(EditError):
        m.mutate("x = 0\n", [], np.random.default_rng(0))


def test_llm_mutator_with_mock_server(tmp_path):
    from parsimon.governance import get_ledger
    from parsimon.llm import ChatClient

    with MockOpenAI([Reply(body=completion(REPLY, prompt_tokens=900, completion_tokens=120))]) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", component="games.evolve.llm")
        mut = LLMMutator(client, output="free").mutate(SEED_CFR_PLUS, [(SEED_CFR_PLUS, {"mean": -0.001})], np.random.default_rng(0))
        sent = srv.requests[0]["json"]["messages"][0]["content"]
    assert "## Program to improve" in sent and "update_accumulate_regret" in sent
    assert "** 2 * reach_prob" in mut.source
    assert mut.usage["completion_tokens"] == 120
    totals = {r["component"]: r for r in get_ledger().totals("component")}
    assert totals["games.evolve.llm"]["tokens_in"] == 900


def test_loop_with_llm_counts_failed_mutations_and_their_tokens(tmp_path):
    """A model that answers without edits, with a SEARCH that does not match, with usable edits and with an
    HTTP error: the run goes on, each failure is recorded with its stage and the tokens it cost."""
    from parsimon.games.evolve import EvolveConfig, evolve
    from parsimon.governance import get_ledger
    from parsimon.llm import ChatClient

    no_block = "I would make the regrets better by thinking harder about them."
    no_match = "<<<<<<< SEARCH\n    def not_in_the_program(self):\n=======\n    def f(self):\n>>>>>>> REPLACE\n"
    script = [Reply(body=completion(no_block, 700, 40)), Reply(body=completion(no_match, 710, 50)),
              Reply(body=completion(REPLY, 720, 120)), Reply(status=400, body={"error": "context too long"})]
    cfg = EvolveConfig(games=["kuhn_poker"], generations=2, islands=2, iterations=30, time_s=60, memory_mb=512)
    with MockOpenAI(script) as srv:
        client = ChatClient(base_url=srv.base_url, model="mock-model", component="games.evolve.llm", max_retries=0)
        res = evolve(cfg, LLMMutator(client, max_tokens=64, output="free"), out_dir=tmp_path)
        assert [r["json"]["max_tokens"] for r in srv.requests] == [64] * 4
    lin = res.lineage
    assert [r["status"] for r in lin[:2]] == ["mutation_failed"] * 2
    assert [r["failed_stage"] for r in lin[:2]] == ["parse", "apply"]
    assert [r["llm_usage"]["completion_tokens"] for r in lin[:3]] == [40, 50, 120]
    assert lin[0]["reply_excerpt"] == no_block
    # the third child is the seed with the two edits applied, evaluated in the sandbox
    from parsimon.games.evolve.database import source_hash

    child = apply_edits(cfg.seed_source(), parse_search_replace(REPLY))
    assert lin[2]["status"] == "ok" and lin[2]["source_hash"] == source_hash(child)
    assert lin[2]["fitness"]["kuhn_poker"] < 0
    assert lin[3]["status"] == "mutation_failed" and lin[3]["failed_stage"] == "llm" and "llm_usage" not in lin[3]
    llm = {r["component"]: r for r in get_ledger().totals("component")}["games.evolve.llm"]
    assert (llm["tokens_in"], llm["tokens_out"], llm["events"]) == (700 + 710 + 720, 40 + 50 + 120, 3)
