"""Data layer: interaction splits, readers, synthetic data and the train pipeline.

Example:
    >>> from adaptau_tf.data import load_data
    >>> data = load_data("synthetic:users=500,items=300").with_validation_split(0.1)
    >>> dataset = data.train_dataset(batch_size=1024, seed=0)
"""

from adaptau_tf.data.interaction_data import InteractionData
from adaptau_tf.data.lightgcn import LightGCNFile, load_lightgcn, read_lightgcn
from adaptau_tf.data.loading import load_data
from adaptau_tf.data.synthetic import make_synthetic
from adaptau_tf.data.synthetic_config import SyntheticConfig
from adaptau_tf.data.tfds_movielens import load_tfds_movielens

__all__ = [
    "InteractionData",
    "LightGCNFile",
    "SyntheticConfig",
    "load_data",
    "load_lightgcn",
    "load_tfds_movielens",
    "make_synthetic",
    "read_lightgcn",
]
