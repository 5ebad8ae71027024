"""The gateway's configuration: upstreams, models, cascades, keys, MCP servers and rate limits, read from the
same TOML or YAML file as the policy (see :mod:`parsimon.governance.policy`). Example::

    [gateway]
    port = 8780
    admin_token_env = "PARSIMON_GATEWAY_ADMIN_TOKEN"   # required when host is not loopback

    [upstreams.local]
    base_url = "http://127.0.0.1:8765/v1"              # `parsimon llm serve`

    [models.smollm2]
    upstream = "local"
    name = "smollm2-135m-instruct"                     # the upstream's model name
    price_in_per_1k = 0.0
    price_out_per_1k = 0.0
    aliases = ["default"]
    fallbacks = ["backup"]                             # tried, in order, when this one fails

    [cascades.auto]                                    # a cheap model first, a stronger one if unsure
    models = ["smollm2", "strong"]
    threshold = 0.6                                    # confidence (from logprobs) below this escalates

    [keys.team-a]
    token_env = "TEAM_A_TOKEN"                         # or token = "...", or token_sha256 = "..."
    workflow = "team-a"                                # budgets of this workflow apply
    rate_per_s = 20

    [mcp.files]
    command = ["python", "files_server.py"]            # stdio; or url = "http://127.0.0.1:9000/mcp"
    risk = { delete_file = "high" }

With no file, :func:`default_config` serves the local model (``PARSIMON_LLM_BASE_URL`` or
``http://127.0.0.1:8765/v1``) to anonymous callers on loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.governance.document import Document, load_document
from parsimon.governance.policy import GATEWAY_SECTIONS, RISKS, Policy, policy_from_document

__all__ = [
    "DEFAULT_PORT", "CascadeSpec", "GatewayConfig", "KeySpec", "McpServerSpec", "ModelSpec", "RateLimits",
    "UpstreamSpec", "default_config", "hash_token", "load_config",
]

DEFAULT_PORT = 8780  # the local model server uses 8765


def hash_token(token: str) -> str:
    """Hex sha256 of a key's token (what the configuration may store instead of the token)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class UpstreamSpec:
    """An OpenAI-compatible endpoint."""

    name: str
    base_url: str
    api_key: str | None = None
    timeout_s: float = 120.0  # one attempt, connect to last byte
    retries: int = 1  # further attempts on 429/5xx/connection errors before the next fallback
    backoff_s: float = 0.05  # first retry delay; doubles each retry


@dataclass(frozen=True)
class ModelSpec:
    """A model the gateway serves: where it runs and what it costs."""

    name: str
    upstream: str
    upstream_model: str
    price_in_per_1k: float = 0.0
    price_out_per_1k: float = 0.0
    aliases: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        """Money for one call."""
        return tokens_in / 1000.0 * self.price_in_per_1k + tokens_out / 1000.0 * self.price_out_per_1k


@dataclass(frozen=True)
class CascadeSpec:
    """A virtual model: ask ``models[0]``; escalate to the next when its confidence is below ``threshold``."""

    name: str
    models: tuple[str, ...]
    threshold: float = 0.6
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeySpec:
    """A caller: its token (hashed), the workflow and run its calls are charged to, and its limits."""

    name: str
    token_sha256: str
    workflow: str | None = None  # None: the caller's X-Parsimon-Workflow header, else the key's name
    run: str | None = None  # None: the caller's X-Parsimon-Run header, else "gateway-<key>"
    models: tuple[str, ...] | None = None  # model-name globs this key may use (None: all)
    rate_per_s: float | None = None
    burst: float | None = None


@dataclass(frozen=True)
class McpServerSpec:
    """An MCP server whose tools the gateway routes to (stdio ``command`` or streamable-HTTP ``url``)."""

    name: str
    command: tuple[str, ...] | None = None
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    risk: dict[str, str] = field(default_factory=dict)  # tool name -> low | medium | high
    default_risk: str = "low"
    timeout_s: float = 60.0


@dataclass(frozen=True)
class RateLimits:
    """Token-bucket limits in calls per second (None: unlimited); per key limits are on the keys."""

    global_per_s: float | None = None
    global_burst: float | None = None
    run_per_s: float | None = None
    run_burst: float | None = None


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway needs (see the module docstring for the file form)."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    store: str | None = None  # the governance SQLite file (default $PARSIMON_HOME/governance.sqlite)
    admin_token_sha256: str | None = None  # dashboard and admin API; required off loopback
    default_max_tokens: int = 512  # sent upstream when a request has no max_tokens (bounds the cost)
    approval_wait_s: float = 30.0  # how long a call needing approval is held open before 409 + token
    checkpoint_every: int = 1000  # sign a checkpoint after this many new audit records (0: never)
    checkpoint_interval_s: float = 300.0  # and at least this often while records arrive (0: never)
    signing_key: str | None = None  # Ed25519 key file (default $PARSIMON_AUDIT_KEY or $PARSIMON_HOME/keys)
    reservation_ttl_s: float = 900.0  # a reservation of a call whose gateway died stops counting after this
    upstreams: dict[str, UpstreamSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    cascades: dict[str, CascadeSpec] = field(default_factory=dict)
    keys: dict[str, KeySpec] = field(default_factory=dict)
    mcp: dict[str, McpServerSpec] = field(default_factory=dict)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    policy: Policy = field(default_factory=Policy)
    source: str = "<default>"

    @property
    def anonymous(self) -> bool:
        """Callers without a key are served (only when no key is configured)."""
        return not self.keys

    def with_overrides(self, **changes: Any) -> GatewayConfig:
        """A copy with some fields replaced (e.g. ``host``, ``port`` from the command line)."""
        return replace(self, **changes)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_config() -> GatewayConfig:
    """The local model (``parsimon llm serve``) behind the gateway, anonymous callers, no rules."""
    from parsimon.llm.config import DEFAULT_MODEL, LLMConfig

    llm = LLMConfig.resolve()
    up = UpstreamSpec("local", llm.base_url, llm.api_key)
    model = ModelSpec(DEFAULT_MODEL, "local", llm.model, llm.price_in_per_1k, llm.price_out_per_1k,
                      aliases=("default",) if llm.model == DEFAULT_MODEL else (DEFAULT_MODEL, "default"))
    return GatewayConfig(upstreams={"local": up}, models={model.name: model})


# ------------------------------------------------------------------------------------------ validation

def _table(doc: Document, path: tuple, value: Any, known: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise doc.error(path, f"must be a table, got {type(value).__name__}")
    for k in value:
        if k not in known:
            raise doc.error((*path, k), f"is not a known setting; accepted: {sorted(known)}")
    return value


def _str(doc, path, value, *, required=True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise doc.error(path, f"must be a non-empty string, got {value!r}")
    return value


def _num(doc, path, value, *, lo=0.0, hi=math.inf, integer=False, open_lo=False):
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
        and (value > lo if open_lo else value >= lo) and value <= hi and (not integer or int(value) == value)
    if not ok:
        rel = ">" if open_lo else ">="
        raise doc.error(path, f"must be {'a whole number' if integer else 'a number'} {rel} {lo:g}"
                        + (f" and <= {hi:g}" if hi != math.inf else "") + f", got {value!r}")
    return int(value) if integer else float(value)


def _strs(doc, path, value) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
        raise doc.error(path, f"must be a string or a list of non-empty strings, got {value!r}")
    return tuple(items)


def _secret(doc, path, raw: dict, base: str, *, required: bool) -> str | None:
    """``<base>`` (plain), ``<base>_env`` (an environment variable) or ``<base>_sha256`` → a sha256 hex."""
    given = [k for k in (base, f"{base}_env", f"{base}_sha256") if k in raw]
    if len(given) > 1:
        raise doc.error((*path, given[1]), f"give only one of {base}, {base}_env, {base}_sha256")
    if not given:
        if required:
            raise doc.error(path, f"needs one of `{base}`, `{base}_env` or `{base}_sha256`")
        return None
    k = given[0]
    v = _str(doc, (*path, k), raw[k])
    if k.endswith("_sha256"):
        if len(v) != 64 or any(c not in "0123456789abcdef" for c in v.lower()):
            raise doc.error((*path, k), "must be 64 hex digits")
        return v.lower()
    if k.endswith("_env"):
        value = os.environ.get(v)
        if not value:
            raise doc.error((*path, k), f"names the environment variable {v}, which is not set")
        return hash_token(value)
    return hash_token(v)


def _upstream(doc, name, raw) -> UpstreamSpec:
    path = ("upstreams", name)
    raw = _table(doc, path, raw, ("base_url", "api_key", "api_key_env", "timeout_s", "retries", "backoff_s"))
    url = _str(doc, (*path, "base_url"), raw.get("base_url"))
    if not url.startswith(("http://", "https://")):
        raise doc.error((*path, "base_url"), f"must start with http:// or https://, got {url!r}")
    key = raw.get("api_key")
    if "api_key_env" in raw:
        env = _str(doc, (*path, "api_key_env"), raw["api_key_env"])
        key = os.environ.get(env) or None
    return UpstreamSpec(name, url.rstrip("/"), key,
                        _num(doc, (*path, "timeout_s"), raw.get("timeout_s", 120.0), open_lo=True),
                        _num(doc, (*path, "retries"), raw.get("retries", 1), hi=10, integer=True),
                        _num(doc, (*path, "backoff_s"), raw.get("backoff_s", 0.05), hi=60))


def _model(doc, name, raw, upstreams) -> ModelSpec:
    path = ("models", name)
    raw = _table(doc, path, raw, ("upstream", "name", "price_in_per_1k", "price_out_per_1k", "aliases", "fallbacks"))
    up = _str(doc, (*path, "upstream"), raw.get("upstream"))
    if up not in upstreams:
        raise doc.error((*path, "upstream"), f"must name an upstream among {sorted(upstreams)}, got {up!r}")
    return ModelSpec(name, up, _str(doc, (*path, "name"), raw.get("name", name)),
                     _num(doc, (*path, "price_in_per_1k"), raw.get("price_in_per_1k", 0.0)),
                     _num(doc, (*path, "price_out_per_1k"), raw.get("price_out_per_1k", 0.0)),
                     _strs(doc, (*path, "aliases"), raw.get("aliases", [])),
                     _strs(doc, (*path, "fallbacks"), raw.get("fallbacks", [])))


def _key(doc, name, raw) -> KeySpec:
    path = ("keys", name)
    raw = _table(doc, path, raw, ("token", "token_env", "token_sha256", "workflow", "run", "models",
                                  "rate_per_s", "burst"))
    rate = raw.get("rate_per_s")
    return KeySpec(name, _secret(doc, path, raw, "token", required=True),  # type: ignore[arg-type]
                   _str(doc, (*path, "workflow"), raw.get("workflow"), required=False),
                   _str(doc, (*path, "run"), raw.get("run"), required=False),
                   _strs(doc, (*path, "models"), raw["models"]) if "models" in raw else None,
                   None if rate is None else _num(doc, (*path, "rate_per_s"), rate, open_lo=True),
                   None if "burst" not in raw else _num(doc, (*path, "burst"), raw["burst"], lo=1))


def _mcp(doc, name, raw) -> McpServerSpec:
    path = ("mcp", name)
    raw = _table(doc, path, raw, ("command", "url", "env", "cwd", "risk", "default_risk", "timeout_s"))
    if ("command" in raw) == ("url" in raw):
        raise doc.error(path, "needs exactly one of `command` (stdio) and `url` (streamable HTTP)")
    command = _strs(doc, (*path, "command"), raw["command"]) if "command" in raw else None
    url = _str(doc, (*path, "url"), raw.get("url"), required=False)
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise doc.error((*path, "env"), "must be a table of strings")
    risk = raw.get("risk", {})
    if not isinstance(risk, dict):
        raise doc.error((*path, "risk"), "must be a table of tool name = low | medium | high")
    for tool, level in risk.items():
        if level not in RISKS:
            raise doc.error((*path, "risk", tool), f"must be one of {list(RISKS)}, got {level!r}")
    default_risk = raw.get("default_risk", "low")
    if default_risk not in RISKS:
        raise doc.error((*path, "default_risk"), f"must be one of {list(RISKS)}, got {default_risk!r}")
    return McpServerSpec(name, command, url, dict(env), _str(doc, (*path, "cwd"), raw.get("cwd"), required=False),
                         dict(risk), default_risk, _num(doc, (*path, "timeout_s"), raw.get("timeout_s", 60.0),
                                                        open_lo=True))


def _sub(doc, section) -> dict:
    value = doc.data.get(section, {})
    if not isinstance(value, dict):
        raise doc.error((section,), "must be a table")
    return value


def config_from_document(doc: Document) -> GatewayConfig:
    """Validate a parsed configuration document (gateway sections and policy sections)."""
    policy = policy_from_document(doc, extra_sections=GATEWAY_SECTIONS)
    g = _table(doc, ("gateway",), _sub(doc, "gateway"), (
        "host", "port", "store", "admin_token", "admin_token_env", "admin_token_sha256", "default_max_tokens",
        "approval_wait_s", "checkpoint_every", "checkpoint_interval_s", "signing_key", "reservation_ttl_s"))
    host = _str(doc, ("gateway", "host"), g.get("host", "127.0.0.1"))
    admin = _secret(doc, ("gateway",), g, "admin_token", required=False)
    if not _loopback(host) and admin is None:
        raise doc.error(("gateway", "host"), f"is {host!r}, not loopback: set `admin_token_env` so the dashboard "
                        "and admin API are not open to the network")
    upstreams = {n: _upstream(doc, n, r) for n, r in _sub(doc, "upstreams").items()}
    models = {n: _model(doc, n, r, upstreams) for n, r in _sub(doc, "models").items()}
    if not models:
        base = default_config()
        upstreams = {**base.upstreams, **upstreams}
        models = dict(base.models)
    for m in models.values():
        for f in m.fallbacks:
            if f not in models:
                raise doc.error(("models", m.name, "fallbacks"), f"names an unknown model {f!r}; models: {sorted(models)}")
    cascades = {}
    for n, r in _sub(doc, "cascades").items():
        path = ("cascades", n)
        r = _table(doc, path, r, ("models", "threshold", "aliases"))
        ms = _strs(doc, (*path, "models"), r.get("models", []))
        if len(ms) < 2 or any(m not in models for m in ms):
            raise doc.error((*path, "models"), f"must list at least two models among {sorted(models)}, got {list(ms)}")
        cascades[n] = CascadeSpec(n, ms, _num(doc, (*path, "threshold"), r.get("threshold", 0.6), hi=1.0),
                                  _strs(doc, (*path, "aliases"), r.get("aliases", [])))
    seen: dict[str, str] = {}
    for owner, alias_names in [(m.name, (m.name, *m.aliases)) for m in models.values()] + \
            [(c.name, (c.name, *c.aliases)) for c in cascades.values()]:
        for a in alias_names:
            if a in seen and seen[a] != owner:
                section = "cascades" if owner in cascades else "models"
                raise doc.error((section, owner), f"uses the name {a!r}, which {seen[a]!r} already uses")
            seen[a] = owner
    rl = _table(doc, ("rate_limits",), _sub(doc, "rate_limits"), ("global_per_s", "global_burst", "run_per_s",
                                                                   "run_burst"))
    limits = RateLimits(**{k: _num(doc, ("rate_limits", k), v, open_lo=True) for k, v in rl.items()})

    def num(k, default, **kw):
        return _num(doc, ("gateway", k), g.get(k, default), **kw)
    return GatewayConfig(
        host=host, port=_num(doc, ("gateway", "port"), g.get("port", DEFAULT_PORT), hi=65535, integer=True),
        store=_str(doc, ("gateway", "store"), g.get("store"), required=False), admin_token_sha256=admin,
        default_max_tokens=num("default_max_tokens", 512, lo=1, integer=True),
        approval_wait_s=num("approval_wait_s", 30.0),
        checkpoint_every=num("checkpoint_every", 1000, integer=True),
        checkpoint_interval_s=num("checkpoint_interval_s", 300.0),
        signing_key=_str(doc, ("gateway", "signing_key"), g.get("signing_key"), required=False),
        reservation_ttl_s=num("reservation_ttl_s", 900.0, open_lo=True),
        upstreams=upstreams, models=models, cascades=cascades,
        keys={n: _key(doc, n, r) for n, r in _sub(doc, "keys").items()},
        mcp={n: _mcp(doc, n, r) for n, r in _sub(doc, "mcp").items()},
        rate_limits=limits, policy=policy, source=doc.source,
    )


def load_config(path: str | os.PathLike | None) -> GatewayConfig:
    """Load and validate a gateway file (TOML or YAML); None gives :func:`default_config`.

    Raises:
        DocumentError: The file does not parse or a value is invalid; the message names the line.
    """
    if path is None:
        return default_config()
    if not Path(path).is_file():
        raise ConfigError(f"`--config` {path}: no such file")
    return config_from_document(load_document(path))
