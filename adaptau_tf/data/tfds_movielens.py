"""`load_tfds_movielens`: MovieLens ratings from TensorFlow Datasets as implicit feedback."""

from __future__ import annotations

import os

import numpy as np

from adaptau_tf.data._split import per_user_holdout_mask
from adaptau_tf.data.interaction_data import InteractionData

SUPPORTED_NAMES = ("movielens/100k-ratings", "movielens/1m-ratings")
_READ_BATCH = 65_536


def _k_core(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Iterative k-core filter over distinct pairs.

    Drops users and items with fewer than `k` pairs, repeatedly, until every
    remaining user and item has at least `k`.

    Args:
        users: `[n]` int64 user ids (contiguous from 0).
        items: `[n]` int64 item ids (contiguous from 0).
        k: Minimum degree; `k <= 1` keeps everything.

    Returns:
        `[n]` bool mask of the rows that survive.
    """
    keep = np.ones(users.shape[0], dtype=bool)
    if k <= 1:
        return keep
    while True:
        user_degree = np.bincount(users[keep], minlength=int(users.max()) + 1)
        item_degree = np.bincount(items[keep], minlength=int(items.max()) + 1)
        new_keep = keep & (user_degree[users] >= k) & (item_degree[items] >= k)
        if np.array_equal(new_keep, keep):
            return keep
        keep = new_keep


def _interactions_from_ratings(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    ratings: np.ndarray,
    min_rating: float | None,
    k_core: int,
    test_fraction: float,
    seed: int,
    name: str,
) -> InteractionData:
    """Turns raw ratings into an implicit-feedback `InteractionData`.

    Steps: keep `rating >= min_rating` (all if None), map ids to ints in
    sorted order, drop repeated pairs, iterative k-core, re-map the surviving
    ids to contiguous ints (still in sorted id order), per-user seeded
    train/test split.

    Args:
        user_ids: `[n]` raw user ids (bytes, str or int).
        item_ids: `[n]` raw item ids.
        ratings: `[n]` float ratings.
        min_rating: Threshold of a positive, or None to keep every rating.
        k_core: Minimum interactions per user and per item.
        test_fraction: Share of each user's pairs held out, in `[0, 1)`.
        seed: Seed of the split.
        name: Name of the result.

    Returns:
        `InteractionData` with empty `valid`.

    Raises:
        ValueError: If the inputs disagree in length or nothing survives.
    """
    user_ids, item_ids = np.asarray(user_ids), np.asarray(item_ids)
    ratings = np.asarray(ratings, dtype=np.float64)
    if not user_ids.shape == item_ids.shape == ratings.shape or user_ids.ndim != 1:
        raise ValueError(
            f"user_ids, item_ids and ratings must be [n] arrays of one length, got "
            f"shapes {user_ids.shape}, {item_ids.shape}, {ratings.shape}."
        )
    total = user_ids.shape[0]
    positive = (
        np.ones(total, dtype=bool) if min_rating is None else ratings >= min_rating
    )
    _, users = np.unique(user_ids[positive], return_inverse=True)
    _, items = np.unique(item_ids[positive], return_inverse=True)
    if users.shape[0]:
        keys = users.astype(np.int64) * (int(items.max()) + 1) + items
        _, first = np.unique(keys, return_index=True)
        first = np.sort(first)
        users, items = users[first].astype(np.int64), items[first].astype(np.int64)
        keep = _k_core(users, items, k_core)
        users, items = users[keep], items[keep]
    if users.shape[0] == 0:
        raise ValueError(
            f"{name}: no interactions left out of {total} ratings after "
            f"min_rating={min_rating!r} ({int(positive.sum())} kept) and k_core={k_core}."
        )
    _, users = np.unique(users, return_inverse=True)
    _, items = np.unique(items, return_inverse=True)
    pairs = np.stack([users, items], axis=1).astype(np.int64)
    is_test = per_user_holdout_mask(
        pairs[:, 0], test_fraction, np.random.default_rng(seed)
    )
    return InteractionData(
        num_users=int(pairs[:, 0].max()) + 1,
        num_items=int(pairs[:, 1].max()) + 1,
        train=pairs[~is_test],
        valid=np.zeros((0, 2), dtype=np.int64),
        test=pairs[is_test],
        name=name,
    )


def load_tfds_movielens(
    name: str = "movielens/1m-ratings",
    min_rating: float | None = 4.0,
    k_core: int = 10,
    test_fraction: float = 0.2,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> InteractionData:
    """Loads MovieLens ratings with `tensorflow_datasets` as implicit feedback.

    Reads `user_id`, `movie_id` (bytes) and `user_rating` of the ``train``
    split (the only one), keeps ratings `>= min_rating`, applies an iterative
    `k_core` filter to users and items, maps the string ids to contiguous ints
    (sorted, so deterministic), drops repeated pairs and splits each user's
    pairs into train/test at random (seeded; see
    `InteractionData.with_validation_split` for the per-user rule).

    Args:
        name: ``"movielens/1m-ratings"`` or ``"movielens/100k-ratings"``.
        min_rating: Smallest rating counted as a positive; None keeps all.
        k_core: Minimum number of interactions per user and per item.
        test_fraction: Share of each user's interactions held out, `[0, 1)`.
        seed: Seed of the train/test split.
        data_dir: TFDS data folder (TFDS default if None).
        download: Whether TFDS may download and prepare the data.

    Returns:
        `InteractionData` named after `name` with `train` `[n_train, 2]`,
        empty `valid` and `test` `[n_test, 2]`.

    Raises:
        ValueError: If `name` is not supported, an argument is out of range or
            no interaction survives the filters.

    Example:
        >>> data = load_tfds_movielens("movielens/100k-ratings", k_core=5)
        >>> print(data.summary())  # doctest: +SKIP
    """
    if name not in SUPPORTED_NAMES:
        raise ValueError(
            f"Unsupported TFDS data set {name!r}; supported: {', '.join(SUPPORTED_NAMES)}."
        )
    if (
        isinstance(k_core, bool)
        or not isinstance(k_core, (int, np.integer))
        or k_core < 0
    ):
        raise ValueError(f"k_core must be a non-negative int, got {k_core!r}.")
    if not 0.0 <= float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}.")

    import tensorflow_datasets as tfds  # slow import: only when used

    dataset = tfds.load(
        name,
        split="train",
        data_dir=None if data_dir is None else os.fspath(data_dir),
        download=download,
    )
    dataset = dataset.map(
        lambda x: (x["user_id"], x["movie_id"], x["user_rating"])
    ).batch(_READ_BATCH)
    user_parts, item_parts, rating_parts = [], [], []
    for users, items, ratings in tfds.as_numpy(dataset):
        user_parts.append(users)
        item_parts.append(items)
        rating_parts.append(ratings)
    if not user_parts:
        raise ValueError(f"{name}: the TFDS train split is empty.")
    return _interactions_from_ratings(
        np.concatenate(user_parts),
        np.concatenate(item_parts),
        np.concatenate(rating_parts),
        min_rating=min_rating,
        k_core=int(k_core),
        test_fraction=test_fraction,
        seed=seed,
        name=name,
    )
