"""Shared fixtures of the export tests: one tiny trained MF model and its export."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.data import make_synthetic
from adaptau_tf.export.saved_model import export_model
from adaptau_tf.models import build_model

NUM_USERS, NUM_ITEMS, DIM = 200, 300, 16


def train_tiny(backbone: str = "mf", strategy: str = "fixed", seed: int = 0):
    """(data, model): 200 users, 300 items, d = 16, one epoch."""
    data = make_synthetic(num_users=NUM_USERS, num_items=NUM_ITEMS, seed=seed)
    data = data.with_validation_split(0.1, seed=seed)
    model = build_model(backbone, data, strategy=strategy, embedding_dim=DIM, seed=seed,
                        negatives="sampled:64")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    model.fit(data.train_dataset(256, seed=seed), epochs=1, verbose=0)
    return data, model


def in_memory_topk(model, data, user_ids, k, exclude_seen=True):
    """The in-memory model's top-k, in TF: (item_ids [B, k], scores [B, k])."""
    users, items = model.compute_representations(training=False)
    scores = tf.matmul(tf.gather(users, user_ids), items, transpose_b=True).numpy()
    if exclude_seen:
        seen = np.concatenate([data.train, data.valid])
        for row, user in enumerate(user_ids):
            scores[row, seen[seen[:, 0] == user, 1]] = -np.inf
    top = tf.math.top_k(tf.constant(scores), k=k)
    return top.indices.numpy().astype(np.int64), top.values.numpy()


@pytest.fixture(scope="session")
def trained():
    return train_tiny()


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """Path of version 1 of the tiny model's export (ScaNN index included)."""
    data, model = trained
    return export_model(model, data, tmp_path_factory.mktemp("serving"), model_name="tiny")
