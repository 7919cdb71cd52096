"""Tests of the synthetic generator."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import numpy as np
import pytest
from scipy.sparse.linalg import svds

from adaptau_tf.data.synthetic import make_synthetic
from adaptau_tf.data.synthetic_config import SyntheticConfig

SMALL = {"num_users": 300, "num_items": 200}


def _keys(pairs: np.ndarray, num_items: int) -> np.ndarray:
    return pairs[:, 0] * num_items + pairs[:, 1]


def test_deterministic_given_seed():
    a = make_synthetic(seed=3, **SMALL)
    b = make_synthetic(SyntheticConfig(seed=3, **SMALL))
    c = make_synthetic(seed=4, **SMALL)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.noisy_users, b.noisy_users)
    assert not np.array_equal(a.train, c.train) or not np.array_equal(a.test, c.test)


@pytest.mark.parametrize("clean_test", [False, True])
def test_no_duplicates_and_train_test_disjoint(clean_test):
    data = make_synthetic(clean_test=clean_test, **SMALL)
    train = _keys(data.train, data.num_items)
    test = _keys(data.test, data.num_items)
    assert np.unique(train).size == train.size
    assert np.unique(test).size == test.size
    assert np.intersect1d(train, test).size == 0
    assert data.valid.shape == (0, 2)
    assert data.name == "synthetic"
    # Every user has train and test pairs (min_interactions >= 2).
    assert (data.train_user_counts > 0).all()
    assert (np.bincount(data.test[:, 0], minlength=data.num_users) > 0).all()


def test_sizes_and_test_share():
    data = make_synthetic(**SMALL)
    per_user = data.train_user_counts + np.bincount(data.test[:, 0], minlength=300)
    assert per_user.min() >= 5
    assert 20 < per_user.mean() < 40
    assert per_user.std() > 3  # counts vary across users
    assert 0.17 < len(data.test) / (len(data.test) + len(data.train)) < 0.23


def test_noisy_mask_share():
    data = make_synthetic(noisy_user_fraction=0.3, **SMALL)
    assert data.noisy_users.dtype == np.bool_
    assert data.noisy_users.sum() == 90
    none = make_synthetic(noisy_user_fraction=0.0, **SMALL)
    assert not none.noisy_users.any()


def test_noise_replaces_the_configured_share():
    clean = make_synthetic(noise_ratio=0.0, **SMALL)
    noisy = make_synthetic(noise_ratio=0.5, **SMALL)
    # Same seed: same counts, same clean positives; noisy users lose half of theirs.
    np.testing.assert_array_equal(clean.noisy_users, noisy.noisy_users)
    for user in np.flatnonzero(noisy.noisy_users)[:10]:
        before = set(
            np.r_[
                clean.train[clean.train[:, 0] == user, 1],
                clean.test[clean.test[:, 0] == user, 1],
            ]
        )
        after = set(
            np.r_[
                noisy.train[noisy.train[:, 0] == user, 1],
                noisy.test[noisy.test[:, 0] == user, 1],
            ]
        )
        assert len(before) == len(after)
        assert len(before - after) == int(np.floor(0.5 * len(before) + 0.5))
    quiet = np.flatnonzero(~noisy.noisy_users)[0]
    assert set(clean.train[clean.train[:, 0] == quiet, 1]) | set(
        clean.test[clean.test[:, 0] == quiet, 1]
    ) == set(noisy.train[noisy.train[:, 0] == quiet, 1]) | set(
        noisy.test[noisy.test[:, 0] == quiet, 1]
    )


def test_clean_test_keeps_test_pairs_free_of_noise():
    clean = make_synthetic(noise_ratio=0.0, clean_test=True, **SMALL)
    noisy = make_synthetic(noise_ratio=0.8, clean_test=True, **SMALL)
    np.testing.assert_array_equal(clean.test, noisy.test)
    assert not np.array_equal(clean.train, noisy.train)


def test_popularity_skew():
    data = make_synthetic()  # default size (2000 x 1000)
    counts = np.sort(data.train_item_counts)[::-1]
    assert counts[:5].mean() > 10 * np.median(counts)
    flat = make_synthetic(popularity_exponent=0.0)
    flat_counts = np.sort(flat.train_item_counts)[::-1]
    assert counts[:5].mean() > 2 * flat_counts[:5].mean()


def test_latent_structure_beats_popularity():
    """A rank-16 SVD of the train matrix must beat popularity on test recall@20."""
    data = make_synthetic(num_users=600, num_items=300, noisy_user_fraction=0.0)
    train = data.train_csr
    seen = train.toarray() > 0
    relevant = data.test_csr.toarray() > 0

    def recall(scores: np.ndarray) -> float:
        scores = np.where(seen, -np.inf, scores)
        top = np.argsort(-scores, axis=1)[:, :20]
        hits = np.take_along_axis(relevant, top, axis=1).sum(axis=1)
        return float(np.mean(hits / np.minimum(relevant.sum(axis=1), 20)))

    u, s, vt = svds(train.astype(np.float64), k=16, random_state=0)
    popularity = np.broadcast_to(data.train_item_counts.astype(float), seen.shape)
    assert recall((u * s) @ vt) > 1.2 * recall(popularity)


def test_bad_config_errors():
    with pytest.raises(TypeError, match=r"num_user.*valid:.*num_users"):
        make_synthetic(num_user=10)
    with pytest.raises(ValueError, match=r"noise_ratio.*1\.5"):
        make_synthetic(noise_ratio=1.5)
    with pytest.raises(TypeError, match=r"num_users.*2\.5"):
        SyntheticConfig(num_users=2.5)
    assert SyntheticConfig(temperature=1).temperature == 1.0
