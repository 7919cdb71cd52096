"""Small checks of :class:`~adaptau_tf.tasks.AdaptiveRetrieval`'s arguments and context."""

from __future__ import annotations

import numbers
from typing import Any


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int (NumPy ints included), or a ValueError quoting it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def gradient_recording() -> bool:
    """Whether a ``GradientTape`` records (Keras's ``train_step`` wraps ``compute_loss`` in one)."""
    try:
        from tensorflow.python.eager import record
    except ImportError:  # pragma: no cover  (older TF)
        return False
    return bool(record.could_possibly_record())
