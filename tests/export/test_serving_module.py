import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import numpy as np
import tensorflow as tf

from adaptau_tf.export.serving_module import ServingModule, reference_topk, seen_table


def tiny_module():
    """2 users, 4 items, d = 3: user 0 has seen items 0-2, user 1 item 3 (twice)."""
    users = np.eye(2, 3, dtype=np.float32)
    items = np.eye(4, 3, dtype=np.float32)
    row_splits, seen = seen_table(np.array([[0, 0], [0, 1], [0, 2], [1, 3], [1, 3]]), 2)
    return users, items, row_splits, seen


def test_seen_table_is_csr_without_duplicates():
    _, _, row_splits, seen = tiny_module()
    np.testing.assert_array_equal(row_splits, [0, 3, 4])
    np.testing.assert_array_equal(seen, [0, 1, 2, 3])
    assert row_splits.dtype == seen.dtype == np.int64


def test_k_is_a_real_input_and_pads_when_unseen_items_run_out():
    users, items, row_splits, seen = tiny_module()
    module = ServingModule(users, items, np.arange(4, dtype=np.int64), row_splits, seen)
    for k in (1, 4):
        out = module.serve(tf.constant([0, 1], tf.int64), tf.constant(k, tf.int32))
        assert out["item_ids"].shape == (2, k)
    np.testing.assert_array_equal(out["item_ids"][0], [3, -1, -1, -1])
    assert np.all(np.isneginf(out["scores"][0, 1:]))
    np.testing.assert_array_equal(out["item_ids"][1][:1], [1])


def test_graph_equals_numpy_reference():
    rng = np.random.default_rng(0)
    users = rng.standard_normal((6, 4)).astype(np.float32)
    items = rng.standard_normal((9, 4)).astype(np.float32)
    row_splits, seen = seen_table(rng.integers(0, [6, 9], size=(15, 2)), 6)
    module = ServingModule(users, items, np.arange(9, dtype=np.int64), row_splits, seen)
    user_ids = np.array([5, 0, 3, 3])
    out = module.serve(tf.constant(user_ids, tf.int64), tf.constant(4, tf.int32))
    rows, scores = reference_topk(users, items, user_ids, 4, row_splits, seen)
    np.testing.assert_array_equal(out["item_ids"], np.where(np.isinf(scores), -1, rows))
    np.testing.assert_allclose(out["scores"], scores, atol=1e-6)
