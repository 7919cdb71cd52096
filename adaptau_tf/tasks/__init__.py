"""Keras loss layers (TFRS ``tasks`` vocabulary)."""

from adaptau_tf.tasks.adaptive_retrieval import (
    LOSS_FORMS,
    AdaptiveRetrieval,
    global_batch_size,
)

__all__ = ["LOSS_FORMS", "AdaptiveRetrieval", "global_batch_size"]
