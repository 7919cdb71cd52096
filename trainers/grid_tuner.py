"""keras-tuner pieces of ``adaptau-grid-search``: a resumable grid oracle and a tf_keras tuner.

keras-tuner 1.4 rejects tf_keras (Keras 2) models in its ``Tuner`` class, so
:class:`TemperatureGridTuner` subclasses ``BaseTuner`` (STACK.md): it builds,
fits and evaluates one ``--strategy fixed --tau τ`` model per trial with the
trainer's own functions and returns the metrics dict to the oracle.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import keras_tuner as kt
import tensorflow as tf
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src.tuners.gridsearch import LinkedList

from adaptau_tf.callbacks import CSVHistory
from adaptau_tf.data import InteractionData
from adaptau_tf.evaluation import RankingEvaluation
from adaptau_tf.models import RetrievalModel
from adaptau_tf.trainers import runs
from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.run_files import Stopwatch, write_json


class ResumableGridSearchOracle(kt.oracles.GridSearchOracle):
    """``GridSearchOracle`` whose grid position survives a reload.

    keras-tuner 1.4.8's ``GridSearchOracle`` keeps its walk over the grid
    (``_ordered_ids``, ``_populate_next``) only in memory, so a reloaded
    project stops after the retried trial (or fails with a ``KeyError``).
    This subclass saves both in ``oracle.json`` and rebuilds them.
    """

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        order, index = [], self._ordered_ids._next_index[None]
        while index is not None:
            order.append(self._ordered_ids._memory[index])
            index = self._ordered_ids._next_index[index]
        state["grid_order"] = order
        state["populate_next"] = list(self._populate_next)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._ordered_ids = LinkedList()
        for trial_id in state.get("grid_order", []):
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(state.get("populate_next", []))


class TemperatureGridTuner(BaseTuner):
    """A keras-tuner ``BaseTuner`` training one fixed-τ model per trial.

    Args:
        oracle: the oracle; its search space holds ``tau``.
        config: trainer settings (``SHARED_OPTIONS`` keys plus ``monitor``).
        data: the data, already split by :func:`adaptau_tf.trainers.train.prepare_data`.
        keep_weights: ``"best"`` deletes the weights of non-best trials.
        verbose: Keras fit verbosity.
        callbacks: extra Keras callbacks for every trial's ``fit``.
        **kwargs: ``directory``, ``project_name``, ``overwrite`` for ``BaseTuner``.
    """

    def __init__(self, oracle: kt.Oracle, config: dict[str, Any], data: InteractionData,
                 keep_weights: str = "best", verbose: int = 0,
                 callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                 **kwargs: Any) -> None:
        self.config = config
        self.callbacks = list(callbacks)
        self.data = data
        self.keep_weights = keep_weights
        self.verbose = verbose
        self.monitor_eval, self.test_eval = runs.evaluators(data, config["protocol"])
        self.prefix = "val_" if self.monitor_eval is not self.test_eval else "test_"
        super().__init__(oracle=oracle, **kwargs)

    def trial_config(self, tau: float) -> dict[str, Any]:
        """The trainer config of the trial with this τ."""
        return {**self.config, "strategy": "fixed", "tau": float(tau)}

    def run_trial(self, trial: kt.engine.trial.Trial) -> dict[str, float]:
        """Trains ``--strategy fixed --tau τ``; returns the best epoch's metrics."""
        tau = float(trial.hyperparameters.get("tau"))
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        done = trial_dir / "result.json"
        if done.exists() and json.loads(done.read_text())["tau"] == tau:
            result = json.loads(done.read_text())  # trained, but not yet reported
        else:
            try:
                result = self._fit(tau, trial_dir)
            except Exception as error:  # stop the search; a rerun retries this trial
                raise kt.errors.FatalError(f"trial τ={tau} failed: {error!r}") from error
        return {f"{self.prefix}ndcg@20": result["valid_ndcg@20"],
                f"{self.prefix}recall@20": result["valid_recall@20"]}

    def _fit(self, tau: float, trial_dir: Path) -> dict[str, Any]:
        config = self.trial_config(tau)
        if not (trial_dir / "backup").exists():  # a fresh start: drop partial leftovers
            for name in ("history.csv", "elapsed.json"):
                (trial_dir / name).unlink(missing_ok=True)
            shutil.rmtree(trial_dir / "evaluation_state", ignore_errors=True)
        tf.keras.backend.clear_session()
        tf.keras.utils.set_random_seed(config["seed"])
        model = runs.make_model(config, self.data)
        evaluation = RankingEvaluation(
            self.monitor_eval, every_n_epochs=config["eval_every"], monitor=config["monitor"],
            patience=config["patience"] or None, prefix=self.prefix, verbose=0,
            backup_dir=str(trial_dir / "evaluation_state"),
        )
        stopwatch = Stopwatch(trial_dir / "elapsed.json")
        model.fit(
            self.data.train_dataset(config["batch_size"], seed=config["seed"]),
            epochs=config["epochs"], verbose=self.verbose,
            # BackupAndRestore last: an epoch is done once its row is written (train.py).
            callbacks=[evaluation, stopwatch, *self.callbacks,
                       CSVHistory(trial_dir / "history.csv", append=True,
                                  replace_repeated_epochs=True),
                       tf.keras.callbacks.BackupAndRestore(str(trial_dir / "backup"))],
        )
        if evaluation.best_epoch is None:
            raise RuntimeError(f"τ={tau}: no evaluation ran (epochs={config['epochs']}, "
                               f"eval_every={config['eval_every']})")
        best = next(e for e in evaluation.history if e["epoch"] == evaluation.best_epoch)
        self.save_model(trial_dir.name.removeprefix("trial_"), model)
        for scratch in ("backup", "evaluation_state"):
            with contextlib.suppress(OSError):
                (trial_dir / scratch).rmdir()
        result = {
            "tau": tau,
            "valid_recall@20": float(best["recall@20"]),
            "valid_ndcg@20": float(best["ndcg@20"]),
            "monitored_split": "valid" if self.prefix == "val_" else "test",
            "epochs": trainer._epochs_run(trial_dir / "history.csv",
                                          len(evaluation.history)),
            "best_epoch": int(evaluation.best_epoch) + 1,
            "seconds": stopwatch.seconds,
        }
        write_json(trial_dir / "result.json", result)
        return result

    def save_model(self, trial_id: str, model: RetrievalModel, step: int = 0) -> None:
        """Saves the trial's (best-epoch) weights into ``trial_NN/weights/``."""
        trainer._save_weights(model, Path(self.get_trial_dir(trial_id)))

    def load_model(self, trial: kt.engine.trial.Trial) -> RetrievalModel:
        """Rebuilds a trial's model with its saved weights."""
        weights = Path(self.get_trial_dir(trial.trial_id)) / "weights"
        if not weights.exists():
            raise FileNotFoundError(f"{weights} not found (rerun with --keep-weights all?)")
        model = runs.make_model(
            self.trial_config(trial.hyperparameters.get("tau")), self.data)
        model.load_weights(str(weights / "model")).expect_partial()
        return model

    def on_trial_end(self, trial: kt.engine.trial.Trial) -> None:
        super().on_trial_end(trial)
        if self.keep_weights == "best":
            best = self.oracle.get_best_trials(1)
            keep = best[0].trial_id if best else None
            for other in self.oracle.trials.values():
                if other.trial_id != keep:
                    shutil.rmtree(Path(self.get_trial_dir(other.trial_id)) / "weights",
                                  ignore_errors=True)
