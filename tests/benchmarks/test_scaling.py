"""benchmarks/scaling.py: the O(interactions) generator and the log-log slopes."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest

from benchmarks.scaling import _slope, generate


def test_generate_exact_size_no_duplicates_per_user_split():
    interactions, users, items = 40_000, 1_000, 4_000
    split = generate(interactions, users, items, seed=1)
    train, test = split["train"], split["test"]
    pairs = np.concatenate([train, test])
    assert len(pairs) == interactions
    assert pairs.min() >= 0 and pairs[:, 0].max() < users and pairs[:, 1].max() < items
    assert np.unique(pairs[:, 0] * items + pairs[:, 1]).size == interactions
    assert set(np.unique(train[:, 0])) == set(range(users))  # everyone trains
    assert set(np.unique(test[:, 0])) == set(range(users))  # and is evaluated
    assert len(test) / interactions == pytest.approx(0.2, abs=0.01)
    counts = np.bincount(pairs[:, 1], minlength=items)
    assert counts.max() > 10 * counts.mean()  # popularity skew
    again = generate(interactions, users, items, seed=1)
    np.testing.assert_array_equal(again["train"], train)


def test_slope_is_the_log_log_exponent():
    rows = [{"interactions": n, "linear": 3.0 * n, "square": n * n, "flat": 7.0}
            for n in (1e6, 5e6, 2e7)]
    assert _slope(rows, "linear") == pytest.approx(1.0)
    assert _slope(rows, "square") == pytest.approx(2.0)
    assert _slope(rows, "flat") == pytest.approx(0.0, abs=1e-12)
    assert _slope(rows[:1], "linear") is None
