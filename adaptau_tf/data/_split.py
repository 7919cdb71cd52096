"""Private helpers shared by the data modules: pair validation and per-user splits."""

from __future__ import annotations

import numpy as np


def as_pairs(pairs: object, what: str) -> np.ndarray:
    """Converts `pairs` to a C-contiguous `[n, 2]` int64 array or raises.

    Args:
        pairs: Array-like of `(user, item)` rows. An empty array of any shape
            becomes `[0, 2]`.
        what: Name used in error messages (e.g. ``"train"``).

    Returns:
        `[n, 2]` int64 array.

    Raises:
        ValueError: If the array is not `[n, 2]` or holds non-integer values.
    """
    array = np.asarray(pairs)
    if array.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            f"{what} must be an [n, 2] array of (user, item) pairs, got shape "
            f"{array.shape}."
        )
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(
            np.isfinite(array) & (array == np.round(array))
        ):
            array = array.astype(np.int64)
        else:
            raise ValueError(
                f"{what} must hold integer ids, got dtype {array.dtype} "
                f"(first row {array[0].tolist()})."
            )
    return np.ascontiguousarray(array, dtype=np.int64)


def per_user_holdout_mask(
    users: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Chooses a random share of each user's rows to hold out.

    A user with `c` rows holds out `clip(round(fraction * c), 1, c - 1)` rows
    when `c >= 2` and `fraction > 0`; users with fewer than 2 rows hold out
    nothing. Rounding is half-up. The choice is uniform within each user and
    fully determined by `rng`.

    Args:
        users: `[n]` int user id of each row.
        fraction: Share to hold out, in `[0, 1)`.
        rng: Random generator (consumed).

    Returns:
        `[n]` bool mask, True for held-out rows.

    Raises:
        ValueError: If `fraction` is outside `[0, 1)`.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}.")
    n = users.shape[0]
    mask = np.zeros(n, dtype=bool)
    if n == 0 or fraction == 0.0:
        return mask
    # Random order within each user: shuffle, then stable sort by user.
    order = rng.permutation(n)
    order = order[np.argsort(users[order], kind="stable")]
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, n])
    held = np.floor(fraction * counts + 0.5).astype(np.int64)
    held = np.clip(held, 1, np.maximum(counts - 1, 1))
    held[counts < 2] = 0
    rank = np.arange(n) - np.repeat(starts, counts)
    mask[order] = rank < np.repeat(held, counts)
    return mask


def dedup_pairs(pairs: np.ndarray) -> np.ndarray:
    """Drops repeated `(user, item)` rows, keeping first occurrences in order.

    Args:
        pairs: `[n, 2]` int64 non-negative pairs.

    Returns:
        `[k, 2]` int64 pairs, `k <= n`.
    """
    if pairs.shape[0] == 0:
        return pairs
    keys = pairs[:, 0] * (int(pairs[:, 1].max()) + 1) + pairs[:, 1]
    _, first = np.unique(keys, return_index=True)
    if first.shape[0] == pairs.shape[0]:
        return pairs
    return pairs[np.sort(first)]
