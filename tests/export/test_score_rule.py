"""The scoring rule (``score="cosine" | "dot"``) on a hand-made case where the two rank apart.

3 users, 4 items, d = 2. User 0 = (1, 0); item 1 = (3, 3) is long but 45° off,
item 0 = (0.9, 0.1) short and nearly aligned: by dot product item 1 wins
(3.0 > 0.9), by cosine item 0 wins (0.994 > 0.707). Every place that ranks
(the model's representations, the evaluator, the SavedModel, the ScaNN index and
the export checker) must agree with NumPy under each rule.
"""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import json

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from adaptau_tf.data import InteractionData
from adaptau_tf.evaluation import RankingEvaluator
from adaptau_tf.export.check import check_in_subprocess
from adaptau_tf.export.saved_model import export_model
from adaptau_tf.export.scann_index import ScannIndex
from adaptau_tf.models import build_model

USERS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]], np.float32)
ITEMS = np.array([[0.9, 0.1], [3.0, 3.0], [0.1, 0.5], [-2.0, -0.5]], np.float32)


def numpy_rank(rule: str) -> np.ndarray:
    """Items of every user, best first, by the rule (independent NumPy)."""
    users, items = USERS.astype(np.float64), ITEMS.astype(np.float64)
    if rule == "cosine":
        users = users / np.linalg.norm(users, axis=1, keepdims=True)
        items = items / np.linalg.norm(items, axis=1, keepdims=True)
    return np.argsort(-(users @ items.T), axis=1, kind="stable")


def hand_made(rule: str):
    """(data, model): MF over the tables above; user 2 has item 3 in train."""
    data = InteractionData(num_users=3, num_items=4,
                           train=np.array([[2, 3], [0, 2], [1, 0]], np.int64),
                           valid=np.zeros((0, 2), np.int64),
                           test=np.array([[0, 0], [0, 1], [1, 1], [2, 2]], np.int64),
                           name="hand-made")
    model = build_model("mf", data, strategy="fixed", embedding_dim=2, negatives="sampled:2",
                        score=rule)
    model.user_embedding.embeddings.assign(USERS)
    model.item_embedding.embeddings.assign(ITEMS)
    return data, model


def test_rules_rank_apart_as_numpy_says():
    assert numpy_rank("dot")[0, 0] == 1 and numpy_rank("cosine")[0, 0] == 0
    for rule in ("cosine", "dot"):
        _, model = hand_made(rule)
        users, items = model.compute_representations()
        got = np.argsort(-(users.numpy() @ items.numpy().T), axis=1, kind="stable")
        np.testing.assert_array_equal(got, numpy_rank(rule))
        # The other rule on request, whatever the model's own.
        other = "dot" if rule == "cosine" else "cosine"
        users, items = model.compute_representations(score=other)
        got = np.argsort(-(users.numpy() @ items.numpy().T), axis=1, kind="stable")
        np.testing.assert_array_equal(got, numpy_rank(other))


def test_evaluator_follows_the_rule():
    # User 0's targets are items 0 and 1, item 2 is masked (train): at K = 1 the
    # rule decides which target is hit.
    exclude = sp.csr_matrix((np.ones(1), ([0], [2])), shape=(3, 4))
    target = sp.csr_matrix((np.ones(2), ([0, 0], [0, 1])), shape=(3, 4))
    evaluator = RankingEvaluator(exclude, target, ks=(1,))
    for rule, best in (("cosine", 0), ("dot", 1)):
        _, model = hand_made(rule)
        _, top = evaluator.evaluate_top_items(*model.compute_representations())
        assert top[0, 0] == best == numpy_rank(rule)[0, 0]


@pytest.mark.parametrize("rule", ["cosine", "dot"])
def test_saved_model_scann_and_checker_follow_the_rule(rule, tmp_path):
    data, model = hand_made(rule)
    path = export_model(model, data, tmp_path, model_name="hand", exclude_seen=False)
    manifest = json.loads((path / "items" / "manifest.json").read_text())
    assert manifest["score"] == rule and manifest["normalized"] == (rule == "cosine")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        user_id=tf.constant([0, 1, 2], tf.int64), k=tf.constant(4, tf.int32))
    np.testing.assert_array_equal(served["item_ids"].numpy(), numpy_rank(rule))
    index = ScannIndex.load(path / "items" / "scann", np.load(path / "items" / "ids.npy"),
                            manifest["scann"]["params"])
    queries = tf.saved_model.load(str(path)).signatures["user_embedding"](
        user_id=tf.constant([0, 1, 2], tf.int64))["embedding"].numpy()
    ids, _ = index.search(queries, k=4)
    np.testing.assert_array_equal(ids, numpy_rank(rule))
    report = check_in_subprocess(path, run_cli=False)
    assert report["ok"], report["failures"]
    assert report["scann"]["recall"] == 1.0


def test_a_tampered_scann_index_fails_the_check(tmp_path):
    """The checker's ScaNN check can fail: an index over other vectors is caught."""
    rng = np.random.default_rng(0)
    data = InteractionData(num_users=30, num_items=60, train=np.array([[0, 0]], np.int64),
                           valid=np.zeros((0, 2), np.int64),
                           test=np.array([[1, 1]], np.int64), name="random")
    model = build_model("mf", data, strategy="fixed", embedding_dim=8, negatives="sampled:2",
                        score="dot")
    model.user_embedding.embeddings.assign(rng.standard_normal((30, 8)).astype(np.float32))
    items = rng.standard_normal((60, 8)).astype(np.float32)
    model.item_embedding.embeddings.assign(items)
    path = export_model(model, data, tmp_path, model_name="random", exclude_seen=False)
    assert check_in_subprocess(path, run_cli=False)["scann"]["recall"] == 1.0
    ScannIndex.build(items[::-1].copy()).save(path / "items" / "scann")
    report = check_in_subprocess(path, run_cli=False, min_scann_recall=0.99)
    assert not report["ok"] and any("ScaNN recall" in f for f in report["failures"])
