"""The hand-written softmax pieces of the task against NumPy and TF's own kernels."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.tasks.scores import (
    MASK_LOGIT,
    full_softmax_loss,
    full_unit_loss,
    row_logsumexp,
)


def _numpy_logsumexp(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    peak = x.max(axis=1, keepdims=True)
    return peak[:, 0] + np.log(np.exp(x - peak).sum(axis=1))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("spread", [1.0, 400.0])  # 400: exp overflows without the shift
def test_row_logsumexp_value_and_gradient_match_numpy(spread):
    rng = np.random.default_rng(0)
    logits = (spread * rng.uniform(-1, 1, (7, 11))).astype(np.float32)
    logits[2, 3:] = MASK_LOGIT  # masked negatives carry no weight and no gradient
    upstream = rng.uniform(0.5, 2.0, 7).astype(np.float32)
    x = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = row_logsumexp(x)
        loss = tf.reduce_sum(value * upstream)
    expected = _numpy_logsumexp(logits)
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-6, atol=1e-5)
    softmax = np.exp(logits.astype(np.float64) - expected[:, None])
    gradient = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(gradient, softmax * upstream[:, None], rtol=1e-5, atol=1e-7)
    assert np.all(gradient[2, 3:] == 0)


def test_row_logsumexp_with_an_extra_column_equals_the_concatenated_row():
    rng = np.random.default_rng(1)
    logits = tf.constant(rng.normal(0, 30, (5, 6)).astype(np.float32))
    extra = tf.constant(rng.normal(0, 30, 5).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([logits, extra])
        ours = row_logsumexp(logits, extra)
        theirs = tf.reduce_logsumexp(tf.concat([extra[:, None], logits], axis=1), axis=1)
        weights = tf.constant([1.0, -2.0, 0.5, 3.0, 1.0])
        ours_sum, theirs_sum = tf.reduce_sum(ours * weights), tf.reduce_sum(theirs * weights)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    for ours_grad, theirs_grad in zip(tape.gradient(ours_sum, [logits, extra]),
                                      tape.gradient(theirs_sum, [logits, extra])):
        np.testing.assert_allclose(ours_grad.numpy(), theirs_grad.numpy(), rtol=1e-5,
                                   atol=1e-7)


def test_full_softmax_loss_is_tfrs_cross_entropy_with_gradients_for_a_trainable_scale():
    """Query-side scaling and the positive from the vectors give TF's eye-label loss."""
    rng = np.random.default_rng(2)
    query = tf.constant(_unit(rng.normal(size=(6, 8))))
    candidates = tf.constant(_unit(rng.normal(size=(9, 8))))  # C > B: 3 extra negatives
    scale = tf.constant(rng.uniform(2, 20, 6).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([query, candidates, scale])
        ours, logits, positives = full_softmax_loss(query, candidates, scale)
        scores = tf.matmul(query, candidates, transpose_b=True) * scale[:, None]
        theirs = tf.nn.softmax_cross_entropy_with_logits(labels=tf.eye(6, 9), logits=scores)
        ours_sum, theirs_sum = tf.reduce_sum(ours), tf.reduce_sum(theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), scores.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(positives.numpy(), np.sum(query * candidates[:6], 1), atol=1e-6)
    for ours_grad, theirs_grad in zip(tape.gradient(ours_sum, [query, candidates, scale]),
                                      tape.gradient(theirs_sum, [query, candidates, scale])):
        np.testing.assert_allclose(ours_grad.numpy(), theirs_grad.numpy(), rtol=1e-4,
                                   atol=1e-5)


@pytest.mark.parametrize("small", [True, False])
def test_full_unit_loss_undoes_the_scale_and_matches_numpy(small):
    rng = np.random.default_rng(3)
    scores = rng.uniform(-1, 1, (4, 6))
    np.fill_diagonal(scores, rng.uniform(0.5, 1, 4))
    scale = rng.uniform(3, 30, 4)
    got = full_unit_loss(tf.constant((scores * scale[:, None]).astype(np.float32)),
                         tf.constant(scale.astype(np.float32)),
                         tf.constant(np.diag(scores).astype(np.float32)), small=small)
    expected = _numpy_logsumexp(scores) - np.diag(scores)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
