from __future__ import annotations

import json

import pytest

from parsimon.report import Claim, Figure, Section, Table, write_report
from parsimon.report.html import fmt
from parsimon.report.runner import run_reproduce


def test_fmt():
    assert fmt(0.123456) == "0.1235"
    assert fmt(1.5e-5) == "1.500e-05"
    assert fmt(None) == "–"
    assert fmt(3) == "3"


def test_write_report(tmp_path):
    import matplotlib.pyplot as plt

    fig_path = tmp_path / "x" / "f.png"
    fig_path.parent.mkdir()
    plt.plot([0, 1], [1, 0])
    plt.savefig(fig_path)
    plt.close()
    s = Section(
        name="x",
        paper="Paper X",
        claims=[Claim("fast", "10x", "12x", True)],
        tables=[Table("t", ["a", "b"], [[1, 0.5]])],
        figures=[Figure(fig_path, "a line <b>")],
        not_reproduced=["the big run"],
    )
    path = write_report([s], tmp_path, {"mode": "quick"})
    text = path.read_text()
    assert "Paper X" in text and "12x" in text and "x/f.png" in text and "the big run" in text
    assert "&lt;b&gt;" in text  # captions are escaped
    assert json.loads((tmp_path / "sections.json").read_text())[0]["name"] == "x"


def test_run_reproduce_rejects_unknown(tmp_path):
    with pytest.raises(ValueError, match="only"):
        run_reproduce(["nope"], out=tmp_path)
