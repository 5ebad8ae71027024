from parsimon.cta import reproduce as repro
from parsimon.report.section import ReproContext, Section


def test_quick_reproduce_without_llm(tmp_path, monkeypatch):
    # the local-LLM rows are covered by the `llm`-marked agent test; here they are skipped to stay fast
    monkeypatch.setattr(repro, "_pandora_llm", lambda ctx, tasks: ([], "LLM rows skipped in this test."))
    s = repro.reproduce(ReproContext(out_dir=tmp_path))
    assert isinstance(s, Section) and s.name == "cta"
    titles = [t.title for t in s.tables]
    assert any("Pandora" in t for t in titles) and any("QA" in t for t in titles)
    pandora = s.tables[0].rows
    assert pandora[0][1] == "100.0" and pandora[2][1] == "24.0"  # oracle / uniform-prior match %
    assert all(f.path.is_file() for f in s.figures)
    assert any(c.reproduced for c in s.claims)
    assert s.not_reproduced and any("135M" in x or "Qwen3-8B" in x for x in s.not_reproduced)
