"""TensorBoard summaries of what Adap-τ does: τ, μ, τ_u and popularity groups."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks.popularity_tracker import PopularityGroupTracker
from adaptau_tf.callbacks.serializable_callback import SerializableCallback

#: Scalar tags read from the epoch's ``logs`` (written by ``AdaptiveTemperature``).
LOG_SCALARS: dict[str, str] = {"tau0": "temperature/tau0", "mu_pos": "temperature/mu_pos",
                               "mu": "temperature/mu"}


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class AnalysisTensorBoard(SerializableCallback):
    """Writes Adap-τ's per-epoch picture to TensorBoard (``tf.summary``).

    Per epoch (step = epoch number counted from 1), into ``log_dir``:

    * ``temperature/tau0``, ``temperature/mu_pos``, ``temperature/mu``:
      scalars from the epoch's ``logs`` (written by
      :class:`~adaptau_tf.callbacks.AdaptiveTemperature`: place this callback
      after it). For strategies without that callback (fixed, C-τ, Cu-τ, No
      Norm) ``temperature/tau0`` is the task's current global τ and μ+/μ are
      not written;
    * ``temperature/tau_u``: histogram of the per-user τ_u
      (``model.task.temperatures()[1]``), plus ``temperature/tau_u_median``;
    * ``magnitude/group_GG``: mean raw (un-normalised) item-vector norm of
      popularity group ``GG`` (00 = least popular; MF: the layer-0 embeddings,
      LightGCN: the propagated vectors), from a
      :class:`~adaptau_tf.callbacks.PopularityGroupTracker`;
    * ``val_recall@K_by_group/group_GG`` and ``val_ndcg@K_by_group/group_GG``
      when the tracker has an evaluator (decomposed metrics that sum to the
      overall value).

    The popularity groups come from ``tracker`` if given (it must be placed
    before this callback so that its values are fresh), otherwise from an
    internal tracker built from ``item_counts`` (and ``evaluator``); without
    either, only the temperature summaries are written.

    Args:
        log_dir: TensorBoard directory (a ``tf.summary`` file writer's).
        item_counts: ``[m]`` training counts for an internal tracker.
        evaluator: optional validation evaluator for the internal tracker.
        tracker: an existing tracker to read from (wins over ``item_counts``).
        num_groups: groups of the internal tracker (10).
        scheme: grouping scheme of the internal tracker ("interactions").
        k: metric cut-off of the internal tracker (20).
        **kwargs: accepted for serialisation symmetry.

    Example:
        >>> tracker = PopularityGroupTracker.from_data(data, evaluator=valid_eval)
        >>> callbacks = [AdaptiveTemperature.from_data(data), tracker,
        ...              AnalysisTensorBoard("logs/run1", tracker=tracker)]
        >>> model.fit(dataset, epochs=20, callbacks=callbacks)
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        item_counts: np.ndarray | None = None,
        evaluator: Any = None,
        tracker: PopularityGroupTracker | None = None,
        num_groups: int = 10,
        scheme: str = "interactions",
        k: int = 20,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.log_dir = str(log_dir)
        self.num_groups = int(num_groups)
        self.scheme = scheme
        self.k = int(k)
        self._own_tracker = tracker is None and item_counts is not None
        if self._own_tracker:
            tracker = PopularityGroupTracker(item_counts, num_groups, scheme, evaluator, k)
        self.tracker = tracker
        self._writer: tf.summary.SummaryWriter | None = None

    def set_model(self, model: tf.keras.Model) -> None:
        super().set_model(model)
        if self._own_tracker:
            self.tracker.set_model(model)

    def _file_writer(self) -> tf.summary.SummaryWriter:
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        step = epoch + 1
        task = getattr(self.model, "task", None)
        tau_u = None
        scalars: dict[str, float] = {}
        if task is not None and hasattr(task, "temperatures"):
            tau_global, tau_users = task.temperatures()
            tau_u = np.asarray(tau_users, np.float64)
            scalars["temperature/tau0"] = float(tau_global)
            scalars["temperature/tau_u_median"] = float(np.median(tau_u))
        for key, tag in LOG_SCALARS.items():
            if key in logs:
                scalars[tag] = float(logs[key])
        groups: dict[str, np.ndarray] = {}
        if self.tracker is not None:
            if self._own_tracker:
                self.tracker.on_epoch_end(epoch, logs)
            if self.tracker.latest_epoch == epoch:
                groups = self.tracker.latest
        with self._file_writer().as_default(step=step):
            for tag, value in scalars.items():
                if np.isfinite(value):
                    tf.summary.scalar(tag, value)
            if tau_u is not None and np.all(np.isfinite(tau_u)):
                tf.summary.histogram("temperature/tau_u", tau_u)
            for key, prefix in (("magnitude", "magnitude"),
                                ("recall", f"val_recall@{self.tracker_k}_by_group"),
                                ("ndcg", f"val_ndcg@{self.tracker_k}_by_group")):
                for g, value in enumerate(groups.get(key, ())):
                    if np.isfinite(value):
                        tf.summary.scalar(f"{prefix}/group_{g:02d}", float(value))
        self._file_writer().flush()

    @property
    def tracker_k(self) -> int:
        """The cut-off of the per-group metrics."""
        return self.tracker.k if self.tracker is not None else self.k

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self) -> dict[str, Any]:
        return {"log_dir": self.log_dir, "num_groups": self.num_groups,
                "scheme": self.scheme, "k": self.k}
