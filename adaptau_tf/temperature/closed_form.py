"""Closed-form temperatures of Adap-τ (ALGORITHM.md §2 and §3) as pure functions.

Nothing here touches Keras: the callback in
:mod:`adaptau_tf.callbacks.adaptive_temperature` gathers the inputs and calls
these functions, and the tests check them against independent NumPy/SciPy
computations.

Notation (ALGORITHM.md): ``f(u, i) = cos(e_u, e_i)``; ``A`` the active users
(training count above the 20 % quantile); ``D_A`` their training pairs; ``m``
the number of items. ``μ+``/``σ+²`` are the mean/variance of ``f`` over
``D_A``; ``μ``/``σ²`` over all ``A × items`` pairs.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.special
import tensorflow as tf

#: Default clamp for τ0. The paper's grid is 0.02 … 1.0; the closed form can
#: leave it early in training (a tiny gap gives a tiny τ0), so it is clamped
#: to a slightly wider range. ``τ_u`` inherits a lower bound of ``τ0 / e``
#: from the Lambert-W branch (``W ≥ −1``).
DEFAULT_TAU0_RANGE: tuple[float, float] = (0.01, 2.0)

#: ``lambertw(−1/e)`` is NaN in float64 through rounding; the argument is
#: clamped to ``−1/e + LAMBERTW_EPS`` (ALGORITHM.md §3).
LAMBERTW_EPS: float = 1e-6


#: Pairs scored per step of :func:`score_statistics`: bounds the refresh's
#: memory to two ``[chunk, d]`` gathers (64 MiB each at d = 64) at any scale.
PAIR_CHUNK: int = 1 << 18


@dataclasses.dataclass(frozen=True)
class ScoreStatistics:
    """Moments of the cosine scores that τ0 is computed from.

    Attributes:
        mu_pos: ``μ+``, mean score over the active users' training pairs.
        mu: ``μ``, mean score over all active-user × item pairs.
        var_pos: ``σ+²``, variance of the scores over the active pairs.
        var: ``σ²``, variance over all active-user × item pairs.
        num_active_users: ``|A|``.
        num_items: ``m``.
        num_active_pairs: ``|D_A|``.
    """

    mu_pos: float
    mu: float
    var_pos: float
    var: float
    num_active_users: int
    num_items: int
    num_active_pairs: int

    @property
    def log_ratio(self) -> float:
        """``log(|A| · m / (2 |D_A|))``, the denominator of the mean estimator."""
        return math.log(
            self.num_active_users * self.num_items / (2.0 * self.num_active_pairs)
        )


def active_user_mask(user_counts: np.ndarray, quantile: float = 0.2) -> np.ndarray:
    """Users whose training count is above the ``quantile`` of training counts.

    Args:
        user_counts: ``[num_users]`` training interactions per user.
        quantile: the activity quantile (0.2 in the paper).

    Returns:
        ``[num_users]`` bool mask of active users. If the strict inequality
        leaves nobody (all counts equal), every user with a count > 0 is active.

    Example:
        >>> active_user_mask(np.array([1, 2, 3, 4, 5]), 0.2).tolist()
        [False, False, True, True, True]
    """
    counts = np.asarray(user_counts)
    if counts.ndim != 1:
        raise ValueError(f"user_counts must be 1-D, got shape {counts.shape}")
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1), got {quantile!r}")
    threshold = np.quantile(counts, quantile)
    mask = counts > threshold
    if not mask.any():
        mask = counts > 0
    return mask


def score_statistics(
    user_embeddings: tf.Tensor | np.ndarray,
    item_embeddings: tf.Tensor | np.ndarray,
    pair_users: tf.Tensor | np.ndarray,
    pair_items: tf.Tensor | np.ndarray,
    active_users: tf.Tensor | np.ndarray,
    chunk_size: int = PAIR_CHUNK,
) -> ScoreStatistics:
    """Computes ``μ+, μ, σ+², σ²`` exactly, without an ``n × m`` score matrix.

    ``μ = mean_{u∈A} ê_u · ē`` with ``ē`` the mean item vector, and
    ``σ² = mean_{u∈A} ê_uᵀ C ê_u − μ²`` with ``C = mean_i ê_i ê_iᵀ``.

    Args:
        user_embeddings: ``[num_users, dim]`` normalised user vectors.
        item_embeddings: ``[num_items, dim]`` normalised item vectors.
        pair_users: ``[P]`` user ids of the active users' training pairs.
        pair_items: ``[P]`` item ids of those pairs.
        active_users: ``[num_active]`` ids of the active users.
        chunk_size: pairs scored at a time (bounds memory; the result does
            not depend on it beyond float rounding).

    Returns:
        A :class:`ScoreStatistics`.

    Example:
        >>> u = np.eye(2, dtype=np.float32); i = np.eye(2, dtype=np.float32)
        >>> s = score_statistics(u, i, [0, 1], [0, 1], [0, 1])
        >>> (s.mu_pos, s.mu)
        (1.0, 0.5)
    """
    users = tf.convert_to_tensor(user_embeddings, tf.float32)
    items = tf.convert_to_tensor(item_embeddings, tf.float32)
    if users.shape.rank != 2 or items.shape.rank != 2 or users.shape[1] != items.shape[1]:
        raise ValueError(
            "user_embeddings and item_embeddings must be [n, d] and [m, d], got "
            f"{users.shape} and {items.shape}"
        )
    num_pairs = int(np.shape(pair_users)[0])
    num_active = int(np.shape(active_users)[0])
    if num_pairs == 0 or num_active == 0:
        raise ValueError(
            f"need at least one active user and pair, got {num_active} users and "
            f"{num_pairs} pairs"
        )
    mu_pos, var_pos, mu, second = _moments(
        users,
        items,
        tf.convert_to_tensor(pair_users, tf.int64),
        tf.convert_to_tensor(pair_items, tf.int64),
        tf.convert_to_tensor(active_users, tf.int64),
        int(chunk_size),
    )
    mu = float(mu)
    return ScoreStatistics(
        mu_pos=float(mu_pos),
        mu=mu,
        var_pos=float(var_pos),
        var=max(float(second) - mu * mu, 0.0),
        num_active_users=num_active,
        num_items=int(items.shape[0]),
        num_active_pairs=num_pairs,
    )


@tf.function(reduce_retracing=True)
def _moments(
    users: tf.Tensor,
    items: tf.Tensor,
    pair_users: tf.Tensor,
    pair_items: tf.Tensor,
    active: tf.Tensor,
    chunk_size: int,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    num_pairs = tf.shape(pair_users, out_type=tf.int64)[0]
    total = tf.constant(0.0, tf.float64)
    total_sq = tf.constant(0.0, tf.float64)
    for start in tf.range(0, num_pairs, chunk_size, dtype=tf.int64):
        end = tf.minimum(start + chunk_size, num_pairs)
        scores = tf.reduce_sum(
            tf.gather(users, pair_users[start:end]) * tf.gather(items, pair_items[start:end]),
            axis=-1,
        )
        scores = tf.cast(scores, tf.float64)
        total += tf.reduce_sum(scores)
        total_sq += tf.reduce_sum(scores * scores)
    count = tf.cast(num_pairs, tf.float64)
    mu_pos = total / count
    var_pos = tf.maximum(total_sq / count - mu_pos * mu_pos, 0.0)
    active_vectors = tf.gather(users, active)
    mean_item = tf.reduce_mean(items, axis=0)
    mu = tf.reduce_mean(tf.linalg.matvec(active_vectors, mean_item))
    covariance = tf.matmul(items, items, transpose_a=True) / tf.cast(
        tf.shape(items)[0], tf.float32
    )
    second = tf.reduce_mean(
        tf.reduce_sum(tf.matmul(active_vectors, covariance) * active_vectors, axis=-1)
    )
    return mu_pos, var_pos, mu, second


def tau0_mean(stats: ScoreStatistics) -> float:
    """Mean estimator: ``τ0 = (μ+ − μ) / log(|A| m / (2 |D_A|))``.

    Returns NaN when the gap or the log ratio is not positive, so that the
    caller's guard can keep the previous τ0.

    Example:
        >>> s = ScoreStatistics(0.5, 0.1, 0, 0, 10, 100, 50)
        >>> round(tau0_mean(s), 6) == round(0.4 / math.log(10), 6)
        True
    """
    gap = stats.mu_pos - stats.mu
    ratio = stats.log_ratio
    if not (gap > 0 and ratio > 0):
        return float("nan")
    return gap / ratio


def tau0_mean_variance(stats: ScoreStatistics) -> float:
    """Mean-and-variance estimator of ALGORITHM.md §2.

    ``τ0 = (σ+² − σ²) / (−(μ+ − μ) + sqrt((μ+ − μ)² + 2 (σ+² − σ²) L))`` with
    ``L = log(|A| m / (2|D_A|))``. When ``σ+² = σ²`` this is the limit
    ``(μ+ − μ) / L`` (the mean estimator). It is computed in the
    cancellation-free form ``τ0 = (sqrt(g² + 2 Δ L) + g) / (2 L)`` with
    ``g = μ+ − μ`` and ``Δ = σ+² − σ²``, which equals the formula above
    (multiply its numerator and denominator by ``g + sqrt(g² + 2 Δ L)``).

    Returns NaN for a non-positive gap, a non-positive log ratio or a negative
    discriminant.
    """
    gap = stats.mu_pos - stats.mu
    delta = stats.var_pos - stats.var
    ratio = stats.log_ratio
    if not (gap > 0 and ratio > 0):
        return float("nan")
    discriminant = gap * gap + 2.0 * delta * ratio
    if discriminant < 0:
        return float("nan")
    # Multiply numerator and denominator by (g + sqrt(disc)):
    # Δ / (sqrt(disc) − g) = Δ (sqrt(disc) + g) / (disc − g²) = (sqrt(disc) + g) / (2 L)
    return (math.sqrt(discriminant) + gap) / (2.0 * ratio)


def warmup_tau0(
    num_active_users: int, num_items: int, num_active_pairs: int, prior_gap: float = 0.7
) -> float:
    """The reference code's warm-up τ0: ``prior_gap / log(|A| m / (2|D_A|))``.

    Returns NaN when the log ratio is not positive (data so dense that half
    of all active-user × item pairs are positives), so that the caller's
    guard keeps the previous τ0, as for the data-driven estimators.

    Example:
        >>> round(warmup_tau0(100, 1000, 5000), 4)
        0.3043
    """
    ratio = math.log(num_active_users * num_items / (2.0 * num_active_pairs))
    if ratio <= 0:
        return float("nan")
    return prior_gap / ratio


def clamp_tau0(
    tau0: float, previous: float, tau0_range: tuple[float, float] = DEFAULT_TAU0_RANGE
) -> tuple[float, bool]:
    """Guards a freshly computed τ0.

    Args:
        tau0: the candidate value (may be NaN/inf/non-positive).
        previous: the τ0 in use, kept when ``tau0`` is not usable.
        tau0_range: ``(low, high)`` clamp.

    Returns:
        ``(value, accepted)``: the guarded τ0 and whether the candidate was
        finite and positive (``False`` means the previous value was kept).
    """
    low, high = tau0_range
    if not (0 < low <= high):
        raise ValueError(f"tau0_range must satisfy 0 < low <= high, got {tau0_range!r}")
    if not math.isfinite(tau0) or tau0 <= 0:
        return float(previous), False
    return float(min(max(tau0, low), high)), True


def lambertw_clamped(x: np.ndarray) -> np.ndarray:
    """Principal-branch Lambert W, real part, NaN-proof for any finite or inf input.

    Arguments below ``−1/e`` are clamped to ``−1/e + LAMBERTW_EPS``;
    ``+inf`` maps to a large finite value.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.nan_to_num(x, nan=0.0, posinf=np.finfo(np.float64).max / 4, neginf=-1.0)
    x = np.maximum(x, -1.0 / math.e + LAMBERTW_EPS)
    return np.real(scipy.special.lambertw(x, k=0))


def user_loss_reference(
    user_loss: np.ndarray, has_loss: np.ndarray, margin: str | float = "mean"
) -> float:
    """``m_u``: the mean (or a quantile) of ``L(u)`` over users that have a loss.

    Args:
        user_loss: ``[num_users]`` per-user mean loss ``L(u)`` at τ = 1.
        has_loss: ``[num_users]`` bool, users seen in the previous epoch.
        margin: ``"mean"`` or a quantile in ``[0, 1]``.
    """
    values = np.asarray(user_loss, np.float64)[np.asarray(has_loss, bool)]
    if values.size == 0:
        return float("nan")
    if isinstance(margin, str):
        if margin != "mean":
            raise ValueError(f"margin must be 'mean' or a quantile in [0, 1], got {margin!r}")
        return float(values.mean())
    if not 0.0 <= float(margin) <= 1.0:
        raise ValueError(f"margin quantile must be in [0, 1], got {margin!r}")
    return float(np.quantile(values, float(margin)))


def user_temperatures(
    tau0: float,
    user_loss: np.ndarray,
    has_loss: np.ndarray,
    margin: str | float = "mean",
    two_beta: float = 1.0,
) -> np.ndarray:
    """Per-user temperatures ``τ_u = τ0 · exp(W(max(−1/e, (L(u) − m_u) / (2β))))``.

    Args:
        tau0: the global temperature.
        user_loss: ``[num_users]`` mean loss at τ = 1 over each user's
            training rows of the previous epoch (anything where ``has_loss``
            is False is ignored).
        has_loss: ``[num_users]`` bool.
        margin: ``m_u``: ``"mean"`` (reference default) or a quantile.
        two_beta: ``2β`` (1.0 by default).

    Returns:
        ``[num_users]`` float64 ``τ_u``; users without a loss get ``τ0``.

    Example:
        >>> user_temperatures(0.2, np.array([1.0, 1.0]), np.array([True, True])).tolist()
        [0.2, 0.2]
    """
    if not (math.isfinite(tau0) and tau0 > 0):
        raise ValueError(f"tau0 must be finite and positive, got {tau0!r}")
    if not two_beta > 0:
        raise ValueError(f"two_beta must be positive, got {two_beta!r}")
    loss = np.asarray(user_loss, np.float64)
    mask = np.asarray(has_loss, bool)
    if loss.shape != mask.shape or loss.ndim != 1:
        raise ValueError(
            f"user_loss and has_loss must be 1-D of one shape, got {loss.shape} and {mask.shape}"
        )
    tau = np.full(loss.shape, float(tau0), np.float64)
    if not mask.any():
        return tau
    reference = user_loss_reference(loss, mask, margin)
    w = lambertw_clamped((loss[mask] - reference) / two_beta)
    tau[mask] = tau0 * np.exp(w)
    return tau
