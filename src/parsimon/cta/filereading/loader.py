"""Load FILEREADING tasks: our JSON Lines format or the paper's released task files.

``load_tasks(path, data_root=...)``:

* **ours** (``.jsonl``, one :class:`~parsimon.cta.filereading.generator.FileTask` dict per line, written by
  :func:`~parsimon.cta.filereading.generator.save_tasks`): ``path`` fields are relative to ``data_root``;
* **the paper's** (a JSON list): fields ``task_id``, ``filename``, ``features``, ``priors``
  {Delimiter, Quotechar, Skiprows}, ``sampled_format``, ``meta_info``, ``path`` (``task_csv_<id>/<filename>``
  under the data root), ``task_instruction`` [text, type], ``answer``; the processed file adds ``d_unit``,
  ``d_code``, ``rho`` and ``calib_pred_prior`` (a text dict, the paper's BERT prior, our ``released`` prior
  source). An unprocessed file (no ``rho``) is expanded to one task per ρ in {0.5, 1, 2, 4} with
  ``d_unit = discount_factor``.

``data_root`` defaults to ``$PARSIMON_FILEREADING_DATA_ROOT`` if set (e.g. for ``parsimon cta eval --tasks``),
else the task file's directory (the paper keeps ``task_csv_*`` folders beside it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from parsimon.cta.filereading.generator import RHOS, FileTask
from parsimon.cta.filereading.prior import features_of, parse_released_prior
from parsimon.cta.taskfile import build_tasks, read_records

__all__ = ["load_tasks", "task_from_dict"]


def _paper_fmt(sf: dict) -> tuple:
    low = {k.lower(): v for k, v in sf.items()}
    try:
        return (low["delimiter"], low["quotechar"], int(low["skiprows"]))
    except KeyError as exc:
        raise ValueError(f"sampled_format lacks {exc.args[0]!r}: {sf}") from None


def task_from_dict(d: dict[str, Any], data_root: str | Path = ".", *, rho: float | None = None) -> FileTask:
    """One task from a dict in our format or the paper's (``rho`` overrides / supplies ρ)."""
    if not isinstance(d, dict):
        raise ValueError(f"a task must be a JSON object, got {type(d).__name__}")
    if "fmt" in d:  # ours
        return FileTask.from_dict(d, data_root)
    missing = [k for k in ("filename", "sampled_format", "path", "task_instruction", "answer") if k not in d]
    if missing:
        raise ValueError(f"task {d.get('task_id', '?')!r}: missing field(s) {missing} (neither our format nor the paper's)")
    instr = d["task_instruction"]
    if isinstance(instr, (list, tuple)):
        text, qtype = instr[0], instr[1]
    else:
        raise ValueError(f"task {d.get('task_id')!r}: task_instruction must be [text, type], got {instr!r}")
    r = float(d["rho"]) if rho is None and "rho" in d else (float(rho) if rho is not None else None)
    if r is None:
        raise ValueError(f"task {d.get('task_id')!r} has no rho; pass rho= or use the processed file")
    d_unit = float(d.get("d_unit", d.get("discount_factor", float("nan"))))
    if not 0 < d_unit <= 1:
        raise ValueError(f"task {d.get('task_id')!r}: d_unit / discount_factor must be in (0, 1], got {d_unit}")
    d_code = float(d["d_code"]) if "d_code" in d and rho is None else d_unit ** r
    base_id = str(d.get("task_id_original") or str(d.get("task_id", "")).split("_")[0])
    task_id = str(d["task_id"]) if rho is None and "task_id" in d else f"{base_id}_{r}"
    feats = d.get("features") or features_of(d["filename"])
    meta = d.get("meta_info") or {}
    keys = meta.get("key_names") or {}
    released = parse_released_prior(d["calib_pred_prior"]) if d.get("calib_pred_prior") else None
    answer = d["answer"]
    return FileTask(task_id=task_id, base_id=base_id, filename=d["filename"],
                    features={k: bool(v) for k, v in feats.items()}, fmt=_paper_fmt(d["sampled_format"]),
                    path=d["path"], data_root=str(data_root), instruction=text, query_type=str(qtype),
                    answer=answer, d_unit=d_unit, d_code=d_code, rho=r, split=str(d.get("split", "test")),
                    columns={k: list(v) for k, v in keys.items()}, released_prior=released)


def load_tasks(path: str | Path, data_root: str | Path | None = None) -> list[FileTask]:
    """Tasks from ``path`` (our ``.jsonl`` or the paper's JSON list); CSVs are looked up under ``data_root``.

    Raises:
        ConfigError: the file is missing, empty, binary or not valid JSON, or a record is neither our task
            format nor the paper's (the message names the file and the line or item).
    """
    records = read_records(path)
    if data_root is None:
        data_root = os.environ.get("PARSIMON_FILEREADING_DATA_ROOT") or Path(path).parent
    root = Path(data_root)

    def make(item: dict[str, Any], i: int) -> FileTask | list[FileTask]:
        if "rho" in item or "fmt" in item:
            return task_from_dict(item, root)
        return [task_from_dict(item, root, rho=r) for r in RHOS]  # an unprocessed paper file: every ρ

    return build_tasks(path, records, make, kind="filereading")
