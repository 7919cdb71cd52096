"""The Keras callback that refreshes τ0 and τ_u at the start of every epoch."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback
from adaptau_tf.temperature import closed_form

ESTIMATORS: tuple[str, ...] = ("mean", "mean-variance")


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AdaptiveTemperature(SerializableCallback):
    """Recomputes Adap-τ's temperatures at the start of every epoch.

    At ``on_epoch_begin`` it

    1. takes the model's current normalised representations
       (``model.compute_representations(score="cosine")``: the propagated
       ones for LightGCN, whatever the model's ranking rule) and the active
       users' training pairs, and computes
       ``μ+, μ, σ+², σ²`` (:func:`~adaptau_tf.temperature.closed_form.score_statistics`);
    2. sets τ0 by the mean or the mean-and-variance estimator (ALGORITHM.md
       §2), or by the warm-up prior ``prior_gap / log(|A| m / (2|D_A|))`` for the
       first ``warmup_epochs`` epochs. After the warm-up the data-driven value
       is taken only once it is trustworthy: while ``μ+ − μ < min_gap`` (the
       model does not yet separate its positives) the previous τ0 (the prior,
       at first) is kept, as is a non-finite or non-positive result; τ0 is
       clamped to ``tau0_range``. ``tau0_accepted`` (1/0) logs which happened;
    3. for a per-user strategy (Adap-τ), turns the previous epoch's per-user
       mean loss at τ = 1 (accumulated by the retrieval layer) into ``τ_u`` with
       the Lambert-W closed form (§3); users without rows get τ0;
    4. assigns the retrieval layer's variables and resets its accumulators.

    It writes ``tau0``, ``tau_u_min``, ``tau_u_p10``, ``tau_u_p50``,
    ``tau_u_p90``, ``tau_u_max``, ``mu_pos``, ``mu``, ``tau0_accepted`` and
    ``tau_refresh_seconds`` (the values used during the epoch) into the epoch's
    ``logs``, so they reach ``history``, ``CSVLogger`` and ``TensorBoard``:
    place this callback *before* those in the callback list.

    All its state lives in the model's weights (the τ variables and the
    accumulators), so ``BackupAndRestore`` resumes it exactly.

    Under ``tf.distribute`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``)
    the callback runs in every worker process, in cross-replica context:
    reading the ``ON_READ``/``SUM`` accumulators gives their sum over all
    replicas (with several workers, an all-reduce every worker takes part in),
    the representations are the mirrored weights, and assigning the τ
    variables writes every local replica's copy. With several workers the
    chief's τ0 and τ_u are broadcast to the others before they are assigned,
    so τ is bitwise identical on every replica even if the workers' floating
    point differs (e.g. different CPUs). Resetting the accumulators zeroes
    every replica's copy.

    Args:
        train_pairs: ``[P, 2]`` int training (user, item) pairs.
        num_users: ``n``.
        num_items: ``m``.
        estimator: ``"mean"`` (default, as the reference code) or
            ``"mean-variance"``.
        warmup_epochs: epochs that use the prior gap (the reference code's W;
            1 by default: at random initialisation μ+ ≈ μ and the closed form
            is meaningless; the published recipes use 100).
        prior_gap: the warm-up value of ``μ+ − μ`` (0.7).
        activity_quantile: users above this quantile of training counts are
            active (0.2).
        two_beta: ``2β`` of the per-user closed form (1.0).
        margin: ``m_u``: ``"mean"`` or a quantile in ``[0, 1]``.
        tau0_range: ``(low, high)`` clamp of τ0.
        min_gap: the smallest ``μ+ − μ`` at which the data-driven τ0 is taken
            (0.1: a model that scores its positives barely above a random
            pair, e.g. after one epoch at a low learning rate, would get a τ0
            of a few hundredths and collapse; 0 is the reference code's rule).
        verbose: print the temperatures at every refresh when > 0.
        **kwargs: accepted for serialisation symmetry.

    Example:
        >>> callback = AdaptiveTemperature(data.train, data.num_users, data.num_items)
        >>> model.fit(dataset, epochs=50, callbacks=[callback, csv_logger])
    """

    def __init__(
        self,
        train_pairs: np.ndarray,
        num_users: int,
        num_items: int,
        estimator: str = "mean",
        warmup_epochs: int = 1,
        prior_gap: float = 0.7,
        activity_quantile: float = 0.2,
        two_beta: float = 1.0,
        margin: str | float = "mean",
        tau0_range: tuple[float, float] = closed_form.DEFAULT_TAU0_RANGE,
        min_gap: float = 0.1,
        verbose: int = 0,
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
        pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
        if pairs.size == 0:
            raise ValueError("train_pairs is empty")
        if pairs.min() < 0 or pairs[:, 0].max() >= num_users or pairs[:, 1].max() >= num_items:
            raise ValueError(
                f"train_pairs hold ids outside [0, {num_users}) x [0, {num_items}): "
                f"max user {pairs[:, 0].max()}, max item {pairs[:, 1].max()}, min {pairs.min()}"
            )
        self.train_pairs = pairs
        self.num_users = num_users
        self.num_items = num_items
        self.estimator = estimator
        self.warmup_epochs = warmup_epochs
        self.prior_gap = float(prior_gap)
        self.activity_quantile = float(activity_quantile)
        self.two_beta = float(two_beta)
        self.margin = margin
        self.tau0_range = tuple(tau0_range)
        self.min_gap = float(min_gap)
        self.verbose = verbose
        counts = np.bincount(pairs[:, 0], minlength=num_users)
        active = closed_form.active_user_mask(counts, activity_quantile)
        keep = active[pairs[:, 0]]
        self._active_users = tf.constant(np.flatnonzero(active), tf.int64)
        self._pair_users = tf.constant(pairs[keep, 0], tf.int64)
        self._pair_items = tf.constant(pairs[keep, 1], tf.int64)
        self._epoch_logs: dict[str, float] = {}

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
        if task.num_users != self.num_users:
            raise ValueError(
                f"callback built for {self.num_users} users, task has {task.num_users}"
            )
        return task

    def refresh(self, epoch: int) -> dict[str, float]:
        """Computes and assigns τ0 and τ_u for ``epoch``; returns the log values."""
        task = self._task()
        start = time.perf_counter()
        if hasattr(self.model, "score"):  # a model with a ranking rule: the loss's vectors
            users, items = self.model.compute_representations(training=False, score="cosine")
        else:
            users, items = self.model.compute_representations(training=False)
        stats = closed_form.score_statistics(
            users, items, self._pair_users, self._pair_items, self._active_users
        )
        previous = float(1.0 / task.inverse_temperature.numpy())
        if epoch < self.warmup_epochs:
            candidate = closed_form.warmup_tau0(
                stats.num_active_users, stats.num_items, stats.num_active_pairs, self.prior_gap
            )
        elif self.estimator == "mean":
            candidate = closed_form.tau0_mean(stats)
        else:
            candidate = closed_form.tau0_mean_variance(stats)
        if epoch >= self.warmup_epochs and not stats.mu_pos - stats.mu >= self.min_gap:
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
            tau_u = np.full(self.num_users, tau0)
        tau0, accepted, tau_u = _from_chief(self.model.distribute_strategy, tau0, accepted, tau_u)
        task.inverse_temperature.assign(1.0 / tau0)
        task.user_inverse_temperature.assign((1.0 / tau_u).astype(np.float32))
        task.reset_user_loss()
        q = np.quantile(tau_u, [0.0, 0.1, 0.5, 0.9, 1.0])
        values = {
            "tau0": tau0,
            "tau_u_min": q[0],
            "tau_u_p10": q[1],
            "tau_u_p50": q[2],
            "tau_u_p90": q[3],
            "tau_u_max": q[4],
            "mu_pos": stats.mu_pos,
            "mu": stats.mu,
            "tau0_accepted": float(accepted),
            "tau_refresh_seconds": time.perf_counter() - start,
        }
        return {key: float(value) for key, value in values.items()}

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_logs = self.refresh(epoch)
        if self.verbose:
            v = self._epoch_logs
            print(
                f"epoch {epoch + 1}: tau0={v['tau0']:.4f} tau_u p10/50/90="
                f"{v['tau_u_p10']:.4f}/{v['tau_u_p50']:.4f}/{v['tau_u_p90']:.4f} "
                f"mu+={v['mu_pos']:.4f} mu={v['mu']:.4f}"
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs.update(self._epoch_logs)

    def get_config(self) -> dict[str, Any]:
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
        }


def _from_chief(
    strategy: tf.distribute.Strategy, tau0: float, accepted: bool, tau_u: np.ndarray
) -> tuple[float, bool, np.ndarray]:
    """The chief's ``(τ0, accepted, τ_u)`` on every worker of a multi-worker run.

    A SUM all-reduce in which only the chief's first replica contributes the
    values and every other replica zeros: the result is the chief's values
    exactly. Outside multi-worker training the values are returned unchanged.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return tau0, accepted, tau_u
    local_replicas = len(strategy.extended.worker_devices)
    if strategy.num_replicas_in_sync <= local_replicas:  # a single worker
        return tau0, accepted, tau_u
    packed = np.concatenate([[tau0, float(accepted)], tau_u]).astype(np.float64)
    contributes = [bool(strategy.extended.should_checkpoint)]  # the chief's first replica

    def value(context: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        first, contributes[0] = contributes[0], False
        return tf.constant(packed if first else np.zeros_like(packed))

    values = strategy.experimental_distribute_values_from_function(value)
    merged = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None).numpy()
    return float(merged[0]), bool(merged[1]), merged[2:]
