"""The Keras callback that refreshes τ0 and τ_u at the start of every epoch."""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks.chief_values import from_chief
from adaptau_tf.callbacks.refresh_inputs import (
    NORM_TOLERANCE,
    candidate_moments,
    check_unit_norms,
    log_writers_before,
)
from adaptau_tf.callbacks.serializable_callback import SerializableCallback
from adaptau_tf.temperature import closed_form
from adaptau_tf.temperature.streaming import statistics_from_sums

ESTIMATORS: tuple[str, ...] = ("mean", "mean-variance")


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdaptiveTemperature(SerializableCallback):
    """Recomputes Adap-τ's temperatures at the start of every epoch.

    At ``on_epoch_begin`` it

    1. computes τ0's score statistics ``μ+, μ, σ+², σ²`` (ALGORITHM.md §2) by
       one of two paths:

       * **table path** (``train_pairs`` given): from the model's current
         normalised representations (``model.compute_representations()``,
         ``score="cosine"`` for a model with a ranking rule: the propagated
         vectors for LightGCN) and the active users' training pairs
         (:func:`~adaptau_tf.temperature.closed_form.score_statistics`);
       * **table-free path** (``train_pairs=None``, for feature two-tower
         models that have no user table): from the sums the retrieval layer
         gathered over the previous epoch's training batches (positive scores;
         queries dotted with the candidates' mean ``ē`` and second moment
         ``C``, computed here from ``candidates`` at every epoch start;
         :mod:`adaptau_tf.temperature.streaming`), active users counted from
         the batches' user ids. Without user ids every user counts as active.
         With weights that do not move during an epoch the two paths agree
         exactly; during training these are averages over the epoch's steps.
         Epoch 1 has no batches behind it and keeps the task's initial τ;
    2. sets τ0 by the mean or the mean-and-variance estimator, or by the
       warm-up prior ``prior_gap / log(|A| m / (2|D_A|))`` for the first
       ``warmup_epochs`` epochs. After the warm-up the data-driven value is
       taken only while ``μ+ − μ >= min_gap``; otherwise, or when it is not
       finite and positive, the previous τ0 is kept; τ0 is clamped to
       ``tau0_range``. ``tau0_accepted`` (1/0) logs which happened;
    3. for a per-user strategy (Adap-τ), turns the previous epoch's per-user
       mean loss at τ = 1 (accumulated by the retrieval layer) into ``τ_u`` with
       the Lambert-W closed form (§3); users without rows get τ0;
    4. assigns the retrieval layer's variables, resets its accumulators and
       reports the refresh to it (the layer warns when it trains an epoch
       without one).

    Checks, failing early: the model's ``task`` is an ``AdaptiveRetrieval``
    with an adaptive strategy and as many users as given here; its vectors
    are unit length (the representations, the candidates, the first batch's
    queries: median ``|norm − 1| <= norm_tolerance``, else an error quoting
    the norms); ``num_items`` equals the number of candidates. A log writer
    (``CSVLogger``, ``TensorBoard``, ``CSVHistory``) placed *before* this
    callback writes each epoch's logs before τ is added to them: a warning
    says so at the start of ``fit``.

    It writes ``tau0``, ``tau_u_min``, ``tau_u_p10``, ``tau_u_p50``,
    ``tau_u_p90``, ``tau_u_max``, ``mu_pos``, ``mu`` (NaN when unknown),
    ``tau0_accepted`` and ``tau_refresh_seconds`` into the epoch's ``logs``.

    Its state lives in the model's weights (τ, accumulators; ``ē`` and ``C``
    are recomputed each epoch), so ``BackupAndRestore`` resumes it exactly.
    Under ``tf.distribute`` it runs in every worker, in cross-replica context:
    accumulators read as their sum over replicas, and with several workers the
    chief's τ0 and τ_u are broadcast before they are assigned.

    Args:
        train_pairs: ``[P, 2]`` int training (user, item) index pairs (table
            path), or ``None`` (table-free path).
        num_users: ``n`` (required with ``train_pairs``; otherwise, if given,
            checked against the task).
        num_items: ``m`` (required with ``train_pairs``; otherwise, if given,
            checked against the number of candidates).
        estimator: ``"mean"`` (default, as the reference code) or
            ``"mean-variance"``.
        warmup_epochs: epochs that use the prior gap (1 by default; the
            published recipes use 100, and so should a freshly initialised
            feature two-tower trained for a few epochs: there the data-driven
            τ0 settles far below the best fixed τ, docs/RESULTS.md).
        prior_gap: the warm-up value of ``μ+ − μ`` (0.7).
        activity_quantile: users above this quantile of training counts are
            active (0.2).
        two_beta: ``2β`` of the per-user closed form (1.0).
        margin: ``m_u``: ``"mean"`` or a quantile in ``[0, 1]``.
        tau0_range: ``(low, high)`` clamp of τ0.
        min_gap: the smallest ``μ+ − μ`` at which the data-driven τ0 is taken
            (0.1; 0 is the reference code's rule).
        verbose: print the temperatures at every refresh when > 0.
        candidates: table-free path: a batched ``tf.data.Dataset`` of
            candidate embeddings, of ``(ids, embeddings)``, or of the candidate
            tower's raw inputs (with ``candidate_model``), as
            ``tfrs.metrics.FactorizedTopK`` takes.
        candidate_model: the candidate tower, when ``candidates`` holds raw
            inputs.
        norm_tolerance: accepted median ``|norm − 1|`` of the vectors.
        **kwargs: accepted for serialisation symmetry.

    Example:
        >>> model.fit(dataset, epochs=50, callbacks=[  # table path: id-based models
        ...     AdaptiveTemperature(data.train, data.num_users, data.num_items), csv_logger])
        >>> model.fit(train, epochs=3, callbacks=[  # table-free: any two-tower tfrs.Model
        ...     AdaptiveTemperature(candidates=movies.batch(128), candidate_model=movie_model)])
    """

    def __init__(
        self,
        train_pairs: np.ndarray | None = None,
        num_users: int | None = None,
        num_items: int | None = None,
        estimator: str = "mean",
        warmup_epochs: int = 1,
        prior_gap: float = 0.7,
        activity_quantile: float = 0.2,
        two_beta: float = 1.0,
        margin: str | float = "mean",
        tau0_range: tuple[float, float] = closed_form.DEFAULT_TAU0_RANGE,
        min_gap: float = 0.1,
        verbose: int = 0,
        candidates: tf.data.Dataset | None = None,
        candidate_model: Any = None,
        norm_tolerance: float = NORM_TOLERANCE,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if not (isinstance(warmup_epochs, int) and warmup_epochs >= 0):
            raise ValueError(f"warmup_epochs must be an int >= 0, got {warmup_epochs!r}")
        if not prior_gap > 0:
            raise ValueError(f"prior_gap must be positive, got {prior_gap!r}")
        if not (math.isfinite(min_gap) and min_gap >= 0):
            raise ValueError(f"min_gap must be a finite number >= 0, got {min_gap!r}")
        if not two_beta > 0:
            raise ValueError(f"two_beta must be positive, got {two_beta!r}")
        if not norm_tolerance > 0:
            raise ValueError(f"norm_tolerance must be positive, got {norm_tolerance!r}")
        self.num_users = None if num_users is None else int(num_users)
        self.num_items = None if num_items is None else int(num_items)
        self.estimator = estimator
        self.warmup_epochs = warmup_epochs
        self.prior_gap = float(prior_gap)
        self.activity_quantile = float(activity_quantile)
        self.two_beta = float(two_beta)
        self.margin = margin
        self.tau0_range = tuple(tau0_range)
        self.min_gap = float(min_gap)
        self.verbose = verbose
        self.candidates = candidates
        self.candidate_model = candidate_model
        self.norm_tolerance = float(norm_tolerance)
        self.train_pairs = None if train_pairs is None else self._table_inputs(train_pairs)
        if train_pairs is None and candidates is None:
            raise ValueError(
                "AdaptiveTemperature needs train_pairs (with num_users and num_items, for "
                "models with compute_representations()) or candidates (a tf.data.Dataset of "
                "candidate embeddings, or of raw candidates with candidate_model=)"
            )
        self._epoch_logs: dict[str, float] = {}
        self._check_query_norms = False
        # The batch hook reads no logs: Keras need not convert them to NumPy per batch.
        self._supports_tf_logs = True

    def _table_inputs(self, train_pairs: np.ndarray) -> np.ndarray:
        """Validates the table path's inputs; precomputes the active users' pairs."""
        if self.num_users is None or self.num_items is None:
            raise ValueError(
                "train_pairs needs num_users and num_items, got "
                f"num_users={self.num_users!r}, num_items={self.num_items!r}"
            )
        pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
        if pairs.size == 0:
            raise ValueError("train_pairs is empty")
        if (pairs.min() < 0 or pairs[:, 0].max() >= self.num_users
                or pairs[:, 1].max() >= self.num_items):
            raise ValueError(
                f"train_pairs hold ids outside [0, {self.num_users}) x [0, {self.num_items}): "
                f"max user {pairs[:, 0].max()}, max item {pairs[:, 1].max()}, min {pairs.min()}"
            )
        counts = np.bincount(pairs[:, 0], minlength=self.num_users)
        active = closed_form.active_user_mask(counts, self.activity_quantile)
        keep = active[pairs[:, 0]]
        self._active_users = tf.constant(np.flatnonzero(active), tf.int64)
        self._pair_users = tf.constant(pairs[keep, 0], tf.int64)
        self._pair_items = tf.constant(pairs[keep, 1], tf.int64)
        return pairs

    @property
    def table_free(self) -> bool:
        """Whether τ0's statistics come from the batches (no ``train_pairs``)."""
        return self.train_pairs is None

    @classmethod
    def from_data(cls, data: Any, **kwargs: Any) -> AdaptiveTemperature:
        """Builds the callback from an :class:`~adaptau_tf.data.InteractionData`."""
        return cls(data.train, data.num_users, data.num_items, **kwargs)

    def _task(self) -> Any:
        task = getattr(self.model, "task", None)
        if task is None or not hasattr(task, "user_inverse_temperature"):
            raise ValueError(
                "AdaptiveTemperature needs a model whose `task` is an AdaptiveRetrieval "
                f"layer, got task={task!r}"
            )
        if not task.strategy.adaptive:
            raise ValueError(
                "AdaptiveTemperature refreshes adaptive strategies (adap-tau0, adap-tau); "
                f"the model's strategy is {task.strategy.key!r}"
            )
        if self.num_users is not None and task.num_users != self.num_users:
            raise ValueError(
                f"callback built for {self.num_users} users, task has {task.num_users}"
            )
        return task

    def _table_statistics(self) -> closed_form.ScoreStatistics:
        """Table path: the statistics of the model's current normalised representations."""
        if hasattr(self.model, "score"):  # a model with a ranking rule: the loss's vectors
            users, items = self.model.compute_representations(training=False, score="cosine")
        else:
            users, items = self.model.compute_representations(training=False)
        for name, vectors in (("user", users), ("item", items)):
            check_unit_norms(name, tf.norm(vectors, axis=-1).numpy(), self.norm_tolerance)
        return closed_form.score_statistics(
            users, items, self._pair_users, self._pair_items, self._active_users
        )

    def _candidate_moments(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Table-free path: ``(ē, C, m)`` of the current candidate vectors, checked."""
        mean, second, norms = candidate_moments(self.candidates, self.candidate_model)
        check_unit_norms("candidate", norms, self.norm_tolerance)
        if self.num_items is not None and norms.size != self.num_items:
            raise ValueError(
                f"callback built for num_items={self.num_items}, candidates hold {norms.size}"
            )
        return mean, second, int(norms.size)

    def _set_candidate_moments(self, task: Any, mean: np.ndarray, second: np.ndarray) -> None:
        """Gives the task this epoch's ``ē`` and ``C``; retraces a stale train step."""
        first = not task.score_accumulator.enabled
        with self.model.distribute_strategy.scope():
            task.score_accumulator.set_candidate_moments(mean, second)
        if first and getattr(self.model, "train_function", None) is not None:
            # A train step traced before the accumulator existed would never feed it.
            self.model.train_function = self.model.make_train_function(force=True)

    def refresh(self, epoch: int) -> dict[str, float]:
        """Computes and assigns τ0 and τ_u for ``epoch``; returns the log values."""
        task = self._task()
        start = time.perf_counter()
        if self.table_free:
            mean, second, num_candidates = self._candidate_moments()
            stats = statistics_from_sums(
                task.user_loss_count.numpy(), task.score_accumulator.user_sums.numpy(),
                task.score_accumulator.totals.numpy(), num_candidates, task.num_users,
                self.activity_quantile,
            )
        else:
            stats = self._table_statistics()
        previous = float(1.0 / task.inverse_temperature.numpy())
        if stats is None:  # table-free, no batch seen yet: keep the initial τ
            candidate = math.nan
        elif epoch < self.warmup_epochs:
            candidate = closed_form.warmup_tau0(
                stats.num_active_users, stats.num_items, stats.num_active_pairs, self.prior_gap
            )
        elif self.estimator == "mean":
            candidate = closed_form.tau0_mean(stats)
        else:
            candidate = closed_form.tau0_mean_variance(stats)
        if (stats is not None and epoch >= self.warmup_epochs
                and not stats.mu_pos - stats.mu >= self.min_gap):
            candidate = math.nan  # not trustworthy yet: clamp_tau0 keeps the previous τ0
        tau0, accepted = closed_form.clamp_tau0(candidate, previous, self.tau0_range)
        if task.strategy.per_user:
            sums = task.user_loss_sum.numpy().astype(np.float64)
            counts = task.user_loss_count.numpy().astype(np.float64)
            has_loss = counts > 0
            mean_loss = np.divide(sums, counts, out=np.zeros_like(sums), where=has_loss)
            tau_u = closed_form.user_temperatures(
                tau0, mean_loss, has_loss, margin=self.margin, two_beta=self.two_beta
            )
        else:
            tau_u = np.full(task.num_users, tau0)
        tau0, accepted, tau_u = from_chief(self.model.distribute_strategy, tau0, accepted, tau_u)
        task.inverse_temperature.assign(1.0 / tau0)
        task.user_inverse_temperature.assign((1.0 / tau_u).astype(np.float32))
        task.reset_user_loss()
        if self.table_free:
            self._set_candidate_moments(task, mean, second)
        if hasattr(task, "mark_refreshed"):
            task.mark_refreshed()
        q = np.quantile(tau_u, [0.0, 0.1, 0.5, 0.9, 1.0])
        values = {
            "tau0": tau0,
            "tau_u_min": q[0],
            "tau_u_p10": q[1],
            "tau_u_p50": q[2],
            "tau_u_p90": q[3],
            "tau_u_max": q[4],
            "mu_pos": math.nan if stats is None else stats.mu_pos,
            "mu": math.nan if stats is None else stats.mu,
            "tau0_accepted": float(accepted),
            "tau_refresh_seconds": time.perf_counter() - start,
        }
        return {key: float(value) for key, value in values.items()}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        late = log_writers_before(self)
        if late:
            warnings.warn(
                f"AdaptiveTemperature comes after {', '.join(late)} in model.fit's callbacks: "
                "they write each epoch's logs before tau0 and tau_u are added, so tau will "
                "not be logged there. Put AdaptiveTemperature first.",
                stacklevel=2,
            )
        self._check_query_norms = self.table_free

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_logs = self.refresh(epoch)
        if self.verbose:
            v = self._epoch_logs
            print(
                f"epoch {epoch + 1}: tau0={v['tau0']:.4f} tau_u p10/50/90="
                f"{v['tau_u_p10']:.4f}/{v['tau_u_p50']:.4f}/{v['tau_u_p90']:.4f} "
                f"mu+={v['mu_pos']:.4f} mu={v['mu']:.4f}"
            )

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Table-free path: after the first batch of a ``fit``, checks the query norms."""
        if not self._check_query_norms:
            return
        totals = self.model.task.score_accumulator.totals.numpy().astype(np.float64)
        if totals[0] == 0:
            return
        self._check_query_norms = False
        mean = totals[5] / totals[0]
        rms = math.sqrt(max(totals[6] / totals[0] - 2.0 * mean + 1.0, 0.0))
        if rms > self.norm_tolerance:
            raise ValueError(
                "Adap-τ scores are cosines, but the query vectors of the first batch are not "
                f"unit length: mean norm {mean:.4g}, root-mean-square distance to 1 {rms:.4g} "
                f"over {int(totals[0])} rows. End the query tower with "
                "adaptau_tf.layers.L2Normalization()."
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self._epoch_logs)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments.

        Raises:
            NotImplementedError: for the table-free path, whose ``candidates``
                dataset and ``candidate_model`` a config cannot hold.
        """
        if self.table_free:
            raise NotImplementedError(
                "a table-free AdaptiveTemperature holds a tf.data.Dataset of candidates "
                "(and a candidate model), which a config cannot hold; rebuild it in code"
            )
        return {
            "train_pairs": self.train_pairs.tolist(),
            "num_users": self.num_users,
            "num_items": self.num_items,
            "estimator": self.estimator,
            "warmup_epochs": self.warmup_epochs,
            "prior_gap": self.prior_gap,
            "activity_quantile": self.activity_quantile,
            "two_beta": self.two_beta,
            "margin": self.margin,
            "tau0_range": self.tau0_range,
            "min_gap": self.min_gap,
            "verbose": self.verbose,
            "norm_tolerance": self.norm_tolerance,
        }

