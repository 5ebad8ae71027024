"""Start the writers of ``_gov_workers.py`` in child processes that import this checkout's ``parsimon``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import parsimon

WORKER = Path(__file__).with_name("_gov_workers.py")


def spawn(kind: str, path: Path | str, n: int, tag: str) -> subprocess.Popen:
    """Start one writer; it prints ``ready`` on stdout once its store is open."""
    env = dict(os.environ)
    src = str(Path(parsimon.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(WORKER), kind, str(path), str(n), tag], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen) -> None:
    """Block until the child printed ``ready`` (or fail with its stderr)."""
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"writer failed to start: {line!r} {proc.stderr.read()}")
