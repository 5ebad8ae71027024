"""FILEREADING's code execution: the shared :mod:`parsimon.sandbox` with pandas preloaded.

Each CODE action runs once in a fresh isolated worker (bubblewrap namespaces where available, the
guarded fallback otherwise; see :mod:`parsimon.sandbox` for what each stops) with the task's CSV copied
into its scratch folder. A killed or failing execution is a failed CODE action, never an exception in
the environment. This module only adapts the shared sandbox's result to the environment's wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parsimon._closing import Closing
from parsimon.errors import ConfigError
from parsimon.sandbox import Limits, SandboxResult
from parsimon.sandbox import Sandbox as _SharedSandbox

__all__ = ["ExecResult", "Sandbox", "get_sandbox"]

_PRELOAD = ("pandas", "numpy")


@dataclass
class ExecResult:
    """What one execution produced: ``ok`` means the code ran to the end within the limits."""

    ok: bool
    stdout: str
    stderr: str
    returncode: int | None  # 0 ok, 1 the code failed; None when a limit stopped it
    timed_out: bool = False
    killed: str | None = None  # "timeout", "memory", "disk", "killed", or None
    seconds: float = 0.0
    isolation: str = ""

    @classmethod
    def from_result(cls, res: SandboxResult) -> ExecResult:
        """Translate a shared :class:`~parsimon.sandbox.SandboxResult`."""
        stopped = res.status in ("timeout", "memory", "disk", "killed")
        return cls(ok=res.ok, stdout=res.stdout, stderr=res.stderr,
                   returncode=None if stopped else (0 if res.ok else 1), timed_out=res.status == "timeout",
                   killed=res.status if stopped else None, seconds=res.seconds, isolation=res.isolation)

    def output(self, limit: int = 4000) -> str:
        """stdout + stderr, truncated, as shown to the agent."""
        text = self.stdout
        if self.stderr:
            text = text + ("\n" if text else "") + self.stderr
        note = {"timeout": "Execution stopped: time limit exceeded.",
                "memory": "Execution stopped: memory limit exceeded.",
                "disk": "Execution stopped: disk space limit exceeded.",
                "killed": "Execution stopped: the process was killed."}.get(self.killed or "")
        if note:
            text += ("\n" if text else "") + note
        if len(text) > limit:
            text = text[:limit] + f"\n... [{len(text) - limit} more characters]"
        return text


class Sandbox(Closing):
    """Executes agent code with limits: ``run(code, files={name: path}) -> ExecResult``.

    Args:
        timeout: Wall-clock seconds per execution (default 10).
        memory_mb: Address space the code may add after pandas is imported (default 1024 MB).
        fsize_mb: Size of the scratch folder (default 64 MB).
        isolation: ``"auto"``, ``"bubblewrap"`` or ``"guarded"`` (see :mod:`parsimon.sandbox`).
    """

    def __init__(self, *, timeout: float = 10.0, memory_mb: int = 1024, fsize_mb: int = 64,
                 isolation: str = "auto", backend: str | None = None):
        if backend is not None:
            raise ConfigError("`backend` was removed: every execution now runs once in a fresh isolated worker "
                              "of parsimon.sandbox (use `isolation=` to choose bubblewrap or guarded)")
        if not timeout > 0:
            raise ConfigError(f"`timeout` must be > 0 seconds, got {timeout}")
        self.timeout = float(timeout)
        self._box = _SharedSandbox(Limits(wall_s=self.timeout, memory_mb=int(memory_mb), scratch_mb=int(fsize_mb)),
                                   isolation=isolation, preload=_PRELOAD)
        self.isolation = self._box.isolation

    @property
    def n_runs(self) -> int:
        """Executions so far."""
        return self._box.n_runs

    def run(self, code: str, files: dict[str, str | Path] | None = None, *, timeout: float | None = None) -> ExecResult:
        """Run ``code`` once in a fresh scratch folder holding copies of ``files`` ({name: source path})."""
        limits = None
        if timeout is not None:
            limits = Limits(wall_s=float(timeout), memory_mb=self._box.limits.memory_mb,
                            scratch_mb=self._box.limits.scratch_mb)
        return ExecResult.from_result(self._box.run(code, files=files, limits=limits))

    def stats(self) -> dict:
        """Executions and isolation."""
        return {"runs": self.n_runs, "isolation": self.isolation}

    def close(self) -> None:
        """Stop the idle worker."""
        self._box.close()


_SHARED: dict[tuple, Sandbox] = {}


def get_sandbox(**kw: object) -> Sandbox:
    """A process-wide shared :class:`Sandbox` per configuration (its warm worker is reused)."""
    key = tuple(sorted(kw.items()))
    if key not in _SHARED:
        _SHARED[key] = Sandbox(**kw)  # type: ignore[arg-type]
    return _SHARED[key]
