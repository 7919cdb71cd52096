"""Small Keras layers shared by the models."""

from adaptau_tf.layers.embedding_l2 import EmbeddingL2
from adaptau_tf.layers.graph_propagation import GraphPropagation
from adaptau_tf.layers.l2_normalization import L2Normalization
from adaptau_tf.layers.uniform_negatives import UniformNegatives

__all__ = ["EmbeddingL2", "GraphPropagation", "L2Normalization", "UniformNegatives"]
