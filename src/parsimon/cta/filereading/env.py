"""The FILEREADING environment: selective unit tests vs. running code, with multiplicative costs.

Actions (exactly one per turn; text, as an LLM would write them):

* ``UNIT_TESTS: test_delimiter("f.csv"), test_quotechar("f.csv")`` — any non-empty set of the three tests;
  each reveals the true value (reliable) and **each test counts in U**;
* ``CODE`` followed by a fenced ```` ```python ```` block — run for real in the sandbox
  (:mod:`parsimon.cta.filereading.sandbox`) with the task's CSV in its scratch directory; stdout + stderr
  are returned; counts in C;
* ``ANSWER: <answer>`` — ends the episode. Correct: exact string for the ``max`` query, ``|pred − ans| <
  0.01`` for mean / min.

Reward ``correct · d_unit^U · d_code^C``; invalid actions (unparseable, no test named, no code block)
consume a turn with an error message; ``max_turns`` (default 8) truncates with reward 0.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from parsimon.cta.actions import ActionFormat, ActionKind, enum_field, text_field
from parsimon.cta.base import CTAEnv
from parsimon.cta.filereading.generator import FileTask
from parsimon.cta.filereading.prior import ATTRS

__all__ = ["FileReadingEnv", "action_format", "check_answer", "format_value", "parse_action"]

_TEST_RE = re.compile(r"test_(delimiter|quotechar|skiprows)\s*\(", re.IGNORECASE)
_CODE_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_KEYWORDS = re.compile(r"\b(UNIT_TESTS?|CODE|ANSWER)\b\s*:?", re.IGNORECASE)


def format_value(attr: str, value: Any) -> str:
    """How a format value is shown to the agent: ``','``, ``'\\t'``, ``'"'``, ``0``."""
    if attr == "skiprows":
        return str(int(value))
    return repr(value)


def parse_action(text: str) -> tuple[str, Any] | None:
    """``("tests", [attrs])``, ``("code", source)``, ``("answer", text)`` or None (unparseable).

    Text after a ``</think>`` tag is used when present; the first action keyword decides the kind.
    """
    if not isinstance(text, str):
        return None
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    m = _KEYWORDS.search(text)
    if m is None:
        code = _CODE_RE.search(text)
        return ("code", code.group(1)) if code else None
    kind = m.group(1).upper()
    rest = text[m.end():]
    if kind.startswith("UNIT_TEST"):
        tests = [t.lower() for t in _TEST_RE.findall(rest)]
        return ("tests", tests) if tests else None
    if kind == "CODE":
        code = _CODE_RE.search(rest) or _CODE_RE.search(text)
        return ("code", code.group(1)) if code else None
    ans = rest.strip().splitlines()[0].strip() if rest.strip() else ""
    return ("answer", ans)


CODE_CHARS = 1200  # the longest program a structured reply may hold (a solution is about 300-500 characters)
ANSWER_CHARS = 80


def action_format(filename: str) -> ActionFormat:
    """The structured action space: UNIT_TESTS of one to three attributes, CODE with a program, or ANSWER."""
    tests = ActionKind("UNIT_TESTS", {"tests": {"type": "array", "items": enum_field(ATTRS), "minItems": 1,
                                                "maxItems": len(ATTRS)}},
                       {"tests": "[any of " + ", ".join(f'"{a}"' for a in ATTRS) + "]"})
    code = ActionKind("CODE", {"code": text_field(CODE_CHARS, 1)},
                      {"code": '"<a python program that prints its result>"'})
    answer = ActionKind("ANSWER", {"answer": text_field(ANSWER_CHARS, 1)}, {"answer": '"<the answer>"'})

    def to_text(action: dict) -> str:
        if action["kind"] == "UNIT_TESTS":
            return "UNIT_TESTS: " + ", ".join(f'test_{a}("{filename}")' for a in ATTRS if a in action["tests"])
        if action["kind"] == "CODE":
            return "CODE\n```python\n" + action["code"].rstrip() + "\n```"
        return "ANSWER: " + " ".join(action["answer"].split())

    return ActionFormat("filereading_action", (tests, code, answer), to_text)


def _clean_answer(s: str) -> str:
    s = s.strip()
    while len(s) >= 2 and s[0] == s[-1] and s[0] in "`'\"":
        s = s[1:-1].strip()
    return s


def check_answer(pred: str, answer: Any, query_type: str) -> bool:
    """Exact match (after stripping quotes) for ``max``; ``|pred − answer| < 0.01`` for mean / min."""
    pred = _clean_answer(str(pred))
    if query_type == "max":
        return pred == str(answer).strip()
    try:
        return abs(float(pred) - float(answer)) < 1e-2
    except (TypeError, ValueError):
        return False


class FileReadingEnv(CTAEnv):
    """FILEREADING episodes over :class:`FileTask` objects (``reset(options={"task": task})``).

    Args:
        tasks: optional task list (iterated by ``reset()`` without options).
        max_turns: the turn limit (paper: 8).
        sandbox: a :class:`~parsimon.cta.filereading.sandbox.Sandbox` (default: a shared fork-server
            sandbox with ``timeout`` / ``memory_mb``).
        cache_exec: reuse the result of identical code on the same file (the execution is deterministic;
            the ρ copies of a task and different policies then share executions). Off for untrusted agents
            whose code may behave differently each run (e.g. reads the clock).
    """

    name = "filereading"

    def __init__(self, tasks: list | None = None, *, max_turns: int = 8, sandbox: Any = None, timeout: float = 10.0,
                 memory_mb: int = 1024, cache_exec: bool = True, output_limit: int = 4000):
        super().__init__(tasks, max_turns=max_turns)
        self._sandbox = sandbox
        self.timeout, self.memory_mb, self.cache_exec, self.output_limit = timeout, memory_mb, cache_exec, output_limit
        self._cache: dict[tuple[str, str], Any] = {}
        self.exec_stats = {"executions": 0, "cache_hits": 0, "timeouts": 0, "memory_kills": 0}

    @property
    def sandbox(self) -> Any:
        if self._sandbox is None:
            from parsimon.cta.filereading.sandbox import get_sandbox

            self._sandbox = get_sandbox(timeout=self.timeout, memory_mb=self.memory_mb)
        return self._sandbox

    def coerce_task(self, task: Any) -> FileTask:
        if isinstance(task, FileTask):
            return task
        if isinstance(task, dict):
            from parsimon.cta.filereading.loader import task_from_dict

            return task_from_dict(task)
        raise TypeError(f"a FILEREADING task must be a FileTask or a dict, got {type(task).__name__}")

    def _start(self, task: FileTask) -> tuple[str, dict]:
        if not task.csv_path.is_file():
            raise FileNotFoundError(f"task {task.task_id}: CSV not found at {task.csv_path} (check `data_root`)")
        self._U, self._C, self._first = 0, 0, None
        self._code_ok = False
        self._correct = False
        obs = (f"File: {task.filename}\nTask: {task.instruction}\n"
               f"Costs: d_unit = {task.d_unit}, d_code = {task.d_code:.4g} (d_code = d_unit^{task.rho:g}).\n"
               "Actions: UNIT_TESTS: test_delimiter(\"{f}\"), test_quotechar(\"{f}\"), test_skiprows(\"{f}\") | "
               "CODE with a ```python``` block | ANSWER: <answer>").replace("{f}", task.filename)
        return obs, {"filename": task.filename}

    def _run_code(self, code: str) -> Any:
        task = self.task
        key = (str(task.csv_path), hashlib.sha256(code.encode()).hexdigest())
        if self.cache_exec and key in self._cache:
            self.exec_stats["cache_hits"] += 1
            return self._cache[key]
        res = self.sandbox.run(code, files={task.filename: task.csv_path})
        self.exec_stats["executions"] += 1
        self.exec_stats["timeouts"] += int(res.timed_out)
        self.exec_stats["memory_kills"] += int(res.killed == "memory")
        if self.cache_exec:
            self._cache[key] = res
        return res

    def _act(self, action: str) -> tuple[str, float, bool, dict]:
        task = self.task
        parsed = parse_action(action)
        if parsed is None:
            msg = ("Invalid action: use exactly one of UNIT_TESTS: test_delimiter(\"f\") ..., CODE with a "
                   "```python``` block, or ANSWER: <answer>.")
            return msg, 0.0, False, {"valid": False, "error": msg, "canonical_action": "INVALID"}
        kind, arg = parsed
        if kind == "tests":
            self._U += len(arg)
            if self._first is None:
                self._first = "tests"
            vals = {a: task.fmt[ATTRS.index(a)] for a in arg}
            lines = [f'test_{a}("{task.filename}") -> {format_value(a, v)}' for a, v in vals.items()]
            canon = "UNIT_TESTS: " + ",".join(a for a in ATTRS if a in arg)
            return ("\n".join(lines), 0.0, False,
                    {"costs": {"unit_test": len(arg)}, "tests": vals, "canonical_action": canon})
        if kind == "code":
            self._C += 1
            if self._first is None:
                self._first = "code"
            res = self._run_code(arg)
            self._code_ok = self._code_ok or res.ok
            out = res.output(self.output_limit) or "(no output)"
            return (f"Exit status: {res.returncode if res.returncode is not None else res.killed}\n{out}", 0.0, False,
                    {"costs": {"code": 1}, "code_ok": res.ok, "stdout": res.stdout, "timed_out": res.timed_out,
                     "killed": res.killed, "canonical_action": "CODE"})
        correct = check_answer(arg, task.answer, task.query_type)
        reward = float(correct) * task.d_unit ** self._U * task.d_code ** self._C
        self._correct = correct
        return (f"Answer {'correct' if correct else 'incorrect'}.", reward, True,
                {"correct": correct, "canonical_action": "ANSWER"})

    def _summary(self, *, terminated: bool, truncated: bool, info: dict) -> dict[str, Any]:
        correct = bool(terminated and self._correct)
        return {"correct": float(correct), "U": self._U, "C": self._C,
                "guess_and_go": float(self._first == "code"), "rho": self.task.rho}
