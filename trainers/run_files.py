"""Files a run directory keeps across processes: atomic JSON, the accumulated wall time."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Writes JSON atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, allow_nan=False)  # strict JSON
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class Stopwatch(SerializableCallback):
    """Accumulates a run's training wall time across the processes that resume it.

    ``path`` (``{"seconds": s}``) holds the time of the epochs finished by earlier
    processes; this process adds its own from construction on and rewrites the
    file at the end of every epoch. An epoch cut short by an interruption is not
    booked (it is trained again); one repeated after a crash between its end and
    its checkpoint is booked twice.

    Args:
        path: the JSON file, created at the first epoch's end.
        **kwargs: passed to ``tf.keras.callbacks.Callback``.

    Example:
        >>> stopwatch = Stopwatch(run_dir / "elapsed.json")
        >>> model.fit(dataset, epochs=10, callbacks=[stopwatch, backup])
        >>> stopwatch.seconds  # this run's training time, all processes together
    """

    def __init__(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path)
        try:
            self.base = float(json.loads(self.path.read_text())["seconds"]) \
                if self.path.exists() else 0.0
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{self.path}: not a stopwatch file ({error!r}); delete it to "
                             "restart the count") from None
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Earlier processes' booked time plus this process's so far."""
        return self.base + time.perf_counter() - self.start

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        write_json(self.path, {"seconds": self.seconds})

    def get_config(self) -> dict[str, Any]:
        """The arguments (``tf.keras.callbacks.Callback`` has no config to chain to)."""
        return {"path": str(self.path)}
