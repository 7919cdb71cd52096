"""End-to-end test of the TFRS-tutorial two-tower example on mocked TFDS data."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import json

import numpy as np
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


def test_two_tower_example_trains_with_adaptive_temperatures(tmp_path, capsys):
    ratings, movies = _structured_movielens()

    def as_dataset(self, *args, **kwargs):
        data = movies if self.builder_config.name == "100k-movies" else ratings
        return tf.data.Dataset.from_tensor_slices(data)

    output = tmp_path / "result.json"
    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        result = movielens_two_tower.main(
            ["--epochs", "2", "--batch-size", "64", "--output", str(output)]
        )

    history = result["history"]
    assert len(history["loss"]) == 2
    assert np.all(np.isfinite(history["loss"]))
    for key in ("tau0", "tau_u_min", "tau_u_p10", "tau_u_p50", "tau_u_p90", "tau_u_max"):
        assert key in history and len(history[key]) == 2
    # Epoch 1 runs at the warm-up τ0 for everybody; from epoch 2 on, τ_u comes from
    # the users' epoch-1 losses and differs across users.
    assert history["tau_u_p10"][0] == history["tau_u_p90"][0] == history["tau0"][0]
    assert history["tau_u_p10"][1] < history["tau_u_p90"][1]

    task = result["model"].task
    inverse = task.user_inverse_temperature.numpy()
    assert inverse.shape == (NUM_USERS + 1,)  # + the StringLookup OOV index
    assert not np.allclose(inverse, 1.0 / task.strategy.initial_temperature())
    assert np.ptp(inverse) > 0
    # The OOV user has no training row: τ_u = τ0.
    np.testing.assert_allclose(1.0 / inverse[0], history["tau0"][1], rtol=1e-5)

    users, items = result["model"].compute_representations()
    assert users.shape == (NUM_USERS + 1, 32) and items.shape == (NUM_MOVIES + 1, 32)
    np.testing.assert_allclose(np.linalg.norm(users.numpy(), axis=1), 1.0, rtol=1e-5)

    evaluation = result["evaluation"]
    assert 0.0 <= evaluation["recall@20"] <= 1.0 and np.isfinite(evaluation["ndcg@20"])
    saved = json.loads(output.read_text())
    assert saved["history"]["tau0"] == [float(v) for v in history["tau0"]]
    printed = capsys.readouterr().out
    assert "epoch 2: loss=" in printed and "tau_u min/p10/p50/p90/max=" in printed


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
