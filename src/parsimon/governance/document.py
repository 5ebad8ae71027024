"""Configuration documents (TOML or YAML) that remember where each key was written.

The policy file and the gateway's configuration are validated after parsing, and a validation error must
name the line the user has to fix. :func:`load_document` parses the file (``.toml``; ``.yaml``/``.yml``)
and returns a :class:`Document`: the plain data plus :meth:`Document.line`, which maps a key path such as
``("rule", 2, "effect")`` to the 1-based line where it was written (or the nearest enclosing table's line).

For YAML the line numbers come from PyYAML's node marks, and only ``true``/``false`` are booleans (YAML 1.2),
so the rule key ``on`` is not read as ``True``. For TOML (``tomllib`` keeps no positions) they
come from a scan of the text that follows table headers (``[a.b]``, ``[[a]]``, counting array items) and
``key = value`` lines; keys inside inline tables resolve to the line of the inline table.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError

__all__ = ["Document", "DocumentError", "load_document", "parse_document"]

Path_ = tuple  # a key path: str keys and int list indices


class DocumentError(ConfigError):
    """A configuration document is malformed or invalid; the message names the file and the line."""


@dataclass
class Document:
    """Parsed data and the line of each key path."""

    data: dict[str, Any]
    source: str  # the file name (or "<string>")
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def where(self, path: Path_) -> str:
        """``file:line`` for ``path`` (``file`` alone when no line is known)."""
        line = self.line(path)
        return f"{self.source}:{line}" if line else self.source

    def error(self, path: Path_, message: str) -> DocumentError:
        """A :class:`DocumentError` ``"<file>:<line>: `a.b[2].c` <message>"``."""
        return DocumentError(f"{self.where(path)}: `{dotted(path)}` {message}")


def dotted(path: Path_) -> str:
    """``("rule", 2, "effect")`` as ``rule[2].effect``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out or "<document>"


_HEADER = re.compile(r"^\s*(\[\[?)\s*(.+?)\s*(\]\]?)\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+)(?:\s*\.\s*(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=""")


def _split_key(text: str) -> list[str]:
    parts, buf, quote = [], "", None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                buf += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(buf.strip())
            buf = ""
        else:
            buf += ch
    parts.append(buf.strip())
    return parts


def _bracket_balance(text: str) -> int:
    """Open minus closed ``[``/``{`` outside strings and comments (for values spanning lines)."""
    depth, quote = 0, None
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def _toml_lines(text: str) -> dict[Path_, int]:
    lines: dict[Path_, int] = {}
    counts: dict[tuple, int] = {}
    current: tuple = ()
    in_multiline: str | None = None
    depth = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        if depth > 0:  # inside a value that spans lines (an array)
            depth += _bracket_balance(raw)
            continue
        m = _HEADER.match(raw)
        if m and (m.group(1) == "[[") == (m.group(3) == "]]"):
            name = tuple(_split_key(m.group(2)))
            if m.group(1) == "[[":
                idx = counts.get(name, 0)
                counts[name] = idx + 1
                current = (*name, idx)
            else:
                current = name
            lines.setdefault(current, lineno)
            for i in range(1, len(current)):
                lines.setdefault(current[:i], lineno)
            continue
        k = _KEY.match(raw)
        if k:
            key = (*current, *_split_key(k.group(1)))
            lines.setdefault(key, lineno)
            rest = raw[k.end():]
            for q in ('"""', "'''"):
                if rest.count(q) % 2 == 1:
                    in_multiline = q
            if not in_multiline:
                depth = max(0, _bracket_balance(rest))
    return lines


def _yaml_loader():
    """A SafeLoader with YAML 1.2 booleans: only true/false, so the key ``on`` stays the string "on"
    (YAML 1.1 reads on/off/yes/no as booleans, and ``on: tool`` would become ``True: tool``)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                 list("tTfF"))
    return Loader


def _yaml_load(text: str, source: str) -> tuple[Any, dict[Path_, int]]:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - pyyaml ships with the gateway extra
        from parsimon.errors import DependencyNotInstalled

        raise DependencyNotInstalled("pyyaml", "gateway", "YAML policy files") from exc
    try:
        node = yaml.compose(text, Loader=_yaml_loader())
        data = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise DocumentError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    lines: dict[Path_, int] = {}

    def walk(n, path):
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                p = (*path, k.value)
                lines.setdefault(p, k.start_mark.line + 1)
                walk(v, p)
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                p = (*path, i)
                lines.setdefault(p, v.start_mark.line + 1)
                walk(v, p)

    if node is not None:
        walk(node, ())
    return data, lines


def parse_document(text: str, *, fmt: str, source: str = "<string>") -> Document:
    """Parse ``text`` as ``fmt`` (``"toml"`` or ``"yaml"``) into a :class:`Document`."""
    if fmt == "toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            # tomllib's messages end with "(at line L, column C)"
            m = re.search(r"at line (\d+)", str(exc))
            where = f"{source}:{m.group(1)}" if m else source
            raise DocumentError(f"{where}: not valid TOML: {exc}") from None
        return Document(data, source, _toml_lines(text))
    if fmt == "yaml":
        data, lines = _yaml_load(text, source)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise DocumentError(f"{source}:1: the document must be a mapping at the top level, "
                                f"got {type(data).__name__}")
        return Document(data, source, lines)
    raise ConfigError(f"`fmt` must be 'toml' or 'yaml', got {fmt!r}")


def load_document(path: str | os.PathLike) -> Document:
    """Read a ``.toml``, ``.yaml`` or ``.yml`` file into a :class:`Document`.

    Raises:
        ConfigError: The file is missing or its suffix is not one of those.
        DocumentError: It does not parse (the message names the line).
    """
    p = Path(path)
    suffix = p.suffix.lower()
    fmt = {".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(suffix)
    if fmt is None:
        raise ConfigError(f"`{p}` must end in .toml, .yaml or .yml, got {suffix or 'no suffix'!r}")
    if not p.is_file():
        raise ConfigError(f"no such file: {p}")
    return parse_document(p.read_text(encoding="utf-8"), fmt=fmt, source=str(p))
