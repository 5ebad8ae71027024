"""The CTA commands of the README run as written; the paper's released files are named with their source.

Issue 16 item 2: the README said "the paper's file loads directly" for a file nobody has; now the README
generates its task file first, and every mention of a released file says where it comes from.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from parsimon.cli import app

ROOT = Path(__file__).resolve().parents[2]
AUTHORS_REPO = "https://github.com/Wenwen-D/env-explorer"
RELEASED = {
    "pandora_tasks_dirichlet.json": "env_explorer/data/pandora_data/pandora_tasks_dirichlet.json",
    "csv_explore_tasks_test_processed_rho_0.5_1.0_2.0_4.0.json":
        "env_explorer/data/code_explore_data/code_explorer_balanced_data/"
        "csv_explore_tasks_test_processed_rho_0.5_1.0_2.0_4.0.json",
}


def _cta_block() -> list[list[str]]:
    """The README's CTA bash block, as argument lists (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### `parsimon.cta`", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_readme_task_file_commands_run_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = _cta_block()
    generated = {c[c.index("--out") + 1] for c in commands if c[:3] == ["parsimon", "cta", "generate"]}
    with_tasks = [c for c in commands if c[:3] == ["parsimon", "cta", "eval"] and "--tasks" in c]
    assert generated and with_tasks
    for cmd in with_tasks:  # every task file the README evaluates is one it generates first
        assert cmd[cmd.index("--tasks") + 1] in generated, cmd
    runner = CliRunner()
    for cmd in [c for c in commands if c[:3] == ["parsimon", "cta", "generate"]] + with_tasks:
        r = runner.invoke(app, cmd[1:])
        assert r.exit_code == 0, (cmd, r.output)
    out = with_tasks[0][with_tasks[0].index("--out") + 1]
    assert (tmp_path / out / "metrics.json").is_file() and (tmp_path / out / "config.json").is_file()


def test_released_files_are_named_with_their_source():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("cta-*.md"))]
    for doc in docs:
        text = doc.read_text(encoding="utf-8")
        assert "loads directly" not in text, doc.name
        for name, path in RELEASED.items():
            if name in text:
                assert AUTHORS_REPO in text and path in text, (doc.name, name)
