"""The chief's temperatures on every worker of a multi-worker run."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def from_chief(
    strategy: tf.distribute.Strategy, tau0: float, accepted: bool, tau_u: np.ndarray
) -> tuple[float, bool, np.ndarray]:
    """The chief's ``(τ0, accepted, τ_u)`` on every worker of a multi-worker run.

    A SUM all-reduce in which only the chief's first replica contributes the
    values and every other replica zeros: the result is the chief's values
    exactly. Outside multi-worker training the values are returned unchanged.

    Example:
        >>> tau0, accepted, tau_u = from_chief(model.distribute_strategy, 0.2, True, tau_u)
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return tau0, accepted, tau_u
    local_replicas = len(strategy.extended.worker_devices)
    if strategy.num_replicas_in_sync <= local_replicas:  # a single worker
        return tau0, accepted, tau_u
    packed = np.concatenate([[tau0, float(accepted)], tau_u]).astype(np.float64)
    contributes = [bool(strategy.extended.should_checkpoint)]  # the chief's first replica

    def value(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        first, contributes[0] = contributes[0], False
        return tf.constant(packed if first else np.zeros_like(packed))

    values = strategy.experimental_distribute_values_from_function(value)
    merged = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None).numpy()
    return float(merged[0]), bool(merged[1]), merged[2:]
