"""Structured output: one reply shape per call, given as a JSON schema, sent in the form each endpoint accepts.

A :class:`StructuredOutput` holds a JSON schema (a small, checked subset: objects with ordered required
properties, strings with ``enum`` / ``const`` / ``minLength`` / ``maxLength``, integers, numbers, booleans,
arrays with ``minItems`` / ``maxItems``, ``anyOf`` / ``oneOf``) and the GBNF grammar derived from it. The
chat client sends it in the first of three request forms that the endpoint has not refused, and remembers
the refusals per endpoint for the rest of the process:

1. ``json_schema`` — OpenAI's ``response_format={"type": "json_schema", "json_schema": {...}}`` (OpenAI,
   vLLM, llama.cpp's own ``llama-server``);
2. ``grammar`` — our GBNF grammar in the request's ``grammar`` field (llama-cpp-python's server, the local
   model here, which answers the OpenAI form with HTTP 500 "Input should be 'text' or 'json_object'";
   llama.cpp);
3. ``json_object`` — ``response_format={"type": "json_object", "schema": {...}}`` (llama-cpp-python's own
   schema conversion, last because it expands ``maxLength: N`` into N nested rules: at N = 1200 its grammar
   fails to parse and the 0.3.36 server process dies with SIGSEGV; our grammar uses ``char{0,N}``).

An endpoint that accepts none of them gets the plain request; the reply is parsed and validated here, and a
reply that does not validate is asked for once more with the error (mode ``fallback``). Every reply says
which mode produced it: ``constrained-schema``, ``constrained-grammar``, ``fallback`` or ``free`` (no
structure requested).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from parsimon.errors import ConfigError, MalformedReply

__all__ = [
    "FORMS",
    "MODES",
    "OUTPUT_MODES",
    "EndpointSupport",
    "StructuredError",
    "StructuredOutput",
    "endpoint_support",
    "extract_json",
    "forget_endpoint_support",
    "schema_to_gbnf",
    "validate_json",
]

# What an agent asks for: structured replies (constrained where the endpoint can) or the paper's free text.
OUTPUT_MODES = ("constrained", "free")
# The modes a reply can come from; "free" = no structure was asked for.
MODES = ("constrained-schema", "constrained-grammar", "fallback", "free")
# Request forms, in the order they are tried (the OpenAI form first: an endpoint that knows it honours it).
FORMS = ("json_schema", "grammar", "json_object")
MODE_OF_FORM = {"json_schema": "constrained-schema", "json_object": "constrained-schema",
                "grammar": "constrained-grammar"}
# Words an endpoint's refusal names when it rejects a form (checked in the error body, lower case).
_FORM_WORDS = {"json_schema": ("response_format", "json_schema"), "json_object": ("response_format", "schema"),
               "grammar": ("grammar",)}
_REFUSAL_STATUS = frozenset({400, 404, 415, 422, 500, 501})
# Replies that break a constrained form this often, with none that kept it, show the endpoint ignores it.
VIOLATIONS_TO_DEMOTE = 2

_KEYWORDS = {"type", "properties", "required", "additionalProperties", "enum", "const", "minLength", "maxLength",
             "items", "minItems", "maxItems", "anyOf", "oneOf", "description", "title"}


class StructuredError(MalformedReply, ValueError):
    """A reply is not a JSON value of the requested shape."""


# ------------------------------------------------------------------------------------------- the schema subset

def _check(schema: Any, path: str) -> None:
    if not isinstance(schema, dict):
        raise ConfigError(f"`schema` at {path} must be a JSON-schema object, got {type(schema).__name__}")
    unknown = set(schema) - _KEYWORDS
    if unknown:
        raise ConfigError(f"`schema` at {path} uses unsupported keyword(s) {sorted(unknown)}; supported: "
                          f"{sorted(_KEYWORDS)}")
    alts = schema.get("anyOf") or schema.get("oneOf")
    if alts is not None:
        if not isinstance(alts, list) or not alts:
            raise ConfigError(f"`schema` at {path}: anyOf/oneOf must be a non-empty list")
        for i, alt in enumerate(alts):
            _check(alt, f"{path}/anyOf/{i}")
        return
    if "enum" in schema:
        if not isinstance(schema["enum"], list) or not schema["enum"]:
            raise ConfigError(f"`schema` at {path}: enum must be a non-empty list")
        return
    if "const" in schema:
        return
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        missing = [k for k in props if k not in (schema.get("required") or [])]
        if missing:
            raise ConfigError(f"`schema` at {path}: every property must be required (missing {missing})")
        if schema.get("additionalProperties", False) is not False:
            raise ConfigError(f"`schema` at {path}: additionalProperties must be false")
        for k, sub in props.items():
            _check(sub, f"{path}/{k}")
    elif kind == "array":
        _check(schema.get("items", {}), f"{path}/items")
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if lo < 0 or (hi is not None and hi < max(lo, 1)):
            raise ConfigError(f"`schema` at {path}: need 0 <= minItems <= maxItems and maxItems >= 1")
    elif kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if lo < 0 or (hi is not None and hi < lo):
            raise ConfigError(f"`schema` at {path}: need 0 <= minLength <= maxLength")
    elif kind not in ("integer", "number", "boolean", "null"):
        raise ConfigError(f"`schema` at {path}: type must be one of object, array, string, integer, number, "
                          f"boolean, null (or use enum/const/anyOf), got {kind!r}")


def validate_json(value: Any, schema: dict, path: str = "$") -> None:
    """Raise :class:`StructuredError` naming the first place where ``value`` breaks ``schema`` (the subset)."""
    alts = schema.get("anyOf") or schema.get("oneOf")
    if alts is not None:
        errors = []
        for alt in alts:
            try:
                validate_json(value, alt, path)
                return
            except StructuredError as exc:
                errors.append(str(exc))
        raise StructuredError(f"{path} matches none of the {len(alts)} allowed forms ({'; '.join(errors[:3])})")
    if "enum" in schema:
        if value not in schema["enum"]:
            shown = ", ".join(json.dumps(v) for v in schema["enum"][:8])
            more = f" and {len(schema['enum']) - 8} more" if len(schema["enum"]) > 8 else ""
            raise StructuredError(f"{path} must be one of {shown}{more}; got {json.dumps(value)[:80]}")
        return
    if "const" in schema:
        if value != schema["const"]:
            raise StructuredError(f"{path} must be {json.dumps(schema['const'])}; got {json.dumps(value)[:80]}")
        return
    kind = schema.get("type")
    ok = {"object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
          "integer": isinstance(value, int) and not isinstance(value, bool),
          "number": isinstance(value, (int, float)) and not isinstance(value, bool),
          "boolean": isinstance(value, bool), "null": value is None}[kind]
    if not ok:
        raise StructuredError(f"{path} must be a JSON {kind}; got {json.dumps(value)[:80]}")
    if kind == "object":
        props = schema.get("properties") or {}
        for k in props:
            if k not in value:
                raise StructuredError(f"{path} lacks the field {k!r}")
        extra = [k for k in value if k not in props]
        if extra:
            raise StructuredError(f"{path} has unexpected field(s) {extra[:5]}")
        for k, sub in props.items():
            validate_json(value[k], sub, f"{path}.{k}")
    elif kind == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if len(value) < lo or (hi is not None and len(value) > hi):
            raise StructuredError(f"{path} must hold {lo}..{hi if hi is not None else 'any'} items; got {len(value)}")
        for i, item in enumerate(value):
            validate_json(item, schema.get("items", {}), f"{path}[{i}]")
    elif kind == "string":
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if len(value) < lo or (hi is not None and len(value) > hi):
            raise StructuredError(f"{path} must be {lo}..{hi if hi is not None else 'any'} characters long; "
                                  f"got {len(value)}")


# ------------------------------------------------------------------------------------------- GBNF

def _gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal (UTF-8 kept; quotes, backslashes and control characters escaped)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value: Any) -> str:
    return _gbnf_literal(json.dumps(value, ensure_ascii=False))


_BASE_RULES = {
    "ws": '[ ]?',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": r'"\"" char* "\""',
    "integer": '"-"? ([0-9] | [1-9] [0-9]{1,15})',
    "number": 'integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
}


class _Grammar:
    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self.by_body: dict[str, str] = {}
        self.used: set[str] = set()

    def rule(self, body: str, hint: str) -> str:
        if body in self.by_body:
            return self.by_body[body]
        base = re.sub(r"[^a-zA-Z0-9]+", "-", hint).strip("-").lower() or "r"
        name, i = base, 1
        while name in self.rules or name in _BASE_RULES or name == "root":
            i += 1
            name = f"{base}-{i}"
        self.rules[name] = body
        self.by_body[body] = name
        return name

    def base(self, name: str) -> str:
        self.used.add(name)
        if name == "number":
            self.used.add("integer")
        if name == "string":
            self.used.add("char")
        return name

    def visit(self, schema: dict, hint: str) -> str:
        alts = schema.get("anyOf") or schema.get("oneOf")
        if alts is not None:
            names = [self.visit(a, f"{hint}-{i}") for i, a in enumerate(alts)]
            return self.rule(" | ".join(names), hint)
        if "enum" in schema:
            return self.rule(" | ".join(_json_literal(v) for v in schema["enum"]), hint)
        if "const" in schema:
            return self.rule(_json_literal(schema["const"]), hint)
        kind = schema["type"]
        if kind == "object":
            parts = []
            for i, (k, sub) in enumerate((schema.get("properties") or {}).items()):
                sep = '"," ws ' if i else ""
                parts.append(f'{sep}{_json_literal(k)} ws ":" ws {self.visit(sub, f"{hint}-{k}")} ws')
            self.base("ws")
            return self.rule('"{" ws ' + " ".join(parts) + ' "}"', hint)
        if kind == "array":
            item = self.visit(schema.get("items", {}), f"{hint}-item")
            lo, hi = schema.get("minItems", 0), schema.get("maxItems")
            self.base("ws")
            more = f"{{{max(lo - 1, 0)},{'' if hi is None else hi - 1}}}"
            seq = f'{item} ("," ws {item}){more}'
            body = f'"[" ws {seq} ws "]"' if lo >= 1 else f'"[" ws ({seq})? ws "]"'
            return self.rule(body, hint)
        if kind == "string":
            lo, hi = schema.get("minLength", 0), schema.get("maxLength")
            if lo == 0 and hi is None:
                return self.base("string")
            self.base("char")
            rep = f"{{{lo},{'' if hi is None else hi}}}"
            return self.rule(f'"\\"" char{rep} "\\""', hint)
        return self.base(kind)

    def text(self, root: str) -> str:
        lines = [f"root ::= {root}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        lines += [f"{name} ::= {_BASE_RULES[name]}" for name in _BASE_RULES if name in self.used]
        return "\n".join(lines) + "\n"


def schema_to_gbnf(schema: dict) -> str:
    """The GBNF grammar (llama.cpp's format) of the compact JSON texts that satisfy ``schema``.

    Only the subset described in the module docstring is accepted (raises :class:`ConfigError` otherwise).
    Whitespace between tokens is limited to one optional space, so a model cannot run away in blanks.
    """
    _check(schema, "#")
    g = _Grammar()
    return g.text(g.visit(schema, "value"))


def _openai_strict(schema: dict) -> bool:
    """True when ``schema`` meets OpenAI's strict mode (root object; all objects closed, all fields required)."""
    if schema.get("type") != "object":
        return False

    def ok(s: dict) -> bool:
        alts = s.get("anyOf") or s.get("oneOf")
        if alts is not None:
            return "oneOf" not in s and all(ok(a) for a in alts)
        if s.get("type") == "object":
            return all(ok(sub) for sub in (s.get("properties") or {}).values())
        if s.get("type") == "array":
            return ok(s.get("items", {}))
        return True

    return ok(schema)


# ------------------------------------------------------------------------------------------- replies

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_json(text: str) -> Any:
    """The first JSON value in ``text``: the whole text, a fenced ```json block, or the first decodable
    ``{...}`` / ``[...]``. Raises :class:`StructuredError` when there is none."""
    if not isinstance(text, str) or not text.strip():
        raise StructuredError("the reply is empty")
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    for m in _FENCE.finditer(stripped):
        try:
            return json.loads(m.group(1))
        except json.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", stripped):
        try:
            return decoder.raw_decode(stripped, m.start())[0]
        except json.JSONDecodeError:
            continue
    raise StructuredError(f"the reply holds no JSON value: {stripped[:120]!r}")


@dataclass(frozen=True)
class StructuredOutput:
    """The shape of one reply: a JSON schema, and the GBNF grammar derived from it unless one is given.

    Args:
        schema: a JSON schema in the supported subset (see the module docstring).
        name: a short name for the shape (OpenAI's ``json_schema.name``).
        grammar: a GBNF grammar to send instead of the derived one (it must produce JSON that the schema
            accepts; replies are validated against the schema either way).
        description: what a re-ask tells the model about the expected reply (default: the schema).

    Example:
        >>> out = StructuredOutput({"type": "object", "properties": {"ok": {"type": "boolean"}},
        ...                         "required": ["ok"]})
        >>> out.parse('Sure: {"ok": true}')
        {'ok': True}
    """

    schema: dict
    name: str = "reply"
    grammar: str = ""
    description: str = ""
    strict: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ConfigError(f"`name` must be 1-64 letters, digits, '_' or '-', got {self.name!r}")
        derived = schema_to_gbnf(self.schema)  # also checks the schema
        object.__setattr__(self, "grammar", self.grammar or derived)
        object.__setattr__(self, "strict", _openai_strict(self.schema))
        if not self.description:
            object.__setattr__(self, "description", json.dumps(self.schema, separators=(",", ":"))[:2000])

    def parse(self, text: str) -> Any:
        """The validated JSON value of a reply; raises :class:`StructuredError` saying what is wrong."""
        value = extract_json(text)
        validate_json(value, self.schema)
        return value

    def request_fields(self, form: str) -> dict[str, Any]:
        """The request-body fields that ask an endpoint for this shape in ``form`` (one of :data:`FORMS`)."""
        if form == "json_schema":
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": self.name, "schema": self.schema, "strict": self.strict}}}
        if form == "json_object":
            return {"response_format": {"type": "json_object", "schema": self.schema}}
        if form == "grammar":
            return {"grammar": self.grammar}
        raise ConfigError(f"`form` must be one of {FORMS}, got {form!r}")

    def reask(self, error: str) -> str:
        """The user turn that asks again after a reply that did not validate."""
        return (f"Your reply could not be used: {error}. Reply again with only a JSON value of this shape, "
                f"nothing else: {self.description}")


def refuses_form(form: str, status: int, body: str) -> bool:
    """True when an error reply (``status``, ``body``) says the endpoint does not take request form ``form``."""
    text = body.lower()
    return status in _REFUSAL_STATUS and any(word in text for word in _FORM_WORDS[form])


# ------------------------------------------------------------------------------------------- per-endpoint support

@dataclass
class EndpointSupport:
    """What one endpoint (base URL and model) has shown about the request forms, for this process.

    ``forms[form]`` is False once the endpoint refused the form (or ignored it: replies that broke it
    :data:`VIOLATIONS_TO_DEMOTE` times with none that kept it), True once a reply kept it.
    """

    forms: dict[str, bool] = field(default_factory=dict)
    violations: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def usable(self) -> list[str]:
        with _LOCK:
            return [f for f in FORMS if self.forms.get(f) is not False]

    def refused(self, form: str, reason: str) -> None:
        with _LOCK:
            self.forms[form] = False
            self.reasons[form] = reason[:300]

    def kept(self, form: str) -> None:
        with _LOCK:
            self.forms[form] = True

    def broken(self, form: str) -> bool:
        """Count a reply that broke ``form``; True when the form is now taken as ignored by the endpoint."""
        with _LOCK:
            self.violations[form] = self.violations.get(form, 0) + 1
            if self.forms.get(form) is not True and self.violations[form] >= VIOLATIONS_TO_DEMOTE:
                self.forms[form] = False
                self.reasons[form] = f"{self.violations[form]} replies ignored the constraint"
                return True
            return False


_LOCK = threading.Lock()
_SUPPORT: dict[tuple[str, str], EndpointSupport] = {}


def endpoint_support(base_url: str, model: str) -> EndpointSupport:
    """The (process-wide, cached) :class:`EndpointSupport` of an endpoint."""
    with _LOCK:
        return _SUPPORT.setdefault((base_url.rstrip("/"), model), EndpointSupport())


def forget_endpoint_support() -> None:
    """Forget every endpoint's cached support (tests; an endpoint that was upgraded)."""
    with _LOCK:
        _SUPPORT.clear()
