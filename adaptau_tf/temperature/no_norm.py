"""No Norm: raw inner products, no normalisation, no temperature."""

from __future__ import annotations

import tensorflow as tf

from adaptau_tf.temperature.strategy import TemperatureStrategy, broadcast_scale


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class NoNorm(TemperatureStrategy):
    """The paper's *No Norm* baseline: towers are not normalised and τ = 1.

    Example:
        >>> task = AdaptiveRetrieval(num_users=10, strategy=NoNorm())
    """

    normalize = False
    key = "nonorm"

    def call(self, user_ids, inverse_temperature, user_inverse_temperature):
        one = broadcast_scale(1.0, user_ids)
        return one, one

    def temperatures(self, inverse_temperature, user_inverse_temperature):
        return tf.constant(1.0), tf.ones_like(user_inverse_temperature)
