"""`ScoreAccumulator`: τ0's score statistics gathered from the training batches."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

#: Columns of ``ScoreAccumulator.user_sums`` (per user, over the epoch's rows).
USER_COLUMNS: tuple[str, ...] = ("positive", "positive_squared", "to_mean", "quadratic")
#: Columns of ``ScoreAccumulator.totals`` (over every row of the epoch).
TOTAL_COLUMNS: tuple[str, ...] = ("rows", *USER_COLUMNS, "query_norm", "query_norm_squared")


class _CandidateMoments:
    """Holds the transient ``ē`` and ``C`` variables out of Keras's and tf.train's tracking."""

    def __init__(self, mean: tf.Variable, second_moment: tf.Variable) -> None:
        self.mean = mean
        self.second_moment = second_moment


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class ScoreAccumulator(tf.keras.layers.Layer):
    """Per-epoch sums of the batches' scores: τ0's statistics without a user table.

    The table path of :class:`~adaptau_tf.callbacks.AdaptiveTemperature`
    scores every active user's training pairs and the mean item vector from
    the model's ``[n, d]`` / ``[m, d]`` tables (ALGORITHM.md §2). A two-tower
    model with feature towers has no user table, so here the statistics are
    summed from what the training batches hold: for each row with query
    ``q = ê_u`` and positive score ``s+ = f(u, i+)``

    * ``s+`` and ``s+²`` (μ+ and σ+² over the pairs),
    * ``q · ē`` and ``qᵀ C q`` with ``ē = mean_i ê_i`` and
      ``C = mean_i ê_i ê_iᵀ`` over the candidates (μ and σ² over all
      user × item pairs), both set by the callback at each epoch start
      (:meth:`set_candidate_moments`) from a dataset of candidates,

    per user (``user_sums``, when the batch's user ids are given) and over all
    rows (``totals``, also the query norms that tell whether the query tower
    normalises). With weights that do not change during the epoch this gives
    exactly the table path's statistics; during training they are averages
    over the epoch's steps (the table path's are a snapshot at its end).

    State:

    * ``user_sums``: ``[num_users, 4]`` (:data:`USER_COLUMNS`), ``ON_READ``/``SUM``;
    * ``totals``: ``[7]`` (:data:`TOTAL_COLUMNS`), ``ON_READ``/``SUM``;
    * ``ē`` ``[d]`` and ``C`` ``[d, d]``: transient variables that are no
      weights (not saved: the callback recomputes them at every epoch start).
      Until they are set, :attr:`enabled` is false and :meth:`update` is not
      called by the retrieval layer, so models that use the table path pay
      nothing.

    Args:
        num_users: rows of ``user_sums``.
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> accumulator = ScoreAccumulator(num_users=10)
        >>> accumulator.set_candidate_moments(np.zeros(4), np.eye(4) / 4)
        >>> accumulator.update(tf.eye(4)[:2], tf.constant([0.5, 0.2]), tf.constant([3, 7]))
    """

    #: Training bookkeeping, not model state: ``RankingEvaluation`` leaves these
    #: variables out of its best-weight snapshots.
    bookkeeping = True

    def __init__(self, num_users: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_users = num_users
        accumulator = {
            "initializer": "zeros",
            "trainable": False,
            "synchronization": tf.VariableSynchronization.ON_READ,
            "aggregation": tf.VariableAggregation.SUM,
        }
        self.user_sums = self.add_weight(
            name="user_sums", shape=(num_users, len(USER_COLUMNS)), **accumulator
        )
        self.totals = self.add_weight(name="totals", shape=(len(TOTAL_COLUMNS),), **accumulator)
        self._moments: _CandidateMoments | None = None

    @property
    def enabled(self) -> bool:
        """Whether the candidate moments are set (then training updates the sums)."""
        return self._moments is not None

    def set_candidate_moments(self, mean: Any, second_moment: Any) -> None:
        """Sets ``ē [d]`` and ``C [d, d]`` (created on the first call).

        Call it in cross-replica context (under the model's distribution
        strategy scope the first time, so the variables are mirrored). A
        ``train_function`` traced before the first call does not update the
        sums: rebuild it (the callback does).

        Raises:
            ValueError: shapes that are not ``[d]`` and ``[d, d]``, or a ``d``
                other than the one set before (quoted).
        """
        mean = np.asarray(mean, np.float32)
        second_moment = np.asarray(second_moment, np.float32)
        dim = mean.shape[0] if mean.ndim == 1 else None
        if dim is None or second_moment.shape != (dim, dim):
            raise ValueError(
                f"candidate moments must be [d] and [d, d], got {mean.shape} and "
                f"{second_moment.shape}"
            )
        if self._moments is None:
            self._moments = _CandidateMoments(
                tf.Variable(mean, trainable=False, name="candidate_mean"),
                tf.Variable(second_moment, trainable=False, name="candidate_second_moment"),
            )
            return
        if tuple(self._moments.mean.shape) != (dim,):
            raise ValueError(
                f"candidate vectors are {dim}-dimensional now, {self._moments.mean.shape[0]} "
                "before"
            )
        self._moments.mean.assign(mean)
        self._moments.second_moment.assign(second_moment)

    def update(self, query: tf.Tensor, positive_scores: tf.Tensor,
               user_ids: tf.Tensor | None = None) -> None:
        """Adds a batch: ``query [B, d]``, ``positive_scores [B]``, ``user_ids [B]`` or None.

        Raises:
            ValueError: before :meth:`set_candidate_moments`, or query vectors
                whose dimension differs from the candidates' (quoted).
        """
        if self._moments is None:
            raise ValueError("ScoreAccumulator.update needs set_candidate_moments first")
        query = tf.cast(query, tf.float32)
        dim = int(self._moments.mean.shape[0])
        if query.shape.rank != 2 or (query.shape[-1] is not None and query.shape[-1] != dim):
            raise ValueError(
                f"query embeddings must be [B, {dim}] like the candidates, got {query.shape}"
            )
        positive = tf.cast(positive_scores, tf.float32)
        to_mean = tf.linalg.matvec(query, self._moments.mean)
        quadratic = tf.reduce_sum(tf.matmul(query, self._moments.second_moment) * query, axis=1)
        per_row = tf.stack([positive, positive * positive, to_mean, quadratic], axis=1)
        norm_squared = tf.reduce_sum(query * query, axis=1)
        rows = tf.cast(tf.shape(query)[0], tf.float32)
        self.totals.assign_add(tf.concat([
            rows[None], tf.reduce_sum(per_row, axis=0),
            tf.stack([tf.reduce_sum(tf.sqrt(norm_squared)), tf.reduce_sum(norm_squared)]),
        ], axis=0))
        if user_ids is not None:
            self.user_sums.assign_add(
                tf.math.unsorted_segment_sum(per_row, user_ids, self.num_users)
            )

    def reset(self) -> None:
        """Zeroes the sums (called at every refresh)."""
        self.user_sums.assign(tf.zeros_like(self.user_sums))
        self.totals.assign(tf.zeros_like(self.totals))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_users": self.num_users}
