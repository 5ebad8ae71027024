from parsimon.llm.reproduce import _QUESTIONS, _correct


def test_a_hedged_answer_naming_a_wrong_option_is_not_correct():
    assert _correct("The answer is Earth.", "earth", ("mars",))
    assert not _correct('The answer is "Earth" but in a more precise context, it\'s "Mars"', "earth", ("mars",))
    assert not _correct("Paris? No, Lyon.", "paris", ("lyon",))
    assert not _correct("I do not know.", "blue", ("green",))
    for _q, expected, wrong in _QUESTIONS:
        assert expected not in wrong
