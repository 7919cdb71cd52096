"""Item popularity groups and per-group ranking metrics (pure NumPy).

The paper (ALGORITHM.md §7) splits items into 10 groups by their training
frequency and follows the embedding magnitude and the Recall of each group.
Group ``0`` holds the *least* popular items, group ``G - 1`` the most popular.

Two grouping schemes:

* ``"interactions"`` (the paper's, default): items sorted by training count,
  least popular first (ties by item id, so the split is deterministic); the
  cumulative count is cut into ``G`` equal shares of the total, and an item
  belongs to the share that contains the *middle* of its interactions:
  ``group = floor(G · (S_i − c_i / 2) / total)`` with ``S_i`` the cumulative
  count up to and including item ``i``. Every group then holds about
  ``total / G`` training interactions; a single item heavier than one share
  leaves the groups it spans empty (they report NaN). Items that never occur
  in training (``c_i = 0``) fall in group 0. With no interactions at all the
  scheme falls back to ``"items"``.
* ``"items"``: equal item counts: the ``r``-th item in that order (0-based)
  goes to group ``floor(G · r / m)``.

Per-group metrics (:func:`group_metrics`) decompose the overall metric the
way the authors' earlier work (SGL, Wu et al. 2021) does: for user ``u`` with
test items ``R_u`` and top-K list ``L_u``,
``recall_g(u) = |L_u ∩ R_u ∩ I_g| / |R_u|`` and ``ndcg_g(u)`` is the DCG of
the hits that fall in group ``g`` divided by the user's full IDCG; both are
averaged over the evaluated users, so the groups **sum to** the overall
Recall@K / NDCG@K. The within-group view ``group_recall`` (hits on test
items of group ``g`` / number of test interactions of group ``g``, pooled
over users) answers "how much of group g's test interactions are found".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCHEMES: tuple[str, ...] = ("interactions", "items")


def popularity_order(item_counts: np.ndarray) -> np.ndarray:
    """Item ids sorted by training count, least popular first, ties by id.

    Args:
        item_counts: ``[m]`` non-negative training counts.

    Returns:
        ``[m]`` int64 item ids.
    """
    counts = _check_counts(item_counts)
    return np.lexsort((np.arange(counts.size), counts)).astype(np.int64)


def popularity_groups(
    item_counts: np.ndarray, num_groups: int = 10, scheme: str = "interactions"
) -> np.ndarray:
    """Assigns every item to a popularity group (0 = least popular).

    Args:
        item_counts: ``[m]`` non-negative training interactions per item.
        num_groups: ``G`` (10 in the paper).
        scheme: ``"interactions"`` (equal total interactions per group, the
            paper's) or ``"items"`` (equal item counts). See the module
            docstring for the exact cut and the tie handling.

    Returns:
        ``[m]`` int64 group ids in ``[0, G)``, non-decreasing in popularity.

    Raises:
        ValueError: on a bad scheme, ``G < 1`` or negative counts.

    Example:
        >>> popularity_groups(np.array([1, 1, 1, 1, 4, 8]), num_groups=2)
        array([0, 0, 0, 0, 0, 1])
        >>> popularity_groups(np.array([1, 1, 1, 1, 4, 8]), 2, scheme="items")
        array([0, 0, 0, 1, 1, 1])
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer) \
            or num_groups < 1:
        raise ValueError(f"num_groups must be an int >= 1, got {num_groups!r}")
    counts = _check_counts(item_counts).astype(np.float64)
    order = popularity_order(counts)
    total = counts.sum()
    groups = np.empty(counts.size, np.int64)
    if scheme == "items" or total == 0:
        groups[order] = (num_groups * np.arange(counts.size)) // max(counts.size, 1)
        return groups
    sorted_counts = counts[order]
    middle = np.cumsum(sorted_counts) - sorted_counts / 2.0
    groups[order] = np.clip(np.floor(num_groups * middle / total), 0, num_groups - 1)
    return groups


def group_mean_norms(
    embeddings: np.ndarray, item_groups: np.ndarray, num_groups: int | None = None
) -> np.ndarray:
    """Mean L2 norm of the item vectors of each group.

    Args:
        embeddings: ``[m, d]`` item vectors (raw, before normalisation).
        item_groups: ``[m]`` group ids from :func:`popularity_groups`.
        num_groups: ``G``; defaults to ``max(item_groups) + 1``.

    Returns:
        ``[G]`` float64; NaN for an empty group.

    Example:
        >>> group_mean_norms(np.array([[3., 4.], [1., 0.]]), np.array([1, 0]))
        array([1., 5.])
    """
    vectors = np.asarray(embeddings, np.float64)
    groups = np.asarray(item_groups, np.int64)
    if vectors.ndim != 2 or vectors.shape[0] != groups.shape[0]:
        raise ValueError(
            f"embeddings must be [m, d] with m = len(item_groups) = {groups.shape[0]}, "
            f"got shape {vectors.shape}"
        )
    size = _num_groups(groups, num_groups)
    norms = np.linalg.norm(vectors, axis=1)
    sums = np.bincount(groups, weights=norms, minlength=size)
    counts = np.bincount(groups, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def group_metrics(
    top_items: np.ndarray,
    relevant: Sequence[np.ndarray],
    item_groups: np.ndarray,
    k: int = 20,
    num_groups: int | None = None,
) -> dict[str, np.ndarray]:
    """Recall@K and NDCG@K split by the popularity group of the test items.

    Args:
        top_items: ``[U, Kmax]`` int ranked item ids per evaluated user (best
            first, no repeats), ``Kmax >= k``; negative ids are padding.
        relevant: ``U`` int arrays, the test items of each user (each
            non-empty).
        item_groups: ``[m]`` group id of every item.
        k: the cut-off ``K``.
        num_groups: ``G``; defaults to ``max(item_groups) + 1``.

    Returns:
        ``[G]`` float64 arrays:

        * ``"recall"``: mean over users of ``|L_u ∩ R_u ∩ I_g| / |R_u|``
          (sums over ``g`` to the overall Recall@K);
        * ``"ndcg"``: mean over users of group-``g`` DCG / full IDCG (sums to
          the overall NDCG@K);
        * ``"group_recall"``: hits on group-``g`` test interactions / number of
          group-``g`` test interactions (NaN when there are none);
        * ``"test_interactions"``, ``"hits"``, ``"recommended"`` (items of the
          group in the top-K lists): counts.

    Example:
        >>> out = group_metrics(np.array([[0, 1]]), [np.array([1, 2])],
        ...                     np.array([0, 0, 1]), k=2)
        >>> out["recall"], out["group_recall"]
        (array([0.5, 0. ]), array([1., 0.]))
    """
    top = np.asarray(top_items)
    groups = np.asarray(item_groups, np.int64)
    if top.ndim != 2 or top.shape[1] < k or k < 1:
        raise ValueError(f"top_items must be [U, Kmax] with Kmax >= k = {k}, got {top.shape}")
    if len(relevant) != top.shape[0] or top.shape[0] == 0:
        raise ValueError(
            f"relevant has {len(relevant)} entries but top_items has {top.shape[0]} rows"
        )
    size = _num_groups(groups, num_groups)
    top = top[:, :k].astype(np.int64)
    num_users = top.shape[0]
    rows = np.repeat(np.arange(num_users), [np.asarray(r).size for r in relevant])
    flat = np.concatenate([np.asarray(r, np.int64).reshape(-1) for r in relevant])
    if flat.size and (flat.min() < 0 or flat.max() >= groups.size):
        raise ValueError(f"relevant item ids must be in [0, {groups.size})")
    sizes = np.bincount(rows, minlength=num_users)
    if np.any(sizes == 0):
        raise ValueError("every user needs >= 1 relevant item")
    # hits[u, r]: top[u, r] is relevant for u (sorted search on user * m + item keys).
    m = groups.size
    keys = np.sort(rows * m + flat)
    valid = top >= 0
    query = np.where(valid, np.arange(num_users)[:, None] * m + np.maximum(top, 0), -1)
    pos = np.clip(np.searchsorted(keys, query), 0, max(keys.size - 1, 0))
    hits = valid & (keys[pos] == query) if keys.size else np.zeros_like(valid)
    top_groups = np.where(valid, groups[np.maximum(top, 0)], 0)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discount)[np.minimum(sizes, k) - 1]
    recall = np.zeros(size)
    ndcg = np.zeros(size)
    hit_counts = np.zeros(size)
    for g in range(size):
        in_group = hits & (top_groups == g)
        per_user = in_group.sum(axis=1)
        hit_counts[g] = per_user.sum()
        recall[g] = np.mean(per_user / sizes)
        ndcg[g] = np.mean((in_group * discount).sum(axis=1) / ideal)
    test_counts = np.bincount(groups[flat], minlength=size).astype(np.float64)
    recommended = np.bincount(top_groups[valid], minlength=size).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        within = np.where(test_counts > 0, hit_counts / np.maximum(test_counts, 1), np.nan)
    return {"recall": recall, "ndcg": ndcg, "group_recall": within,
            "test_interactions": test_counts, "hits": hit_counts, "recommended": recommended}


def _check_counts(item_counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(item_counts)
    if counts.ndim != 1:
        raise ValueError(f"item_counts must be 1-D [m], got shape {counts.shape}")
    if counts.size and counts.min() < 0:
        raise ValueError(f"item_counts must be non-negative, got min {counts.min()}")
    return counts


def _num_groups(groups: np.ndarray, num_groups: int | None) -> int:
    if groups.ndim != 1:
        raise ValueError(f"item_groups must be 1-D [m], got shape {groups.shape}")
    if groups.size and groups.min() < 0:
        raise ValueError("item_groups must be non-negative")
    size = int(groups.max()) + 1 if groups.size else 0
    if num_groups is not None:
        if num_groups < size:
            raise ValueError(f"num_groups={num_groups} < max(item_groups) + 1 = {size}")
        size = int(num_groups)
    return size
