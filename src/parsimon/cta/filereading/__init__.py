"""FILEREADING (paper §3.3, spec A3.3): write pandas code for a CSV whose format (delimiter, quotechar,
skiprows) is unknown, choosing between cheap reliable unit tests and running code, under the reward
``correct · d_unit^U · d_code^C``.

* :mod:`.generator` — the 2,000-task generator (log-linear filename prior, Faker names, CSVs where only the
  true format parses), splits 1,400 / 300 / 300, ρ ∈ {0.5, 1, 2, 4};
* :mod:`.prior` — the true prior, the learned :class:`PriorEstimator` (:func:`estimated_prior`), the Table 5
  prior variants;
* :mod:`.sandbox` — code execution with time / memory limits, no network, scratch directory;
* :mod:`.env` — :class:`FileReadingEnv` (Gymnasium interface, text actions);
* :mod:`.planner` — the Bayes-optimal DP over the 12 format configurations, :func:`oracle_actions`;
* :mod:`.policies` — ``cta-planner``, ``oracle``, ``uniform-prior``, ``test-then-code``, ``code-first``;
* :mod:`.loader` — our JSONL format or the paper's released task files;
* :mod:`.spec` — the environment's registration (imported by :mod:`parsimon.cta.registry` on first lookup);
* :mod:`.report` — ``filereading_part(ctx)`` for the report.
"""

from __future__ import annotations

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
from parsimon.cta.filereading.planner import (
    Action,
    FormatPlanner,
    brute_force_value,
    oracle_actions,
    policy_value,
)
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
    estimated_prior,
    noisy_prior,
    true_prior,
    uniform_prior,
)
from parsimon.cta.filereading.report import filereading_part

__all__ = [
    "ATTRS",
    "CONFIGS",
    "OPTIONS",
    "RHOS",
    "Action",
    "CodeFirstPolicy",
    "Dataset",
    "FileReadingEnv",
    "FileTask",
    "FormatPlanner",
    "OraclePolicy",
    "PlannerPolicy",
    "PriorEstimator",
    "TestThenCodePolicy",
    "UniformPlannerPolicy",
    "adversarial_prior",
    "brute_force_value",
    "check_answer",
    "estimated_prior",
    "filereading_part",
    "generate_tasks",
    "get_dataset",
    "load_tasks",
    "noisy_prior",
    "oracle_actions",
    "parse_action",
    "policy_value",
    "save_tasks",
    "solution_code",
    "true_prior",
    "uniform_prior",
]
