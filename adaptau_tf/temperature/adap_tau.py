"""Adap-τ: global τ0 plus a per-user τ_u from the Lambert-W closed form."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from adaptau_tf.temperature.adap_tau0 import AdapTau0


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdapTau(AdapTau0):
    """τ0 (ALGORITHM.md §2) and ``τ_u`` (§3), both refreshed every epoch.

    The retrieval layer accumulates each user's loss at τ = 1 during the
    epoch; the callback turns it into ``τ_u``.

    Args:
        temperature: τ before the first refresh.

    Example:
        >>> task = AdaptiveRetrieval(num_users=10, strategy=AdapTau())
    """

    per_user = True
    key = "adap-tau"

    def __init__(self, temperature: float = 0.2, **kwargs: Any) -> None:
        super().__init__(temperature=temperature, **kwargs)

    def call(self, user_ids, inverse_temperature, user_inverse_temperature):
        global_scale = tf.fill(tf.shape(user_ids), inverse_temperature)
        return global_scale, tf.gather(user_inverse_temperature, user_ids)

    def temperatures(self, inverse_temperature, user_inverse_temperature):
        return 1.0 / inverse_temperature, 1.0 / user_inverse_temperature
