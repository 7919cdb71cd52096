"""End-to-end test of the TFRS-tutorial two-tower example on mocked TFDS data."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from examples import movielens_two_tower

NUM_USERS, NUM_MOVIES, NUM_GROUPS = 48, 60, 3


def _structured_movielens(seed: int = 0) -> tuple[dict, dict]:
    """Ratings with taste groups and uneven activity, and the matching movie catalogue.

    The random strings of ``MockPolicy.USE_CODE`` make every user unique and no
    rated title part of the catalogue, so the fake data is given explicitly.
    """
    rng = np.random.default_rng(seed)
    titles = np.array([f"Movie {j} ({1950 + j})" for j in range(NUM_MOVIES)], dtype=object)
    users, rated = [], []
    for u in range(NUM_USERS):
        own = np.flatnonzero(np.arange(NUM_MOVIES) % NUM_GROUPS == u % NUM_GROUPS)
        count = 4 + u % 12  # 4..15 ratings: uneven activity
        noise = rng.random(count) < 0.25
        picks = np.where(noise, rng.integers(0, NUM_MOVIES, count), rng.choice(own, count))
        for j in np.unique(picks):
            users.append(f"{u + 1}")
            rated.append(titles[j])
    n = len(users)
    ratings = {
        "user_id": np.array(users, dtype=object).astype(bytes),
        "movie_title": np.array(rated, dtype=object).astype(bytes),
        "movie_id": np.array([t.split()[1] for t in rated], dtype=object).astype(bytes),
        "user_rating": rng.integers(1, 6, n).astype(np.float32),
    }
    movies = {
        "movie_title": titles.astype(bytes),
        "movie_id": np.arange(NUM_MOVIES).astype(str).astype(bytes),
    }
    return ratings, movies


def _run(argv):
    ratings, movies = _structured_movielens()

    def as_dataset(self, *args, **kwargs):
        data = movies if self.builder_config.name == "100k-movies" else ratings
        return tf.data.Dataset.from_tensor_slices(data)

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        return movielens_two_tower.main(argv)


def test_per_user_tau_trains_and_the_export_answers_by_raw_id(tmp_path, capsys):
    output = tmp_path / "result.json"
    result = _run(["--epochs", "2", "--batch-size", "64", "--per-user-tau",
                   "--export-dir", str(tmp_path / "serving"), "--output", str(output)])

    history = result["history"]
    assert len(history["loss"]) == 2
    assert np.all(np.isfinite(history["loss"]))
    # Epoch 1 runs at the task's initial τ for everybody (no batch seen yet); from
    # epoch 2 on τ0 is the warm-up prior from the batches' counts and τ_u comes
    # from the users' epoch-1 losses.
    assert history["tau0"][0] == pytest.approx(0.2)
    assert history["tau_u_p10"][0] == history["tau_u_p90"][0] == history["tau0"][0]
    assert history["tau0_accepted"] == [0.0, 1.0]
    assert history["tau_u_p10"][1] < history["tau_u_p90"][1]

    task = result["model"].task
    inverse = task.user_inverse_temperature.numpy()
    assert inverse.shape == (NUM_USERS + 1,)  # + the StringLookup OOV index
    assert np.ptp(inverse) > 0
    # The OOV user has no training row: τ_u = τ0.
    np.testing.assert_allclose(1.0 / inverse[0], history["tau0"][1], rtol=1e-5)

    users = movielens_two_tower.tower_table(result["model"].user_model).numpy()
    assert users.shape == (NUM_USERS + 1, 32)
    np.testing.assert_allclose(np.linalg.norm(users, axis=1), 1.0, rtol=1e-5)

    evaluation = result["evaluation"]
    assert 0.0 <= evaluation["recall@20"] <= 1.0 and np.isfinite(evaluation["ndcg@20"])
    served = result["served"]
    titles = {f"Movie {j} ({1950 + j})" for j in range(NUM_MOVIES)}
    assert len(served["titles"]) == 2  # a known user and one nobody has seen
    for row in served["titles"]:
        assert len(row) == 10 and set(row) <= titles and len(set(row)) == 10
    assert served["check"] == {"ok": True, "failures": []}  # adaptau-check-export passes
    saved = json.loads(output.read_text())
    assert saved["history"]["tau0"] == [float(v) for v in history["tau0"]]
    printed = capsys.readouterr().out
    assert "epoch 2: loss=" in printed and "served top-10 for" in printed
    assert "adaptau-check-export: OK" in printed


def test_the_tutorial_model_without_user_ids_shares_tau0():
    history = _run(["--epochs", "2", "--batch-size", "64", "--warmup-epochs", "0"])["history"]
    assert np.all(np.isfinite(history["loss"]))
    for key in ("tau0", "tau_u_min", "tau_u_max", "mu_pos", "mu"):
        assert len(history[key]) == 2, key
    assert history["tau_u_min"][1] == history["tau_u_max"][1] == history["tau0"][1]
    assert np.isfinite(history["mu_pos"][1]) and np.isfinite(history["mu"][1])


def test_two_tower_example_runs_on_random_mock_with_topk_metrics():
    """The schema of the real TFDS data sets (random strings), tutorial metric on."""
    with tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_CODE, num_examples=64
    ):
        result = movielens_two_tower.main(
            ["--epochs", "1", "--batch-size", "16", "--with-topk-metrics"]
        )
    assert np.isfinite(result["history"]["loss"][0])
    assert "factorized_top_k/top_100_categorical_accuracy" in result["evaluation"]
