import pytest

from parsimon.cta import evaluate, make_policy
from parsimon.cta.agents import ActionGrammar, parse_action, strip_thinking
from parsimon.cta.pandora import PandoraTask
from parsimon.llm import ChatClient
from tests.llm.mock_openai import MockOpenAI, Reply, completion

G = ActionGrammar.pandora(["A", "B", "C"])


@pytest.mark.parametrize("text,expected", [
    ("GUESS B", "GUESS B"),
    ("verify a", "VERIFY A"),
    ("<think>maybe VERIFY A? no</think>\nGUESS C", "GUESS C"),
    ("I could VERIFY A or GUESS B.\nAction: **VERIFY C**", "VERIFY C"),
    ("Action: `GUESS bag B`", "GUESS B"),
    ("Options: VERIFY A, GUESS B. I pick GUESS A", "GUESS A"),
])
def test_parser_accepts(text, expected):
    assert parse_action(text, G).action == expected


@pytest.mark.parametrize("text", ["", "GUESS D", "<think>VERIFY A is tempting but", "I don't know"])
def test_parser_failures(text):
    r = parse_action(text, G)
    assert r.action is None and r.reason


def test_strip_thinking_and_qa_grammar():
    assert strip_thinking("<think>x</think>y") .strip() == "y"
    qa = ActionGrammar.qa()
    assert parse_action("Action: ANSWER: Norway", qa).action == "ANSWER: Norway"
    assert parse_action("I will RETRIEVE", qa).action == "RETRIEVE"


def _tasks():
    return [PandoraTask(["A", "B", "C"], {"A": 0.2, "B": 0.7, "C": 0.1}, 0.5, "B", task_id="a"),
            PandoraTask(["A", "B", "C"], {"A": 0.3, "B": 0.45, "C": 0.25}, 0.9, "A", task_id="b")]


def test_llm_cta_vs_prompted_prompts_and_parse_failures():
    script = [Reply(body=completion("GUESS B")), Reply(body=completion("hmm")), Reply(body=completion("hmm")),
              Reply(body=completion("GUESS A"))]
    with MockOpenAI(script) as mock:
        client = ChatClient(mock.base_url, "mock-model", max_retries=0)
        m = evaluate("pandora", "llm-cta", _tasks(), prior="true",
                     policy_kwargs={"client": client, "output": "free"})
        user0 = mock.requests[0]["json"]["messages"][1]["content"]
        assert "Prior Probabilities: A: 0.2, B: 0.7, C: 0.1" in user0 and "Discount Factor r: 0.5" in user0
        assert m.policy_stats["parse_failures"] == 2 and m.policy_stats["llm_calls"] == 4
        # task a: GUESS B at t=0 (optimal) ; task b: two invalid turns then GUESS A at t=2
        assert m.episodes[0].actions == ["GUESS B"] and m.episodes[0].reward == 1.0
        assert m.episodes[1].actions == ["INVALID", "INVALID", "GUESS A"]
        assert m.episodes[1].reward == pytest.approx(0.81)
        assert m.policy_stats["tokens_in"] > 0
    with MockOpenAI([Reply(body=completion("<think>ok</think>Action: GUESS A"))]) as mock:
        client = ChatClient(mock.base_url, "mock-model", max_retries=0)
        evaluate("pandora", "llm-prompted-thinking", _tasks()[:1], policy_kwargs={"client": client, "output": "free"})
        msgs = mock.requests[0]["json"]["messages"]
        assert "Prior Probabilities" not in msgs[1]["content"] and "Action:" in msgs[0]["content"]
        assert mock.requests[0]["json"]["max_tokens"] == 512


def test_llm_endpoint_failure_is_counted_and_run_goes_on():
    with MockOpenAI([Reply(status=400, body={"error": "bad"})]) as mock:
        client = ChatClient(mock.base_url, "mock-model", max_retries=0)
        m = evaluate("pandora", "llm-prompted", _tasks()[:1], policy_kwargs={"client": client})
        assert m.policy_stats["llm_errors"] == 3 and m.mean_reward == 0.0


def test_cta_agent_requires_prior():
    pol = make_policy("pandora", "llm-cta", client=object())
    with pytest.raises(ValueError, match="prior"):
        pol.reset({"labels": ["A"], "gamma": 0.5}, None)


@pytest.mark.llm
@pytest.mark.slow
def test_real_local_model_smoke(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of the `llm` extra")
    from parsimon.llm import LocalServer

    with LocalServer(port=0, log_path=tmp_path / "server.log") as srv:
        client = ChatClient(srv.base_url, max_retries=1)
        m = evaluate("pandora", "llm-cta", _tasks(), prior="true",
                     policy_kwargs={"client": client, "max_tokens": 8, "output": "free"})
    assert m.n_tasks == 2 and m.policy_stats["llm_calls"] >= 2
    assert m.policy_stats.get("llm_errors", 0) == 0


def test_qa_llm_agents_with_mock():
    from parsimon.cta.qa import LLMAnswerer, get_bench

    bench = get_bench(0, 400)
    t = bench.tasks(1)[0]
    script = [Reply(body=completion("Action: RETRIEVE")), Reply(body=completion(f"ANSWER: {t.answer}"))]
    with MockOpenAI(script) as mock:
        client = ChatClient(mock.base_url, "mock-model", max_retries=0)
        m = evaluate("qa", "llm-cta", [t], prior="estimated", policy_kwargs={"client": client, "output": "free"})
        first = mock.requests[0]["json"]["messages"][1]["content"]
        assert "Estimated probability that your direct answer is correct" in first and t.question in first
        assert "Retrieved document:" in mock.requests[1]["json"]["messages"][-1]["content"]
        assert m.episodes[0].actions == ["RETRIEVE", "ANSWER"] and m.mean_reward == pytest.approx(t.gamma)
    with MockOpenAI([Reply(body=completion("Norway")), Reply(body=completion("I'd say 0.7 or so"))]) as mock:
        ans = LLMAnswerer(ChatClient(mock.base_url, "mock-model", max_retries=0))
        q = bench.questions[t.task_id]
        assert ans.direct(q) == "Norway" and ans.verbal_confidence(q) == pytest.approx(0.7)


def test_reasoner_through_llm_agent_pipeline():
    # the same prompts/parser/env as the LLM agents: with the prior line it matches the oracle on every task,
    # without it it behaves like the uniform-prior optimal policy
    from parsimon.cta.agents import PandoraReasonerClient
    from parsimon.cta.pandora import generate_tasks

    tasks = generate_tasks(60, seed=4)
    cta = evaluate("pandora", "llm-cta", tasks, prior="true", audit=False, ledger=False,
                   policy_kwargs={"client": PandoraReasonerClient()})
    plain = evaluate("pandora", "llm-prompted", tasks, audit=False, ledger=False,
                     policy_kwargs={"client": PandoraReasonerClient()})
    uni = evaluate("pandora", "uniform-prior", tasks, audit=False, ledger=False)
    assert cta.match_rate == 1.0
    assert [e.actions for e in plain.episodes] == [e.actions for e in uni.episodes]
    assert plain.match_rate < 0.6
