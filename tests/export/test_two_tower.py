"""export_two_tower: a feature two-tower model served by raw ids, checked in a fresh process."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.export.check import ExportChecker
from adaptau_tf.export.scann_index import ScannIndex
from adaptau_tf.export.two_tower import export_two_tower, main
from adaptau_tf.layers import L2Normalization

USERS = [f"user {u}".encode() for u in range(12)]
TITLES = [f"Movie {j} ({1950 + j})".encode() for j in range(30)]


def _tower(vocabulary, seed):
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.Sequential([
        # A list: tf_keras cannot save a StringLookup built on a NumPy vocabulary.
        tf.keras.layers.StringLookup(vocabulary=[v.decode() for v in vocabulary],
                                     mask_token=None),
        tf.keras.layers.Embedding(len(vocabulary) + 1, 8),
        L2Normalization(),
    ])


@pytest.fixture(scope="module")
def towers():
    return _tower(USERS, 0), _tower(TITLES, 1)


@pytest.fixture(scope="module")
def export(towers, tmp_path_factory):
    user_model, movie_model = towers
    candidates = tf.data.Dataset.from_tensor_slices(np.array(TITLES, object)).batch(7)
    return export_two_tower(user_model, movie_model, candidates,
                            tmp_path_factory.mktemp("serving"), model_name="movies", max_k=6)


def _keras_topk(towers, users, ks, history):
    """The Keras towers' top-k by raw id, history excluded, padded to max(k)."""
    user_model, movie_model = towers
    scores = (user_model(tf.constant(users)).numpy()
              @ movie_model(tf.constant(TITLES)).numpy().T)
    width = max(ks)
    ids, values = [], []
    for row, (k, seen) in enumerate(zip(ks, history)):
        for title in seen:
            if title in TITLES:
                scores[row, TITLES.index(title)] = -np.inf
        order = np.argsort(-scores[row], kind="stable")[:k]
        ids.append([TITLES[j].decode() for j in order] + [""] * (width - k))
        values.append(list(scores[row, order]) + [-np.inf] * (width - k))
    return ids, np.array(values, np.float32)


def test_saved_model_answers_like_keras_in_a_fresh_process(towers, export):
    users = [b"user 3", b"never seen user"]  # the second goes to the lookup's OOV row
    ks, history = [4, 6], [[b"Movie 2 (1952)", b"Movie 9 (1959)"], [b"", b""]]
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        served = tf.saved_model.load({str(export)!r}).signatures["serving_default"]
        out = served(user_id=tf.constant({users!r}), k=tf.constant({ks!r}),
                     history=tf.constant({history!r}))
        print(json.dumps({{
            "item_ids": [[i.decode() for i in row] for row in out["item_ids"].numpy()],
            "scores": np.where(np.isinf(out["scores"]), -1e30, out["scores"]).tolist(),
            "modeling_code": sorted(m for m in sys.modules
                                    if m.startswith(("adaptau_tf", "tensorflow_recommenders"))),
        }}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    expected_ids, expected_scores = _keras_topk(towers, users, ks, history)
    assert served["item_ids"] == expected_ids
    assert "Movie 2 (1952)" not in served["item_ids"][0]
    np.testing.assert_allclose(served["scores"], np.where(np.isinf(expected_scores), -1e30,
                                                          expected_scores), rtol=1e-5, atol=1e-6)
    assert served["modeling_code"] == []  # the graph needs none of the Python layers


def test_rest_instances_payload_feeds_the_signature(towers, export):
    """TF Serving's row format: a list of per-row dicts, stacked input by input."""
    payload = {"instances": [
        {"user_id": "user 5", "k": 2, "history": ["Movie 0 (1950)", "Movie 1 (1951)"]},
        {"user_id": "user 11", "k": 5, "history": ["Movie 7 (1957)", ""]},
        {"user_id": "who?", "k": 1, "history": ["", ""]},
    ]}
    instances = json.loads(json.dumps(payload))["instances"]
    loaded = tf.saved_model.load(str(export))
    signature = loaded.signatures["serving_default"]
    tensors = {name: tf.constant([row[name] for row in instances], spec.dtype)
               for name, spec in signature.structured_input_signature[1].items()}
    out = signature(**tensors)
    predictions = [{key: value[row].numpy().tolist() for key, value in out.items()}
                   for row in range(len(instances))]  # TF Serving's "predictions" rows
    users = [row["user_id"].encode() for row in instances]
    history = [[title.encode() for title in row["history"]] for row in instances]
    expected_ids, expected_scores = _keras_topk(towers, users, [2, 5, 1], history)
    for row, prediction in enumerate(predictions):
        assert [i.decode() for i in prediction["item_ids"]] == expected_ids[row]
        np.testing.assert_allclose(prediction["scores"], expected_scores[row], rtol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_k=6"):
        signature(**{**tensors, "k": tf.constant([2, 7, 1])})


def test_manifest_vocabulary_core_ops_and_scann(towers, export):
    manifest = json.loads((export / "items" / "manifest.json").read_text())
    assert manifest["item_ids"] == [t.decode() for t in TITLES]
    assert manifest["saved_model"]["inputs"]["k"] == {"dtype": "int32", "shape": [None]}
    assert manifest["normalized"] is True and manifest["count"] == len(TITLES)
    assert "items/embeddings.npy" in manifest["checksums"]
    checker = ExportChecker(export, run_cli=False)
    checker.check_ops()
    assert checker.report["ops"]["bad"] == [] and "LookupTableFindV2" in checker.report[
        "ops"]["all"]
    loaded = tf.saved_model.load(str(export))
    query = loaded.signatures["query_embedding"](user_id=tf.constant([b"user 1"]))["embedding"]
    table = np.load(export / "items" / "embeddings.npy")
    index = ScannIndex.load(export / "items" / "scann", np.arange(len(TITLES)),
                            manifest["scann"]["params"])
    rows, _ = index.search(query.numpy(), k=5)
    exact = np.argsort(-(query.numpy() @ table.T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(rows, exact)


def test_cli_exports_saved_keras_towers(towers, tmp_path):
    user_model, movie_model = towers
    user_model.save(tmp_path / "users.keras")
    movie_model.save(tmp_path / "movies.keras")
    (tmp_path / "titles.txt").write_text("\n".join(t.decode() for t in TITLES) + "\n")
    assert main(["--query-model", str(tmp_path / "users.keras"), "--candidates",
                 str(tmp_path / "titles.txt"), "--candidate-model", str(tmp_path / "movies.keras"),
                 "--export-dir", str(tmp_path / "serving"), "--no-history", "--no-scann"]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "serving" / "two_tower" / "1"))
    out = loaded.signatures["serving_default"](user_id=tf.constant([b"user 4"]),
                                               k=tf.constant([3]))
    expected, _ = _keras_topk(towers, [b"user 4"], [3], [[]])
    assert [i.decode() for i in out["item_ids"].numpy()[0]] == expected[0]
    with pytest.raises(ValueError, match="unique, repeated"):
        export_two_tower(user_model, None, (np.array([b"a", b"a"]), np.eye(2)), tmp_path)
