"""The ledger's metrics and the validation of amounts and scopes (shared by the ledger and its reservations)."""

from __future__ import annotations

import math

from parsimon.errors import ConfigError

__all__ = ["MAX_AMOUNT", "METRICS", "REL_TOL", "check_amounts", "check_metric", "check_scope_args"]

METRICS = ("tokens", "money", "actions", "wall_s", "gpu_s")
# The largest amount one charge may record. Far above any real call (a trillion tokens, a trillion in
# money, 30,000 years of seconds), and small enough that sums over millions of events stay exact in
# SQLite's 64-bit integers and finite in its doubles.
MAX_AMOUNT = 10**12
# Limits are compared with this relative slack, so that reaching a hard limit exactly in several
# floating-point steps (0.1 + 0.1 + 0.1 against 0.3) is allowed, as documented.
REL_TOL = 1e-9


def check_amounts(tokens_in: int, tokens_out: int, money: float, actions: int, wall_s: float, gpu_s: float):
    """Validate one event's amounts; return them per metric (``tokens`` = in + out)."""
    values = {"tokens_in": tokens_in, "tokens_out": tokens_out, "money": money, "actions": actions,
              "wall_s": wall_s, "gpu_s": gpu_s}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"`{name}` must be a number, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"`{name}` must be finite, got {value!r}")
        if not 0 <= value <= MAX_AMOUNT:
            raise ConfigError(f"`{name}` must be between 0 and {MAX_AMOUNT:.0e} per charge, got {value!r}")
    for name in ("tokens_in", "tokens_out", "actions"):
        if int(values[name]) != values[name]:
            raise ConfigError(f"`{name}` must be a whole number, got {values[name]!r}")
    return {"tokens": tokens_in + tokens_out, "money": float(money), "actions": actions,
            "wall_s": float(wall_s), "gpu_s": float(gpu_s)}


def check_scope_args(run: str | None, workflow: str | None) -> tuple[str, str]:
    """``("run", run)`` or ``("workflow", workflow)``: exactly one must be given."""
    if (run is None) == (workflow is None):
        raise ValueError(f"give exactly one of `run` and `workflow`, got run={run!r}, workflow={workflow!r}")
    return ("run", run) if run is not None else ("workflow", workflow)  # type: ignore[return-value]


def check_metric(metric: str) -> str:
    """Validate a metric name."""
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {sorted(METRICS)}, got {metric!r}")
    return metric
