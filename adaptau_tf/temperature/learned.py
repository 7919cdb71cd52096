"""C-τ: one temperature learned by back-propagation."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from adaptau_tf.temperature.strategy import TemperatureStrategy, check_temperature


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class LearnedTemperature(TemperatureStrategy):
    """C-τ: ``τ = exp(θ)`` with ``θ`` a trainable scalar, so τ stays positive.

    Args:
        temperature: the initial τ.

    Example:
        >>> task = AdaptiveRetrieval(num_users=10, strategy=LearnedTemperature(0.2))
    """

    key = "c-tau"

    def __init__(self, temperature: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.log_temperature = self.add_weight(
            name="log_temperature",
            shape=(),
            initializer=tf.keras.initializers.Constant(math.log(self.temperature)),
            trainable=True,
        )

    def initial_temperature(self) -> float:
        return self.temperature

    def call(self, user_ids, inverse_temperature, user_inverse_temperature):
        scale = tf.fill(tf.shape(user_ids), tf.exp(-self.log_temperature))
        return scale, scale

    def temperatures(self, inverse_temperature, user_inverse_temperature):
        tau = tf.exp(self.log_temperature)
        return tau, tf.fill(tf.shape(user_inverse_temperature), tau)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}
