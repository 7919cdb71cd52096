"""Keras callback: periodic all-ranking evaluation, early stopping, best weights."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback
from adaptau_tf.evaluation.evaluator import RankingEvaluator

_STATE_FILE = "ranking_evaluation_state.json"
_WEIGHTS_FILE = "ranking_evaluation_best_weights.npz"


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class RankingEvaluation(SerializableCallback):
    """Evaluates ranking metrics every N epochs, with early stopping.

    At the end of every ``every_n_epochs``-th epoch (epochs ``N-1, 2N-1, ...``
    counted from 0) it calls ``self.model.compute_representations(
    training=False)`` -> ``(user_embeddings [n, d], item_embeddings [m, d])``,
    runs ``evaluator.evaluate`` and writes every metric into the epoch ``logs``
    as ``f"{prefix}{name}"`` (e.g. ``val_recall@20``) plus the evaluation time
    as ``f"{prefix}eval_seconds"``. Keys written into ``logs`` reach
    ``History`` and every callback that runs *after* this one, so place it
    **before** ``CSVLogger`` / ``TensorBoard`` in the callbacks list. With
    ``every_n_epochs > 1`` the first epoch carries no such keys and
    ``CSVLogger`` (which fixes its columns at the first epoch) drops them;
    :class:`~adaptau_tf.callbacks.CSVHistory` keeps them.

    The monitored metric (higher is better) is tracked with its epoch and,
    if ``restore_best_weights``, a copy of the model's weights (metric
    accumulators left out: they are logging state, not the model) at the
    best value. After ``patience``
    evaluations without a strict improvement training stops; at the end of
    training the best weights are put back if ``restore_best_weights``.
    Optimizer state is not restored.

    Scoring rules: the plain keys rank with the model's own rule
    (``compute_representations(training=False)``), which drives early
    stopping. ``scores`` names rules to evaluate as well at every evaluation,
    each logged under ``f"{prefix}{rule}_{name}"`` (e.g. ``val_dot_recall@20``)
    through ``compute_representations(training=False, score=rule)``: one
    training run gives the curve of every rule (the model's own rule included,
    read from ``model.score``, without a second evaluation).

    Resuming with ``tf.keras.callbacks.BackupAndRestore``: state is reset at
    ``on_train_begin``. Without ``backup_dir`` a resumed run (new process) starts
    the best value, its weights and the patience count afresh from the resumed
    epoch, so a best epoch from before the interruption is lost. With
    ``backup_dir`` the state (best value, epoch, weights, patience count,
    history) is written there after every evaluation and reloaded at
    ``on_train_begin``; it is deleted at ``on_train_end`` (as
    ``BackupAndRestore`` deletes its own backup), so a later ``fit`` starts
    afresh, unless ``delete_backup=False``: then a later ``fit`` with a larger
    ``epochs`` (and ``BackupAndRestore(delete_checkpoint=False)``) continues
    the finished run with its best value, patience count and history.

    Args:
        evaluator: the :class:`RankingEvaluator` to run.
        every_n_epochs: evaluation period in epochs (>= 1).
        monitor: metric to track, e.g. ``"recall@20"`` (``prefix`` may be
            included: ``"val_recall@20"``).
        patience: evaluations without improvement before stopping; ``None`` or
            ``0`` disables early stopping.
        restore_best_weights: restore the best weights at the end of training.
        prefix: prefix of the keys written into ``logs``.
        verbose: 0 silent, 1 one line per evaluation.
        backup_dir: optional directory to persist the best state across
            interrupted runs (see above).
        delete_backup: remove the state in ``backup_dir`` at the end of
            training (``False`` keeps it, to extend the run later).
        scores: scoring rules (e.g. ``("cosine", "dot")``) evaluated besides the
            model's own, for models whose ``compute_representations`` takes
            ``score``; empty: only the model's rule.
        **kwargs: passed to ``tf.keras.callbacks.Callback``.

    Example:
        >>> evaluation = RankingEvaluation(
        ...     RankingEvaluator(data.train_csr, data.valid_csr), patience=5)
        >>> model.fit(dataset, epochs=100,
        ...           callbacks=[evaluation, CSVHistory("log.csv")])
        >>> evaluation.best_epoch, evaluation.best_value
    """

    def __init__(
        self,
        evaluator: RankingEvaluator,
        every_n_epochs: int = 1,
        monitor: str = "recall@20",
        patience: int | None = 10,
        restore_best_weights: bool = True,
        prefix: str = "val_",
        verbose: int = 1,
        backup_dir: str | None = None,
        delete_backup: bool = True,
        scores: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not hasattr(evaluator, "evaluate") or not hasattr(evaluator, "metric_names"):
            raise TypeError(
                f"evaluator must be a RankingEvaluator, got {type(evaluator).__name__}"
            )
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int):
            raise TypeError(f"every_n_epochs must be an int, got {every_n_epochs!r}")
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        if patience is not None and (isinstance(patience, bool) or patience < 0):
            raise ValueError(f"patience must be None or an int >= 0, got {patience!r}")
        names = tuple(evaluator.metric_names)
        name = (
            monitor[len(prefix) :] if prefix and monitor.startswith(prefix) else monitor
        )
        if name not in names:
            raise ValueError(
                f"monitor={monitor!r} is not a metric of the evaluator; choose one of {names}"
            )
        self.evaluator = evaluator
        self.every_n_epochs = every_n_epochs
        self.monitor = monitor
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)
        self.prefix = prefix
        self.verbose = int(verbose)
        self.backup_dir = None if backup_dir is None else os.fspath(backup_dir)
        self.delete_backup = bool(delete_backup)
        if isinstance(scores, str) or len(set(scores)) != len(scores):
            raise ValueError(f"scores must be a sequence of distinct rule names, got {scores!r}")
        self.scores = tuple(scores)
        self._monitor_name = name
        self._reset()

    def _reset(self) -> None:
        """Clears the best-state tracking."""
        self.best_value: float = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.history: list[dict[str, float]] = []
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Checks the model and resets (or reloads from ``backup_dir``) the state."""
        if not callable(getattr(self.model, "compute_representations", None)):
            raise TypeError(
                f"RankingEvaluation needs a model with compute_representations(training); "
                f"{type(self.model).__name__} has none"
            )
        self._reset()
        if self.backup_dir is not None:
            self._load_state()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Evaluates on every N-th epoch and writes the metrics into ``logs``."""
        if (epoch + 1) % self.every_n_epochs != 0:
            return
        start = time.perf_counter()
        users, items = self.model.compute_representations(training=False)
        metrics = self.evaluator.evaluate(users, items)
        metrics.update(self._rule_metrics(metrics))
        seconds = time.perf_counter() - start
        if logs is not None:
            for name, value in metrics.items():
                logs[f"{self.prefix}{name}"] = value
            logs[f"{self.prefix}eval_seconds"] = seconds
        # A resumed run may repeat epochs already recorded before the interruption.
        self.history = [entry for entry in self.history if entry["epoch"] < epoch]
        self.history.append({"epoch": epoch, **metrics, "eval_seconds": seconds})

        value = metrics[self._monitor_name]
        improved = value > self.best_value
        if improved:
            self.best_value = float(value)
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = [
                    np.array(w, copy=True) for w in
                    tf.keras.backend.batch_get_value(self._state_variables())
                ]
        else:
            self.wait += 1
        if self.patience and self.wait >= self.patience:
            self.model.stop_training = True
            self.stopped_epoch = epoch
        if self.verbose:
            self._print(epoch, metrics, seconds, improved)
        if self.backup_dir is not None:
            self._save_state()

    def _state_variables(self) -> list[tf.Variable]:
        """The model's weights without bookkeeping (metrics' accumulators, layers
        marked ``bookkeeping``), in weight order."""
        skip = {id(v) for metric in self.model.metrics for v in metric.variables}
        for module in self.model.submodules:
            if getattr(module, "bookkeeping", False):
                skip.update(id(v) for v in module.variables)
        return [v for v in self.model.weights if id(v) not in skip]

    def _rule_metrics(self, own: dict[str, float]) -> dict[str, float]:
        """``{f"{rule}_{name}": value}`` for every rule of ``scores``."""
        out: dict[str, float] = {}
        own_rule = getattr(self.model, "score", None)
        for rule in self.scores:
            if rule == own_rule:
                metrics = own
            else:
                users, items = self.model.compute_representations(training=False, score=rule)
                metrics = self.evaluator.evaluate(users, items)
            out.update({f"{rule}_{name}": value for name, value in metrics.items()})
        return out

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Restores the best weights if asked and removes the state backup (if asked)."""
        if self.restore_best_weights and self.best_weights is not None:
            variables = self._state_variables()
            if len(variables) != len(self.best_weights):
                raise ValueError(
                    f"the best weights hold {len(self.best_weights)} arrays but the model has "
                    f"{len(variables)} state variables: were they saved by another model?")
            tf.keras.backend.batch_set_value(list(zip(variables, self.best_weights)))
            if self.verbose:
                print(
                    f"RankingEvaluation: restored weights of epoch {self.best_epoch + 1} "
                    f"({self.prefix}{self._monitor_name}={self.best_value:.5f})"
                )
        if self.backup_dir is not None and self.delete_backup:
            for file_name in (_STATE_FILE, _WEIGHTS_FILE):
                path = os.path.join(self.backup_dir, file_name)
                if os.path.exists(path):
                    os.remove(path)

    def _print(
        self, epoch: int, metrics: dict[str, float], seconds: float, improved: bool
    ) -> None:
        """Prints one line with the metrics at the largest cut-off <= 20."""
        shown = {k: v for k, v in metrics.items() if k.endswith(f"@{self._shown_k()}")}
        shown[self._monitor_name] = metrics[self._monitor_name]
        text = " ".join(f"{self.prefix}{k}={v:.5f}" for k, v in shown.items())
        best_epoch = "-" if self.best_epoch is None else self.best_epoch + 1
        mark = (
            " (best)" if improved else f" (best {self.best_value:.5f} @ {best_epoch})"
        )
        print(f"Epoch {epoch + 1}: {text} [{seconds:.2f}s]{mark}")

    def _shown_k(self) -> int:
        small = [k for k in self.evaluator.ks if k <= 20]
        return small[-1] if small else self.evaluator.ks[0]

    def _save_state(self) -> None:
        """Atomically writes the tracking state (and best weights) to ``backup_dir``."""
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.best_weights is not None and self.wait == 0:
            path = os.path.join(self.backup_dir, _WEIGHTS_FILE)
            with open(path + ".tmp", "wb") as handle:
                np.savez(handle, *self.best_weights)
            os.replace(path + ".tmp", path)
        state = {  # strict JSON: no -Infinity before the first evaluation
            "best_value": self.best_value if math.isfinite(self.best_value) else None,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "history": self.history,
            "has_weights": self.best_weights is not None,
        }
        path = os.path.join(self.backup_dir, _STATE_FILE)
        with open(path + ".tmp", "w") as handle:
            json.dump(state, handle, allow_nan=False)
        os.replace(path + ".tmp", path)

    def _load_state(self) -> None:
        """Reloads the tracking state written by an interrupted run, if any."""
        path = os.path.join(self.backup_dir, _STATE_FILE)
        if not os.path.exists(path):
            return
        with open(path) as handle:
            state = json.load(handle)
        self.best_value = -math.inf if state["best_value"] is None else float(state["best_value"])
        self.best_epoch = state["best_epoch"]
        self.wait = int(state["wait"])
        self.history = list(state["history"])
        weights_path = os.path.join(self.backup_dir, _WEIGHTS_FILE)
        if state["has_weights"] and os.path.exists(weights_path):
            with np.load(weights_path) as stored:
                self.best_weights = [
                    stored[f"arr_{i}"] for i in range(len(stored.files))
                ]
        if self.verbose:
            print(
                f"RankingEvaluation: resumed from {self.backup_dir} (best "
                f"{self.prefix}{self._monitor_name}={self.best_value:.5f} at epoch "
                f"{None if self.best_epoch is None else self.best_epoch + 1})"
            )

    def get_config(self) -> dict[str, Any]:
        """Returns the scalar arguments (the evaluator cannot be serialised).

        ``tf.keras.callbacks.Callback`` defines no ``get_config``, so there is
        no parent config to chain to.
        """
        return {
            "every_n_epochs": self.every_n_epochs,
            "monitor": self.monitor,
            "patience": self.patience,
            "restore_best_weights": self.restore_best_weights,
            "prefix": self.prefix,
            "verbose": self.verbose,
            "backup_dir": self.backup_dir,
            "delete_backup": self.delete_backup,
            "scores": list(self.scores),
        }
