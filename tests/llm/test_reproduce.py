from parsimon.llm.reproduce import _QUESTIONS, _correct


def test_a_hedged_answer_naming_a_wrong_option_is_not_correct():
    assert _correct("The answer is Earth.", "earth", ("mars",))
    assert not _correct('The answer is "Earth" but in a more precise context, it\'s "Mars"', "earth", ("mars",))
    assert not _correct("Paris? No, Lyon.", "paris", ("lyon",))
    assert not _correct("I do not know.", "blue", ("green",))
    for _q, expected, wrong in _QUESTIONS:
        assert expected not in wrong


def _row(workload, output, decisions, pf):
    return {"workload": workload, "output": output, "n": 2, "decisions": decisions, "parse_failure_rate": pf,
            "invalid_action_rate": pf, "reward": 0.1, "match_rate": None, "tokens_per_decision": 100.0,
            "completion_tokens_per_decision": 20.0, "seconds_per_decision": 1.0, "llm_errors": 0, "reasks": 1,
            "cut_at_max_tokens": 0, "modes": {output if output == "free" else "constrained-grammar": decisions},
            "max_tokens": 64}


def test_agents_part_pools_parse_failures_per_decision():
    from parsimon.llm.agent_eval import QUICK, SUMMARY_HEADER
    from parsimon.llm.reproduce import _agents_part
    from parsimon.report.section import Section

    result = {"config": {**QUICK.__dict__}, "planners": [{"workload": "pandora", "policy": "oracle", "reward": 0.6,
                                                          "match_rate": 1.0}],
              "paper": {"pandora": "paper row"},
              "rows": [_row("pandora", "free", 6, 1.0), _row("qa", "free", 2, 0.5),
                       _row("pandora", "constrained", 3, 0.0), _row("qa", "constrained", 1, 0.0)]}
    section = Section(name="llm", paper="p", summary="s")
    _agents_part(result, section)
    table = section.tables[0]
    assert table.columns == SUMMARY_HEADER and len(table.rows) == 4
    assert table.rows[0][4] == "100%" and "oracle: 0.600 / 100%" in table.rows[0][11] and "1 re-asked" in table.rows[0][8]
    claim = section.claims[0]
    assert claim.ours == "88% → 0%" and claim.reproduced is True  # (6 + 1) / 8 free decisions failed
    result["rows"][3] = _row("qa", "constrained", 1, 1.0)
    section = Section(name="llm", paper="p", summary="s")
    _agents_part(result, section)
    assert section.claims[0].ours == "88% → 25%" and section.claims[0].reproduced is False
