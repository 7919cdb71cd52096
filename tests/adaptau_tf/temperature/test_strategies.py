"""Temperature strategies: scales per row, factory, serialisation, validation."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.temperature import (
    STRATEGY_KEYS,
    FixedTemperature,
    LearnedTemperature,
    get_strategy,
)

USER_IDS = tf.constant([2, 0, 2], tf.int64)
GLOBAL = tf.constant(5.0)
PER_USER = tf.constant([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("key", "expected_global", "expected_user", "normalize", "adaptive", "per_user"),
    [
        ("nonorm", [1, 1, 1], [1, 1, 1], False, False, False),
        ("fixed", [5, 5, 5], [5, 5, 5], True, False, False),
        ("adap-tau0", [5, 5, 5], [5, 5, 5], True, True, False),
        ("adap-tau", [5, 5, 5], [3, 1, 3], True, True, True),
    ],
)
def test_scales_per_row(key, expected_global, expected_user, normalize, adaptive, per_user):
    strategy = get_strategy(key)
    g, u = strategy(USER_IDS, GLOBAL, PER_USER)
    np.testing.assert_allclose(g, expected_global)
    np.testing.assert_allclose(u, expected_user)
    assert (strategy.normalize, strategy.adaptive, strategy.per_user) == (
        normalize, adaptive, per_user)
    assert strategy.key == key


def test_learned_strategies_scale_by_exp_minus_parameter():
    c_tau = get_strategy("c-tau", temperature=0.25)
    g, u = c_tau(USER_IDS, GLOBAL, PER_USER)
    np.testing.assert_allclose(u, [4.0, 4.0, 4.0], rtol=1e-6)
    cu_tau = get_strategy("cu-tau", num_users=3, temperature=0.5)
    cu_tau.user_log_temperature.assign(np.log([0.1, 0.2, 0.4]))
    _, u = cu_tau(USER_IDS, GLOBAL, PER_USER)
    np.testing.assert_allclose(u, [2.5, 10.0, 2.5], rtol=1e-5)
    assert [w.name.split("/")[-1].split(":")[0] for w in cu_tau.trainable_weights] == [
        "user_log_temperature"]


@pytest.mark.parametrize("key", STRATEGY_KEYS)
def test_config_round_trip(key):
    strategy = get_strategy(key, num_users=4, temperature=0.3)
    config = tf.keras.utils.serialize_keras_object(strategy)
    clone = tf.keras.utils.deserialize_keras_object(config)
    assert type(clone) is type(strategy)
    assert clone.get_config() == strategy.get_config()


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_temperatures_are_quoted(bad):
    for cls in (FixedTemperature, LearnedTemperature):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            cls(temperature=bad)


def test_factory_errors():
    with pytest.raises(ValueError, match="'hot'"):
        get_strategy("hot")
    with pytest.raises(ValueError, match="num_users"):
        get_strategy("cu-tau")
