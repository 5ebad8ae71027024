"""Calibrate-Then-Act (arXiv 2602.16699): cost-aware exploration environments, calibrated priors,
optimal planners, LLM agents and their evaluation.

Environments register by name (``pandora``, ``qa``, ``filereading`` and plug-ins); their modules are
imported on first use, so ``import parsimon.cta`` stays light::

    from parsimon.cta import evaluate
    m = evaluate("pandora", "cta-planner", 100, prior="true")
    print(m.mean_reward, m.match_rate)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from parsimon.cta.base import CTAEnv, Episode, Policy, StepRecord
    from parsimon.cta.evaluate import EvalConfig, evaluate, evaluate_config, write_outputs
    from parsimon.cta.metrics import Metrics
    from parsimon.cta.registry import (
        PRIOR_SOURCES,
        EnvSpec,
        get_env,
        get_prior,
        list_envs,
        list_policies,
        list_priors,
        make_env,
        make_policy,
        register_env,
        register_policy,
        register_prior,
    )
    from parsimon.cta.rollout import run_episode
    from parsimon.cta.trajectories import read_trajectories

# Everything loads on first use, so that `parsimon --help` (which imports parsimon.cta.cli) stays fast.
_EXPORTS = {
    "CTAEnv": "base", "Episode": "base", "Policy": "base", "StepRecord": "base",
    "EvalConfig": "evaluate", "evaluate": "evaluate", "evaluate_config": "evaluate", "write_outputs": "evaluate",
    "Metrics": "metrics", "read_trajectories": "trajectories", "run_episode": "rollout",
    "PRIOR_SOURCES": "registry", "EnvSpec": "registry", "get_env": "registry", "get_prior": "registry",
    "list_envs": "registry", "list_policies": "registry", "list_priors": "registry", "make_env": "registry",
    "make_policy": "registry", "register_env": "registry", "register_policy": "registry",
    "register_prior": "registry",
}
_SUBMODULES = {"pandora", "qa", "filereading", "calibration", "agents", "reproduce"}

__all__ = [
    "PRIOR_SOURCES", "CTAEnv", "EnvSpec", "Episode", "EvalConfig", "Metrics", "Policy", "StepRecord", "evaluate", "get_env",
    "get_prior", "list_envs", "list_policies", "list_priors", "make_env", "make_policy", "read_trajectories",
    "register_env", "register_policy", "register_prior", "run_episode", "evaluate_config", "write_outputs",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"parsimon.cta.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"parsimon.cta.{name}")
    raise AttributeError(f"module 'parsimon.cta' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, *_SUBMODULES])
