"""A Keras callback base with Keras's serialisation protocol."""

from __future__ import annotations

from typing import Any

import tensorflow as tf


class SerializableCallback(tf.keras.callbacks.Callback):
    """``tf.keras.callbacks.Callback`` plus ``from_config``.

    Keras 2 callbacks have neither ``get_config`` nor ``from_config``; the
    package's callbacks define ``get_config`` (their constructor arguments) and
    inherit this ``from_config``, so ``tf.keras.utils.serialize_keras_object`` /
    ``deserialize_keras_object`` rebuild them.

    Example:
        >>> callback = CSVHistory("history.csv")
        >>> type(callback).from_config(callback.get_config()).filename
        'history.csv'
    """

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SerializableCallback:
        """Rebuilds the callback from :meth:`get_config`."""
        return cls(**config)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (overridden by every subclass)."""
        return {}
