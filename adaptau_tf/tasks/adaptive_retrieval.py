"""A drop-in for ``tfrs.tasks.Retrieval`` whose temperature adapts per user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from adaptau_tf.tasks import negatives
from adaptau_tf.temperature.factory import get_strategy
from adaptau_tf.temperature.strategy import TemperatureStrategy

LOSS_FORMS: tuple[str, ...] = ("paper", "reference")

# Logit given to masked negatives (accidental hits, the in-batch diagonal of the
# reference form). Finite so that a row whose negatives are all masked gives a
# finite loss instead of NaN.
_MASK_LOGIT = -1e9


def global_batch_size(rows: tf.Tensor) -> tf.Tensor:
    """Rows of the global batch: the replica's ``rows`` summed over replicas.

    ``tf.nn.compute_average_loss`` assumes every replica holds
    ``global / num_replicas`` rows; when a global batch does not split evenly
    (the last batch of an epoch) that divisor is wrong on every replica and
    the summed loss drifts from the mean. Summing the actual row counts over
    replicas (one scalar all-reduce) makes the loss the exact mean over the
    global batch for any split.

    Args:
        rows: scalar int, the rows this replica holds.

    Returns:
        Scalar int64: the rows of the global batch (``rows`` itself outside
        ``tf.distribute`` or with one replica).
    """
    rows = tf.cast(rows, tf.int64)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return rows
    # float32 all-reduce (every collective implementation supports it); exact
    # for row counts below 2**24.
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(rows, tf.float32))
    return tf.cast(tf.round(total), tf.int64)


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdaptiveRetrieval(tf.keras.layers.Layer):
    """Softmax retrieval loss with a global and a per-user temperature.

    Used like ``tfrs.tasks.Retrieval``: a model's ``compute_loss`` calls it with
    query and positive-candidate embeddings (and here, also the batch's user
    ids). Negatives are the batch's other positives (in-batch, TFRS's default)
    or sampled items (``negative_embeddings``): one draw shared by the whole
    batch (``[M, d]``, one ``[B, d] x [d, M]`` matmul) or G independent draws
    (``[G, M, d]``, row ``b`` against draw ``b mod G``, a batched matmul).

    Per-row loss for a positive score ``s+`` and negative scores ``s_j``
    (ALGORITHM.md §1), with ``g`` the global and ``t`` the user scale given by
    the strategy (inverse temperatures):

    * ``loss_form="paper"``: ``−t·s+ + log(exp(t·s+) + Σ_j exp(t·s_j))``;
    * ``loss_form="reference"``: ``−g·s+ + log Σ_j exp(t·s_j)`` (the positive
      scaled by τ0, not in the denominator: what produced the published
      numbers).

    The default is ``"paper"``: it is a proper softmax cross-entropy (the
    positive is in its own denominator, so the loss is bounded below by 0 and
    coincides with ``tfrs.tasks.Retrieval`` for a fixed τ), and it is the
    form the paper's derivation of ``τ_u`` assumes. ``"reference"`` is there to
    reproduce the published numbers.

    State (all created with ``add_weight``, saved with the model):

    * ``inverse_temperature``: scalar ``1/τ0`` (or ``1/τ`` for a fixed τ);
    * ``user_inverse_temperature``: ``[num_users]`` ``1/τ_u``;
    * ``user_loss_sum`` / ``user_loss_count``: ``[num_users]`` per-user sums of
      the per-example loss at τ = 1 and row counts, accumulated during training
      (``ON_READ``/``SUM``: reading them under ``tf.distribute`` gives the sum
      over replicas). Only accumulated when the strategy is per-user, or when
      ``track_user_loss=True``.

    The loss is a mean over the (global) batch: it does not change with the
    batch size or the number of replicas. Under ``tf.distribute`` each replica
    returns its share ``Σ_local ℓ / B_global`` (``B_global`` summed over
    replicas, so uneven splits are exact too, see :func:`global_batch_size`)
    and the replicas' gradients are summed.

    Args:
        num_users: number of users (size of the per-user state).
        strategy: a :class:`~adaptau_tf.temperature.TemperatureStrategy` or its
            key (``nonorm|fixed|c-tau|cu-tau|adap-tau0|adap-tau``). Default:
            ``"fixed"`` when ``temperature`` is given, else ``"adap-tau"``.
        temperature: τ of a fixed strategy, or the initial τ of the others
            (TFRS's argument).
        loss_form: ``"paper"`` (default) or ``"reference"``.
        num_hard_negatives: keep only the this many highest-scoring negatives
            per row (TFRS semantics); ``None`` keeps all.
        remove_accidental_hits: mask negatives whose id equals the row's
            positive id (needs ``candidate_ids``).
        track_user_loss: accumulate per-user losses even for a strategy that
            does not need them (for analysis).
        metrics: optional ``tfrs.metrics.FactorizedTopK`` updated when
            ``compute_metrics`` is true (as in TFRS).
        batch_metrics: optional Keras metrics updated with
            ``(labels, scores)`` of the batch.
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> task = AdaptiveRetrieval(num_users=100, strategy="adap-tau")
        >>> loss = task(query_embeddings, candidate_embeddings, user_ids=user_ids)
    """

    def __init__(
        self,
        num_users: int,
        strategy: str | TemperatureStrategy | None = None,
        temperature: float | None = None,
        loss_form: str = "paper",
        num_hard_negatives: int | None = None,
        remove_accidental_hits: bool = False,
        track_user_loss: bool = False,
        metrics: tf.keras.layers.Layer | None = None,
        batch_metrics: Sequence[tf.keras.metrics.Metric] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not (isinstance(num_users, int) and num_users > 0):
            raise ValueError(f"num_users must be a positive int, got {num_users!r}")
        if loss_form not in LOSS_FORMS:
            raise ValueError(f"loss_form must be one of {LOSS_FORMS}, got {loss_form!r}")
        if num_hard_negatives is not None and not (
            isinstance(num_hard_negatives, int) and num_hard_negatives > 0
        ):
            raise ValueError(
                f"num_hard_negatives must be a positive int or None, got {num_hard_negatives!r}"
            )
        if isinstance(strategy, dict):
            strategy = tf.keras.utils.deserialize_keras_object(strategy)
        if strategy is None:
            strategy = "fixed" if temperature is not None else "adap-tau"
        self.num_users = num_users
        self.strategy = get_strategy(strategy, num_users=num_users, temperature=temperature)
        self.temperature = temperature
        self.loss_form = loss_form
        self.num_hard_negatives = num_hard_negatives
        self.remove_accidental_hits = remove_accidental_hits
        self.track_user_loss = track_user_loss
        self.factorized_metrics = metrics
        self.batch_metrics = list(batch_metrics or [])

        initial = 1.0 / self.strategy.initial_temperature()
        self.inverse_temperature = self.add_weight(
            name="inverse_temperature",
            shape=(),
            initializer=tf.keras.initializers.Constant(initial),
            trainable=False,
        )
        self.user_inverse_temperature = self.add_weight(
            name="user_inverse_temperature",
            shape=(num_users,),
            initializer=tf.keras.initializers.Constant(initial),
            trainable=False,
        )
        accumulator = {
            "shape": (num_users,),
            "initializer": "zeros",
            "trainable": False,
            "synchronization": tf.VariableSynchronization.ON_READ,
            "aggregation": tf.VariableAggregation.SUM,
        }
        self.user_loss_sum = self.add_weight(name="user_loss_sum", **accumulator)
        self.user_loss_count = self.add_weight(name="user_loss_count", **accumulator)

    @property
    def accumulates_user_loss(self) -> bool:
        """Whether training updates the per-user loss accumulators."""
        return bool(self.strategy.per_user or self.track_user_loss)

    def call(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        user_ids: tf.Tensor,
        sample_weight: tf.Tensor | None = None,
        candidate_sampling_probability: tf.Tensor | None = None,
        candidate_ids: tf.Tensor | None = None,
        negative_embeddings: tf.Tensor | None = None,
        negative_ids: tf.Tensor | None = None,
        negative_sampling_probability: tf.Tensor | None = None,
        compute_metrics: bool = True,
        compute_batch_metrics: bool = True,
        training: bool | None = None,
    ) -> tf.Tensor:
        """Computes the mean loss of a batch.

        Args:
            query_embeddings: ``[B, d]`` user (query) vectors.
            candidate_embeddings: ``[B, d]`` positive item vectors.
            user_ids: ``[B]`` int user ids (index the per-user state).
            sample_weight: optional ``[B]`` row weights (weighted mean).
            candidate_sampling_probability: optional ``[B]`` sampling
                probabilities of the in-batch candidates (logQ correction).
            candidate_ids: optional ``[B]`` ids of the positives (accidental
                hits).
            negative_embeddings: optional sampled negatives, ``[M, d]`` shared
                by every row or ``[G, M, d]`` (G draws, row ``b`` scored against
                draw ``b mod G``: see :mod:`adaptau_tf.tasks.negatives`);
                ``None`` means in-batch negatives.
            negative_ids: ``[M]`` or ``[G, M]`` ids of the sampled negatives
                (accidental hits).
            negative_sampling_probability: optional ``[M]`` or ``[G, M]``
                (logQ correction).
            compute_metrics: update ``metrics`` (FactorizedTopK).
            compute_batch_metrics: update ``batch_metrics``.
            training: accumulate per-user losses when true.

        Returns:
            Scalar loss, the mean over the global batch.
        """
        query = tf.convert_to_tensor(query_embeddings)
        positives = tf.convert_to_tensor(candidate_embeddings)
        user_ids = tf.cast(tf.reshape(user_ids, [-1]), tf.int64)
        positive_scores, negative_scores, negative_mask, log_q = self._scores(
            query,
            positives,
            candidate_sampling_probability,
            candidate_ids,
            negative_embeddings,
            negative_ids,
            negative_sampling_probability,
        )
        per_example = self._scaled_loss(
            user_ids, positive_scores, negative_scores, negative_mask, log_q
        )
        if training and self.accumulates_user_loss:
            unit = tf.stop_gradient(
                self._per_example_loss(positive_scores, negative_scores - log_q, negative_mask)
            )
            self._accumulate(user_ids, unit)

        update_ops = []
        if compute_metrics and self.factorized_metrics is not None:
            update_ops.append(
                self.factorized_metrics.update_state(
                    query, positives, true_candidate_ids=candidate_ids
                )
            )
        if compute_batch_metrics and self.batch_metrics:
            labels, scores = self._batch_scores(positive_scores, negative_scores)
            for metric in self.batch_metrics:
                update_ops.append(metric.update_state(labels, scores))
        with tf.control_dependencies([op for op in update_ops if op is not None]):
            rows = global_batch_size(tf.shape(per_example)[0])
            if sample_weight is not None:
                weight = tf.cast(tf.reshape(sample_weight, [-1]), per_example.dtype)
                return tf.nn.compute_average_loss(
                    per_example, sample_weight=weight, global_batch_size=rows
                )
            return tf.nn.compute_average_loss(per_example, global_batch_size=rows)

    def per_example_loss(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        user_ids: tf.Tensor,
        negative_embeddings: tf.Tensor | None = None,
        unit_temperature: bool = False,
    ) -> tf.Tensor:
        """``[B]`` per-row losses (at the current temperatures, or at τ = 1)."""
        user_ids = tf.cast(tf.reshape(user_ids, [-1]), tf.int64)
        pos, neg, mask, log_q = self._scores(
            tf.convert_to_tensor(query_embeddings),
            tf.convert_to_tensor(candidate_embeddings),
            None,
            None,
            negative_embeddings,
            None,
            None,
        )
        if unit_temperature:
            return self._per_example_loss(pos, neg - log_q, mask)
        return self._scaled_loss(user_ids, pos, neg, mask, log_q)

    def reset_user_loss(self) -> None:
        """Zeroes the per-user loss accumulators (called by the callback)."""
        self.user_loss_sum.assign(tf.zeros_like(self.user_loss_sum))
        self.user_loss_count.assign(tf.zeros_like(self.user_loss_count))

    def temperatures(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Current ``(τ_global scalar, τ_u [num_users])`` of the strategy."""
        return self.strategy.temperatures(
            self.inverse_temperature, self.user_inverse_temperature
        )

    def _scores(
        self,
        query: tf.Tensor,
        positives: tf.Tensor,
        candidate_sampling_probability: tf.Tensor | None,
        candidate_ids: tf.Tensor | None,
        negative_embeddings: tf.Tensor | None,
        negative_ids: tf.Tensor | None,
        negative_sampling_probability: tf.Tensor | None,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Positive scores ``[B]``, negative scores ``[B, N]``, a keep-mask
        ``[B, N]`` and the logQ correction (broadcastable to ``[B, N]``)."""
        positive_scores = tf.reduce_sum(query * positives, axis=-1)
        batch = tf.shape(query)[0]
        grouped = False
        if negative_embeddings is None:
            negative_scores = tf.matmul(query, positives, transpose_b=True)
            keep = tf.logical_not(tf.eye(batch, dtype=tf.bool))
            ids, probability = candidate_ids, candidate_sampling_probability
        else:
            negative_embeddings = tf.convert_to_tensor(negative_embeddings)
            grouped = negative_embeddings.shape.rank == 3
            negative_scores = negatives.negative_scores(query, negative_embeddings)
            keep = tf.ones_like(negative_scores, dtype=tf.bool)
            ids, probability = negative_ids, negative_sampling_probability
        if self.remove_accidental_hits:
            if candidate_ids is None or ids is None:
                raise ValueError(
                    "remove_accidental_hits=True needs candidate_ids (and negative_ids "
                    "with sampled negatives)"
                )
            hits = tf.equal(
                tf.cast(tf.reshape(candidate_ids, [-1, 1]), tf.int64),
                tf.cast(negatives.per_row(ids, batch, grouped), tf.int64),
            )
            keep = tf.logical_and(keep, tf.logical_not(hits))
        log_q = tf.zeros([], negative_scores.dtype)
        if probability is not None:
            probability = negatives.per_row(probability, batch, grouped)
            log_q = tf.math.log(tf.cast(probability, negative_scores.dtype))
        return positive_scores, negative_scores, keep, log_q

    def _scaled_loss(
        self,
        user_ids: tf.Tensor,
        positive_scores: tf.Tensor,
        negative_scores: tf.Tensor,
        keep: tf.Tensor,
        log_q: tf.Tensor,
    ) -> tf.Tensor:
        """``[B]`` losses at the strategy's current temperatures for the loss form."""
        global_scale, user_scale = self.strategy(
            user_ids, self.inverse_temperature, self.user_inverse_temperature
        )
        positive_scale = user_scale if self.loss_form == "paper" else global_scale
        return self._per_example_loss(
            positive_scores * positive_scale, negative_scores * user_scale[:, None] - log_q, keep
        )

    def _per_example_loss(
        self, positive_logits: tf.Tensor, negative_logits: tf.Tensor, keep: tf.Tensor
    ) -> tf.Tensor:
        """``[B]`` losses from scaled positive ``[B]`` and negative ``[B, N]`` logits."""
        negative_logits = tf.where(keep, negative_logits, _MASK_LOGIT)
        if self.num_hard_negatives is not None:
            k = tf.minimum(self.num_hard_negatives, tf.shape(negative_logits)[1])
            negative_logits = tf.math.top_k(negative_logits, k=k).values
        if self.loss_form == "reference":
            return tf.reduce_logsumexp(negative_logits, axis=1) - positive_logits
        # Paper form: the positive sits once in its own denominator (in-batch, the
        # diagonal is masked out of the negatives and added back here).
        all_logits = tf.concat([positive_logits[:, None], negative_logits], axis=1)
        return tf.reduce_logsumexp(all_logits, axis=1) - positive_logits

    def _accumulate(self, user_ids: tf.Tensor, losses: tf.Tensor) -> None:
        sums = tf.math.unsorted_segment_sum(losses, user_ids, self.num_users)
        counts = tf.math.unsorted_segment_sum(tf.ones_like(losses), user_ids, self.num_users)
        self.user_loss_sum.assign_add(sums)
        self.user_loss_count.assign_add(counts)

    def _batch_scores(
        self, positive_scores: tf.Tensor, negative_scores: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        scores = tf.concat([positive_scores[:, None], negative_scores], axis=1)
        labels = tf.one_hot(tf.zeros_like(positive_scores, tf.int32), tf.shape(scores)[1])
        return labels, scores

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_users=self.num_users,
            strategy=tf.keras.utils.serialize_keras_object(self.strategy),
            temperature=self.temperature,
            loss_form=self.loss_form,
            num_hard_negatives=self.num_hard_negatives,
            remove_accidental_hits=self.remove_accidental_hits,
            track_user_loss=self.track_user_loss,
        )
        return config
