"""The rule world model on hand-made pages, the summary text, and the metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.world_model.delta import Delta, PageState, SetChecked, SetFocus, SetText, SetValue, apply
from parsimon.gui.world_model.metrics import (
    action_match,
    calibration,
    delta_scores,
    observable,
    render_fidelity,
    score_prediction,
    true_delta,
)
from parsimon.gui.world_model.rules import RuleWorldModel
from parsimon.gui.world_model.summary import summarize

PAGE = ('<!DOCTYPE html>\n<html><head><title>Form</title></head><body><div id="area" data-pid="0">'
        '<label data-pid="1"><input type="checkbox" data-pid="2">milk</label>'
        '<input type="radio" name="g" data-pid="3" checked><input type="radio" name="g" data-pid="4">'
        '<input type="text" data-pid="5" value="ab"><select data-pid="6"><option data-pid="7" selected>A</option>'
        '<option data-pid="8">B</option></select><a href="next.html" data-pid="9">next</a>'
        '<button data-pid="10">Go</button><span data-pid="11">static</span></div></body></html>')


def _keys(obs, action):
    return sorted(map(str, RuleWorldModel().predict(obs, action).delta.keys()))


def test_rule_model_follows_html_behaviour(obs_from_html):
    obs = obs_from_html(PAGE, url="http://127.0.0.1:9/x/page.html")
    assert _keys(obs, Action("click", target=Element(2))) == sorted(map(str, [("checked", 2, True), ("focus", 2)]))
    # a click on the label toggles the box it wraps
    assert _keys(obs, Action("click", target=Element(1))) == _keys(obs, Action("click", target=Element(2)))
    assert _keys(obs, Action("click", target=Element(4))) == sorted(map(str, [("checked", 4, True),
                                                                             ("checked", 3, False), ("focus", 4)]))
    assert _keys(obs, Action("type", target=Element(5), text="cd")) == sorted(map(str, [("value", 5, "abcd"),
                                                                                       ("focus", 5)]))
    assert ("value", 5, "cd") in RuleWorldModel().predict(obs, Action("type", target=Element(5), text="cd",
                                                                      clear=True)).delta.keys()
    assert _keys(obs, Action("select", target=Element(6), option="B")) == sorted(map(str, [
        ("attr", 7, "selected", None), ("attr", 8, "selected", ""), ("focus", 6)]))
    nav = RuleWorldModel().predict(obs, Action("click", target=Element(9)))
    assert ("navigate", "http://127.0.0.1:9/x/next.html") in nav.delta.keys() and nav.confidence < 0.5
    assert _keys(obs, Action("click", target=Element(11))) == []  # nothing was focused, nothing is
    assert RuleWorldModel().predict(obs, Action("terminate", status="success")).delta.noop
    # a point resolves to the smallest element under it (the test page stacks elements 20 px apart)
    assert _keys(obs, Action("click", target=Point(50, 41, "px"))) == _keys(obs, Action("click", target=Element(2)))


def test_a_number_field_keeps_only_a_number(obs_from_html):
    from parsimon.gui.world_model.features import effect_labels, instantiate
    from parsimon.gui.world_model.rules import typed_value

    obs = obs_from_html('<!DOCTYPE html><html><body><input type="number" data-pid="1" value="3">'
                        '<input type="text" data-pid="2" value="3"></body></html>')

    def value(pid, text, clear=True):
        ops = RuleWorldModel().predict(obs, Action("type", target=Element(pid), text=text, clear=clear)).delta.ops
        return next(op.value for op in ops if isinstance(op, SetValue))

    assert value(1, "nails") == "" and value(2, "nails") == "nails"  # a word leaves a number field empty
    assert value(1, "12") == "12" and value(1, "-1.5e3") == "-1.5e3" and value(1, "4 pcs") == "4"
    assert value(1, "nails", clear=False) == "3" and value(1, "5", clear=False) == "35"
    assert value(1, "Filter papers") == ""  # its e's go in, but "eee" is not a number
    assert value(2, "x", clear=False) == "3x"
    index = PageState.from_observation(obs).doc().index()
    node = index[1]
    assert typed_value(node, "3", "", True) == ""
    # the learned model's label for that outcome is "value=typed", and writing it back gives the empty value
    typing = Action("type", target=Element(1), text="nails", clear=True)
    assert effect_labels(SetValue(1, ""), index, typing, 1) == [(1, "value=typed")]
    assert instantiate("value=typed", node, typing, {}, {}) == SetValue(1, "")


def test_tab_moves_focus_in_document_order(obs_from_html):
    obs = obs_from_html(PAGE, focused=2)
    assert RuleWorldModel().predict(obs, Action("key", keys=("tab",))).delta.keys() == [("focus", 3)]


def test_summary_is_change_only_and_region_by_region():
    s = PageState("u", PAGE)
    text = summarize(s, "click #2", Delta([SetChecked(2, True), SetFocus(2)]))
    assert text.startswith('Page "Form". Action: click #2. Area: checkbox "milk" becomes checked.')
    assert "Focus: moves to checkbox" in text and "Address bar unchanged." in text


def test_observable_drops_bookkeeping_attributes():
    a = PageState("u", '<html><head></head><body><p data-pid="1" data-tampered="e0" style="">x</p></body></html>')
    assert 'data-tampered' not in observable(a).html and 'style' not in observable(a).html
    b = PageState("u", '<html><head></head><body><p data-pid="1" data-tampered="e1">y</p></body></html>')
    assert true_delta(a, b).keys() == [("text", 1, "y")]


def test_scores_count_ops_and_noops_apart():
    a = PageState("u", PAGE)
    truth = true_delta(a, apply(a, Delta([SetChecked(2, True), SetFocus(2)])))
    exact = score_prediction(a, Delta([SetChecked(2, True), SetFocus(2)]), truth)
    half = score_prediction(a, Delta([SetChecked(2, True), SetValue(5, "zz"), SetValue(99, "missing")]), truth)
    noop_right = score_prediction(a, Delta([]), Delta([]))
    noop_wrong = score_prediction(a, Delta([SetText(11, ("x",))]), Delta([]))
    assert exact.exact and (exact.tp, exact.fp, exact.fn) == (2, 0, 0)
    assert (half.tp, half.fp, half.fn) == (1, 2, 1) and not half.exact
    s = delta_scores([exact, half, noop_right, noop_wrong])
    assert s["n_real"] == 2 and s["n_noop"] == 2
    assert s["precision"] == pytest.approx(3 / 5) and s["recall"] == pytest.approx(3 / 4)
    assert s["exact_real"] == 0.5 and s["noop_accuracy"] == 0.5


def test_calibration_of_a_known_set():
    cal = calibration([0.95, 0.95, 0.05, 0.05], [True, False, False, False], bins=10)
    # two bins: confidence 0.95 with accuracy 0.5, and 0.05 with accuracy 0
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert cal["brier"] == pytest.approx((0.05**2 + 0.95**2 + 0.05**2 + 0.05**2) / 4)


def test_render_fidelity_of_identical_and_different_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(40, 30, 3), dtype=np.uint8)
    assert render_fidelity(img, img.copy()) == {"ssim": 1.0, "psnr": float("inf"), "mismatch": 0.0}
    other = img.copy()
    other[10:20, 5:15] = 0
    f = render_fidelity(other, img)
    assert f["mismatch"] == pytest.approx(np.mean(np.abs(other.astype(int) - img.astype(int)).max(-1) > 16))
    assert f["ssim"] < 1.0 and np.isfinite(f["psnr"])
    # only the box counts
    assert render_fidelity(other, img, box=(20, 25, 10, 10))["ssim"] == 1.0


def test_action_match_follows_cuwm(obs_from_html):
    obs = obs_from_html(PAGE)
    expert = Action("click", target=Element(2))  # box (0, 40, 100, 18), centre (50, 49)
    assert action_match(Action("click", target=Element(2)), expert, obs)
    assert action_match(Action("click", target=Point(60, 60, "px")), expert, obs)  # within 25 px
    assert action_match(Action("click", target=Point(95, 41, "px")), expert, obs)  # 45 px away but in the box
    assert not action_match(Action("click", target=Point(50, 95, "px")), expert, obs)
    assert not action_match(Action("double_click", target=Element(2)), expert, obs)
    assert not action_match(Action("type", target=Element(5), text="a"), Action("type", target=Element(5), text="b"),
                            obs)


SPIN = ('<!DOCTYPE html>\n<html><body><div data-pid="0"><span class="ui-spinner" data-pid="1">'
        '<input role="spinbutton" class="ui-spinner-input" value="{value}" {extra} data-pid="2">'
        '<a class="ui-button ui-spinner-button ui-spinner-up" role="button" data-pid="3"><span class="ui-icon" data-pid="4">'
        '</span></a><a class="ui-button ui-spinner-button ui-spinner-down" role="button" data-pid="5"></a></span>'
        '<button data-pid="6">Next</button></div></body></html>')


def test_a_spin_button_counts_its_field(obs_from_html):
    obs = obs_from_html(SPIN.format(value="2", extra=""))
    up = RuleWorldModel().predict(obs, Action("click", target=Element(3))).delta.keys()
    assert sorted(map(str, up)) == sorted(map(str, [("value", 2, "3"), ("attr", 2, "aria-valuenow", "3"), ("focus", 2)]))
    # a click on the icon inside the arrow is a click on the arrow; down counts down, by the field's step
    obs = obs_from_html(SPIN.format(value="0", extra='step="5"'))
    down = RuleWorldModel().predict(obs, Action("click", target=Element(5))).delta.keys()
    assert ("value", 2, "-5") in down and ("attr", 2, "aria-valuenow", "-5") in down
    assert ("value", 2, "5") in RuleWorldModel().predict(obs, Action("click", target=Element(4))).delta.keys()
    # the ARIA bounds hold
    obs = obs_from_html(SPIN.format(value="3", extra='aria-valuemax="3"'))
    state = PageState.from_observation(obs)
    after = apply(state, RuleWorldModel().predict(obs, Action("click", target=Element(3))).delta)
    assert after.doc().index()[2].get("value") == "3"
    # a "Next" button beside no spin field is only a button
    assert ("value", 2, "1") not in RuleWorldModel().predict(
        obs_from_html(SPIN.format(value="0", extra="").replace('role="spinbutton" ', "")),
        Action("click", target=Element(3))).delta.keys()
    assert _keys(obs, Action("click", target=Element(6))) == [str(("focus", 6))]


SORT = ('<!DOCTYPE html>\n<html><body><main data-pid="0"><label for="{sid}" data-pid="1">{label}</label>'
        '<select id="{sid}" data-pid="2"><option data-pid="3" selected>Name</option><option data-pid="4">Price</option>'
        '</select><table data-pid="5"><tbody data-pid="6">'
        '<tr data-id="a" data-pid="7"><td data-pid="8">nuts</td><td data-pid="9">3</td></tr>'
        '<tr data-id="b" data-pid="10"><td data-pid="11">bolts</td><td data-pid="12">1</td></tr>'
        '</tbody></table><ul data-pid="13"><li data-pid="14">x</li></ul></main></body></html>')


def test_a_sort_control_draws_its_list_again(obs_from_html):
    obs = obs_from_html(SORT.format(sid="order", label="Sort by"))
    keys = RuleWorldModel().predict(obs, Action("select", target=Element(2), option="Price")).delta.keys()
    # the largest list is drawn again: its rows removed and the same rows inserted (in an order the model
    # does not claim to know); the option and the focus as HTML does
    assert ("node", 7) not in keys and ("remove", 7) in keys and ("remove", 10) in keys
    adds = [k for k in keys if k[0] == "add"]
    assert sorted(k[3] for k in adds) == ["bolts 1", "nuts 3"] and all(k[1] == 6 for k in adds)
    assert ("attr", 4, "selected", "") in keys and ("focus", 2) in keys
    assert not any(k[0] in ("remove", "add") and k[1] in (13, 14) for k in keys)
    # choosing the option already chosen fires the change event too: the rows are drawn again, nothing
    # else changes; a select that does not sort only selects
    again = RuleWorldModel().predict(obs, Action("select", target=Element(2), option="Name")).delta.keys()
    assert ("remove", 7) in again and ("remove", 10) in again and not any(k[0] == "attr" for k in again)
    plain = obs_from_html(SORT.format(sid="colour", label="Colour"))
    assert not any(k[0] == "remove" for k in RuleWorldModel().predict(
        plain, Action("select", target=Element(2), option="Price")).delta.keys())
    # the label alone may say so
    labelled = obs_from_html(SORT.format(sid="pick", label="Order rows"))
    assert ("remove", 7) in RuleWorldModel().predict(labelled, Action("select", target=Element(2),
                                                                      option="Price")).delta.keys()


DIALOG = ('<html><body><div id="area" data-pid="0"><button data-pid="9">Open</button></div>'
          '<div role="dialog" data-pid="1" style="position: absolute; display: block; top: 5px;">'
          '<div data-pid="2"><span data-pid="3">Note</span><button class="ui-dialog-titlebar-close" title="Close" '
          'data-pid="4"><span class="ui-icon" data-pid="5"></span></button></div>'
          '<p data-pid="6">Hello</p><button data-pid="7">OK</button></div></body></html>')


def test_a_dialogs_close_control_hides_the_dialog(obs_from_html):
    obs = obs_from_html(DIALOG, focused=4)
    keys = RuleWorldModel().predict(obs, Action("click", target=Element(5))).delta.keys()  # the icon in the button
    assert ("attr", 1, "style", "display: none; position: absolute; top: 5px;") in keys and ("focus", None) in keys
    after = apply(PageState.from_observation(obs), RuleWorldModel().predict(obs, Action("click", target=Element(4))).delta)
    assert "display: none" in after.doc().index()[1].get("style")
    # another button of the dialog, or a close button outside any dialog, is not a close control of one
    for html, pid in ((DIALOG, 7), (DIALOG.replace('role="dialog" ', ""), 4)):
        keys = RuleWorldModel().predict(obs_from_html(html), Action("click", target=Element(pid))).delta.keys()
        assert not any(k[0] == "attr" and k[1] == 1 for k in keys)
    # a <dialog> closes by losing `open`
    native = DIALOG.replace('<div role="dialog" data-pid="1" style="position: absolute; display: block; top: 5px;">',
                            '<dialog open data-pid="1">').replace("</button></div></body>", "</button></dialog></body>")
    assert ("attr", 1, "open", None) in RuleWorldModel().predict(obs_from_html(native),
                                                                 Action("click", target=Element(4))).delta.keys()


ROVING = ('<html><body><div data-pid="0">'
          '<h3 role="tab" tabindex="0" aria-selected="true" data-pid="1">One</h3><div data-pid="2">a</div>'
          '<h3 role="tab" tabindex="-1" aria-selected="false" data-pid="3"><span data-pid="4">Two</span></h3>'
          '<div data-pid="5">b</div></div>'
          '<ul role="tablist" data-pid="6"><li role="tab" tabindex="0" data-pid="7">'
          '<a role="presentation" tabindex="-1" href="#x" data-pid="8">X</a></li>'
          '<li role="tab" tabindex="-1" data-pid="9"><a role="presentation" tabindex="-1" href="#y" data-pid="10">Y</a>'
          '</li></ul><p tabindex="-1" data-pid="11">plain</p><p tabindex="0" data-pid="12">plain</p></body></html>')


def test_a_roving_tabindex_moves_to_the_item_clicked(obs_from_html):
    obs = obs_from_html(ROVING)

    def tabindex(pid):
        keys = RuleWorldModel().predict(obs, Action("click", target=Element(pid))).delta.keys()
        return sorted(k for k in keys if k[0] == "attr" and k[2] == "tabindex")

    # a header (or the text inside it) takes the group's tabindex 0 from its look-alike
    assert tabindex(3) == tabindex(4) == [("attr", 1, "tabindex", "-1"), ("attr", 3, "tabindex", "0")]
    # a tab whose link has no role of its own: the tab moves
    assert tabindex(10) == [("attr", 7, "tabindex", "-1"), ("attr", 9, "tabindex", "0")]
    # the item that holds it already, and elements without a role, change nothing
    assert tabindex(1) == tabindex(8) == tabindex(11) == []


def test_the_learned_model_takes_the_conventions_it_never_saw(obs_from_html):
    from parsimon.gui.world_model.learned import LearnedConfig, LearnedWorldModel

    from .conftest import synthetic_transitions

    model = LearnedWorldModel.fit(synthetic_transitions("synth/checks-0", "checks", episodes=3, seed=0),
                                  LearnedConfig(n_estimators=10, seed=0))
    obs = obs_from_html(SPIN.format(value="2", extra=""))
    assert ("attr", 2, "aria-valuenow", "3") in model.predict(obs, Action("click", target=Element(3))).delta.keys()
    obs = obs_from_html(SORT.format(sid="sort", label="Sort"))
    keys = model.predict(obs, Action("select", target=Element(2), option="Price")).delta.keys()
    assert ("remove", 7) in keys and sum(k[0] == "add" and k[1] == 6 for k in keys) == 2
    keys = model.predict(obs_from_html(ROVING), Action("click", target=Element(3))).delta.keys()
    assert ("attr", 3, "tabindex", "0") in keys and ("attr", 1, "tabindex", "-1") in keys
