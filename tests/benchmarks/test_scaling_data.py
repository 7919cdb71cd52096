"""benchmarks/scaling_data.py: the O(interactions) generator."""

import numpy as np
import pytest

from benchmarks.scaling_data import generate


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
