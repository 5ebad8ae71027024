"""FILEREADING (paper §3.3, spec A3.3): write pandas code for a CSV whose format (delimiter, quotechar,
skiprows) is unknown, choosing between cheap reliable unit tests and running code, under the reward
``correct · d_unit^U · d_code^C``.

* :mod:`.generator` — the 2,000-task generator (log-linear filename prior, Faker names, CSVs where only the
  true format parses), splits 1,400 / 300 / 300, ρ ∈ {0.5, 1, 2, 4};
* :mod:`.prior` — the true prior, the learned :class:`PriorEstimator`, the Table 5 prior variants;
* :mod:`.sandbox` — code execution with time / memory limits, no network, scratch directory;
* :mod:`.env` — :class:`FileReadingEnv` (Gymnasium interface, text actions);
* :mod:`.planner` — the Bayes-optimal DP over the 12 format configurations;
* :mod:`.policies` — ``cta-planner``, ``oracle``, ``uniform-prior``, ``test-then-code``, ``code-first``;
* :mod:`.loader` — our JSONL format or the paper's released task files;
* :mod:`.report` — ``filereading_part(ctx)`` for the report.

Importing this package registers the environment ``filereading``, its policies and its prior sources
with :mod:`parsimon.cta.registry`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parsimon.cta.filereading.env import FileReadingEnv, check_answer, parse_action
from parsimon.cta.filereading.generator import (
    RHOS,
    Dataset,
    FileTask,
    generate_tasks,
    get_dataset,
    save_tasks,
    solution_code,
)
from parsimon.cta.filereading.loader import load_tasks
from parsimon.cta.filereading.planner import Action, FormatPlanner, brute_force_value, policy_value
from parsimon.cta.filereading.policies import (
    CodeFirstPolicy,
    OraclePolicy,
    PlannerPolicy,
    TestThenCodePolicy,
    UniformPlannerPolicy,
)
from parsimon.cta.filereading.prior import (
    ATTRS,
    CONFIGS,
    OPTIONS,
    PriorEstimator,
    adversarial_prior,
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

__all__ = [
    "ATTRS",
    "CONFIGS",
    "OPTIONS",
    "RHOS",
    "Action",
    "Dataset",
    "FileReadingEnv",
    "FileTask",
    "FormatPlanner",
    "PriorEstimator",
    "brute_force_value",
    "check_answer",
    "estimated_prior",
    "filereading_part",
    "generate_tasks",
    "get_dataset",
    "load_tasks",
    "oracle_actions",
    "parse_action",
    "policy_value",
    "save_tasks",
    "solution_code",
    "true_prior",
]

_EST_CACHE: dict[tuple[int, str], dict] = {}
_ESTIMATORS: dict[int, PriorEstimator] = {}


def estimated_prior(task: FileTask, seed: int | None = None) -> dict:
    """The learned prior for ``task``'s filename (estimator trained on the training split of the dataset
    the task came from; seed 0's dataset for loaded tasks)."""
    s = task.dataset_seed if seed is None and task.dataset_seed is not None else (seed or 0)
    key = (s, task.filename)
    if key not in _EST_CACHE:
        if s not in _ESTIMATORS:  # the estimator depends only on the seed's filenames, not on files
            _ESTIMATORS[s] = get_dataset(s).estimator()
        _EST_CACHE[key] = _ESTIMATORS[s].predict(task.filename)
    return _EST_CACHE[key]


def _prior_released(task: FileTask, rng: np.random.Generator) -> dict:
    if task.released_prior is None:
        raise ValueError(f"prior source 'released' needs tasks loaded from the paper's processed file "
                         f"(calib_pred_prior); task {task.task_id} has none — use 'estimated'")
    return task.released_prior


_ORACLE_CACHE: dict[tuple, list[str]] = {}


def oracle_actions(task: FileTask) -> list[str]:
    """The canonical actions of the optimal policy under the true prior on this task (match rate)."""
    key = (tuple(sorted(task.features.items())), task.d_unit, task.d_code, tuple(task.fmt))
    if key in _ORACLE_CACHE:
        return list(_ORACLE_CACHE[key])
    pl = FormatPlanner(true_prior(task.features), task.d_unit, task.d_code)
    acts, _ = pl.rollout(tuple(task.fmt))
    out = []
    for a in acts:
        if a.kind == "code":
            out.append("CODE")
        elif a.kind == "test":
            out.append("UNIT_TESTS: " + ",".join(ATTRS[i] for i in a.attrs))
        else:
            out.append("ANSWER")
    _ORACLE_CACHE[key] = out
    return list(out)


def _make_env(tasks: list | None = None, **kw: Any) -> FileReadingEnv:
    return FileReadingEnv(tasks, **kw)


register_env(EnvSpec(
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


def _llm_factory(with_prior: bool, thinking: bool):
    def make(**kw: Any) -> Any:
        from parsimon.cta.filereading.policies import make_llm_agent

        return make_llm_agent(with_prior=with_prior, thinking=thinking, **kw)

    return make


register_llm_policies("filereading", _llm_factory, prompted="PROMPTED",
                      cta="CTA-PROMPTED (format likelihoods in the prompt)")


def filereading_part(ctx: Any) -> Any:
    """The FILEREADING part of the CTA report (see :mod:`parsimon.cta.filereading.report`)."""
    from parsimon.cta.filereading.report import filereading_part as part

    return part(ctx)
