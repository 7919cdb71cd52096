"""L2 normalisation as a serialisable layer."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class L2Normalization(tf.keras.layers.Layer):
    """Scales each row to unit L2 norm: ``[..., d] -> [..., d]``.

    Args:
        epsilon: lower bound on the squared norm (an all-zero row stays zero).
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> L2Normalization()(tf.constant([[3.0, 4.0]])).numpy()
        array([[0.6, 0.8]], dtype=float32)
    """

    def __init__(self, epsilon: float = 1e-12, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return tf.math.l2_normalize(inputs, axis=-1, epsilon=self.epsilon)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
