"""Where benchmark results go: a run folder by default, the committed ``benchmarks/results/`` only with --save.

Each benchmark script opens a :mod:`parsimon.run` run (``--out DIR``, default ``runs/<benchmark>-<UTC stamp>``;
``config.json`` records the arguments and the machine) and writes its JSON and plot there; ``--save`` also
writes them to ``benchmarks/results/``, the files the README and the docs quote.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def add_output_options(ap: argparse.ArgumentParser, name: str) -> None:
    """``--out`` (the run folder) and ``--save`` (also write the committed results)."""
    ap.add_argument("--out", type=Path, default=None, help=f"run folder (default runs/{name}-<UTC stamp>)")
    ap.add_argument("--save", action="store_true",
                    help=f"also write the committed files in {RESULTS.relative_to(RESULTS.parents[1])}/")


def open_run(name: str, args: argparse.Namespace):
    """The benchmark's run (a context manager yielding a :class:`parsimon.run.Run`)."""
    from parsimon.run import start_run

    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("out", "save")}
    return start_run(name, config, out_dir=args.out)


def _plain(obj: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists; anything else as its string."""
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


def write_results(run, stem: str, data: Any, plot: Callable[[Path], Any] | None, save: bool,
                  results: Path | None = None) -> list[Path]:
    """``<stem>.json`` (and ``<stem>.png`` through ``plot(path)``) into the run folder, and into ``results``
    (default ``benchmarks/results``) when ``save``; returns the JSON paths written."""
    written = []
    for folder in [run.dir] + ([results or RESULTS] if save else []):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stem}.json"
        path.write_text(json.dumps(data, indent=1, default=_plain))
        if plot is not None:
            plot(folder / f"{stem}.png")
        written.append(path)
    print("wrote " + " and ".join(f"{p} (.png)" if plot else str(p) for p in written), flush=True)
    return written
