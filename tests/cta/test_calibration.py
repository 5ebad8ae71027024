import numpy as np
import pytest

from parsimon.cta.calibration import (
    expected_calibration_error,
    fit_calibrator,
    reliability_diagram,
    reliability_table,
)


def _data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    y = (rng.random(n) < p).astype(float)
    raw = np.clip(0.5 + 0.5 * p, 0, 1)  # over-confident
    return raw, y


def test_ece_exact_small_case():
    # two bins: [0.2,0.2] with labels [0,1] -> |0.5-0.2|; [0.9] with label 1 -> |1-0.9|
    ece = expected_calibration_error([0.2, 0.2, 0.9], [0, 1, 1], n_bins=10)
    assert ece == pytest.approx(2 / 3 * 0.3 + 1 / 3 * 0.1)


@pytest.mark.parametrize("kind", ["isotonic", "platt", "histogram"])
def test_calibrators_reduce_ece(kind):
    raw, y = _data()
    cal = fit_calibrator(kind, raw[:2000], y[:2000])
    before = expected_calibration_error(raw[2000:], y[2000:])
    after = expected_calibration_error(cal.predict(raw[2000:]), y[2000:])
    assert before > 0.2 and after < 0.05


def test_table_plot_and_errors(tmp_path):
    raw, y = _data(500)
    rows = reliability_table(raw, y, n_bins=5)
    assert sum(r["count"] for r in rows) == 500
    path = reliability_diagram({"raw": (raw, y)}, tmp_path / "rel.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="calibrator"):
        fit_calibrator("magic", raw, y)
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error([0.1], [0, 1])
    with pytest.raises(ValueError, match="probabilities"):
        expected_calibration_error([1.5], [1])
