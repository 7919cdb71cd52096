"""Keras callbacks."""

from adaptau_tf.callbacks.adaptive_temperature import ESTIMATORS, AdaptiveTemperature
from adaptau_tf.callbacks.analysis_tensorboard import AnalysisTensorBoard
from adaptau_tf.callbacks.csv_history import CSVHistory
from adaptau_tf.callbacks.epoch_progress import EpochProgress
from adaptau_tf.callbacks.popularity_tracker import PopularityGroupTracker, read_groups_csv

__all__ = [
    "ESTIMATORS",
    "AdaptiveTemperature",
    "AnalysisTensorBoard",
    "CSVHistory",
    "EpochProgress",
    "PopularityGroupTracker",
    "read_groups_csv",
]
