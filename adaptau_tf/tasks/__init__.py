"""Keras loss layers (TFRS ``tasks`` vocabulary)."""

from adaptau_tf.tasks.adaptive_retrieval import LOSS_FORMS, REDUCTIONS, AdaptiveRetrieval
from adaptau_tf.tasks.refresh_monitor import RefreshMonitor
from adaptau_tf.tasks.score_accumulator import ScoreAccumulator
from adaptau_tf.tasks.scores import global_batch_size

__all__ = [
    "LOSS_FORMS",
    "REDUCTIONS",
    "AdaptiveRetrieval",
    "RefreshMonitor",
    "ScoreAccumulator",
    "global_batch_size",
]
