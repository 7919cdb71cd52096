"""`KerasModelTuner`: keras-tuner's search for any tf_keras (Keras 2) model, a tfrs.Model included.

keras-tuner 1.4's ``Tuner`` accepts Keras 3 models only, so a ``build_model(hp)``
that returns a tf_keras model (every ``tfrs.Model``) fails there. This tuner
subclasses ``BaseTuner`` (as ``adaptau-grid-search``'s ``TemperatureGridTuner``
does for the package's own models) and keeps keras-tuner's conventions: any
oracle, ``directory`` / ``project_name`` / ``overwrite``, ``search(*fit_args,
**fit_kwargs)`` passed on to ``model.fit``, ``results_summary()``,
``get_best_models()`` / ``get_best_hyperparameters()``.

A grid search reloaded from its directory continues where it stopped, and a
finished grid is extended by declaring more values: a ``Choice`` whose values
in ``build_model`` (or in the oracle's ``hyperparameters``) are not in the
saved search space gets them appended, and only the new combinations run.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import keras_tuner as kt
import tensorflow as tf
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src.tuners.gridsearch import LinkedList


class KerasModelTuner(BaseTuner):
    """A keras-tuner ``BaseTuner`` that builds, fits and scores tf_keras models.

    Each trial builds ``hypermodel(hp)`` (a compiled tf_keras model), fits it
    with ``search``'s arguments and reports, for the epoch that is best by the
    oracle's objective (e.g. ``"val_loss"``, ``"val_factorized_top_k/
    top_10_categorical_accuracy"``), every metric of that epoch. That epoch's
    weights are kept in ``<project>/trial_<id>/weights/`` (``keep_weights``).

    Args:
        hypermodel: ``build_model(hp) -> compiled tf_keras model`` or a
            ``kt.HyperModel``.
        oracle: a keras-tuner oracle (``kt.oracles.GridSearchOracle``,
            ``RandomSearchOracle``, ...) with its objective.
        callbacks: extra Keras callbacks for every trial's ``fit`` (they come
            before ``search``'s own ``callbacks``).
        keep_weights: ``"best"`` (only the best trial's), ``"all"`` or
            ``"none"``.
        **kwargs: ``directory``, ``project_name``, ``overwrite``, ... for
            ``BaseTuner``.

    Example:
        >>> def build_model(hp):
        ...     model = MovielensModel(user_model(), movie_model(), AdaptiveRetrieval(
        ...         num_users, temperature=hp.Choice("tau", [0.05, 0.1, 0.2])))
        ...     model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
        ...     return model
        >>> tuner = KerasModelTuner(build_model, kt.oracles.GridSearchOracle(
        ...     objective=kt.Objective("val_loss", "min")), directory="tuning",
        ...     project_name="tau")
        >>> tuner.search(train, validation_data=test, epochs=3)
        >>> tuner.results_summary()
    """

    def __init__(self, hypermodel: Callable[[kt.HyperParameters], Any] | kt.HyperModel,
                 oracle: kt.Oracle, callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                 keep_weights: str = "best", **kwargs: Any) -> None:
        if keep_weights not in ("best", "all", "none"):
            raise ValueError(f"keep_weights must be 'best', 'all' or 'none', got {keep_weights!r}")
        self.callbacks = list(callbacks)
        self.keep_weights = keep_weights
        declared = oracle.hyperparameters.copy()
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        if self.oracle.trials:  # a reloaded project
            discovered = kt.HyperParameters()
            self.hypermodel.build(discovered)
            declared.merge(discovered.space)
            self._extend_choices(declared)
            if isinstance(self.oracle, kt.oracles.GridSearchOracle):
                self._resume_grid()

    def _extend_choices(self, declared: kt.HyperParameters) -> None:
        """Appends values declared now but not in the reloaded space to its ``Choice``s."""
        for hp in self.oracle.hyperparameters.space:
            if not isinstance(hp, kt.engine.hyperparameters.Choice):
                continue
            new = next((d for d in declared.space if d.name == hp.name
                        and isinstance(d, kt.engine.hyperparameters.Choice)), None)
            if new is not None:  # Choice.values has no setter
                hp._values = [*hp.values, *(v for v in new.values if v not in hp.values)]

    def _resume_grid(self) -> None:
        """Rebuilds the grid oracle's walk (kept in memory only) from the saved trials.

        Every trial is a starting point again: each proposes its successor in
        the grid and the oracle skips the combinations that ran, so a resumed
        or extended grid runs exactly the missing ones.
        """
        oracle = self.oracle
        order = sorted(oracle.trials.values(), key=functools.cmp_to_key(
            lambda a, b: oracle._compare(a.hyperparameters.values, b.hyperparameters.values)))
        oracle._ordered_ids = LinkedList()
        previous = None
        for trial in order:
            oracle._ordered_ids.insert(trial.trial_id, previous)
            previous = trial.trial_id
        oracle._populate_next = [trial.trial_id for trial in order]

    def run_trial(self, trial: kt.engine.trial.Trial, *fit_args: Any,
                  **fit_kwargs: Any) -> dict[str, float]:
        """Builds and fits the trial's model; returns its best epoch's metrics."""
        tf.keras.backend.clear_session()
        model = self.hypermodel.build(trial.hyperparameters)
        objective = self.oracle.objective
        checkpoint = tf.keras.callbacks.ModelCheckpoint(
            self._checkpoint(trial.trial_id), monitor=objective.name,
            mode=objective.direction, save_best_only=True, save_weights_only=True)
        callbacks = [*self.callbacks, *fit_kwargs.pop("callbacks", []), checkpoint]
        history = model.fit(*fit_args, callbacks=callbacks, **fit_kwargs).history
        if objective.name not in history:
            raise kt.errors.FatalError(
                f"the objective {objective.name!r} is not in the fit's logs {sorted(history)}")
        values = history[objective.name]
        pick = min if objective.direction == "min" else max
        best = pick(range(len(values)), key=values.__getitem__)
        return {name: float(series[best]) for name, series in history.items()}

    def _checkpoint(self, trial_id: str) -> str:
        return str(Path(self.get_trial_dir(trial_id)) / "weights" / "best")

    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Saves ``model``'s weights as the trial's checkpoint."""
        model.save_weights(self._checkpoint(trial_id))

    def load_model(self, trial: kt.engine.trial.Trial) -> Any:
        """The trial's model with the weights of its best epoch.

        Raises:
            FileNotFoundError: the weights were not kept (``keep_weights``).
        """
        path = self._checkpoint(trial.trial_id)
        if not Path(path + ".index").exists():
            raise FileNotFoundError(f"{path} not found (keep_weights={self.keep_weights!r})")
        model = self.hypermodel.build(trial.hyperparameters)
        model.load_weights(path).expect_partial()
        return model

    def on_trial_end(self, trial: kt.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        if self.keep_weights == "all":
            return
        best = self.oracle.get_best_trials(1) if self.keep_weights == "best" else []
        keep = best[0].trial_id if best else None
        for other in self.oracle.trials.values():
            if other.trial_id != keep:
                shutil.rmtree(Path(self.get_trial_dir(other.trial_id)) / "weights",
                              ignore_errors=True)
