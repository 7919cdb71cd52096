import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from adaptau_tf.evaluation import RankingEvaluator, ranking_metrics


def csr(rows, cols, shape):
    return sp.csr_matrix(
        (np.ones(len(rows), np.float32), (np.array(rows), np.array(cols))), shape=shape
    )


def tiny_case():
    """3 users, 6 items, d = 1: score(u, i) = u_emb * i_emb.

    Item embeddings are decreasing (item 0 best for positive users), so user
    0 (positive) ranks 0, 1, 2, 3, 4, 5 before masking. Its training items 0 and
    2 must be masked, so its ranking must become 1, 3, 4. User 1 (negative)
    ranks 5, 4, 3, ...; training item 5 masked -> 4, 3, 2. User 2 has no target
    item and must be skipped.
    """
    exclude = csr([0, 0, 1, 2], [0, 2, 5, 1], (3, 6))
    target = csr([0, 0, 1], [1, 4, 0], (3, 6))
    users = np.array([[1.0], [-1.0], [2.0]], np.float32)
    items = np.array([[6.0], [5.0], [4.0], [3.0], [2.0], [1.0]], np.float32)
    return exclude, target, users, items


def test_masks_training_items_and_skips_users_without_targets():
    exclude, target, users, items = tiny_case()
    evaluator = RankingEvaluator(exclude, target, ks=(1, 3))
    assert evaluator.num_users == 2
    ids, top = evaluator.evaluate_top_items(users, items)
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(top, [[1, 3, 4], [4, 3, 2]])
    assert top.dtype == np.int64

    metrics = evaluator.evaluate(users, items)
    # user 0: targets {1, 4}, top3 [1, 3, 4] -> recall@1 1/2, recall@3 1;
    # user 1: target {0} never in top3 -> 0.
    assert metrics["recall@1"] == pytest.approx(0.25)
    assert metrics["recall@3"] == pytest.approx(0.5)
    assert metrics["mrr@3"] == pytest.approx(0.5)
    assert set(metrics) == set(evaluator.metric_names)


def test_matches_dense_numpy_reference_and_accepts_tensors():
    rng = np.random.default_rng(0)
    n, m, d = 50, 40, 8
    exclude = sp.random(n, m, density=0.3, format="csr", random_state=1)
    target = sp.random(n, m, density=0.1, format="csr", random_state=2)
    target = target - target.multiply(exclude.astype(bool))  # no overlap
    target.eliminate_zeros()
    users = rng.normal(size=(n, d)).astype(np.float32)
    items = rng.normal(size=(m, d)).astype(np.float32)
    evaluator = RankingEvaluator(exclude, target, ks=(5, 10), user_batch_size=7)

    ids, top = evaluator.evaluate_top_items(tf.constant(users), tf.Variable(items))
    expected_ids = np.flatnonzero(target.getnnz(axis=1))
    np.testing.assert_array_equal(ids, expected_ids)
    scores = users[ids] @ items.T
    scores[exclude[ids].toarray() != 0] = -np.inf
    np.testing.assert_array_equal(
        top, np.argsort(-scores, axis=1, kind="stable")[:, :10]
    )

    relevant = [target[u].indices for u in ids]
    expected = ranking_metrics(top, relevant, ks=(5, 10))
    assert evaluator.evaluate(users.astype(np.float64), items) == pytest.approx(
        expected
    )


def test_batch_size_invariance():
    rng = np.random.default_rng(3)
    n, m = 30, 25
    exclude = sp.random(n, m, density=0.4, format="csr", random_state=4)
    target = sp.random(n, m, density=0.2, format="csr", random_state=5)
    users = rng.normal(size=(n, 4)).astype(np.float32)
    items = rng.normal(size=(m, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="both excluded and targets"):
        small = RankingEvaluator(exclude, target, ks=(3, 10), user_batch_size=1)
    with pytest.warns(UserWarning):
        large = RankingEvaluator(exclude, target, ks=(3, 10), user_batch_size=1000)
    ids_small, top_small = small.evaluate_top_items(users, items)
    ids_large, top_large = large.evaluate_top_items(users, items)
    np.testing.assert_array_equal(ids_small, ids_large)
    np.testing.assert_array_equal(top_small, top_large)
    assert small.evaluate(users, items) == large.evaluate(users, items)


def test_traced_once():
    exclude, target, users, items = tiny_case()
    evaluator = RankingEvaluator(exclude, target, ks=(2,), user_batch_size=1)
    evaluator.evaluate(users, items)
    evaluator.evaluate(users * 2, items)
    assert evaluator._top_k_batch.experimental_get_tracing_count() == 1


def test_construction_errors():
    exclude, target, _, _ = tiny_case()
    with pytest.raises(TypeError, match="scipy.sparse matrix .* got ndarray"):
        RankingEvaluator(exclude.toarray(), target)
    with pytest.raises(ValueError, match=r"exclude_csr has shape \(3, 6\) .* \(3, 7\)"):
        RankingEvaluator(exclude, csr([0], [6], (3, 7)))
    with pytest.raises(
        ValueError, match="max\\(ks\\) = 7 exceeds the number of items 6"
    ):
        RankingEvaluator(exclude, target, ks=(7,))
    with pytest.raises(ValueError, match="no user with a target item"):
        RankingEvaluator(exclude, csr([], [], (3, 6)), ks=(2,))
    with pytest.raises(ValueError, match="user_batch_size must be >= 1, got 0"):
        RankingEvaluator(exclude, target, ks=(2,), user_batch_size=0)


def test_embedding_shape_errors():
    exclude, target, users, items = tiny_case()
    evaluator = RankingEvaluator(exclude, target, ks=(2,))
    with pytest.raises(
        ValueError, match=r"user_embeddings must have shape \[3, d\].*\(4, 1\)"
    ):
        evaluator.evaluate(np.zeros((4, 1), np.float32), items)
    with pytest.raises(
        ValueError, match=r"item_embeddings must have shape \[6, d\].*\(6,\)"
    ):
        evaluator.evaluate(users, np.zeros(6, np.float32))
    with pytest.raises(ValueError, match=r"differ in width.*\(3, 1\).*\(6, 2\)"):
        evaluator.evaluate(users, np.zeros((6, 2), np.float32))
    with pytest.raises(ValueError, match="NaN or Inf"):
        evaluator.evaluate(users, np.full((6, 1), np.nan, np.float32))
