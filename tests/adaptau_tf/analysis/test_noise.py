"""False-positive noise: exact counts, never a positive, reproducible."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest

from adaptau_tf.analysis import inject_local_noise, inject_noise, noise_counts
from adaptau_tf.data import InteractionData, make_synthetic


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=60, num_items=50, seed=3).with_validation_split(0.1, seed=0)


def _added(clean, noisy):
    assert np.array_equal(noisy.train[: len(clean.train)], clean.train)
    assert np.array_equal(noisy.valid, clean.valid) and np.array_equal(noisy.test, clean.test)
    return noisy.train[len(clean.train):]


def _positive_keys(data):
    pairs = np.concatenate([data.train, data.valid, data.test])
    return set((pairs[:, 0] * data.num_items + pairs[:, 1]).tolist())


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_global_noise_adds_exactly_the_requested_share(data, ratio):
    noisy = inject_noise(data, ratio, seed=7)
    added = _added(data, noisy)
    counts = data.train_user_counts
    expected = np.floor(ratio * counts + 0.5).astype(int)  # round half up
    assert np.bincount(added[:, 0], minlength=data.num_users).tolist() == expected.tolist()
    keys = added[:, 0] * data.num_items + added[:, 1]
    assert len(set(keys.tolist())) == len(keys)  # distinct
    assert not set(keys.tolist()) & _positive_keys(data)  # none already positive
    assert noisy.noisy_users[added[:, 0]].all()


def test_noise_is_reproducible_with_a_seed(data):
    a, b = inject_noise(data, 0.3, seed=1), inject_noise(data, 0.3, seed=1)
    assert np.array_equal(a.train, b.train)
    assert not np.array_equal(a.train, inject_noise(data, 0.3, seed=2).train)
    la, ga = inject_local_noise(data, seed=4)
    lb, gb = inject_local_noise(data, seed=4)
    assert np.array_equal(la.train, lb.train) and np.array_equal(ga, gb)


def test_local_noise_uses_one_ratio_per_user_group(data):
    ratios = (0.1, 0.2, 0.3, 0.4)
    noisy, groups = inject_local_noise(data, ratios, seed=0)
    assert sorted(np.bincount(groups).tolist()) == [15, 15, 15, 15]
    added = _added(data, noisy)
    per_user = np.bincount(added[:, 0], minlength=data.num_users)
    expected = noise_counts(data.train_user_counts, np.asarray(ratios)[groups])
    assert per_user.tolist() == expected.tolist()
    assert not set((added[:, 0] * data.num_items + added[:, 1]).tolist()) & _positive_keys(data)


def test_subset_of_users_rounding_and_cap():
    assert noise_counts(np.array([5, 15, 4, 25]), 0.1).tolist() == [1, 2, 0, 3]
    tiny = InteractionData(num_users=2, num_items=4, train=np.array([[0, 0], [0, 1], [1, 0]]),
                           valid=np.zeros((0, 2)), test=np.array([[0, 2]]))
    noisy = inject_noise(tiny, 1.0, seed=0, users=[0])  # wants 2, only item 3 is left
    assert _added(tiny, noisy).tolist() == [[0, 3]]
    with pytest.raises(ValueError):
        noise_counts(np.array([1]), -0.1)
