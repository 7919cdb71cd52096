"""A drop-in for ``tfrs.tasks.Retrieval`` whose temperature adapts per user."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from adaptau_tf.tasks._checks import gradient_recording, positive_int
from adaptau_tf.tasks.refresh_monitor import RefreshMonitor
from adaptau_tf.tasks.score_accumulator import ScoreAccumulator
from adaptau_tf.tasks.scores import (
    full_softmax_loss,
    full_unit_loss,
    global_batch_size,
    retrieval_scores,
    softmax_loss,
    unit_softmax_loss,
)
from adaptau_tf.temperature.factory import get_strategy
from adaptau_tf.temperature.strategy import TemperatureStrategy

__all__ = ["LOSS_FORMS", "REDUCTIONS", "AdaptiveRetrieval", "global_batch_size"]

LOSS_FORMS: tuple[str, ...] = ("paper", "reference")
REDUCTIONS: tuple[str, ...] = ("mean", "sum")


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdaptiveRetrieval(tf.keras.layers.Layer):
    """Softmax retrieval loss with a global and a per-user temperature.

    Called like ``tfrs.tasks.Retrieval`` (same arguments, same order) from a
    model's ``compute_loss``, with query and positive-candidate embeddings,
    plus optionally the batch's integer user ids. Negatives are the batch's
    other candidates (in-batch, TFRS's default; ``candidate_embeddings`` may
    hold extra rows, negatives of every row) or sampled items
    (``negative_embeddings``): one draw shared by the batch (``[M, d]``) or G
    draws (``[G, M, d]``, row ``b`` against draw ``b mod G``).

    Per-row loss for a positive score ``s+`` and negative scores ``s_j``
    (ALGORITHM.md §1), ``g`` and ``t`` the strategy's global and user inverse
    temperatures: ``loss_form="paper"`` (default; a proper softmax
    cross-entropy, equal to ``tfrs.tasks.Retrieval``'s for a fixed τ, and the
    form the derivation of ``τ_u`` assumes) ``−t·s+ + log(exp(t·s+) + Σ_j
    exp(t·s_j))``; ``"reference"`` ``−g·s+ + log Σ_j exp(t·s_j)`` (what produced
    the published numbers).

    **User ids.** With ``user_ids`` (``[B]`` ints in ``[0, num_users)``: for a
    ``StringLookup`` its output, so ``num_users`` counts the OOV row) each row
    uses its user's ``τ_u`` and training accumulates the per-user loss at τ = 1
    that Adap-τ turns into ``τ_u``. Without them every row uses the global τ0
    (Adap-τ0 behaviour, also for ``strategy="adap-tau"``) and no per-user loss
    is accumulated; ``cu-tau`` needs them.

    **Reduction.** ``"mean"`` (default): the mean of the per-row losses over
    the global batch (weighted by ``sample_weight``), independent of batch
    size and replica count (each replica returns ``Σ_local ℓ / B_global``,
    exact for uneven splits, see :func:`global_batch_size`). ``"sum"``: the
    sum ``Σ_b w_b ℓ_b``, the loss scale of ``tfrs.tasks.Retrieval`` (its
    ``CategoricalCrossentropy(from_logits=True, reduction=SUM)``): use it to
    keep an optimiser tuned on TFRS, e.g. the tutorial's Adagrad 0.1, whose
    steps under the mean would be about ``B`` times smaller.

    **Training.** ``training=True`` accumulates the statistics (per-user
    losses; batch score sums for the table-free refresh, see
    :class:`~adaptau_tf.tasks.score_accumulator.ScoreAccumulator`) and counts
    the step for :class:`~adaptau_tf.tasks.refresh_monitor.RefreshMonitor`,
    which warns when an adaptive strategy trains without
    :class:`~adaptau_tf.callbacks.AdaptiveTemperature` refreshing it.
    ``training=None`` (not passed, as in the TFRS tutorial's ``compute_loss``)
    counts as training inside a ``GradientTape`` (Keras's ``train_step``).

    State (``add_weight``, saved with the model): ``inverse_temperature``
    (``1/τ0``), ``user_inverse_temperature`` ``[num_users]`` (``1/τ_u``),
    ``user_loss_sum`` / ``user_loss_count`` ``[num_users]`` (``ON_READ``/``SUM``:
    read under ``tf.distribute`` as the sum over replicas), plus those of
    ``score_accumulator`` and ``refresh_monitor``.

    Args:
        num_users: size of the per-user state (an int, NumPy ints included).
        strategy: a :class:`~adaptau_tf.temperature.TemperatureStrategy` or its
            key (``nonorm|fixed|c-tau|cu-tau|adap-tau0|adap-tau``). Default:
            ``"fixed"`` when ``temperature`` is given, else ``"adap-tau"``.
        temperature: τ of a fixed strategy, or the initial τ of the others.
        loss_form: ``"paper"`` (default) or ``"reference"``.
        num_hard_negatives: keep only this many highest-scoring negatives per
            row (TFRS semantics); ``None`` keeps all.
        remove_accidental_hits: mask negatives whose id equals the row's
            positive id (needs ``candidate_ids``, int or string).
        track_user_loss: accumulate per-user losses for any strategy.
        metrics: a ``tfrs.metrics.FactorizedTopK`` or a sequence of them,
            updated when ``compute_metrics`` is true.
        batch_metrics: Keras metrics updated with ``(labels, scores)`` of the
            batch (column 0 the positive).
        reduction: ``"mean"`` (default) or ``"sum"``.
        **kwargs: passed to ``tf.keras.layers.Layer``.

    Example:
        >>> task = AdaptiveRetrieval(num_users=len(vocabulary) + 1, strategy="adap-tau")
        >>> loss = task(query_embeddings, candidate_embeddings,
        ...             user_ids=user_lookup(features["user_id"]), training=training)
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
        metrics: Any = None,
        batch_metrics: Sequence[tf.keras.metrics.Metric] | None = None,
        reduction: str = "mean",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        num_users = positive_int("num_users", num_users)
        if loss_form not in LOSS_FORMS:
            raise ValueError(f"loss_form must be one of {LOSS_FORMS}, got {loss_form!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if num_hard_negatives is not None:
            num_hard_negatives = positive_int("num_hard_negatives", num_hard_negatives)
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
        if metrics is None:
            metrics = []
        self.factorized_metrics = list(metrics) if isinstance(metrics, Sequence) else [metrics]
        self.batch_metrics = list(batch_metrics or [])
        self.reduction = reduction

        initial = 1.0 / self.strategy.initial_temperature()
        self.inverse_temperature = self.add_weight(
            name="inverse_temperature", shape=(), trainable=False,
            initializer=tf.keras.initializers.Constant(initial),
        )
        self.user_inverse_temperature = self.add_weight(
            name="user_inverse_temperature", shape=(num_users,), trainable=False,
            initializer=tf.keras.initializers.Constant(initial),
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
        self.score_accumulator = ScoreAccumulator(num_users, name="score_accumulator")
        self.refresh_monitor = RefreshMonitor(
            f"AdaptiveRetrieval(strategy={self.strategy.key!r})", name="refresh_monitor"
        )

    @property
    def accumulates_user_loss(self) -> bool:
        """Whether training with user ids updates the per-user loss sums."""
        return bool(self.strategy.per_user or self.track_user_loss)

    def call(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        sample_weight: tf.Tensor | None = None,
        candidate_sampling_probability: tf.Tensor | None = None,
        candidate_ids: tf.Tensor | None = None,
        compute_metrics: bool = True,
        compute_batch_metrics: bool = True,
        score_mask: tf.Tensor | None = None,
        user_ids: tf.Tensor | None = None,
        negative_embeddings: tf.Tensor | None = None,
        negative_ids: tf.Tensor | None = None,
        negative_sampling_probability: tf.Tensor | None = None,
        training: bool | None = None,
    ) -> tf.Tensor:
        """Computes the batch's loss (``tfrs.tasks.Retrieval.call``'s arguments first).

        Args:
            query_embeddings: ``[B, d]`` query vectors.
            candidate_embeddings: ``[C, d]`` candidate vectors; row ``b < B`` is
                row ``b``'s positive, in-batch the extra ``C - B`` rows are
                negatives of every row (``C = B`` with sampled negatives).
            sample_weight: ``[B]`` row weights.
            candidate_sampling_probability: ``[C]`` sampling probabilities of
                the in-batch candidates: each in-batch negative's logit loses
                ``log p`` (logQ correction; the row's own positive is kept as
                is, unlike TFRS which corrects it too).
            candidate_ids: ``[C]`` int or string ids (accidental hits; ids of
                the positives for ``metrics``).
            compute_metrics: update ``metrics``.
            compute_batch_metrics: update ``batch_metrics``.
            score_mask: ``[B, N]`` bool; ``False`` drops that negative.
            user_ids: ``[B]`` int user indices in ``[0, num_users)``, or None
                (every row at τ0, see the class doc).
            negative_embeddings: sampled negatives ``[M, d]`` or ``[G, M, d]``.
            negative_ids: ``[M]`` or ``[G, M]`` their ids.
            negative_sampling_probability: ``[M]`` or ``[G, M]`` (logQ).
            training: accumulate statistics when true (None: see the class doc).

        Returns:
            Scalar loss: the mean (``reduction="mean"``) or sum over the batch.
        """
        query = tf.convert_to_tensor(query_embeddings)
        candidates = tf.convert_to_tensor(candidate_embeddings)
        if query.shape.rank != 2:
            raise ValueError(
                f"query_embeddings must be [B, d] (multi-head queries are not supported), "
                f"got shape {query.shape}"
            )
        user_ids = self._user_ids(user_ids)
        if training is None:
            training = gradient_recording()
        batch_metrics = compute_batch_metrics and bool(self.batch_metrics)
        plain = (negative_embeddings is None and candidate_sampling_probability is None
                 and score_mask is None and not batch_metrics)
        if plain and self._whole_row_softmax:
            # Plain in-batch paper form: row b's softmax runs over the whole score
            # row, its positive (the diagonal) once in the denominator, as in
            # tfrs.tasks.Retrieval: no mask, no copy (the general path's values).
            _, user_scale = self._scales(user_ids, tf.shape(query)[0])
            per_example, logits, positive_scores = full_softmax_loss(
                query, candidates, user_scale)
            if training:
                self._accumulate(query, user_ids, positive_scores, lambda: full_unit_loss(
                    tf.stop_gradient(logits), tf.stop_gradient(user_scale),
                    tf.stop_gradient(positive_scores), small=self.strategy.normalize))
        else:
            positive_scores, negative_scores, keep, log_q = retrieval_scores(
                query, candidates, candidate_sampling_probability, candidate_ids,
                negative_embeddings, negative_ids, negative_sampling_probability,
                self.remove_accidental_hits, score_mask,
            )
            per_example = self._scaled_loss(user_ids, positive_scores, negative_scores, keep,
                                            log_q)
            if training:
                self._accumulate(query, user_ids, positive_scores, lambda: self._unit_loss(
                    positive_scores, negative_scores - log_q, keep))

        weight = None
        if sample_weight is not None:
            weight = tf.cast(tf.reshape(sample_weight, [-1]), per_example.dtype)
        update_ops = []
        if compute_metrics:
            positives = candidates[:tf.shape(query)[0]]
            true_ids = None if candidate_ids is None else tf.reshape(candidate_ids, [-1])[
                :tf.shape(query)[0]]
            for metric in self.factorized_metrics:
                update_ops.append(metric.update_state(
                    query, positives, true_candidate_ids=true_ids, sample_weight=weight))
        if batch_metrics:
            scores = tf.concat([positive_scores[:, None], negative_scores], axis=1)
            labels = tf.one_hot(tf.zeros_like(positive_scores, tf.int32), tf.shape(scores)[1])
            for metric in self.batch_metrics:
                update_ops.append(metric.update_state(labels, scores, sample_weight=weight))
        with tf.control_dependencies([op for op in update_ops if op is not None]):
            if self.reduction == "sum":
                return tf.reduce_sum(per_example if weight is None else weight * per_example)
            rows = global_batch_size(tf.shape(per_example)[0])
            return tf.nn.compute_average_loss(
                per_example, sample_weight=weight, global_batch_size=rows
            )

    def per_example_loss(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        user_ids: tf.Tensor | None = None,
        negative_embeddings: tf.Tensor | None = None,
        unit_temperature: bool = False,
    ) -> tf.Tensor:
        """``[B]`` per-row losses (at the current temperatures, or at τ = 1)."""
        user_ids = self._user_ids(user_ids)
        pos, neg, keep, log_q = retrieval_scores(
            tf.convert_to_tensor(query_embeddings), tf.convert_to_tensor(candidate_embeddings),
            negative_embeddings=negative_embeddings,
        )
        if unit_temperature:
            return self._softmax_loss(pos, neg - log_q, keep)
        return self._scaled_loss(user_ids, pos, neg, keep, log_q)

    def reset_user_loss(self) -> None:
        """Zeroes the per-epoch accumulators: per-user losses and score sums."""
        self.user_loss_sum.assign(tf.zeros_like(self.user_loss_sum))
        self.user_loss_count.assign(tf.zeros_like(self.user_loss_count))
        self.score_accumulator.reset()

    def mark_refreshed(self) -> None:
        """Tells the refresh monitor that the temperatures were just refreshed."""
        self.refresh_monitor.mark_refreshed()

    def temperatures(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Current ``(τ_global scalar, τ_u [num_users])`` of the strategy."""
        return self.strategy.temperatures(
            self.inverse_temperature, self.user_inverse_temperature
        )

    def _user_ids(self, user_ids: tf.Tensor | None) -> tf.Tensor | None:
        """``[B]`` int64 ids checked against ``[0, num_users)``, or None."""
        if user_ids is None:
            if getattr(self.strategy, "needs_user_ids", False):
                raise ValueError(
                    f"strategy {self.strategy.key!r} learns one temperature per user and "
                    "needs user_ids"
                )
            return None
        user_ids = tf.convert_to_tensor(user_ids)
        if not user_ids.dtype.is_integer:
            raise ValueError(
                f"user_ids must be integer indices in [0, {self.num_users}) (e.g. a "
                f"StringLookup's output), got dtype {user_ids.dtype.name}"
            )
        user_ids = tf.cast(tf.reshape(user_ids, [-1]), tf.int64)
        message = (
            f"user_ids must lie in [0, num_users={self.num_users}); a StringLookup's "
            "indices need num_users = vocabulary size + 1 (its OOV row)"
        )
        with tf.control_dependencies([
            tf.debugging.assert_non_negative(user_ids, message=message),
            tf.debugging.assert_less(user_ids, tf.constant(self.num_users, tf.int64),
                                     message=message),
        ]):
            return tf.identity(user_ids)

    @property
    def _whole_row_softmax(self) -> bool:
        """Whether plain in-batch rows may use the unmasked whole-row softmax."""
        return (self.loss_form == "paper" and self.num_hard_negatives is None
                and not self.remove_accidental_hits)

    def _scales(self, user_ids: tf.Tensor | None,
                rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(positive [B], negative [B])`` inverse temperatures of the ``rows = B`` rows."""
        ids = user_ids if user_ids is not None else tf.zeros([rows], tf.int64)
        global_scale, user_scale = self.strategy(
            ids, self.inverse_temperature, self.user_inverse_temperature
        )
        if user_ids is None:
            user_scale = global_scale  # every row at τ0 (Adap-τ0)
        return (user_scale if self.loss_form == "paper" else global_scale), user_scale

    def _scaled_loss(self, user_ids: tf.Tensor | None, positive_scores: tf.Tensor,
                     negative_scores: tf.Tensor, keep: tf.Tensor, log_q: tf.Tensor) -> tf.Tensor:
        """``[B]`` losses at the strategy's current temperatures for the loss form."""
        positive_scale, user_scale = self._scales(user_ids, tf.shape(positive_scores)[0])
        return self._softmax_loss(
            positive_scores * positive_scale, negative_scores * user_scale[:, None] - log_q, keep
        )

    def _unit_loss(self, positive_scores: tf.Tensor, negative_logits: tf.Tensor,
                   keep: tf.Tensor) -> tf.Tensor:
        """``[B]`` losses at τ = 1 (the per-user statistic of Adap-τ)."""
        if self.strategy.normalize and self.num_hard_negatives is None:  # cosines
            return unit_softmax_loss(positive_scores, negative_logits, keep, self.loss_form)
        return self._softmax_loss(positive_scores, negative_logits, keep)

    def _softmax_loss(self, positive_logits: tf.Tensor, negative_logits: tf.Tensor,
                      keep: tf.Tensor) -> tf.Tensor:
        return softmax_loss(positive_logits, negative_logits, keep, self.loss_form,
                            self.num_hard_negatives)

    def _accumulate(self, query: tf.Tensor, user_ids: tf.Tensor | None,
                    positive_scores: tf.Tensor, unit_loss: Callable[[], tf.Tensor]) -> None:
        """Training-time statistics of a batch (``unit_loss()``: ``[B]`` losses at τ = 1)."""
        if self.strategy.adaptive:
            self.refresh_monitor.count_step()
        positive_scores = tf.stop_gradient(positive_scores)
        if self.score_accumulator.enabled:
            self.score_accumulator.update(tf.stop_gradient(query), positive_scores, user_ids)
        if user_ids is None:
            return
        if self.accumulates_user_loss:
            unit = tf.stop_gradient(unit_loss())
            self.user_loss_sum.assign_add(
                tf.math.unsorted_segment_sum(unit, user_ids, self.num_users))
        if self.accumulates_user_loss or self.score_accumulator.enabled:
            self.user_loss_count.assign_add(tf.math.unsorted_segment_sum(
                tf.ones_like(positive_scores), user_ids, self.num_users))

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
            reduction=self.reduction,
        )
        return config
