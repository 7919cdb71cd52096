"""benchmarks/scaling.py: the log-log slopes."""

import adaptau_tf  # noqa: F401

# isort: split

import pytest

from benchmarks.scaling import _slope


def test_slope_is_the_log_log_exponent():
    rows = [{"interactions": n, "linear": 3.0 * n, "square": n * n, "flat": 7.0}
            for n in (1e6, 5e6, 2e7)]
    assert _slope(rows, "linear") == pytest.approx(1.0)
    assert _slope(rows, "square") == pytest.approx(2.0)
    assert _slope(rows, "flat") == pytest.approx(0.0, abs=1e-12)
    assert _slope(rows[:1], "linear") is None
