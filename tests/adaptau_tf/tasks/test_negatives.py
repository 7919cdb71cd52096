"""Grouped negative scoring against explicit per-row NumPy loops."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.tasks.negatives import negative_scores, per_row


@pytest.mark.parametrize("batch,groups", [(7, 3), (6, 3), (2, 5), (4, 4)])
def test_grouped_scores_use_draw_row_mod_groups(batch, groups):
    rng = np.random.default_rng(batch * 10 + groups)
    query = rng.normal(size=(batch, 4)).astype(np.float32)
    negatives = rng.normal(size=(groups, 6, 4)).astype(np.float32)
    expected = np.stack([query[b] @ negatives[b % groups].T for b in range(batch)])
    np.testing.assert_allclose(negative_scores(query, negatives).numpy(), expected, rtol=1e-5)
    ids = np.arange(groups * 6).reshape(groups, 6)
    np.testing.assert_array_equal(
        per_row(ids, batch, grouped=True).numpy(), np.stack([ids[b % groups] for b in range(batch)])
    )


def test_one_group_equals_the_shared_draw():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(5, 3)).astype(np.float32)
    shared = rng.normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_allclose(negative_scores(query, shared[None]).numpy(),
                               negative_scores(query, shared).numpy(), rtol=1e-6)
    np.testing.assert_allclose(negative_scores(query, shared).numpy(), query @ shared.T,
                               rtol=1e-5)
    assert per_row(tf.range(8), 5, grouped=False).shape == (1, 8)


def test_grouped_scores_inside_a_function_with_unknown_batch():
    scores = tf.function(negative_scores, input_signature=[
        tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None, 4, 3], tf.float32)])
    query = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]
    negatives = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    got = scores(query, negatives).numpy()
    np.testing.assert_allclose(got[3], negatives[1][:, 0])  # row 3 -> draw 1, component 0
    np.testing.assert_allclose(got[4], negatives[0][:, 1])  # row 4 -> draw 0, component 1


def test_bad_ranks_are_refused_with_the_shape():
    with pytest.raises(ValueError, match=r"\[M, d\] or \[G, M, d\].*\(2, 2, 2, 2\)"):
        negative_scores(tf.ones([3, 2]), tf.ones([2, 2, 2, 2]))
    with pytest.raises(ValueError, match=r"must be \[G, M\].*\(1, 2, 3\)"):
        per_row(tf.ones([1, 2, 3]), 3, grouped=True)
