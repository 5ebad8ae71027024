"""The gateway file: defaults, secrets, validation errors that name the line, and the CLI around it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from parsimon.cli import app
from parsimon.gateway.config import default_config, hash_token, load_config
from parsimon.gateway.limits import KillSwitch, RateLimiter, TokenBucket
from parsimon.governance import get_audit_log
from parsimon.governance.document import DocumentError

GOOD = """
[gateway]
port = 9100
[upstreams.local]
base_url = "http://127.0.0.1:8765/v1/"
[models.small]
upstream = "local"
name = "smollm2-135m-instruct"
aliases = ["default"]
fallbacks = ["big"]
[models.big]
upstream = "local"
price_in_per_1k = 3
[cascades.auto]
models = ["small", "big"]
threshold = 0.7
[keys.team]
token_env = "TEAM_TOKEN"
workflow = "team"
[[rule]]
name = "r"
on = "model"
effect = "allow"
"""


def test_load_good_file_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_TOKEN", "s3cret")
    path = tmp_path / "gw.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert cfg.port == 9100 and cfg.upstreams["local"].base_url == "http://127.0.0.1:8765/v1"
    assert cfg.models["small"].upstream_model == "smollm2-135m-instruct" and cfg.models["big"].upstream_model == "big"
    assert cfg.keys["team"].token_sha256 == hash_token("s3cret") and not cfg.anonymous
    assert cfg.cascades["auto"].models == ("small", "big") and len(cfg.policy.rules) == 1
    d = default_config()
    assert d.anonymous and d.host == "127.0.0.1" and "smollm2-135m-instruct" in d.models


@pytest.mark.parametrize("change, line, words", [
    (("price_in_per_1k = 3", "price_in_per_1k = -3"), 13, "`models.big.price_in_per_1k` must be a number >= 0"),
    (('fallbacks = ["big"]', 'fallbacks = ["huge"]'), 10, "names an unknown model 'huge'"),
    (('models = ["small", "big"]', 'models = ["small"]'), 15, "must list at least two models"),
    (('aliases = ["default"]', 'aliases = ["big"]'), 11, "uses the name 'big'"),
    (("port = 9100", "port = 70000"), 3, "`gateway.port` must be a whole number"),
    (('base_url = "http://127.0.0.1:8765/v1/"', 'base_url = "ftp://x"'), 5, "must start with http://"),
    (("[gateway]\nport = 9100", '[gateway]\nhost = "0.0.0.0"'), 3, "not loopback"),
    (('effect = "allow"', 'effect = "maybe"'), 23, "`rule[0].effect` must be one of"),
])
def test_errors_name_the_line(tmp_path, monkeypatch, change, line, words):
    monkeypatch.setenv("TEAM_TOKEN", "s3cret")
    path = tmp_path / "gw.toml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(DocumentError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:{line}: ") and words in str(exc.value)


def test_missing_env_token_and_cli_check(tmp_path, monkeypatch):
    monkeypatch.delenv("TEAM_TOKEN", raising=False)
    path = tmp_path / "gw.toml"
    path.write_text(GOOD)
    r = CliRunner().invoke(app, ["gateway", "check", str(path)])
    assert r.exit_code == 2 and f"{path}:18: `keys.team.token_env` names the environment variable TEAM_TOKEN" in r.output
    monkeypatch.setenv("TEAM_TOKEN", "x")
    r = CliRunner().invoke(app, ["gateway", "check", str(path)])
    assert r.exit_code == 0 and "models: big, small; cascades: auto" in r.output


def test_kill_switch_cli_and_buckets():
    runner = CliRunner()
    assert runner.invoke(app, ["gateway", "kill", "--run", "run-7", "--reason", "loops", "--by", "ivy"]).exit_code == 0
    assert KillSwitch().blocking(key="any", run="run-7").reason == "loops"
    assert KillSwitch().blocking(key="any", run="run-8") is None
    assert runner.invoke(app, ["gateway", "kill", "--run", "x", "--global"]).exit_code == 2
    r = runner.invoke(app, ["gateway", "kills"])
    assert "run run-7 by ivy: loops" in r.output
    assert runner.invoke(app, ["gateway", "revive", "--run", "run-7"]).exit_code == 0
    assert KillSwitch().active() == []
    log = get_audit_log().records()
    assert [rec.action for rec in log] == ["gateway.kill", "gateway.revive"]
    assert log[0].actor == "ivy" and log[1].actor.startswith("cli:")
    t = [0.0]
    bucket = TokenBucket(2.0, 2, clock=lambda: t[0])
    assert [bucket.take() for _ in range(3)][:2] == [0.0, 0.0]
    t[0] += 0.5
    assert bucket.take() == 0.0 and bucket.take() > 0
    limiter = RateLimiter(global_per_s=1.0, global_burst=1, clock=lambda: t[0])
    assert limiter.check(key=None, key_rate=None, key_burst=None, run="r") is None
    assert limiter.check(key=None, key_rate=None, key_burst=None, run="r")[0] == "global"
