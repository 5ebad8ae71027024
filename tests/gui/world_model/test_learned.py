"""The learned world model on synthetic tasks with known dynamics: it beats the trivial and rule models on
tasks it never saw, round-trips through a file, and learns more from more transitions."""

from __future__ import annotations

import pytest

from parsimon.errors import ConfigError
from parsimon.gui.world_model.delta import PageState
from parsimon.gui.world_model.evaluate import NoChangeModel, score_models, split_by_task
from parsimon.gui.world_model.learned import LearnedConfig, LearnedWorldModel
from parsimon.gui.world_model.metrics import true_delta
from parsimon.gui.world_model.rules import RuleWorldModel

from .conftest import synthetic_transitions

FAMILIES = ("checks", "accordion", "list")


@pytest.fixture(scope="module")
def data():
    # six tasks per family; the even ones train, the odd ones are held out (unseen task names and ids)
    train, test = [], []
    for fam in FAMILIES:
        for k in range(6):
            ts = synthetic_transitions(f"synth/{fam}-{k}", fam, episodes=4, seed=k)
            (train if k % 2 == 0 else test).extend(ts)
    return train, test


def test_learned_beats_the_trivial_and_the_rule_model_on_unseen_tasks(data, tmp_path):
    train, test = data
    model = LearnedWorldModel.fit(train, LearnedConfig(n_estimators=30, seed=0))
    scores = score_models({"no-change": NoChangeModel(), "rule": RuleWorldModel(), "learned": model}, test)
    learned, rule, trivial = scores["learned"], scores["rule"], scores["no-change"]
    assert trivial["f1"] == 0.0  # every synthetic step changes something
    # accordions and list deletions are script behaviour the rules cannot know; the forest learns them
    # from the training tasks (seeded data: the forest scores F1 0.97, exact 0.93; the rules F1 0.49)
    assert learned["f1"] >= 0.9 and learned["exact_real"] >= 0.8
    assert learned["f1"] > rule["f1"] + 0.2
    path = model.save(tmp_path / "m.pkl")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # compressed
    again = LearnedWorldModel(path)
    t = test[0]
    assert again.predict(t.state, t.action).delta.keys() == model.predict(t.state, t.action).delta.keys()


def test_scores_per_store_folder(data, tmp_path):
    import dataclasses

    _, test = data
    a, b = tmp_path / "a", tmp_path / "b"
    logged = [dataclasses.replace(t, source=str((a if i % 3 else b) / "run" / "transitions.jsonl"))
              for i, t in enumerate(test)]
    scores = score_models({"rule": RuleWorldModel()}, logged, [a, b])["rule"]
    parts = scores["by_store"]
    assert [parts[str(a)]["n"], parts[str(b)]["n"]] == [sum(1 for i in range(len(test)) if i % 3),
                                                        sum(1 for i in range(len(test)) if not i % 3)]
    assert "by_store" not in score_models({"rule": RuleWorldModel()}, logged, [a])["rule"]  # one store: no split


def test_more_transitions_do_not_hurt(data):
    from parsimon.gui.world_model.evaluate import learning_curve

    train, test = data
    curve = learning_curve(train, test, (3, len(train)), LearnedConfig(n_estimators=20))
    assert curve[0]["transitions"] == 3 and curve[-1]["transitions"] == len(train)
    assert curve[-1]["f1"] > curve[0]["f1"]


def test_the_split_holds_out_whole_tasks(data):
    train, test = data
    a, b = split_by_task(train + test, 0.3, seed=1)
    assert {t.task for t in a}.isdisjoint({t.task for t in b}) and a and b


def test_confidence_tracks_exactness(data):
    train, test = data
    model = LearnedWorldModel.fit(train, LearnedConfig(n_estimators=30))
    conf_right, conf_wrong = [], []
    for t in test:
        p = model.predict(t.state, t.action)
        before = PageState.from_observation(t.state)
        truth = true_delta(before, PageState.from_observation(t.next_state))
        (conf_right if sorted(map(str, p.delta.keys())) == sorted(map(str, truth.keys())) else conf_wrong).append(
            p.confidence)
    assert conf_right and all(0.0 <= c <= 1.0 for c in conf_right + conf_wrong)
    if conf_wrong:
        assert sum(conf_right) / len(conf_right) > sum(conf_wrong) / len(conf_wrong)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="train one first"):
        LearnedWorldModel(tmp_path / "missing.pkl")
    (tmp_path / "bad.pkl").write_bytes(__import__("pickle").dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="not a learned world model"):
        LearnedWorldModel(tmp_path / "bad.pkl")
    for junk in (b"not a pickle at all", b"\x1f\x8b broken gzip"):
        (tmp_path / "junk.pkl").write_bytes(junk)
        with pytest.raises(ConfigError, match="not a learned world model"):
            LearnedWorldModel(tmp_path / "junk.pkl")
    with pytest.raises(ConfigError, match="no transitions"):
        LearnedWorldModel.fit([])
    with pytest.raises(ConfigError, match="threshold"):
        LearnedConfig(threshold=1.5)
    with pytest.raises(ConfigError, match="max_distance"):
        LearnedConfig(max_distance=-1)


def test_candidates_reach_max_distance_steps_and_older_files_keep_six(data):
    from parsimon.gui.world_model.dom import parse
    from parsimon.gui.world_model.features import candidates

    # a button, and spans 1 to 10 steps away from it in the tree (up one div, down k-1 more)
    deep = "".join(f"<div data-pid='{100 + k}'>" for k in range(9)) + "<span data-pid='9'>far</span>" + "</div>" * 9
    html = (f"<html><body><div data-pid='1'><button data-pid='2'>go</button>"
            f"<span data-pid='3'>near</span>{deep}</div></body></html>")
    index = parse(html).index()
    target = index[2]
    assert {n.pid for n in candidates(index, target, max_distance=2)} == {1, 2, 3, 100}
    assert 9 not in {n.pid for n in candidates(index, target, max_distance=10)}  # 11 steps
    assert 9 in {n.pid for n in candidates(index, target, max_distance=11)}
    # the model keeps its setting in the file; a file written before the setting existed was fit with 6
    train, _ = data
    model = LearnedWorldModel.fit(train[:40], LearnedConfig(n_estimators=5, calibrate=False))
    assert model.config.max_distance == 8
    old = {**model.state, "config": {k: v for k, v in model.state["config"].items() if k != "max_distance"}}
    assert LearnedWorldModel(state=old).config.max_distance == 6


def test_the_confidence_map_is_fit_on_held_out_tasks_and_calibrates(data):
    train, test = data
    model = LearnedWorldModel.fit(train, LearnedConfig(n_estimators=30))
    cal = model.state["calibration"]
    # the map is fit on training tasks a second fit never saw, and raises the confidence with the raw one
    assert cal is not None and cal["held_out"] >= 30 and cal["slope"] > 0
    raw = LearnedWorldModel(state={**model.state, "calibration": None})
    scores = score_models({"mapped": model, "raw": raw}, test)
    # seeded data: the product of the forest's probabilities is too low (ECE 0.069); mapped 0.034
    assert scores["mapped"]["ece"] < scores["raw"]["ece"]
    assert scores["mapped"]["brier"] <= scores["raw"]["brier"]
    assert scores["mapped"]["f1"] == scores["raw"]["f1"]  # only the confidence changes
    t = test[0]
    assert model.predict(t.state, t.action).confidence != raw.predict(t.state, t.action).confidence
    # without the map (or with too few held-out predictions to fit one) the raw confidence is reported
    plain = LearnedWorldModel.fit(train, LearnedConfig(n_estimators=30, calibrate=False))
    assert plain.state["calibration"] is None
    assert plain.predict(t.state, t.action).confidence == raw.predict(t.state, t.action).confidence
    assert LearnedWorldModel.fit(train[:20], LearnedConfig(n_estimators=10)).state["calibration"] is None
    with pytest.raises(ConfigError, match="calibration_share"):
        LearnedConfig(calibration_share=1.0)


def test_an_aria_controls_effect_goes_to_the_controlled_element_not_its_look_alikes():
    import numpy as np

    from parsimon.gui.world_model.dom import parse
    from parsimon.gui.world_model.learned import _keep_to_controlled

    html = ('<html><body><div data-pid="0">'
            + "".join(f'<h3 role="tab" id="h{i}" aria-controls="p{i}" data-pid="{2 * i + 1}">Section {i}</h3>'
                      f'<div role="tabpanel" id="p{i}" data-pid="{2 * i + 2}" style="display: none">text {i}</div>'
                      for i in range(3))
            + "</div></body></html>")
    index = parse(html).index()
    nodes = [index[p] for p in (1, 2, 3, 4, 5, 6)]  # h0 p0 h1 p1 h2 p2
    # columns: open (panel), expanded (header), close (the other open panel)
    decided = np.array([[0, 1, 0], [1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=bool)
    _keep_to_controlled(nodes, decided, index[1], index)  # clicking the first header
    assert decided.tolist() == [[False, True, False], [True, False, False], [False, False, False],
                                [False, False, True], [False, False, False], [False, False, False]]
    # a target that names nothing it controls leaves the forest's decisions as they were
    plain = parse(html.replace(' aria-controls="p0"', "")).index()
    again = np.ones((6, 3), dtype=bool)
    _keep_to_controlled([plain[p] for p in (1, 2, 3, 4, 5, 6)], again, plain[1], plain)
    assert again.all()
