"""Every public layer, model and callback round-trips through Keras serialisation.

``serialize_keras_object`` -> JSON -> ``deserialize_keras_object`` must give an
object of the same class with the same config (registration included), and the
rebuilt models must compute what the originals compute once given their weights.
Two cannot be rebuilt from a config alone, and their docstrings say why:
``RankingEvaluation`` (its evaluator holds the data's sparse matrices) and
``GraphPropagation`` (its adjacency matrix; ``LightGCN`` carries the training
pairs instead and rebuilds it).
"""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import json

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.callbacks import (
    AdaptiveTemperature,
    AnalysisTensorBoard,
    CSVHistory,
    PopularityGroupTracker,
)
from adaptau_tf.data import make_synthetic
from adaptau_tf.evaluation import RankingEvaluation
from adaptau_tf.layers import EmbeddingL2, GraphPropagation, L2Normalization, UniformNegatives
from adaptau_tf.models import build_model
from adaptau_tf.tasks import AdaptiveRetrieval
from adaptau_tf.trainers.distribute import SyncStopTraining
from adaptau_tf.trainers.run_files import Stopwatch

PAIRS = np.array([[0, 1], [1, 2], [2, 0], [0, 2]], np.int64)


def round_trip(obj):
    """``obj`` through serialize -> JSON -> deserialize."""
    payload = json.loads(json.dumps(tf.keras.utils.serialize_keras_object(obj)))
    return tf.keras.utils.deserialize_keras_object(payload)


def same_config(a, b):
    assert type(a) is type(b)
    assert json.dumps(a.get_config(), sort_keys=True) == json.dumps(b.get_config(),
                                                                    sort_keys=True)


@pytest.mark.parametrize("make", [
    lambda tmp: L2Normalization(epsilon=1e-6, name="norm"),
    lambda tmp: UniformNegatives(100, 16, negative_groups=4, seed=3),
    lambda tmp: EmbeddingL2(1e-4),
    lambda tmp: AdaptiveRetrieval(num_users=5, strategy="adap-tau", loss_form="reference",
                                  remove_accidental_hits=True, name="task"),
    lambda tmp: AdaptiveRetrieval(num_users=5, temperature=0.2),
    lambda tmp: AdaptiveTemperature(PAIRS, 3, 3, warmup_epochs=2, two_beta=0.6, margin=0.9),
    lambda tmp: CSVHistory(str(tmp / "h.csv"), append=True, replace_repeated_epochs=True),
    lambda tmp: PopularityGroupTracker(np.array([5, 1, 3]), num_groups=2, k=2),
    lambda tmp: AnalysisTensorBoard(str(tmp / "tb"), item_counts=np.array([5, 1, 3]),
                                    num_groups=2, k=2),
    lambda tmp: Stopwatch(tmp / "elapsed.json"),
    lambda tmp: SyncStopTraining(),
], ids=["L2Normalization", "UniformNegatives", "EmbeddingL2", "AdaptiveRetrieval-adap-tau",
        "AdaptiveRetrieval-fixed", "AdaptiveTemperature", "CSVHistory",
        "PopularityGroupTracker", "AnalysisTensorBoard", "Stopwatch", "SyncStopTraining"])
def test_layers_and_callbacks_round_trip(make, tmp_path):
    original = make(tmp_path)
    same_config(original, round_trip(original))


def test_adaptive_temperature_keeps_its_training_pairs():
    rebuilt = round_trip(AdaptiveTemperature(PAIRS, 3, 3))
    np.testing.assert_array_equal(rebuilt.train_pairs, PAIRS)


def test_stateless_layers_compute_the_same_after_the_round_trip():
    sampler = UniformNegatives(50, 8, negative_groups=2, seed=1)
    np.testing.assert_array_equal(sampler(tf.constant(7)), round_trip(sampler)(tf.constant(7)))
    users, items = tf.random.normal([4, 3], seed=0), tf.random.normal([6, 3], seed=1)
    ids = tf.constant([0, 1, 2, 3], tf.int64), tf.constant([1, 2, 3, 4], tf.int64)
    l2 = EmbeddingL2(0.5)
    assert float(l2(users, items, *ids)) == pytest.approx(float(round_trip(l2)(users, items,
                                                                                  *ids)))


@pytest.mark.parametrize("backbone", ["mf", "lightgcn"])
def test_models_round_trip_and_compute_the_same(backbone):
    data = make_synthetic(num_users=30, num_items=20, seed=0)
    model = build_model(backbone, data, strategy="adap-tau", embedding_dim=8, seed=0,
                        negatives="in-batch", l2=1e-4, score="dot")
    rebuilt = round_trip(model)
    same_config(model, rebuilt)
    rebuilt.set_weights(model.get_weights())
    for rule in ("cosine", "dot"):
        for a, b in zip(model.compute_representations(score=rule),
                        rebuilt.compute_representations(score=rule)):
            np.testing.assert_allclose(a, b, atol=1e-6)


def test_what_cannot_round_trip_says_why():
    assert "evaluator cannot be serialised" in RankingEvaluation.get_config.__doc__
    assert "pass the" in GraphPropagation.__doc__ and "rebuilding" in GraphPropagation.__doc__
