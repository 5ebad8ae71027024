"""Task files: JSON Lines (one object per line) or a JSON list of objects, read with errors that name the file.

Every environment's ``load_tasks`` goes through :func:`read_records` and :func:`build_tasks`, so an empty,
binary, truncated or wrongly shaped file is a :class:`~parsimon.errors.ConfigError` naming the file and the
line or item, never a traceback from the JSON parser or a task constructor.

Example:
    >>> import json, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"
    >>> _ = p.write_text(json.dumps({"x": 1}) + "\\n" + json.dumps({"x": 2}) + "\\n")
    >>> build_tasks(p, read_records(p), lambda d, i: d["x"], kind="demo")
    [1, 2]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from parsimon.errors import ConfigError

__all__ = ["Record", "build_tasks", "read_records", "read_text"]

T = TypeVar("T")

# (where, record): where is "file:line" for JSON Lines, "file: item i" for a JSON list.
Record = tuple[str, dict[str, Any]]


def read_text(path: str | Path) -> str:
    """The file as UTF-8 text; :class:`ConfigError` for a missing, unreadable or binary file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"task file {path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"task file {path}: cannot be read ({exc.strerror or exc})") from None
    if b"\x00" in data:
        raise ConfigError(f"task file {path}: binary data, not JSON or JSON Lines text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"task file {path}: not UTF-8 text (byte {exc.start}); expected JSON or JSON Lines"
                          ) from None


def read_records(path: str | Path) -> list[Record]:
    """The objects of a JSON list file or a JSON Lines file, each with its location for error messages.

    A torn last line of a JSON Lines file is an error here (a task file is written once, not appended to).

    Raises:
        ConfigError: the file is missing, binary, empty, not valid JSON, or holds something other than objects.
    """
    path = Path(path)
    text = read_text(path)
    stripped = text.strip()
    if not stripped:
        raise ConfigError(f"task file {path}: empty (no tasks)")
    if stripped[0] == "[" or (stripped[0] != "{" and "\n" not in stripped):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"task file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                              f"{exc.msg})") from None
        if not isinstance(items, list):
            raise ConfigError(f"task file {path}: expected a JSON list of task objects or JSON Lines, got a "
                              f"{type(items).__name__}")
        records = [(f"{path}: item {i}", item) for i, item in enumerate(items)]
    else:
        records = []
        for ln, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((f"{path}:{ln}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"task file {path}:{ln}: not valid JSON ({exc.msg})") from None
    if not records:
        raise ConfigError(f"task file {path}: no tasks")
    for where, item in records:
        if not isinstance(item, dict):
            raise ConfigError(f"task file {where}: a task must be a JSON object, got {type(item).__name__}")
    return records


def build_tasks(path: str | Path, records: list[Record], make: Callable[[dict[str, Any], int], T | list[T]], *,
                kind: str) -> list[T]:
    """``make(record, index)`` for every record (a list result is spliced in); errors name the record.

    Args:
        path: The task file (for the message when nothing is built).
        records: From :func:`read_records`.
        make: Builds one task (or several) from one record; a ``KeyError``, ``TypeError`` or
            ``ValueError`` it raises becomes a :class:`ConfigError` naming the record.
        kind: The environment's name, for the messages (``"pandora"``).
    """
    out: list[T] = []
    for i, (where, record) in enumerate(records):
        try:
            built = make(record, i)
        except KeyError as exc:
            raise ConfigError(f"task file {where}: not a {kind} task (missing field {exc.args[0]!r})") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"task file {where}: not a {kind} task ({exc})") from None
        if isinstance(built, list):
            out.extend(built)
        else:
            out.append(built)
    if not out:
        raise ConfigError(f"task file {path}: no tasks")
    return out
