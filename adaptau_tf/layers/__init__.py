"""Small Keras layers shared by the models."""

from adaptau_tf.layers.graph_propagation import GraphPropagation
from adaptau_tf.layers.l2_normalization import L2Normalization

__all__ = ["GraphPropagation", "L2Normalization"]
