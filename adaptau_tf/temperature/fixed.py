"""One fixed temperature (the grid-search baseline)."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from adaptau_tf.temperature.strategy import TemperatureStrategy, broadcast_scale, check_temperature


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class FixedTemperature(TemperatureStrategy):
    """Normalised towers and one constant τ for every user.

    Args:
        temperature: τ > 0 (0.1 by default; TFRS's ``temperature`` argument).

    Example:
        >>> task = AdaptiveRetrieval(num_users=10, strategy=FixedTemperature(0.15))
    """

    key = "fixed"

    def __init__(self, temperature: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)

    def initial_temperature(self) -> float:
        return self.temperature

    def call(self, user_ids, inverse_temperature, user_inverse_temperature):
        scale = broadcast_scale(inverse_temperature, user_ids)
        return scale, scale

    def temperatures(self, inverse_temperature, user_inverse_temperature):
        tau = 1.0 / inverse_temperature
        return tau, tf.fill(tf.shape(user_inverse_temperature), tau)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}
