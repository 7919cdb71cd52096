"""False-positive noise for robustness experiments (paper §7, Table 4).

A false positive of user ``u`` is an item drawn uniformly from the items
``u`` has **no** positive for in train, valid or test, added to ``u``'s
training pairs. User ``u`` with ``c_u`` training pairs and noise ratio ``r``
receives exactly ``round_half_up(r · c_u) = floor(r · c_u + 0.5)`` distinct
false positives, or all of its non-positive items when fewer are left.

* global setting: one ratio for every user (0.1 … 0.5 in the paper);
* local setting: users are split at random into equal groups (``numpy``
  ``array_split`` of a seeded permutation) and group ``g`` gets ratio
  ``ratios[g]`` (10/20/30/40 % in the paper).

Everything is determined by ``seed``; validation and test pairs are never
changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from adaptau_tf.data import InteractionData


def noise_counts(train_user_counts: np.ndarray, ratios: np.ndarray | float) -> np.ndarray:
    """False positives per user before the availability cap.

    Args:
        train_user_counts: ``[n]`` training pairs per user.
        ratios: a scalar or ``[n]`` per-user ratios (>= 0).

    Returns:
        ``[n]`` int64 ``floor(ratio · c_u + 0.5)``.

    Example:
        >>> noise_counts(np.array([10, 5, 4, 0]), 0.1)
        array([1, 1, 0, 0])
    """
    counts = np.asarray(train_user_counts, np.float64)
    r = np.broadcast_to(np.asarray(ratios, np.float64), counts.shape)
    if np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError(f"noise ratios must be finite and >= 0, got {ratios!r}")
    return np.floor(r * counts + 0.5 + 1e-9).astype(np.int64)


def _positives(data: InteractionData) -> sp.csr_matrix:
    merged = (data.train_csr + data.valid_csr + data.test_csr).tocsr()
    merged.sum_duplicates()
    merged.sort_indices()
    return merged


def _sample_user(
    rng: np.random.Generator, k: int, positives: np.ndarray, num_items: int
) -> np.ndarray:
    """``k`` distinct items outside ``positives`` (sorted), uniformly at random."""
    available = num_items - positives.size
    k = min(k, available)
    if k <= 0:
        return np.zeros(0, np.int64)
    if 2 * k > available:  # dense: choose from the explicit complement
        complement = np.setdiff1d(np.arange(num_items), positives, assume_unique=True)
        return rng.choice(complement, size=k, replace=False).astype(np.int64)
    chosen = np.zeros(0, np.int64)
    while chosen.size < k:  # rejection: uniform without replacement over the complement
        draw = rng.integers(0, num_items, size=2 * (k - chosen.size) + 8)
        draw = draw[~np.isin(draw, positives, assume_unique=False)]
        merged = np.concatenate([chosen, draw])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    return chosen[:k]


def false_positive_pairs(
    data: InteractionData, user_ratios: np.ndarray | float, seed: int = 0
) -> np.ndarray:
    """Draws the false-positive ``(user, item)`` pairs for per-user ratios.

    Args:
        data: the clean data (its train/valid/test positives are excluded).
        user_ratios: a scalar or ``[n]`` noise ratio per user.
        seed: seed of the draw (users are visited in id order).

    Returns:
        ``[k, 2]`` int64 pairs, grouped by user in id order.

    Example:
        >>> pairs = false_positive_pairs(data, 0.2, seed=0)
    """
    wanted = noise_counts(data.train_user_counts, user_ratios)
    positives = _positives(data)
    rng = np.random.default_rng(seed)
    blocks = []
    for user in np.flatnonzero(wanted):
        row = positives.indices[positives.indptr[user]:positives.indptr[user + 1]]
        items = _sample_user(rng, int(wanted[user]), row.astype(np.int64), data.num_items)
        blocks.append(np.stack([np.full(items.size, user, np.int64), items], axis=1))
    return np.concatenate(blocks) if blocks else np.zeros((0, 2), np.int64)


def inject_noise(
    data: InteractionData,
    ratio: float,
    seed: int = 0,
    users: np.ndarray | Sequence[int] | None = None,
) -> InteractionData:
    """Adds false-positive training items at one ratio (the global setting).

    Args:
        data: the clean data.
        ratio: noise ratio ``r >= 0`` (share of each user's training count).
        seed: seed of the draw.
        users: optional user ids (or ``[n]`` bool mask) to corrupt; all users
            by default.

    Returns:
        A copy whose ``train`` is the clean training pairs followed by the
        false positives, ``noisy_users`` marking the users that received any
        (or'ed with the input's), and ``name`` suffixed with ``+noise<r>``.

    Example:
        >>> noisy = inject_noise(data, 0.1, seed=0)
        >>> len(noisy.train) - len(data.train)  # Σ_u floor(0.1 c_u + 0.5)
    """
    ratios = np.zeros(data.num_users)
    if users is None:
        ratios[:] = ratio
    else:
        selected = np.asarray(users)
        ratios[selected if selected.dtype != bool else np.flatnonzero(selected)] = ratio
    return _with_noise(data, ratios, seed, f"+noise{ratio:g}")


def inject_local_noise(
    data: InteractionData,
    ratios: Sequence[float] = (0.1, 0.2, 0.3, 0.4),
    seed: int = 0,
) -> tuple[InteractionData, np.ndarray]:
    """Splits users at random into ``len(ratios)`` equal groups, group ``g`` at ``ratios[g]``.

    Args:
        data: the clean data.
        ratios: one noise ratio per user group.
        seed: seed of the split and of the draw.

    Returns:
        ``(noisy data, user_groups [n] int64)``: the group index of every
        user (sizes differ by at most one).

    Example:
        >>> noisy, groups = inject_local_noise(data, (0.1, 0.2, 0.3, 0.4), seed=0)
    """
    if not len(ratios):
        raise ValueError("ratios is empty")
    rng = np.random.default_rng(seed)
    groups = np.empty(data.num_users, np.int64)
    for g, members in enumerate(np.array_split(rng.permutation(data.num_users), len(ratios))):
        groups[members] = g
    per_user = np.asarray(ratios, np.float64)[groups]
    label = "+local" + "/".join(f"{r:g}" for r in ratios)
    return _with_noise(data, per_user, seed + 1, label), groups


def _with_noise(
    data: InteractionData, ratios: np.ndarray, seed: int, suffix: str
) -> InteractionData:
    pairs = false_positive_pairs(data, ratios, seed)
    noisy = np.array(data.noisy_users, copy=True)
    noisy[pairs[:, 0]] = True
    return dataclasses.replace(
        data, train=np.concatenate([data.train, pairs]), noisy_users=noisy,
        name=data.name + suffix,
    )
