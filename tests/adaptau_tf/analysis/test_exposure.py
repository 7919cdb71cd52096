"""Coverage, average popularity and Gini against hand-worked values."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest

from adaptau_tf.analysis import average_popularity, coverage_at_k, exposure_counts, gini_index

TOP = np.array([[0, 1, 2], [0, 3, 1], [0, 1, 4]])  # 3 users, 6 items


def test_coverage_and_exposure():
    assert exposure_counts(TOP, 6).tolist() == [3, 3, 1, 1, 1, 0]
    assert coverage_at_k(TOP, 6) == pytest.approx(5 / 6)
    assert coverage_at_k(TOP, 6, k=2) == pytest.approx(3 / 6)  # items 0, 1, 3
    assert coverage_at_k(np.array([[0, -1]]), 4) == pytest.approx(0.25)  # padding ignored
    with pytest.raises(ValueError, match="num_items"):
        exposure_counts(TOP, 3)


def test_average_popularity():
    counts = np.array([10, 4, 1, 7, 1, 0])
    # users: (10+4+1)/3 = 5, (10+7+4)/3 = 7, (10+4+1)/3 = 5 -> 17/3
    assert average_popularity(TOP, counts) == pytest.approx(17 / 3)
    # k=1: every user gets item 0 -> 10
    assert average_popularity(TOP, counts, k=1) == pytest.approx(10.0)


def test_gini_index_hand_worked():
    assert gini_index(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini_index(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (n-1)/n
    assert gini_index(np.array([1, 2, 3])) == pytest.approx(2 / 9)  # (−2·1 + 0·2 + 2·3)/(3·6)
    # exposure of TOP sorted: 0,1,1,1,3,3; Σ(2i−7)x = −5·0 −3 −1 +1 +3·3 +5·3 = 21; /(6·9)
    assert gini_index(exposure_counts(TOP, 6)) == pytest.approx(21 / 54)
    assert gini_index(np.zeros(3)) == 0.0
    with pytest.raises(ValueError):
        gini_index(np.array([1, -1]))
