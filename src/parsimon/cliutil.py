"""The command line's shared vocabulary: options that mean one thing in every command, and config files.

Every long command takes ``--out DIR`` (default ``runs/<command>-<UTC stamp>``), ``--seed``, ``--resume``,
``--config FILE`` and, where work can be spread, ``--ray ADDRESS``. Choices come from a
:class:`parsimon.registry.Registry`, so ``--help`` and the error messages list what the library accepts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

import typer

from parsimon.errors import ConfigError
from parsimon.registry import Registry

__all__ = [
    "apply_overrides",
    "choices",
    "config_option",
    "emit",
    "json_option",
    "load_config_file",
    "out_option",
    "ray_option",
    "resolve_config",
    "resume_option",
    "seed_option",
]


def out_option(command: str) -> Any:
    """``--out DIR``: the run folder (default ``runs/<command>-<UTC stamp>``)."""
    return typer.Option(None, "--out", metavar="DIR",
                        help=f"Run folder for config.json, events.jsonl, metrics.json and results "
                             f"(default runs/{command.replace(' ', '-')}-<UTC stamp>).")


def seed_option(default: int = 0) -> Any:
    """``--seed``: the random seed of the run."""
    return typer.Option(default, "--seed", help="Random seed of the run (recorded in config.json).")


def resume_option() -> Any:
    """``--resume``: continue the run in ``--out``."""
    return typer.Option(False, "--resume", help="Continue the run in --out from its checkpoint; the config "
                                               "must equal the saved one (differing fields are named).")


def ray_option() -> Any:
    """``--ray ADDRESS``: spread the work over Ray."""
    return typer.Option(None, "--ray", metavar="ADDRESS",
                        help="Spread the work over Ray: 'local' starts a local instance, 'auto' joins a running "
                             "cluster, or ray://HOST:PORT. Default: in this process.")


def config_option() -> Any:
    """``--config FILE``: TOML or JSON overriding config fields."""
    return typer.Option(None, "--config", metavar="FILE", exists=False,
                        help="TOML or JSON file whose keys override config fields (command-line options win).")


def choices(source: Registry | list[str] | tuple[str, ...]) -> Any:
    """A ``Literal[...]`` of a registry's names (or a declared tuple), for an option's annotation.

    Typer shows the choices in ``--help`` and rejects anything else with the list. Assign it to a
    module-level name and annotate with that name (annotations are resolved in the module's globals)::

        BackendName = choices(BACKENDS)

        def bench(backend: BackendName = typer.Option("auto", "--backend", help="Attention backend.")): ...
    """
    names = source.names() if isinstance(source, Registry) else list(source)
    if not names:
        raise ConfigError("a choice needs at least one name")
    return typing.Literal[tuple(names)]


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON file into a dict; errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"`--config` {path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"`--config` {path}: cannot be read ({exc})") from None
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"`--config` {path}: not valid TOML ({exc})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"`--config` {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"`--config` {path}: the top level must be a table/object of config fields")
    return data


def _coerce(name: str, annotation: Any, value: Any, source: str) -> Any:
    """Check and convert one override against the field's annotation (simple types only)."""
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation.split("|")[0].strip(),
                                                                                  Any)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, arg, value, source)
            except ConfigError:
                continue
        raise ConfigError(f"{source}: field `{name}` has the wrong type ({value!r})")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: field `{name}` must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{source}: field `{name}` must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{source}: field `{name}` must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{source}: field `{name}` must be a string, got {value!r}")
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value


def apply_overrides(config: Any, overrides: dict[str, Any], *, source: str = "config") -> Any:
    """``dataclasses.replace(config, **overrides)`` with unknown fields and wrong types named."""
    if not overrides:
        return config
    fields = {f.name: f for f in dataclasses.fields(config)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {unknown}; known fields: {sorted(fields)}")
    hints = typing.get_type_hints(type(config)) if not isinstance(config, type) else {}
    values = {k: _coerce(k, hints.get(k, fields[k].type), v, source) for k, v in overrides.items()}
    try:
        return dataclasses.replace(config, **values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def resolve_config(default: Any, config_file: str | os.PathLike | None, cli_values: dict[str, Any]) -> Any:
    """The run's config: the defaults, then ``--config FILE``, then the options given on the command line
    (those whose value is not None)."""
    cfg = default
    if config_file is not None:
        cfg = apply_overrides(cfg, load_config_file(config_file), source=f"`--config` {config_file}")
    given = {k: v for k, v in cli_values.items() if v is not None}
    return apply_overrides(cfg, given, source="command line")


def json_option() -> Any:
    """``--json``: print the command's result as JSON instead of text."""
    return typer.Option(False, "--json", help="Print the result as JSON instead of text.")


def emit(result: Any, as_json: bool = False) -> None:
    """Print a command's result: JSON with ``--json``, else one ``name: value`` line per leaf (nested keys
    joined with ``/``, floats to 6 significant digits)."""
    if as_json:
        typer.echo(json.dumps(result, indent=1, default=str))
        return

    def lines(obj: Any, prefix: str = ""):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from lines(v, f"{prefix}{k}/" if isinstance(v, dict) else f"{prefix}{k}")
        else:
            yield f"{prefix}: {f'{obj:.6g}' if isinstance(obj, float) else obj}"

    for line in lines(result):
        typer.echo(line)
