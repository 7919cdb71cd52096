"""Tests of load_data spec parsing."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from adaptau_tf.data import load_data, make_synthetic


def test_synthetic_defaults_and_overrides():
    data = load_data(
        "synthetic:num_users=120,num_items=80,noisy_user_fraction=0.25", seed=3
    )
    assert (data.num_users, data.num_items) == (120, 80)
    assert data.noisy_users.sum() == 30
    expected = make_synthetic(
        num_users=120, num_items=80, noisy_user_fraction=0.25, seed=3
    )
    np.testing.assert_array_equal(data.train, expected.train)
    default = load_data("synthetic")
    assert (default.num_users, default.num_items) == (2000, 1000)


def test_synthetic_aliases_types_and_seed_key():
    data = load_data(
        "synthetic: users=60, items=40, clean_test=true, temperature=1, seed=7"
    )
    assert (data.num_users, data.num_items) == (60, 40)
    np.testing.assert_array_equal(
        data.train,
        make_synthetic(
            num_users=60, num_items=40, clean_test=True, temperature=1.0, seed=7
        ).train,
    )


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("synthetic:num_user=5", r"unknown key 'num_user'.*valid keys:.*noise_ratio"),
        ("synthetic:num_users=2.5", r"num_users='2\.5'.*int"),
        ("synthetic:noise_ratio=high", r"noise_ratio='high'.*float"),
        ("synthetic:num_users", r"key=value.*'num_users'"),
        ("csv:/tmp/x", r"Unknown data spec 'csv:/tmp/x'"),
        ("lightgcn:", r"lightgcn:PATH"),
        ("tfds:movielens/25m-ratings", r"'movielens/25m-ratings'"),
        ("tfds:movielens/1m-ratings:kcore=3", r"unknown key 'kcore'.*k_core"),
    ],
)
def test_errors_quote_the_spec(spec, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_data(spec)


def test_lightgcn_spec(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1\n1 1 2\n")
    (tmp_path / "test.txt").write_text("0 2\n1 0\n")
    data = load_data(f"lightgcn:{tmp_path}")
    assert (data.num_users, data.num_items) == (2, 3)
    assert data.train.shape == (4, 2)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_data(f"lightgcn:{tmp_path / 'missing'}")


def test_tfds_spec_with_options():
    users = np.array([f"u{k % 6}" for k in range(36)], dtype=bytes)
    items = np.array([f"m{k // 6}" for k in range(36)], dtype=bytes)

    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "user_id": users,
                "movie_id": items,
                "user_rating": np.full(36, 3.0, np.float32),
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        data = load_data("tfds:movielens/100k-ratings:min_rating=none,k_core=2", seed=1)
        with pytest.raises(ValueError, match="no interactions left"):
            load_data("tfds:movielens/100k-ratings")  # min_rating=4 drops all
    assert (data.num_users, data.num_items) == (6, 6)
    assert len(data.train) + len(data.test) == 36


def test_package_exports_the_public_names():
    import adaptau_tf.data as data_package

    for name in (
        "InteractionData",
        "SyntheticConfig",
        "make_synthetic",
        "read_lightgcn",
        "load_lightgcn",
        "load_tfds_movielens",
        "load_data",
    ):
        assert name in data_package.__all__
        assert callable(getattr(data_package, name))
