"""Adap-τ0: one global temperature refreshed in closed form every epoch."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from adaptau_tf.temperature.fixed import FixedTemperature


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdapTau0(FixedTemperature):
    """Global τ0 from ALGORITHM.md §2, refreshed by the callback.

    The retrieval layer's global inverse temperature is assigned by
    :class:`~adaptau_tf.callbacks.AdaptiveTemperature` at the start of each
    epoch; ``temperature`` is only the value used before the first refresh.

    Args:
        temperature: τ before the first refresh.

    Example:
        >>> task = AdaptiveRetrieval(num_users=10, strategy=AdapTau0())
        >>> callback = AdaptiveTemperature(train_pairs, num_users=10, num_items=20)
    """

    adaptive = True
    key = "adap-tau0"

    def __init__(self, temperature: float = 0.2, **kwargs: Any) -> None:
        super().__init__(temperature=temperature, **kwargs)
