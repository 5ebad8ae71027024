"""Filename → format priors: the generator's log-linear prior, a learned estimator, and the prior
variants of the paper's Table 5.

A *prior* is a factorised distribution over the CSV format, one dict per attribute::

    {"delimiter": {",": 0.09, ";": 0.56, "\\t": 0.35}, "quotechar": {'"': 0.18, "'": 0.82},
     "skiprows": {0: 0.69, 1: 0.31}}

The true (data-generating) prior is log-linear in four binary filename features (``has_eu``,
``has_tsv``, ``has_sas``, ``has_cn``): for each attribute, a softmax over its options of
``bias + Σ weight · feature`` with the weights of :data:`THETA`.

:class:`PriorEstimator` learns the prior from filenames alone: one scikit-learn logistic regression per
attribute on character n-grams of the filename, trained on the training split's sampled formats (the
paper uses a BERT-tiny encoder; its weights are a hub download, so we use a linear model, which sees the
same tokens).
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "ATTRS",
    "CONFIGS",
    "FEATURES",
    "OPTIONS",
    "THETA",
    "PriorEstimator",
    "adversarial_prior",
    "argmax_format",
    "estimated_prior",
    "features_of",
    "joint",
    "noisy_prior",
    "parse_released_prior",
    "prior_accuracy",
    "true_prior",
    "uniform_prior",
    "validate_prior",
]

ATTRS = ("delimiter", "quotechar", "skiprows")
OPTIONS: dict[str, tuple] = {"delimiter": (",", ";", "\t"), "quotechar": ('"', "'"), "skiprows": (0, 1)}
FEATURES = ("has_eu", "has_tsv", "has_sas", "has_cn")
# The 12 format configurations (delimiter, quotechar, skiprows), in a fixed order.
CONFIGS: tuple[tuple, ...] = tuple((d, q, s) for d in OPTIONS["delimiter"] for q in OPTIONS["quotechar"]
                                   for s in OPTIONS["skiprows"])

# Log-linear prior: THETA[attr][option] = (bias, {feature: weight}).
THETA: dict[str, dict[Any, tuple[float, dict[str, float]]]] = {
    "delimiter": {",": (1.7, {"has_eu": -1.5}), ";": (0.0, {"has_eu": 2.0}),
                  "\t": (0.5, {"has_eu": -1.0, "has_tsv": 2.0})},
    "quotechar": {'"': (0.7, {"has_sas": -1.0}), "'": (0.2, {"has_sas": 1.0})},
    "skiprows": {0: (1.5, {"has_eu": -0.7}), 1: (0.0, {"has_cn": 1.0})},
}

_TOKENS = {"has_eu": ("eu",), "has_tsv": ("tsv",), "has_sas": ("sas",), "has_cn": ("cn", "zh")}


def features_of(filename: str) -> dict[str, bool]:
    """The four binary features of a filename (tokens separated by ``_``, ``-``, ``.`` or spaces;
    ``has_tsv`` also from a ``.tsv`` extension)."""
    toks = set(re.split(r"[_\-.\s]+", filename.lower()))
    feats = {f: any(t in toks for t in _TOKENS[f]) for f in FEATURES}
    feats["has_tsv"] = feats["has_tsv"] or filename.lower().endswith(".tsv")
    return feats


def _softmax(logits: list[float]) -> list[float]:
    m = max(logits)
    e = [math.exp(v - m) for v in logits]
    s = sum(e)
    return [v / s for v in e]


def true_prior(features: dict[str, bool] | str) -> dict[str, dict]:
    """The generator's log-linear prior for a feature dict (or a filename)."""
    if isinstance(features, str):
        features = features_of(features)
    out = {}
    for attr in ATTRS:
        opts = OPTIONS[attr]
        logits = [THETA[attr][o][0] + sum(w * float(bool(features.get(f, False)))
                                          for f, w in THETA[attr][o][1].items()) for o in opts]
        out[attr] = dict(zip(opts, _softmax(logits), strict=True))
    return out


def uniform_prior() -> dict[str, dict]:
    return {a: {o: 1.0 / len(OPTIONS[a]) for o in OPTIONS[a]} for a in ATTRS}


def validate_prior(prior: dict[str, dict]) -> dict[str, dict]:
    """Check a prior (every attribute, options as in :data:`OPTIONS`, non-negative, positive total) and
    return it normalised per attribute. Raises ValueError naming what is wrong."""
    if not isinstance(prior, dict):
        raise ValueError(f"a prior must be a dict {{attribute: {{option: p}}}}, got {type(prior).__name__}")
    out = {}
    for attr in ATTRS:
        if attr not in prior:
            raise ValueError(f"prior lacks attribute {attr!r}; needs {list(ATTRS)}")
        d = {}
        for o in OPTIONS[attr]:
            p = prior[attr].get(o, prior[attr].get(str(o), 0.0))
            p = float(p)
            if not math.isfinite(p) or p < 0:
                raise ValueError(f"prior[{attr!r}][{o!r}] must be a finite probability >= 0, got {p}")
            d[o] = p
        s = sum(d.values())
        if s <= 0:
            raise ValueError(f"prior[{attr!r}] has zero total mass")
        out[attr] = {o: v / s for o, v in d.items()}
    return out


def joint(prior: dict[str, dict]) -> np.ndarray:
    """Joint probabilities of the 12 :data:`CONFIGS` under a factorised prior."""
    p = validate_prior(prior)
    return np.array([p["delimiter"][d] * p["quotechar"][q] * p["skiprows"][s] for d, q, s in CONFIGS])


def argmax_format(prior: dict[str, dict]) -> tuple:
    """The most likely option per attribute (ties: first in :data:`OPTIONS` order)."""
    p = validate_prior(prior)
    return tuple(max(OPTIONS[a], key=lambda o, a=a: (p[a][o], -OPTIONS[a].index(o))) for a in ATTRS)


def prior_accuracy(priors: Sequence[dict], formats: Sequence[tuple]) -> dict[str, float]:
    """Share of tasks whose argmax option equals the true one, per attribute and averaged ("mean")."""
    if len(priors) != len(formats) or not priors:
        raise ValueError("`priors` and `formats` must be non-empty and of equal length")
    acc = {a: float(np.mean([argmax_format(p)[i] == f[i] for p, f in zip(priors, formats, strict=True)]))
           for i, a in enumerate(ATTRS)}
    acc["mean"] = float(np.mean([acc[a] for a in ATTRS]))
    return acc


# ---------------------------------------------------------------------------------------------------
# Prior variants (paper Table 5)


def noisy_prior(prior: dict[str, dict], rng: np.random.Generator, p_swap: float = 0.4) -> dict[str, dict]:
    """With probability ``p_swap`` per attribute, the probabilities are shuffled among the options."""
    p = validate_prior(prior)
    out = {}
    for a in ATTRS:
        opts = OPTIONS[a]
        vals = [p[a][o] for o in opts]
        if rng.random() < p_swap:
            vals = list(rng.permutation(vals))
        out[a] = {o: float(v) for o, v in zip(opts, vals, strict=True)}
    return out


def adversarial_prior(prior: dict[str, dict], mass: float = 0.95) -> dict[str, dict]:
    """``mass`` on the option the given prior finds least likely, the rest spread evenly."""
    p = validate_prior(prior)
    out = {}
    for a in ATTRS:
        opts = OPTIONS[a]
        worst = min(opts, key=lambda o, a=a: (p[a][o], opts.index(o)))
        out[a] = {o: (mass if o == worst else (1 - mass) / (len(opts) - 1)) for o in opts}
    return out


def parse_released_prior(text: str) -> dict[str, dict]:
    """Parse the paper's ``calib_pred_prior`` text dict, e.g.
    ``"delimiter: {',': 0.096, ';': 0.698, '\\\\t': 0.206}, quotechar: {...}, skiprows: {0: 0.578, 1: 0.422}"``."""
    if isinstance(text, dict):
        return validate_prior({k.lower(): v for k, v in text.items()})
    if not isinstance(text, str):
        raise ValueError(f"calib_pred_prior must be text, got {type(text).__name__}")
    out = {}
    for attr in ATTRS:
        m = re.search(attr + r"\s*:\s*(\{[^}]*\})", text, flags=re.IGNORECASE)
        if m is None:
            raise ValueError(f"calib_pred_prior lacks {attr!r}: {text[:120]!r}")
        d = ast.literal_eval(m.group(1))
        out[attr] = {(int(k) if attr == "skiprows" else k): float(v) for k, v in d.items()}
    return validate_prior(out)


class PriorEstimator:
    """Per-attribute logistic regression on filename character n-grams (scikit-learn).

    ``fit(filenames, formats)`` with formats as (delimiter, quotechar, skiprows) tuples;
    ``predict(filename) -> prior``; ``accuracy(filenames, formats)`` as :func:`prior_accuracy`.
    """

    def __init__(self, ngram_range: tuple[int, int] = (2, 4), C: float = 0.05, min_df: int = 5, seed: int = 0):
        self.ngram_range, self.C, self.min_df, self.seed = ngram_range, C, min_df, seed
        self._models: dict[str, Any] = {}

    def fit(self, filenames: Sequence[str], formats: Sequence[tuple]) -> PriorEstimator:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        if len(filenames) != len(formats) or len(filenames) < 2:
            raise ValueError("`filenames` and `formats` must have equal length >= 2")
        for i, a in enumerate(ATTRS):
            y = [OPTIONS[a].index(f[i]) for f in formats]
            model = make_pipeline(
                CountVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=True, binary=True, min_df=self.min_df,
                                preprocessor=lambda s: " ".join(re.split(r"[_\-.]+", s.lower()))),
                LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed))
            model.fit(list(filenames), y)
            self._models[a] = model
        return self

    def predict_many(self, filenames: Sequence[str]) -> list[dict[str, dict]]:
        if not self._models:
            raise RuntimeError("PriorEstimator.fit() must be called before predict()")
        probs = {}
        for a in ATTRS:
            m = self._models[a]
            full = np.zeros((len(filenames), len(OPTIONS[a])))
            full[:, m.classes_] = m.predict_proba(list(filenames))
            probs[a] = full
        return [{a: {o: float(probs[a][i, j]) for j, o in enumerate(OPTIONS[a])} for a in ATTRS}
                for i in range(len(filenames))]

    def predict(self, filename: str) -> dict[str, dict]:
        return self.predict_many([filename])[0]

    def accuracy(self, filenames: Sequence[str], formats: Sequence[tuple]) -> dict[str, float]:
        return prior_accuracy(self.predict_many(filenames), formats)


@functools.lru_cache(maxsize=8)
def _estimator(seed: int) -> PriorEstimator:
    # the estimator depends only on the seed's filenames, not on the CSV files (nor on PARSIMON_HOME)
    from parsimon.cta.filereading.generator import get_dataset

    return get_dataset(seed).estimator()


@functools.lru_cache(maxsize=65536)
def _estimated(seed: int, filename: str) -> dict[str, dict]:
    return _estimator(seed).predict(filename)


def estimated_prior(task: Any, seed: int | None = None) -> dict[str, dict]:
    """The learned prior for ``task``'s filename: the estimator trained on the training split of the
    dataset the task came from (``task.dataset_seed``; seed 0's dataset for loaded tasks, or ``seed``)."""
    s = task.dataset_seed if seed is None and task.dataset_seed is not None else (seed or 0)
    return _estimated(int(s), task.filename)
