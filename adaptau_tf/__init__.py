"""adaptau_tf: adaptive softmax temperature (Adap-τ, WWW 2023) for TFRS retrieval.

Importing this package selects Keras 2 (``tf_keras``), which TensorFlow
Recommenders needs: ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow resolves
``tf.keras``. If TensorFlow was already imported *and* ``tf.keras`` already
resolved to Keras 3, the import fails with a clear message instead of mixing
the two Keras versions.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if os.environ["TF_USE_LEGACY_KERAS"] not in ("1", "true", "True"):
    raise ImportError(
        "adaptau_tf needs Keras 2 (tf_keras) but TF_USE_LEGACY_KERAS="
        f"{os.environ['TF_USE_LEGACY_KERAS']!r} is set; unset it or set it to 1."
    )

import tensorflow as tf  # noqa: E402

if not tf.keras.__name__.startswith("tf_keras"):
    raise ImportError(
        "adaptau_tf needs Keras 2 (tf_keras), but tensorflow was imported and "
        f"tf.keras resolved to {tf.keras.__name__!r} (Keras 3) before adaptau_tf. "
        "Import adaptau_tf first, or set TF_USE_LEGACY_KERAS=1 in the environment "
        "before importing tensorflow."
    )

__version__ = "0.1.0"

