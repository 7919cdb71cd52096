"""KerasModelTuner: keras-tuner over a user's tfrs.Model, resumed and extended."""

import adaptau_tf  # noqa: F401

# isort: split

import keras_tuner as kt
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from adaptau_tf.data import make_synthetic
from adaptau_tf.layers import L2Normalization
from adaptau_tf.tasks import AdaptiveRetrieval
from adaptau_tf.trainers.keras_model_tuner import KerasModelTuner

DATA = make_synthetic(num_users=40, num_items=30, seed=0).with_validation_split(0.2, seed=0)


class TwoTower(tfrs.Model):
    def __init__(self, temperature: float):
        super().__init__()
        self.users = tf.keras.Sequential([tf.keras.layers.Embedding(DATA.num_users, 8),
                                          L2Normalization()])
        self.items = tf.keras.Sequential([tf.keras.layers.Embedding(DATA.num_items, 8),
                                          L2Normalization()])
        self.task = AdaptiveRetrieval(num_users=DATA.num_users, temperature=temperature)

    def compute_loss(self, features, training=False):
        return self.task(self.users(features[0]), self.items(features[1]))


def _build(values):
    def build_model(hp):
        tf.keras.utils.set_random_seed(0)
        model = TwoTower(hp.Choice("tau", values))
        model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
        return model
    return build_model


def _tuner(tmp_path, values, overwrite=False):
    oracle = kt.oracles.GridSearchOracle(objective=kt.Objective("val_loss", "min"))
    return KerasModelTuner(_build(values), oracle, directory=str(tmp_path), project_name="tau",
                           overwrite=overwrite)


def _valid():
    return tf.data.Dataset.from_tensor_slices((DATA.valid[:, 0], DATA.valid[:, 1])).batch(64)


def test_grid_search_reports_the_best_epoch_and_extends(tmp_path, capsys):
    search = dict(validation_data=_valid(), epochs=3, verbose=0)
    tuner = _tuner(tmp_path, [0.1, 1.0], overwrite=True)
    tuner.search(DATA.train_dataset(64, seed=0), **search)
    trials = tuner.oracle.get_best_trials(10)
    assert sorted(t.hyperparameters.get("tau") for t in trials) == [0.1, 1.0]
    best = trials[0]
    # The reported score is the best epoch's val_loss, and the kept weights are that epoch's.
    model = tuner.get_best_models(1)[0]
    score = model.evaluate(_valid(), verbose=0, return_dict=True)["loss"]
    assert best.score == pytest.approx(score, rel=1e-5)
    assert best.score == min(t.score for t in trials)
    tuner.results_summary()
    assert "tau" in capsys.readouterr().out

    # The same directory with a longer grid: only the new value is trained.
    extended = _tuner(tmp_path, [0.1, 1.0, 0.3])
    calls = []
    original = extended.run_trial
    extended.run_trial = lambda trial, *a, **k: calls.append(trial) or original(trial, *a, **k)
    extended.search(DATA.train_dataset(64, seed=0), **search)
    assert [t.hyperparameters.get("tau") for t in calls] == [0.3]
    taus = sorted(t.hyperparameters.get("tau") for t in extended.oracle.trials.values())
    assert taus == [0.1, 0.3, 1.0]
    # Rerunning the finished, extended grid trains nothing.
    again = _tuner(tmp_path, [0.1, 1.0, 0.3])
    again.run_trial = lambda *a, **k: pytest.fail("a finished grid ran a trial")
    again.search(DATA.train_dataset(64, seed=0), **search)
    assert len(again.oracle.trials) == 3


def test_errors_name_what_they_received(tmp_path):
    with pytest.raises(ValueError, match="'some'"):
        KerasModelTuner(_build([0.1]), kt.oracles.GridSearchOracle(
            objective=kt.Objective("val_loss", "min")), keep_weights="some",
            directory=str(tmp_path))
    tuner = KerasModelTuner(_build([0.1]), kt.oracles.GridSearchOracle(
        objective=kt.Objective("val_auc", "max")), directory=str(tmp_path), overwrite=True)
    with pytest.raises(kt.errors.FatalError, match="'val_auc' is not in the fit's logs"):
        tuner.search(DATA.train_dataset(64, seed=0), epochs=1, verbose=0)
