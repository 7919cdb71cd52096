"""Scores of sampled negatives: one draw shared by the batch, or G draws.

With one shared draw (``[M, d]``) a batch's negative scores are one
``[B, d] x [d, M]`` matmul, but only M distinct items receive a gradient per
step. With G independent draws (``[G, M, d]``) row ``b`` is scored against
draw ``b mod G``: the same number of multiply-adds (a batched matmul), G·M
items touched per step, and ``G = B`` is the reference code's per-row draw.
"""

from __future__ import annotations

import tensorflow as tf


def negative_scores(query: tf.Tensor, negatives: tf.Tensor) -> tf.Tensor:
    """Inner products of each row with its negatives.

    Args:
        query: ``[B, d]`` query vectors.
        negatives: ``[M, d]`` (one draw shared by every row) or ``[G, M, d]``
            (G draws; row ``b`` uses draw ``b mod G``).

    Returns:
        ``[B, M]`` scores.

    Raises:
        ValueError: ``negatives`` is neither rank 2 nor rank 3.

    Example:
        >>> negative_scores(tf.ones([5, 4]), tf.ones([3, 2, 4])).shape
        TensorShape([5, 2])
    """
    negatives = tf.convert_to_tensor(negatives)
    rank = negatives.shape.rank
    if rank == 2:
        return tf.matmul(query, negatives, transpose_b=True)
    if rank != 3:
        raise ValueError(
            f"negative embeddings must be [M, d] or [G, M, d], got shape {negatives.shape}"
        )
    batch = tf.shape(query)[0]
    groups = tf.shape(negatives)[0]
    rounds = (batch + groups - 1) // groups
    padded = tf.pad(query, [[0, rounds * groups - batch], [0, 0]])
    # Row r * G + g of the padded batch sits at [r, g]: draw g = row mod G.
    scores = tf.einsum("rgd,gmd->rgm", tf.reshape(padded, [rounds, groups, -1]), negatives)
    return tf.reshape(scores, [rounds * groups, -1])[:batch]


def per_row(values: tf.Tensor, batch: tf.Tensor, grouped: bool) -> tf.Tensor:
    """Per-negative values (ids, sampling probabilities) aligned with the rows.

    Args:
        values: ``[M]`` (one shared draw, any shape holding M values) or
            ``[G, M]`` (G draws).
        batch: scalar, the rows ``B``.
        grouped: whether ``values`` holds G draws (``[G, M, d]`` negatives).

    Returns:
        ``[1, M]`` (broadcasts over the rows) or, grouped, ``[B, M]`` (row
        ``b`` gets draw ``b mod G``).

    Example:
        >>> per_row(tf.constant([[1, 2], [3, 4]]), 3, grouped=True).numpy().tolist()
        [[1, 2], [3, 4], [1, 2]]
    """
    values = tf.convert_to_tensor(values)
    if not grouped:
        return tf.reshape(values, [1, -1])
    if values.shape.rank != 2:
        raise ValueError(f"per-negative values of G draws must be [G, M], got shape {values.shape}")
    return tf.gather(values, tf.range(batch) % tf.shape(values)[0])
