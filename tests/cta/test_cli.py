import json

from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.cta.pandora import generate_tasks, save_tasks

runner = CliRunner()


def test_list_and_plan():
    r = runner.invoke(app, ["cta", "list"])
    assert r.exit_code == 0 and "pandora" in r.output and "cta-planner" in r.output and "qa" in r.output
    r = runner.invoke(app, ["cta", "plan", "--priors", "A=0.04,B=0.68,C=0.28", "--gamma", "0.2"])
    assert r.exit_code == 0 and json.loads(r.output)["first_action"] == "GUESS B"
    r = runner.invoke(app, ["cta", "plan", "--k-da", "0.1", "--p-ret", "0.6", "--gamma", "0.5"])
    assert json.loads(r.output)["action"] == "RETRIEVE"
    r = runner.invoke(app, ["cta", "plan", "--priors", "A=x", "--gamma", "0.2"])
    assert r.exit_code != 0


def test_eval_writes_metrics(tmp_path):
    tasks = save_tasks(generate_tasks(20, seed=0), tmp_path / "t.jsonl")
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "oracle", "--tasks", str(tasks),
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert d["n_tasks"] == 20 and d["match_rate"] == 1.0 and 0 < d["mean_reward"] <= 1
    assert (tmp_path / "o" / "trajectories.jsonl").is_file()
    r = runner.invoke(app, ["cta", "eval", "--env", "qa", "--policy", "cta-planner", "--n", "30",
                            "--out", str(tmp_path / "q")])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert d["n_tasks"] == 30 and d["per_rho"] and "retrieved" in d["summary"]


def test_eval_bad_args(tmp_path):
    r = runner.invoke(app, ["cta", "eval", "--env", "mars", "--policy", "oracle", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "mars" in r.output
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "zzz", "--out", str(tmp_path)])
    assert r.exit_code != 0 and "zzz" in r.output


def test_generate_then_eval(tmp_path):
    r = runner.invoke(app, ["cta", "generate", "--env", "pandora", "--n", "7", "--seed", "3",
                            "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 7
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "guess-now", "--tasks",
                            str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o"), "--n", "5"])
    assert r.exit_code == 0 and json.loads((tmp_path / "o" / "metrics.json").read_text())["n_tasks"] == 5


def test_llm_policy_without_endpoint_fails_clearly(tmp_path):
    import socket

    with socket.socket() as sock:  # a free port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-cta", "--n", "2",
                            "--base-url", f"http://127.0.0.1:{port}/v1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "parsimon llm serve" in r.output


def test_llm_policy_through_cli_with_mock(tmp_path):
    from tests.llm.mock_openai import MockOpenAI, Reply, completion

    with MockOpenAI([Reply(body=completion("GUESS A"))]) as mock:
        r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "llm-prompted", "--n", "3",
                                "--base-url", mock.base_url, "--model", "mock-model", "--out", str(tmp_path)])
        assert r.exit_code == 0, r.output
        d = json.loads((tmp_path / "metrics.json").read_text())
        assert d["policy_stats"]["llm_calls"] == 3 and d["n_tasks"] == 3
