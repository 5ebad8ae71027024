"""One sandbox for untrusted code: FILEREADING agents' pandas code, evolved game-solver candidates,
world-model replays.

Each piece of code runs exactly once, in a fresh worker process that is thrown away afterwards (a worker
is started ahead of time with its imports done, so the wait is hidden). Two isolation levels; the result
says which one applied (``SandboxResult.isolation``), nothing is silently weaker:

``"bubblewrap"`` (Linux with ``bwrap`` on the PATH; Debian package ``bubblewrap``)
    Fresh user, PID, network, IPC, UTS and cgroup namespaces; a read-only view of only what Python needs
    (system libraries, the Python installation, the packages on ``sys.path``) — no home directory, no
    governance store, no ``/tmp`` of the host; a size-capped tmpfs as the only writable place (the scratch
    folder, holding copies of the inputs); a scrubbed environment. Killing the worker kills its whole PID
    namespace, grandchildren included.

``"guarded"`` (no bubblewrap: macOS, a locked-down container)
    The same child process guards without namespaces: a host scratch folder, Landlock (Linux ≥ 5.13)
    limiting the file system to read-only Python/system paths plus the scratch folder, and the scrubbed
    environment. What it does not give: a cap on the scratch folder's total size (only each file is
    capped), a private PID/network namespace (seccomp still refuses sockets and new processes), and on
    kernels without Landlock or outside Linux, file-system confinement (then only the audit hook guards).

In both, inside the worker: rlimits (CPU, address space, file size, no core, open files), a seccomp
filter (no sockets, no new processes, no signals to other processes, no ptrace/mount/namespaces) and an
audit hook. The wall-clock limit kills the worker's process tree.

Example:
    >>> box = Sandbox(Limits(wall_s=20))
    >>> r = box.run("import math\\nreport({'x': math.sqrt(PAYLOAD)})", payload=16)
    >>> r.status, r.result
    ('ok', {'x': 4.0})
    >>> box.run("import socket; socket.socket()").status
    'error'
    >>> box.close()
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from parsimon._closing import Closing
from parsimon.errors import ConfigError, ParsimonError

__all__ = ["ISOLATIONS", "STATUSES", "Limits", "Sandbox", "SandboxError", "SandboxResult",
           "bubblewrap_available", "run_code"]

ISOLATIONS = ("auto", "bubblewrap", "guarded")
STATUSES = ("ok", "error", "timeout", "memory", "disk", "killed")
_CHILD = Path(__file__).with_name("_sandbox_child.py")
_KEEP_ENV = ("LANG", "LC_ALL", "TZ")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd",
              "/etc/group", "/etc/alternatives", "/etc/ssl/certs", "/etc/mime.types")


class SandboxError(ParsimonError):
    """The sandbox itself could not run (not the code inside it: that is a result, never an exception)."""


@dataclass(frozen=True)
class Limits:
    """What one execution may use.

    Attributes:
        wall_s: Wall-clock seconds before the worker's process tree is killed.
        cpu_s: CPU seconds (default: ``wall_s``).
        memory_mb: Address space the code may add to the worker after its preloads.
        scratch_mb: Size of the writable scratch folder as a whole (under bubblewrap; in the guarded
            fallback, the largest single file).
        output_kb: stdout and stderr kept, each.
    """

    wall_s: float = 10.0
    cpu_s: float | None = None
    memory_mb: int = 1024
    scratch_mb: int = 64
    output_kb: int = 256

    def __post_init__(self) -> None:
        for name in ("wall_s", "cpu_s"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0 and v < 1e7):
                raise ConfigError(f"`{name}` must be a positive number of seconds, got {v!r}")
        for name, low in (("memory_mb", 16), ("scratch_mb", 1), ("output_kb", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 1 << 30:
                raise ConfigError(f"`{name}` must be an integer >= {low}, got {v!r}")


@dataclass
class SandboxResult:
    """The outcome of one execution. Failures of the code are results, never exceptions.

    Attributes:
        status: ``ok``; ``error`` (the code raised, exited non-zero or hit a blocked operation);
            ``timeout`` (wall or CPU limit); ``memory``; ``disk`` (scratch or file-size limit);
            ``killed`` (the worker died some other way).
        stdout, stderr: What the code printed (capped at ``Limits.output_kb``).
        result: The last object the code passed to ``report(...)`` (None if none).
        reports: Every reported object, in order.
        error: A one-line description of the failure.
        isolation: ``"bubblewrap"`` or ``"guarded"``.
        guards: The guards installed inside the worker (``rlimits``, ``landlock``, ``seccomp``, ``audit-hook``).
        seconds: Wall-clock seconds of the execution.
    """

    status: str
    stdout: str = ""
    stderr: str = ""
    result: Any = None
    reports: list[Any] = field(default_factory=list)
    error: str = ""
    isolation: str = ""
    guards: list[str] = field(default_factory=list)
    seconds: float = 0.0
    returncode: int | None = None

    @property
    def ok(self) -> bool:
        """True when the code ran to the end within the limits."""
        return self.status == "ok"

    @property
    def timed_out(self) -> bool:
        """True when a time limit stopped the code."""
        return self.status == "timeout"

    def output(self, limit: int = 4000) -> str:
        """stdout then stderr, and a line for a limit that stopped the code, truncated to ``limit``."""
        text = self.stdout
        if self.stderr:
            text += ("\n" if text else "") + self.stderr
        note = {"timeout": "Execution stopped: time limit exceeded.",
                "memory": "Execution stopped: memory limit exceeded.",
                "disk": "Execution stopped: disk space limit exceeded.",
                "killed": f"Execution stopped: {self.error or 'the process was killed'}."}.get(self.status)
        if note:
            text += ("\n" if text else "") + note
        if len(text) > limit:
            text = text[:limit] + f"\n... [{len(text) - limit} more characters]"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def bubblewrap_available() -> bool:
    """True when ``bwrap`` is installed and can create namespaces here (checked once per process)."""
    global _BWRAP_OK
    if _BWRAP_OK is None:
        exe = shutil.which("bwrap")
        ok = False
        if exe and sys.platform == "linux":
            try:
                ok = subprocess.run([exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                                    capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.SubprocessError):
                ok = False
        _BWRAP_OK = ok
    return _BWRAP_OK


_BWRAP_OK: bool | None = None


def _module_root(name: str) -> str | None:
    """The sys.path folder a module is imported from (for binding it into the sandbox)."""
    import importlib.util

    top = name.split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    return str(origin.parent.parent if spec.submodule_search_locations else origin.parent)


def _python_paths(preload: tuple[str, ...] = ()) -> list[str]:
    """Folders the worker's Python needs to read: the installation, the venv, the site-packages, and
    the folders parsimon and the preloaded modules come from. Other ``sys.path`` entries (the script's
    folder, the working directory) are not exposed."""
    home = os.path.realpath(os.path.expanduser("~"))
    paths = sysconfig.get_paths()
    cands = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             paths.get("stdlib", ""), paths.get("platstdlib", ""), paths.get("purelib", ""),
             paths.get("platlib", ""), os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(sys.executable), str(_CHILD.parent.parent)]
    if hasattr(site, "getsitepackages"):
        cands += list(site.getsitepackages())
    cands += [p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p or p.endswith(".zip"))]
    cands += [r for r in (_module_root(m) for m in preload) if r]
    out: list[str] = []
    for p in cands:
        if not p:
            continue
        for q in {os.path.abspath(p), os.path.realpath(p)}:
            if not os.path.isdir(q) or q in ("/", home) or home.startswith(q.rstrip("/") + "/"):
                continue  # never the whole file system or the home directory itself
            if q not in out:
                out.append(q)
    # Drop folders already inside another listed folder.
    out.sort(key=len)
    kept: list[str] = []
    for p in out:
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(p)
    return kept


def _scrubbed_env(extra: dict[str, str] | None, scratch: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    env.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch,
                "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": scratch})
    env.setdefault("LANG", "C.UTF-8")
    env.update(extra or {})
    return env


def _store_dir() -> str | None:
    raw = os.environ.get("PARSIMON_HOME")
    path = Path(raw).expanduser() if raw else Path.home() / ".parsimon"
    return str(path.resolve()) if path.exists() else None


class _Reader(threading.Thread):
    """Drains one pipe, keeping the first ``cap`` bytes."""

    def __init__(self, fh, cap: int) -> None:
        super().__init__(daemon=True)
        self.fh, self.cap, self.buf, self.dropped = fh, cap, bytearray(), 0

    def run(self) -> None:
        try:
            while True:
                chunk = self.fh.read1(65536) if hasattr(self.fh, "read1") else self.fh.read(65536)
                if not chunk:
                    break
                room = self.cap - len(self.buf)
                if room > 0:
                    self.buf += chunk[:room]
                self.dropped += max(0, len(chunk) - max(room, 0))
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        s = self.buf.decode("utf-8", "replace")
        if self.dropped:
            s += f"\n... [{self.dropped} more bytes]"
        return s


def _child_limits(limits: Limits) -> dict:
    """The limits the worker sets on itself before running the code."""
    return {"cpu_s": limits.cpu_s or limits.wall_s, "memory_mb": limits.memory_mb, "file_mb": limits.scratch_mb}


class _Worker:
    """One worker process: started with its imports done, used for exactly one execution."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.tmp = tempfile.mkdtemp(prefix="parsimon-sbx-")
        self.input_dir = os.path.join(self.tmp, "in")
        os.mkdir(self.input_dir)
        r, w = os.pipe()
        self.result_r = r
        if box.isolation == "bubblewrap":
            scratch, inputs = "/scratch", "/input"
            argv = box._bwrap_argv(self.input_dir) + [sys.executable, "-I", "-B", str(_CHILD), str(w)]
            cwd = "/"
        else:
            scratch = os.path.join(self.tmp, "scratch")
            os.mkdir(scratch)
            inputs = self.input_dir
            argv = [sys.executable, "-I", "-B", str(_CHILD), str(w)]
            cwd = scratch
        self.scratch_host = None if box.isolation == "bubblewrap" else scratch
        env = _scrubbed_env(box.env, scratch)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, pass_fds=(w,), cwd=cwd, env=env,
                                         start_new_session=True)
        except OSError as exc:
            os.close(r)
            os.close(w)
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise SandboxError(f"cannot start a sandbox worker: {exc}") from exc
        os.close(w)
        self.out = _Reader(self.proc.stdout, box.limits.output_kb * 1024)
        self.err = _Reader(self.proc.stderr, box.limits.output_kb * 1024)
        self.out.start()
        self.err.start()
        self._buf = b""
        limits = box.limits
        setup = {"preload": list(box.preload), "scratch": scratch, "input": inputs,
                 "limits": _child_limits(limits),
                 "landlock": box.isolation == "guarded", "seccomp": True,
                 "read_paths": box._read_paths + [self.input_dir, "/dev/null", "/dev/urandom", "/proc/self"]}
        self.ready = False
        self.start_error = ""
        try:
            self.proc.stdin.write((json.dumps(setup) + "\n").encode())
            self.proc.stdin.flush()
        except OSError as exc:
            self.start_error = f"cannot talk to the worker: {exc}"

    def _lines(self, deadline: float):
        """Yield JSON messages from the result pipe until EOF or the deadline."""
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    yield json.loads(line)
                except ValueError:
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select([self.result_r], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(self.result_r, 1 << 20)
            if not chunk:
                return
            self._buf += chunk
            if len(self._buf) > 64 << 20:  # a runaway reporter: stop listening
                self._buf = b""
                return

    def wait_ready(self, timeout: float) -> bool:
        if self.ready:
            return True
        if self.start_error:
            return False
        for msg in self._lines(time.monotonic() + timeout):
            if msg.get("ready"):
                self.ready = True
                return True
        return False

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except OSError:
            pass

    def cleanup(self) -> None:
        self.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fh in (self.proc.stdin,):
            try:
                fh.close()
            except OSError:
                pass
        try:
            os.close(self.result_r)
        except OSError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


class Sandbox(Closing):
    """Runs untrusted Python code, each piece once, in a fresh isolated worker.

    Args:
        limits: The :class:`Limits` of every execution.
        isolation: ``"auto"`` (bubblewrap where it works, else guarded), ``"bubblewrap"`` (raise
            :class:`SandboxError` if unavailable) or ``"guarded"``.
        preload: Modules the worker imports before the limits apply (e.g. ``("pandas",)``); their time
            and memory are not the code's.
        env: Extra environment variables for the code (the environment is otherwise scrubbed: no API
            keys, no ``PARSIMON_HOME``).
        warm: Start the next worker as soon as one is used, so its start-up overlaps the caller's work.
        startup_s: Seconds a worker may take to start and preload.
    """

    def __init__(self, limits: Limits | None = None, *, isolation: str = "auto", preload: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, warm: bool = True, startup_s: float = 120.0) -> None:
        if isolation not in ISOLATIONS:
            raise ConfigError(f"`isolation` must be one of {list(ISOLATIONS)}, got {isolation!r}")
        if os.name != "posix":
            raise SandboxError("the sandbox needs a POSIX system")
        if isolation in ("auto", "bubblewrap"):
            has = bubblewrap_available()
            if isolation == "bubblewrap" and not has:
                raise SandboxError("`isolation='bubblewrap'` was asked for but bwrap is missing or cannot create "
                                   "namespaces here (Debian: apt-get install bubblewrap)")
            isolation = "bubblewrap" if has else "guarded"
        self.isolation = isolation
        self.limits = limits or Limits()
        self.preload = tuple(preload)
        self.env = dict(env or {})
        for key in self.env:
            if not isinstance(key, str) or not key:
                raise ConfigError(f"`env` keys must be non-empty strings, got {key!r}")
        self.warm = warm
        self.startup_s = float(startup_s)
        self._python_paths = _python_paths(self.preload)
        self._read_paths = self._python_paths + [d for d in _SYSTEM_DIRS if os.path.exists(d)]
        self._lock = threading.Lock()
        self._next: _Worker | None = None
        self._closed = False
        self.n_runs = 0

    # -- bubblewrap command line
    def _bwrap_argv(self, input_dir: str) -> list[str]:
        argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                argv += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                argv += ["--ro-bind", d, d]
        for f in _ETC_FILES:
            if os.path.exists(f):
                argv += ["--ro-bind", f, f]
        for p in self._python_paths:
            argv += ["--ro-bind", p, p]
        store = _store_dir()
        if store and any(store == p or store.startswith(p.rstrip("/") + "/") for p in self._python_paths):
            argv += ["--tmpfs", store]  # never expose the governance store, even if it sits under a bound path
        size = self.limits.scratch_mb << 20
        argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(size), "--tmpfs", "/scratch"]
        if not any(p == "/tmp" or p.startswith("/tmp/") for p in self._python_paths):
            argv += ["--symlink", "/scratch", "/tmp"]  # code that writes to /tmp writes to the capped scratch
        argv += ["--ro-bind", input_dir, "/input", "--chdir", "/scratch", "--remount-ro", "/"]
        return argv

    # -- workers
    def _spawn(self) -> _Worker:
        return _Worker(self)

    def _take_worker(self) -> _Worker:
        worker, self._next = self._next, None
        if worker is None or worker.proc.poll() is not None:
            if worker is not None:
                worker.cleanup()
            worker = self._spawn()
        if not worker.wait_ready(self.startup_s):
            err = worker.err.text()[-2000:] if worker.err else ""
            worker.cleanup()
            raise SandboxError(f"the sandbox worker did not start ({self.isolation}): "
                               f"{worker.start_error or err.strip() or 'no reply'}")
        return worker

    def _prestart(self) -> None:
        if self.warm and not self._closed and self._next is None:
            try:
                self._next = self._spawn()
            except SandboxError:
                self._next = None

    def run(self, code: str, *, files: dict[str, str | os.PathLike] | None = None, payload: Any = None,
            limits: Limits | None = None) -> SandboxResult:
        """Run ``code`` once, as ``__main__``, in the scratch folder.

        Args:
            code: Python source. It may read ``PAYLOAD`` and call ``report(obj)`` to return JSON data.
            files: ``{name in the scratch folder: source path}``; copies are made.
            payload: A JSON-serialisable object, available to the code as ``PAYLOAD``.
            limits: Overrides this sandbox's limits for this run (wall and CPU time only; memory and
                disk are fixed when the worker starts).

        Returns:
            A :class:`SandboxResult`; the code's failures (errors, limits, blocked operations) are in
            its ``status``, never raised.
        """
        if not isinstance(code, str):
            raise ConfigError(f"`code` must be a string, got {type(code).__name__}")
        if self._closed:
            raise SandboxError("this sandbox is closed")
        names = []
        for name in (files or {}):
            if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts:
                raise ConfigError(f"`files` names must be relative paths inside the scratch folder, got {name!r}")
            names.append(name)
        lim = limits or self.limits
        try:
            # the run's own limits: the worker was started (ahead of time) with the box's
            req = json.dumps({"code": code, "payload": payload, "files": names, "limits": _child_limits(lim)})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"`payload` must be JSON-serialisable: {exc}") from None
        with self._lock:
            worker = self._take_worker()
        try:
            for name, src in (files or {}).items():
                dst = os.path.join(worker.input_dir, name)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
            return self._execute(worker, req, lim)
        finally:
            worker.cleanup()
            self.n_runs += 1
            with self._lock:
                self._prestart()

    def _execute(self, worker: _Worker, req: str, lim: Limits) -> SandboxResult:
        t0 = time.monotonic()
        res = SandboxResult(status="killed", isolation=self.isolation)
        try:
            worker.proc.stdin.write((req + "\n").encode())
            worker.proc.stdin.flush()
            worker.proc.stdin.close()
        except OSError as exc:
            res.error = f"the worker went away before the code was sent: {exc}"
            return res
        deadline = t0 + lim.wall_s
        done = None
        for msg in worker._lines(deadline):
            if "report" in msg:
                res.reports.append(msg["report"])
            elif "guards" in msg:
                res.guards = list(msg["guards"])
            elif "done" in msg:
                done = msg
                break
        timed_out = done is None and time.monotonic() >= deadline
        if done is None:
            if timed_out:
                worker.kill()
            try:
                worker.proc.wait(timeout=5 if not timed_out else 10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.proc.wait()
        else:
            try:
                worker.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
        worker.kill()  # anything left in the tree
        worker.out.join(timeout=5)
        worker.err.join(timeout=5)
        res.seconds = time.monotonic() - t0
        res.stdout, res.stderr = worker.out.text(), worker.err.text()
        res.returncode = worker.proc.returncode
        res.result = res.reports[-1] if res.reports else None
        if done is not None:
            res.status = done["done"] if done["done"] in STATUSES else "error"
            res.error = done.get("error", "")
        elif timed_out:
            res.status, res.error = "timeout", f"wall-clock limit of {lim.wall_s:g} s exceeded"
        else:
            rc = worker.proc.returncode
            # bubblewrap passes a signal that ended the code on as exit status 128 + signal
            sig = -rc if rc is not None and rc < 0 else (rc - 128 if self.isolation == "bubblewrap"
                                                         and rc is not None and 128 < rc < 160 else None)
            if sig is not None:
                if sig in (signal.SIGXCPU, signal.SIGALRM):
                    res.status, res.error = "timeout", f"CPU limit of {(lim.cpu_s or lim.wall_s):g} s exceeded"
                elif sig == signal.SIGXFSZ:
                    res.status, res.error = "disk", "file-size limit exceeded"
                else:
                    res.status, res.error = "killed", f"killed by signal {signal.Signals(sig).name}"
            elif rc == 3:
                res.status, res.error = "memory", "memory limit exceeded"
            else:
                res.status, res.error = "killed", f"the worker exited with status {rc} before finishing"
        if res.status == "ok" and worker.scratch_host is not None:
            used = _tree_size(worker.scratch_host)
            if used > lim.scratch_mb << 20:
                res.status = "disk"
                res.error = f"scratch folder holds {used >> 20} MB, over the {lim.scratch_mb} MB limit"
        return res

    def close(self) -> None:
        """Stop the idle worker; later ``run`` calls raise."""
        with self._lock:
            self._closed = True
            if self._next is not None:
                self._next.cleanup()
                self._next = None

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def _tree_size(path: str) -> int:
    total = 0
    for root, _dirs, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return total


def run_code(code: str, *, files: dict[str, str | os.PathLike] | None = None, payload: Any = None,
             limits: Limits | None = None, isolation: str = "auto", preload: tuple[str, ...] = ()) -> SandboxResult:
    """Run ``code`` once in a new :class:`Sandbox` (convenient; slower than reusing one)."""
    with Sandbox(limits, isolation=isolation, preload=preload, warm=False) as box:
        return box.run(code, files=files, payload=payload)
