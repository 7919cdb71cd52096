"""`SyntheticConfig`: the knobs of the synthetic implicit-feedback generator."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of `make_synthetic`.

    Users and items get latent unit vectors `u`, `v` of dimension `dim`. A
    user's positives are sampled without replacement with probability
    `∝ exp(u·v / temperature) * popularity^popularity_weight`, where item
    popularity follows a power law `rank^-popularity_exponent` (ranks assigned
    at random). Noisy users then have `noise_ratio` of their positives replaced
    by uniformly random items.

    Attributes:
        num_users: Number of users.
        num_items: Number of items.
        dim: Dimension of the latent factors.
        interactions_per_user: Mean number of positives per user (lognormal).
        interactions_sigma: Log-scale spread of the per-user counts (0 = equal).
        min_interactions: Smallest number of positives of a user (>= 2).
        temperature: Softmax temperature of the preference scores; smaller
            values make preferences sharper (more learnable signal).
        popularity_exponent: Power-law exponent of item popularity (0 = flat).
        popularity_weight: Exponent applied to popularity in the sampling
            probability (0 = popularity ignored).
        noisy_user_fraction: Share of users marked noisy, in `[0, 1]`.
        noise_ratio: Share of a noisy user's positives replaced by uniformly
            random items, in `[0, 1]`.
        clean_test: If True, noise only touches the training pairs (test pairs
            keep the user's true preferences); if False, noise is applied
            before the train/test split.
        test_fraction: Share of each user's positives held out for test, in
            `[0, 1)`.
        seed: Seed of everything; the output is fully determined by it.

    Example:
        >>> config = SyntheticConfig(num_users=500, num_items=300, seed=1)
        >>> config.noisy_user_fraction
        0.2
    """

    num_users: int = 2000
    num_items: int = 1000
    dim: int = 16
    interactions_per_user: float = 30.0
    interactions_sigma: float = 0.5
    min_interactions: int = 5
    temperature: float = 0.1
    popularity_exponent: float = 1.0
    popularity_weight: float = 1.0
    noisy_user_fraction: float = 0.2
    noise_ratio: float = 0.5
    clean_test: bool = False
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            expected = type(field.default)
            ok = isinstance(value, expected) and (
                expected is bool or not isinstance(value, bool)
            )
            if (
                expected is float
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                object.__setattr__(self, field.name, float(value))
                ok = True
            if not ok:
                raise TypeError(
                    f"SyntheticConfig.{field.name} must be {expected.__name__}, got {value!r}."
                )
        checks = (
            ("num_users", self.num_users >= 1, ">= 1"),
            ("num_items", self.num_items >= 3, ">= 3"),
            ("dim", self.dim >= 1, ">= 1"),
            ("interactions_per_user", self.interactions_per_user > 0, "> 0"),
            ("interactions_sigma", self.interactions_sigma >= 0, ">= 0"),
            (
                "min_interactions",
                2 <= self.min_interactions < self.num_items,
                f"in [2, num_items={self.num_items})",
            ),
            ("temperature", self.temperature > 0, "> 0"),
            ("popularity_exponent", self.popularity_exponent >= 0, ">= 0"),
            ("popularity_weight", self.popularity_weight >= 0, ">= 0"),
            ("noisy_user_fraction", 0 <= self.noisy_user_fraction <= 1, "in [0, 1]"),
            ("noise_ratio", 0 <= self.noise_ratio <= 1, "in [0, 1]"),
            ("test_fraction", 0 <= self.test_fraction < 1, "in [0, 1)"),
        )
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(
                    f"SyntheticConfig.{name} must be {rule}, got {getattr(self, name)!r}."
                )
