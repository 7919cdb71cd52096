"""LightGCN propagation against a dense NumPy computation on a toy graph."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.layers import GraphPropagation, L2Normalization
from adaptau_tf.layers.graph_propagation import normalized_adjacency

PAIRS = np.array([[0, 0], [0, 1], [1, 1], [2, 2], [2, 0], [2, 0]])  # duplicate counts once


def _dense_adjacency(num_users=3, num_items=4):
    a = np.zeros((num_users + num_items, num_users + num_items))
    for u, i in PAIRS:
        a[u, num_users + i] = a[num_users + i, u] = 1.0
    degree = a.sum(1)
    inv = np.zeros_like(degree)
    np.power(degree, -0.5, out=inv, where=degree > 0)  # item 3 has no edges
    return inv[:, None] * a * inv[None, :]


def test_normalized_adjacency_matches_dense_formula():
    matrix = normalized_adjacency(3, 4, PAIRS)
    np.testing.assert_allclose(matrix.toarray(), _dense_adjacency(), atol=1e-7)
    # Hand-worked entry: user 0 (degree 2) - item 1 (degree 2): 1 / sqrt(2 * 2).
    assert matrix[0, 3 + 1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="max item 9"):
        normalized_adjacency(3, 4, np.array([[0, 9]]))


def test_propagation_and_its_gradient_match_dense_numpy():
    dense = _dense_adjacency()
    layer = GraphPropagation(normalized_adjacency(3, 4, PAIRS), num_layers=3)
    x = tf.Variable(np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32))
    weights = np.random.default_rng(1).normal(size=(7, 5))
    with tf.GradientTape() as tape:
        out = layer(x)
        loss = tf.reduce_sum(out * weights)
    mean_operator = sum(np.linalg.matrix_power(dense, k) for k in range(4)) / 4
    np.testing.assert_allclose(out.numpy(), mean_operator @ x.numpy(), atol=1e-5)
    # d/dx sum(W * M x) = Mᵀ W, and M is symmetric.
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), mean_operator.T @ weights,
                               atol=1e-5)


def test_l2_normalization_layer():
    out = L2Normalization()(tf.constant([[3.0, 4.0], [0.0, 0.0]])).numpy()
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
    assert L2Normalization.from_config(L2Normalization(epsilon=1e-6).get_config()).epsilon == 1e-6
