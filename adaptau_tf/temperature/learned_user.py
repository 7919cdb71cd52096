"""Cu-τ: one temperature per user learned by back-propagation."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf

from adaptau_tf.temperature.strategy import TemperatureStrategy, check_temperature


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class LearnedUserTemperature(TemperatureStrategy):
    """Cu-τ: ``τ_u = exp(θ_u)`` with ``θ`` a trainable ``[num_users]`` vector.

    Args:
        num_users: number of users.
        temperature: the initial τ of every user.

    Example:
        >>> strategy = LearnedUserTemperature(num_users=10, temperature=0.2)
    """

    key = "cu-tau"
    needs_user_ids = True

    def __init__(self, num_users: int, temperature: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (isinstance(num_users, int) and num_users > 0):
            raise ValueError(f"num_users must be a positive int, got {num_users!r}")
        self.num_users = num_users
        self.temperature = check_temperature(temperature)
        self.user_log_temperature = self.add_weight(
            name="user_log_temperature",
            shape=(num_users,),
            initializer=tf.keras.initializers.Constant(math.log(self.temperature)),
            trainable=True,
        )

    def initial_temperature(self) -> float:
        return self.temperature

    def call(self, user_ids, inverse_temperature, user_inverse_temperature):
        scale = tf.exp(-tf.gather(self.user_log_temperature, user_ids))
        return scale, scale

    def temperatures(self, inverse_temperature, user_inverse_temperature):
        tau_u = tf.exp(self.user_log_temperature)
        return tf.reduce_mean(tau_u), tau_u

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_users": self.num_users,
            "temperature": self.temperature,
        }
