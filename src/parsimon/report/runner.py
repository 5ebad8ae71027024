"""``parsimon reproduce``: find each subpackage's ``reproduce.py``, run it, write the report."""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import platform
import time
import traceback
from pathlib import Path

from parsimon.report.section import ReproContext, Section

__all__ = ["SUBPACKAGES", "run_reproduce"]

# Report order. A subpackage without a reproduce module is skipped with a note.
SUBPACKAGES = ["governance", "llm", "attention", "latents", "cta", "gui", "games"]


def _find(name: str):
    try:
        return importlib.import_module(f"parsimon.{name}.reproduce")
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == f"parsimon.{name}" or exc.name.startswith(f"parsimon.{name}.reproduce")):
            return None
        raise


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
        out: output folder (default ``reports/<UTC timestamp>``).
        seed: the seed every reproduction starts from.
        progress: a ``rich.progress.Progress`` (or None for no progress display).
        console: a ``rich.console.Console`` for one-line status messages (or None).
    """
    from parsimon.report.html import write_report

    names = list(only) if only else list(SUBPACKAGES)
    unknown = sorted(set(names) - set(SUBPACKAGES))
    if unknown:
        raise ValueError(f"`only` must name subpackages among {SUBPACKAGES}, got {unknown}")
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(out) if out else Path("reports") / stamp
    out.mkdir(parents=True, exist_ok=True)
    sections: list[Section] = []
    skipped: list[str] = []
    for name in names:
        mod = _find(name)
        if mod is None:
            skipped.append(name)
            continue
        ctx = ReproContext(out_dir=out / name, full=full, seed=seed, progress_impl=progress)
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        if console is not None:
            console.print(f"[bold]reproduce[/bold] {name} ({'full' if full else 'quick'})")
        t0 = time.perf_counter()
        try:
            section = mod.reproduce(ctx)
        except Exception as exc:  # a failed section is reported, the others still run
            section = Section(name=name, paper=getattr(mod, "PAPER", name))
            section.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        section.seconds = time.perf_counter() - t0
        sections.append(section)
        if console is not None:
            status = "[red]failed[/red]" if section.error else "[green]done[/green]"
            console.print(f"  {name}: {status} in {section.seconds:.1f} s")
    meta = {
        "created_utc": stamp,
        "mode": "full" if full else "quick",
        "seed": seed,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "skipped": skipped,
    }
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return write_report(sections, out, meta)
