"""How good a world model is: delta accuracy, confidence calibration, render fidelity, action match.

**Deltas.** A prediction is scored on what it *does* to the page, not on how its ops are written: the
predicted delta is applied to the state before, and the ops of ``diff(before, predicted state)`` are
compared with those of ``diff(before, real next state)`` (:meth:`~parsimon.gui.world_model.delta.Op.key`:
the element, the kind of change and the new value). Both sides first drop what no one can see:
``data-*`` attributes other than the label (MiniWoB's event bookkeeping ``data-tampered``) and empty
``style`` attributes. Ops naming elements that are not on the page count as false positives.
Transitions whose true delta is empty (no-ops) are scored apart: a no-op is predicted right when the
predicted delta is empty too. :func:`delta_scores` adds precision, recall, F1 and exact match over the
real changes (micro-averaged), ``where`` scores (the element and kind of change, not the value),
and the no-op accuracy.

**Calibration.** A model's confidence is its probability that the whole delta is exactly right;
:func:`calibration` bins it and reports the expected calibration error (ECE) and the Brier score.

**Rendering.** :func:`render_fidelity` compares the imagined screenshot with the real one on the task
area: SSIM and PSNR (scikit-image) and the share of mismatching pixels (any channel off by more than 16
of 255).

**Action match.** CUWM's offline metric (:func:`action_match`): the chosen action matches the logged
expert action when the kind and the arguments agree and the target is the same element, lies within
25 px of the expert's point, or falls inside the expert target's box.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from parsimon.gui.actions import Action, Element, Point
from parsimon.gui.world_model.delta import (
    Delta,
    PageState,
    SetText,
    apply_report,
    canonical_class,
    canonical_style,
    diff,
)
from parsimon.gui.world_model.dom import BODY, parse, text_runs

__all__ = ["COORDINATE_TOLERANCE", "DeltaScore", "action_match", "calibration", "delta_scores", "observable",
           "render_fidelity", "score_prediction", "true_delta"]

COORDINATE_TOLERANCE = 25.0  # pixels, CUWM's eval/action_evaluation.py
MISMATCH_THRESHOLD = 16  # of 255, per channel


def observable(state: PageState) -> PageState:
    """``state`` without what cannot be seen: ``data-*`` attributes (but the label), and ``style`` and
    ``class`` written canonically (:func:`~parsimon.gui.world_model.delta.canonical_style`,
    :func:`~parsimon.gui.world_model.delta.canonical_class`: the order in which a script wrote the same
    declarations or class names is not a change), dropped when empty."""
    doc = parse(state.html)
    body = doc.body
    if body is not None:
        for node in body.walk():
            attrs = []
            for k, v in node.attrs:
                if k.startswith("data-") and k != "data-pid":
                    continue
                if k in ("style", "class"):
                    v = canonical_style(v) if k == "style" else canonical_class(v)
                    if not v:
                        continue
                attrs.append((k, v))
            node.attrs = attrs
    return PageState(state.url, doc.html(), state.focused)


def true_delta(before: PageState, after: PageState) -> Delta:
    """The observable change between two states: :func:`diff` of their :func:`observable` forms, without
    text ops that only restate an element's text around children that came or went."""
    a = observable(before)
    d = diff(a, observable(after))
    index = a.doc().index()
    keep = []
    for op in d.ops:
        if isinstance(op, SetText) and op.pid in index and op.text == text_of(index[op.pid]):
            continue
        keep.append(op)
    return Delta(keep, d.summary)


def text_of(node: Any) -> str:
    """An element's own text runs joined, whitespace collapsed (what :attr:`SetText.text` compares with)."""
    return " ".join(" ".join(text_runs(node)).split())


@dataclass
class DeltaScore:
    """The score of one prediction against the truth."""

    tp: int
    fp: int
    fn: int
    where_tp: int
    where_fp: int
    where_fn: int
    exact: bool
    noop_truth: bool
    noop_pred: bool


def _match(pred: list[tuple], true: list[tuple]) -> tuple[int, int, int]:
    p, t = Counter(pred), Counter(true)
    tp = sum((p & t).values())
    return tp, sum(p.values()) - tp, sum(t.values()) - tp


def score_prediction(before: PageState, predicted: Delta, truth: Delta) -> DeltaScore:
    """Score ``predicted`` (applied to ``before``) against ``truth`` (a :func:`true_delta`)."""
    state, skipped = apply_report(before, predicted, strict=False)
    pred = true_delta(before, state).ops
    p_keys = [op.key() for op in pred] + [op.key() for op in skipped]
    p_where = [op.where() for op in pred] + [op.where() for op in skipped]
    t_keys = [op.key() for op in truth.ops]
    tp, fp, fn = _match(p_keys, t_keys)
    wtp, wfp, wfn = _match(p_where, [op.where() for op in truth.ops])
    return DeltaScore(tp, fp, fn, wtp, wfp, wfn, exact=fp == 0 and fn == 0, noop_truth=not t_keys,
                      noop_pred=not p_keys)


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def delta_scores(scores: Iterable[DeltaScore]) -> dict[str, float]:
    """Aggregate scores: real changes (micro P/R/F1, exact match, where-F1) and no-ops (accuracy)."""
    scores = list(scores)
    real = [s for s in scores if not s.noop_truth]
    noop = [s for s in scores if s.noop_truth]
    tp, fp, fn = (sum(getattr(s, k) for s in real) for k in ("tp", "fp", "fn"))
    p, r, f = _prf(tp, fp, fn)
    wp, wr, wf = _prf(*(sum(getattr(s, k) for s in real) for k in ("where_tp", "where_fp", "where_fn")))
    return {"n": len(scores), "n_real": len(real), "n_noop": len(noop),
            "precision": p, "recall": r, "f1": f, "where_f1": wf, "where_precision": wp, "where_recall": wr,
            "exact_real": sum(s.exact for s in real) / len(real) if real else float("nan"),
            "noop_accuracy": sum(s.noop_pred for s in noop) / len(noop) if noop else float("nan"),
            "exact_all": sum(s.exact for s in scores) / len(scores) if scores else float("nan")}


def calibration(confidences: list[float], correct: list[bool], bins: int = 10) -> dict[str, Any]:
    """Expected calibration error, Brier score and the reliability table (``bins`` equal-width bins)."""
    import numpy as np

    c = np.clip(np.asarray(confidences, dtype=float), 0.0, 1.0)
    y = np.asarray(correct, dtype=float)
    if c.size == 0:
        return {"ece": float("nan"), "brier": float("nan"), "bins": []}
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(c, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        m = which == b
        if not m.any():
            continue
        conf, acc = float(c[m].mean()), float(y[m].mean())
        ece += m.mean() * abs(conf - acc)
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": int(m.sum()), "confidence": conf,
                      "accuracy": acc})
    return {"ece": float(ece), "brier": float(np.mean((c - y) ** 2)), "bins": table}


def render_fidelity(imagined: Any, real: Any, box: tuple[float, float, float, float] | None = None) -> dict[str, float]:
    """SSIM, PSNR and mismatching-pixel share of two screenshots (RGB arrays or PNG bytes) on ``box``.

    Args:
        imagined, real: The screenshots, same size.
        box: ``(x, y, width, height)`` in pixels of the task area (None: the whole image).
    """
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from parsimon.gui.world_model.store import png_array

    a = png_array(imagined) if isinstance(imagined, (bytes, bytearray)) else np.asarray(imagined)
    b = png_array(real) if isinstance(real, (bytes, bytearray)) else np.asarray(real)
    if a.shape != b.shape:
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        a, b = a[:h, :w], b[:h, :w]
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        a, b = a[max(y, 0): y + h, max(x, 0): x + w], b[max(y, 0): y + h, max(x, 0): x + w]
    mismatch = float((np.abs(a.astype(int) - b.astype(int)).max(axis=-1) > MISMATCH_THRESHOLD).mean())
    if np.array_equal(a, b):
        return {"ssim": 1.0, "psnr": float("inf"), "mismatch": 0.0}
    side = min(a.shape[0], a.shape[1])
    win = min(7, side if side % 2 else side - 1)
    ssim = float(structural_similarity(a, b, channel_axis=-1, data_range=255, win_size=max(win, 3)))
    psnr = float(peak_signal_noise_ratio(b, a, data_range=255))
    return {"ssim": ssim, "psnr": psnr, "mismatch": mismatch}


def _point_px(t: Point, size: tuple[int, int]) -> tuple[float, float]:
    if t.space == "px":
        return t.x, t.y
    return t.x * size[0] / 1000, t.y * size[1] / 1000


def action_match(chosen: Action, expert: Action, obs: Any) -> bool:
    """CUWM's single-step match of ``chosen`` against the logged ``expert`` action on page ``obs``.

    The kinds must be equal and so must every argument but the target (text, keys, option, direction,
    status, clear, enter). Targets match when they name the same element, or the chosen point (or the
    chosen element's centre) lies within :data:`COORDINATE_TOLERANCE` px of the expert's point or inside
    the expert's target box.
    """
    if chosen.kind != expert.kind:
        return False
    for name in ("text", "keys", "option", "direction", "status", "clear", "enter"):
        if getattr(chosen, name) != getattr(expert, name):
            return False
    a, b = chosen.target, expert.target
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Element) and isinstance(b, Element):
        return str(a.id) == str(b.id)

    def centre(t: Any) -> tuple[float, float] | None:
        if isinstance(t, Point):
            return _point_px(t, obs.size)
        if isinstance(t, Element):
            e = obs.element(t.id)
            return e.center if e is not None else None
        return None

    pa, pb = centre(a), centre(b)
    if pa is None or pb is None:
        return False
    if ((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2) ** 0.5 <= COORDINATE_TOLERANCE:
        return True
    if isinstance(b, Element):
        e = obs.element(b.id)
        if e is not None and e.pid != BODY:
            x, y, w, h = e.bbox
            return x <= pa[0] <= x + w and y <= pa[1] <= y + h
    return False
