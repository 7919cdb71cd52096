"""`make_synthetic`: implicit feedback with learnable structure and noisy users."""

from __future__ import annotations

import dataclasses

import numpy as np

from adaptau_tf.data._split import per_user_holdout_mask
from adaptau_tf.data.interaction_data import InteractionData
from adaptau_tf.data.synthetic_config import SyntheticConfig

_BLOCK_ELEMENTS = 4_000_000  # users x items scored at once


def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((rows, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _interaction_counts(
    config: SyntheticConfig, rng: np.random.Generator
) -> np.ndarray:
    """`[num_users]` int64 positives per user: lognormal with the configured mean."""
    sigma = config.interactions_sigma
    mu = np.log(config.interactions_per_user) - 0.5 * sigma**2
    counts = np.floor(np.exp(rng.normal(mu, sigma, size=config.num_users)) + 0.5)
    cap = max(config.min_interactions, config.num_items // 2)
    return np.clip(counts, config.min_interactions, cap).astype(np.int64)


def _sample_positives(
    config: SyntheticConfig, counts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Samples each user's positives without replacement (Gumbel top-k).

    Returns:
        `[sum(counts)]` int64 items, grouped by user in user order.
    """
    users = _unit_rows(rng, config.num_users, config.dim)
    items = _unit_rows(rng, config.num_items, config.dim)
    rank = rng.permutation(config.num_items) + 1.0
    log_popularity = -config.popularity_exponent * np.log(rank)
    prior = config.popularity_weight * log_popularity
    k_max = int(counts.max())
    block = max(1, _BLOCK_ELEMENTS // config.num_items)
    chosen = []
    for start in range(0, config.num_users, block):
        stop = min(start + block, config.num_users)
        logits = users[start:stop] @ items.T / config.temperature + prior
        keys = logits + rng.gumbel(size=logits.shape)
        top = np.argpartition(-keys, k_max - 1, axis=1)[:, :k_max]
        top_keys = np.take_along_axis(keys, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_keys, axis=1), axis=1)
        keep = np.arange(k_max)[None, :] < counts[start:stop, None]
        chosen.append(top[keep])
    return np.concatenate(chosen).astype(np.int64)


def _add_noise(
    users: np.ndarray,
    items: np.ndarray,
    eligible: np.ndarray,
    noisy: np.ndarray,
    config: SyntheticConfig,
    rng: np.random.Generator,
) -> None:
    """Replaces `noise_ratio` of each noisy user's eligible rows in place.

    Replacement items are uniform over the items the user has no clean
    positive for, drawn without replacement, so no pair is duplicated.
    """
    starts = np.searchsorted(users, np.arange(config.num_users + 1))
    all_items = np.arange(config.num_items)
    for user in np.flatnonzero(noisy):
        lo, hi = starts[user], starts[user + 1]
        rows = lo + np.flatnonzero(eligible[lo:hi])
        candidates = np.setdiff1d(all_items, items[lo:hi])
        num_noise = int(np.floor(config.noise_ratio * rows.shape[0] + 0.5))
        num_noise = min(num_noise, candidates.shape[0])
        if num_noise == 0:
            continue
        replaced = rng.choice(rows, size=num_noise, replace=False)
        items[replaced] = rng.choice(candidates, size=num_noise, replace=False)


def make_synthetic(
    config: SyntheticConfig | None = None, **overrides: object
) -> InteractionData:
    """Generates implicit feedback with latent structure, popularity skew and noise.

    1. Unit latent vectors `u` `[num_users, dim]`, `v` `[num_items, dim]`;
       item popularity `p ∝ rank^-popularity_exponent` (random ranks).
    2. Per-user count `k_u` ~ lognormal with mean `interactions_per_user`
       (at least `min_interactions`, at most `num_items // 2`).
    3. Positives sampled without replacement with probability
       `∝ exp(u·v / temperature) * p^popularity_weight` (Gumbel top-k).
    4. `round(noisy_user_fraction * num_users)` users are marked noisy; each
       has `round(noise_ratio * k)` positives replaced by uniformly random items
       it had not chosen (before the split, or in train only if `clean_test`).
    5. Per-user split: `round(test_fraction * k_u)` pairs (at least 1) to test.

    Args:
        config: Generator parameters; defaults to `SyntheticConfig()`.
        **overrides: Fields of `SyntheticConfig` to replace (e.g. `seed=3`).

    Returns:
        `InteractionData` named ``"synthetic"`` with `train` `[n_train, 2]`,
        empty `valid`, `test` `[n_test, 2]` and `noisy_users` `[num_users]`.

    Raises:
        TypeError: If an override is not a `SyntheticConfig` field (the
            message lists the valid ones) or has the wrong type.
        ValueError: If a parameter is out of range.

    Example:
        >>> data = make_synthetic(num_users=500, num_items=300, seed=1)
        >>> data.noisy_users.mean()
        0.2
    """
    config = config if config is not None else SyntheticConfig()
    if not isinstance(config, SyntheticConfig):
        raise TypeError(f"config must be a SyntheticConfig, got {config!r}.")
    valid_keys = [field.name for field in dataclasses.fields(SyntheticConfig)]
    unknown = sorted(set(overrides) - set(valid_keys))
    if unknown:
        raise TypeError(
            f"Unknown SyntheticConfig field(s) {unknown}; valid: {', '.join(valid_keys)}."
        )
    config = dataclasses.replace(config, **overrides)  # re-validates
    rng = np.random.default_rng(config.seed)

    counts = _interaction_counts(config, rng)
    items = _sample_positives(config, counts, rng)
    users = np.repeat(np.arange(config.num_users, dtype=np.int64), counts)

    noisy = np.zeros(config.num_users, dtype=bool)
    num_noisy = int(np.floor(config.noisy_user_fraction * config.num_users + 0.5))
    noisy[rng.choice(config.num_users, size=num_noisy, replace=False)] = True

    if config.clean_test:
        is_test = per_user_holdout_mask(users, config.test_fraction, rng)
        _add_noise(users, items, ~is_test, noisy, config, rng)
    else:
        _add_noise(
            users, items, np.ones(users.shape[0], dtype=bool), noisy, config, rng
        )
        is_test = per_user_holdout_mask(users, config.test_fraction, rng)

    pairs = np.stack([users, items], axis=1)
    return InteractionData(
        num_users=config.num_users,
        num_items=config.num_items,
        train=pairs[~is_test],
        valid=np.zeros((0, 2), dtype=np.int64),
        test=pairs[is_test],
        name="synthetic",
        noisy_users=noisy,
    )
