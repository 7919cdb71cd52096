"""Popularity groups and per-group metrics against hand-worked values."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest

from adaptau_tf.analysis import (
    group_mean_norms,
    group_metrics,
    popularity_groups,
    popularity_order,
)
from adaptau_tf.evaluation import per_user_metrics


def test_interaction_groups_on_a_hand_made_popularity_vector():
    # items:        0  1  2  3  4  5  6  7
    counts = np.array([5, 1, 0, 3, 1, 10, 2, 8])  # total 30, 3 groups of 10
    # least popular first (ties by id): 2(0) 1(1) 4(1) 6(2) 3(3) 0(5) 7(8) 5(10)
    # cumulative middles: 0, .5, 1.5, 3, 5.5, 9.5, 16, 25 -> *3/30 floored:
    #                     0, 0,  0,   0, 0,   0,   1,  2
    groups = popularity_groups(counts, num_groups=3)
    assert popularity_order(counts).tolist() == [2, 1, 4, 6, 3, 0, 7, 5]
    assert groups.tolist() == [0, 0, 0, 0, 0, 2, 0, 1]
    totals = np.bincount(groups, weights=counts, minlength=3)
    assert totals.tolist() == [12, 8, 10]


def test_equal_counts_split_evenly_and_groups_follow_popularity():
    counts = np.ones(20, np.int64)
    assert np.bincount(popularity_groups(counts, 10)).tolist() == [2] * 10
    rng = np.random.default_rng(0)
    counts = rng.zipf(1.5, size=500).clip(max=1000)
    groups = popularity_groups(counts, 10)
    order = popularity_order(counts)
    assert np.all(np.diff(groups[order]) >= 0)  # non-decreasing in popularity
    shares = np.bincount(groups, weights=counts, minlength=10) / counts.sum()
    assert shares.max() < 0.1 + counts.max() / counts.sum() + 1e-9


def test_item_scheme_and_errors():
    counts = np.array([5, 1, 0, 3, 1, 10, 2, 8])
    groups = popularity_groups(counts, 4, scheme="items")
    assert groups.tolist() == [2, 0, 0, 2, 1, 3, 1, 3]
    assert popularity_groups(np.zeros(4, int), 2).tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="scheme"):
        popularity_groups(counts, 4, scheme="users")
    with pytest.raises(ValueError, match="non-negative"):
        popularity_groups(np.array([1, -1]), 2)


def test_group_mean_norms():
    vectors = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0]])
    norms = group_mean_norms(vectors, np.array([1, 0, 0]), num_groups=3)
    assert norms[:2].tolist() == [1.5, 5.0] and np.isnan(norms[2])


def test_group_metrics_decompose_the_overall_metrics():
    item_groups = np.array([0, 0, 1, 1, 2])
    top = np.array([[0, 2, 4], [3, 1, 0]])
    relevant = [np.array([2, 4]), np.array([0, 4])]
    out = group_metrics(top, relevant, item_groups, k=2, num_groups=3)
    # user 0: hits at rank 2 (item 2, group 1); user 1: hit at rank... none in top-2.
    assert out["recall"].tolist() == pytest.approx([0.0, 0.25, 0.0])
    ideal = 1 + 1 / np.log2(3)
    assert out["ndcg"].tolist() == pytest.approx([0.0, (1 / np.log2(3)) / ideal / 2, 0.0])
    assert out["test_interactions"].tolist() == [1, 1, 2]
    assert out["group_recall"].tolist() == pytest.approx([0.0, 1.0, 0.0])
    assert out["recommended"].tolist() == [2, 2, 0]  # top-2: groups 0,1 and 1,0
    rng = np.random.default_rng(1)
    top = np.stack([rng.permutation(30)[:10] for _ in range(40)])
    relevant = [rng.choice(30, size=rng.integers(1, 6), replace=False) for _ in range(40)]
    groups = popularity_groups(rng.integers(0, 50, 30), 5)
    split = group_metrics(top, relevant, groups, k=10)
    overall = per_user_metrics(top, relevant, 10)
    assert split["recall"].sum() == pytest.approx(overall["recall@10"].mean())
    assert split["ndcg"].sum() == pytest.approx(overall["ndcg@10"].mean())
