import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import math
import time

import numpy as np
import pytest

from adaptau_tf.evaluation import per_user_metrics, ranking_metrics


def naive_metrics(top_items, relevant, k):
    """Straightforward per-user reference implementation with Python sets."""
    out = {name: [] for name in ("recall", "ndcg", "precision", "hit_rate", "mrr")}
    for row, rel in zip(top_items, relevant):
        rel = {int(i) for i in rel}
        ranked = [int(i) for i in row[:k]]
        hit_ranks = [r for r, item in enumerate(ranked, start=1) if item in rel]
        dcg = sum(1.0 / math.log2(r + 1) for r in hit_ranks)
        idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        out["recall"].append(len(hit_ranks) / len(rel))
        out["ndcg"].append(dcg / idcg)
        out["precision"].append(len(hit_ranks) / k)
        out["hit_rate"].append(1.0 if hit_ranks else 0.0)
        out["mrr"].append(1.0 / hit_ranks[0] if hit_ranks else 0.0)
    return {f"{name}@{k}": np.array(values) for name, values in out.items()}


# Hand-made case.
# user A: ranked [5, 2, 7, 1, 9], relevant {2, 9, 4}: hits at ranks 2 and 5.
# user B: ranked [3, 8, 0, 6, 4], relevant {0} (fewer than K): hit at rank 3.
# user C: ranked [1, 2, 3, 4, 5], relevant {6, 7}: no hit.
TOP = np.array([[5, 2, 7, 1, 9], [3, 8, 0, 6, 4], [1, 2, 3, 4, 5]])
REL = [np.array([2, 9, 4]), np.array([0]), np.array([6, 7])]
L3, L4, L6 = math.log2(3), math.log2(4), math.log2(6)


def test_hand_worked_values_at_3():
    per_user = per_user_metrics(TOP, REL, k=3)
    # A @3: 1 hit (rank 2) of 3 relevant -> recall 1/3 = 0.3333, mrr 1/2;
    #   DCG = 1/log2(3) = 0.63093, IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.13093,
    #   NDCG = 0.63093 / 2.13093 = 0.29608.
    # B @3: 1 hit (rank 3) of 1 relevant -> recall 1, mrr 1/3;
    #   DCG = 1/log2(4) = 0.5, IDCG over min(1, 3) = 1 position = 1 -> NDCG 0.5.
    # C: zeros everywhere.
    np.testing.assert_allclose(per_user["recall@3"], [1 / 3, 1.0, 0.0])
    np.testing.assert_allclose(per_user["ndcg@3"], [0.29608, 0.5, 0.0], atol=1e-5)
    np.testing.assert_allclose(per_user["ndcg@3"][0], (1 / L3) / (1 + 1 / L3 + 1 / L4))
    np.testing.assert_allclose(per_user["precision@3"], [1 / 3, 1 / 3, 0.0])
    np.testing.assert_allclose(per_user["hit_rate@3"], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(per_user["mrr@3"], [0.5, 1 / 3, 0.0])

    averaged = ranking_metrics(TOP, REL, ks=(3,))
    # mean recall@3 = (1/3 + 1 + 0) / 3 = 0.44444; mean mrr@3 = (1/2 + 1/3) / 3 = 0.27778
    assert averaged["recall@3"] == pytest.approx(0.44444, abs=1e-5)
    assert averaged["mrr@3"] == pytest.approx(0.27778, abs=1e-5)
    assert averaged["ndcg@3"] == pytest.approx((0.29608 + 0.5) / 3, abs=1e-5)
    assert averaged["hit_rate@3"] == pytest.approx(2 / 3)


def test_hand_worked_values_at_5():
    per_user = per_user_metrics(TOP, REL, k=5)
    # A @5: hits at ranks 2 and 5 -> recall 2/3, precision 2/5;
    #   DCG = 1/log2(3) + 1/log2(6) = 0.63093 + 0.38685 = 1.01778,
    #   IDCG over min(3, 5) = 3 positions = 2.13093 -> NDCG = 0.47762.
    np.testing.assert_allclose(per_user["recall@5"], [2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(per_user["ndcg@5"], [0.47762, 0.5, 0.0], atol=1e-5)
    np.testing.assert_allclose(
        per_user["ndcg@5"][0], (1 / L3 + 1 / L6) / (1 + 1 / L3 + 1 / L4)
    )
    np.testing.assert_allclose(per_user["precision@5"], [0.4, 0.2, 0.0])
    np.testing.assert_allclose(per_user["mrr@5"], [0.5, 1 / 3, 0.0])


def test_keys_and_means_match_per_user():
    result = ranking_metrics(TOP, REL, ks=(5, 1, 3))
    expected_keys = {
        f"{name}@{k}"
        for name in ("recall", "ndcg", "precision", "hit_rate", "mrr")
        for k in (1, 3, 5)
    }
    assert set(result) == expected_keys
    assert all(isinstance(v, float) for v in result.values())
    for k in (1, 3, 5):
        for key, values in per_user_metrics(TOP, REL, k).items():
            assert result[key] == pytest.approx(values.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_naive(seed):
    rng = np.random.default_rng(seed)
    num_users, num_items, k_max = 40, 30, 12
    top = np.stack([rng.permutation(num_items)[:k_max] for _ in range(num_users)])
    relevant = [
        rng.integers(0, num_items, size=rng.integers(1, 25)) for _ in range(num_users)
    ]  # may contain duplicates: they count once
    for k in (1, 5, 12):
        fast = per_user_metrics(top, relevant, k)
        slow = naive_metrics(top, relevant, k)
        assert set(fast) == set(slow)
        for key in slow:
            np.testing.assert_allclose(fast[key], slow[key], rtol=1e-12, err_msg=key)


def test_negative_ids_are_padding():
    top = np.array([[4, -1, -1], [-1, -1, -1]])
    per_user = per_user_metrics(top, [np.array([4, 0]), np.array([0])], k=3)
    np.testing.assert_allclose(per_user["recall@3"], [0.5, 0.0])


def test_six_thousand_users_fast():
    rng = np.random.default_rng(0)
    num_users, num_items = 6022, 3043
    offsets = rng.integers(0, num_items, size=(num_users, 1))
    top = (offsets + rng.permutation(num_items)[:50]) % num_items  # distinct per row
    relevant = [
        rng.choice(num_items, rng.integers(1, 60), replace=False)
        for _ in range(num_users)
    ]
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        ranking_metrics(top, relevant, ks=(10, 20, 50))
        best = min(best, time.perf_counter() - start)
    assert best < 0.2, f"ranking_metrics took {best:.3f} s for {num_users} users"


def test_errors_quote_inputs():
    with pytest.raises(ValueError, match=r"3 columns .* largest cut-off is 5"):
        ranking_metrics(TOP[:, :3], REL, ks=(3, 5))
    with pytest.raises(
        ValueError, match=r"1 user\(s\) have none \(row indices \[1\]\)"
    ):
        ranking_metrics(
            TOP, [np.array([1]), np.array([], dtype=np.int64), np.array([2])], ks=(3,)
        )
    with pytest.raises(
        ValueError, match="relevant has 2 entries but top_items has 3 rows"
    ):
        ranking_metrics(TOP, REL[:2], ks=(3,))
    with pytest.raises(
        ValueError, match=r"must not repeat an item; row 0 is \[1, 1, 2\]"
    ):
        ranking_metrics(np.array([[1, 1, 2]]), [np.array([1])], ks=(3,))
    with pytest.raises(ValueError, match=r"2-D integer array .* shape \(5,\)"):
        ranking_metrics(np.arange(5), [np.array([1])], ks=(3,))
    with pytest.raises(ValueError, match="positive ints, got"):
        ranking_metrics(TOP, REL, ks=(0, 3))
    with pytest.raises(ValueError, match="must be >= 0, got -2"):
        ranking_metrics(TOP, [np.array([-2]), np.array([1]), np.array([2])], ks=(3,))
