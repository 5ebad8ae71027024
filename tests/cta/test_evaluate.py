import json

import pytest

from parsimon.cta import (
    EnvSpec,
    Policy,
    evaluate,
    get_env,
    list_envs,
    register_env,
    register_policy,
    register_prior,
)
from parsimon.cta.base import CTAEnv
from parsimon.cta.pandora import generate_tasks
from parsimon.governance import get_audit_log, get_ledger


class _CoinEnv(CTAEnv):
    """A toy plug-in: PEEK (costs a turn) or CALL heads/tails; grouped by a `rho` field."""

    name = "coin"

    def _start(self, task):
        return "call it", {}

    def _act(self, action):
        if action == "PEEK":
            return f"it is {self.task['side']}", 0.0, False, {"costs": {"peek": 1}}
        if action.startswith("CALL "):
            ok = action[5:] == self.task["side"]
            return "done", float(ok) * 0.5**self.t, True, {"correct": ok}
        return "bad", 0.0, False, {"valid": False, "error": "bad action", "costs": {"invalid": 1}}


class _Peeker(Policy):
    def act(self, obs, info):
        return "PEEK" if info["t"] == 0 else "CALL " + obs.split()[-1]


def _register():
    register_env(EnvSpec(name="coin", make=lambda tasks=None, **kw: _CoinEnv(tasks, max_turns=3),
                         generate=lambda n, seed: [{"task_id": f"c{i}", "side": "heads" if i % 2 else "tails",
                                                    "rho": i % 2} for i in range(n)],
                         load=lambda p: [], oracle_actions=lambda t: ["CALL " + t["side"]],
                         group=lambda t: t["rho"], default_prior="true"))
    register_policy("coin", "peeker", _Peeker)
    register_prior("coin", "true", lambda t, rng: t["side"])


def test_plugin_env_metrics_per_group_and_outputs(tmp_path):
    _register()
    assert "coin" in list_envs() and get_env("coin").name == "coin"
    m = evaluate("coin", "peeker", 4, out_dir=tmp_path, seed=1)
    assert m.n_tasks == 4 and m.mean_reward == pytest.approx(0.5) and m.match_rate == 0.0
    assert set(m.per_rho) == {0, 1} and m.per_rho[1]["n"] == 2
    assert m.summary["turns"] == 2 and m.summary["peek"] == 1
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["n_tasks"] == 4 and data["mean_reward"] == m.final and data["match_rate"] == 0.0
    assert data["per_rho/0/n"] == 2 and data["summary/peek"] == 1
    assert json.loads((tmp_path / "result.json").read_text())["per_rho"]["1"]["n"] == 2
    assert m.to_dict()["n_tasks"] == 4 and "episodes" not in m.to_dict()
    rows = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    assert rows[0]["actions"] == ["PEEK", "CALL tails"] and rows[0]["steps"][0]["costs"] == {"peek": 1}


def test_audit_and_ledger_record_every_action():
    tasks = generate_tasks(5, seed=2)
    m = evaluate("pandora", "oracle", tasks)
    n_actions = sum(len(e.actions) for e in m.episodes)
    recs = [r for r in get_audit_log().records() if r.actor == "cta.agent:oracle"]
    assert len(recs) == n_actions and recs[0].args["action"] == m.episodes[0].actions[0]
    assert get_ledger().totals(by="component")  # non-empty
    assert sum(e.actions for e in get_ledger().events(component="cta.pandora")) == n_actions
    assert get_audit_log().verify().ok


def test_a_run_charges_and_logs_under_its_id_once_across_a_resume(tmp_path):
    from parsimon.run import read_run

    tasks = generate_tasks(10, seed=4)
    out = tmp_path / "r"
    seen = []

    def stop_after_six(done, total):
        seen.append(done)
        if done == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        evaluate("pandora", "oracle", tasks, out_dir=out, progress=stop_after_six)
    info = read_run(out)
    assert info["status"] == "interrupted"
    m = evaluate("pandora", "oracle", tasks, out_dir=out, resume=True, progress=False)
    assert m.n_tasks == 10 and read_run(out)["status"] == "ok"
    run_id = info["run_id"]
    n_actions = sum(len(e.actions) for e in m.episodes)
    recs = get_audit_log().records(run=run_id)
    assert len(recs) == n_actions  # each action once, though the first attempt was interrupted
    assert [r.target for r in recs] == [f"pandora:{e.task_id}" for e in m.episodes for _ in e.actions]
    events = get_ledger().events(component="cta.pandora")
    assert {e.run for e in events} == {run_id} and sum(e.actions for e in events) == n_actions
    walls = [e for e in get_ledger().events(component="cta eval") if e.run == run_id]
    assert len(walls) == 2 and all(e.wall_s > 0 for e in walls)  # the run's wall time, once per attempt


def test_errors():
    from parsimon.errors import ConfigError

    with pytest.raises(ConfigError, match=r"`env` must be one of \[.*'filereading', 'pandora', 'qa'.*got 'nope'"):
        evaluate("nope", "oracle", 3)
    with pytest.raises(ConfigError, match=r"`policy` must be one of \[.*'cta-planner'.*got 'nope'"):
        evaluate("pandora", "nope", 3)
    with pytest.raises(ConfigError, match=r"`prior` must be one of \[.*'adversarial'.*got 'psychic'"):
        evaluate("pandora", "oracle", 3, prior="psychic")
    with pytest.raises(ValueError, match="empty"):
        evaluate("pandora", "oracle", [])
    with pytest.raises(TypeError):
        evaluate("pandora", 42, 3)
    with pytest.raises(ValueError, match="by name"):
        evaluate("pandora", _Peeker(), 3, ray="auto")
    with pytest.raises(ConfigError, match="`resume` needs `out_dir`"):
        evaluate("pandora", "oracle", 3, resume=True)


def test_resume_after_interruption(tmp_path):
    tasks = generate_tasks(12, seed=5)
    full = evaluate("pandora", "oracle", tasks, out_dir=tmp_path / "a", audit=False, ledger=False)
    calls = []

    class Interrupting(Policy):
        # the oracle, interrupted after 5 episodes
        name = "oracle"  # the same config as the resumed run's

        def __init__(self):
            super().__init__()
            from parsimon.cta.pandora import PlannerPolicy

            self.inner = PlannerPolicy()

        def reset(self, view, prior, *, seed=None):
            calls.append(view["task_id"])
            if len(calls) == 6:
                raise KeyboardInterrupt
            self.inner.reset(view, view["priors"], seed=seed)

        def act(self, obs, info):
            return self.inner.act(obs, info)

    with pytest.raises(KeyboardInterrupt):
        evaluate("pandora", Interrupting(), tasks, out_dir=tmp_path / "b", audit=False, ledger=False)
    assert len((tmp_path / "b" / "trajectories.jsonl").read_text().splitlines()) == 5
    calls.clear()
    m = evaluate("pandora", "oracle", tasks, out_dir=tmp_path / "b", audit=False, ledger=False, resume=True)
    assert m.n_tasks == 12 and m.mean_reward == pytest.approx(full.mean_reward) and m.match_rate == 1.0
    assert [e.index for e in m.episodes] == list(range(12))
    assert len((tmp_path / "b" / "trajectories.jsonl").read_text().splitlines()) == 12
    with pytest.raises(ValueError, match="differs from the saved run in 1 field.*task_ids_sha256"):
        evaluate("pandora", "oracle", generate_tasks(12, seed=6), out_dir=tmp_path / "b", audit=False, ledger=False,
                 resume=True)


def test_policy_stats_and_ray_missing():
    import importlib.util

    from parsimon.errors import DependencyNotInstalled

    if importlib.util.find_spec("ray") is None:
        with pytest.raises(DependencyNotInstalled, match="ray"):
            evaluate("pandora", "oracle", 3, ray="auto")


def test_ray_worker_function_matches_local():
    # the function each Ray worker runs, called in-process: same episodes as the local path
    from parsimon.cta.rollout import _ray_chunk

    tasks = generate_tasks(6, seed=9)
    local = evaluate("pandora", "oracle", tasks, audit=False, ledger=False)
    eps = _ray_chunk("pandora", "oracle", {}, tasks[3:], "true", 0, 3, [4])
    assert [e.index for e in eps] == [3, 5]
    assert [e.actions for e in eps] == [local.episodes[3].actions, local.episodes[5].actions]


def test_resume_ignores_a_torn_last_line(tmp_path):
    tasks = generate_tasks(4, seed=8)
    evaluate("pandora", "oracle", tasks, out_dir=tmp_path, audit=False, ledger=False)
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    with open(tmp_path / "trajectories.jsonl", "w") as fh:  # as if killed while writing episode 2
        fh.write(lines[0] + "\n" + lines[1] + "\n" + lines[2][:25])
    m = evaluate("pandora", "oracle", tasks, out_dir=tmp_path, audit=False, ledger=False, resume=True)
    assert m.n_tasks == 4 and [e.index for e in m.episodes] == [0, 1, 2, 3]
    lines = (tmp_path / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(x)["task_id"] for x in lines)


@pytest.mark.slow
def test_ray_local_instance_same_episodes_logged_once(tmp_path):
    # the Ray path end to end (a local instance, about 15 s to start): identical episodes to the in-process
    # run, a resume that keeps finished episodes, and every action logged once under the run's id
    ray = pytest.importorskip("ray")
    from parsimon.run import read_run

    tasks = generate_tasks(12, seed=3)
    local = evaluate("pandora", "oracle", tasks, audit=False, ledger=False)
    out = tmp_path / "r"
    try:
        evaluate("pandora", "oracle", tasks[:12], out_dir=out, ray="local", ray_chunks=3, n=12)
        lines = (out / "trajectories.jsonl").read_text().splitlines()
        (out / "trajectories.jsonl").write_text("\n".join(lines[:5]) + "\n")  # as if stopped after 5
        m = evaluate("pandora", "oracle", tasks[:12], out_dir=out, ray="local", ray_chunks=3, n=12, resume=True)
    finally:
        ray.shutdown()
    assert [e.actions for e in m.episodes] == [e.actions for e in local.episodes]
    run_id = read_run(out)["run_id"]
    recs = get_audit_log().records(run=run_id)
    kept = {json.loads(x)["index"] for x in lines[:5]}
    # the first attempt logged all 12 episodes; the resume only the 7 it ran again
    expected = sum(len(e.actions) for e in m.episodes) + sum(len(e.actions) for e in m.episodes
                                                             if e.index not in kept)
    assert len(recs) == expected
