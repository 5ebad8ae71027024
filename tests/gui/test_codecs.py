"""Round trips of the GUI-Owl codecs (property tests) and their errors."""

from __future__ import annotations

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from parsimon.errors import InvalidAction
from parsimon.gui.actions import ACTION_FIELDS, KINDS, WINDOW, Action, Element, Point
from parsimon.gui.codecs import decode, decode_call, encode, encode_call
from parsimon.gui.coords import smart_resize, to_norm1000, to_pixels
from parsimon.gui.tools import ACTION_ARGS, PLATFORMS

coord_num = st.one_of(st.integers(0, 1000), st.floats(0, 1000, allow_nan=False))
coord = st.lists(coord_num, min_size=2, max_size=2)
text = st.text(min_size=1, max_size=20).filter(lambda s: s.strip())
number = st.one_of(st.integers(-5000, 5000), st.floats(-5000, 5000, allow_nan=False))
seconds = st.one_of(st.integers(0, 60), st.floats(0, 60, allow_nan=False))
label = st.one_of(st.integers(0, 500), st.from_regex(r"[0-9]{1,3}", fullmatch=True))

ARG_VALUES = {
    "coordinate": coord, "coordinate2": coord, "keys": st.lists(text, min_size=1, max_size=3), "text": text,
    "pixels": number, "time": seconds, "status": st.sampled_from(["success", "failure"]),
    "button": st.sampled_from(["Back", "Home", "Menu", "Enter"]), "label": label,
    "direction": st.sampled_from(["up", "down"]), "option": text,
}


@st.composite
def tool_args(draw, platform):
    """Any valid ``arguments`` object of the platform's tool."""
    name = draw(st.sampled_from(sorted(ACTION_ARGS[platform])))
    required, optional = ACTION_ARGS[platform][name]
    args = {"action": name}
    for key in required:
        args[key] = draw(ARG_VALUES[key])
    for key in optional:
        if draw(st.booleans()):
            args[key] = draw(st.sampled_from(["WINDOW"]) if key == "label" and draw(st.booleans())
                             else ARG_VALUES[key])
    return args


point = st.builds(Point, coord_num, coord_num)
target = st.one_of(st.none(), point, st.builds(Element, label), st.just(WINDOW))


FIELD_VALUES = {
    "target": target, "end": st.one_of(point, st.builds(Element, label)), "text": text,
    "keys": st.lists(text, min_size=1, max_size=2).map(tuple), "option": text,
    "direction": st.sampled_from(["up", "down", "left", "right"]), "amount": st.integers(0, 3000),
    "seconds": seconds, "status": st.sampled_from(["success", "failure"]), "clear": st.booleans(),
    "enter": st.booleans(),
}


@st.composite
def any_action(draw):
    """Each kind with its required fields and a random subset of its optional ones."""
    kind = draw(st.sampled_from(KINDS))
    required, optional = ACTION_FIELDS[kind]
    values = {k: draw(FIELD_VALUES[k]) for k in required}
    values.update({k: draw(FIELD_VALUES[k]) for k in optional if draw(st.booleans())})
    try:
        return Action(kind, **values)
    except InvalidAction:
        reject()


@pytest.mark.parametrize("platform", PLATFORMS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_call_round_trip(platform, data):
    args = data.draw(tool_args(platform))
    action = decode(platform, args)
    assert encode(platform, action) == args
    assert Action.from_dict(action.to_dict()) == action


@pytest.mark.parametrize("platform", PLATFORMS)
@settings(max_examples=400, deadline=None)
@given(action=any_action())
def test_action_round_trip(platform, action):
    try:
        args = encode(platform, action)
    except InvalidAction:
        return  # not expressible on this platform
    assert decode(platform, args) == action


def test_every_kind_is_expressible_somewhere():
    examples = {
        "click": Action("click", target=Point(1, 2)), "double_click": Action("double_click", target=Point(1, 2)),
        "triple_click": Action("triple_click", target=Point(1, 2)),
        "right_click": Action("right_click", target=Point(1, 2)),
        "middle_click": Action("middle_click", target=Point(1, 2)), "hover": Action("hover", target=Point(1, 2)),
        "long_press": Action("long_press", target=Point(1, 2), seconds=1),
        "type": Action("type", text="x"), "key": Action("key", keys=("ctrl", "a")),
        "device_key": Action("device_key", text="volume_up"),
        "scroll": Action("scroll", direction="down", amount=5), "drag": Action("drag", end=Point(3, 4)),
        "select": Action("select", target=Element(2), option="b"), "go_back": Action("go_back"),
        "home": Action("home"), "menu": Action("menu"), "open": Action("open", text="Notes"),
        "wait": Action("wait", seconds=1), "answer": Action("answer", text="42"),
        "terminate": Action("terminate", status="success"), "interact": Action("interact", text="help?"),
    }
    assert set(examples) == set(KINDS)
    for kind, action in examples.items():
        expressed = []
        for p in PLATFORMS:
            try:
                expressed.append(decode(p, encode(p, action)) == action)
            except InvalidAction:
                pass
        assert expressed and all(expressed), kind


def test_known_mappings():
    assert decode("computer", {"action": "scroll", "pixels": 300}) == Action("scroll", direction="up", amount=300)
    assert decode("computer", {"action": "scroll", "pixels": -2}) == Action("scroll", direction="down", amount=2)
    assert decode("computer", {"action": "hscroll", "pixels": -2}) == Action("scroll", direction="left", amount=2)
    assert decode("computer", {"action": "left_click_drag", "coordinate": [5, 6]}) == \
        Action("drag", end=Point(5, 6))
    assert decode("mobile", {"action": "swipe", "coordinate": [1, 2], "coordinate2": [3, 4]}) == \
        Action("drag", target=Point(1, 2), end=Point(3, 4))
    assert decode("mobile", {"action": "system_button", "button": "Back"}) == Action("go_back")
    assert decode("mobile", {"action": "system_button", "button": "Enter"}) == Action("key", keys=("Enter",))
    assert decode("browser", {"action": "type", "label": 4, "text": "hi"}) == \
        Action("type", target=Element(4), text="hi", clear=True, enter=True)
    assert decode("browser", {"action": "scroll", "label": "WINDOW", "direction": "down"}) == \
        Action("scroll", target=WINDOW, direction="down")
    assert decode("browser", {"action": "wikipedia"}) == Action("open", text="Wikipedia")
    assert encode_call("mobile", Action("home")) == {"name": "mobile_use",
                                                     "arguments": {"action": "system_button", "button": "Home"}}
    assert decode_call("browser", {"name": "browser_use", "arguments": {"action": "go_back"}}) == Action("go_back")


@pytest.mark.parametrize("platform,args,match", [
    ("computer", {"action": "left_click"}, r"needs \['coordinate'\]"),
    ("computer", {"action": "left_click", "coordinate": [10, 1200]}, r"\[0, 1000\]"),
    ("computer", {"action": "fly"}, "must be one of"),
    ("computer", {"action": "type", "text": "a", "label": 3}, r"does not take \['label'\]"),
    ("mobile", {"action": "system_button", "button": "Power"}, "Back"),
    ("browser", {"action": "click", "label": "WINDOW"}, "only for scroll"),
    ("browser", {"action": "scroll", "direction": "left"}, "'up' or 'down'"),
    ("computer", {"action": "terminate", "status": "done"}, "success"),
    ("computer", ["left_click"], "JSON object"),
])
def test_decode_errors_name_the_problem(platform, args, match):
    with pytest.raises(InvalidAction, match=match):
        decode(platform, args)


def test_encode_refuses_what_a_platform_cannot_express():
    with pytest.raises(InvalidAction, match="computer_use cannot express"):
        encode("computer", Action("select", target=Element(3), option="x"))
    with pytest.raises(InvalidAction, match="mobile_use cannot express"):
        encode("mobile", Action("click", target=Element(3)))
    with pytest.raises(InvalidAction, match="browser_use cannot express"):
        encode("browser", Action("click", target=Point(3, 4)))
    with pytest.raises(InvalidAction, match="screen `size`"):
        encode("computer", Action("click", target=Point(30, 40, "px")))
    assert encode("computer", Action("click", target=Point(640, 180, "px")), size=(1280, 720)) == \
        {"action": "left_click", "coordinate": [500, 250]}


@settings(max_examples=300, deadline=None)
@given(x=st.integers(0, 1000), y=st.integers(0, 1000), w=st.integers(100, 4000), h=st.integers(100, 4000))
def test_norm1000_to_pixels_and_back(x, y, w, h):
    px = to_pixels(Point(x, y), (w, h))
    assert 0 <= px.x <= w and 0 <= px.y <= h
    back = to_norm1000(px, (w, h))
    assert abs(back.x - x) <= 1 and abs(back.y - y) <= 1
    # through whole pixels too (what a mouse event gets), within a pixel's share of the grid
    whole = to_norm1000(Point(round(px.x), round(px.y), "px"), (w, h))
    assert abs(whole.x - x) <= 1 + 500 / w and abs(whole.y - y) <= 1 + 500 / h


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 5000), w=st.integers(1, 5000), factor=st.sampled_from([14, 16, 28, 32]))
def test_smart_resize_rule(h, w, factor):
    if max(h, w) / min(h, w) > 200:
        with pytest.raises(ValueError):
            smart_resize(h, w, factor=factor)
        return
    rh, rw = smart_resize(h, w, factor=factor, min_pixels=3136, max_pixels=10035200)
    assert rh % factor == 0 and rw % factor == 0
    assert rh * rw <= 10035200
    assert rh * rw >= 3136 or rh * rw >= factor * factor
    # the aspect ratio survives up to one grid step on each side
    assert abs(rh / rw - h / w) <= (factor / rw + factor / rh) * max(1, h / w) * 2


@pytest.mark.parametrize("h,w,factor,expected", [
    (1080, 1920, 16, (1088, 1920)), (1440, 1080, 28, (1428, 1092)), (10, 10, 28, (56, 56)),
    (8000, 8000, 16, (3152, 3152)), (214, 332, 16, (208, 336)), (851, 393, 28, (840, 392)),
])
def test_smart_resize_matches_the_official_client(h, w, factor, expected):
    # Expected values computed with the official client's smart_resize (Mobile-Agent-v3.5
    # computer_use/utils.py, min_pixels 3136, max_pixels 10,035,200).
    assert smart_resize(h, w, factor=factor) == expected
