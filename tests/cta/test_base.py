import pytest

from parsimon.cta.base import CTAEnv
from parsimon.cta.pandora import PandoraEnv, PandoraTask
from parsimon.errors import ResetNeeded


def _task(prize="B", gamma=0.5):
    return PandoraTask(["A", "B", "C"], {"A": 0.2, "B": 0.5, "C": 0.3}, gamma, prize, task_id="t0")


def test_gymnasium_interface_and_costs():
    env = PandoraEnv()
    obs, info = env.reset(seed=1, options={"task": _task()})
    assert isinstance(obs, str) and info["t"] == 0 and info["task_id"] == "t0"
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step("VERIFY A")
    assert (r, term, trunc) == (0.0, False, False)
    assert "NO" in obs and info["costs"] == {"verify": 1} and info["cost_totals"] == {"verify": 1}
    obs, r, term, trunc, info = env.step("GUESS B")
    assert term and not trunc and r == pytest.approx(0.5)
    assert info["episode"]["reward"] == pytest.approx(0.5) and info["episode"]["turns"] == 2
    with pytest.raises(ResetNeeded):
        env.step("GUESS B")


def test_invalid_action_consumes_turn_and_truncates():
    env = PandoraEnv()
    env.reset(options={"task": _task()})
    obs, r, term, trunc, info = env.step("open the box please")
    assert not info["valid"] and "Invalid action" in info["error"] and info["t"] == 1
    env.step("VERIFY Z")  # unknown label: invalid too
    obs, r, term, trunc, info = env.step("nonsense")
    assert trunc and not term and r == 0.0 and info["episode"]["invalid"] == 3


def test_reset_from_task_list_and_errors():
    env = PandoraEnv([_task("A"), _task("C")])
    env.reset(options={"index": 1})
    assert env.task.prize == "C"
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": 5})
    with pytest.raises(ValueError, match="reset"):
        PandoraEnv().reset()
    with pytest.raises(TypeError):
        env.step(3)
    with pytest.raises(TypeError):
        CTAEnv()  # abstract


def test_task_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        PandoraTask(["A", "B"], {"A": 0.5, "B": 0.6}, 0.5, "A")
    with pytest.raises(ValueError, match="gamma"):
        PandoraTask(["A", "B"], {"A": 0.5, "B": 0.5}, 1.5, "A")
    with pytest.raises(ValueError, match="prize"):
        PandoraTask(["A", "B"], {"A": 0.5, "B": 0.5}, 0.5, "Q")
