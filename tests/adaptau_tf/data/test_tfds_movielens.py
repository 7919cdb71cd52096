"""Tests of the TFDS MovieLens adapter (offline, with tfds mock data)."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from adaptau_tf.data.tfds_movielens import (
    _interactions_from_ratings,
    _k_core,
    load_tfds_movielens,
)


def _structured_ratings(seed: int = 0):
    """Ratings with a dense core (users u0..u11 x items m0..m9) and sparse fringes."""
    rng = np.random.default_rng(seed)
    users, items, ratings = [], [], []
    for u in range(12):
        for m in range(10):
            if rng.random() < 0.9:
                users.append(f"u{u}")
                items.append(f"m{m}")
                ratings.append(float(rng.integers(1, 6)))
    # Fringe users/items with 1-2 ratings each; a repeated rating of the same pair.
    for u, m in (("x1", "m0"), ("x1", "m1"), ("x2", "z1"), ("u0", "z2"), ("u1", "z2")):
        users.append(u)
        items.append(m)
        ratings.append(5.0)
    users.append("u0")
    items.append("m0")
    ratings.append(5.0)
    return (
        np.array(users, dtype=object),
        np.array(items, dtype=object),
        np.array(ratings, dtype=np.float32),
    )


def _check_k_core(data, k):
    all_pairs = np.concatenate([data.train, data.test])
    assert np.unique(all_pairs[:, 0]).tolist() == list(range(data.num_users))
    assert np.unique(all_pairs[:, 1]).tolist() == list(range(data.num_items))
    assert np.bincount(all_pairs[:, 0]).min() >= k
    assert np.bincount(all_pairs[:, 1]).min() >= k
    keys = all_pairs[:, 0] * data.num_items + all_pairs[:, 1]
    assert np.unique(keys).size == keys.size  # no duplicates, train/test disjoint


def test_k_core_is_iterative():
    # Chain: dropping user 2 (1 item) leaves item 1 with 1 user, which then drops.
    users = np.array([0, 0, 1, 1, 2, 0, 1])
    items = np.array([0, 2, 0, 2, 1, 1, 3])
    keep = _k_core(users, items, 2)
    np.testing.assert_array_equal(keep, [True, True, True, True, False, False, False])
    assert _k_core(users, items, 1).all()


def test_interactions_from_ratings_filters_and_maps_ids():
    users, items, ratings = _structured_ratings()
    data = _interactions_from_ratings(
        users,
        items,
        ratings,
        min_rating=None,
        k_core=3,
        test_fraction=0.2,
        seed=0,
        name="toy",
    )
    _check_k_core(data, 3)
    assert (data.num_users, data.num_items) == (12, 10)  # fringes removed
    thresholded = _interactions_from_ratings(
        users,
        items,
        ratings,
        min_rating=4.0,
        k_core=0,
        test_fraction=0.2,
        seed=0,
        name="toy",
    )
    total = len(thresholded.train) + len(thresholded.test)
    positives = {(u, m) for u, m, r in zip(users, items, ratings) if r >= 4.0}
    assert total == len(positives)
    again = _interactions_from_ratings(users, items, ratings, None, 3, 0.2, 0, "toy")
    np.testing.assert_array_equal(again.test, data.test)
    with pytest.raises(ValueError, match=r"no interactions left.*k_core=50"):
        _interactions_from_ratings(users, items, ratings, None, 50, 0.2, 0, "toy")


@pytest.mark.parametrize("name", ["movielens/100k-ratings", "movielens/1m-ratings"])
def test_mock_random_data_loads(name):
    with tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_CODE, num_examples=40
    ):
        data = load_tfds_movielens(name, min_rating=None, k_core=0, seed=0)
    assert data.name == name
    assert data.num_users >= 1 and data.num_items >= 1
    _check_k_core(data, 1)


def test_mock_structured_data_through_tfds():
    users, items, ratings = _structured_ratings(seed=1)

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "user_id": users.astype(bytes),
                "movie_id": items.astype(bytes),
                "user_rating": ratings,
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        data = load_tfds_movielens(
            "movielens/1m-ratings",
            min_rating=None,
            k_core=3,
            test_fraction=0.25,
            seed=2,
        )
    _check_k_core(data, 3)
    assert (data.num_users, data.num_items) == (12, 10)
    assert 0.2 < len(data.test) / (len(data.test) + len(data.train)) < 0.3


def test_rejects_unknown_name_and_bad_arguments():
    with pytest.raises(ValueError, match=r"'movielens/25m-ratings'.*supported"):
        load_tfds_movielens("movielens/25m-ratings")
    with pytest.raises(ValueError, match=r"k_core.*-1"):
        load_tfds_movielens(k_core=-1)
    with pytest.raises(ValueError, match=r"test_fraction.*1\.0"):
        load_tfds_movielens(test_fraction=1.0)
