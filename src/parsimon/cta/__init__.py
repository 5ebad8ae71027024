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
from typing import Any

from parsimon.cta.base import CTAEnv, Episode, Policy, StepRecord
from parsimon.cta.evaluate import Metrics, evaluate, run_episode, write_outputs
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

__all__ = [
    "PRIOR_SOURCES",
    "CTAEnv",
    "EnvSpec",
    "Episode",
    "Metrics",
    "Policy",
    "StepRecord",
    "evaluate",
    "get_env",
    "get_prior",
    "list_envs",
    "list_policies",
    "list_priors",
    "make_env",
    "make_policy",
    "register_env",
    "register_policy",
    "register_prior",
    "run_episode",
    "write_outputs",
]

_LAZY = {"pandora", "qa", "filereading", "calibration", "agents"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"parsimon.cta.{name}")
    raise AttributeError(f"module 'parsimon.cta' has no attribute {name!r}")
