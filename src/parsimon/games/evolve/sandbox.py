"""Run an untrusted candidate program in a child process with limits.

The parent (:func:`run_sandboxed`) writes a JSON request into a fresh scratch directory and starts
``python -m parsimon.games.evolve.sandbox REQUEST`` in its own session (process group) with proxy variables
removed from the environment and the scratch directory as working directory and ``HOME``. The child:

* sets ``RLIMIT_AS`` to its address space after the imports plus ``memory_mb`` (so the candidate gets
  about ``memory_mb`` MiB more), ``RLIMIT_CPU`` to the time limit, ``RLIMIT_FSIZE`` to 64 MiB, and
  ``RLIMIT_CORE`` to 0;
* replaces ``socket.socket``, ``socket.create_connection``, ``socket.getaddrinfo`` (and the ``_socket``
  originals) with functions raising :class:`NetworkDisabled`, so a candidate cannot open a connection;
* evaluates the task game by game, rewriting ``result.json`` after each game (partial results survive a
  kill), and stops early when a cascade threshold is missed.

The parent kills the whole process group when the wall-clock limit passes. Failures are scored, never
raised: :class:`SandboxResult` ``status`` is ``ok``, ``error``, ``timeout``, ``memory``, ``network``,
``killed`` or ``rejected`` (cascade threshold missed). This is containment for buggy or greedy programs
(infinite loops, memory hogs, accidental network use), not a security boundary against hostile code
(``ctypes`` could still reach the system); run real LLM output in a container as well.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SandboxResult", "Limits", "run_sandboxed", "NetworkDisabled"]

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy", "socks_proxy")


class NetworkDisabled(PermissionError):
    """Raised inside the sandbox when a candidate tries to use the network."""


@dataclass
class Limits:
    time_s: float = 120.0
    memory_mb: int = 1024

    def __post_init__(self):
        if not (self.time_s > 0):
            raise ValueError(f"Limits.time_s must be > 0 seconds, got {self.time_s}")
        if not (isinstance(self.memory_mb, int) and self.memory_mb > 0):
            raise ValueError(f"Limits.memory_mb must be a positive integer, got {self.memory_mb!r}")


@dataclass
class SandboxResult:
    status: str
    exploitability: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict:
        return asdict(self)


def run_sandboxed(source: str, games: list[str], iterations: int, *, limits: Limits | None = None,
                  thresholds: dict[str, float] | None = None, task: str = "cfr",
                  scratch_root: str | os.PathLike | None = None) -> SandboxResult:
    """Evaluate ``source`` on ``games`` (in order) in a limited child process.

    ``task='cfr'``: the source defines the three CFR classes (see :mod:`parsimon.games.candidate`); each
    game runs ``iterations`` iterations and records the final exploitability of the average policy.
    ``thresholds``: game -> largest exploitability that lets the cascade continue to the next game.
    """
    limits = limits or Limits()
    if task not in ("cfr",):
        raise ValueError(f"task must be 'cfr', got {task!r}")
    if not games:
        raise ValueError("games must name at least one game")
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    scratch = Path(tempfile.mkdtemp(prefix="parsimon-sandbox-", dir=scratch_root))
    req = {"source": source, "games": list(games), "iterations": iterations, "task": task,
           "thresholds": dict(thresholds or {}), "memory_mb": limits.memory_mb, "time_s": limits.time_s}
    (scratch / "request.json").write_text(json.dumps(req))
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARS}
    env.update({"HOME": str(scratch), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    src_root = str(Path(__file__).resolve().parents[3])  # .../src, so the child imports this parsimon
    env["PYTHONPATH"] = src_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "parsimon.games.evolve.sandbox", str(scratch / "request.json")],
                            cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    timed_out = False
    try:
        _, err = proc.communicate(timeout=limits.time_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        _, err = proc.communicate()
    wall = time.perf_counter() - t0
    res = _read_result(scratch / "result.json")
    res.wall_s = wall
    if timed_out:
        res.status = "timeout"
        res.error = f"wall-clock limit of {limits.time_s:g} s exceeded"
    elif res.status == "running":  # the child died without writing a final status
        rc = proc.returncode
        if rc is not None and rc < 0:
            sig = -rc
            res.status = "timeout" if sig == signal.SIGXCPU else ("memory" if sig == signal.SIGKILL else "killed")
            res.error = f"child killed by signal {signal.Signals(sig).name}"
        else:
            res.status = "error"
            res.error = f"child exited with code {rc}: {(err or b'').decode(errors='replace')[-800:]}"
    _cleanup(scratch)
    return res


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _cleanup(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _read_result(path: Path) -> SandboxResult:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return SandboxResult(status="running")
    return SandboxResult(status=d.get("status", "running"), exploitability=d.get("exploitability", {}),
                         seconds=d.get("seconds", {}), error=d.get("error", ""))


# ----------------------------------------------------------------------------------------- child side
def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _vm_bytes() -> int:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _block_network() -> None:
    import _socket
    import socket

    def blocked(*args: Any, **kwargs: Any):
        raise NetworkDisabled("network access is disabled in the parsimon sandbox")

    class BlockedSocket(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any):  # noqa: D401 - refuse every socket
            blocked()

    socket.socket = BlockedSocket  # type: ignore[misc]
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex", "socketpair",
                 "fromfd", "create_server"):
        if hasattr(socket, name):
            setattr(socket, name, blocked)
    for name in ("socket", "getaddrinfo", "gethostbyname", "socketpair"):
        if hasattr(_socket, name):
            setattr(_socket, name, blocked)


def _child(request_path: str) -> int:
    req_path = Path(request_path)
    out = req_path.parent / "result.json"
    req = json.loads(req_path.read_text())
    state: dict[str, Any] = {"status": "running", "exploitability": {}, "seconds": {}, "error": ""}
    _write(out, state)
    import resource

    import numpy  # noqa: F401  - imported before the memory limit is set

    from parsimon.games.candidate import run_candidate
    from parsimon.games.engine import compile_game

    games = req["games"]
    compiled = {g: compile_game(g) for g in games}  # the harness's own work, before the limits
    cpu = int(math.ceil(req["time_s"])) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    limit = _vm_bytes() + int(req["memory_mb"]) * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    _block_network()
    try:
        for g in games:
            t0 = time.perf_counter()
            res = run_candidate(req["source"], compiled[g], int(req["iterations"]))
            value = float(res.exploitability[-1][1])
            state["seconds"][g] = time.perf_counter() - t0
            if not math.isfinite(value):
                raise ValueError(f"exploitability on {g} is not finite ({value})")
            state["exploitability"][g] = value
            _write(out, state)
            thr = req["thresholds"].get(g)
            if thr is not None and value > thr:
                state["status"] = "rejected"
                state["error"] = f"cascade: exploitability {value:.4g} on {g} above threshold {thr:.4g}"
                _write(out, state)
                return 0
        state["status"] = "ok"
    except MemoryError:
        state["status"] = "memory"
        state["error"] = "MemoryError: memory limit exceeded"
    except NetworkDisabled as exc:
        state["status"] = "network"
        state["error"] = f"NetworkDisabled: {exc}"
    except RecursionError as exc:
        state["status"] = "error"
        state["error"] = f"RecursionError: {exc}"
    except BaseException as exc:  # noqa: BLE001 - every failure of the candidate is scored
        tb = traceback.format_exc(limit=4)
        chain = exc
        while chain is not None and not isinstance(chain, (MemoryError, NetworkDisabled)):
            chain = chain.__cause__ or chain.__context__
        if isinstance(chain, MemoryError):
            state["status"] = "memory"
        elif isinstance(chain, NetworkDisabled):
            state["status"] = "network"
        else:
            state["status"] = "error"
        state["error"] = f"{type(exc).__name__}: {exc}\n{tb[-1500:]}"
    try:
        _write(out, state)
    except MemoryError:  # pragma: no cover - extremely low memory
        os._exit(3)
    return 0


if __name__ == "__main__":  # pragma: no cover - runs in the child
    sys.exit(_child(sys.argv[1]))
