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


def _fake_sections(monkeypatch):
    """Two stand-in subpackages: `okpkg` (logs a metric, charges the ledger) and `badpkg` (raises)."""
    import types

    from parsimon.report import runner

    ok = types.ModuleType("okpkg_reproduce")
    ok.PAPER = "OK paper"

    def reproduce_ok(ctx):
        from parsimon.governance import get_ledger

        ctx.log_metrics(score=0.5)
        get_ledger().charge(component="okpkg.work", tokens_in=7)  # inside the section's run
        with ctx.progress("okpkg: steps", total=2) as bar:
            bar.advance(2)
        return Section(name="okpkg", paper="OK paper", claims=[Claim("c", "1", "1", True), Claim("d", "1", "2", False)])

    ok.reproduce = reproduce_ok
    bad = types.ModuleType("badpkg_reproduce")
    bad.PAPER = "Bad paper"

    def reproduce_bad(ctx):
        raise RuntimeError("boom")

    bad.reproduce = reproduce_bad
    mods = {"okpkg": ok, "badpkg": bad, "gone": None}
    monkeypatch.setattr(runner, "SUBPACKAGES", list(mods))
    monkeypatch.setattr(runner, "_find", lambda name: mods[name])
    return runner


def test_each_section_is_a_run_listed_with_status_and_spend(tmp_path, monkeypatch):
    from parsimon.run import read_run
    from parsimon.runs import list_runs

    runner = _fake_sections(monkeypatch)
    html = runner.run_reproduce(None, out=tmp_path / "rep").read_text()
    rows = {r["name"]: r for r in list_runs(tmp_path / "rep")}
    assert set(rows) == {"reproduce okpkg", "reproduce badpkg"}  # `gone` has no reproduce module: skipped
    ok, bad = rows["reproduce okpkg"], rows["reproduce badpkg"]
    assert ok["status"] == "ok" and bad["status"] == "failed"
    assert ok["spend"]["tokens"] == 7 and ok["spend"]["wall_s"] > 0  # charged under the section's run id
    assert ok["metrics"]["score"] == 0.5 and ok["metrics"]["claims"] == 2
    assert ok["metrics"]["claims_reproduced"] == 1 and ok["metrics"]["claims_not_reproduced"] == 1
    assert "boom" in read_run(tmp_path / "rep" / "badpkg")["error"]
    assert "href='okpkg/'" in html and ok["run_id"] in html and "boom" in html
    assert "not in this installation" not in html and "gone" in html  # the HTML's skipped note
    sections = json.loads((tmp_path / "rep" / "sections.json").read_text())
    assert [s["run_dir"] for s in sections] == ["okpkg", "badpkg"]
    with pytest.raises(ValueError, match="already holds"):  # a report folder is not overwritten
        runner.run_reproduce(["okpkg"], out=tmp_path / "rep")


def test_only_a_missing_subpackage_is_an_error(tmp_path, monkeypatch):
    from parsimon.errors import ConfigError

    runner = _fake_sections(monkeypatch)
    with pytest.raises(ConfigError, match=r"`--only` gone: not in this installation.*\['okpkg', 'badpkg'\]"):
        runner.run_reproduce(["gone"], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
