"""Matrix factorisation retrieval model."""

from __future__ import annotations

import tensorflow as tf

from adaptau_tf.models.retrieval_model import RetrievalModel


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class MatrixFactorization(RetrievalModel):
    """MF: the towers are the embedding rows themselves (then dropout and L2 norm).

    Args: see :class:`~adaptau_tf.models.retrieval_model.RetrievalModel`.

    Example:
        >>> task = AdaptiveRetrieval(num_users=100, strategy="adap-tau")
        >>> model = MatrixFactorization(100, 50, task=task, num_negatives=1024)
        >>> model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        >>> model.fit(data.train_dataset(2048), epochs=10,
        ...           callbacks=[AdaptiveTemperature.from_data(data)])
    """

    def propagate(self, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        return self.user_embedding.embeddings, self.item_embedding.embeddings


