"""Base class of the id-based retrieval models (MF, LightGCN)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from adaptau_tf.layers.embedding_l2 import EmbeddingL2
from adaptau_tf.layers.l2_normalization import L2Normalization
from adaptau_tf.layers.uniform_negatives import UniformNegatives
from adaptau_tf.tasks.adaptive_retrieval import AdaptiveRetrieval, global_batch_size

# How a trained model ranks items: see RetrievalModel's ``score`` argument.
SCORES: tuple[str, ...] = ("cosine", "dot")
# How a step handles the sampled negatives' item rows: see ``item_path``.
ITEM_PATHS: tuple[str, ...] = ("auto", "table", "gathered")


class RetrievalModel(tfrs.Model):
    """A ``tfrs.Model`` over user/item id embeddings with L2-normalised towers.

    Subclasses define :meth:`propagate` (the backbone: identity for MF, graph
    propagation for LightGCN). Each tower is *backbone → (user only) message
    dropout → L2 normalisation*; the normalisation is skipped when the task's
    strategy is No Norm.

    Negatives: ``num_negatives=M`` draws M items uniformly per step
    (:meth:`sample_negatives`); ``None`` uses in-batch negatives. With
    ``negative_groups=1`` one draw is shared by the whole batch (one
    ``[B, d] x [d, M]`` matmul); with ``negative_groups=G`` there are G
    independent draws and row ``b`` is scored against draw ``b mod G`` (the
    same multiply-adds as a batched matmul; ``G = B`` is the reference code's
    per-row draw). G matters under Adam: with one draw only M items get a
    gradient per step, each a large one from the whole batch; with G·M ≳ m
    nearly every item gets a small one every step (docs/RESULTS.md, Gowalla MF).

    L2 regularisation on the batch's raw (layer-0) embeddings,
    ``λ/2 · (Σ_b ‖e_u‖² + Σ_b ‖e_i+‖²) / B  +  λ/2 · Σ_{g,j} ‖e_gj‖² / G``: the
    reference code's ``λ (‖e_u‖² + ‖e_i+‖² + ‖e_N‖²) / 2 / B`` with per-row
    negatives has the same expectation (and is this for ``G = B``).

    Training inputs: ``(user_ids [B], item_ids [B])`` or a mapping with keys
    ``user_id`` and ``item_id``.

    Logs: ``loss``, ``regularization_loss`` and ``total_loss`` are means over
    the rows of the epoch (of the evaluated batches in ``evaluate``), exact
    under ``tf.distribute``; ``tfrs.Model`` logs the last batch's values.

    Args:
        num_users: ``n``.
        num_items: ``m``.
        task: the loss layer.
        embedding_dim: ``d`` (64).
        num_negatives: sampled negatives per row, or ``None`` for in-batch.
        negative_groups: independent draws of ``num_negatives`` per step
            (1: one draw shared by the batch).
        l2: λ.
        message_dropout: dropout rate on the user vector during training; the
            mask is a stateless function of ``(seed, optimizer step)``, so a
            resumed run drops what the uninterrupted one dropped.
        seed: seed of the Xavier-uniform initialisers.
        sampling_correction: logQ correction of in-batch negatives (TFRS's
            ``candidate_sampling_probability``): each in-batch negative's logit
            loses the log of its probability of being a batch positive (the
            row's own positive is left as is), held in the
            non-trainable ``item_sampling_probability`` ``[m]`` (uniform until
            :meth:`set_item_sampling_probability`). In-batch negatives only.
        item_path: how a step with sampled negatives handles their rows (the
            same loss and gradient either way, up to float rounding):
            ``"table"`` normalises the ``[m, d]`` item table once, gathers from
            it and weights the L2 term by draw counts (a dense item gradient);
            ``"gathered"`` gathers, normalises and squares the ``G·M`` drawn
            rows; ``"auto"`` takes the one ``benchmarks/step_time.py`` measured
            faster (see :attr:`dense_item_gradient`).
        score: the ranking rule of :meth:`compute_representations` (evaluation,
            export, serving): ``"cosine"`` ranks the towers' normalised vectors
            (the vectors the loss sees); ``"dot"`` ranks the inner product of
            the backbone's raw, unnormalised output (for LightGCN the mean-pooled
            vectors), as the reference code ranks LightGCN. Training is the same
            under both. With No Norm nothing is normalised and both rules are the
            raw inner product.
        **kwargs: passed to ``tfrs.Model``.
    """

    # Whether the train step compiles with XLA (``compile(jit_compile=True)``).
    supports_jit: bool = True

    def __init__(
        self,
        num_users: int,
        num_items: int,
        task: AdaptiveRetrieval,
        embedding_dim: int = 64,
        num_negatives: int | None = 1024,
        negative_groups: int = 1,
        l2: float = 0.0,
        message_dropout: float = 0.0,
        seed: int | None = None,
        sampling_correction: bool = False,
        score: str = "cosine",
        item_path: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if item_path not in ITEM_PATHS:
            raise ValueError(f"item_path must be one of {ITEM_PATHS}, got {item_path!r}")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        for name, value in (("num_users", num_users), ("num_items", num_items),
                            ("embedding_dim", embedding_dim)):
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if num_negatives is not None and not (isinstance(num_negatives, int) and num_negatives > 0):
            raise ValueError(f"num_negatives must be a positive int or None, got {num_negatives!r}")
        if not (isinstance(negative_groups, int) and negative_groups > 0):
            raise ValueError(f"negative_groups must be a positive int, got {negative_groups!r}")
        if negative_groups > 1 and num_negatives is None:
            raise ValueError(
                f"negative_groups={negative_groups} needs sampled negatives "
                "(num_negatives), got in-batch ones (num_negatives=None)"
            )
        if sampling_correction and num_negatives is not None:
            raise ValueError(
                "sampling_correction=True corrects in-batch negatives (num_negatives=None), "
                f"got num_negatives={num_negatives!r}"
            )
        if not 0.0 <= message_dropout < 1.0:
            raise ValueError(f"message_dropout must be in [0, 1), got {message_dropout!r}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2!r}")
        if not isinstance(task, AdaptiveRetrieval):
            raise TypeError(f"task must be an AdaptiveRetrieval layer, got {type(task).__name__}")
        if task.num_users != num_users:
            raise ValueError(
                f"task.num_users={task.num_users} does not match num_users={num_users}"
            )
        self.num_users = num_users
        self.num_items = num_items
        self.task = task
        self.embedding_dim = embedding_dim
        self.num_negatives = num_negatives
        self.negative_groups = negative_groups
        self.l2 = float(l2)
        self.message_dropout = float(message_dropout)
        self.seed = seed
        self.sampling_correction = bool(sampling_correction)
        self.score = score
        self.item_path = item_path
        self.user_embedding = tf.keras.layers.Embedding(
            num_users, embedding_dim,
            embeddings_initializer=tf.keras.initializers.GlorotUniform(seed=seed),
            name="user_embedding",
        )
        self.item_embedding = tf.keras.layers.Embedding(
            num_items, embedding_dim,
            embeddings_initializer=tf.keras.initializers.GlorotUniform(
                seed=None if seed is None else seed + 1
            ),
            name="item_embedding",
        )
        self.user_embedding.build((None,))
        self.item_embedding.build((None,))
        if self.sampling_correction:
            self.item_sampling_probability = self.add_weight(
                name="item_sampling_probability", shape=(num_items,), trainable=False,
                initializer=tf.keras.initializers.Constant(1.0 / num_items),
            )
        self.normalization = L2Normalization(name="l2_normalization")
        self.negative_sampler = None if num_negatives is None else UniformNegatives(
            num_items, num_negatives, negative_groups, seed=seed, name="negative_sampler")
        self.regularization = EmbeddingL2(l2, name="embedding_l2")
        # Epoch means of the logged losses (tfrs.Model logs the last batch's values):
        # Keras tracks metrics set as attributes and resets them every epoch.
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.regularization_loss_tracker = tf.keras.metrics.Mean(name="regularization_loss")
        self.total_loss_tracker = tf.keras.metrics.Mean(name="total_loss")
        # Every weight exists now (embeddings above, the task's state in its
        # constructor): the model can be saved or restored before any call.
        self.built = True

    def set_item_sampling_probability(self, counts: Any) -> None:
        """Sets ``item_sampling_probability`` to ``counts / sum(counts)``.

        Args:
            counts: ``[m]`` non-negative training pairs per item.

        Raises:
            ValueError: without ``sampling_correction``, or bad counts (quoted).
        """
        if not self.sampling_correction:
            raise ValueError("set_item_sampling_probability needs sampling_correction=True")
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (self.num_items,) or (counts < 0).any() or counts.sum() <= 0:
            raise ValueError(
                f"counts must be [{self.num_items}] non-negative with a positive sum, got "
                f"shape {counts.shape}, min {counts.min() if counts.size else None}, "
                f"sum {counts.sum()}"
            )
        self.item_sampling_probability.assign(counts / counts.sum())

    @property
    def normalize(self) -> bool:
        """Whether the towers L2-normalise (False only for No Norm)."""
        return bool(self.task.strategy.normalize)

    def propagate(self, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        """The backbone: ``([n, d], [m, d])`` raw (unnormalised) representations."""
        raise NotImplementedError

    def _head(self, vectors: tf.Tensor) -> tf.Tensor:
        return self.normalization(vectors) if self.normalize else vectors

    def compute_representations(
        self, training: bool = False, score: str | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """All users' and items' vectors to rank with, under a scoring rule.

        Args:
            training: passed to the backbone.
            score: ``"cosine"`` (the normalised vectors the loss sees; raw ones
                for No Norm), ``"dot"`` (the backbone's raw output) or ``None``
                for the model's own ``score``.

        Returns:
            ``(users [n, d], items [m, d])`` float32 tensors whose inner
            products are the ranking scores.

        Example:
            >>> users, items = model.compute_representations()  # model.score
            >>> users, items = model.compute_representations(score="cosine")
        """
        rule = self.score if score is None else score
        if rule not in SCORES:
            raise ValueError(f"score must be one of {SCORES} or None, got {score!r}")
        users, items = self.propagate(training=training)
        if rule == "dot":
            return users, items
        return self._head(users), self._head(items)

    def train_step(self, inputs: Any) -> dict[str, tf.Tensor]:
        """``tfrs.Model.train_step``, logging epoch means of the three losses."""
        return self._mean_losses(inputs, super().train_step(inputs))

    def test_step(self, inputs: Any) -> dict[str, tf.Tensor]:
        """``tfrs.Model.test_step``, logging means over the evaluated batches."""
        return self._mean_losses(inputs, super().test_step(inputs))

    def _mean_losses(self, inputs: Any, logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Replaces the batch's ``loss``, ``regularization_loss`` and ``total_loss``
        in ``logs`` by their means over every row seen since the metrics' reset.

        A replica's loss is its rows' share of the global batch's mean (the sum
        of its rows' losses over the global rows): times the global rows over
        its own it is its rows' mean, which the tracker weighs by its rows, so
        the means summed over replicas are exact for any split of a batch.
        """
        rows = tf.shape(_unpack(inputs)[0])[0]
        weight = tf.cast(rows, tf.float32)
        scale = tf.cast(global_batch_size(rows), tf.float32) / tf.maximum(weight, 1.0)
        means = {}
        for tracker in (self.loss_tracker, self.regularization_loss_tracker,
                        self.total_loss_tracker):
            value = tf.cast(logs[tracker.name], tf.float32) * scale
            tracker.update_state(value, sample_weight=weight)
            means[tracker.name] = tracker.result()
        return {**logs, **means}

    def compute_loss(self, inputs: Any, training: bool = False) -> tf.Tensor:
        """Mean softmax loss of a batch plus the L2 term (see class docstring)."""
        user_ids, item_ids = _unpack(inputs)
        users, items = self.propagate(training=training)
        query = self._head(self._dropout(tf.gather(users, user_ids), training))
        item_head = self._head
        if self.dense_item_gradient:
            # Normalise the [m, d] table once and gather from it: the same vectors
            # as normalising the G·M >= m gathered rows, at a fraction of the
            # cost, and the table's gradient arrives dense instead of as
            # IndexedSlices of G·M rows that Adam would have to deduplicate.
            items, item_head = self._head(items), tf.identity
        positives = item_head(tf.gather(items, item_ids))
        negative_ids = negatives = None
        if self.num_negatives is not None:
            negative_ids = self.sample_negatives()
            negatives = item_head(tf.gather(items, negative_ids))
        probability = None
        if self.sampling_correction:
            probability = tf.gather(self.item_sampling_probability, item_ids)
        loss = self.task(
            query,
            positives,
            user_ids=user_ids,
            candidate_sampling_probability=probability,
            candidate_ids=item_ids,
            negative_embeddings=negatives,
            negative_ids=negative_ids,
            compute_metrics=not training,
            training=training,
        )
        if self.l2 > 0:
            loss += self.regularization(
                self.user_embedding.embeddings, self.item_embedding.embeddings, user_ids,
                item_ids, negative_ids, dense=self.dense_item_gradient)
        return loss

    def _step(self) -> tf.Tensor:
        """The optimizer's step (0 before compiling): the key of every random draw."""
        if getattr(self, "optimizer", None) is not None:
            return tf.cast(self.optimizer.iterations, tf.int64)
        return tf.constant(0, tf.int64)

    def _dropout(self, vectors: tf.Tensor, training: bool) -> tf.Tensor:
        """Message dropout on ``[B, d]`` user vectors, keyed on ``(seed, step)``."""
        if not training or self.message_dropout == 0.0:
            return vectors
        seed = tf.stack([tf.constant((self.seed or 0) + 2, tf.int64), self._step()])
        return tf.nn.experimental.stateless_dropout(vectors, self.message_dropout, seed=seed)

    @property
    def dense_item_gradient(self) -> bool:
        """Whether a step takes the table path (``item_path``).

        On it :meth:`compute_loss` normalises the whole item table once and the
        L2 term counts each item's draws, instead of normalising and squaring
        the ``G·M`` gathered rows: the same loss and gradient, and the item
        table's gradient is one dense ``[m, d]`` tensor. ``"auto"`` takes it
        when a step's draws reach a quarter of the catalogue (``4·G·M >= m``):
        ``benchmarks/results/step_time.md`` measured it faster there (with XLA,
        which ``--jit-compile auto`` then turns on) on ML-1M and Gowalla, and
        the gathered path faster for one shared draw of 1024 on Gowalla.
        In-batch negatives have no drawn rows (``False``).
        """
        if self.num_negatives is None or self.item_path == "gathered":
            return False
        if self.item_path == "table":
            return True
        return 4 * self.num_negatives * self.negative_groups >= self.num_items

    def sample_negatives(self) -> tf.Tensor:
        """This step's negatives from :class:`~adaptau_tf.layers.UniformNegatives`:
        ``[M]`` or ``[G, M]`` item ids keyed on ``(seed, optimizer step)``.

        Every replica of a ``tf.distribute`` run draws the same negatives for the
        same step, so a distributed step computes exactly the loss of one
        single-device step over the global batch (with G draws: when each
        replica's rows are a multiple of G, as row ``b`` uses draw ``b mod G``).
        """
        if self.negative_sampler is None:
            raise ValueError("sample_negatives needs sampled negatives (num_negatives)")
        return self.negative_sampler(self._step())

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RetrievalModel:
        """Rebuilds the model (task included) from :meth:`get_config`."""
        config = dict(config)
        task = config.pop("task")
        if isinstance(task, dict):
            task = tf.keras.utils.deserialize_keras_object(task)
        return cls(task=task, **config)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (``tfrs.Model`` has no config of its own)."""
        return {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "task": tf.keras.utils.serialize_keras_object(self.task),
            "embedding_dim": self.embedding_dim,
            "num_negatives": self.num_negatives,
            "negative_groups": self.negative_groups,
            "l2": self.l2,
            "message_dropout": self.message_dropout,
            "seed": self.seed,
            "sampling_correction": self.sampling_correction,
            "score": self.score,
            "item_path": self.item_path,
        }


def _unpack(inputs: Any) -> tuple[tf.Tensor, tf.Tensor]:
    if isinstance(inputs, Mapping):
        if "user_id" not in inputs or "item_id" not in inputs:
            raise ValueError(
                f"inputs mapping needs keys 'user_id' and 'item_id', got {sorted(inputs)}"
            )
        user_ids, item_ids = inputs["user_id"], inputs["item_id"]
    elif isinstance(inputs, (tuple, list)) and len(inputs) >= 2:
        user_ids, item_ids = inputs[0], inputs[1]
    else:
        raise ValueError(
            f"inputs must be (user_ids, item_ids) or a mapping, got {type(inputs).__name__}"
        )
    return (
        tf.cast(tf.reshape(user_ids, [-1]), tf.int64),
        tf.cast(tf.reshape(item_ids, [-1]), tf.int64),
    )
