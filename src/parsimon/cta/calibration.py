"""Calibrators for confidence scores, expected calibration error and reliability diagrams.

``fit_calibrator(kind, scores, labels)`` with ``kind`` one of ``isotonic`` (scikit-learn's
IsotonicRegression, the paper's choice), ``platt`` (a logistic regression on the score's logit) or
``histogram`` (equal-width bins, each mapped to its empirical accuracy). Each returns a
:class:`Calibrator` with ``predict(scores) -> probabilities``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATORS", "Calibrator", "expected_calibration_error", "fit_calibrator", "reliability_diagram",
           "reliability_table"]

CALIBRATORS = ("isotonic", "platt", "histogram")


def _arrays(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(labels, dtype=float).ravel()
    if s.shape != y.shape:
        raise ValueError(f"`scores` and `labels` must have the same length, got {s.size} and {y.size}")
    if s.size == 0:
        raise ValueError("`scores` is empty")
    if not np.all(np.isfinite(s)) or np.any((s < 0) | (s > 1)):
        raise ValueError("`scores` must be probabilities in [0, 1]")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("`labels` must be 0/1")
    return s, y


@dataclass
class Calibrator:
    """A fitted calibrator; ``predict`` maps raw confidences in [0, 1] to calibrated probabilities."""

    kind: str
    model: Any

    def predict(self, scores: Any) -> np.ndarray:
        s = np.clip(np.asarray(scores, dtype=float).ravel(), 0.0, 1.0)
        if self.kind == "isotonic":
            return np.clip(self.model.predict(s), 0.0, 1.0)
        if self.kind == "platt":
            x = np.log(np.clip(s, 1e-4, 1 - 1e-4) / (1 - np.clip(s, 1e-4, 1 - 1e-4)))
            return self.model.predict_proba(x[:, None])[:, 1]
        edges, values = self.model
        idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, len(values) - 1)
        return values[idx]

    def __call__(self, scores: Any) -> np.ndarray:
        return self.predict(scores)


def fit_calibrator(kind: str, scores: Any, labels: Any, *, n_bins: int = 10) -> Calibrator:
    """Fit a calibrator of ``kind`` (``isotonic``, ``platt``, ``histogram``) on raw confidences and 0/1
    correctness labels."""
    if kind not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {kind!r}; choose from {CALIBRATORS}")
    s, y = _arrays(scores, labels)
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
        return Calibrator(kind, model)
    if kind == "platt":
        from sklearn.linear_model import LogisticRegression

        if len(set(y.tolist())) < 2:
            raise ValueError("Platt scaling needs both correct and incorrect examples")
        x = np.log(np.clip(s, 1e-4, 1 - 1e-4) / (1 - np.clip(s, 1e-4, 1 - 1e-4)))
        return Calibrator(kind, LogisticRegression(C=1e4).fit(x[:, None], y.astype(int)))
    if n_bins < 1:
        raise ValueError(f"`n_bins` must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)[:-1]
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, n_bins - 1)
    overall = float(y.mean())
    values = np.array([y[idx == b].mean() if np.any(idx == b) else overall for b in range(n_bins)])
    return Calibrator(kind, (edges, values))


def reliability_table(probs: Any, labels: Any, *, n_bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width bin: ``lo``, ``hi``, ``count``, ``confidence`` (mean prob) and ``accuracy``."""
    p, y = _arrays(probs, labels)
    if n_bins < 1:
        raise ValueError(f"`n_bins` must be >= 1, got {n_bins}")
    idx = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        rows.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": int(m.sum()),
                     "confidence": float(p[m].mean()) if m.any() else float("nan"),
                     "accuracy": float(y[m].mean()) if m.any() else float("nan")})
    return rows


def expected_calibration_error(probs: Any, labels: Any, *, n_bins: int = 10) -> float:
    """ECE = Σ_bins (n_b / n) · |accuracy_b − confidence_b| over ``n_bins`` equal-width bins."""
    rows = reliability_table(probs, labels, n_bins=n_bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]))


def reliability_diagram(curves: dict[str, tuple[Any, Any]], path: str | Path, *, n_bins: int = 10,
                        title: str = "Reliability diagram") -> Path:
    """Plot accuracy against confidence per bin for each ``name -> (probs, labels)``; write a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
    for name, (p, y) in curves.items():
        rows = [r for r in reliability_table(p, y, n_bins=n_bins) if r["count"]]
        ece = expected_calibration_error(p, y, n_bins=n_bins)
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o-", label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
