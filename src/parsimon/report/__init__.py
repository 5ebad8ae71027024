"""The HTML report of ``parsimon reproduce``: per paper, claims beside our numbers, tables, plots."""

from __future__ import annotations

from parsimon.report.html import write_report
from parsimon.report.runner import SUBPACKAGES, run_reproduce
from parsimon.report.section import Claim, Figure, ReproContext, Section, Table

__all__ = [
    "Claim",
    "Figure",
    "ReproContext",
    "Section",
    "Table",
    "SUBPACKAGES",
    "run_reproduce",
    "write_report",
]
