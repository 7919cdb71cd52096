"""The TFRS basic-retrieval tutorial with Adap-τ: a feature two-tower model on MovieLens 100K.

This is https://www.tensorflow.org/recommenders/examples/basic_retrieval
(``movielens/100k-ratings``, string ids through ``StringLookup`` + ``Embedding``
towers, in-batch negatives, Adagrad 0.1, batch 8192, 3 epochs) with the softmax
temperature made adaptive. The tutorial's model class, data pipeline and
``model.fit`` are kept; the lines that change are:

1. ``L2Normalization()`` appended to both towers (Adap-τ's scores are cosines);
2. ``task = tfrs.tasks.Retrieval(metrics=metrics)`` ->
   ``task = AdaptiveRetrieval(num_users=len(unique_user_ids) + 1, metrics=metrics,
   reduction="sum")`` (``+ 1``: the lookup's OOV row; ``"sum"``: TFRS's loss
   scale, which the tutorial's Adagrad 0.1 is tuned for);
3. ``model.fit(cached_train, epochs=3)`` -> ``model.fit(cached_train, epochs=3,
   callbacks=[AdaptiveTemperature(candidates=movies.batch(128),
   candidate_model=movie_model)])``: the callback recomputes τ0 each epoch
   from the training batches and the candidates, without any user table.

With the tutorial's ``compute_loss`` the task sees no user ids, so every user
shares τ0 (Adap-τ0). A per-user ``τ_u`` (Adap-τ) needs one more argument in
``compute_loss``, the batch's user indices: ``self.task(user_embeddings,
positive_movie_embeddings, user_ids=self.user_model.layers[0](features["user_id"]))``
(:class:`PerUserMovielensModel`, ``--per-user-tau``).

Epoch 1 runs at the task's initial τ (0.2), since no batch has been seen.
``--warmup-epochs`` (100 by default, the published recipes' W) keeps τ0 at
the prior ``0.7 / log(|A| m / (2 |D_A|))`` while τ_u adapts: after the
tutorial's few steps (10 per epoch at batch 8192) the towers barely separate
positives and the closed form would be unreliable.

Plus what a script needs: the 80/20 split is ``int(0.8 * num_ratings)``
instead of the literal 80_000 (the same on the real data), the FactorizedTopK
metric is optional (``--with-topk-metrics``: slow), the model is evaluated by
:class:`adaptau_tf.evaluation.RankingEvaluator` (all-ranking Recall/NDCG@K,
training items masked), and ``--export-dir`` exports the towers for TF
Serving (:func:`adaptau_tf.export.two_tower.export_two_tower`) and queries
the export by raw user id.

Run from the repository root::

    python -m examples.movielens_two_tower --epochs 3 --output runs/ml100k.json
"""

from __future__ import annotations

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import tensorflow as tf
import tensorflow_datasets as tfds
import tensorflow_recommenders as tfrs

from adaptau_tf.callbacks import AdaptiveTemperature
from adaptau_tf.evaluation import RankingEvaluator
from adaptau_tf.export.check import check_in_subprocess
from adaptau_tf.export.two_tower import export_two_tower
from adaptau_tf.layers import L2Normalization
from adaptau_tf.tasks import AdaptiveRetrieval


class MovielensModel(tfrs.Model):
    """The tutorial's two-tower model, unchanged."""

    def __init__(self, user_model: tf.keras.Model, movie_model: tf.keras.Model,
                 task: tf.keras.layers.Layer) -> None:
        super().__init__()
        self.movie_model: tf.keras.Model = movie_model
        self.user_model: tf.keras.Model = user_model
        self.task: tf.keras.layers.Layer = task

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        user_embeddings = self.user_model(features["user_id"])
        positive_movie_embeddings = self.movie_model(features["movie_title"])
        return self.task(user_embeddings, positive_movie_embeddings)


class PerUserMovielensModel(MovielensModel):
    """The tutorial's model whose task also gets the user indices: Adap-τ's per-user τ_u."""

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        user_embeddings = self.user_model(features["user_id"])
        positive_movie_embeddings = self.movie_model(features["movie_title"])
        return self.task(user_embeddings, positive_movie_embeddings,
                         user_ids=self.user_model.layers[0](features["user_id"]))


def _tower(vocabulary: np.ndarray, dimension: int) -> tf.keras.Sequential:
    return tf.keras.Sequential([
        tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
        tf.keras.layers.Embedding(len(vocabulary) + 1, dimension),
        L2Normalization(),
    ])


def tower_table(tower: tf.keras.Sequential) -> tf.Tensor:
    """``[vocabulary + 1, d]``: the tower's vector of every lookup index (OOV = 0)."""
    vectors = tf.range(tower.layers[1].input_dim, dtype=tf.int64)
    for layer in tower.layers[1:]:
        vectors = layer(vectors, training=False)
    return vectors


def _index_pairs(dataset: tf.data.Dataset, model: MovielensModel) -> np.ndarray:
    """``[P, 2]`` int64 (user index, movie index) pairs of a ratings data set."""
    lookup_user, lookup_movie = model.user_model.layers[0], model.movie_model.layers[0]
    parts = [
        np.stack([lookup_user(batch["user_id"]).numpy(),
                  lookup_movie(batch["movie_title"]).numpy()], axis=1)
        for batch in dataset.batch(65_536)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), np.int64)


def _ranking_evaluation(model: MovielensModel, train_pairs: np.ndarray,
                        test_pairs: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """All-ranking metrics on the test ratings, masking training items and the OOV movie."""
    users, movies = tower_table(model.user_model), tower_table(model.movie_model)
    shape = (int(users.shape[0]), int(movies.shape[0]))
    oov = np.stack([np.arange(shape[0]), np.zeros(shape[0], np.int64)], axis=1)
    exclude = np.concatenate([train_pairs, oov])

    def csr(pairs: np.ndarray) -> sp.csr_matrix:
        ones = np.ones(len(pairs), np.float32)
        return sp.csr_matrix((ones, (pairs[:, 0], pairs[:, 1])), shape=shape)

    exclude_csr = csr(exclude)
    # A test rating of an already-seen (user, title) pair (MovieLens has a few
    # duplicate titles) cannot be retrieved once training items are masked.
    seen = np.asarray(exclude_csr[test_pairs[:, 0], test_pairs[:, 1]]).ravel() > 0
    evaluator = RankingEvaluator(exclude_csr, csr(test_pairs[~seen]),
                                 ks=tuple(k for k in ks if k <= shape[1]))
    return {key: float(value) for key, value in evaluator.evaluate(users, movies).items()}


def export_and_query(model: MovielensModel, movies: tf.data.Dataset, export_dir: str,
                     user_ids: list[bytes], k: int = 10) -> dict[str, Any]:
    """Exports the towers for TF Serving and asks the SavedModel for each user's top-k titles."""
    path = export_two_tower(model.user_model, model.movie_model, movies.batch(128), export_dir,
                            model_name="movielens", max_k=k, overwrite=True, version=1)
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = served(user_id=tf.constant(user_ids), k=tf.fill([len(user_ids)], k),
                 history=tf.constant([[b""]] * len(user_ids)))
    titles = [[t.decode() for t in row] for row in out["item_ids"].numpy()]
    # What a serving team runs before deploying: adaptau-check-export, in a fresh process.
    report = check_in_subprocess(path, run_cli=False)
    return {"path": str(path), "user_ids": [u.decode() for u in user_ids], "titles": titles,
            "check": {"ok": report["ok"], "failures": report["failures"]}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--warmup-epochs", type=int, default=100,
                        help="epochs at the prior-gap τ0 before its closed form")
    parser.add_argument("--per-user-tau", action="store_true",
                        help="pass the user indices to the task: per-user τ_u (Adap-τ)")
    parser.add_argument("--data-dir", default=None, help="TFDS data folder")
    parser.add_argument("--with-topk-metrics", action="store_true",
                        help="the tutorial's FactorizedTopK on the test split (slow)")
    parser.add_argument("--export-dir", default=None,
                        help="export the towers for TF Serving here and query them by raw id")
    parser.add_argument("--output", default=None, help="JSON file for history and metrics")
    parser.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Trains, prints τ per epoch, evaluates, optionally exports; returns what it found."""
    args = parse_args(argv)
    ratings = tfds.load("movielens/100k-ratings", split="train", data_dir=args.data_dir)
    movies = tfds.load("movielens/100k-movies", split="train", data_dir=args.data_dir)
    ratings = ratings.map(lambda x: {"movie_title": x["movie_title"], "user_id": x["user_id"]})
    movies = movies.map(lambda x: x["movie_title"])

    tf.random.set_seed(42)
    shuffled = ratings.shuffle(100_000, seed=42, reshuffle_each_iteration=False)
    user_ids = np.concatenate(list(ratings.batch(1_000_000).map(lambda x: x["user_id"])))
    num_train = int(0.8 * len(user_ids))
    train = shuffled.take(num_train)
    test = shuffled.skip(num_train)

    unique_movie_titles = np.unique(np.concatenate(list(movies.batch(1_000))))
    unique_user_ids = np.unique(user_ids)
    user_model = _tower(unique_user_ids, args.embedding_dim)
    movie_model = _tower(unique_movie_titles, args.embedding_dim)

    metrics = None
    if args.with_topk_metrics:
        metrics = tfrs.metrics.FactorizedTopK(candidates=movies.batch(128).map(movie_model))
    task = AdaptiveRetrieval(num_users=len(unique_user_ids) + 1, metrics=metrics,
                             reduction="sum")
    model_class = PerUserMovielensModel if args.per_user_tau else MovielensModel
    model = model_class(user_model, movie_model, task)
    model.compile(optimizer=tf.keras.optimizers.Adagrad(learning_rate=args.learning_rate))

    cached_train = train.shuffle(100_000).batch(args.batch_size).cache()
    cached_test = test.batch(4096).cache()
    history = model.fit(cached_train, epochs=args.epochs, verbose=args.verbose, callbacks=[
        AdaptiveTemperature(candidates=movies.batch(128), candidate_model=movie_model,
                            warmup_epochs=args.warmup_epochs)])

    train_pairs, test_pairs = _index_pairs(train, model), _index_pairs(test, model)
    print(f"{len(unique_user_ids)} users, {len(unique_movie_titles)} movies, "
          f"{len(train_pairs)} train / {len(test_pairs)} test ratings")
    logs = history.history
    for epoch in range(len(logs["loss"])):
        print(f"epoch {epoch + 1}: loss={logs['loss'][epoch]:.4f} tau0={logs['tau0'][epoch]:.4f} "
              "tau_u min/p10/p50/p90/max=" + "/".join(
                  f"{logs[f'tau_u_{q}'][epoch]:.4f}" for q in ("min", "p10", "p50", "p90", "max")))
    evaluation = _ranking_evaluation(model, train_pairs, test_pairs, ks=(10, 20, 50))
    if args.with_topk_metrics:
        evaluation.update(model.evaluate(cached_test, return_dict=True, verbose=args.verbose))
    print("test: " + " ".join(f"{key}={value:.4f}" for key, value in sorted(evaluation.items())))

    served = None
    if args.export_dir:
        served = export_and_query(model, movies, args.export_dir,
                                  [unique_user_ids[0], b"a user nobody has seen"])
        for user, titles in zip(served["user_ids"], served["titles"]):
            print(f"served top-{len(titles)} for {user!r}: {titles[:3]} ...")
        print("adaptau-check-export: " + ("OK" if served["check"]["ok"]
                                          else "FAILED " + "; ".join(served["check"]["failures"])))
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        history_json = {key: [float(v) for v in values] for key, values in logs.items()}
        path.write_text(json.dumps({"history": history_json, "evaluation": evaluation,
                                    "served": served}, indent=2, sort_keys=True))
    return {"history": logs, "evaluation": evaluation, "model": model, "served": served}


if __name__ == "__main__":
    main()
