"""A progress bar per epoch and one compact line a person reads."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback

#: Log keys shown in the epoch line when present, with their labels.
DEFAULT_KEYS: tuple[tuple[str, str], ...] = (
    ("loss", "loss"), ("tau0", "τ0"), ("tau_u_p50", "τ_u p50"),
)


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class EpochProgress(SerializableCallback):
    """Replaces Keras's per-epoch dump of every metric with what a person reads.

    ``verbose=1``: a progress bar over the epoch's steps (the running mean
    loss), then one line per epoch; ``verbose=2``: the line only; ``0``:
    silent. The line holds the epoch, the loss, τ0 and the median τ_u (when an
    adaptive strategy logs them), the ``monitor`` metric (with the best value
    so far and its epoch) and the epoch's wall time, e.g.::

        epoch 3/40  loss 3.8629  τ0 0.1089  τ_u p50 0.1083  val_ndcg@20 0.1454 (best)  47.1s

    Every metric stays in ``logs`` (``history.csv``, TensorBoard). Train with
    ``model.fit(..., verbose=0)`` and put this callback **last**, after the
    callbacks that write into ``logs``. When the output is not a terminal
    (a log file) the bar is redrawn at most every ``interval_non_tty`` seconds.

    Args:
        monitor: the metric to show (``"val_ndcg@20"``); ``None`` shows none.
        verbose: 0, 1 or 2 (above).
        keys: ``(log key, label)`` pairs shown before the metric.
        interval_non_tty: seconds between bar updates when not on a terminal.
        stream: where to print (default ``sys.stdout``).
        **kwargs: passed to ``tf.keras.callbacks.Callback``.

    Example:
        >>> model.fit(dataset, epochs=40, verbose=0,
        ...           callbacks=[evaluation, EpochProgress("val_ndcg@20")])
    """

    def __init__(self, monitor: str | None = None, verbose: int = 1,
                 keys: Sequence[Sequence[str]] = DEFAULT_KEYS,
                 interval_non_tty: float = 30.0, stream: TextIO | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        self.monitor = monitor
        self.verbose = verbose
        self.keys = tuple((str(key), str(label)) for key, label in keys)
        self.interval_non_tty = float(interval_non_tty)
        self.stream = stream
        self._bar: tf.keras.utils.Progbar | None = None
        self._start = 0.0
        self._best: tuple[float, int] | None = None

    def _out(self) -> TextIO:
        return self.stream or sys.stdout

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._best = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        if self.verbose == 1:
            tty = getattr(self._out(), "isatty", lambda: False)()
            self._bar = tf.keras.utils.Progbar(
                self.params.get("steps"), unit_name="step",
                interval=0.05 if tty else self.interval_non_tty)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            values = [("loss", float(logs["loss"]))] if logs and "loss" in logs else []
            self._bar.update(batch + 1, values=values)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        self._bar = None
        if self.verbose == 0:
            return
        parts = [f"epoch {epoch + 1}/{self.params.get('epochs', '?')}"]
        parts += [f"{label} {float(logs[key]):.4f}" for key, label in self.keys if key in logs]
        if self.monitor and self.monitor in logs:
            value = float(logs[self.monitor])
            if self._best is None or value > self._best[0]:
                self._best = (value, epoch + 1)
                mark = " (best)"
            else:
                mark = f" (best {self._best[0]:.4f} @ {self._best[1]})"
            parts.append(f"{self.monitor} {value:.4f}{mark}")
        parts.append(f"{time.perf_counter() - self._start:.1f}s")
        print("  ".join(parts), file=self._out(), flush=True)

    def get_config(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "verbose": self.verbose,
                "keys": [list(pair) for pair in self.keys],
                "interval_non_tty": self.interval_non_tty}
