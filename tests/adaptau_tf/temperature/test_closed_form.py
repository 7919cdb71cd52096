"""Closed-form τ0 and τ_u against independent NumPy/SciPy computations."""

import adaptau_tf  # noqa: F401

# isort: split

import math

import numpy as np
import pytest
import scipy.special

from adaptau_tf.temperature import closed_form as cf


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def embedding_set():
    rng = np.random.default_rng(7)
    users = _unit(rng.normal(size=(6, 32))).astype(np.float32)
    items = _unit(rng.normal(size=(40, 32))).astype(np.float32)
    pairs = np.array([[0, 1], [0, 2], [1, 0], [2, 3], [2, 4], [2, 5], [3, 6], [4, 7],
                      [4, 8], [5, 1], [5, 2], [5, 3]])
    return users, items, pairs


def gap_ok(gap: float, delta: float, log_ratio: float) -> bool:
    """The case the mean-variance formula is defined for (real square root)."""
    return gap > 0 and gap * gap + 2 * delta * log_ratio > 0


def _dense_reference(users, items, pairs, active):
    """Brute force over the dense score matrix."""
    scores = users.astype(np.float64) @ items.astype(np.float64).T
    keep = np.isin(pairs[:, 0], active)
    positive = scores[pairs[keep, 0], pairs[keep, 1]]
    everything = scores[active].ravel()
    return positive.mean(), everything.mean(), positive.var(), everything.var(), keep.sum()


def test_active_user_mask_uses_strict_quantile():
    counts = np.array([1, 1, 2, 5, 8, 3])
    threshold = np.quantile(counts, 0.2)
    np.testing.assert_array_equal(cf.active_user_mask(counts, 0.2), counts > threshold)
    # All equal: the strict inequality would leave nobody; fall back to count > 0.
    np.testing.assert_array_equal(cf.active_user_mask(np.array([2, 2, 0]), 0.2),
                                  [True, True, False])


def test_score_statistics_match_dense_scores(embedding_set):
    users, items, pairs = embedding_set
    active = np.array([0, 2, 4, 5])
    keep = np.isin(pairs[:, 0], active)
    stats = cf.score_statistics(users, items, pairs[keep, 0], pairs[keep, 1], active)
    mu_pos, mu, var_pos, var, num_pairs = _dense_reference(users, items, pairs, active)
    assert stats.mu_pos == pytest.approx(mu_pos, abs=1e-6)
    assert stats.mu == pytest.approx(mu, abs=1e-6)
    assert stats.var_pos == pytest.approx(var_pos, abs=1e-6)
    assert stats.var == pytest.approx(var, abs=1e-6)
    assert (stats.num_active_users, stats.num_items, stats.num_active_pairs) == (4, 40, num_pairs)


def test_score_statistics_are_the_same_in_chunks(embedding_set):
    users, items, pairs = embedding_set
    active = np.arange(6)
    whole = cf.score_statistics(users, items, pairs[:, 0], pairs[:, 1], active)
    # 12 pairs in chunks of 5, 5 and 2.
    chunked = cf.score_statistics(users, items, pairs[:, 0], pairs[:, 1], active, chunk_size=5)
    assert chunked.mu_pos == pytest.approx(whole.mu_pos, abs=1e-9)
    assert chunked.var_pos == pytest.approx(whole.var_pos, abs=1e-9)


def test_tau0_both_estimators_against_numpy(embedding_set):
    users, items, pairs = embedding_set
    # Make positives clearly higher than the rest: users point at their items.
    users = users.copy()
    for u in range(len(users)):
        users[u] = _unit((items[pairs[pairs[:, 0] == u, 1]].sum(0) + 0.3 * users[u])[None])[0]
    active = np.arange(6)
    stats = cf.score_statistics(users, items, pairs[:, 0], pairs[:, 1], active)
    mu_pos, mu, var_pos, var, num_pairs = _dense_reference(users, items, pairs, active)
    log_ratio = math.log(6 * 40 / (2 * num_pairs))
    assert gap_ok(mu_pos - mu, var_pos - var, log_ratio)
    assert cf.tau0_mean(stats) == pytest.approx((mu_pos - mu) / log_ratio, rel=1e-5)
    gap, delta = mu_pos - mu, var_pos - var
    expected = delta / (-gap + math.sqrt(gap * gap + 2 * delta * log_ratio))
    assert cf.tau0_mean_variance(stats) == pytest.approx(expected, rel=1e-4)


def test_mean_variance_reduces_to_mean_when_variances_match():
    stats = cf.ScoreStatistics(0.6, 0.1, 0.02, 0.02, 100, 500, 2000)
    assert cf.tau0_mean_variance(stats) == pytest.approx(cf.tau0_mean(stats), rel=1e-12)


def test_tau0_is_nan_for_non_positive_gap_and_guard_keeps_previous():
    stats = cf.ScoreStatistics(0.1, 0.2, 0.0, 0.0, 10, 100, 20)
    assert math.isnan(cf.tau0_mean(stats))
    assert math.isnan(cf.tau0_mean_variance(stats))
    assert cf.clamp_tau0(float("nan"), 0.3) == (0.3, False)
    assert cf.clamp_tau0(float("inf"), 0.3) == (0.3, False)
    assert cf.clamp_tau0(-1.0, 0.3) == (0.3, False)
    assert cf.clamp_tau0(1e-5, 0.3, (0.01, 1.0)) == (0.01, True)
    assert cf.clamp_tau0(7.0, 0.3, (0.01, 1.0)) == (1.0, True)
    assert cf.clamp_tau0(0.25, 0.3) == (0.25, True)


def test_warmup_tau0_is_prior_over_log_ratio():
    assert cf.warmup_tau0(100, 1000, 5000) == pytest.approx(0.7 / math.log(10.0))
    # Too dense for the closed form: NaN, which the guard turns into "keep previous".
    assert math.isnan(cf.warmup_tau0(10, 10, 100))


def test_tau_u_equals_tau0_when_loss_equals_margin():
    loss = np.array([2.0, 3.0, 4.0])
    tau = cf.user_temperatures(0.2, loss, np.ones(3, bool))
    assert tau[1] == pytest.approx(0.2, abs=1e-15)  # L(u) = mean = m_u
    tau_q = cf.user_temperatures(0.2, loss, np.ones(3, bool), margin=1.0)
    assert tau_q[2] == pytest.approx(0.2, abs=1e-15)  # L(u) = max = the 1.0 quantile


def test_tau_u_against_scipy_formula_and_monotone():
    rng = np.random.default_rng(0)
    loss = rng.uniform(0.5, 6.0, size=50)
    two_beta = 0.6
    tau = cf.user_temperatures(0.15, loss, np.ones(50, bool), two_beta=two_beta)
    arg = np.maximum(-1 / np.e + 1e-6, (loss - loss.mean()) / two_beta)
    expected = 0.15 * np.exp(np.real(scipy.special.lambertw(arg)))
    np.testing.assert_allclose(tau, expected, rtol=1e-12)
    order = np.argsort(loss)
    # Strictly increasing in L(u) above the clamp.
    above = (loss[order] - loss.mean()) / two_beta > -1 / np.e + 1e-6
    assert np.all(np.diff(tau[order][above]) > 0)


def test_tau_u_finite_for_extreme_losses():
    loss = np.array([-1e30, -50.0, -1 / np.e, 0.0, 1e6, 1e300, np.inf])
    tau = cf.user_temperatures(0.1, loss, np.ones(len(loss), bool), margin=0.5)
    assert np.all(np.isfinite(tau)) and np.all(tau > 0)
    # The clamp: W(-1/e) = -1, so the floor is τ0 / e.
    assert tau[0] == pytest.approx(0.1 / np.e, rel=5e-3)
    assert tau[-1] >= tau[-2] >= tau[-3]


def test_users_without_loss_keep_tau0():
    loss = np.array([5.0, 0.0, 1.0, 123.0])
    has = np.array([True, False, True, False])
    tau = cf.user_temperatures(0.3, loss, has)
    assert tau[1] == 0.3 and tau[3] == 0.3
    # The margin is computed over users with a loss only: mean(5, 1) = 3.
    arg = (np.array([5.0, 1.0]) - 3.0) / 1.0
    np.testing.assert_allclose(tau[[0, 2]], 0.3 * np.exp(np.real(scipy.special.lambertw(
        np.maximum(arg, -1 / np.e + 1e-6)))))
    np.testing.assert_array_equal(cf.user_temperatures(0.3, loss, np.zeros(4, bool)), 0.3)


def test_bad_arguments_are_quoted():
    with pytest.raises(ValueError, match="-1.0"):
        cf.user_temperatures(-1.0, np.ones(2), np.ones(2, bool))
    with pytest.raises(ValueError, match="median"):
        cf.user_temperatures(0.1, np.ones(2), np.ones(2, bool), margin="median")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        cf.score_statistics(np.ones((2, 3)), np.ones((4, 2)), [0], [0], [0])
