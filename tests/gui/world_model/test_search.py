"""The search loop without a browser: candidates, imagination, scoring, the irreversibility penalty, stopping,
and the prediction-error log."""

from __future__ import annotations

import pytest

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action, Element
from parsimon.gui.policies.proposal import ScoredAction
from parsimon.gui.world_model.delta import PageState
from parsimon.gui.world_model.rules import RuleWorldModel
from parsimon.gui.world_model.search import DEFAULT_DONE_CHECK, SearchConfig, SearchPolicy, irreversible
from parsimon.gui.world_model.store import TransitionStore
from parsimon.gui.world_model.value import state_features

PAGE = ('<html><head><title>Shop</title></head><body><div id="area" data-pid="0">'
        '<label data-pid="1"><input type="checkbox" data-pid="2">milk</label>'
        '<label data-pid="3"><input type="checkbox" data-pid="4">bread</label>'
        '<input type="text" data-pid="5" value=""><button data-pid="6" data-irreversible>Pay now</button>'
        '<button data-pid="7">Submit</button></div></body></html>')


class FixedBase:
    """A base policy proposing fixed candidates in a fixed order."""

    name = "fixed"

    def __init__(self, actions):
        self.actions, self.history = actions, []

    def reset(self, goal, info):
        self.history = []

    def candidates(self, obs, k=None):
        return [ScoredAction(a, 1.0 - i / 10) for i, a in enumerate(self.actions)][:k]

    def close(self):
        pass


class ValueOfChecks:
    """Scores a candidate by the state group's 'named box checked' feature (text modes) or its rank (none)."""

    def __init__(self, offset):
        self.calls, self.offset = [], offset  # offset: the size of the action group

    def score(self, mode, rows):
        self.calls.append((mode, len(rows)))
        # the state group's fourth feature counts the checked boxes the instruction names
        return [row[self.offset + 3] if mode != "none" else -row[1] for row in rows]


def _offset(obs):
    from parsimon.gui.world_model.value import action_features

    return len(action_features(obs, Action("click", target=Element(2)), 0.0, 0, 1, []))


def test_search_picks_the_candidate_whose_imagined_outcome_scores_best(obs_from_html, tmp_path):
    obs = obs_from_html(PAGE, goal='Select "milk" and press Submit.')
    cands = [Action("click", target=Element(4)), Action("click", target=Element(2)), Action("click", target=Element(7))]
    value = ValueOfChecks(_offset(obs))
    store = TransitionStore(tmp_path / "store")
    policy = SearchPolicy(FixedBase(cands), RuleWorldModel(), SearchConfig(k=3, mode="text"), value=value, store=store)
    policy.reset(obs.goal, {"task": "synthetic/shop", "seed": 0})
    decision = policy.act(obs, {})
    assert decision.action == cands[1]  # checking "milk" is the imagined outcome the value prefers
    assert decision.meta["chosen"] == 1 and len(decision.meta["scores"]) == 3
    assert value.calls == [("text", 3)]
    assert "milk" in decision.meta["predicted"]
    # the next call compares the prediction with what happened and logs the error
    from parsimon.gui.world_model.delta import Delta, SetChecked, SetFocus, apply

    after = apply(PageState.from_observation(obs), Delta([SetChecked(2, True), SetFocus(2)]))
    policy.act(obs_from_html(after.html, goal=obs.goal, focused=2), {})
    (record,) = store.predictions()
    assert record["exact"] and record["tp"] == 2 and record["world_model"] == "rule"


def test_without_imagination_the_scorer_sees_the_candidates_alone(obs_from_html):
    obs = obs_from_html(PAGE, goal='Select "milk".')
    cands = [Action("click", target=Element(4)), Action("click", target=Element(2))]
    value = ValueOfChecks(_offset(obs))
    policy = SearchPolicy(FixedBase(cands), None, SearchConfig(k=2, mode="none"), value=value)
    policy.reset(obs.goal, {})
    assert policy.act(obs, {}).action == cands[0] and value.calls == [("none", 2)]


def test_unrequested_irreversible_actions_are_penalised(obs_from_html):
    obs = obs_from_html(PAGE, goal='Select "milk".')
    pay = Action("click", target=Element(6))
    assert irreversible(obs, pay, None)
    assert not irreversible(obs_from_html(PAGE, goal="Pay now."), pay, None)

    class Flat:
        def score(self, mode, rows):
            return [0.5] * len(rows)

    policy = SearchPolicy(FixedBase([pay, Action("click", target=Element(7))]), None,
                          SearchConfig(k=2, mode="none", irreversible_penalty=1.0), value=Flat())
    policy.reset(obs.goal, {})
    assert policy.act(obs, {}).action.target == Element(7)
    assert policy.log[-1]["irreversible_avoided"] == 1


def test_stopping_is_the_base_policys_to_offer_and_the_scorers_to_overrule(obs_from_html):
    obs = obs_from_html(PAGE, goal='Select "milk".')
    stop, click = Action("terminate", status="success"), Action("click", target=Element(2))

    class Prefer:
        def __init__(self, stopping):
            self.stopping = stopping

        def score(self, mode, rows):
            return [float(bool(r[8]) == self.stopping) for r in rows]  # r[8]: the 'terminate' verb flag

    def decide(actions, stopping, stop_rule):
        policy = SearchPolicy(FixedBase(actions), None, SearchConfig(k=2, mode="none", stop=stop_rule),
                              value=Prefer(stopping))
        policy.reset(obs.goal, {})
        return policy.act(obs, {}).action

    # a stop the base ranks first: taken as is under stop='policy', scored like any candidate under 'scored'
    assert decide([stop, click], False, "policy") == stop
    assert decide([stop, click], False, "scored") == click
    assert decide([stop, click], True, "scored") == stop
    # a stop the base does not rank first is never a candidate
    assert decide([click, stop], True, "scored") == click
    assert decide([click, stop], True, "policy") == click


def test_state_features_read_the_page_against_the_instruction():
    page = PageState("u", PAGE.replace('value=""', 'value="milk"').replace('data-pid="2">', 'data-pid="2" checked>'))
    f = state_features(page, 'Type "milk", select "milk" and "bread", then submit.')
    in_text, in_fields, has_quotes, named_on, named_off, other_on, empty, fields = f[:8]
    assert (in_text, in_fields, has_quotes) == (1.0, 0.5, 1.0)  # "milk" and "bread" are labels; "milk" is typed
    assert (named_on, named_off, other_on, empty, fields) == (1, 1, 0, 0, 1)
    # the column the value function keeps monotone (more empty text fields never score higher)
    from parsimon.gui.world_model.value import _EMPTY

    assert state_features(PageState("u", PAGE), "Type it.")[_EMPTY] == 1 and f[_EMPTY] == 0


def test_oracle_rebases_states_logged_under_another_server_port(obs_from_html):
    from parsimon.gui.world_model.oracle import _rebase

    replayed = obs_from_html(PAGE, url="http://127.0.0.1:4444/miniwob/x.html#top")
    assert _rebase(replayed, "http://127.0.0.1:5555/miniwob/x.html").url == "http://127.0.0.1:5555/miniwob/x.html#top"
    assert _rebase(replayed, "http://127.0.0.1:4444/other.html") is replayed


def test_the_first_choice_stays_unless_another_scores_a_margin_more(obs_from_html):
    import pytest

    from parsimon.errors import ConfigError

    obs = obs_from_html(PAGE, goal='Select "milk".')
    cands = [Action("click", target=Element(4)), Action("click", target=Element(2))]

    class Fixed:
        def __init__(self, scores):
            self.scores = scores

        def score(self, mode, rows):
            return self.scores[: len(rows)]

    def pick(scores, margin):
        policy = SearchPolicy(FixedBase(cands), None, SearchConfig(k=2, mode="none", margin=margin),
                              value=Fixed(scores))
        policy.reset(obs.goal, {})
        return policy.act(obs, {}).action

    assert pick([0.5, 0.6], 0.15) == cands[0]  # not clearly better: the base policy's choice stands
    assert pick([0.5, 0.7], 0.15) == cands[1]
    assert pick([0.5, 0.6], 0.0) == cands[1]
    with pytest.raises(ConfigError, match="margin"):
        SearchConfig(margin=-0.1)


def test_progress_labels_credit_only_the_steps_that_changed_the_page(obs_from_html):
    from types import SimpleNamespace

    import pytest

    from parsimon.errors import ConfigError
    from parsimon.gui.world_model.value import step_labels

    goal = 'Select "milk".'
    blank = obs_from_html(PAGE, goal=goal)
    focused = obs_from_html(PAGE, goal=goal, focused=5)
    checked = obs_from_html(PAGE.replace('data-pid="2">', 'data-pid="2" checked>'), goal=goal)
    click, stop = Action("click", target=Element(2)), Action("terminate", status="success")

    def step(before, action, after, success=False):
        return SimpleNamespace(state=before, action=action, next_state=after, success=success)

    # focus only (no progress), the box checked (progress), then stopping, which ends the episode solved
    solved = [step(blank, Action("click", target=Element(5)), focused), step(focused, click, checked),
              step(checked, stop, checked, success=True)]
    assert step_labels(solved, "progress") == [0, 1, 1]
    assert step_labels(solved, "progress-nostop") == [0, 1, 0]  # stopping never credited
    assert step_labels(solved, "episode") == [1, 1, 1]
    unsolved = [step(blank, click, checked), step(checked, stop, checked)]
    assert step_labels(unsolved, "progress") == [0, 0]
    # a submit click that only moves the focus but solves the task is credited; the same click failing is not
    submit = Action("click", target=Element(5))
    for label in ("progress", "progress-nostop"):
        assert step_labels([step(blank, click, checked), step(checked, submit, checked, success=True)], label) == [1, 1]
        assert step_labels([step(blank, click, checked), step(checked, submit, checked)], label) == [0, 0]
    with pytest.raises(ConfigError, match="`label`"):
        step_labels(solved, "outcome")


def test_progress_named_credits_a_click_the_instruction_names_that_shows_no_change(obs_from_html):
    from types import SimpleNamespace

    from parsimon.gui.world_model.value import step_labels

    page = ('<html><body><div id="area" data-pid="0"><button data-pid="1">ONE</button>'
            '<button data-pid="2">TWO</button><button data-pid="3">THREE</button></div></body></html>')
    goal = "Click button ONE, then click button TWO."
    obs = obs_from_html(page, goal=goal)
    one, two, three = (SimpleNamespace(state=obs, action=Action("click", target=Element(i)), next_state=obs,
                                       success=False) for i in (1, 2, 3))
    solving = SimpleNamespace(state=obs, action=two.action, next_state=obs, success=True)
    # ONE changes nothing on the page; TWO then solves the task
    assert step_labels([one, solving], "progress-nostop") == [0, 1]
    assert step_labels([one, solving], "progress-named") == [1, 1]
    assert step_labels([one, solving]) == [1, 1]  # the default
    # not when the episode failed, nor for a click the instruction does not name, nor for a repeated click
    assert step_labels([one, two], "progress-named") == [0, 0]
    assert step_labels([three, one, solving], "progress-named") == [0, 1, 1]
    assert step_labels([one, one, solving], "progress-named") == [0, 0, 1]


def test_ordinal_features_find_the_element_the_instruction_counts_to(obs_from_html):
    from parsimon.gui.world_model.base import target_element
    from parsimon.gui.world_model.value import ordinal_features, ordinals

    assert ordinals('Check the 2nd radio button and enter "34" into the 3rd textbox.') == {"radio": {2}, "text": {3}}
    assert ordinals("Focus into the first input field, then the second link.") == {"text": {1}, "link": {2}}
    assert ordinals("Find the 7th word in the paragraph.") == {}
    page = ('<html><body><input type="radio" data-pid="1"><input type="radio" data-pid="2">'
            '<input type="text" data-pid="3"><input type="text" data-pid="4"><input type="text" data-pid="5">'
            '<button data-pid="6">Submit</button></body></html>')
    obs = obs_from_html(page, goal='Check the 2nd radio button and enter "34" into the 3rd textbox.')

    def feats(pid):
        return ordinal_features(obs, target_element(obs, Action("click", target=Element(pid))))

    assert feats(2) == [1.0, 0.0] and feats(5) == [1.0, 0.0]  # the 2nd radio, the 3rd text field
    assert feats(1) == [0.0, 1.0] and feats(3) == [0.0, 1.0]
    assert feats(6) == [0.0, 0.0]  # the instruction counts no buttons


def test_order_features_point_at_the_earliest_mention_not_acted_on_yet(obs_from_html):
    import dataclasses

    from parsimon.gui.world_model.value import Trail, mention_at, mentions, order_features

    assert mention_at("Click button ONE, then click button TWO.", "one") == 13
    assert mention_at("Click button ONE, then click button TWO.", "on") == -1  # whole words only
    assert mention_at("Click the button labeled No.", "a") == -1  # too short to place
    page = ('<html><body><button data-pid="1">ONE</button><button data-pid="2">TWO</button>'
            '<button data-pid="3">Cancel</button></body></html>')
    obs = obs_from_html(page, goal="Click button ONE, then click button TWO.")
    one, two, cancel = (Action("click", target=Element(p)) for p in (1, 2, 3))
    assert mentions(obs) == {13, 36}
    trail = Trail()
    assert order_features(obs, one, trail) == [1.0, 0.0]
    assert order_features(obs, two, trail) == [0.0, 1.0]  # ONE comes first
    assert order_features(obs, cancel, trail) == [0.0, 0.0]  # not mentioned
    trail.took(obs, one)
    assert trail.mentions == {13}
    assert order_features(obs, two, trail) == [1.0, 0.0]  # ONE is done: TWO is next
    assert order_features(obs, one, trail) == [0.0, 0.0]
    first = obs
    # a list's option and a quoted string count as things to act on; select and type name their value
    form = ('<html><body><select data-pid="1"><option>5ft 8in</option><option>5ft 9in</option></select>'
            '<input type="text" data-pid="2"><button data-pid="3">No</button></body></html>')
    obs = obs_from_html(form, goal='Choose 5ft 9in from the dropdown, then click the button labeled "No".')
    # the page's snapshot lists a select's options (this fixture does not)
    obs = dataclasses.replace(obs, elements=type(obs.elements)(
        dataclasses.replace(e, options=("5ft 8in", "5ft 9in")) if e.pid == 1 else e for e in obs.elements))
    assert mentions(obs) == {7, 65}
    assert mentions(first) == {13, 36} and mentions(obs) == {7, 65}
    pick, no = Action("select", target=Element(1), option="5ft 9in"), Action("click", target=Element(3))
    other = Trail()
    other.see(first)  # a trail keeps the mentions of the page it saw last, and only for that page
    assert other.page_mentions == {13, 36} and order_features(obs, pick, other) == [1.0, 0.0]
    assert order_features(obs, pick, Trail()) == [1.0, 0.0]
    assert order_features(obs, no, Trail()) == [0.0, 1.0]
    assert order_features(obs, Action("type", target=Element(2), text="No"), Trail()) == [0.0, 1.0]
    # the instruction's own text is no control; typed text stays to do ("into both fields")
    page = ('<html><body><div data-pid="1">Enter "lX" into both fields and press submit.</div>'
            '<input type="text" data-pid="2"><input type="text" data-pid="3"><button data-pid="4">submit</button>'
            '</body></html>')
    obs = obs_from_html(page, goal='Enter "lX" into both fields and press submit.')
    first, second, submit = (Action("type", target=Element(2), text="lX"), Action("type", target=Element(3), text="lX"),
                             Action("click", target=Element(4)))
    trail = Trail()
    trail.took(obs, first)
    assert trail.mentions == set()
    assert order_features(obs, second, trail) == [1.0, 0.0] and order_features(obs, submit, trail) == [0.0, 1.0]


def test_the_trail_knows_a_page_and_an_action_again_after_the_list_is_drawn_again(obs_from_html):
    from parsimon.gui.world_model.delta import Delta, SetChecked
    from parsimon.gui.world_model.value import Trail, action_signature, page_signature, value_features

    inbox = ('<html><body><ul data-pid="1"><li data-pid="{a}"><a data-pid="{b}" href="#m1">Holiday plans</a></li>'
             '<li data-pid="{c}"><a data-pid="{d}" href="#m2">Team photo</a></li></ul>'
             '<label data-pid="8"><input type="checkbox" data-pid="9">archive</label></body></html>')
    first = obs_from_html(inbox.format(a=2, b=3, c=4, d=5), goal='Reply "Thanks!" to "Holiday plans".')
    again = obs_from_html(inbox.format(a=12, b=13, c=14, d=15), goal=first.goal)  # drawn again: new ids
    other = obs_from_html(inbox.format(a=2, b=3, c=4, d=5).replace("Team photo", "Book club"), goal=first.goal)
    sig = page_signature
    assert sig(PageState.from_observation(first)) == sig(PageState.from_observation(again))
    assert sig(PageState.from_observation(first)) != sig(PageState.from_observation(other))
    open_first, open_again = Action("click", target=Element(3)), Action("click", target=Element(13))
    assert action_signature(first, open_first) == action_signature(again, open_again)
    assert action_signature(first, open_first) != action_signature(first, Action("click", target=Element(5)))

    trail = Trail()
    trail.see(first)
    trail.took(first, open_first)
    check = Delta([SetChecked(9, True)])
    kw = {"score": 1.0, "rank": 0, "k": 5, "history": []}
    fresh = value_features("text", again, Action("click", target=Element(9)), delta=check, trail=trail, **kw)
    repeat = value_features("text", again, open_again, delta=Delta([]), trail=trail, **kw)
    blind = value_features("text", again, open_again, delta=Delta([]), **kw)
    n_action = _offset(first)
    # the action group's last feature: taken before; the text group's last: the imagined page was visited
    assert (fresh[n_action - 1], fresh[-1]) == (0.0, 0.0)
    assert (repeat[n_action - 1], repeat[-1]) == (1.0, 1.0)
    assert (blind[n_action - 1], blind[-1]) == (0.0, 0.0)  # no trail: nothing counts as seen
    # the search keeps the trail: what it saw and what it chose
    policy = SearchPolicy(FixedBase([open_again]), RuleWorldModel(), SearchConfig(world_model="rule", k=1))
    policy.reset(first.goal, {})
    policy.act(again, {})
    assert policy.trail.pages == {sig(PageState.from_observation(first))}
    assert policy.trail.actions == {action_signature(first, open_first)}


def test_the_value_function_never_prefers_a_repeat_or_a_step_back():
    import dataclasses
    import random

    import numpy as np

    from parsimon.gui.world_model.value import _EMPTY, ValueFunction, _trail_columns

    from .conftest import synthetic_transitions

    rng = random.Random(0)
    transitions = []
    for k in range(12):
        ts = synthetic_transitions(f"synth/list-{k}", "list", episodes=3, seed=k)
        # half of the episodes end solved, and only those take their first step again at the end (back
        # to a page seen before), so repeats lean towards solved episodes here; the fit must still never
        # score a candidate higher for repeating an action or for leading back
        for ep in sorted({t.episode for t in ts}):
            steps = [t for t in ts if t.episode == ep]
            solved = rng.random() < 0.5
            if solved:
                steps.append(dataclasses.replace(steps[0], step=len(steps) + 1))
            transitions += [dataclasses.replace(t, success=solved) for t in steps]
    value = ValueFunction.fit(transitions, render=False)
    repeat, revisit = _trail_columns(transitions[0])
    x = np.asarray([[rng.random() < 0.5 for _ in range(value.state["models"]["text"].n_features_in_)]
                    for _ in range(200)], dtype=float)
    empty = repeat + 1 + _EMPTY  # the imagined page's empty text fields (text modes)
    for mode, cols in (("none", [repeat]), ("text", [repeat, revisit, empty])):
        model = value.state["models"][mode]
        assert [model.monotonic_cst[c] for c in cols] == [-1] * len(cols)
        assert model.monotonic_cst[repeat + 1 + _EMPTY] == (-1 if mode == "text" else 0)
        base = x[:, : model.n_features_in_].copy()
        for col in cols:
            off, on = base.copy(), base.copy()
            off[:, col], on[:, col] = 0.0, 1.0 + 2.0 * (col == empty)
            assert (np.asarray(value.score(mode, on.tolist())) <= np.asarray(value.score(mode, off.tolist())) + 1e-12).all()


REPLY = ('<html><body><div data-pid="1"><p data-pid="2">{sent}</p>'
         '<textarea data-pid="3">{typed}</textarea><button data-pid="4">Send</button></div></body></html>')


def _reply_episode(obs_from_html, task, seed, solved):
    """A reply episode: type the quoted text (or another), send, stop; solved when the quoted text was sent."""
    from parsimon.gui.world_model.store import Transition

    goal = 'Reply "Thanks!" to the message.'
    text = "Thanks!" if solved else "Maybe"
    pages = [REPLY.format(sent="", typed=""), REPLY.format(sent="", typed=text),
             REPLY.format(sent=f"Sent: {text}", typed=""), REPLY.format(sent=f"Sent: {text}", typed="")]
    obs = [obs_from_html(p, goal=goal) for p in pages]
    actions = [Action("type", target=Element(3), text=text, clear=True), Action("click", target=Element(4)),
               Action("terminate", status="success")]
    if seed % 2 and not solved:  # some unsolved episodes stop at once
        obs, actions = obs[:1] * 2, actions[2:]
    return [Transition(f"{task}#{seed}", task, seed, i + 1, obs[i], a, obs[i + 1], 0.0, a.terminal,
                       solved and a.terminal) for i, a in enumerate(actions)]


def test_the_done_model_scores_a_stop_by_whether_the_task_is_done_now(obs_from_html):
    from parsimon.gui.world_model.value import Trail, ValueFunction, done_features

    transitions = [t for k in range(24) for t in _reply_episode(obs_from_html, f"synth/reply-{k % 4}", k, k % 3 != 0)]
    value = ValueFunction.fit(transitions, render=False)
    assert value.has_done and value.state["done_positive"] == 16

    def p_done(episode):  # the chance of done at the state where the episode stops
        trail, history = Trail(), []
        for t in episode[:-1]:
            trail.see(t.state)
            trail.took(t.state, t.action)
            history.append(t.action)
        trail.see(episode[-1].state)
        return value.done(done_features(episode[-1].state, history, trail, 0, -5.0))

    solved, wrong, early = (_reply_episode(obs_from_html, "synth/reply-9", s, ok) for s, ok in ((0, True), (2, False),
                                                                                             (1, False)))
    assert p_done(solved) > 0.8 and p_done(wrong) < 0.2 and p_done(early) < 0.2

    # the search keeps the base's stop when done is likely and overrules it when not
    class Done:
        has_done = True

        def __init__(self, p):
            self.p = p

        def score(self, mode, rows):
            return [0.5] * len(rows)

        def done(self, features):
            return self.p

    obs = obs_from_html(REPLY.format(sent="Sent: Thanks!", typed=""), goal='Reply "Thanks!" to the message.')
    stop, send = Action("terminate", status="success"), Action("click", target=Element(4))
    for p, want in ((0.9, stop), (0.1, send)):
        policy = SearchPolicy(FixedBase([stop, send]), None, SearchConfig(k=2, mode="none", stop="done"), value=Done(p))
        policy.reset(obs.goal, {})
        decision = policy.act(obs, {})
        assert decision.action == want and decision.meta["scores"][0] == p
    # by default the stop is scored like the others
    policy = SearchPolicy(FixedBase([stop, send]), None, SearchConfig(k=2, mode="none"), value=Done(0.9))
    policy.reset(obs.goal, {})
    assert policy.act(obs, {}).meta["scores"][0] == 0.5
    # where the environment logged whether the task stood solved after each step, that labels the done model:
    # an episode that sent the reply and went on without stopping (two waits) teaches it too
    import dataclasses

    logged, plain = [], []
    for k in range(24):
        ep = _reply_episode(obs_from_html, f"synth/reply-{k % 4}", k, k % 3 != 0)
        if k % 6 == 1:
            wait = Action("wait", seconds=0.1)
            ep = ep[:2] + [dataclasses.replace(ep[2], action=wait, success=False, terminated=False),
                           dataclasses.replace(ep[2], step=4, action=wait, success=False, terminated=False)]
        plain += ep
        logged += [dataclasses.replace(t, meta={"solved_now": k % 3 != 0 and i >= 1}) for i, t in enumerate(ep)]
    assert ValueFunction.fit(plain, render=False).state["done_positive"] == 12  # the solved stops only
    assert ValueFunction.fit(logged, render=False).state["done_positive"] == 12 + 4 * 2  # every state after a sent reply
    # a value/3 file has no done model: stop='done' says so when the search is built
    old = ValueFunction(state={**value.state, "format": "parsimon.gui.world_model.value/3", "done": None})
    assert not old.has_done
    with pytest.raises(ConfigError, match="done model"):
        SearchPolicy(FixedBase([stop, send]), None, SearchConfig(k=2, mode="none", stop="done"), value=old)


def test_the_done_check_stops_once_the_done_model_reads_the_task_as_done(obs_from_html, tmp_path):
    from parsimon.gui.world_model.value import ValueFunction

    class Done:
        has_done = True

        def __init__(self, p):
            self.p, self.seen = p, []

        def score(self, mode, rows):
            return [0.5] * len(rows)

        def done(self, features):
            self.seen.append(features)
            return self.p

    obs = obs_from_html(REPLY.format(sent="Sent: Thanks!", typed=""), goal='Reply "Thanks!" to the message.')
    send, again = Action("click", target=Element(4)), Action("type", target=Element(3), text="Thanks!", clear=True)
    for p, stops in ((0.9, True), (0.5, True), (0.4, False)):
        value = Done(p)
        policy = SearchPolicy(FixedBase([send, again]), None, SearchConfig(k=2, mode="none", done_check=0.5),
                              value=value)
        policy.reset(obs.goal, {})
        assert policy.act(obs, {}).action == send and value.seen == []  # never before the first step
        second = policy.act(obs, {})
        assert (second.action.kind == "terminate") == stops and len(value.seen) == 1
        # every checked step records the threshold in force and the reading, whether it stops or not
        assert second.meta["done_p"] == p and second.meta["done_check"] == 0.5
        if stops:
            assert second.action.status == "success"
            assert policy.base.history[-1] == second.action  # the base knows the episode stopped
    # on by default (DEFAULT_DONE_CHECK) wherever the value function has a done model; 0 turns it off
    for setting, p, kinds in ((None, 0.5, ["click", "terminate"]), (None, 0.4, ["click"] * 3),
                              (0.0, 1.0, ["click"] * 3)):
        policy = SearchPolicy(FixedBase([send, again]), None, SearchConfig(k=2, mode="none", done_check=setting),
                              value=Done(p))
        policy.reset(obs.goal, {})
        decisions = [policy.act(obs, {}) for _ in range(len(kinds))]
        assert [d.action.kind for d in decisions] == kinds
        assert policy.done_check == (DEFAULT_DONE_CHECK if setting is None else setting)
        # the default's threshold is in the step records (a run's config holds the settings as given)
        in_force = DEFAULT_DONE_CHECK if setting is None else None  # 0: no check, nothing recorded
        assert [d.meta.get("done_check") for d in decisions] == [None] + [in_force] * (len(kinds) - 1)
    assert DEFAULT_DONE_CHECK == 0.5
    # bad settings are refused, and so is a check asked of a value function without a done model; left unset,
    # the check is simply off there
    with pytest.raises(ConfigError, match="done_check"):
        SearchConfig(done_check=1.5)
    no_done = Done(1.0)
    no_done.has_done = False
    with pytest.raises(ConfigError, match="`done_check` needs the value scorer with a done model"):
        SearchPolicy(FixedBase([send]), None, SearchConfig(k=2, mode="none", done_check=0.5), value=no_done)
    policy = SearchPolicy(FixedBase([send, again]), None, SearchConfig(k=2, mode="none"), value=no_done)
    policy.reset(obs.goal, {})
    assert policy.done_check == 0.0 and [policy.act(obs, {}).action.kind for _ in range(3)] == ["click"] * 3
    # the search's own episodes can teach the done model and nothing else
    store = [t for k in range(12) for t in _reply_episode(obs_from_html, f"synth/reply-{k % 4}", k, k % 3 != 0)]
    searched = [t for k in range(12, 18) for t in _reply_episode(obs_from_html, f"synth/reply-{k % 4}", k, True)]
    alone = ValueFunction.fit(store, render=False)
    both = ValueFunction.fit(store, render=False, done_transitions=searched)
    assert both.state["rows"] == alone.state["rows"] == len(store)
    assert both.state["done_rows"] == len(store) + len(searched)
    assert both.state["done_positive"] == alone.state["done_positive"] + 6  # each solved stop
