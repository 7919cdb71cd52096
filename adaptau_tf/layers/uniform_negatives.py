"""Uniform negative sampling as a serialisable, stateless layer."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class UniformNegatives(tf.keras.layers.Layer):
    """Draws item ids uniformly: ``step -> [M]`` (one draw) or ``[G, M]`` (G draws).

    The draw is a stateless function of ``(seed, step)``: every replica of a
    ``tf.distribute`` run draws the same negatives for the same step, a resumed
    run draws what the uninterrupted one drew, and a run is reproducible.

    With one draw (``negative_groups=1``) the whole batch shares ``M`` negatives
    (one ``[B, d] x [d, M]`` matmul); with G draws row ``b`` is scored against
    draw ``b mod G`` (:mod:`adaptau_tf.tasks.negatives`); ``G = B`` is the
    reference code's per-row draw.

    Args:
        num_items: ``m``: ids are drawn from ``[0, m)``.
        num_negatives: ``M`` per draw.
        negative_groups: ``G`` independent draws per step.
        seed: the draws' seed (``None``: 0).
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> sampler = UniformNegatives(num_items=100, num_negatives=8, negative_groups=2)
        >>> sampler(tf.constant(0, tf.int64)).shape
        TensorShape([2, 8])
    """

    def __init__(self, num_items: int, num_negatives: int, negative_groups: int = 1,
                 seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, value in (("num_items", num_items), ("num_negatives", num_negatives),
                            ("negative_groups", negative_groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.num_items = num_items
        self.num_negatives = num_negatives
        self.negative_groups = negative_groups
        self.seed = seed

    @property
    def shape(self) -> list[int]:
        """``[M]`` or ``[G, M]``: the shape of one step's ids."""
        if self.negative_groups > 1:
            return [self.negative_groups, self.num_negatives]
        return [self.num_negatives]

    def call(self, step: tf.Tensor) -> tf.Tensor:
        """Item ids (int64) for training step ``step`` (a scalar)."""
        seed = tf.stack([tf.constant(self.seed or 0, tf.int64), tf.cast(step, tf.int64)])
        return tf.random.stateless_uniform(self.shape, seed=seed, minval=0,
                                           maxval=self.num_items, dtype=tf.int64)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_items": self.num_items,
                "num_negatives": self.num_negatives,
                "negative_groups": self.negative_groups, "seed": self.seed}
