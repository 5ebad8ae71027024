"""The ``filereading`` environment's registration: its :class:`~parsimon.cta.registry.EnvSpec`, prior sources
and policies.

:mod:`parsimon.cta.registry` imports this module on the first lookup of ``filereading`` (importing the
package alone registers nothing).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parsimon.cta.filereading.env import FileReadingEnv
from parsimon.cta.filereading.generator import FileTask, generate_tasks
from parsimon.cta.filereading.loader import load_tasks
from parsimon.cta.filereading.planner import oracle_actions
from parsimon.cta.filereading.policies import (
    CodeFirstPolicy,
    OraclePolicy,
    PlannerPolicy,
    TestThenCodePolicy,
    UniformPlannerPolicy,
)
from parsimon.cta.filereading.prior import (
    adversarial_prior,
    estimated_prior,
    noisy_prior,
    true_prior,
    uniform_prior,
)
from parsimon.cta.registry import (
    EnvSpec,
    register_env,
    register_llm_policies,
    register_policy,
    register_prior,
)
from parsimon.errors import ConfigError

__all__ = ["SPEC"]


def _prior_released(task: FileTask, rng: np.random.Generator) -> dict:
    if task.released_prior is None:
        raise ConfigError(f"prior source 'released' needs tasks loaded from the paper's processed file "
                          f"(calib_pred_prior); task {task.task_id} has none — use 'estimated'")
    return task.released_prior


def _make_env(tasks: list | None = None, **kw: Any) -> FileReadingEnv:
    return FileReadingEnv(tasks, **kw)


def _llm_factory(with_prior: bool, thinking: bool):
    def make(**kw: Any) -> Any:
        from parsimon.cta.filereading.policies import make_llm_agent

        return make_llm_agent(with_prior=with_prior, thinking=thinking, **kw)

    return make


SPEC = register_env(EnvSpec(
    name="filereading", make=_make_env, generate=lambda n, seed: generate_tasks(n, seed), load=load_tasks,
    public_view=lambda t: t.public(), oracle_actions=oracle_actions, group=lambda t: t.rho,
    default_prior="estimated",
    describe="FILEREADING: UNIT_TESTS / CODE (sandboxed pandas) / ANSWER, reward correct·d_u^U·d_c^C (paper §3.3)",
))
for _name, _fn in (
    ("true", lambda t, rng: true_prior(t.features)),
    ("estimated", lambda t, rng: estimated_prior(t)),
    ("released", _prior_released),
    ("noisy", lambda t, rng: noisy_prior(estimated_prior(t), rng)),
    ("uniform", lambda t, rng: uniform_prior()),
    ("adversarial", lambda t, rng: adversarial_prior(estimated_prior(t))),
):
    register_prior("filereading", _name, _fn)

register_policy("filereading", "cta-planner", PlannerPolicy,
                description="Bayes-optimal DP over the 12 formats with the chosen prior source")
register_policy("filereading", "oracle", OraclePolicy, uses_prior=False,
                description="the DP planner with the true (data-generating) prior")
register_policy("filereading", "uniform-prior", UniformPlannerPolicy, uses_prior=False,
                description="the DP planner with a uniform prior (cost-aware, uncalibrated)")
register_policy("filereading", "test-then-code", TestThenCodePolicy, uses_prior=False,
                description="UNIT_TESTS of all three attributes, then CODE, then ANSWER (static)")
register_policy("filereading", "code-first", CodeFirstPolicy,
                description="CODE with the argmax-prior format; on failure test all three, then CODE")
register_llm_policies("filereading", _llm_factory, prompted="PROMPTED",
                      cta="CTA-PROMPTED (format likelihoods in the prompt)")
