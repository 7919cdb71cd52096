"""τ0's score statistics from per-epoch sums (the table-free refresh), as pure NumPy.

:func:`~adaptau_tf.temperature.closed_form.score_statistics` needs every
user's and item's vector. A feature two-tower model has no user table, so the
retrieval layer sums, over the epoch's training rows, the positive scores and
the queries' products with the candidates' mean ``ē`` and second moment ``C``
(:class:`~adaptau_tf.tasks.ScoreAccumulator`). This module turns those sums
into the same :class:`~adaptau_tf.temperature.closed_form.ScoreStatistics`:
with ``c_u`` the user's rows in the epoch (its training pairs, when each pair
is seen once per epoch) and ``A`` the active users by ``c_u``,

* ``μ+ = Σ_{u∈A} Σ s+ / Σ_{u∈A} c_u`` and ``σ+² = Σ_{u∈A} Σ s+² / |D_A| − μ+²``;
* ``μ = mean_{u∈A} (Σ q·ē) / c_u`` and ``σ² = mean_{u∈A} (Σ qᵀCq) / c_u − μ²``
  (for a user whose vector is the same on every row, ``ê_u·ē`` and
  ``ê_uᵀ C ê_u``).
"""

from __future__ import annotations

import numpy as np

from adaptau_tf.temperature.closed_form import ScoreStatistics, active_user_mask


def statistics_from_sums(
    user_counts: np.ndarray,
    user_sums: np.ndarray,
    totals: np.ndarray,
    num_items: int,
    num_users: int,
    activity_quantile: float = 0.2,
) -> ScoreStatistics | None:
    """τ0's statistics from one epoch of accumulated sums.

    Args:
        user_counts: ``[n]`` rows per user in the epoch (zeros when the batches
            carried no user ids).
        user_sums: ``[n, 4]`` per-user ``Σ s+, Σ s+², Σ q·ē, Σ qᵀCq``.
        totals: ``[≥5]`` ``rows, Σ s+, Σ s+², Σ q·ē, Σ qᵀCq`` over all rows.
        num_items: ``m``, the number of candidates ``ē`` and ``C`` average over.
        num_users: ``n``; without user ids every user counts as active
            (``|A| = n``) and every row as an active pair.
        activity_quantile: users with a row count above this quantile are active.

    Returns:
        The statistics, or ``None`` when no row went through the accumulator
        (``totals[0] == 0``: the first epoch, or one trained without it).

    Example:
        >>> s = statistics_from_sums(np.array([2.0, 1.0]), np.array(
        ...     [[1.2, 0.8, 0.4, 0.2], [0.5, 0.25, 0.1, 0.1]]), np.array([3.0, 0, 0, 0, 0]),
        ...     10, 2, 0.0)
        >>> round(s.mu_pos, 3), round(s.mu, 3)
        (0.6, 0.2)
    """
    counts = np.asarray(user_counts, np.float64)
    sums = np.asarray(user_sums, np.float64)
    totals = np.asarray(totals, np.float64)
    if counts.ndim != 1 or sums.shape != (counts.shape[0], 4) or totals.shape[0] < 5:
        raise ValueError(
            f"need user_counts [n], user_sums [n, 4] and totals [>=5], got {counts.shape}, "
            f"{sums.shape} and {totals.shape}"
        )
    if not totals[0] > 0:  # no batch went through the accumulator
        return None
    if counts.sum() > 0:
        active = active_user_mask(counts, activity_quantile)
        rows, per_user = counts[active], sums[active]
        pairs = rows.sum()
        mu_pos = per_user[:, 0].sum() / pairs
        var_pos = per_user[:, 1].sum() / pairs - mu_pos * mu_pos
        mu = float(np.mean(per_user[:, 2] / rows))
        second = float(np.mean(per_user[:, 3] / rows))
        num_active = int(active.sum())
    else:  # no user ids: all rows, every user active
        pairs = totals[0]
        mu_pos, var_pos = totals[1] / pairs, totals[2] / pairs - (totals[1] / pairs) ** 2
        mu, second = totals[3] / pairs, totals[4] / pairs
        num_active = int(num_users)
    return ScoreStatistics(
        mu_pos=float(mu_pos),
        mu=float(mu),
        var_pos=max(float(var_pos), 0.0),
        var=max(float(second - mu * mu), 0.0),
        num_active_users=num_active,
        num_items=int(num_items),
        num_active_pairs=int(round(float(pairs))),
    )
