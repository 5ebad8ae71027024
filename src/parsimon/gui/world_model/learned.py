"""The ``learned`` world model: effects per element, learned from the transition store.

Training (:meth:`LearnedWorldModel.fit`), for every logged transition:

1. compute the true, observable delta (:func:`~parsimon.gui.world_model.metrics.true_delta`) and write
   each op as an *effect* on an element, relative to the action (:func:`~parsimon.gui.world_model.features.effect_labels`:
   ``checked=1``, ``focus``, ``value=typed``, ``class+ui-state-active``, ``attr:aria-expanded=true``...);
2. for every labelled element near the target, build the (element, target, action) feature vector
   (:func:`~parsimon.gui.world_model.features.pair_features`, which includes what the ``rule`` model
   predicts), with the element's effects as its labels;
3. fit one multi-label random forest (scikit-learn) on all rows, and three small heads beside it: the list
   head decides whether a list is drawn again and grows, from a few page-independent features of the
   list elements (so that it carries over to new apps), the item head, from the same features of the
   lists' items, whether an item is removed (the row holding the Delete button clicked), and the count head, fit only on the elements
   whose text, value or ARIA value holds a number, decides whether a counter counts up or down
   (``text=n0-1``, ``value=n0+1``, ``attr:aria-valuenow=n0+1``).

Prediction runs the forest on the page's candidate elements, keeps the effects whose probability passes
``threshold`` (an effect the target's ``aria-controls`` element, or the target itself, shares with
look-alikes of the same ARIA role is kept for the controlled element only: one accordion header opens its
own panel, :func:`_keep_to_controlled`) and writes them back as ops (:func:`~parsimon.gui.world_model.features.instantiate`). The
raw confidence is the forest's probability that every decision is right (the product over elements and
effects; effects whose value cannot be written count as wrong when predicted); the confidence reported
maps it onto the chance the prediction is exactly right, with a map fit on training tasks held out of a
second fit (:func:`fit_calibration`; ``calibrate=False`` reports the raw one).

Why a random forest from scikit-learn rather than a torch network: the inputs are a few hundred
binary and small-integer features per element, the data are thousands of transitions (the flywheel
adds more with every run), the labels are many, sparse and multi-label. A forest fits that in seconds on
one CPU core without tuning or feature scaling, is deterministic under a seed, handles the
feature interactions (relation × element type × action) that a linear model misses, and predicts a
page in milliseconds, which the search's one-second budget needs. A neural model would need more data
than the store holds to beat it.
"""

from __future__ import annotations

import gzip
import os
import pickle
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from parsimon.errors import ConfigError
from parsimon.gui.actions import Action
from parsimon.gui.world_model.base import WORLD_MODELS, Context, Prediction, WorldModel, target_element
from parsimon.gui.world_model.delta import AddNode, Delta, Navigate, Op, PageState, SetFocus
from parsimon.gui.world_model.dom import element_children, text_runs
from parsimon.gui.world_model.features import (
    COUNT_EFFECT,
    COUNTED_ATTRS,
    FEATURE_NAMES,
    LIST_FEATURES,
    MAX_DISTANCE,
    action_context,
    candidates,
    class_op,
    context_features,
    delta_effects,
    draft_child,
    draft_text,
    instantiate,
    is_list,
    pair_features,
    rerender_ops,
)
from parsimon.gui.world_model.metrics import true_delta
from parsimon.gui.world_model.rules import RuleWorldModel, convention_ops, focusable, merge_ops
from parsimon.gui.world_model.summary import summarize

__all__ = ["LearnedConfig", "LearnedWorldModel", "default_model_path", "training_rows"]

FORMAT = "parsimon.gui.world_model.learned/3"  # 3: the list_item context feature (a file without the
# confidence map, written before it, reports the raw confidence)
LIST_EFFECTS = ("rerender", "add=draft")
ITEM_EFFECTS = ("remove",)  # the item head's: a list's item removed (a row whose Delete button was clicked)
# the columns of the forest and the count head: all but the items' own feature, which only the item head reads
_MAIN = [i for i, n in enumerate(FEATURE_NAMES) if n != "ctx.list_item"]


def default_model_path() -> Path:
    """``$PARSIMON_HOME/gui/world_model/learned.pkl``, where ``parsimon gui wm train`` writes."""
    from parsimon.paths import home

    return home() / "gui" / "world_model" / "learned.pkl"


@dataclass(frozen=True)
class LearnedConfig:
    """Settings of the learned world model."""

    n_estimators: int = 100  # trees in the forest
    max_depth: int = 40  # depth limit of each tree
    min_samples_leaf: int = 1
    max_samples: float = 0.5  # share of the rows each tree is fit on (bootstrap)
    min_effect_count: int = 2  # an effect must occur in this many transitions to be learned
    literal_min: int = 3  # an attribute or text value must recur this often to be predicted verbatim
    threshold: float = 0.5  # an effect is predicted when its probability passes this
    max_candidates: int = 80  # elements scored per prediction (nearest to the target first)
    max_distance: int = MAX_DISTANCE  # how far from the target, in steps of the tree, an element may be (a
    # file written before this setting was fit with 6; 8 reached an inbox's reading pane from its list)
    seed: int = 0
    calibrate: bool = True  # map the confidence onto held-out exactness (see :func:`fit_calibration`)
    calibration_share: float = 0.3  # share of the training tasks held out to fit that map

    def __post_init__(self) -> None:
        if not 0.0 < self.calibration_share < 1.0:
            raise ConfigError(f"`calibration_share` must lie in (0, 1), got {self.calibration_share}")
        if self.n_estimators < 1:
            raise ConfigError(f"`n_estimators` must be >= 1, got {self.n_estimators}")
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"`threshold` must lie in (0, 1), got {self.threshold}")
        if not 0.0 < self.max_samples <= 1.0:
            raise ConfigError(f"`max_samples` must lie in (0, 1], got {self.max_samples}")
        if self.min_effect_count < 1 or self.literal_min < 1:
            raise ConfigError("`min_effect_count` and `literal_min` must be >= 1")
        if self.max_distance < 0:
            raise ConfigError(f"`max_distance` must be >= 0, got {self.max_distance}")


@dataclass
class _Example:
    obs: Any
    action: Action
    labels: list[tuple[int, str]]
    truth: Delta  # the true, observable delta the labels come from


def _examples(transitions: Iterable[Any]) -> list[_Example]:
    out = []
    for t in transitions:
        before = PageState.from_observation(t.state)
        truth = true_delta(before, PageState.from_observation(t.next_state))
        index = before.doc().index()
        el = target_element(t.state, t.action)
        target = index.get(el.pid) if el is not None else None
        labels = delta_effects(truth.ops, index, t.action, el.pid if el is not None else None, base_url=t.state.url,
                               draft=draft_text(index, target, t.action))
        out.append(_Example(t.state, t.action, labels, truth))
    return out


def _rows(obs: Any, action: Action, rule: RuleWorldModel, max_candidates: int,
          max_distance: int) -> tuple[list[Any], list[list[float]], dict]:
    state = PageState.from_observation(obs)
    index = state.doc().index()
    el = target_element(obs, action)
    target = index.get(el.pid) if el is not None else None
    rule_ops, _ = rule.ops(obs, action, index)
    info = {e.pid: e for e in obs.elements}
    nodes = candidates(index, target, max_candidates, max_distance)
    info_t = info.get(target.pid) if target is not None else None
    focused = index.get(obs.focused) if obs.focused is not None else None
    draft = draft_text(index, target, action)
    listed = [is_list(n) for n in nodes]
    nearest = listed.index(True) if True in listed else -1  # candidates come nearest first
    shared = action_context(target, focused, draft is not None)
    parents: dict[int, bool] = {}  # is_list of each candidate's parent, worked out once per parent

    def item(n: Any) -> bool:
        p = n.parent
        if p is None or p.tag in ("html", "body"):
            return False
        if id(p) not in parents:
            parents[id(p)] = is_list(p)
        return parents[id(p)]

    rows = [pair_features(n, target, action, info.get(n.pid), info_t, obs.focused, rule_ops,
                          context_features(n, target, focused, shared, listed[i], i == nearest, item(n)))
            for i, n in enumerate(nodes)]
    return nodes, rows, {"index": index, "target": target, "state": state, "draft": draft}


def _keep_to_controlled(nodes: list[Any], decided: Any, target: Any, index: dict[int, Any]) -> None:
    """Take from ``decided`` (elements x effects) what the forest gives to look-alikes of an ARIA control.

    When the target names the elements it controls (``aria-controls``), an effect predicted both for the
    target (or an element it controls) and for another element of the same ARIA role that it does not
    control is kept for the target (the controlled element) only: clicking one accordion header opens its
    own panel and marks itself expanded, not every panel and header of the accordion (a forest that learned
    from one-section accordions cannot tell the panels apart). Effects the look-alike alone gets, such as
    the other panel closing, stay."""
    if target is None or not target.get("aria-controls"):
        return
    ids = set(target.get("aria-controls").split())
    controlled = [n for n in index.values() if n.get("id") and n.get("id") in ids]
    row = {id(n): i for i, n in enumerate(nodes)}
    mine = {id(n) for n in controlled} | {id(target)}
    for anchor in [target, *controlled]:
        role = anchor.get("role")
        if not role or id(anchor) not in row:
            continue
        shared = decided[row[id(anchor)]]
        for i, n in enumerate(nodes):
            if id(n) not in mine and n.get("role") == role:
                decided[i] &= ~shared


def _relative(effect: str) -> bool:
    """Whether a text effect is written relative to the action (never squashed into ``text=?``)."""
    return (effect == "text=typed" or (effect.startswith("text=part") and effect[9:].isdigit())
            or COUNT_EFFECT.fullmatch(effect) is not None)


def training_rows(examples: list[_Example], cfg: LearnedConfig) -> tuple[Any, Any, list[str], Any]:
    """Feature matrix, label matrix, effect names and which rows' elements hold a number in their text
    (the count head's rows) for ``examples`` (see the module docstring)."""
    import numpy as np

    # effects whose value is a literal are kept verbatim only when the literal recurs
    literal = Counter(e for ex in examples for _, e in set(ex.labels) if e.startswith(("attr:", "text="))
                      and not _relative(e))
    def keep(effect: str) -> bool:
        return literal[effect] >= cfg.literal_min

    def squash(effect: str) -> str:
        if effect.startswith("attr:") and not effect.endswith("=?") and not _relative(effect) and not keep(effect):
            return effect.split("=", 1)[0] + "=?"
        if effect.startswith("text=") and effect != "text=?" and not _relative(effect) and not keep(effect):
            return "text=?"
        return effect

    for ex in examples:
        ex.labels = [(p, squash(e)) for p, e in ex.labels]
    counts = Counter(e for ex in examples for e in {e for _, e in ex.labels})
    order: list[str] = []
    for ex in examples:  # first-seen order: class tokens are re-added in the order pages add them
        for _, e in ex.labels:
            if counts[e] >= cfg.min_effect_count and e not in order:
                order.append(e)
    col = {e: i for i, e in enumerate(order)}
    rule = RuleWorldModel()
    xs, ys, numeric = [], [], []
    for ex in examples:
        nodes, rows, _ = _rows(ex.obs, ex.action, rule, cfg.max_candidates, cfg.max_distance)
        numeric.extend(_numeric(n) for n in nodes)
        want: dict[int, set[str]] = {}
        for p, e in ex.labels:
            if e in col:
                want.setdefault(p, set()).add(e)
        for n, r in zip(nodes, rows, strict=True):
            y = [0] * len(order)
            for e in want.get(n.pid, ()):
                y[col[e]] = 1
            xs.append(r)
            ys.append(y)
    x = np.asarray(xs, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
    y = np.asarray(ys, dtype=np.int8).reshape(len(ys), len(order))
    return x, y, order, np.asarray(numeric, dtype=bool)




def _numeric(node: Any) -> bool:
    """Whether an element's own text, value or ARIA value holds a number (a counter the count head may
    count)."""
    return (any(c.isdigit() for run in text_runs(node) for c in run)
            or any(c.isdigit() for a in ("value", *COUNTED_ATTRS) for c in (node.get(a) or "")))


def _fit_count_head(x: Any, y: Any, numeric: Any, effects: list[str], cfg: LearnedConfig) -> Any:
    """The count head: a forest, on the elements whose own text holds a number, for the counter effects
    (``text=n0-1``...). They are apart from the main forest because they only concern those few rows; fit
    together, their labels moved the main forest's splits for every other effect. None when no counter
    changed in training."""
    from sklearn.ensemble import RandomForestClassifier

    cols = [i for i, e in enumerate(effects) if COUNT_EFFECT.fullmatch(e)]
    if not cols or not numeric.any() or not y[numeric][:, cols].any():
        return None
    head = RandomForestClassifier(n_estimators=cfg.n_estimators, max_depth=12, min_samples_leaf=1,
                                  max_features="sqrt", random_state=cfg.seed, n_jobs=1)
    head.fit(x[numeric][:, _MAIN], y[numeric][:, cols])
    return head


def _list_columns(which: str = "ctx.list") -> tuple[list[int], int]:
    names = {n: i for i, n in enumerate(FEATURE_NAMES)}
    return [names[n] for n in LIST_FEATURES], names[which]


def _fit_list_head(x: Any, y: Any, effects: list[str], cfg: LearnedConfig, which: str = "ctx.list",
                   wanted: tuple[str, ...] = LIST_EFFECTS) -> Any:
    """The list head: a small forest over :data:`~parsimon.gui.world_model.features.LIST_FEATURES` of the
    list elements, for the effects in :data:`LIST_EFFECTS` (None when no list changed in training);
    ``which="ctx.list_item"``, ``wanted=ITEM_EFFECTS``: the item head, the same over the items of lists."""
    from sklearn.ensemble import RandomForestClassifier

    cols, is_list_col = _list_columns(which)
    want = [effects.index(e) if e in effects else None for e in wanted]
    rows = x[:, is_list_col] > 0
    if not rows.any() or want[0] is None or not y[rows, want[0]].any():
        return None
    import numpy as np

    ys = np.stack([y[rows, j] if j is not None else np.zeros(int(rows.sum()), dtype=y.dtype) for j in want], axis=1)
    head = RandomForestClassifier(n_estimators=cfg.n_estimators, max_depth=8, min_samples_leaf=1, max_features="sqrt",
                                  random_state=cfg.seed, n_jobs=1)
    head.fit(x[rows][:, cols], ys[:, 0] if ys.shape[1] == 1 else ys)
    return head


def _positive(probs: Any, classes: Any, n: int) -> Any:
    """The probability of class 1 from one output of a multi-output forest."""
    import numpy as np

    return probs[:, list(classes).index(1)] if 1 in list(classes) else np.zeros(n)


CALIBRATION_MIN = 30  # held-out predictions needed to fit the confidence map (fewer: the raw confidence)


def _logit(p: Any) -> Any:
    import numpy as np

    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def fit_calibration(transitions: list[Any], examples: list[_Example], cfg: LearnedConfig) -> dict[str, Any] | None:
    """A map from the raw confidence to the chance a prediction is exactly right, fit on tasks held out of
    ``transitions`` (Platt scaling: a logistic regression on the raw confidence's logit).

    The raw confidence multiplies the forest's per-decision probabilities as if they were independent;
    they are not, and the heads and the rules' conventions add ops it does not weigh, so it comes out
    too low (on the benchmark's held-out tasks, predictions with a raw confidence of 0.1-0.2 were right
    half of the time). A model without calibration (``calibrate=False``) is fit on ``1 - share`` of the
    tasks, predicts the rest, and the map is fit on (raw confidence, exact) pairs (``examples``: those of
    ``transitions``, true deltas included, so nothing is diffed twice). None when there are too few
    held-out predictions or they are all right or all wrong."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from parsimon.gui.world_model.evaluate import held_out
    from parsimon.gui.world_model.metrics import score_prediction

    pairs = list(zip(transitions, examples, strict=True))
    held = [(t, ex) for t, ex in pairs if held_out(t.task, cfg.calibration_share, cfg.seed + 1)]
    fit_on = [(t, ex) for t, ex in pairs if not held_out(t.task, cfg.calibration_share, cfg.seed + 1)]
    if len(held) < CALIBRATION_MIN or len({t.task for t, _ in fit_on}) < 2:
        return None
    model = LearnedWorldModel._fit([t for t, _ in fit_on], [ex for _, ex in fit_on],
                                   LearnedConfig(**{**asdict(cfg), "calibrate": False}))
    raw, exact = [], []
    for t, ex in held:
        pred = model.predict(t.state, t.action)
        raw.append(pred.confidence)
        exact.append(score_prediction(PageState.from_observation(t.state), pred.delta, ex.truth).exact)
    if len(set(exact)) < 2:
        return None
    lr = LogisticRegression(C=10.0).fit(_logit(raw)[:, None], np.asarray(exact, dtype=int))
    return {"slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0]), "held_out": len(held),
            "exact": float(np.mean(exact)), "raw_mean": float(np.mean(raw))}


class LearnedWorldModel(WorldModel):
    """See the module docstring.

    Args:
        path: A model written by :meth:`save` (default :func:`default_model_path`); ignored when
            ``state`` is given.
        state: A trained model's contents, as :meth:`fit` makes them.
    """

    name = "learned"

    def __init__(self, path: str | os.PathLike | None = None, *, state: dict | None = None) -> None:
        if state is None:
            path = Path(path) if path is not None else default_model_path()
            if not path.is_file():
                raise ConfigError(f"no learned world model at {path}: train one first with `parsimon gui wm train` "
                                  "(or give its path)")
            with open(path, "rb") as fh:
                head = fh.read(2)
                fh.seek(0)
                try:  # save() writes gzip; a model written before it did is plain
                    source = gzip.GzipFile(fileobj=fh) if head == b"\x1f\x8b" else fh
                    state = pickle.load(source)  # noqa: S301 - our own file, written by save()
                except (pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
                    raise ConfigError(f"{path} is not a learned world model (unreadable: {exc})") from None
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise ConfigError(f"{path} is not a learned world model written by this version ({FORMAT})")
        self.state = state
        self.config = LearnedConfig(**{"max_distance": 6, **state["config"]})  # 6: before the setting
        self.effects: list[str] = state["effects"]
        self.forest = state["forest"]
        self._rule = RuleWorldModel()
        # a spinner seen in training is the model's own to predict; the rules' convention fills in otherwise
        self._known = ("spin",) if any(e.startswith(("value=n", "attr:aria-valuenow=n")) for e in self.effects) else ()
        self._count_cols = [i for i, e in enumerate(self.effects) if COUNT_EFFECT.fullmatch(e)]  # the count head's

    @classmethod
    def fit(cls, transitions: Iterable[Any], config: LearnedConfig | None = None) -> LearnedWorldModel:
        """Train on logged transitions (:class:`~parsimon.gui.world_model.store.Transition` objects)."""
        t0 = time.perf_counter()
        transitions = list(transitions)
        examples = _examples(transitions)
        if not examples:
            raise ConfigError("no transitions to train on: the store is empty (run `parsimon gui wm collect` or an "
                              "evaluation with --transitions first)")
        return cls._fit(transitions, examples, config or LearnedConfig(), t0)

    @classmethod
    def _fit(cls, transitions: list[Any], examples: list[_Example], cfg: LearnedConfig,
             t0: float | None = None) -> LearnedWorldModel:
        """:meth:`fit` on ``transitions`` whose examples are made already."""
        from sklearn.ensemble import RandomForestClassifier

        t0 = time.perf_counter() if t0 is None else t0
        x, y, effects, numeric = training_rows(examples, cfg)
        counts = _fit_count_head(x, y, numeric, effects, cfg)
        main = y.copy()
        main[:, [i for i, e in enumerate(effects) if COUNT_EFFECT.fullmatch(e)]] = 0  # the count head's
        forest = None
        if effects:
            forest = RandomForestClassifier(n_estimators=cfg.n_estimators, max_depth=cfg.max_depth,
                                            min_samples_leaf=cfg.min_samples_leaf, random_state=cfg.seed, n_jobs=1,
                                            max_samples=cfg.max_samples if x.shape[0] >= 50 else None)
            forest.fit(x[:, _MAIN], main[:, 0] if main.shape[1] == 1 else main)
        lists = _fit_list_head(x, y, effects, cfg)
        items = _fit_list_head(x, y, effects, cfg, "ctx.list_item", ITEM_EFFECTS)
        calibration = fit_calibration(transitions, examples, cfg) if cfg.calibrate else None
        state = {"format": FORMAT, "config": asdict(cfg), "effects": effects, "forest": forest, "lists": lists,
                 "items": items, "counts": counts, "calibration": calibration,
                 "trained_on": {"transitions": len(examples), "rows": int(x.shape[0]),
                                "effect_counts": {e: int(y[:, i].sum()) for i, e in enumerate(effects)},
                                "seconds": time.perf_counter() - t0}}
        return cls(state=state)

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the model (atomically, gzip-compressed) to ``path`` (default :func:`default_model_path`).

        Compressed because a multi-label forest stores a probability per label in every node, mostly
        zeros: a store of a few thousand transitions makes some 250 MB of pickle and under 10 MB of gzip.
        """
        path = Path(path) if path is not None else default_model_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as fh:
            pickle.dump(self.state, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return path

    @property
    def trained_on(self) -> dict[str, Any]:
        """How many transitions and rows the model saw, and how often each effect occurred."""
        return self.state.get("trained_on", {})

    def _proba(self, rows: list[list[float]], numeric: list[bool] | None = None) -> Any:
        import numpy as np

        x = np.asarray(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
        if self.forest is None or x.shape[0] == 0:
            return np.zeros((x.shape[0], len(self.effects)))
        probs = self.forest.predict_proba(x[:, _MAIN])
        if len(self.effects) == 1:
            probs = [probs]
        classes = self.forest.classes_ if len(self.effects) > 1 else [self.forest.classes_]
        out = np.stack([_positive(p, c, x.shape[0]) for p, c in zip(probs, classes, strict=True)], axis=1)
        for key, which, wanted in (("lists", "ctx.list", LIST_EFFECTS), ("items", "ctx.list_item", ITEM_EFFECTS)):
            head = self.state.get(key)
            cols, is_list_col = _list_columns(which)
            rows = np.flatnonzero(x[:, is_list_col] > 0)
            if head is not None and rows.size:
                hp = head.predict_proba(x[rows][:, cols])
                if len(wanted) == 1:
                    hp, classes = [hp], [head.classes_]
                else:
                    classes = head.classes_
                for k, (p, c) in enumerate(zip(hp, classes, strict=True)):
                    if wanted[k] in self.effects:
                        j = self.effects.index(wanted[k])
                        # the list head decides for lists; the item head adds the removals it is sure of to
                        # the forest's (which knows the items removed for other reasons)
                        hit = _positive(p, c, rows.size)
                        out[rows, j] = hit if key == "lists" else np.maximum(out[rows, j], hit)
        counts = self.state.get("counts")
        at = np.flatnonzero(np.asarray(numeric, dtype=bool)) if numeric is not None else np.zeros(0, dtype=int)
        if counts is not None and at.size:
            cols = self._count_cols
            cp = counts.predict_proba(x[at][:, _MAIN])
            if len(cols) == 1:
                cp = [cp]
            classes = counts.classes_ if len(cols) > 1 else [counts.classes_]
            for j, p, c in zip(cols, cp, classes, strict=True):
                out[at, j] = _positive(p, c, at.size)
        return out

    def predict(self, obs: Any, action: Action, context: Context | None = None) -> Prediction:  # noqa: D102
        return self.predict_many(obs, [action], context)[0]

    def predict_many(self, obs: Any, actions: list[Action], context: Context | None = None) -> list[Prediction]:
        """Predictions for several candidates, with one forest call for all of them."""
        import numpy as np

        t0 = time.perf_counter()
        parts, all_rows, numeric = [], [], []
        for a in actions:
            if a.kind in ("terminate", "answer", "interact"):
                parts.append((a, [], None, 0))
                continue
            nodes, rows, extra = _rows(obs, a, self._rule, self.config.max_candidates, self.config.max_distance)
            parts.append((a, nodes, extra, len(rows)))
            all_rows.extend(rows)
            numeric.extend(_numeric(n) for n in nodes)
        probs = self._proba(all_rows, numeric) if all_rows else np.zeros((0, len(self.effects)))
        out, at = [], 0
        thr = self.config.threshold
        for a, nodes, extra, n in parts:
            if extra is None:
                d = Delta([])
                d.summary = summarize(PageState.from_observation(obs), a.describe(), d)
                out.append(Prediction(a, d, 0.99, self.name))
                continue
            p = probs[at: at + n]
            at += n
            ops, conf = self._decode(nodes, p, a, extra, obs.focused, thr)
            conv = convention_ops(a, extra["target"], extra["index"], self._known)
            if conv:  # script conventions the store holds no example of (see the rules' docstring)
                ops = merge_ops(ops, conv)
            d = Delta(ops)
            d.summary = summarize(extra["state"], a.describe(), d)
            out.append(Prediction(a, d, self._calibrated(conf), self.name))
        dt = (time.perf_counter() - t0) / max(len(actions), 1)
        for pr in out:
            pr.seconds = dt
        return out

    def _calibrated(self, raw: float) -> float:
        """The raw confidence through the map :func:`fit_calibration` fit (as is without one)."""
        import math

        cal = self.state.get("calibration")
        if not cal:
            return raw
        z = cal["slope"] * float(_logit(raw)) + cal["intercept"]
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def _decode(self, nodes: list[Any], p: Any, action: Action, extra: dict, focused: int | None,
                thr: float) -> tuple[list[Op], float]:
        url = extra["state"].url
        import numpy as np

        eff = self.effects
        unknowable = np.array([e.endswith("=?") for e in eff], dtype=bool)
        rerender = eff.index("rerender") if "rerender" in eff else None
        remove = eff.index("remove") if "remove" in eff else None
        add_draft = eff.index("add=draft") if "add=draft" in eff else None
        navigate = eff.index("navigate") if "navigate" in eff else None
        decided = p >= thr
        if add_draft is not None and extra.get("draft") is None:
            decided[:, add_draft] = False  # nothing to add
        # probability that each decision is right; an unknowable effect is wrong whenever it happens
        right = np.where(decided & ~unknowable, p, 1.0 - p)
        conf = float(np.exp(np.log(np.clip(right, 1e-6, 1.0)).sum()))
        _keep_to_controlled(nodes, decided, extra["target"], extra["index"])
        ops: list[Op] = []
        classes: dict[int, dict[str, Any]] = {}
        focus_col = eff.index("focus") if "focus" in eff else None
        blur_col = eff.index("blur") if "blur" in eff else None
        redrawn: dict[int, Any] = {}
        dropped = {nodes[i].pid for i in np.flatnonzero(decided[:, remove])} if remove is not None else set()
        if rerender is not None:
            for i in np.flatnonzero(decided[:, rerender]):
                if not any(a.pid in redrawn for a in nodes[i].ancestors() if a.pid is not None):
                    redrawn[nodes[i].pid] = nodes[i]
                    ops.extend(rerender_ops(nodes[i], dropped))

        def gone(node: Any) -> bool:  # drawn again (its own effects are carried by the fresh copy) or removed
            return any(a.pid in redrawn for a in node.ancestors() if a.pid is not None)

        target = extra["target"]
        for i, node in enumerate(nodes):
            if gone(node):
                if node is target and navigate is not None and decided[i, navigate]:
                    ops.append(Navigate(urllib.parse.urljoin(url, node.get("href") or "")))  # the page still moves
                continue
            for j in np.flatnonzero(decided[i]):
                if j in (focus_col, blur_col, rerender):
                    continue
                if j == add_draft:
                    made = draft_child(node, extra["draft"])
                    if made is not None:
                        ops.append(AddNode(node.pid, len(element_children(node)), made.html()))
                    continue
                op = instantiate(eff[j], node, action, classes, target)
                if isinstance(op, Navigate):
                    op = Navigate(urllib.parse.urljoin(url, op.url))
                if op is not None:
                    ops.append(op)
        by_pid = {n.pid: n for n in nodes}
        for pid, slot in classes.items():
            for name, tokens in slot.items():
                op = class_op(pid, by_pid[pid], tokens, name)
                if op is not None:
                    ops.append(op)
        now = extra["index"].get(focused) if focused is not None else None
        # a click or a typing taps its target, which takes the focus while the page's script runs (whether
        # the forest writes that down or not): when the script then replaces it, the focus falls to the page
        if action.kind in ("click", "type") and focusable(target):
            now = target
        if focus_col is not None and len(nodes):
            best = int(np.argmax(p[:, focus_col]))
            if p[best, focus_col] >= thr:
                now = nodes[best]
                if nodes[best].pid != focused:
                    ops.append(SetFocus(nodes[best].pid))
            elif blur_col is not None and p[:, blur_col].max() >= thr and focused is not None:
                now = None
                ops.append(SetFocus(None))
        if now is not None and (gone(now) or now.pid in dropped):
            ops = [op for op in ops if not isinstance(op, SetFocus)]
            if focused is not None:
                ops.append(SetFocus(None))  # the focused element is replaced: focus falls back to the page
        return ops, conf


WORLD_MODELS.register("learned", LearnedWorldModel,
                      describe="a random forest over element features, trained on the transition store")
