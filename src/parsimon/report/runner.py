"""``parsimon reproduce``: find each subpackage's ``reproduce.py``, run each as a run, write the report.

Each section is a :mod:`parsimon.run` run named ``reproduce <name>`` in ``<out>/<name>/`` (config.json,
run.json, events.jsonl, metrics.json beside the section's figures), so ``parsimon runs list <out>`` shows
every section with its status and spend, and the report links each section's run folder.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import platform
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from parsimon.errors import ConfigError
from parsimon.report.section import ReproContext, Section

__all__ = ["SUBPACKAGES", "available", "run_reproduce", "select"]

# Report order, and the `--only` choices of `parsimon reproduce`. A subpackage without a reproduce module
# is skipped with a note (or, when named with --only, is an error).
SUBPACKAGES = ["governance", "llm", "attention", "latents", "cta", "gui", "games"]


def _find(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"parsimon.{name}.reproduce")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == f"parsimon.{name}" or exc.name.startswith(f"parsimon.{name}.reproduce")):
            return None
        raise


def available() -> list[str]:
    """The subpackages of :data:`SUBPACKAGES` that have a reproduce module in this installation."""
    return [name for name in SUBPACKAGES if _find(name) is not None]


def select(only: list[str] | None) -> tuple[list[tuple[str, ModuleType]], list[str]]:
    """``([(name, reproduce module)], [skipped names])`` for ``only`` (default: every subpackage).

    Raises:
        ConfigError: ``only`` names something that is not a subpackage, or a subpackage that has no
            reproduce module in this installation (the message lists those that have one).
    """
    names = list(dict.fromkeys(only)) if only else list(SUBPACKAGES)
    unknown = [n for n in names if n not in SUBPACKAGES]
    if unknown:
        raise ConfigError(f"`only` must name subpackages among {SUBPACKAGES}, got {unknown}")
    found = [(n, _find(n)) for n in names]
    missing = [n for n, mod in found if mod is None]
    if only and missing:
        raise ConfigError(f"`--only` {', '.join(missing)}: not in this installation (no "
                          f"{', '.join(f'parsimon.{n}.reproduce' for n in missing)}); the sections available are "
                          f"{available()}")
    return [(n, mod) for n, mod in found if mod is not None], missing


def _section_metrics(section: Section) -> dict[str, Any]:
    verdicts = [c.reproduced for c in section.claims]
    return {"claims": len(verdicts), "claims_reproduced": sum(v is True for v in verdicts),
            "claims_not_reproduced": sum(v is False for v in verdicts), "tables": len(section.tables),
            "figures": len(section.figures)}


def _run_section(name: str, mod: ModuleType, out: Path, *, full: bool, seed: int, progress: Any) -> Section:
    """One section as the run ``reproduce <name>`` in ``out/<name>``; a failure is reported in the section."""
    from parsimon.run import start_run

    folder = out / name
    ctx = ReproContext(out_dir=folder, full=full, seed=seed, progress_impl=progress)
    t0 = time.perf_counter()
    run_id = ""
    try:
        with start_run(f"reproduce {name}", {"section": name, "full": full}, out_dir=folder, seed=seed,
                       progress=progress is not None) as run:
            ctx.run, run_id = run, run.id
            section = mod.reproduce(ctx)
            run.set_metrics(_section_metrics(section))
    except Exception as exc:  # a failed section is reported (and its run marked failed); the others still run
        section = Section(name=name, paper=getattr(mod, "PAPER", name))
        section.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    section.seconds = time.perf_counter() - t0
    section.run_dir, section.run_id = name, run_id
    return section


def _meta(stamp: str, full: bool, seed: int, skipped: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"created_utc": stamp, "mode": "full" if full else "quick", "seed": seed,
                            "python": platform.python_version(), "machine": platform.platform(), "skipped": skipped}
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return meta


def run_reproduce(
    only: list[str] | None = None,
    *,
    full: bool = False,
    out: Path | None = None,
    seed: int = 0,
    progress=None,
    console=None,
) -> Path:
    """Run the reproductions and write ``<out>/index.html``; return the path of the HTML file.

    Args:
        only: subpackage names to run (default: all that have a ``reproduce.py``).
        full: run the larger settings instead of the quick ones.
        out: output folder (default ``reports/<UTC timestamp>``); one run folder per section inside.
        seed: the seed every reproduction starts from.
        progress: a ``rich.progress.Progress`` (or :class:`parsimon.progress.PlainProgress`, or None).
        console: a ``rich.console.Console`` for one-line status messages (or None).

    Raises:
        ConfigError: see :func:`select`; or a section's folder in ``out`` already holds a run.
    """
    from parsimon.report.html import write_report

    chosen, skipped = select(only)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out else Path("reports") / stamp
    taken = [n for n, _ in chosen if (out / n / "config.json").is_file()]
    if taken:
        raise ConfigError(f"`out` {out} already holds the run(s) of {taken}; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    if console is not None and skipped:
        console.print(f"not in this installation, skipped: {', '.join(skipped)}")
    sections: list[Section] = []
    for name, mod in chosen:
        if console is not None:
            console.print(f"[bold]reproduce[/bold] {name} ({'full' if full else 'quick'})")
        section = _run_section(name, mod, out, full=full, seed=seed, progress=progress)
        sections.append(section)
        if console is not None:
            status = "[red]failed[/red]" if section.error else "[green]done[/green]"
            console.print(f"  {name}: {status} in {section.seconds:.1f} s (run folder {out / name})")
    meta = _meta(stamp, full, seed, skipped)
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return write_report(sections, out, meta)
