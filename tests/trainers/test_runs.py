"""adaptau_tf.trainers.runs: when a run's train step is XLA-compiled."""

import adaptau_tf  # noqa: F401

# isort: split

import pytest

from adaptau_tf.data import make_synthetic
from adaptau_tf.models import build_model
from adaptau_tf.trainers import runs


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=20, num_items=60, seed=0)


def test_use_jit_auto_follows_the_draws_backbone_and_distribution(data):
    covering = build_model("mf", data, negatives="sampled:8x2", embedding_dim=4)  # 4x16 >= 60
    shared = build_model("mf", data, negatives="sampled:8", embedding_dim=4)  # 4 x 8 < 60
    graph = build_model("lightgcn", data, negatives="sampled:32x2", embedding_dim=4)
    assert runs.use_jit({"jit_compile": "auto", "distribute": "none"}, covering)
    assert not runs.use_jit({"jit_compile": "auto", "distribute": "mirrored"}, covering)
    assert not runs.use_jit({}, shared)  # configs written before the flag: auto
    assert runs.use_jit({"jit_compile": "on"}, shared)
    assert not runs.use_jit({"jit_compile": "off"}, covering)
    assert not runs.use_jit({"jit_compile": "auto"}, graph)
    with pytest.raises(ValueError, match="LightGCN has no XLA train step"):
        runs.use_jit({"jit_compile": "on"}, graph)


def test_make_model_compiles_with_the_choice(data):
    config = {"backbone": "mf", "strategy": "fixed", "tau": 0.2, "loss_form": "paper",
              "negatives": "sampled:32x2", "embedding_dim": 4, "l2": 0.0, "dropout": 0.0,
              "seed": 0, "lr": 1e-3, "jit_compile": "auto", "distribute": "none"}
    assert runs.make_model(config, data)._jit_compile is True
    assert runs.make_model({**config, "jit_compile": "off"}, data)._jit_compile is False
