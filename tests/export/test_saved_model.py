import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import hashlib
import json

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.export import saved_model as saved_model_module
from adaptau_tf.export.check import ExportChecker
from adaptau_tf.export.saved_model import export_model
from tests.export.conftest import NUM_ITEMS, NUM_USERS, in_memory_topk, train_tiny


def serve(path, user_ids, k):
    out = tf.saved_model.load(str(path)).signatures["serving_default"](
        user_id=tf.constant(user_ids, tf.int64), k=tf.constant(k, tf.int32))
    return out["item_ids"].numpy(), out["scores"].numpy()


def digest(directory):
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_layout_is_tf_serving_versioned(exported):
    assert exported.name == "1" and exported.parent.name == "tiny"
    for name in ("saved_model.pb", "variables/variables.index", "items/embeddings.npy",
                 "items/ids.npy", "items/manifest.json", "items/scann/scann_assets.pbtxt",
                 "assets.extra/reference_topk.npz", "users/seen_row_splits.npy"):
        assert (exported / name).is_file(), name
    assert [p.name for p in exported.parent.iterdir()] == ["1"]  # no temp dirs left


def test_signatures_and_topk_match_in_memory_model(trained, exported):
    data, model = trained
    loaded = tf.saved_model.load(str(exported))
    assert set(loaded.signatures) == {"serving_default", "user_embedding", "item_embeddings"}
    users = np.arange(0, NUM_USERS, 7, dtype=np.int64)
    ids, scores = serve(exported, users, 20)
    ref_ids, ref_scores = in_memory_topk(model, data, users, 20)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    user_vectors, item_vectors = model.compute_representations(training=False)
    got = loaded.signatures["user_embedding"](user_id=tf.constant(users))["embedding"]
    np.testing.assert_allclose(got, tf.gather(user_vectors, users), atol=1e-7)
    table = loaded.signatures["item_embeddings"]()
    np.testing.assert_allclose(table["embeddings"], item_vectors, atol=1e-7)
    np.testing.assert_array_equal(table["item_ids"], np.arange(NUM_ITEMS))
    np.testing.assert_allclose(np.linalg.norm(table["embeddings"], axis=1), 1.0, atol=1e-5)


def test_seen_items_are_excluded(trained, exported):
    data, _ = trained
    users = np.arange(NUM_USERS, dtype=np.int64)
    ids, _ = serve(exported, users, 50)
    seen = set(map(tuple, np.concatenate([data.train, data.valid]).tolist()))
    served = {(int(u), int(i)) for u, row in zip(users, ids) for i in row}
    assert not served & seen
    assert data.valid.shape[0] > 0  # validation pairs are part of the exclusion table


def test_no_exclude_seen_export_serves_seen_items(trained, tmp_path):
    data, model = trained
    path = export_model(model, data, tmp_path, exclude_seen=False, build_scann=False)
    users = np.arange(0, NUM_USERS, 3, dtype=np.int64)
    ids, scores = serve(path, users, 30)
    ref_ids, ref_scores = in_memory_topk(model, data, users, 30, exclude_seen=False)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)
    seen = set(map(tuple, data.train.tolist()))
    assert any((int(u), int(i)) in seen for u, row in zip(users, ids) for i in row)
    manifest = json.loads((path / "items" / "manifest.json").read_text())
    assert manifest["saved_model"]["exclude_seen"] is False and manifest["scann"] is None


@pytest.mark.parametrize("user_id", [NUM_USERS, NUM_USERS + 1000, -1])
def test_unknown_user_id_is_a_clear_invalid_argument(exported, user_id):
    signatures = tf.saved_model.load(str(exported)).signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_id out of range"):
        signatures["serving_default"](user_id=tf.constant([0, user_id], tf.int64),
                                      k=tf.constant(5, tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_id out of range"):
        signatures["user_embedding"](user_id=tf.constant([user_id], tf.int64))


@pytest.mark.parametrize("k", [0, NUM_ITEMS + 1])
def test_out_of_range_k_is_a_clear_invalid_argument(exported, k):
    signature = tf.saved_model.load(str(exported)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be in"):
        signature(user_id=tf.constant([0], tf.int64), k=tf.constant(k, tf.int32))


def test_versions_increment_and_existing_versions_are_protected(trained, tmp_path):
    data, model = trained
    first = export_model(model, data, tmp_path, build_scann=False)
    second = export_model(model, data, tmp_path, build_scann=False)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="already exists"):
        export_model(model, data, tmp_path, version=2, build_scann=False)
    replaced = export_model(model, data, tmp_path, version=2, build_scann=False, overwrite=True)
    assert replaced == second and (second / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "adaptau").iterdir()) == ["1", "2"]
    with pytest.raises(ValueError, match="version must be a positive int"):
        export_model(model, data, tmp_path, version=0)


def test_failed_export_leaves_previous_version_intact(trained, tmp_path, monkeypatch):
    data, model = trained
    first = export_model(model, data, tmp_path, build_scann=False)
    before = digest(first)

    def explode(path):
        assert (path / "saved_model.pb").is_file()  # fully written, not yet published
        raise OSError("disk full (simulated)")

    with pytest.raises(OSError, match="simulated"):
        export_model(model, data, tmp_path, version=2, before_publish=explode)
    def broken_build(*args, **kwargs):
        raise OSError("simulated crash in the index build")

    # Fails mid-write (SavedModel and arrays written, index not), replacing version 1.
    monkeypatch.setattr(saved_model_module.ScannIndex, "build", staticmethod(broken_build))
    with pytest.raises(OSError, match="simulated"):
        export_model(model, data, tmp_path, version=1, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "adaptau").iterdir()) == ["1"]
    assert digest(first) == before
    ids, _ = serve(first, np.array([0, 1]), 5)
    assert ids.shape == (2, 5)


def test_manifest_matches_the_arrays(trained, exported):
    data, model = trained
    manifest = json.loads((exported / "items" / "manifest.json").read_text())
    embeddings = np.load(exported / "items" / "embeddings.npy")
    ids = np.load(exported / "items" / "ids.npy")
    assert embeddings.dtype == np.float32 and ids.dtype == np.int64
    assert (manifest["count"], manifest["dimension"]) == embeddings.shape == (NUM_ITEMS, 16)
    np.testing.assert_array_equal(ids, np.arange(NUM_ITEMS))
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embeddings, model.compute_representations()[1], atol=1e-7)
    for name, info in manifest["files"].items():
        path = exported / "items" / info["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info["sha256"], name
    assert manifest["metric"] == "dot_product" and manifest["normalized"] is True
    assert manifest["strategy"] == model.task.strategy.key == "fixed"
    assert manifest["tau0"] == pytest.approx(1 / float(model.task.inverse_temperature.numpy()))
    assert manifest["adaptau_tf_version"] == adaptau_tf.__version__
    assert manifest["scann"]["params"]["strategy"] == "brute_force"
    assert manifest["scann"]["params"]["num_items"] == NUM_ITEMS
    saved = manifest["saved_model"]
    assert (saved["num_users"], saved["num_items"]) == (NUM_USERS, NUM_ITEMS)
    pairs = np.unique(np.concatenate([data.train, data.valid]), axis=0)
    assert saved["excluded_pairs"] == pairs.shape[0]
    assert np.load(exported / "users" / "seen_items.npy").shape == (pairs.shape[0],)


def test_lightgcn_exports_propagated_vectors_without_graph_ops(tmp_path):
    data, model = train_tiny("lightgcn", strategy="adap-tau")
    path = export_model(model, data, tmp_path, build_scann=False)
    users, items = model.compute_representations(training=False)
    raw_items = model.item_embedding.embeddings
    table = tf.saved_model.load(str(path)).signatures["item_embeddings"]()["embeddings"]
    np.testing.assert_allclose(table, items, atol=1e-6)
    assert not np.allclose(table, tf.math.l2_normalize(raw_items, axis=1), atol=1e-3)
    ids, _ = serve(path, np.arange(10), 10)
    np.testing.assert_array_equal(ids, in_memory_topk(model, data, np.arange(10), 10)[0])
    checker = ExportChecker(path, run_cli=False)
    checker.check_ops()
    ops = set(checker.report["ops"]["all"])
    assert not {op for op in ops if "Sparse" in op or "CSR" in op}, ops
    assert json.loads((path / "items" / "manifest.json").read_text())["strategy"] == "adap-tau"


def test_cli_exports_a_training_run(tmp_path, capsys):
    from adaptau_tf.trainers import train

    run = tmp_path / "run"
    assert train.main(["--data", "synthetic:users=120,items=150", "--epochs", "1",
                       "--embedding-dim", "8", "--negatives", "sampled:32", "--batch-size", "256",
                       "--strategy", "adap-tau", "--verbose", "0", "--output", str(run)]) == 0
    capsys.readouterr()
    args = ["--run", str(run), "--export-dir", str(tmp_path / "serving"), "--model-name", "m",
            "--version", "7", "--no-check"]
    assert saved_model_module.main(args) == 0
    path = tmp_path / "serving" / "m" / "7"
    assert capsys.readouterr().out.strip() == str(path)
    manifest = json.loads((path / "items" / "manifest.json").read_text())
    assert manifest["run"]["strategy"] == manifest["strategy"] == "adap-tau"
    assert (manifest["count"], manifest["dimension"]) == (150, 8)
    loaded = train.load_run(run)
    users = np.arange(0, 120, 9)
    ids, _ = serve(path, users, 10)
    np.testing.assert_array_equal(ids, in_memory_topk(loaded.model, loaded.data, users, 10)[0])
