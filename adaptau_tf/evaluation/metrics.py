"""Top-K ranking metrics (pure NumPy) for all-ranking evaluation.

Definitions (ALGORITHM.md section 5), for one user with relevant set ``R`` and
ranked list ``top_items`` (rank 1 first), ``hits@K`` = number of the first ``K``
items that are in ``R``:

- ``recall@K`` = hits@K / |R|
- ``precision@K`` = hits@K / K
- ``hit_rate@K`` = 1 if hits@K > 0 else 0
- ``ndcg@K`` = DCG / IDCG with binary gains, DCG = sum over hit ranks ``r`` of
  ``1 / log2(r + 1)`` and IDCG the same sum over ranks ``1 .. min(|R|, K)``
- ``mrr@K`` = 1 / rank of the first hit within the first ``K``, else 0

All of them are computed for every user at once from a boolean hits matrix
``[U, Kmax]`` built with one sorted search, with no Python loop over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf  # noqa: F401  (package convention: tf.keras is Keras 2)

METRIC_NAMES: tuple[str, ...] = ("recall", "ndcg", "precision", "hit_rate", "mrr")


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Validates the cut-offs and returns them sorted and de-duplicated."""
    try:
        values = [int(k) for k in ks]
    except TypeError as error:
        raise TypeError(f"ks must be a sequence of ints, got {ks!r}") from error
    if not values or any(k < 1 or k != kk for k, kk in zip(values, ks)):
        raise ValueError(
            f"ks must be a non-empty sequence of positive ints, got {ks!r}"
        )
    return tuple(sorted(set(values)))


def _hits_matrix(
    top_items: np.ndarray, relevant: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Builds the hits matrix and the number of relevant items per user.

    Args:
        top_items: ``[U, Kmax]`` int ranked item ids; negative ids are padding
            (never a hit).
        relevant: ``U`` arrays of relevant item ids (non-negative ints).

    Returns:
        ``(hits [U, Kmax] bool, num_relevant [U] int64)``; duplicated relevant
        ids count once.
    """
    top_items = np.asarray(top_items)
    if top_items.ndim != 2 or not np.issubdtype(top_items.dtype, np.integer):
        raise ValueError(
            "top_items must be a 2-D integer array [U, Kmax], got shape "
            f"{top_items.shape} and dtype {top_items.dtype}"
        )
    num_users = top_items.shape[0]
    if len(relevant) != num_users:
        raise ValueError(
            f"relevant has {len(relevant)} entries but top_items has {num_users} rows "
            f"(shape {top_items.shape}); one array of relevant items per user is needed"
        )
    if num_users == 0:
        raise ValueError(f"no users to evaluate: top_items has shape {top_items.shape}")
    top_items = top_items.astype(np.int64, copy=False)

    arrays = [np.asarray(r).reshape(-1) for r in relevant]
    sizes = np.fromiter((a.size for a in arrays), dtype=np.int64, count=num_users)
    empty = np.flatnonzero(sizes == 0)
    if empty.size:
        raise ValueError(
            f"every user needs >= 1 relevant item; {empty.size} user(s) have none "
            f"(row indices {empty[:10].tolist()}{' ...' if empty.size > 10 else ''})"
        )
    flat = np.concatenate(arrays)
    if not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"relevant item ids must be integers, got dtype {flat.dtype}")
    flat = flat.astype(np.int64, copy=False)
    if flat.min() < 0:
        raise ValueError(f"relevant item ids must be >= 0, got {int(flat.min())}")

    # Duplicates inside a row of top_items would count a hit twice.
    valid = top_items >= 0
    sorted_rows = np.sort(
        np.where(valid, top_items, -1 - np.arange(top_items.shape[1])), axis=1
    )
    dup_rows = np.flatnonzero((sorted_rows[:, 1:] == sorted_rows[:, :-1]).any(axis=1))
    if dup_rows.size:
        row = int(dup_rows[0])
        raise ValueError(
            f"top_items rows must not repeat an item; row {row} is {top_items[row].tolist()}"
        )

    # One key per (user, item): user * width + item; sorted search per entry.
    width = int(max(flat.max(), top_items.max(initial=0))) + 1
    owners = np.repeat(np.arange(num_users, dtype=np.int64), sizes)
    keys = np.sort(owners * width + flat)
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    num_relevant = np.bincount(keys // width, minlength=num_users).astype(np.int64)

    queries = np.arange(num_users, dtype=np.int64)[:, None] * width + top_items
    position = np.searchsorted(keys, queries)
    position = np.minimum(position, keys.size - 1)
    hits = (keys[position] == queries) & valid
    return hits, num_relevant


def _metrics_from_hits(
    hits: np.ndarray, num_relevant: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """Per-user metrics at one cut-off from a hits matrix ``[U, Kmax]``."""
    hits_k = hits[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    num_hits = hits_k.sum(axis=1).astype(np.float64)
    dcg = hits_k.astype(np.float64) @ discounts
    idcg = np.cumsum(discounts)[np.minimum(num_relevant, k) - 1]
    any_hit = num_hits > 0
    first_rank = np.argmax(hits_k, axis=1) + 1
    return {
        f"recall@{k}": num_hits / num_relevant,
        f"ndcg@{k}": dcg / idcg,
        f"precision@{k}": num_hits / k,
        f"hit_rate@{k}": any_hit.astype(np.float64),
        f"mrr@{k}": np.where(any_hit, 1.0 / first_rank, 0.0),
    }


def per_user_metrics(
    top_items: np.ndarray, relevant: Sequence[np.ndarray], k: int
) -> dict[str, np.ndarray]:
    """Computes every metric at one cut-off for each user separately.

    Args:
        top_items: ``[U, Kmax]`` int array, row ``u`` the ranked item ids of user
            ``u`` (best first, no repeats; negative ids are padding that never
            hits). ``Kmax >= k``.
        relevant: ``U`` int arrays, the relevant (held-out) items of each user;
            each must hold >= 1 item.
        k: the cut-off.

    Returns:
        ``{"recall@k", "ndcg@k", "precision@k", "hit_rate@k", "mrr@k"}`` mapped
        to float64 arrays ``[U]``; their means are what :func:`ranking_metrics`
        reports.

    Raises:
        ValueError: on a shape mismatch, ``Kmax < k``, a user without relevant
            items, or a repeated item within a row.

    Example:
        >>> per_user_metrics(np.array([[3, 1], [0, 2]]), [np.array([1]),
        ...                  np.array([5])], k=2)["recall@2"]
        array([1., 0.])
    """
    (k,) = _check_ks([k])
    return ranking_metrics_per_user(top_items, relevant, (k,))


def ranking_metrics_per_user(
    top_items: np.ndarray, relevant: Sequence[np.ndarray], ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Like :func:`per_user_metrics` for several cut-offs (one hits matrix)."""
    ks = _check_ks(ks)
    top_items = np.asarray(top_items)
    if top_items.ndim == 2 and top_items.shape[1] < ks[-1]:
        raise ValueError(
            f"top_items has {top_items.shape[1]} columns (shape {top_items.shape}) "
            f"but the largest cut-off is {ks[-1]}"
        )
    hits, num_relevant = _hits_matrix(top_items, relevant)
    result: dict[str, np.ndarray] = {}
    for k in ks:
        result.update(_metrics_from_hits(hits, num_relevant, k))
    return result


def ranking_metrics(
    top_items: np.ndarray,
    relevant: Sequence[np.ndarray],
    ks: Sequence[int] = (10, 20, 50),
) -> dict[str, float]:
    """Averages the top-K ranking metrics over users.

    Args:
        top_items: ``[U, Kmax]`` int array of ranked item ids per user (best
            first, no repeats; negative ids are padding). ``Kmax >= max(ks)``.
        relevant: ``U`` int arrays, the relevant items of each user (>= 1 each).
        ks: cut-offs.

    Returns:
        ``{f"{name}@{k}": mean over users}`` for ``name`` in ``recall``,
        ``ndcg``, ``precision``, ``hit_rate``, ``mrr`` and every ``k`` in
        ``ks`` (plain Python floats).

    Raises:
        ValueError: on a shape mismatch, ``Kmax < max(ks)``, a user without
            relevant items, or a repeated item within a row.

    Example:
        >>> m = ranking_metrics(np.array([[3, 1, 4]]), [np.array([1, 9])], ks=(2,))
        >>> m["recall@2"], m["mrr@2"]
        (0.5, 0.5)
    """
    per_user = ranking_metrics_per_user(top_items, relevant, ks)
    return {name: float(values.mean()) for name, values in per_user.items()}
