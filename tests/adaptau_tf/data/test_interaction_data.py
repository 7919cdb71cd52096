"""Tests of InteractionData: validation, CSR views, validation split, pipeline."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.data.interaction_data import InteractionData

EMPTY = np.zeros((0, 2), dtype=np.int64)


def _random_data(num_users=40, num_items=30, seed=0) -> InteractionData:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        count = int(rng.integers(0, 12))  # includes users with 0 and 1 items
        for item in rng.choice(num_items, size=count, replace=False):
            rows.append((user, int(item)))
    pairs = np.array(rows, dtype=np.int64)
    return InteractionData(num_users, num_items, pairs, EMPTY, pairs[:5], name="toy")


def _pair_set(pairs: np.ndarray) -> set:
    return set(map(tuple, pairs.tolist()))


def test_post_init_converts_and_defaults():
    data = InteractionData(2, 3, [[0, 1], [1, 2]], [], np.array([[0, 2]], np.int32))
    assert data.train.dtype == np.int64 and data.test.dtype == np.int64
    assert data.valid.shape == (0, 2)
    assert data.noisy_users.dtype == np.bool_ and not data.noisy_users.any()
    assert data.noisy_users.shape == (2,)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"train": np.zeros((3, 3), np.int64)}, ValueError, r"train.*\(3, 3\)"),
        ({"test": [[0, 3]]}, ValueError, r"test.*item.*\[0, 3\).*\[0, 3\]"),
        ({"train": [[2, 0]]}, ValueError, r"train.*user.*\[2, 0\]"),
        ({"valid": [[-1, 0]]}, ValueError, r"valid.*user"),
        ({"train": [[0.5, 1.0]]}, ValueError, r"train.*integer"),
        ({"num_users": 0}, ValueError, r"num_users.*0"),
        ({"num_items": 2.0}, TypeError, r"num_items.*2\.0"),
        ({"noisy_users": np.zeros(3, bool)}, ValueError, r"noisy_users.*\(3,\)"),
        ({"noisy_users": np.zeros(2, int)}, ValueError, r"noisy_users.*int"),
    ],
)
def test_post_init_rejects_bad_input(kwargs, error, pattern):
    args = {
        "num_users": 2,
        "num_items": 3,
        "train": [[0, 0]],
        "valid": EMPTY,
        "test": [[1, 1]],
    }
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        InteractionData(**args)


def test_csr_and_counts_match_pairs():
    data = _random_data()
    for pairs, matrix in (
        (data.train, data.train_csr),
        (data.test, data.test_csr),
        (data.valid, data.valid_csr),
    ):
        assert matrix.shape == (data.num_users, data.num_items)
        assert matrix.dtype == np.float32
        dense = matrix.toarray()
        expected = np.zeros_like(dense)
        expected[pairs[:, 0], pairs[:, 1]] = 1.0
        np.testing.assert_array_equal(dense, expected)
    assert data.train_csr is data.train_csr  # cached
    np.testing.assert_array_equal(
        data.train_user_counts, data.train_csr.toarray().sum(axis=1)
    )
    np.testing.assert_array_equal(
        data.train_item_counts, data.train_csr.toarray().sum(axis=0)
    )
    assert data.train_item_counts.shape == (data.num_items,)


def test_validation_split_properties():
    data = _random_data()
    split = data.with_validation_split(fraction=0.25, seed=1)
    train, valid = _pair_set(split.train), _pair_set(split.valid)
    assert not train & valid
    assert train | valid == _pair_set(data.train)
    assert len(split.train) + len(split.valid) == len(data.train)
    np.testing.assert_array_equal(split.test, data.test)
    counts = data.train_user_counts
    moved = np.bincount(split.valid[:, 0], minlength=data.num_users)
    for user, count in enumerate(counts):
        if count < 2:
            assert moved[user] == 0
        else:
            expected = min(max(int(np.floor(0.25 * count + 0.5)), 1), count - 1)
            assert moved[user] == expected, (user, count, moved[user])
    assert (counts < 2).any() and (counts >= 2).any()  # both cases exercised


def test_validation_split_is_seeded():
    data = _random_data()
    a = data.with_validation_split(0.3, seed=5)
    b = data.with_validation_split(0.3, seed=5)
    c = data.with_validation_split(0.3, seed=6)
    np.testing.assert_array_equal(a.valid, b.valid)
    np.testing.assert_array_equal(a.train, b.train)
    assert _pair_set(a.valid) != _pair_set(c.valid)


def test_validation_split_edge_cases():
    data = _random_data()
    zero = data.with_validation_split(0.0)
    assert zero.valid.shape == (0, 2) and len(zero.train) == len(data.train)
    # A large fraction never empties a user's training pairs.
    big = data.with_validation_split(0.95)
    assert (big.train_user_counts[data.train_user_counts > 0] >= 1).all()
    with pytest.raises(ValueError, match="1.5"):
        data.with_validation_split(1.5)
    with pytest.raises(ValueError, match="already has"):
        big.with_validation_split(0.1)


def _epoch(dataset) -> tuple[np.ndarray, np.ndarray]:
    users, items = [], []
    for u, i in dataset:
        assert u.dtype == tf.int64 and i.dtype == tf.int64
        users.append(u.numpy())
        items.append(i.numpy())
    return np.concatenate(users), np.concatenate(items)


def test_train_dataset_covers_every_pair_once_and_reshuffles():
    data = _random_data()
    n = len(data.train)
    dataset = data.train_dataset(batch_size=16, seed=3)
    assert dataset.cardinality().numpy() == -(-n // 16)
    first = _epoch(dataset)
    second = _epoch(dataset)
    for users, items in (first, second):
        pairs = np.stack([users, items], axis=1)
        assert len(pairs) == n
        assert sorted(map(tuple, pairs.tolist())) == sorted(
            map(tuple, data.train.tolist())
        )
    assert not np.array_equal(first[0], second[0]) or not np.array_equal(
        first[1], second[1]
    )
    # Same seed -> same sequence of epochs; another seed -> another order.
    again = data.train_dataset(batch_size=16, seed=3)
    np.testing.assert_array_equal(_epoch(again)[1], first[1])
    np.testing.assert_array_equal(_epoch(again)[1], second[1])
    other = _epoch(data.train_dataset(batch_size=16, seed=4))
    assert not np.array_equal(other[1], first[1])


def test_train_dataset_batches_and_no_shuffle():
    data = _random_data()
    n = len(data.train)
    assert n % 15  # a remainder batch exists
    sizes = [int(u.shape[0]) for u, _ in data.train_dataset(batch_size=15, seed=0)]
    assert sizes == [15] * (n // 15) + [n % 15]
    dropped = data.train_dataset(batch_size=15, drop_remainder=True)
    assert dropped.element_spec[0].shape.as_list() == [15]
    assert [int(u.shape[0]) for u, _ in dropped] == [15] * (n // 15)
    users, items = _epoch(data.train_dataset(batch_size=7, shuffle=False))
    np.testing.assert_array_equal(np.stack([users, items], axis=1), data.train)


def test_train_dataset_rejects_bad_arguments():
    data = _random_data()
    with pytest.raises(ValueError, match="0"):
        data.train_dataset(batch_size=0)
    with pytest.raises(TypeError, match="2.5"):
        data.train_dataset(batch_size=2.5)
    with pytest.raises(ValueError, match="no batch"):
        data.train_dataset(batch_size=10_000, drop_remainder=True)
    empty = InteractionData(2, 2, EMPTY, EMPTY, [[0, 0]])
    with pytest.raises(ValueError, match="no training pairs"):
        empty.train_dataset(batch_size=4)


def test_summary_mentions_counts():
    data = _random_data().with_validation_split(0.2)
    text = data.summary()
    for piece in (
        "toy",
        "40 users",
        "30 items",
        f"train {len(data.train)}",
        f"valid {len(data.valid)}",
        "test 5",
        "density",
    ):
        assert piece in text
