"""`ServingModule`: the TF Serving graph of an export (core TF ops only).

Also the NumPy pieces that mirror it: the CSR seen-item table and the
reference top-k that ``adaptau_tf.export.check`` compares the SavedModel against.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

#: What the serving graph does with users that have no training rows.
COLD_POLICIES: tuple[str, ...] = ("popular", "refuse")


class ServingModule(tf.Module):
    """The serving graph: brute-force top-k over fixed, exported tables.

    Every table is a non-trainable variable (stored in ``variables/``, not in
    the GraphDef), the seen-item table is CSR-like (``row_splits`` + ``values``,
    a ragged constant) and the signatures use only core TF ops.

    Args:
        user_vectors: ``[n, d]`` float32 final user vectors.
        item_vectors: ``[m, d]`` float32 final item vectors.
        item_ids: ``[m]`` int64 item id of each row.
        seen_row_splits: ``[n + 1]`` int64 offsets into ``seen_items`` (``None``:
            nothing is excluded).
        seen_items: ``[P]`` int64 item rows to exclude per user.
        cold_users: ``[n]`` bool, users without training rows (their vectors
            were never trained); ``None``: none.
        popularity: ``[m]`` float32 training rows per item: the cold users'
            scores under ``cold_policy="popular"``.
        cold_policy: ``"popular"``: a cold user gets the most popular unseen
            items (``scores`` are then the items' training counts); ``"refuse"``:
            a batch holding a cold user fails with ``InvalidArgument``, as one
            with an unknown user does.

    Example:
        >>> module = ServingModule(users, items, np.arange(len(items)))
        >>> out = module.serve(tf.constant([0, 3], tf.int64), tf.constant(10))
        >>> out["item_ids"].shape, out["scores"].shape
        (TensorShape([2, 10]), TensorShape([2, 10]))
    """

    def __init__(
        self,
        user_vectors: np.ndarray,
        item_vectors: np.ndarray,
        item_ids: np.ndarray,
        seen_row_splits: np.ndarray | None = None,
        seen_items: np.ndarray | None = None,
        cold_users: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        cold_policy: str = "popular",
    ) -> None:
        super().__init__(name="adaptau_serving")
        if cold_policy not in COLD_POLICIES:
            raise ValueError(f"cold_policy must be one of {COLD_POLICIES}, got {cold_policy!r}")
        if user_vectors.ndim != 2 or item_vectors.ndim != 2:
            raise ValueError(
                f"user/item vectors must be 2-D, got {user_vectors.shape} and {item_vectors.shape}"
            )
        if user_vectors.shape[1] != item_vectors.shape[1]:
            raise ValueError(
                f"user dim {user_vectors.shape[1]} != item dim {item_vectors.shape[1]}"
            )
        if item_ids.shape != (item_vectors.shape[0],):
            raise ValueError(f"item_ids must be [{item_vectors.shape[0]}], got {item_ids.shape}")
        if (seen_row_splits is None) != (seen_items is None):
            raise ValueError("give both seen_row_splits and seen_items, or neither")
        self.num_users = int(user_vectors.shape[0])
        self.num_items = int(item_vectors.shape[0])
        self.exclude_seen = seen_row_splits is not None

        def variable(value: np.ndarray, dtype: tf.DType, name: str) -> tf.Variable:
            return tf.Variable(tf.constant(value, dtype), trainable=False, name=name)

        self.user_table = variable(user_vectors, tf.float32, "user_vectors")
        self.item_table = variable(item_vectors, tf.float32, "item_vectors")
        self.item_id_table = variable(item_ids, tf.int64, "item_ids")
        if self.exclude_seen:
            if seen_row_splits.shape != (self.num_users + 1,):
                raise ValueError(
                    f"seen_row_splits must be [{self.num_users + 1}], got {seen_row_splits.shape}"
                )
            self.seen_row_splits = variable(seen_row_splits, tf.int64, "seen_row_splits")
            self.seen_items = variable(seen_items, tf.int64, "seen_items")
        cold = np.zeros(self.num_users, bool) if cold_users is None else np.asarray(cold_users)
        if cold.shape != (self.num_users,):
            raise ValueError(f"cold_users must be [{self.num_users}] bool, got {cold.shape}")
        if popularity is None:
            popularity = np.zeros(self.num_items, np.float32)
        if np.shape(popularity) != (self.num_items,):
            raise ValueError(f"popularity must be [{self.num_items}], got {np.shape(popularity)}")
        self.cold_policy = cold_policy
        self.cold_table = variable(cold, tf.bool, "cold_users")
        self.popularity = variable(popularity, tf.float32, "item_popularity")

    def _checked_users(self, user_id: tf.Tensor) -> tf.Tensor:
        message = (
            f"user_id out of range: this model knows user ids 0..{self.num_users - 1} "
            f"(num_users={self.num_users}); unknown ids cannot be served"
        )
        checks = [
            tf.debugging.assert_non_negative(user_id, message=message),
            tf.debugging.assert_less(user_id, tf.constant(self.num_users, tf.int64),
                                     message=message),
        ]
        if self.cold_policy == "refuse":
            checks.append(tf.debugging.assert_equal(
                tf.reduce_any(tf.gather(self.cold_table, tf.clip_by_value(
                    user_id, 0, self.num_users - 1))), False,
                message="user_id has no training rows (cold user): this export refuses them"))
        with tf.control_dependencies(checks):
            return tf.identity(user_id)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.int64, name="user_id"),
        tf.TensorSpec([], tf.int32, name="k"),
    ])
    def serve(self, user_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Top-k items per user.

        Args:
            user_id: ``[B]`` int64 user ids in ``[0, n)``.
            k: int32 scalar in ``[1, m]``.

        Returns:
            ``item_ids [B, k]`` int64 and ``scores [B, k]`` float32, best first;
            when fewer than k unseen items exist the tail is ``-1`` / ``-inf``.
        """
        k_message = f"k must be in [1, num_items={self.num_items}]"
        with tf.control_dependencies([
            tf.debugging.assert_positive(k, message=k_message),
            tf.debugging.assert_less_equal(k, tf.constant(self.num_items, tf.int32),
                                           message=k_message),
        ]):
            k = tf.identity(k)
        user_id = self._checked_users(user_id)
        queries = tf.gather(self.user_table, user_id)
        scores = tf.matmul(queries, self.item_table, transpose_b=True)
        if self.cold_policy == "popular":  # cold users: the items' training counts
            cold = tf.gather(self.cold_table, user_id)
            scores = tf.where(cold[:, None], tf.broadcast_to(self.popularity, tf.shape(scores)),
                              scores)
        if self.exclude_seen:
            starts = tf.gather(self.seen_row_splits, user_id)
            limits = tf.gather(self.seen_row_splits, user_id + 1)
            positions = tf.ragged.range(starts, limits)
            rows = positions.value_rowids()
            items = tf.gather(self.seen_items, positions.flat_values)
            scores = tf.tensor_scatter_nd_update(
                scores,
                tf.stack([rows, items], axis=1),
                tf.fill(tf.shape(rows), tf.constant(float("-inf"), tf.float32)),
            )
        top = tf.math.top_k(scores, k=k, sorted=True)
        item_ids = tf.gather(self.item_id_table, top.indices)
        item_ids = tf.where(
            tf.math.is_inf(top.values), tf.constant(-1, tf.int64), item_ids
        )
        return {"item_ids": item_ids, "scores": top.values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="user_id")])
    def user_embedding(self, user_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """``user_id [B]`` -> ``embedding [B, d]`` (the exported, normalised vectors)."""
        return {"embedding": tf.gather(self.user_table, self._checked_users(user_id))}

    @tf.function(input_signature=[])
    def item_embeddings(self) -> dict[str, tf.Tensor]:
        """-> ``embeddings [m, d]`` float32 and ``item_ids [m]`` int64."""
        return {
            "embeddings": tf.identity(self.item_table),
            "item_ids": tf.identity(self.item_id_table),
        }

    def signatures(self) -> dict[str, Any]:
        """The SavedModel signatures (``serving_default`` is :meth:`serve`)."""
        return {
            "serving_default": self.serve,
            "user_embedding": self.user_embedding,
            "item_embeddings": self.item_embeddings,
        }


def cold_users(pairs: np.ndarray, num_users: int) -> np.ndarray:
    """``[n]`` bool: the users without a row in ``[P, 2]`` (user, item) pairs."""
    return np.bincount(np.asarray(pairs, np.int64).reshape(-1, 2)[:, 0],
                       minlength=num_users)[:num_users] == 0


def seen_table(pairs: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR exclusion table from ``[P, 2]`` (user, item) pairs (duplicates dropped).

    Returns:
        ``(row_splits [n + 1] int64, items [P'] int64)``, items sorted per user.
    """
    pairs = np.unique(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=num_users)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), pairs[:, 1].copy()


def reference_topk(
    users: np.ndarray,
    items: np.ndarray,
    user_ids: np.ndarray,
    k: int,
    row_splits: np.ndarray | None = None,
    seen: np.ndarray | None = None,
    cold: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy top-k of ``users[user_ids] @ items.T`` with seen items masked; the rows
    of ``cold`` users score ``popularity`` instead (``cold_policy="popular"``).

    Returns:
        ``(rows [B, k] int64, scores [B, k] float32)``; ties go to the lower row.
    """
    scores = users[user_ids] @ items.T
    if cold is not None and popularity is not None:
        scores[cold[user_ids]] = popularity
    if row_splits is not None:
        for row, user in enumerate(user_ids):
            scores[row, seen[row_splits[user]:row_splits[user + 1]]] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(scores, order, axis=1).astype(np.float32)
