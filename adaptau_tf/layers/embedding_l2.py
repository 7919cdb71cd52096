"""The L2 penalty on a batch's raw embeddings, as a serialisable layer."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from adaptau_tf.tasks.adaptive_retrieval import global_batch_size


def _num_replicas() -> int:
    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class EmbeddingL2(tf.keras.layers.Layer):
    """``λ/2 · (Σ_b ‖e_u‖² + Σ_b ‖e_i+‖²) / B  +  λ/2 · Σ_{g,j} ‖e_gj‖² / G``.

    The reference code's ``λ (‖e_u‖² + ‖e_i+‖² + ‖e_N‖²) / 2 / B`` on the
    batch's raw (layer-0) embeddings: with per-row negatives (``G = B``) it is
    exactly that, with ``G`` draws shared by ``B / G`` rows each it has the same
    expectation. A mean over the global batch (exact under ``tf.distribute``).

    ``dense=True`` computes the same value as one ``[m]`` pass over the item
    table (each item's squared norm weighted by its rows and draws), so the
    table's gradient is one dense ``[m, d]`` tensor: cheaper when a step's draws
    cover the catalogue (``G·M >= m``).

    Args:
        l2: ``λ`` (>= 0).
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> penalty = EmbeddingL2(1e-4)(user_table, item_table, user_ids, item_ids)
    """

    def __init__(self, l2: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not float(l2) >= 0:
            raise ValueError(f"l2 must be >= 0, got {l2!r}")
        self.l2 = float(l2)

    def call(self, user_table: tf.Tensor, item_table: tf.Tensor, user_ids: tf.Tensor,
             item_ids: tf.Tensor, negative_ids: tf.Tensor | None = None,
             dense: bool = False) -> tf.Tensor:
        """The scalar penalty.

        Args:
            user_table: ``[n, d]`` raw user embeddings.
            item_table: ``[m, d]`` raw item embeddings.
            user_ids: ``[B]`` the batch's users.
            item_ids: ``[B]`` its positive items.
            negative_ids: ``[M]`` or ``[G, M]`` sampled negatives (``None``: in-batch).
            dense: the ``[m]`` pass described above (needs ``negative_ids``).
        """
        user_rows = tf.reduce_sum(tf.square(tf.gather(user_table, user_ids)), axis=-1)
        rows = global_batch_size(tf.shape(user_rows)[0])
        groups = 1 if negative_ids is None or negative_ids.shape.rank == 1 \
            else negative_ids.shape[0]
        groups = float(groups * _num_replicas())
        if dense:
            num_items = tf.shape(item_table)[0]
            weights = (_counts(item_ids, num_items, item_table.dtype)
                       / tf.cast(rows, item_table.dtype)
                       + _counts(negative_ids, num_items, item_table.dtype) / groups)
            item_term = tf.reduce_sum(weights * tf.reduce_sum(tf.square(item_table), axis=-1))
            return 0.5 * self.l2 * (
                tf.nn.compute_average_loss(user_rows, global_batch_size=rows) + item_term)
        item_rows = tf.reduce_sum(tf.square(tf.gather(item_table, item_ids)), axis=-1)
        penalty = tf.nn.compute_average_loss(0.5 * self.l2 * (user_rows + item_rows),
                                             global_batch_size=rows)
        if negative_ids is not None:
            shared = tf.reduce_sum(tf.square(tf.gather(item_table, negative_ids)))
            penalty += 0.5 * self.l2 * shared / groups
        return penalty

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "l2": self.l2}


def _counts(ids: tf.Tensor, size: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """``[size]`` occurrences of each id in ``ids`` (any shape)."""
    flat = tf.reshape(ids, [-1])
    return tf.math.unsorted_segment_sum(tf.ones_like(flat, dtype), flat, size)
