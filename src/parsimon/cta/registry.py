"""Registries of environments, policies and prior sources, by name (shared with the command line).

Three :class:`parsimon.registry.Registry` levels: :data:`ENVS` maps an environment name to its
:class:`EnvSpec`; each spec holds ``policies`` (name → :class:`PolicyEntry`) and ``priors`` (name →
``fn(task, rng)``). A wrong name raises :class:`~parsimon.errors.ConfigError` listing the accepted ones.

The built-in environments are registered by their own modules (:data:`BUILTIN_ENVS`: ``pandora`` by
:mod:`parsimon.cta.pandora`, ``qa`` by :mod:`parsimon.cta.qa.env`, ``filereading`` by
:mod:`parsimon.cta.filereading.spec`), imported on the first lookup, so ``import parsimon.cta`` stays light.

A plug-in environment calls :func:`register_env` with an :class:`EnvSpec`, then :func:`register_policy`
and :func:`register_prior` for its policies and prior sources (see ``docs/cta-core.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsimon.errors import ConfigError
from parsimon.registry import Registry

if TYPE_CHECKING:  # the command line imports this module for BUILTIN_ENVS: keep it light
    import numpy as np

    from parsimon.cta.base import CTAEnv, Policy

__all__ = [
    "BUILTIN_ENVS",
    "ENVS",
    "PRIOR_SOURCES",
    "EnvSpec",
    "PolicyEntry",
    "check_prior",
    "get_env",
    "get_prior",
    "list_envs",
    "list_policies",
    "list_priors",
    "make_env",
    "make_policy",
    "policy_entry",
    "register_env",
    "register_llm_policies",
    "register_policy",
    "register_prior",
]

# Names of the built-in environments and the module that registers each (the CLI's `--env` choices).
BUILTIN_ENVS = {"pandora": "parsimon.cta.pandora", "qa": "parsimon.cta.qa.env",
                "filereading": "parsimon.cta.filereading.spec"}
# The prior sources the paper compares (Table 5); an environment registers the ones it supports.
PRIOR_SOURCES = ("true", "estimated", "released", "noisy", "uniform", "adversarial")

PriorFn = Callable[[Any, "np.random.Generator"], Any]


@dataclass
class PolicyEntry:
    """A registered policy: ``factory(**kwargs) -> Policy``; ``uses_prior`` False means it ignores priors."""

    name: str
    factory: Callable[..., Policy]
    description: str = ""
    uses_prior: bool = True
    needs_llm: bool = False


def _as_registry(kind: str, value: Any) -> Registry:
    if isinstance(value, Registry):
        return value
    if isinstance(value, dict):
        return Registry(kind, value)
    raise ConfigError(f"an EnvSpec's {kind} table must be a Registry or a dict of name -> {kind}, "
                      f"got {type(value).__name__}")


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
        policies: name → :class:`PolicyEntry` (a :class:`Registry`; a plain dict is converted).
        priors: name → ``fn(task, rng) -> prior`` (a :class:`Registry`; a plain dict is converted).
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
    policies: Registry[PolicyEntry] = field(default_factory=lambda: Registry("policy"))
    priors: Registry[PriorFn] = field(default_factory=lambda: Registry("prior"))

    def __setattr__(self, key: str, value: Any) -> None:
        kind = {"policies": "policy", "priors": "prior"}.get(key)
        if kind is not None:  # a plug-in may assign a plain dict
            value = _as_registry(kind, value)
        super().__setattr__(key, value)


ENVS: Registry[EnvSpec] = Registry("env")


def register_env(spec: EnvSpec) -> EnvSpec:
    """Register (or replace) an environment. Returns the spec (its ``policies``/``priors`` are kept if
    the name was registered before, so policies registered early survive a re-registration)."""
    if not isinstance(spec, EnvSpec):
        raise TypeError(f"`spec` must be an EnvSpec, got {type(spec).__name__}")
    if not spec.name or not isinstance(spec.name, str):
        raise ConfigError("`spec.name` must be a non-empty string")
    if spec.name in ENVS:
        old = ENVS.get(spec.name)
        for name, entry in old.policies.items():
            if name not in spec.policies:
                spec.policies.register(name, entry)
        for name, fn in old.priors.items():
            if name not in spec.priors:
                spec.priors.register(name, fn)
    ENVS.register(spec.name, spec, describe=spec.describe, replace=True)
    return spec


def _load_builtin(name: str) -> None:
    mod = BUILTIN_ENVS.get(name)
    if mod is not None and name not in ENVS:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # an environment whose optional dependencies are missing
            if exc.name != mod:
                raise


def list_envs() -> list[str]:
    """Names of the environments available (built-ins that import, plus registered plug-ins)."""
    for name in BUILTIN_ENVS:
        _load_builtin(name)
    return ENVS.names()


def get_env(name: str) -> EnvSpec:
    """The :class:`EnvSpec` registered under ``name``; :class:`ConfigError` listing the names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"`env` must be a name, got {type(name).__name__}")
    _load_builtin(name)
    if name not in ENVS:
        list_envs()  # so the error lists every built-in too
    return ENVS.get(name)


def make_env(name: str, tasks: list | None = None, **kwargs: Any) -> CTAEnv:
    """Build the environment ``name`` (optionally over ``tasks``)."""
    return get_env(name).make(tasks=tasks, **kwargs)


def register_policy(env: str, name: str, factory: Callable[..., Policy], *, description: str = "",
                    uses_prior: bool = True, needs_llm: bool = False) -> None:
    """Register (or replace) a policy for environment ``env`` under ``name`` (``factory(**kwargs) -> Policy``)."""
    if not callable(factory):
        raise TypeError("`factory` must be callable")
    get_env(env).policies.register(name, PolicyEntry(name, factory, description, uses_prior, needs_llm),
                                   describe=description, replace=True)


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
    """The policy names of environment ``env``, sorted."""
    return get_env(env).policies.names()


def policy_entry(env: str, name: str) -> PolicyEntry:
    """The :class:`PolicyEntry` of policy ``name`` of ``env`` (``ConfigError`` listing the names otherwise)."""
    return get_env(env).policies.get(name)


def make_policy(env: str, name: str, **kwargs: Any) -> Policy:
    """Build the policy ``name`` of environment ``env``; ``kwargs`` go to its factory."""
    entry = policy_entry(env, name)
    policy = entry.factory(**kwargs)
    policy.name = name
    policy.uses_prior = entry.uses_prior
    return policy


def register_prior(env: str, name: str, fn: PriorFn) -> None:
    """Register (or replace) a prior source: ``fn(task, rng) -> prior`` (the environment defines its type)."""
    if not callable(fn):
        raise TypeError("`fn` must be callable")
    get_env(env).priors.register(name, fn, replace=True)


def list_priors(env: str) -> list[str]:
    """The prior sources of environment ``env``, sorted."""
    return get_env(env).priors.names()


def check_prior(env: str, source: str | None) -> str | None:
    """``source`` if environment ``env`` has it (or None), else the registry's error listing its sources."""
    if source is not None:
        get_env(env).priors.check(source)
    return source


def get_prior(env: str, source: str, task: Any, rng: np.random.Generator | int | None = None) -> Any:
    """The prior of ``task`` from prior source ``source`` of environment ``env``."""
    import numpy as np

    fn = get_env(env).priors.get(source)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return fn(task, rng)
