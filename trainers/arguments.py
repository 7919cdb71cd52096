"""``argparse`` types that check command-line values when they are parsed.

Every CLI flag with a range gets one of these as its ``type``: a bad value is
refused by argparse itself (one ``error:`` line naming the flag and the value,
exit status 2) before any data is read or any file is written.

Example:
    >>> parser.add_argument("--epochs", type=positive_int, default=50)
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, temperatures, 2β)."""
    value = _number(text, float)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (l2, margins)."""
    value = _number(text, float)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def open_fraction(text: str) -> float:
    """A number in ``(0, 1)`` (the validation share)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def rate(text: str) -> float:
    """A number in ``[0, 1)`` (dropout)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def margin(text: str) -> str:
    """``"mean"`` or a quantile in ``[0, 1]`` (m_u of Adap-τ), returned as given (the
    run's ``config.json`` records the text)."""
    if text == "mean":
        return text
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected 'mean' or a number in [0, 1], got {text!r}")
    return text


def negatives(text: str) -> str:
    """``sampled:M``, ``sampled:MxG`` or ``in-batch`` (checked, returned as given)."""
    from adaptau_tf.models.factory import parse_negatives

    try:
        parse_negatives(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def metric(text: str) -> str:
    """A ranking metric at a cut-off: ``recall@20``, ``ndcg@10``, ... (a ``val_`` or
    ``test_`` prefix is not part of it)."""
    from adaptau_tf.evaluation.metrics import METRIC_NAMES

    name, _, k = text.partition("@")
    if name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(METRIC_NAMES)} followed by @K (K >= 1), got {text!r}")
    return text
