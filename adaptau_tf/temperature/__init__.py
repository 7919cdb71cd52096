"""Temperature strategies and the closed-form maths of Adap-τ."""

from adaptau_tf.temperature.adap_tau import AdapTau
from adaptau_tf.temperature.adap_tau0 import AdapTau0
from adaptau_tf.temperature.factory import STRATEGY_KEYS, get_strategy
from adaptau_tf.temperature.fixed import FixedTemperature
from adaptau_tf.temperature.learned import LearnedTemperature
from adaptau_tf.temperature.learned_user import LearnedUserTemperature
from adaptau_tf.temperature.no_norm import NoNorm
from adaptau_tf.temperature.strategy import TemperatureStrategy

__all__ = [
    "STRATEGY_KEYS",
    "AdapTau",
    "AdapTau0",
    "FixedTemperature",
    "LearnedTemperature",
    "LearnedUserTemperature",
    "NoNorm",
    "TemperatureStrategy",
    "get_strategy",
]
