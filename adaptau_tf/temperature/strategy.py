"""The interface every temperature strategy implements."""

from __future__ import annotations

import math
from typing import Any

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class TemperatureStrategy(tf.keras.layers.Layer):
    """Decides how logits are scaled by :class:`~adaptau_tf.tasks.AdaptiveRetrieval`.

    The retrieval layer owns the refreshable state (a global inverse
    temperature and a ``[num_users]`` vector of per-user inverse temperatures);
    a strategy reads it, or replaces it with weights of its own (learned τ), and
    returns, for each row of the batch, the inverse temperature of the
    *global* scale and of the *user* scale. The loss form then uses them:
    the paper form scales positive and negatives by the user scale; the
    reference-code form scales the positive by the global one.

    Class attributes describe the strategy to its callers:

    * ``normalize``: whether towers L2-normalise their outputs (False only for
      No Norm).
    * ``adaptive``: whether :class:`~adaptau_tf.callbacks.AdaptiveTemperature`
      refreshes τ0 each epoch.
    * ``per_user``: whether that callback also refreshes ``τ_u`` (and so the
      retrieval layer must accumulate the per-user loss at τ = 1).
    * ``needs_user_ids``: whether the retrieval layer must be given the
      batch's user ids (True only for Cu-τ; the others fall back to the global
      temperature without them).
    * ``key``: the strategy's name on the command line.

    Subclasses implement :meth:`call`.

    Example:
        >>> strategy = FixedTemperature(0.1)
        >>> g, u = strategy(tf.constant([0, 1]), tf.constant(10.0), tf.ones([5]))
    """

    normalize: bool = True
    adaptive: bool = False
    per_user: bool = False
    needs_user_ids: bool = False
    key: str = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def initial_temperature(self) -> float:
        """The τ that the retrieval layer's state starts from."""
        return 1.0

    def call(
        self,
        user_ids: tf.Tensor,
        inverse_temperature: tf.Tensor,
        user_inverse_temperature: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Inverse temperatures for a batch.

        Args:
            user_ids: ``[batch]`` int64 user ids.
            inverse_temperature: scalar, the retrieval layer's global ``1/τ``.
            user_inverse_temperature: ``[num_users]``, the layer's ``1/τ_u``.

        Returns:
            ``(global_scale [batch], user_scale [batch])``, float32.
        """
        raise NotImplementedError

    def temperatures(
        self, inverse_temperature: tf.Tensor, user_inverse_temperature: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The strategy's current ``(τ_global scalar, τ_u [num_users])``."""
        return 1.0 / inverse_temperature, 1.0 / user_inverse_temperature


def check_temperature(temperature: float) -> float:
    """Validates a temperature argument: a finite number > 0, returned as float."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
        math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return float(temperature)


def broadcast_scale(scale: tf.Tensor, user_ids: tf.Tensor) -> tf.Tensor:
    """Repeats a scalar scale over the batch: ``[] -> [batch]``."""
    return tf.fill(tf.shape(user_ids), tf.cast(scale, tf.float32))
