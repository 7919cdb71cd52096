"""adaptau-check-export on export_two_tower exports: passes a good one, names each defect."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.export.check import check_in_subprocess, checker_for, main
from adaptau_tf.export.two_tower import export_two_tower, pick_sample_queries
from adaptau_tf.export.two_tower_check import TwoTowerExportChecker
from adaptau_tf.layers import L2Normalization

USERS = [f"u{u}" for u in range(20)]
ITEMS = np.array([f"item-{j}".encode() for j in range(40)], object)


def _tower(vocabulary, seed, oov=1):
    tf.keras.utils.set_random_seed(seed)
    tower = tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=list(vocabulary), mask_token=None,
                                     num_oov_indices=oov),
        tf.keras.layers.Embedding(len(vocabulary) + oov, 8),
        L2Normalization(),
    ])
    tower(tf.constant(list(vocabulary)[:1]))  # weights drawn now, from this seed
    return tower


def _export(tmp_path, user_model, name="shop", **kwargs):
    items = _tower([i.decode() for i in ITEMS], 1)
    candidates = tf.data.Dataset.from_tensor_slices(ITEMS).batch(16)
    return export_two_tower(user_model, items, candidates, tmp_path, model_name=name,
                            max_k=8, **kwargs)


def test_sample_queries_spread_over_the_lookup_vocabulary():
    spec = [tf.TensorSpec([None], tf.string, name="user_id")]
    picked = pick_sample_queries(_tower(USERS, 0), spec, count=5)["user_id"]
    assert [p.decode() for p in picked] == ["u0", "u4", "u9", "u14", "u19"]
    with pytest.raises(ValueError, match="user_id"):
        pick_sample_queries(None, spec, {"age": np.zeros(3)})


def test_good_export_passes_in_a_fresh_process(tmp_path, capsys):
    path = _export(tmp_path, _tower(USERS, 0))
    assert isinstance(checker_for(path), TwoTowerExportChecker)
    report = check_in_subprocess(path)
    assert report["ok"], report["failures"]
    assert report["reference"]["users"] == len(USERS)
    assert report["reference"]["exact_match_fraction"] == 1.0
    assert report["signatures"]["behaviours"] == {
        "unknown_query": "answered", "per_row_k": [1, 8], "history_excluded": True}
    assert report["saved_model_cli"]["run_matches_signature"] is True
    assert report["scann"]["recall"] >= 0.95
    assert main([str(path), "--no-cli"]) == 1  # in this process the model code is loaded
    assert "adaptau_tf's modeling code" in capsys.readouterr().out


def test_a_reference_from_another_model_fails(tmp_path):
    path = _export(tmp_path / "a", _tower(USERS, 0))
    other = _export(tmp_path / "b", _tower(USERS, 7))
    report = TwoTowerExportChecker(path, other / "assets.extra" / "reference_topk.npz",
                                   run_cli=False).run()
    assert any("differs from the reference" in f for f in report["failures"])


def test_a_tower_that_refuses_unknown_ids_fails(tmp_path):
    path = _export(tmp_path, _tower(USERS, 0, oov=0))
    report = TwoTowerExportChecker(path, run_cli=False).run()
    assert any("unknown id" in f and "failed the request" in f for f in report["failures"])


def test_an_export_without_sample_queries_fails(tmp_path):
    path = _export(tmp_path, _tower(USERS, 0))
    (path / "assets.extra" / "reference_topk.npz").unlink()
    report = TwoTowerExportChecker(path, run_cli=False).run()
    assert any("no sample queries" in f for f in report["failures"])


class _FeatureQueryTower(tf.keras.Model):
    """``{"user_id": string, "age": int64}`` -> concat(id, age bucket) embeddings -> L2."""

    def __init__(self):
        super().__init__()
        self.lookup = tf.keras.layers.StringLookup(vocabulary=USERS, mask_token=None)
        self.ids = tf.keras.layers.Embedding(len(USERS) + 1, 6)
        self.ages = tf.keras.layers.Embedding(5, 2)
        self.norm = L2Normalization()

    def call(self, inputs):
        return self.norm(tf.concat([self.ids(self.lookup(inputs["user_id"])),
                                    self.ages(inputs["age"])], axis=-1))


def test_feature_query_tower_export_answers_like_keras_in_a_fresh_process(tmp_path):
    tf.keras.utils.set_random_seed(3)
    query = _FeatureQueryTower()
    queries = {"user_id": np.array([u.encode() for u in USERS[:6]], object),
               "age": np.array([0, 1, 2, 3, 4, 0], np.int64)}
    query(queries)
    specs = {"user_id": tf.TensorSpec([None], tf.string),
             "age": tf.TensorSpec([None], tf.int64)}
    path = _export(tmp_path, query, query_features=specs, sample_queries=queries)
    report = check_in_subprocess(path, run_cli=False)
    assert report["ok"], report["failures"]
    # The stored reference is the Keras model's own top-k; the fresh process matched it.
    with np.load(path / "assets.extra" / "reference_topk.npz") as ref:
        np.testing.assert_array_equal(ref["query/age"], queries["age"])
        expected = np.argsort(-(query(queries).numpy() @ _tower(
            [i.decode() for i in ITEMS], 1)(tf.constant(ITEMS)).numpy().T), axis=1,
            kind="stable")[:, :8]
        np.testing.assert_array_equal(ref["item_ids"], ITEMS[expected].astype(bytes))
    assert report["reference"]["exact_match_fraction"] == 1.0
    assert report["signatures"]["behaviours"]["unknown_query"] == "answered"
