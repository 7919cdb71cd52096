"""Long-tail view of recommendation lists: coverage, popularity, exposure Gini.

All functions take the ranked lists ``top_items [U, Kmax]`` of the evaluated
users (e.g. from :meth:`RankingEvaluator.evaluate_top_items`) and look at
the first ``k`` columns (all of them by default). Negative ids are padding
and are ignored.
"""

from __future__ import annotations

import numpy as np


def _top(top_items: np.ndarray, k: int | None) -> np.ndarray:
    top = np.asarray(top_items)
    if top.ndim != 2 or not np.issubdtype(top.dtype, np.integer):
        raise ValueError(
            f"top_items must be a 2-D int array [U, Kmax], got shape {top.shape}, "
            f"dtype {top.dtype}"
        )
    if k is not None:
        if k < 1 or k > top.shape[1]:
            raise ValueError(f"k must be in [1, {top.shape[1]}], got {k}")
        top = top[:, :k]
    return top.astype(np.int64)


def exposure_counts(top_items: np.ndarray, num_items: int, k: int | None = None) -> np.ndarray:
    """How often each item appears in the top-k lists.

    Args:
        top_items: ``[U, Kmax]`` int ranked item ids.
        num_items: ``m``.
        k: cut-off (``Kmax`` by default).

    Returns:
        ``[m]`` int64 counts (sum = number of non-padding entries).

    Example:
        >>> exposure_counts(np.array([[0, 1], [0, 2]]), 4)
        array([2, 1, 1, 0])
    """
    top = _top(top_items, k)
    flat = top[top >= 0]
    if flat.size and flat.max() >= num_items:
        raise ValueError(f"item id {flat.max()} >= num_items = {num_items}")
    return np.bincount(flat, minlength=num_items).astype(np.int64)


def coverage_at_k(top_items: np.ndarray, num_items: int, k: int | None = None) -> float:
    """Item coverage@k: share of the catalogue recommended to at least one user.

    Args:
        top_items: ``[U, Kmax]`` int ranked item ids.
        num_items: ``m`` (catalogue size, the denominator).
        k: cut-off (``Kmax`` by default).

    Returns:
        ``|∪_u top-k(u)| / m`` in ``[0, 1]``.

    Example:
        >>> coverage_at_k(np.array([[0, 1], [0, 2]]), 4)
        0.75
    """
    return float(np.count_nonzero(exposure_counts(top_items, num_items, k)) / num_items)


def average_popularity(
    top_items: np.ndarray, item_counts: np.ndarray, k: int | None = None
) -> float:
    """Average recommendation popularity (ARP).

    Mean over users of the mean training count of their top-k items:
    ``ARP = 1/U Σ_u 1/|L_u| Σ_{i ∈ L_u} c_i`` (Abdollahpouri et al.); users whose
    list is all padding are skipped.

    Args:
        top_items: ``[U, Kmax]`` int ranked item ids.
        item_counts: ``[m]`` training interactions per item.
        k: cut-off (``Kmax`` by default).

    Returns:
        ARP as a float (same unit as ``item_counts``).

    Example:
        >>> average_popularity(np.array([[0, 1], [0, 2]]), np.array([10, 2, 4]))
        6.5
    """
    top = _top(top_items, k)
    counts = np.asarray(item_counts, np.float64)
    valid = top >= 0
    if top.size and top.max() >= counts.size:
        raise ValueError(f"item id {top.max()} >= len(item_counts) = {counts.size}")
    popularity = np.where(valid, counts[np.maximum(top, 0)], 0.0)
    lengths = valid.sum(axis=1)
    keep = lengths > 0
    if not np.any(keep):
        raise ValueError("no recommended items (all padding)")
    return float(np.mean(popularity[keep].sum(axis=1) / lengths[keep]))


def gini_index(exposure: np.ndarray) -> float:
    """Gini index of an exposure distribution over items.

    With the counts sorted ascending ``x_1 <= ... <= x_n``:
    ``G = Σ_i (2i − n − 1) x_i / (n Σ_i x_i)``: 0 when every item is exposed
    equally, ``(n − 1) / n`` when a single item gets all exposure. Items never
    recommended must be included (as zeros).

    Args:
        exposure: ``[m]`` non-negative counts (e.g. :func:`exposure_counts`).

    Returns:
        The Gini index in ``[0, 1)``; 0 for all-zero exposure.

    Example:
        >>> gini_index(np.array([0, 0, 0, 4]))
        0.75
        >>> round(gini_index(np.array([1, 2, 3])), 4)
        0.2222
    """
    x = np.sort(np.asarray(exposure, np.float64).reshape(-1))
    if x.size == 0:
        raise ValueError("exposure is empty")
    if x[0] < 0:
        raise ValueError(f"exposure must be non-negative, got min {x[0]}")
    total = x.sum()
    if total == 0:
        return 0.0
    n = x.size
    ranks = np.arange(1, n + 1)
    return float(np.sum((2 * ranks - n - 1) * x) / (n * total))
