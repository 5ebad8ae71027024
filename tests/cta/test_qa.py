import numpy as np
import pytest

from parsimon.cta import evaluate
from parsimon.cta.qa import BM25, QAEnv, generate_kb, get_bench, load_tasks, optimal_decision, save_tasks


@pytest.fixture(scope="module")
def bench():
    return get_bench(0, 400)


def test_bm25_ranks_exact_document_first():
    docs = ["the cat sat on the mat", "dogs chase cats in the park", "a treatise on quantum chromodynamics"]
    bm = BM25(docs)
    assert bm.search("quantum chromodynamics", 1)[0][0] == 2
    assert bm.search("cat mat", 3)[0][0] == 0
    assert np.all(bm.scores("zebra") == 0)
    with pytest.raises(ValueError):
        BM25([])


def test_kb_long_tail_and_retrieval(bench):
    kb = generate_kb(100, seed=1)
    pops = sorted(e.popularity for e in kb.entities)
    assert pops[-1] == 1.0 and np.median(pops) < 0.05  # long tail
    # retrieving with the question finds the entity's own document when it has one
    names = {d.title for d in bench.kb.documents}
    hits = [bench.retrieve(q.question).startswith(bench.kb.entities[q.eid].name)
            for q in bench.val[:100] if bench.kb.entities[q.eid].name in names]
    assert np.mean(hits) > 0.9


def test_calibration_improves_ece(bench):
    assert bench.ece_cal < bench.ece_raw / 3
    assert 0.3 < bench.p_ret < 0.95


def test_rule_and_env(bench):
    assert optimal_decision(0.1, 0.6, 0.5) == "RETRIEVE"
    assert optimal_decision(0.4, 0.6, 0.5) == "ANSWER"
    t = bench.tasks(1)[0]
    env = QAEnv()
    obs, _ = env.reset(options={"task": t})
    assert t.question in obs
    obs, r, term, _, info = env.step("RETRIEVE")
    assert obs.startswith("Retrieved document:") and info["costs"] == {"retrieve": 1}
    obs, r, term, _, info = env.step("RETRIEVE")
    assert not info["valid"]  # at most one retrieval
    obs, r, term, _, info = env.step(f"ANSWER: {t.answer}")
    assert term and r == pytest.approx(t.gamma**2)


def test_policies_and_gamma(bench, tmp_path):
    tasks = bench.tasks(200)
    assert all(0.1 <= t.gamma <= 0.65 for t in tasks)
    res = {p: evaluate("qa", p, tasks, audit=False, ledger=False).mean_reward
           for p in ("oracle", "cta-planner", "never-retrieve", "always-retrieve")}
    assert res["oracle"] >= max(res.values()) - 1e-12
    assert res["cta-planner"] > max(res["never-retrieve"], res["always-retrieve"])
    # exact expected reward of the oracle rule matches the realised mean within sampling error
    exp = np.mean([max(t.p_da, t.gamma * t.p_ret_true) for t in tasks])
    assert abs(exp - res["oracle"]) < 0.08
    p = save_tasks(tasks[:5], tmp_path / "qa.jsonl")
    assert [t.task_id for t in load_tasks(p)] == [t.task_id for t in tasks[:5]]


def test_llm_answerer_bench_with_mock_endpoint():
    from parsimon.cta.qa import LLMAnswerer, QABench
    from parsimon.llm import ChatClient
    from tests.llm.mock_openai import MockOpenAI, Reply, completion

    with MockOpenAI([Reply(body=completion("Norway"))]) as mock:
        client = ChatClient(mock.base_url, "mock-model", max_retries=0)
        bench = QABench(20, seed=3, answerer=LLMAnswerer(client), n_val=4, n_test=4, bench_id="mock-bench")
        tasks = bench.tasks()
        assert len(tasks) == 4 and all(np.isnan(t.p_da) for t in tasks) and tasks[0].bench_id == "mock-bench"
        m = evaluate("qa", "cta-planner", tasks, prior="estimated", audit=False, ledger=False)
        assert m.n_tasks == 4 and m.match_rate is None
        expected = np.mean([(t.gamma ** (1 if t.p_ret * t.gamma >= t.k_da else 0)) * (t.answer == "Norway")
                            for t in tasks])
        assert m.mean_reward == pytest.approx(expected)
        with pytest.raises(ValueError, match="simulated answerer"):
            evaluate("qa", "cta-planner", tasks, prior="true", audit=False, ledger=False)
