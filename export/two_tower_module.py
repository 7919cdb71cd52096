"""`TwoTowerServingModule`: the TF Serving graph of a feature two-tower model (core TF ops)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf


class TwoTowerServingModule(tf.Module):
    """Raw query features in, top-k raw candidate ids and scores out.

    The user's query tower (with its ``StringLookup`` etc. inside) runs in the
    graph, so requests carry raw ids and features; an id the lookup does not
    know goes to its OOV row and is answered like any other (a batch never
    fails on an unknown user). Candidates are a fixed ``[m, d]`` table
    scored by inner product, their raw ids a ``[m]`` table, and an optional
    per-row ``history`` of raw candidate ids is excluded through a hash table
    (ids it does not hold, e.g. the padding, are ignored).

    Signatures (every input has the batch as its first dimension, so TF
    Serving's REST row format ``{"instances": [{...}, ...]}`` works):

    * ``serving_default``: the query features, ``k`` ``[B]`` int32 (per row,
      ``1 <= k <= max_k``) and, with ``history``, ``history`` ``[B, L]``
      (candidate ids padded with ``""``, or ``-1`` for integer ids) ->
      ``item_ids [B, K]`` and ``scores [B, K]`` float32, best first, with
      ``K = max(k)``; positions past a row's own ``k``, or past its last
      non-excluded candidate, hold ``""``/``-1`` and ``-inf``;
    * ``query_embedding``: the query features -> ``embedding [B, d]``;
    * ``candidate_embeddings``: -> ``embeddings [m, d]``, ``item_ids [m]``.

    Args:
        query_model: the query tower (called with the single feature, or with
            the dict of features when ``query_features`` is a mapping).
        item_vectors: ``[m, d]`` float32 candidate vectors.
        item_ids: ``[m]`` unique raw candidate ids (str/bytes or int).
        query_features: a named ``tf.TensorSpec`` (one feature; its name is
            the input's name) or a mapping ``name -> TensorSpec``.
        max_k: the largest ``k`` a request may ask for (at most ``m``).
        history: add the ``history`` input to ``serving_default``.

    Example:
        >>> module = TwoTowerServingModule(user_model, vectors, np.array([b"a", b"b"]),
        ...                                tf.TensorSpec([None], tf.string, name="user_id"))
        >>> module.serve(tf.constant(["42"]), tf.constant([2]), tf.constant([[""]]))
    """

    def __init__(
        self,
        query_model: Any,
        item_vectors: np.ndarray,
        item_ids: np.ndarray,
        query_features: tf.TensorSpec | Mapping[str, tf.TensorSpec],
        max_k: int = 100,
        history: bool = True,
    ) -> None:
        super().__init__(name="two_tower_serving")
        vectors = np.asarray(item_vectors, np.float32)
        ids = np.asarray(item_ids)
        if vectors.ndim != 2 or ids.shape != (vectors.shape[0],):
            raise ValueError(
                f"item vectors must be [m, d] and item ids [m], got {vectors.shape} and "
                f"{ids.shape}"
            )
        self.string_ids = ids.dtype.kind in "SUO"
        if not (self.string_ids or np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"item ids must be strings or integers, got dtype {ids.dtype}")
        self.num_items = int(vectors.shape[0])
        if not (isinstance(max_k, int) and max_k >= 1):
            raise ValueError(f"max_k must be a positive int, got {max_k!r}")
        self.max_k = min(max_k, self.num_items)
        self.history = bool(history)
        if isinstance(query_features, tf.TensorSpec):
            if not query_features.name:
                raise ValueError("a single query feature's TensorSpec needs a name")
            self.feature_names = [query_features.name]
            self.single_feature = True
            specs = [query_features]
        else:
            self.feature_names = list(query_features)
            self.single_feature = False
            specs = [tf.TensorSpec(spec.shape, spec.dtype, name=name)
                     for name, spec in query_features.items()]
        self.query_model = query_model
        self.id_dtype = tf.string if self.string_ids else tf.int64
        ids = ids.astype(object if self.string_ids else np.int64)
        self.item_table = tf.Variable(vectors, trainable=False, name="item_vectors")
        self.item_id_table = tf.Variable(tf.constant(list(ids), self.id_dtype), trainable=False,
                                         name="item_ids")
        self.id_to_row = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(ids), self.id_dtype), tf.range(self.num_items, dtype=tf.int64)),
            default_value=-1,
        )
        self.padding = tf.constant("" if self.string_ids else -1, self.id_dtype)

        k_spec = tf.TensorSpec([None], tf.int32, name="k")
        history_spec = tf.TensorSpec([None, None], self.id_dtype, name="history")
        serve_specs = [*specs, k_spec, *([history_spec] if self.history else [])]
        self.serve = tf.function(self._serve, input_signature=serve_specs)
        self.query_embedding = tf.function(self._query_embedding, input_signature=specs)
        self.candidate_embeddings = tf.function(self._candidate_embeddings, input_signature=[])

    def _query(self, features: tuple[tf.Tensor, ...]) -> tf.Tensor:
        inputs = (features[0] if self.single_feature
                  else dict(zip(self.feature_names, features)))
        return tf.cast(self.query_model(inputs, training=False), tf.float32)

    def _serve(self, *inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        count = len(self.feature_names)
        features, k = inputs[:count], inputs[count]
        message = f"k must be in [1, max_k={self.max_k}] on every row"
        with tf.control_dependencies([
            tf.debugging.assert_positive(k, message=message),
            tf.debugging.assert_less_equal(k, tf.constant(self.max_k, tf.int32),
                                           message=message),
        ]):
            k = tf.identity(k)
        scores = tf.matmul(self._query(features), self.item_table, transpose_b=True)
        if self.history:
            rows = self.id_to_row.lookup(inputs[count + 1])  # [B, L], -1: not a candidate
            where = tf.where(rows >= 0)
            positions = tf.stack([where[:, 0], tf.gather_nd(rows, where)], axis=1)
            scores = tf.tensor_scatter_nd_update(
                scores, positions, tf.fill(tf.shape(where)[:1], float("-inf")))
        width = tf.maximum(tf.reduce_max(k), 1)
        top = tf.math.top_k(scores, k=width, sorted=True)
        keep = tf.logical_and(tf.range(width)[None, :] < k[:, None],
                              tf.logical_not(tf.math.is_inf(top.values)))
        item_ids = tf.where(keep, tf.gather(self.item_id_table, top.indices), self.padding)
        return {"item_ids": item_ids,
                "scores": tf.where(keep, top.values, tf.constant(float("-inf")))}

    def _query_embedding(self, *features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"embedding": self._query(features)}

    def _candidate_embeddings(self) -> dict[str, tf.Tensor]:
        return {"embeddings": tf.identity(self.item_table),
                "item_ids": tf.identity(self.item_id_table)}

    def signatures(self) -> dict[str, Any]:
        """The SavedModel signatures (``serving_default`` is the top-k)."""
        return {
            "serving_default": self.serve,
            "query_embedding": self.query_embedding,
            "candidate_embeddings": self.candidate_embeddings,
        }
