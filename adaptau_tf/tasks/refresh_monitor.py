"""`RefreshMonitor`: warns when an adaptive temperature is trained without being refreshed."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class RefreshMonitor(tf.keras.layers.Layer):
    """Counts training steps between τ refreshes and warns when none comes.

    Adap-τ's temperatures are assigned by
    :class:`~adaptau_tf.callbacks.AdaptiveTemperature` at the start of every
    epoch. Without the callback nothing fails: τ keeps its initial value and
    the per-user loss accumulators grow for ever. A Keras layer has no epoch
    hook, so the retrieval layer counts its own training steps here and the
    callback reports each refresh (:meth:`mark_refreshed`). The monitor warns

    * at the first training step when no refresh ever happened (the callback
      refreshes at the start of epoch 1, before any step, so with the callback
      this never fires);
    * once, when the steps since the last refresh reach
      ``stale_factor × (the longest stretch between two refreshes so far) + 1``
      (the callback was there in an earlier ``fit`` and is missing now; an
      epoch much longer than every earlier one can trigger it too).

    Eagerly the warning is a Python ``UserWarning``; inside a ``tf.function``
    (Keras's ``train_function``) it is a ``tf.print`` to stderr that runs on
    the one step where the condition holds. Under XLA (``jit_compile=True``)
    ``tf.print`` cannot compile, so the steps are counted but nothing is
    printed.

    State (``add_weight``, saved with the model; all scalars):

    * ``steps_since_refresh``: training steps since the last refresh
      (``ON_READ``, first replica's count under ``tf.distribute``);
    * ``refresh_count``: refreshes so far;
    * ``longest_interval``: the most steps between two refreshes so far
      (an epoch, when the callback is there).

    Args:
        owner: how the warning names the layer that is not refreshed.
        stale_factor: multiple of the longest refresh interval after which a
            missing refresh is reported (> 1).
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> monitor = RefreshMonitor("AdaptiveRetrieval(strategy='adap-tau')")
        >>> monitor.mark_refreshed()  # what the callback does at each epoch start
        >>> monitor.count_step()      # what the task does at each training step
    """

    #: Training bookkeeping, not model state: ``RankingEvaluation`` leaves these
    #: variables out of its best-weight snapshots.
    bookkeeping = True

    def __init__(self, owner: str = "AdaptiveRetrieval", stale_factor: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not stale_factor > 1:
            raise ValueError(f"stale_factor must be > 1, got {stale_factor!r}")
        self.owner = owner
        self.stale_factor = float(stale_factor)
        self.steps_since_refresh = self.add_weight(
            name="steps_since_refresh", shape=(), initializer="zeros", trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.refresh_count = self.add_weight(
            name="refresh_count", shape=(), initializer="zeros", trainable=False
        )
        self.longest_interval = self.add_weight(
            name="longest_interval", shape=(), initializer="zeros", trainable=False
        )

    def messages(self) -> tuple[str, str]:
        """``(never refreshed, stale)`` warning texts (the stale one ends before its counts)."""
        never = (
            f"{self.owner} is training but its temperatures were never refreshed: tau stays "
            "at its initial value and the per-user loss accumulators grow without bound. "
            "Pass callbacks=[AdaptiveTemperature(...)] to model.fit."
        )
        stale = (
            f"{self.owner}: no temperature refresh for many training steps (steps since the "
            "last refresh, longest epoch seen):"
        )
        return never, stale

    def count_step(self) -> None:
        """Adds one training step and warns if no refresh is coming (see the class doc)."""
        steps = self.steps_since_refresh.assign_add(1.0).read_value()
        never_refreshed = tf.logical_and(tf.equal(self.refresh_count, 0.0), tf.equal(steps, 1.0))
        interval = self.longest_interval.read_value()
        stale = tf.logical_and(
            interval > 0.0, tf.equal(steps, tf.floor(self.stale_factor * interval) + 1.0)
        )
        never, stale_text = self.messages()
        hint = "is AdaptiveTemperature still in model.fit's callbacks?"
        if tf.executing_eagerly():
            if bool(never_refreshed):
                warnings.warn(never, stacklevel=4)
            elif bool(stale):
                warnings.warn(f"{stale_text} {int(steps)}, {int(interval)}; {hint}", stacklevel=4)
            return
        if tf.__internal__.get_enclosing_xla_context() is not None:
            return  # tf.print has no XLA kernel

        def print_never() -> None:
            tf.print("WARNING:", never, output_stream=sys.stderr)

        def print_stale() -> None:
            tf.print("WARNING:", stale_text, tf.cast(steps, tf.int64),
                     tf.cast(interval, tf.int64), hint, output_stream=sys.stderr)

        def report() -> None:
            tf.cond(never_refreshed, print_never, print_stale)

        tf.cond(tf.logical_or(never_refreshed, stale), report, lambda: None)

    def mark_refreshed(self) -> None:
        """Records a refresh (eagerly; the callback calls it after assigning τ)."""
        steps = float(self.steps_since_refresh.numpy())
        self.longest_interval.assign(max(float(self.longest_interval.numpy()), steps))
        self.refresh_count.assign_add(1.0)
        self.steps_since_refresh.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "owner": self.owner, "stale_factor": self.stale_factor}
