"""Strategy lookup by command-line key."""

from __future__ import annotations

from typing import Any

from adaptau_tf.temperature.adap_tau import AdapTau
from adaptau_tf.temperature.adap_tau0 import AdapTau0
from adaptau_tf.temperature.fixed import FixedTemperature
from adaptau_tf.temperature.learned import LearnedTemperature
from adaptau_tf.temperature.learned_user import LearnedUserTemperature
from adaptau_tf.temperature.no_norm import NoNorm
from adaptau_tf.temperature.strategy import TemperatureStrategy

STRATEGY_KEYS: tuple[str, ...] = ("nonorm", "fixed", "c-tau", "cu-tau", "adap-tau0", "adap-tau")


def get_strategy(
    name: str | TemperatureStrategy,
    num_users: int | None = None,
    temperature: float | None = None,
    **kwargs: Any,
) -> TemperatureStrategy:
    """Builds a strategy from its key (``nonorm|fixed|c-tau|cu-tau|adap-tau0|adap-tau``).

    Args:
        name: a key, or an existing strategy (returned as is).
        num_users: needed by ``cu-tau``.
        temperature: the fixed τ (``fixed``) or the initial τ (the others);
            ignored by ``nonorm``.
        **kwargs: passed to the strategy's constructor.

    Example:
        >>> get_strategy("fixed", temperature=0.15).temperature
        0.15
    """
    if isinstance(name, TemperatureStrategy):
        return name
    tau = {} if temperature is None else {"temperature": float(temperature)}
    if name == "nonorm":
        return NoNorm(**kwargs)
    if name == "fixed":
        return FixedTemperature(**tau, **kwargs)
    if name == "c-tau":
        return LearnedTemperature(**tau, **kwargs)
    if name == "cu-tau":
        if num_users is None:
            raise ValueError("strategy 'cu-tau' needs num_users")
        return LearnedUserTemperature(num_users=num_users, **tau, **kwargs)
    if name == "adap-tau0":
        return AdapTau0(**tau, **kwargs)
    if name == "adap-tau":
        return AdapTau(**tau, **kwargs)
    raise ValueError(f"unknown strategy {name!r}; expected one of {', '.join(STRATEGY_KEYS)}")
