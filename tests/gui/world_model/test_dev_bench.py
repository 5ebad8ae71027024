"""The scorer-settings script rejects bad arguments with one line naming the argument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "wm_search_dev.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def test_bad_arguments_name_the_argument(tmp_path):
    bad_seeds = _run("--store", str(tmp_path), "--seeds", "two")
    assert bad_seeds.returncode == 2 and "--seeds" in bad_seeds.stderr and "Traceback" not in bad_seeds.stderr
    bad_round = _run("--store", str(tmp_path), "--round-seeds", "x")
    assert bad_round.returncode == 2 and "--round-seeds must" in bad_round.stderr
    bad_suite = _run("--store", str(tmp_path), "--suites", "desktop")
    assert bad_suite.returncode == 2 and "--suites" in bad_suite.stderr
    bad_variant = _run("--store", str(tmp_path), "--variants", "progress/sometimes/0.15")
    assert bad_variant.returncode == 2 and "--variants" in bad_variant.stderr and "progress-nostop/done/0.15" in bad_variant.stderr
    missing = _run("--store", str(tmp_path / "none"))
    assert missing.returncode == 2 and "--store must be a folder" in missing.stderr
