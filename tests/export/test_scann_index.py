import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import json
import shutil

import numpy as np
import pytest

from adaptau_tf.export.scann_index import ScannIndex


def unit_rows(rows, dim, seed=0, clusters=None):
    rng = np.random.default_rng(seed)
    if clusters:
        centers = rng.standard_normal((clusters, dim))
        x = centers[rng.integers(0, clusters, rows)] + 0.3 * rng.standard_normal((rows, dim))
    else:
        x = rng.standard_normal((rows, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(queries, items, k):
    return np.argsort(-(queries @ items.T), axis=1, kind="stable")[:, :k]


def test_params_depend_on_catalogue_size():
    small = ScannIndex.choose_params(19_999, 64)
    assert small["strategy"] == "brute_force"
    gowalla = ScannIndex.choose_params(40_981, 64)
    # √m = 202 leaves, 20 % of the items scanned: 41 leaves; unit vectors re-score 200.
    assert gowalla["strategy"] == "tree_ah" and gowalla["num_leaves"] == 202
    assert gowalla["num_leaves_to_search"] == 41 and gowalla["reorder"] == 200
    assert ScannIndex.choose_params(40_981, 64, normalized=False)["reorder"] == 1000
    big = ScannIndex.choose_params(1_000_000, 64)
    # 2√m = 2000 leaves of 500 items (spherical for unit vectors), 2,500 scanned: 5 leaves.
    assert (big["num_leaves"], big["num_leaves_to_search"], big["reorder"]) == (2000, 5, 40)
    assert big["dimensions_per_block"] == 1 and gowalla["dimensions_per_block"] == 2
    assert big["spherical"] and not gowalla["spherical"]
    raw = ScannIndex.choose_params(1_000_000, 64, normalized=False)
    assert not raw["spherical"] and (raw["num_leaves_to_search"], raw["reorder"]) == (40, 1000)
    assert big["training_sample_size"] == 250_000
    json.dumps(big)  # JSON-ready for the manifest
    with pytest.raises(ValueError, match="got 0"):
        ScannIndex.choose_params(0, 64)


def test_brute_force_index_is_exact_and_survives_a_move(tmp_path):
    items = unit_rows(500, 8)
    queries = unit_rows(30, 8, seed=1)
    ids = np.arange(500, dtype=np.int64) + 1000
    index = ScannIndex.build(items, ids)
    assert index.params["strategy"] == "brute_force" and index.build_seconds >= 0
    index.save(tmp_path / "a")
    shutil.move(tmp_path / "a", tmp_path / "b")  # assets are stored with relative paths
    loaded = ScannIndex.load(tmp_path / "b", ids, index.params)
    found, scores = loaded.search(queries, k=10)
    np.testing.assert_array_equal(found, exact(queries, items, 10) + 1000)
    np.testing.assert_allclose(scores, np.sort(queries @ items.T, axis=1)[:, ::-1][:, :10],
                               atol=1e-5)
    single, _ = loaded.search(queries[0], k=10)
    np.testing.assert_array_equal(single[0], found[0])
    with pytest.raises(ValueError, match="k must be in"):
        loaded.search(queries, k=501)


def test_tree_ah_index_has_high_recall(tmp_path):
    items = unit_rows(4000, 16, clusters=40)
    queries = unit_rows(100, 16, seed=1, clusters=40)
    params = dict(ScannIndex.choose_params(30_000, 16), num_items=4000, num_leaves=60,
                  num_leaves_to_search=15, training_sample_size=4000)
    index = ScannIndex.build(items, params=params)
    index.save(tmp_path)
    found, _ = ScannIndex.load(tmp_path, np.arange(4000), params).search(queries, k=20)
    truth = exact(queries, items, 20)
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(found, truth)])
    assert recall >= 0.95


def test_bad_inputs_are_reported(tmp_path):
    with pytest.raises(ValueError, match=r"got shape \(5,\)"):
        ScannIndex.build(np.ones(5, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        ScannIndex.build(np.full((3, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="'hnsw'"):
        ScannIndex.build(unit_rows(10, 4), params={"strategy": "hnsw", "num_neighbors": 5})
    with pytest.raises(FileNotFoundError, match="scann_assets.pbtxt"):
        ScannIndex.load(tmp_path, np.arange(3))


def test_exported_index_answers_topk(exported):
    manifest = json.loads((exported / "items" / "manifest.json").read_text())
    items = np.load(exported / "items" / "embeddings.npy")
    ids = np.load(exported / "items" / "ids.npy")
    index = ScannIndex.load(exported / "items" / manifest["scann"]["directory"], ids,
                            manifest["scann"]["params"])
    assert index.size == manifest["count"]
    found, _ = index.search(items[:5], k=7)
    np.testing.assert_array_equal(found, ids[exact(items[:5], items, 7)])
