"""Registries of environments, policies and prior sources, by name (shared with the command line).

Built-in environments register themselves when their module is first imported: ``pandora``
(:mod:`parsimon.cta.pandora`), ``qa`` (:mod:`parsimon.cta.qa`) and ``filereading``
(:mod:`parsimon.cta.filereading`). Lookups import these modules lazily, so ``import parsimon.cta`` stays light.

A plug-in environment calls :func:`register_env` with an :class:`EnvSpec`, then :func:`register_policy`
and :func:`register_prior` for its policies and prior sources (see ``docs/cta-core.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parsimon.cta.base import CTAEnv, Policy

__all__ = [
    "BUILTIN_ENVS",
    "PRIOR_SOURCES",
    "EnvSpec",
    "PolicyEntry",
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
]

# Names of the built-in environments and the module that registers each.
BUILTIN_ENVS = {"pandora": "parsimon.cta.pandora", "qa": "parsimon.cta.qa", "filereading": "parsimon.cta.filereading"}
# The prior sources the paper compares (Table 5); an environment registers the ones it supports.
PRIOR_SOURCES = ("true", "estimated", "released", "noisy", "uniform", "adversarial")


@dataclass
class EnvSpec:
    """What :func:`parsimon.cta.evaluate` and the command line need to know about one environment.

    Attributes:
        name: the environment's name (``--env``).
        make: ``make(tasks=None, **kwargs) -> CTAEnv``.
        generate: ``generate(n, seed) -> list[task]``: fresh tasks.
        load: ``load(path) -> list[task]``: tasks from a file (our JSONL or the paper's release).
        public_view: ``public_view(task) -> object``: what a policy may see (no hidden answer).
        oracle_actions: ``oracle_actions(task) -> list[str] | None``: the optimal policy's realised action
            list for the task (for the match rate), or None where no optimal policy is defined.
        match_key: ``match_key(actions) -> list``: what is compared for the match rate (default: the
            actions themselves; QA compares only the retrieve decision).
        group: ``group(task) -> key``: the per-group breakdown key (ρ for FILEREADING), or None.
        default_prior: the prior source used when none is given.
        describe: a one-line description for ``parsimon cta list``.
        save: ``save(tasks, path)``: write tasks in the environment's own format (optional).
    """

    name: str
    make: Callable[..., CTAEnv]
    generate: Callable[[int, int], list]
    load: Callable[[str | Path], list]
    public_view: Callable[[Any], Any] = lambda task: task
    oracle_actions: Callable[[Any], list[str] | None] = lambda task: None
    match_key: Callable[[list[str]], list] = lambda actions: list(actions)
    group: Callable[[Any], Any] = lambda task: None
    default_prior: str = "estimated"
    describe: str = ""
    save: Callable[[list, str | Path], Any] | None = None
    policies: dict[str, PolicyEntry] = field(default_factory=dict)
    priors: dict[str, Callable[[Any, np.random.Generator], Any]] = field(default_factory=dict)


@dataclass
class PolicyEntry:
    """A registered policy: ``factory(**kwargs) -> Policy``; ``uses_prior`` False means it ignores priors."""

    name: str
    factory: Callable[..., Policy]
    description: str = ""
    uses_prior: bool = True
    needs_llm: bool = False


_ENVS: dict[str, EnvSpec] = {}


def register_env(spec: EnvSpec) -> EnvSpec:
    """Register (or replace) an environment. Returns the spec (its ``policies``/``priors`` are kept if
    the name was registered before, so policies registered early survive a re-registration)."""
    if not isinstance(spec, EnvSpec):
        raise TypeError(f"`spec` must be an EnvSpec, got {type(spec).__name__}")
    if not spec.name or not isinstance(spec.name, str):
        raise ValueError("`spec.name` must be a non-empty string")
    old = _ENVS.get(spec.name)
    if old is not None:
        for k, v in old.policies.items():
            spec.policies.setdefault(k, v)
        for k, v in old.priors.items():
            spec.priors.setdefault(k, v)
    _ENVS[spec.name] = spec
    return spec


def _load_builtin(name: str) -> None:
    mod = BUILTIN_ENVS.get(name)
    if mod is not None and name not in _ENVS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def list_envs() -> list[str]:
    """Names of the environments available (built-ins that import, plus registered plug-ins)."""
    for name in BUILTIN_ENVS:
        _load_builtin(name)
    return sorted(_ENVS)


def get_env(name: str) -> EnvSpec:
    """The :class:`EnvSpec` registered under ``name``."""
    if not isinstance(name, str):
        raise TypeError(f"`env` must be a name, got {type(name).__name__}")
    _load_builtin(name)
    if name not in _ENVS:
        raise ValueError(f"unknown environment {name!r}; choose from {list_envs()}")
    return _ENVS[name]


def make_env(name: str, tasks: list | None = None, **kwargs: Any) -> CTAEnv:
    """Build the environment ``name`` (optionally over ``tasks``)."""
    return get_env(name).make(tasks=tasks, **kwargs)


def register_policy(env: str, name: str, factory: Callable[..., Policy], *, description: str = "",
                    uses_prior: bool = True, needs_llm: bool = False) -> None:
    """Register a policy for environment ``env`` under ``name`` (``factory(**kwargs) -> Policy``)."""
    spec = _ENVS.get(env)
    if spec is None:
        raise ValueError(f"register the environment {env!r} (register_env) before its policies")
    if not callable(factory):
        raise TypeError("`factory` must be callable")
    spec.policies[name] = PolicyEntry(name, factory, description, uses_prior, needs_llm)


def register_llm_policies(env: str, factory: Callable[[bool, bool], Callable[..., Policy]], *,
                          prompted: str, cta: str) -> None:
    """Register the four LLM agent variants of ``env``: llm-prompted, llm-cta and their ``-thinking`` forms.

    ``factory(with_prior, thinking)`` returns the policy factory; ``prompted`` / ``cta`` describe the prompt
    without and with the prior (shown by ``parsimon cta list``).
    """
    for name, with_prior, thinking in (("llm-prompted", False, False), ("llm-cta", True, False),
                                       ("llm-prompted-thinking", False, True), ("llm-cta-thinking", True, True)):
        register_policy(env, name, factory(with_prior, thinking), uses_prior=with_prior, needs_llm=True,
                        description=f"LLM agent, {cta if with_prior else prompted}, "
                                    f"{'thinking' if thinking else 'non-thinking'}")


def list_policies(env: str) -> list[str]:
    return sorted(get_env(env).policies)


def make_policy(env: str, name: str, **kwargs: Any) -> Policy:
    """Build the policy ``name`` of environment ``env``; ``kwargs`` go to its factory."""
    spec = get_env(env)
    entry = spec.policies.get(name)
    if entry is None:
        raise ValueError(f"unknown policy {name!r} for env {env!r}; choose from {sorted(spec.policies)}")
    policy = entry.factory(**kwargs)
    policy.name = name
    policy.uses_prior = entry.uses_prior
    return policy


def register_prior(env: str, name: str, fn: Callable[[Any, np.random.Generator], Any]) -> None:
    """Register a prior source: ``fn(task, rng) -> prior`` (the environment defines the prior's type)."""
    spec = _ENVS.get(env)
    if spec is None:
        raise ValueError(f"register the environment {env!r} (register_env) before its prior sources")
    if not callable(fn):
        raise TypeError("`fn` must be callable")
    spec.priors[name] = fn


def list_priors(env: str) -> list[str]:
    return sorted(get_env(env).priors)


def get_prior(env: str, source: str, task: Any, rng: np.random.Generator | int | None = None) -> Any:
    """The prior of ``task`` from prior source ``source`` of environment ``env``."""
    spec = get_env(env)
    fn = spec.priors.get(source)
    if fn is None:
        raise ValueError(f"unknown prior source {source!r} for env {env!r}; choose from {sorted(spec.priors)}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return fn(task, rng)
