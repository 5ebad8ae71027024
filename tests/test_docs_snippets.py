"""Every fenced ``bash`` and ``python`` block of README.md and docs/*.md runs, so a snippet that rots fails.

Blocks run in a fresh temporary folder with their own ``PARSIMON_HOME``, one thread. A document can
steer the next block with an HTML comment on the line(s) just above it:

* ``<!-- snippet: skip REASON -->`` — not run (GPU-only, ``--full``, a server that runs until stopped...);
  the reason is required and shown in the test report.
* ``<!-- snippet: replace "OLD" "NEW" -->`` — run with OLD replaced by NEW (smaller sizes); repeatable.
* ``<!-- snippet: timeout SECONDS -->`` — a longer limit than the default 90 s (keep blocks small: the
  whole file is meant to run in a few minutes).
* ``<!-- snippet: setup "COMMAND" -->`` — a shell command run first in the same folder (e.g. to make a
  file the block reads); repeatable.
* ``<!-- snippet: background "COMMAND" "URL" -->`` — a server started before the block (once URL answers
  HTTP at all) and stopped after it, for blocks that talk to one.
* ``<!-- snippet: covered-by docs/NAME.md -->`` — not run again: every line of the block (comments and
  spacing aside) must be a line of a block of that document that does run (the README repeats some of the
  docs' blocks word for word; running them twice only costs minutes).

Bash blocks may also start servers themselves (``parsimon llm serve &``): each block runs in its own
process group, killed when the block ends.

Python blocks of one document share nothing; each runs as its own script. Bash blocks run with
``bash -euo pipefail`` and the venv's ``bin`` first on the PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*snippet:\s*([\w-]+)\s*(.*?)\s*-->")


@dataclass
class Snippet:
    doc: Path
    line: int
    lang: str
    code: str
    skip: str | None = None
    timeout: float = 90.0
    replace: list[tuple[str, str]] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    background: list[tuple[str, str]] = field(default_factory=list)
    covered_by: str | None = None

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line}"


def _directives(text: str, start: int) -> list[tuple[str, str]]:
    """The snippet directives in the comment lines right above offset ``start``."""
    lines = text[:start].rstrip("\n").split("\n")
    found = []
    for line in reversed(lines):
        m = _DIRECTIVE.search(line.strip())
        if not m:
            break
        found.append((m.group(1), m.group(2)))
    return list(reversed(found))


def collect() -> list[Snippet]:
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in _FENCE.finditer(text):
            lang = m.group(1).lower()
            if lang not in ("bash", "python"):
                continue
            snip = Snippet(doc, text[:m.start()].count("\n") + 1, lang, m.group(2))
            for name, arg in _directives(text, m.start()):
                if name == "skip":
                    if not arg:
                        raise ValueError(f"{snip.id}: a skip needs a reason")
                    snip.skip = arg
                elif name == "replace":
                    old, new = shlex.split(arg)
                    if old not in snip.code:
                        raise ValueError(f"{snip.id}: replace target {old!r} is not in the block")
                    snip.replace.append((old, new))
                elif name == "timeout":
                    snip.timeout = float(arg)
                elif name == "setup":
                    snip.setup.extend(shlex.split(arg))
                elif name == "covered-by":
                    if not (ROOT / arg).is_file():
                        raise ValueError(f"{snip.id}: covered-by names no document: {arg!r}")
                    snip.covered_by = arg
                elif name == "background":
                    cmd, url = shlex.split(arg)
                    snip.background.append((cmd, url))
                else:
                    raise ValueError(f"{snip.id}: unknown snippet directive {name!r}")
            out.append(snip)
    return out


SNIPPETS = collect()


def _run_in_own_group(argv: list[str], cwd: Path, env: dict, limit: float) -> subprocess.CompletedProcess:
    """Run a block in its own process group with output to files, then kill the group: servers a block
    starts in the background (``parsimon llm serve &``) end with it instead of holding the test."""
    import signal

    out_path, err_path = cwd / ".snippet.out", cwd / ".snippet.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=limit)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return subprocess.CompletedProcess(argv, proc.returncode, out_path.read_text(errors="replace"),
                                       err_path.read_text(errors="replace"))


@pytest.mark.slow
@pytest.mark.parametrize("snip", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs(snip: Snippet, tmp_path):
    if snip.skip:
        pytest.skip(snip.skip)
    if snip.covered_by:
        _check_covered(snip)
        return
    code = snip.code
    for old, new in snip.replace:
        code = code.replace(old, new)
    env = dict(os.environ, PARSIMON_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PARSIMON_PROGRESS_INTERVAL="30", PARSIMON_REPO=str(ROOT))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("TRITON_INTERPRET", None)  # the suite's CPU setting for kernels; a reader's shell has none
    for cmd in snip.setup:
        res = subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=snip.timeout)
        assert res.returncode == 0, f"setup of {snip.id} failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    servers = [_start_server(cmd, url, tmp_path, env) for cmd, url in snip.background]
    try:
        _run_block(snip, code, tmp_path, env)
    finally:
        for proc in servers:
            _kill_group(proc)


def _lines(code: str) -> list[str]:
    """A block's lines without comments, blank lines or spacing differences."""
    out = []
    for line in code.splitlines():
        line = "" if line.lstrip().startswith("#") else line.split(" #")[0]
        line = " ".join(line.split())
        if line:
            out.append(line)
    return out


def _check_covered(snip: Snippet) -> None:
    doc = (ROOT / snip.covered_by).resolve()
    runs = [s for s in SNIPPETS if s.doc.resolve() == doc and not s.skip and not s.covered_by and s.lang == snip.lang]
    theirs = {line for s in runs for line in _lines(s.code)}
    missing = [line for line in _lines(snip.code) if line not in theirs]
    assert not missing, f"{snip.id} is said to be covered by {snip.covered_by}, whose run blocks lack: {missing}"


def _start_server(cmd: str, url: str, cwd: Path, env: dict) -> subprocess.Popen:
    import time
    import urllib.error
    import urllib.request

    def answers() -> bool:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    # A server of the block before may still be going down (the child of a killed `parsimon llm serve`
    # exits within about a second): until it has, it would answer the probe below in place of this one.
    quiet = time.monotonic() + 30
    while answers():
        assert time.monotonic() < quiet, f"something else still answers at {url}: `{cmd}` cannot start there"
        time.sleep(0.5)
    log = open(cwd / f".server-{abs(hash(cmd))}.log", "w")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if answers():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _kill_group(proc)
    raise AssertionError(f"background server `{cmd}` never answered at {url}:\n{(cwd / log.name).read_text()[-2000:]}")


def _kill_group(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _run_block(snip: Snippet, code: str, tmp_path: Path, env: dict) -> None:
    if snip.lang == "python":
        script = tmp_path / "snippet.py"
        script.write_text(code)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-euo", "pipefail", "-c", code]
    # PARSIMON_SNIPPET_TIMEOUT caps every limit (a quick pass over the documents while editing them)
    limit = min(snip.timeout, float(os.environ.get("PARSIMON_SNIPPET_TIMEOUT", "inf")))
    res = _run_in_own_group(argv, tmp_path, env, limit)
    assert res.returncode == 0, f"{snip.id} failed:\n--- code\n{code}\n--- stdout\n{res.stdout[-2000:]}\n" \
                                f"--- stderr\n{res.stderr[-4000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-4000:]


def test_every_skip_has_a_reason_and_the_collector_sees_blocks():
    assert len(SNIPPETS) > 10
    assert all(s.skip is None or s.skip.strip() for s in SNIPPETS)


def test_a_covered_block_must_match_its_document(tmp_path, monkeypatch):
    doc = tmp_path / "other.md"
    doc.write_text("```bash\nparsimon a --x 1   # comment\nparsimon b\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "SNIPPETS", [Snippet(doc, 1, "bash", "parsimon a --x 1\nparsimon b\n")])
    _check_covered(Snippet(tmp_path / "README.md", 1, "bash", "parsimon  a --x 1  # other words\n",
                           covered_by="other.md"))
    with pytest.raises(AssertionError, match="parsimon a --x 2"):
        _check_covered(Snippet(tmp_path / "README.md", 1, "bash", "parsimon a --x 2\n", covered_by="other.md"))
