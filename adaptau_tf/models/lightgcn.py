"""LightGCN retrieval model."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.layers.graph_propagation import GraphPropagation, normalized_adjacency
from adaptau_tf.models.retrieval_model import RetrievalModel
from adaptau_tf.tasks.adaptive_retrieval import AdaptiveRetrieval


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class LightGCN(RetrievalModel):
    """LightGCN: mean of 3 propagation rounds over ``D^-1/2 A D^-1/2``.

    The representations used by the loss, τ0, evaluation and export are the
    propagated ones; L2 regularisation applies to the layer-0 embeddings.
    The graph is data: ``get_config`` carries the training pairs (``[P, 2]``
    as a list, about 20 bytes a pair in JSON), from which ``from_config``
    rebuilds the normalised adjacency.

    Args:
        num_users: ``n``.
        num_items: ``m``.
        task: the loss layer.
        train_pairs: ``[P, 2]`` int training (user, item) pairs.
        num_layers: propagation rounds (3).
        **kwargs: see :class:`~adaptau_tf.models.retrieval_model.RetrievalModel`
            (``num_negatives=None`` for the reference recipe's in-batch
            negatives).

    Example:
        >>> task = AdaptiveRetrieval(num_users=data.num_users, strategy="adap-tau")
        >>> model = LightGCN(data.num_users, data.num_items, task, data.train,
        ...                  num_negatives=None)
    """

    # tf.sparse.sparse_dense_matmul (the propagation) has no XLA kernel.
    supports_jit = False

    def __init__(
        self,
        num_users: int,
        num_items: int,
        task: AdaptiveRetrieval,
        train_pairs: np.ndarray,
        num_layers: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_users, num_items, task, **kwargs)
        self.train_pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
        self.num_layers = num_layers
        self.propagation = GraphPropagation(
            normalized_adjacency(num_users, num_items, train_pairs),
            num_layers=num_layers,
            name="graph_propagation",
        )

    def propagate(self, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        table = tf.concat(
            [self.user_embedding.embeddings, self.item_embedding.embeddings], axis=0
        )
        final = self.propagation(table)
        return final[: self.num_users], final[self.num_users:]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "train_pairs": self.train_pairs.tolist(),
                "num_layers": self.num_layers}
