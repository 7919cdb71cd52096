"""Retrieval models with L2-normalised towers."""

from adaptau_tf.models.factory import BACKBONES, build_model, parse_negatives
from adaptau_tf.models.lightgcn import LightGCN
from adaptau_tf.models.matrix_factorization import MatrixFactorization
from adaptau_tf.models.retrieval_model import SCORES, RetrievalModel

__all__ = [
    "BACKBONES",
    "LightGCN",
    "MatrixFactorization",
    "RetrievalModel",
    "SCORES",
    "build_model",
    "parse_negatives",
]
