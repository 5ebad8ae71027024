"""One run shape for every long job: training, evaluation, solving, evolution, reproduction.

A run is a folder::

    <out>/
      config.json     the resolved frozen config, seed, parsimon version, git commit, argv, Python/torch/
                      Triton versions, device (written once; a resume must match it)
      run.json        id, name, status (running / ok / failed / interrupted), times, wall seconds
      events.jsonl    scalars (``run.log``) and feedback events (plan, step_started, step_result, final,
                      error), one JSON object per line
      metrics.json    a flat ``{name: number | string | bool | null}`` of the run's results
      checkpoint.pt   the last checkpoint, written atomically, with the RNG states (``run.save_checkpoint``)
      figures/        plots

Open one with :func:`start_run`. Inside it, every ledger charge and proof-of-action record carries the
run's id (a :func:`parsimon.governance.run_scope` is open), and at the end the run charges its wall
seconds (and GPU seconds when CUDA was used) to the ledger.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with start_run("demo", {"lr": 0.1}, out_dir=d + "/r", seed=3, ledger=False) as run:
    ...         run.log(step=1, loss=0.5)
    ...         run.set_metrics(loss=0.5)
    ...     read_run(d + "/r")["status"], read_run(d + "/r")["metrics"]["loss"]
    ('ok', 0.5)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import json
import math
import os
import pickle
import platform
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from parsimon import __version__
from parsimon._closing import Closing
from parsimon.errors import BudgetExceeded, ConfigError

__all__ = [
    "Run",
    "Result",
    "config_to_dict",
    "default_out",
    "diff_configs",
    "find_runs",
    "flatten_metrics",
    "read_run",
    "start_run",
]

CONFIG_FILE = "config.json"
STATUS_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"
FIGURES_DIR = "figures"
STATUSES = ("running", "ok", "failed", "interrupted")


def _utc() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_out(command: str, root: str | os.PathLike = "runs") -> Path:
    """``runs/<command>-<UTC yyyymmdd-hhmmss>`` (with a suffix if that folder exists already)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{command.replace(' ', '-')}-{stamp}"
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def _jsonable(value: Any) -> Any:
    """Plain JSON types for a config value (paths and enums as strings, tuples as lists)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config (frozen dataclass, mapping or None) as a JSON-ready dict."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return _jsonable(config)
    if isinstance(config, Mapping):
        return _jsonable(dict(config))
    raise ConfigError(f"`config` must be a dataclass instance or a mapping, got {type(config).__name__}")


def diff_configs(saved: Mapping[str, Any], given: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The fields that differ between two config dicts, as ``"field: saved -> given"`` lines."""
    out: list[str] = []
    for key in sorted(set(saved) | set(given)):
        a, b = saved.get(key, "<absent>"), given.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.extend(diff_configs(a, b, prefix=name + "."))
        elif a != b:
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def flatten_metrics(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened with ``/`` (``{"a": {"b": 1}}`` → ``{"a/b": 1}``); values made JSON-ready."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, prefix=name + "/"))
        else:
            if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
                try:
                    value = value.item()
                except (TypeError, ValueError):
                    pass
            v = _jsonable(value)
            if isinstance(v, (list, dict)):
                raise ConfigError(f"metric {name!r} must be a number, a string, a bool or None, got {value!r}")
            out[name] = v
    return out


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True, allow_nan=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _git_commit() -> str | None:
    """The commit of the checkout parsimon is imported from, or None (an installed wheel has none)."""
    pkg = Path(__file__).resolve().parent
    root = pkg.parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment_info() -> dict[str, Any]:
    """Versions and device: Python, platform, torch, Triton, CUDA device (where importable)."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "parsimon": __version__, "git_commit": _git_commit()}
    torch = sys.modules.get("torch")
    if torch is None:
        with contextlib.suppress(ImportError):
            import torch  # noqa: F811
    if torch is not None:
        info["torch"] = torch.__version__
        info["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    else:
        info["device"] = "cpu"
    triton = sys.modules.get("triton")
    if triton is not None:
        info["triton"] = getattr(triton, "__version__", None)
    else:
        try:
            from importlib.metadata import version

            info["triton"] = version("triton")
        except Exception:  # noqa: BLE001 - absent or broken metadata
            info["triton"] = None
    return info


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate()}
    np = sys.modules.get("numpy")
    if np is not None:
        state["numpy"] = np.random.get_state()
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        import numpy as np

        np.random.set_state(state["numpy"])
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])
        if "torch_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["torch_cuda"])


def _save_state(path: Path, state: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.save(state, tmp)
    else:
        with open(tmp, "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_state(path: Path) -> Any:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"PK":  # torch's zip format
        import torch

        return torch.load(path, map_location="cpu", weights_only=False)
    with open(path, "rb") as fh:
        return pickle.load(fh)


class _EventsSink:
    """Feedback events appended to the run's ``events.jsonl``."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def emit(self, event: Any) -> None:
        d = event.as_dict()
        kind = d.pop("kind")
        self.run._append_event({"type": kind, **d})


class _RunProgress(Closing):
    """A progress handle of a run: ``advance``/``update``; prints on a terminal or periodically without one."""

    def __init__(self, run: Run, description: str, total: int | None) -> None:
        from parsimon.progress import TaskBar

        self.run, self.description, self.total = run, description, total
        self.done = 0
        self._bar = TaskBar(description, total, enabled=run.show_progress, transient=True)

    def advance(self, n: float = 1) -> None:
        self.done += n
        self._bar.advance(n)

    def update(self, *, completed: float | None = None, description: str | None = None,
               total: float | None = None) -> None:
        if completed is not None:
            self.done = completed
        self._bar.update(**{k: v for k, v in (("completed", completed), ("description", description),
                                              ("total", total)) if v is not None})

    def close(self) -> None:
        self._bar.close()


class Run:
    """An open run (made by :func:`start_run`; do not build one directly).

    Attributes:
        id: The run id (``run-<UTC stamp>-<hex>``), on every ledger and audit record made inside it.
        name: What kind of job it is (``"games solve"``, ``"latents train"``); also its ledger component.
        dir: The run folder.
        config: The resolved config as a dict (what ``config.json`` holds under ``"config"``).
        seed: The run's seed.
        resumed: True when the run continues an earlier one in the same folder.
        feedback: The run's :class:`~parsimon.governance.FeedbackEmitter` (its events go to ``events.jsonl``
            and to the sinks given to :func:`start_run`).
    """

    def __init__(self, *, run_id: str, name: str, directory: Path, config: dict[str, Any], seed: int,
                 resumed: bool, show_progress: bool, feedback: Any) -> None:
        self.id, self.name, self.dir = run_id, name, directory
        self.config, self.seed, self.resumed = config, seed, resumed
        self.show_progress = show_progress
        self.feedback = feedback
        self._lock = threading.Lock()
        self._metrics: dict[str, Any] = {}
        mpath = directory / METRICS_FILE
        if resumed and mpath.is_file():
            with contextlib.suppress(OSError, ValueError):
                self._metrics = dict(_read_json(mpath))
        self._step = 0

    # -- files
    def path(self, *parts: str) -> Path:
        """A path inside the run folder (parents created)."""
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def figure(self, name: str) -> Path:
        """Where to save a figure (``figures/<name>``)."""
        return self.path(FIGURES_DIR, name)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``obj`` as JSON into the run folder, atomically."""
        p = self.path(name)
        _write_json(p, obj)
        return p

    # -- events and metrics
    def _append_event(self, record: dict[str, Any]) -> None:
        line = json.dumps({"t": time.time(), **record}, sort_keys=True, default=str, allow_nan=True)
        with self._lock, open(self.dir / EVENTS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def log(self, step: int | None = None, **scalars: Any) -> None:
        """Append scalars (``loss=0.3``) at ``step`` to ``events.jsonl``."""
        values = flatten_metrics(scalars)
        self._append_event({"type": "scalars", "step": step, **values})

    def set_metrics(self, values: Mapping[str, Any] | None = None, /, **more: Any) -> dict[str, Any]:
        """Merge flat metrics into ``metrics.json`` (nested dicts are flattened with ``/``); returns all."""
        new = flatten_metrics({**(values or {}), **more})
        with self._lock:
            self._metrics.update(new)
            _write_json(self.dir / METRICS_FILE, self._metrics)
            return dict(self._metrics)

    @property
    def metrics(self) -> dict[str, Any]:
        """The metrics written so far."""
        return dict(self._metrics)

    # -- progress and steps
    def progress(self, description: str, total: int | None = None) -> _RunProgress:
        """A progress handle: ``with run.progress("epochs", total=10) as bar: bar.advance()``."""
        return _RunProgress(self, description, total)

    @contextlib.contextmanager
    def step(self, message: str, *, action: str | None = None) -> Iterator[dict[str, Any]]:
        """A named stage: emits ``step_started`` and, on exit, ``step_result`` with what the block put in
        the yielded dict under ``"result"`` (or an ``error`` event if it raised)."""
        self._step += 1
        n = self._step
        self.feedback.step_started(message, step=n, action=action)
        out: dict[str, Any] = {}
        try:
            yield out
        except BaseException as exc:
            self.feedback.error(f"{message}: {type(exc).__name__}: {exc}", step=n)
            raise
        self.feedback.step_result(str(out.get("result") or f"{message}: done"), step=n, action=action,
                                  verified=out.get("verified"), data={k: v for k, v in out.items()
                                                                      if k not in ("result", "verified")})

    # -- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        """The run's checkpoint file."""
        return self.dir / CHECKPOINT_FILE

    def save_checkpoint(self, state: Mapping[str, Any]) -> Path:
        """Write ``state`` plus the global RNG states (Python, NumPy, torch) atomically.

        Put everything else needed for an exact resume in ``state``: model and optimizer state dicts,
        the step, the state of the job's own generators.
        """
        payload = {"state": dict(state), "rng": _rng_state(), "run_id": self.id, "saved_utc": _utc()}
        _save_state(self.checkpoint_path, payload)
        return self.checkpoint_path

    def load_checkpoint(self, *, restore_rng: bool = True) -> dict[str, Any] | None:
        """The ``state`` of the last checkpoint (None if there is none); restores the RNG states."""
        if not self.checkpoint_path.is_file():
            return None
        try:
            payload = _load_state(self.checkpoint_path)
        except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's to know about
            raise ConfigError(f"checkpoint {self.checkpoint_path} cannot be read ({type(exc).__name__}: {exc}); "
                              "delete it to start over") from None
        if restore_rng:
            _set_rng_state(payload.get("rng", {}))
        return payload["state"]

    # -- ledger
    def charge(self, **amounts: Any) -> None:
        """Charge the ledger under this run (component = the run's name unless given)."""
        from parsimon.governance import get_ledger

        amounts.setdefault("component", self.name)
        get_ledger().charge(run=self.id, **amounts)


def read_run(path: str | os.PathLike) -> dict[str, Any]:
    """What a run folder holds: ``run.json`` fields plus ``config`` (config.json) and ``metrics``."""
    path = Path(path)
    status_file, config_file = path / STATUS_FILE, path / CONFIG_FILE
    if not config_file.is_file():
        raise ConfigError(f"`run` {path} is not a run folder (no {CONFIG_FILE})")
    try:
        cfg = _read_json(config_file)
        status = _read_json(status_file) if status_file.is_file() else {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"`run` {path}: unreadable run files ({exc})") from None
    metrics: dict[str, Any] = {}
    mpath = path / METRICS_FILE
    if mpath.is_file():
        with contextlib.suppress(OSError, ValueError):
            metrics = _read_json(mpath)
    return {**status, "dir": str(path), "config": cfg, "metrics": metrics,
            "run_id": status.get("run_id") or cfg.get("run_id"), "name": status.get("name") or cfg.get("name"),
            "status": status.get("status", "unknown")}


def find_runs(root: str | os.PathLike, *, max_depth: int = 4) -> list[Path]:
    """Every run folder under ``root`` (``root`` itself included), up to ``max_depth`` levels down."""
    root = Path(root)
    found: list[Path] = []

    def walk(p: Path, depth: int) -> None:
        if (p / CONFIG_FILE).is_file() and (p / STATUS_FILE).is_file():
            found.append(p)
        if depth >= max_depth:
            return
        try:
            children = sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))
        except OSError:
            return
        for c in children:
            walk(c, depth + 1)

    if root.is_dir():
        walk(root, 0)
    return found


def _check_out_dir(out: Path) -> None:
    """Fail before any work when the run folder cannot be created or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".parsimon-write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"`out` {out} cannot be written: {exc.strerror or exc}") from None


def _cuda_used() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


@contextlib.contextmanager
def start_run(name: str, config: Any = None, *, out_dir: str | os.PathLike | None = None, seed: int = 0,
              resume: bool = False, workflow: str | None = None, feedback: Any = "plan_and_results",
              sinks: tuple = (), progress: bool = True, ledger: bool = True,
              argv: list[str] | None = None) -> Iterator[Run]:
    """Open a run folder, enter a ``run_scope`` and yield a :class:`Run`; close it with its status.

    Args:
        name: The job (``"games solve"``); the default folder is ``runs/<name>-<UTC stamp>``.
        config: The resolved config: a frozen dataclass or a mapping (written to ``config.json``).
        out_dir: The run folder. It must not hold another run unless ``resume`` is true.
        seed: The run's seed (recorded; a resume must use the same).
        resume: Continue the run in ``out_dir``: its config and seed must equal the saved ones (the
            differing fields are named otherwise). With no run there yet, a fresh run starts.
        workflow: The ledger/audit workflow tag (default: ``name``).
        feedback: A feedback policy name or object for the run's events (see
            :mod:`parsimon.governance.feedback`).
        sinks: More feedback sinks (a terminal sink, a callback).
        progress: Show progress bars (on a terminal) or periodic progress lines (without one).
        ledger: Charge the run's wall seconds (and GPU seconds) to the ledger at the end.
        argv: The command line to record (default ``sys.argv``).

    Raises:
        ConfigError: ``out_dir`` cannot be written, holds a different run, or the resumed config differs.
    """
    from parsimon.governance.feedback import FeedbackEmitter
    from parsimon.governance.scope import new_run_id, run_scope

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"`name` must be a non-empty string, got {name!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"`seed` must be an int, got {seed!r}")
    cfg = config_to_dict(config)
    out = Path(out_dir) if out_dir is not None else default_out(name)
    config_file = out / CONFIG_FILE
    resumed = False
    if config_file.is_file():
        try:
            saved = _read_json(config_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"`out` {out}: {CONFIG_FILE} is unreadable ({exc})") from None
        if not resume:
            raise ConfigError(f"`out` {out} already holds a run ({saved.get('run_id')}); pass --resume to "
                              "continue it, or choose another folder")
        diffs = diff_configs({"name": saved.get("name"), "seed": saved.get("seed"), **saved.get("config", {})},
                             {"name": name, "seed": seed, **cfg})
        if diffs:
            raise ConfigError(f"cannot resume {out}: the config differs from the saved run in "
                              f"{len(diffs)} field(s): " + "; ".join(diffs))
        run_id = saved["run_id"]
        resumed = True
        status = _read_json(out / STATUS_FILE) if (out / STATUS_FILE).is_file() else {}
    else:
        _check_out_dir(out)
        run_id = new_run_id()
        info = environment_info()
        record = {"run_id": run_id, "name": name, "seed": seed, "config": cfg, "created_utc": _utc(),
                  "argv": list(sys.argv if argv is None else argv), **info}
        _write_json(config_file, record)
        status = {}
    _check_out_dir(out)
    status.update({"run_id": run_id, "name": name, "status": "running", "updated_utc": _utc(),
                   "pid": os.getpid()})
    status.setdefault("started_utc", _utc())
    status.setdefault("wall_s", 0.0)
    status["resumes"] = int(status.get("resumes", -1)) + 1
    _write_json(out / STATUS_FILE, status)

    run = Run(run_id=run_id, name=name, directory=out, config=cfg, seed=seed, resumed=resumed,
              show_progress=progress, feedback=None)
    run.feedback = FeedbackEmitter(feedback, sinks=[_EventsSink(run), *sinks])
    t0 = time.perf_counter()
    final_status = "failed"
    error: BaseException | None = None
    with run_scope(run=run_id, workflow=workflow or name):
        run.feedback.plan(f"{name}: {'resumed' if resumed else 'started'} in {out}",
                          data={"seed": seed, "run_id": run_id})
        try:
            yield run
            final_status = "ok"
        except KeyboardInterrupt as exc:
            final_status, error = "interrupted", exc
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            wall = time.perf_counter() - t0
            if error is not None:
                run.feedback.error(f"{name}: {type(error).__name__}: {error}")
            else:
                shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in list(run.metrics.items())[:6])
                run.feedback.final(f"{name}: done in {wall:.1f} s" + (f" ({shown})" if shown else ""))
            if ledger:
                try:
                    amounts = {"wall_s": wall}
                    if _cuda_used():
                        amounts["gpu_s"] = wall
                    run.charge(**amounts)
                except BudgetExceeded as exc:  # the time is spent already; say so, do not hide the result
                    run._append_event({"type": "ledger", "message": f"wall-time charge refused: {exc}"})
                except Exception as exc:  # noqa: BLE001 - a broken store must not lose the run's results
                    run._append_event({"type": "ledger", "message": f"ledger charge failed: {exc}"})
            status.update({"status": final_status, "updated_utc": _utc(), "finished_utc": _utc(),
                           "wall_s": float(status.get("wall_s", 0.0)) + wall})
            if error is not None:
                status["error"] = f"{type(error).__name__}: {error}"[:2000]
            else:
                status.pop("error", None)
            with contextlib.suppress(OSError):
                _write_json(out / STATUS_FILE, status)


class Result:
    """What every job's result object shares: ``to_dict()`` and ``final`` (the headline number).

    Subclasses (dataclasses) name the attribute that holds the headline number in ``FINAL``, e.g.
    ``FINAL = "final_exploitability"`` or ``FINAL = "mean_reward"``.
    """

    FINAL: str = ""

    @property
    def final(self) -> float | None:
        """The headline number (the attribute named by ``FINAL``)."""
        return getattr(self, self.FINAL) if self.FINAL else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the result's fields."""
        if dataclasses.is_dataclass(self):
            return _jsonable(self)
        return _jsonable(vars(self))
