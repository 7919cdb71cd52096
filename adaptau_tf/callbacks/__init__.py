"""Keras callbacks."""

from adaptau_tf.callbacks.adaptive_temperature import ESTIMATORS, AdaptiveTemperature

__all__ = ["ESTIMATORS", "AdaptiveTemperature"]
