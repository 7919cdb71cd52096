"""What Adap-τ does: popularity groups, long-tail exposure and noise injection.

Example:
    >>> from adaptau_tf.analysis import popularity_groups, group_metrics, gini_index
    >>> groups = popularity_groups(data.train_item_counts, num_groups=10)
"""

from adaptau_tf.analysis.exposure import (
    average_popularity,
    coverage_at_k,
    exposure_counts,
    gini_index,
)
from adaptau_tf.analysis.noise import (
    false_positive_pairs,
    inject_local_noise,
    inject_noise,
    noise_counts,
)
from adaptau_tf.analysis.popularity import (
    SCHEMES,
    group_mean_norms,
    group_metrics,
    popularity_groups,
    popularity_order,
)

__all__ = [
    "SCHEMES",
    "average_popularity",
    "coverage_at_k",
    "exposure_counts",
    "false_positive_pairs",
    "gini_index",
    "group_mean_norms",
    "group_metrics",
    "inject_local_noise",
    "inject_noise",
    "noise_counts",
    "popularity_groups",
    "popularity_order",
]
