"""`load_data`: one string names a data set (for command lines and configs)."""

from __future__ import annotations

import dataclasses

from adaptau_tf.data.interaction_data import InteractionData
from adaptau_tf.data.lightgcn import load_lightgcn
from adaptau_tf.data.synthetic import make_synthetic
from adaptau_tf.data.synthetic_config import SyntheticConfig
from adaptau_tf.data.tfds_movielens import SUPPORTED_NAMES, load_tfds_movielens

_SYNTHETIC_ALIASES = {"users": "num_users", "items": "num_items"}
_TFDS_OPTIONS = {
    "min_rating": float,
    "k_core": int,
    "test_fraction": float,
    "data_dir": str,
    "download": bool,
}
_FORMS = (
    "'synthetic', 'synthetic:key=value,...', 'lightgcn:PATH', "
    f"'tfds:NAME' or 'tfds:NAME:key=value,...' (NAME in {', '.join(SUPPORTED_NAMES)})"
)


def _parse_value(spec: str, key: str, text: str, kind: type) -> object:
    """Parses `text` as `kind` (int, float, bool, str; 'none' allowed for floats)."""
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "1")
        if kind is float and text.strip().lower() == "none":
            return None
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        return text
    except ValueError:
        raise ValueError(
            f"Data spec {spec!r}: {key}={text!r} is not a valid {kind.__name__}."
        ) from None


def _parse_overrides(
    spec: str, text: str, types: dict[str, type], aliases: dict[str, str]
) -> dict[str, object]:
    """Parses ``key=value,key=value`` against the allowed `types`."""
    overrides: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = aliases.get(key.strip(), key.strip())
        if not sep or not key:
            raise ValueError(f"Data spec {spec!r}: expected key=value, got {item!r}.")
        if key not in types:
            valid = sorted(types) + sorted(aliases)
            raise ValueError(
                f"Data spec {spec!r}: unknown key {key!r}; valid keys: {', '.join(valid)}."
            )
        overrides[key] = _parse_value(spec, key, value.strip(), types[key])
    return overrides


def load_data(spec: str, seed: int = 0) -> InteractionData:
    """Loads the data set a spec string names.

    Forms:
        * ``synthetic``: `make_synthetic` with defaults.
        * ``synthetic:num_users=500,num_items=300,noisy_user_fraction=0.3``:
          `SyntheticConfig` fields (``users``/``items`` are accepted as
          aliases of ``num_users``/``num_items``); values are parsed by the
          field's type.
        * ``lightgcn:PATH``: `load_lightgcn(PATH)` (folder with train/test.txt).
        * ``tfds:movielens/1m-ratings`` or ``tfds:movielens/100k-ratings``,
          optionally ``tfds:NAME:k_core=5,min_rating=none``.

    Args:
        spec: The spec string.
        seed: Seed of the random parts (synthetic generation, TFDS split);
            a ``seed=`` key in the spec wins over it.

    Returns:
        The loaded `InteractionData`.

    Raises:
        ValueError: If the scheme is unknown (the spec is quoted), a key is
            unknown (the valid keys are listed) or a value does not parse.

    Example:
        >>> data = load_data("synthetic:users=500,items=300", seed=1)
        >>> data.num_users
        500
    """
    if not isinstance(spec, str):
        raise TypeError(f"Data spec must be a str, got {spec!r}.")
    scheme, _, rest = spec.strip().partition(":")
    if scheme == "synthetic":
        types = {f.name: type(f.default) for f in dataclasses.fields(SyntheticConfig)}
        overrides = _parse_overrides(spec, rest, types, _SYNTHETIC_ALIASES)
        overrides.setdefault("seed", seed)
        return make_synthetic(SyntheticConfig(), **overrides)
    if scheme == "lightgcn":
        if not rest.strip():
            raise ValueError(f"Data spec {spec!r}: expected 'lightgcn:PATH'.")
        return load_lightgcn(rest.strip())
    if scheme == "tfds":
        name, _, options = rest.partition(":")
        name = name.strip()
        if name not in SUPPORTED_NAMES:
            raise ValueError(
                f"Data spec {spec!r}: unsupported TFDS name {name!r}; "
                f"supported: {', '.join(SUPPORTED_NAMES)}."
            )
        overrides = _parse_overrides(spec, options, {**_TFDS_OPTIONS, "seed": int}, {})
        overrides.setdefault("seed", seed)
        return load_tfds_movielens(name, **overrides)  # type: ignore[arg-type]
    raise ValueError(f"Unknown data spec {spec!r}; expected one of {_FORMS}.")
