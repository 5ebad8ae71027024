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
    assert len((tmp_path / "o" / "trajectories.jsonl").read_text().splitlines()) == 20
    r = runner.invoke(app, ["cta", "eval", "--env", "qa", "--policy", "cta-planner", "--n", "30",
                            "--out", str(tmp_path / "q")])
    assert r.exit_code == 0, r.output
    flat = json.loads((tmp_path / "q" / "metrics.json").read_text())  # a run's metrics.json is flat
    nested = json.loads((tmp_path / "q" / "result.json").read_text())
    assert flat["n_tasks"] == 30 and nested["per_rho"] and "retrieved" in nested["summary"]
    assert flat["summary/retrieved"] == nested["summary"]["retrieved"]
    assert all(isinstance(v, (int, float, str, bool, type(None))) for v in flat.values())
    bins = list(nested["per_rho"])
    assert flat[f"per_rho/{bins[0]}/n"] == nested["per_rho"][bins[0]]["n"]


def test_eval_bad_args(tmp_path):
    r = runner.invoke(app, ["cta", "eval", "--env", "mars", "--policy", "oracle", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "mars" in r.output and "pandora" in r.output  # the choices are listed
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "zzz", "--out", str(tmp_path / "p")])
    assert r.exit_code == 2 and "error: `policy` must be one of" in r.output and "cta-planner" in r.output
    assert "zzz" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "oracle", "--prior", "psychic",
                            "--out", str(tmp_path / "q")])
    assert r.exit_code == 2 and "error: `prior` must be one of" in r.output and "adversarial" in r.output
    r = runner.invoke(app, ["cta", "eval", "--policy", "oracle", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "`--env` is required" in r.output
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "oracle", "--resume"])
    assert r.exit_code == 2 and "`--resume` needs `--out`" in r.output
    r = runner.invoke(app, ["cta", "eval", "--help"])
    assert r.exit_code == 0 and "pandora|qa|filereading" in r.output.replace(" ", "")


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
        assert d["policy_stats/llm_calls"] == 3 and d["n_tasks"] == 3
        assert "llm_calls=3" in r.stdout  # the summary line shows the policy's counters


def test_eval_is_a_run_with_default_out_and_config_file(tmp_path, monkeypatch):
    from parsimon.run import read_run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval.toml").write_text('env = "pandora"\npolicy = "cta-planner"\nn = 8\nprior = "uniform"\n')
    r = runner.invoke(app, ["cta", "eval", "--config", "eval.toml", "--n", "6"])  # the command line wins
    assert r.exit_code == 0, r.output
    (out,) = list((tmp_path / "runs").glob("cta-eval-*"))
    info = read_run(out)
    cfg = info["config"]["config"]
    assert info["status"] == "ok" and info["name"] == "cta eval"
    assert (cfg["env"], cfg["policy"], cfg["n"], cfg["prior"], cfg["seed"]) == ("pandora", "cta-planner", 6,
                                                                                 "uniform", 0)
    assert info["metrics"]["n_tasks"] == 6
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert {"plan", "final"} <= {e["type"] for e in events}
    (tmp_path / "bad.toml").write_text('env = "pandora"\npolicy = "oracle"\nepisodes = 3\n')
    r = runner.invoke(app, ["cta", "eval", "--config", "bad.toml"])
    assert r.exit_code == 2 and "episodes" in r.output and "Traceback" not in r.output


def test_eval_resume_follows_the_run_rules(tmp_path):
    out = tmp_path / "o"
    base = ["cta", "eval", "--env", "pandora", "--policy", "oracle", "--n", "5", "--out", str(out)]
    assert runner.invoke(app, base).exit_code == 0
    r = runner.invoke(app, base)  # the folder holds a run: refuse to overwrite it
    assert r.exit_code == 2 and "already holds a run" in r.output
    r = runner.invoke(app, [*base, "--resume", "--seed", "3"])  # another config: refused, fields named
    assert r.exit_code == 2 and "seed" in r.output and "differs" in r.output
    r = runner.invoke(app, [*base, "--resume"])
    assert r.exit_code == 0, r.output
    assert len((out / "trajectories.jsonl").read_text().splitlines()) == 5  # finished episodes kept, none redone


def test_eval_prints_periodic_progress_without_a_terminal(tmp_path, monkeypatch):
    # issue 16 item 9: `cta eval --n 1200` was silent without a TTY; now plain lines every interval
    monkeypatch.setenv("PARSIMON_PROGRESS_INTERVAL", "0.05")
    r = runner.invoke(app, ["cta", "eval", "--env", "pandora", "--policy", "oracle", "--n", "1200",
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("[progress] cta eval pandora/oracle: ")]
    counts = [int(ln.split(": ")[1].split("/")[0]) for ln in lines]
    assert counts[0] == 0 and counts[-1] == 1200 and lines[-1].endswith("done")
    assert any(0 < c < 1200 for c in counts), lines  # at least one line while the work was going on


def test_every_cta_command_rejects_a_bad_argument_without_a_traceback(tmp_path):
    cases = [
        ["eval", "--env", "pandora", "--policy", "oracle", "--n", "0"],
        ["eval", "--env", "pandora", "--policy", "oracle", "--config", str(tmp_path / "missing.toml")],
        ["eval", "--env", "qa", "--policy", "oracle", "--prior", "x", "--out", str(tmp_path / "q")],
        ["generate", "--env", "mars", "--out", str(tmp_path / "t.jsonl")],
        ["generate", "--env", "filereading", "--out", str(tmp_path / "t.jsonl")],
        ["plan", "--priors", "A=-0.5,B=0.6", "--gamma", "0.5"],
        ["plan", "--gamma", "0.5"],
    ]
    for args in cases:
        r = runner.invoke(app, ["cta", *args])
        assert r.exit_code == 2, (args, r.output, r.exception)
        assert "Traceback" not in r.output and isinstance(r.exception, SystemExit), (args, r.output)
