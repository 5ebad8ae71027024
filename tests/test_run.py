"""The shared run shape (parsimon.run), the runs commands, registries, config files and progress lines."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import subprocess
import sys

import numpy as np
import pytest

from parsimon.cliutil import apply_overrides, choices, load_config_file, resolve_config
from parsimon.errors import ConfigError
from parsimon.governance import current_scope, get_audit_log, get_ledger
from parsimon.progress import PlainProgress
from parsimon.registry import Registry
from parsimon.run import diff_configs, find_runs, read_run, start_run


@dataclasses.dataclass(frozen=True)
class Cfg:
    steps: int = 10
    lr: float = 0.1
    name: str = "x"
    clip: float | None = None


def test_a_run_writes_the_shared_folder(tmp_path):
    out = tmp_path / "r"
    with start_run("demo job", Cfg(), out_dir=out, seed=7) as run:
        assert current_scope().run == run.id and current_scope().workflow == "demo job"
        run.log(step=1, loss=0.5)
        run.set_metrics(loss=0.25, nested={"a": 1})
        run.figure("curve.png").write_bytes(b"png")
        get_audit_log().append(actor="test", action="noop")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"] == {"steps": 10, "lr": 0.1, "name": "x", "clip": None}
    assert cfg["seed"] == 7 and cfg["name"] == "demo job" and cfg["parsimon"] and cfg["python"]
    assert "argv" in cfg and "device" in cfg and "torch" in cfg
    info = read_run(out)
    assert info["status"] == "ok" and info["metrics"] == {"loss": 0.25, "nested/a": 1}
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "plan" and "scalars" in kinds and kinds[-1] == "final"
    assert (out / "figures" / "curve.png").read_bytes() == b"png"
    assert get_ledger().totals("run", run=cfg["run_id"])[0]["wall_s"] > 0
    assert get_audit_log().records(run=cfg["run_id"])[0].action == "noop"


def test_an_existing_run_folder_needs_resume(tmp_path):
    with start_run("job", Cfg(), out_dir=tmp_path, seed=1, ledger=False):
        pass
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        with start_run("job", Cfg(), out_dir=tmp_path, seed=1, ledger=False):
            pass


def test_resume_refuses_a_different_config_and_names_the_fields(tmp_path):
    with start_run("job", Cfg(), out_dir=tmp_path, seed=1, ledger=False) as run:
        first = run.id
    with pytest.raises(ConfigError) as err:
        with start_run("job", Cfg(steps=20, lr=0.2), out_dir=tmp_path, seed=1, resume=True, ledger=False):
            pass
    msg = str(err.value)
    assert "steps: 10 -> 20" in msg and "lr: 0.1 -> 0.2" in msg and "name" not in msg.split("field(s):")[1]
    with pytest.raises(ConfigError, match="seed: 1 -> 2"):
        with start_run("job", Cfg(), out_dir=tmp_path, seed=2, resume=True, ledger=False):
            pass
    with start_run("job", Cfg(), out_dir=tmp_path, seed=1, resume=True, ledger=False) as run:
        assert run.resumed and run.id == first
    assert read_run(tmp_path)["resumes"] == 1


def test_failure_and_interruption_are_recorded(tmp_path):
    with pytest.raises(RuntimeError):
        with start_run("job", {}, out_dir=tmp_path / "a", ledger=False):
            raise RuntimeError("boom")
    info = read_run(tmp_path / "a")
    assert info["status"] == "failed" and "boom" in info["error"]
    with pytest.raises(KeyboardInterrupt):
        with start_run("job", {}, out_dir=tmp_path / "b", ledger=False):
            raise KeyboardInterrupt
    assert read_run(tmp_path / "b")["status"] == "interrupted"
    events = (tmp_path / "a" / "events.jsonl").read_text()
    assert '"type": "error"' in events


def test_checkpoint_round_trip_restores_rng_states(tmp_path):
    torch = pytest.importorskip("torch")
    with start_run("job", {}, out_dir=tmp_path, ledger=False) as run:
        random.seed(1)
        np.random.seed(2)
        torch.manual_seed(3)
        gen = torch.Generator().manual_seed(4)
        run.save_checkpoint({"step": 5, "gen": gen.get_state()})
        want = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
        random.random()
        state = run.load_checkpoint()
        gen.set_state(state["gen"])
        got = (random.random(), np.random.rand(), torch.rand(1).item(), torch.rand(1, generator=gen).item())
    assert state["step"] == 5 and got == want


def test_a_corrupt_checkpoint_is_a_config_error(tmp_path):
    with start_run("job", {}, out_dir=tmp_path, ledger=False) as run:
        run.checkpoint_path.write_bytes(b"garbage")
        with pytest.raises(ConfigError, match="cannot be read"):
            run.load_checkpoint()


def test_an_unwritable_out_fails_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    worked = []
    with pytest.raises(ConfigError, match="`out`"):
        with start_run("job", {}, out_dir=blocker / "sub", ledger=False):
            worked.append(1)
    assert worked == []


def test_bad_start_arguments():
    with pytest.raises(ConfigError, match="`name`"):
        with start_run("", {}):
            pass
    with pytest.raises(ConfigError, match="`seed`"):
        with start_run("x", {}, seed="1"):
            pass
    with pytest.raises(ConfigError, match="`config`"):
        with start_run("x", [1, 2]):
            pass


def test_diff_configs_nested():
    assert diff_configs({"a": {"b": 1}, "c": 2}, {"a": {"b": 2}, "c": 2}) == ["a.b: 1 -> 2"]


def _cli(*args, home):
    import os

    env = dict(os.environ, PARSIMON_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "parsimon.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_runs_list_and_show_join_spend_and_audit(tmp_path, _parsimon_home):
    home = _parsimon_home
    root = tmp_path / "runs"
    with start_run("job a", {"k": 1}, out_dir=root / "a") as run:
        run.charge(tokens_in=100, money=0.5)
        get_audit_log().append(actor="t", action="a")
        run.set_metrics(score=0.9)
        rid = run.id
    with start_run("job b", {"k": 2}, out_dir=root / "nested" / "b"):
        pass
    assert len(find_runs(root)) == 2
    res = _cli("runs", "list", str(root), "--json", home=home)
    assert res.returncode == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["job a"]["spend"]["tokens"] == 100 and rows["job a"]["spend"]["money"] == 0.5
    assert rows["job a"]["audit"] == {"records": 1, "verified": True, "message": ""}
    assert rows["job a"]["metrics"] == {"score": 0.9} and rows["job b"]["status"] == "ok"
    res = _cli("runs", "show", rid, "--root", str(root), home=home)
    assert res.returncode == 0 and "score = 0.9" in res.stdout and "verified" in res.stdout
    res = _cli("runs", "list", str(root), home=home)
    assert res.returncode == 0 and "job a" in res.stdout
    # tamper with the run's audit record: the run's audit status turns broken
    import sqlite3

    con = sqlite3.connect(home / "governance.sqlite")
    con.execute("UPDATE audit_records SET action = 'forged'")
    con.commit()
    con.close()
    res = _cli("runs", "list", str(root), "--json", home=home)
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["job a"]["audit"]["verified"] is False
    res = _cli("runs", "show", "no-such-run", "--root", str(root), home=home)
    assert res.returncode == 2 and res.stderr.startswith("error:") and "Traceback" not in res.stderr


@pytest.mark.parametrize("suffix, text", [(".toml", 'steps = 30\nlr = 0.5\n'), (".json", '{"steps": 30, "lr": 0.5}')])
def test_config_files_override_and_cli_wins(tmp_path, suffix, text):
    f = tmp_path / f"c{suffix}"
    f.write_text(text)
    cfg = resolve_config(Cfg(), f, {"lr": 0.7, "name": None})
    assert cfg == Cfg(steps=30, lr=0.7)


def test_config_file_errors_name_the_problem(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("steps = 'many'\n")
    with pytest.raises(ConfigError, match="`steps` must be an integer"):
        resolve_config(Cfg(), f, {})
    f.write_text("stepz = 3\n")
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['stepz'\]"):
        resolve_config(Cfg(), f, {})
    f.write_text("steps = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config_file(f)
    with pytest.raises(ConfigError, match="no such file"):
        load_config_file(tmp_path / "missing.json")
    assert apply_overrides(Cfg(), {"clip": 1}).clip == 1.0


def test_registry_shape():
    reg = Registry("algo")
    reg.register("b", 2, describe="two")
    reg.register("a", 1)
    assert reg.names() == ["a", "b"] and reg.get("b") == 2 and reg.describe() == {"a": "", "b": "two"}
    with pytest.raises(ConfigError, match=r"`algo` must be one of \['a', 'b'\], got 'c'"):
        reg.get("c")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("a", 3)
    assert reg.resolve(len) is len
    import typing

    assert typing.get_args(choices(reg)) == ("a", "b")


def test_plain_progress_prints_periodic_lines():
    buf = io.StringIO()
    p = PlainProgress(interval=0, stream=buf)
    t = p.add_task("work", total=3)
    for _ in range(3):
        p.advance(t)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[progress] work: 0/3") and lines[-1].endswith("done")
    assert len(lines) == 4
