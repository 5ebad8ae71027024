"""Run untrusted agent code in a sandboxed child process.

Each execution runs in a fresh child process with:

* a **time limit** (wall clock, enforced by the parent with SIGKILL on the child's process group, plus
  ``RLIMIT_CPU`` and ``alarm`` inside the child);
* a **memory limit** (``RLIMIT_AS`` = the child's address space at start + ``memory_mb``);
* **no network**: a Python audit hook (which code cannot remove) refuses every ``socket.*`` event, so
  creating, connecting or resolving a socket raises ``PermissionError``; it also refuses starting other
  programs or forking (``subprocess``, ``os.system``, ``os.exec*``, ``os.fork`` ...), which would not carry
  the hook. This is an in-process guard against ordinary code, not a kernel boundary (native code loaded
  with ``ctypes`` could bypass it); run untrusted agents in a container without network for that;
* a private **scratch directory** as working directory, holding copies of the task's files, deleted
  afterwards; ``RLIMIT_FSIZE`` caps file writes.

Two back-ends: ``"fork"`` (default on POSIX): a server process started once imports pandas and forks
one child per execution (milliseconds instead of a second of interpreter start-up and ``import pandas``);
``"spawn"``: a fresh interpreter per execution (slower, no shared state at all). A crash of the server is
detected and it is restarted. The outcome of every execution is an :class:`ExecResult`; a killed or
failing child is a failed execution, never an exception in the caller.

This module imports only the standard library at top level: it is also the server's script.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ExecResult", "Sandbox", "get_sandbox"]

_PRELUDE_IMPORTS = ("pandas", "numpy")
_NO_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                                "os.fork", "os.forkpty", "pty.spawn"})


@dataclass
class ExecResult:
    """What one execution produced: ``ok`` means exit status 0 within the limits."""

    ok: bool
    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool = False
    killed: str | None = None  # "timeout", "memory", "signal N", or None
    seconds: float = 0.0

    def output(self, limit: int = 4000) -> str:
        """stdout + stderr, truncated, as shown to the agent."""
        text = self.stdout
        if self.stderr:
            text = (text + ("\n" if text else "") + self.stderr)
        if self.timed_out:
            text += ("\n" if text else "") + "Execution stopped: time limit exceeded."
        elif self.killed == "memory":
            text += ("\n" if text else "") + "Execution stopped: memory limit exceeded."
        if len(text) > limit:
            text = text[:limit] + f"\n... [{len(text) - limit} more characters]"
        return text


# ---------------------------------------------------------------------------------------------------
# Child side (runs after fork, or in a spawned interpreter)


def _vm_size_bytes() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child_main(code: str, workdir: str, timeout: float, memory_mb: int, fsize_mb: int) -> None:
    """Set the limits, block the network, run ``code``; never returns (``os._exit``)."""
    import resource
    import traceback  # noqa: F401 - loaded before the memory limit, for _print_agent_traceback

    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    os.chdir(workdir)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    out = os.open(os.path.join(workdir, ".stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(os.path.join(workdir, ".stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    status = 1
    try:
        cpu = max(1, int(timeout) + 1)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        limit = _vm_size_bytes() + int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        fs = int(fsize_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (fs, fs))
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(max(1, int(timeout) + 2))

        def _no_network(event: str, args: tuple) -> None:
            if event.startswith("socket."):
                raise PermissionError(f"network access is disabled in the sandbox ({event})")
            if event in _NO_PROCESS_EVENTS:  # a new program would not carry the audit hook
                raise PermissionError(f"starting processes is disabled in the sandbox ({event})")

        sys.addaudithook(_no_network)
        glb = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(code, "<agent code>", "exec"), glb)  # noqa: S102 - sandboxed by design
        status = 0
    except MemoryError as exc:
        _print_agent_traceback(exc)
        status = 3
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if status == 3:  # 3 is the memory-limit status; the code's own exit(3) is reported as 1
            status = 1
    except BaseException as exc:  # noqa: BLE001 - report anything the agent's code raised
        _print_agent_traceback(exc)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:  # noqa: BLE001
        pass
    os._exit(status)


def _print_agent_traceback(exc: BaseException) -> None:
    """The traceback from the agent's code on: the sandbox's own frame (a host path) is noise to the agent.
    A syntax error in the agent's code has no agent frame; the error itself names the line."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<agent code>":
        tb = tb.tb_next
    if tb is None and not isinstance(exc, SyntaxError):
        tb = exc.__traceback__
    traceback.print_exception(type(exc), exc, tb)


def _wait(pid: int, timeout: float) -> tuple[int | None, str | None, bool]:
    """Wait for ``pid`` at most ``timeout`` s; kill its process group after. (status, killed, timed_out)."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    target()
                except OSError:
                    pass
            os.waitpid(pid, 0)
            return None, "timeout", True
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    try:
        os.killpg(pid, signal.SIGKILL)  # anything the code left running in its group
    except OSError:
        pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGXCPU, signal.SIGALRM, signal.SIGKILL):
            return None, "timeout", True
        return None, f"signal {sig}", False
    code = os.WEXITSTATUS(status)
    return code, ("memory" if code == 3 else None), False


def _read(path: str, limit: int = 200_000) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def _execute_fork(req: dict) -> dict:
    t0 = time.monotonic()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # child
        _child_main(req["code"], req["workdir"], req["timeout"], req["memory_mb"], req["fsize_mb"])
    status, killed, timed_out = _wait(pid, req["timeout"])
    wd = req["workdir"]
    return {"ok": status == 0 and not killed, "stdout": _read(os.path.join(wd, ".stdout")),
            "stderr": _read(os.path.join(wd, ".stderr")), "returncode": status, "timed_out": timed_out,
            "killed": killed, "seconds": time.monotonic() - t0}


def _serve() -> None:
    """Server loop: one JSON request per stdin line, one JSON reply per stdout line."""
    for mod in _PRELUDE_IMPORTS:
        try:
            __import__(mod)
        except ImportError:
            pass
    chan = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    chan.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = _execute_fork(json.loads(line))
        except Exception as exc:  # noqa: BLE001 - keep serving
            reply = {"ok": False, "stdout": "", "stderr": f"sandbox error: {exc}", "returncode": None,
                     "timed_out": False, "killed": "sandbox", "seconds": 0.0}
        chan.write(json.dumps(reply) + "\n")


def _spawn_main() -> None:
    req = json.loads(sys.stdin.read())
    for mod in _PRELUDE_IMPORTS:
        try:
            __import__(mod)
        except ImportError:
            pass
    _child_main(req["code"], req["workdir"], req["timeout"], req["memory_mb"], req["fsize_mb"])


# ---------------------------------------------------------------------------------------------------
# Parent side


class Sandbox:
    """Executes code with limits. ``run(code, files={name: path}) -> ExecResult``.

    Args:
        timeout: seconds of wall clock per execution (default 10).
        memory_mb: address space the code may add to the child (default 1024 MB).
        backend: ``"fork"`` (a pre-imported server forks per run) or ``"spawn"`` (a fresh interpreter).
        fsize_mb: largest file the code may write.
    """

    def __init__(self, *, timeout: float = 10.0, memory_mb: int = 1024, backend: str = "fork", fsize_mb: int = 64):
        if backend not in ("fork", "spawn"):
            raise ValueError(f"`backend` must be 'fork' or 'spawn', got {backend!r}")
        if not timeout > 0:
            raise ValueError(f"`timeout` must be > 0 seconds, got {timeout}")
        if memory_mb < 16:
            raise ValueError(f"`memory_mb` must be >= 16, got {memory_mb}")
        if os.name != "posix":
            raise OSError("the sandbox needs a POSIX system (fork, setrlimit)")
        self.timeout, self.memory_mb, self.backend, self.fsize_mb = float(timeout), int(memory_mb), backend, int(fsize_mb)
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.n_runs = 0
        self.n_restarts = 0

    # -- server management
    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), "--serve"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                start_new_session=True)
        line = proc.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            proc.kill()
            raise RuntimeError("the sandbox server did not start")
        return proc

    def close(self) -> None:
        with self._lock:
            if self._proc is not None:
                try:
                    self._proc.stdin.close()
                    self._proc.wait(timeout=5)
                except Exception:  # noqa: BLE001
                    self._proc.kill()
                self._proc = None

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # -- execution
    def run(self, code: str, files: dict[str, str | Path] | None = None, *, timeout: float | None = None) -> ExecResult:
        """Run ``code`` in a fresh scratch directory holding copies of ``files`` ({name in scratch: source})."""
        if not isinstance(code, str):
            raise TypeError(f"`code` must be a string, got {type(code).__name__}")
        timeout = self.timeout if timeout is None else float(timeout)
        workdir = tempfile.mkdtemp(prefix="parsimon-sbx-")
        try:
            for name, src in (files or {}).items():
                if os.path.isabs(name) or ".." in Path(name).parts:
                    raise ValueError(f"file name in the scratch directory must be relative, got {name!r}")
                dst = os.path.join(workdir, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
            req = {"code": code, "workdir": workdir, "timeout": timeout, "memory_mb": self.memory_mb,
                   "fsize_mb": self.fsize_mb}
            self.n_runs += 1
            res = self._run_fork(req) if self.backend == "fork" else self._run_spawn(req)
            return ExecResult(**res)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_fork(self, req: dict) -> dict:
        with self._lock:
            for _attempt in range(2):
                if self._proc is None or self._proc.poll() is not None:
                    if self._proc is not None:
                        self.n_restarts += 1
                    self._proc = self._start()
                try:
                    self._proc.stdin.write(json.dumps(req) + "\n")
                    self._proc.stdin.flush()
                    line = self._proc.stdout.readline()
                    if line:
                        return json.loads(line)
                except (BrokenPipeError, OSError, ValueError):
                    pass
                self._proc.kill()
                self._proc = None
            return {"ok": False, "stdout": "", "stderr": "sandbox server failed", "returncode": None,
                    "timed_out": False, "killed": "sandbox", "seconds": 0.0}

    def _run_spawn(self, req: dict) -> dict:
        t0 = time.monotonic()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), "--spawn"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
                                start_new_session=True)
        proc.stdin.write(json.dumps(req))
        proc.stdin.close()
        # Interpreter start-up and imports are not the code's time: allow 10 s more for them.
        timed_out, killed = False, None
        try:
            proc.wait(timeout=req["timeout"] + 10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait()
            timed_out, killed = True, "timeout"
        rc = proc.returncode
        if not timed_out and rc is not None and rc < 0:
            sig = -rc
            timed_out = sig in (signal.SIGXCPU, signal.SIGALRM, signal.SIGKILL)
            killed = "timeout" if timed_out else f"signal {sig}"
            rc = None
        elif rc == 3:
            killed = "memory"
        wd = req["workdir"]
        return {"ok": rc == 0 and not killed, "stdout": _read(os.path.join(wd, ".stdout")),
                "stderr": _read(os.path.join(wd, ".stderr")), "returncode": None if timed_out else rc,
                "timed_out": timed_out, "killed": killed, "seconds": time.monotonic() - t0}

    def stats(self) -> dict:
        return {"runs": self.n_runs, "restarts": self.n_restarts, "backend": self.backend}


_SHARED: dict[tuple, Sandbox] = {}


def get_sandbox(**kw: object) -> Sandbox:
    """A process-wide shared :class:`Sandbox` per configuration (the fork server is started once)."""
    key = tuple(sorted(kw.items()))
    if key not in _SHARED:
        _SHARED[key] = Sandbox(**kw)  # type: ignore[arg-type]
    return _SHARED[key]


if __name__ == "__main__":
    if "--serve" in sys.argv:
        _serve()
    elif "--spawn" in sys.argv:
        _spawn_main()
    else:
        print(json.dumps(asdict(ExecResult(False, "", "usage: sandbox.py --serve | --spawn", 2))))
