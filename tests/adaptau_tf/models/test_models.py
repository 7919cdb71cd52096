"""MF and LightGCN models: normalised towers, loss wiring, save/load."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.data import make_synthetic
from adaptau_tf.models import LightGCN, MatrixFactorization, build_model, parse_negatives
from adaptau_tf.tasks import AdaptiveRetrieval

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=60, num_items=40, seed=1)


@pytest.mark.parametrize("backbone", ["mf", "lightgcn"])
@pytest.mark.parametrize("strategy", ["fixed", "adap-tau", "nonorm"])
def test_towers_output_unit_vectors_unless_no_norm(data, backbone, strategy):
    model = build_model(backbone, data, strategy=strategy, embedding_dim=8, seed=0)
    users, items = model.compute_representations()
    assert users.shape == (data.num_users, 8) and items.shape == (data.num_items, 8)
    norms = np.concatenate([np.linalg.norm(users, axis=1), np.linalg.norm(items, axis=1)])
    if strategy == "nonorm":
        assert np.abs(norms - 1).max() > 0.1
    else:
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_compute_loss_equals_task_on_gathered_vectors_plus_l2(data):
    model = build_model("mf", data, strategy="fixed", temperature=0.2, negatives="in-batch",
                        l2=0.01, embedding_dim=8, seed=0)
    users = tf.constant([0, 1, 2, 5])
    items = tf.constant([3, 4, 5, 6])
    loss = model.compute_loss({"user_id": users, "item_id": items})
    u, i = model.compute_representations()
    task_loss = model.task(tf.gather(u, users), tf.gather(i, items), user_ids=users)
    raw_u = tf.gather(model.user_embedding.embeddings, users).numpy()
    raw_i = tf.gather(model.item_embedding.embeddings, items).numpy()
    l2 = 0.01 / 2 * ((raw_u ** 2).sum() + (raw_i ** 2).sum()) / 4
    assert float(loss) == pytest.approx(float(task_loss) + l2, rel=1e-5)
    tuple_loss = model.compute_loss((users, items))
    assert float(tuple_loss) == pytest.approx(float(loss), rel=1e-6)


@pytest.mark.parametrize("spec,shape", [("sampled:16", (16,)), ("sampled:16x4", (4, 16))])
def test_sampled_negatives_loss_and_l2_term_against_numpy(data, spec, shape):
    model = build_model("mf", data, strategy="fixed", temperature=0.2, negatives=spec, l2=0.5,
                        embedding_dim=8, seed=0)
    users, items = tf.constant([0, 1, 2, 5, 7, 9]), tf.constant([3, 4, 5, 6, 1, 2])
    loss = float(model.compute_loss((users, items)))
    negative_ids = model.sample_negatives().numpy()  # keyed on (seed, step): the same draw
    assert negative_ids.shape == shape and negative_ids.min() >= 0
    assert negative_ids.max() < data.num_items
    if len(shape) == 2:  # independent draws, not one draw repeated
        assert len({tuple(row) for row in negative_ids}) == shape[0]
    u, i = model.compute_representations()
    task_loss = model.task(tf.gather(u, users), tf.gather(i, items), user_ids=users,
                           negative_embeddings=tf.gather(i, negative_ids))
    user_table = model.user_embedding.embeddings.numpy()
    item_table = model.item_embedding.embeddings.numpy()
    rows = (user_table[users.numpy()] ** 2).sum() + (item_table[items.numpy()] ** 2).sum()
    groups = 1 if len(shape) == 1 else shape[0]
    l2 = 0.5 / 2 * (rows / 6 + (item_table[negative_ids] ** 2).sum() / groups)
    assert loss == pytest.approx(float(task_loss) + l2, rel=1e-5)
    assert model.get_config()["negative_groups"] == groups


def test_parse_negatives():
    assert parse_negatives("sampled:16") == (16, 1)
    assert parse_negatives("sampled:1024x32") == (1024, 32)
    assert parse_negatives("in-batch") == (None, 1)
    for bad in ("sampled:x", "sampled:16x0", "sampled:16x", "sampled:0x4", "uniform:16"):
        with pytest.raises(ValueError, match=f"got '{bad}'"):
            parse_negatives(bad)


def test_fit_reduces_loss_and_message_dropout_only_in_training(data):
    model = build_model("mf", data, strategy="fixed", negatives="sampled:32",
                        message_dropout=0.5, embedding_dim=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    history = model.fit(data.train_dataset(128, seed=0), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    a, _ = model.compute_representations(training=False)
    b, _ = model.compute_representations(training=False)
    np.testing.assert_array_equal(a, b)


def test_logged_losses_are_row_weighted_means_over_the_epoch(data):
    # lr 0 keeps the weights, in-batch negatives and no dropout make each batch's loss
    # reproducible afterwards: the logs must hold the mean over rows, not the last batch.
    model = build_model("mf", data, strategy="fixed", temperature=0.2, negatives="in-batch",
                        l2=0.01, message_dropout=0.0, embedding_dim=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))
    pairs = np.asarray(data.train)
    batch = 64
    assert len(pairs) % batch, "the last batch should be shorter"
    dataset = tf.data.Dataset.from_tensor_slices((pairs[:, 0], pairs[:, 1])).batch(batch)
    history = model.fit(dataset, epochs=2, verbose=0).history
    batch_losses, rows = [], []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start:start + batch]
        batch_losses.append(float(model.compute_loss((chunk[:, 0], chunk[:, 1]))))
        rows.append(len(chunk))
    expected = np.average(batch_losses, weights=rows)
    assert abs(batch_losses[-1] - expected) > 1e-3  # the last batch alone would not pass
    np.testing.assert_allclose(history["loss"], [expected, expected], rtol=1e-5)
    np.testing.assert_allclose(history["total_loss"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(history["regularization_loss"], 0.0)
    evaluated = model.evaluate(dataset, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(expected, rel=1e-5)


def test_model_validates_arguments(data):
    task = AdaptiveRetrieval(num_users=data.num_users)
    with pytest.raises(ValueError, match="num_users=3"):
        MatrixFactorization(3, data.num_items, task=task)
    with pytest.raises(ValueError, match="1.5"):
        MatrixFactorization(data.num_users, data.num_items, task=task, message_dropout=1.5)
    with pytest.raises(ValueError, match="'gnn'"):
        build_model("gnn", data)
    with pytest.raises(ValueError, match="negative_groups must be a positive int, got 0"):
        MatrixFactorization(data.num_users, data.num_items, task=task, negative_groups=0)
    with pytest.raises(ValueError, match="negative_groups=4 needs sampled negatives"):
        MatrixFactorization(data.num_users, data.num_items, task=task, num_negatives=None,
                            negative_groups=4)


def test_lightgcn_uses_propagated_vectors(data):
    model = build_model("lightgcn", data, strategy="fixed", embedding_dim=8, seed=0)
    assert isinstance(model, LightGCN)
    table = np.concatenate([model.user_embedding.embeddings.numpy(),
                            model.item_embedding.embeddings.numpy()])
    dense = model.propagation.adjacency.toarray()
    layers = [table]
    for _ in range(3):
        layers.append(dense @ layers[-1])
    expected = np.mean(layers, axis=0)
    users, items = model.propagate()
    np.testing.assert_allclose(np.concatenate([users, items]), expected, atol=1e-5)


def test_save_and_load_keeps_tau_variables_in_fresh_process(data, tmp_path):
    model = build_model("mf", data, strategy="adap-tau", embedding_dim=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    model.fit(data.train_dataset(256, seed=0), epochs=1, verbose=0)
    tau_u = np.linspace(0.05, 0.5, data.num_users).astype(np.float32)
    model.task.inverse_temperature.assign(1 / 0.123)
    model.task.user_inverse_temperature.assign(1 / tau_u)
    path = tmp_path / "model.keras"
    model.save(path)
    expected = {
        "inverse_temperature": float(model.task.inverse_temperature.numpy()),
        "user_inverse_temperature": model.task.user_inverse_temperature.numpy().tolist(),
        "user_loss_sum": model.task.user_loss_sum.numpy().tolist(),
        "users": model.compute_representations()[0].numpy().tolist(),
    }
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r})
        import adaptau_tf
        import tensorflow as tf
        from adaptau_tf.models import MatrixFactorization  # registers the classes
        model = tf.keras.models.load_model({str(path)!r})
        print(json.dumps({{
            "strategy": model.task.strategy.key,
            "inverse_temperature": float(model.task.inverse_temperature.numpy()),
            "user_inverse_temperature": model.task.user_inverse_temperature.numpy().tolist(),
            "user_loss_sum": model.task.user_loss_sum.numpy().tolist(),
            "users": model.compute_representations()[0].numpy().tolist(),
        }}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["strategy"] == "adap-tau"
    assert loaded["inverse_temperature"] == pytest.approx(expected["inverse_temperature"])
    np.testing.assert_allclose(loaded["user_inverse_temperature"],
                               expected["user_inverse_temperature"], rtol=1e-6)
    np.testing.assert_allclose(loaded["user_loss_sum"], expected["user_loss_sum"], rtol=1e-6)
    assert np.sum(expected["user_loss_sum"]) > 0
    np.testing.assert_allclose(loaded["users"], expected["users"], rtol=1e-5)


@pytest.mark.parametrize("backbone", ["mf", "lightgcn"])
def test_dense_item_gradient_path_matches_gathering_the_draws(data, backbone, monkeypatch):
    # 16 x 4 draws >= 40 items: the table is normalised once and the L2 term counts
    # draws; forcing the per-row path must give the same loss and gradients.
    model = build_model(backbone, data, strategy="adap-tau", negatives="sampled:16x4", l2=0.5,
                        loss_form="reference", embedding_dim=8, seed=0)
    assert model.dense_item_gradient
    batch = (tf.constant([0, 1, 2, 5, 7, 9, 9, 3]), tf.constant([3, 4, 5, 6, 1, 2, 2, 0]))

    def loss_and_gradients():
        with tf.GradientTape() as tape:
            loss = model.compute_loss(batch)
        grads = tape.gradient(loss, model.trainable_variables)
        return float(loss), grads

    dense_loss, dense_grads = loss_and_gradients()
    monkeypatch.setattr(type(model), "dense_item_gradient", property(lambda self: False))
    gathered_loss, gathered_grads = loss_and_gradients()
    assert dense_loss == pytest.approx(gathered_loss, rel=1e-6)
    item_index = next(k for k, v in enumerate(model.trainable_variables)
                      if v is model.item_embedding.embeddings)
    if backbone == "mf":  # LightGCN's propagation densifies both
        assert isinstance(gathered_grads[item_index], tf.IndexedSlices)
        assert isinstance(dense_grads[item_index], tf.Tensor)
    for a, b in zip(dense_grads, gathered_grads):
        np.testing.assert_allclose(tf.convert_to_tensor(a), tf.convert_to_tensor(b),
                                   rtol=1e-5, atol=1e-7)


def test_auto_item_path_takes_the_table_from_a_quarter_of_the_catalogue(data):
    # 40 items: the table path once a step draws 10 or more (4 x 10 >= 40).
    for spec, expected in (("sampled:4", False), ("sampled:3x3", False),
                           ("sampled:10", True), ("sampled:5x2", True), ("in-batch", False)):
        model = build_model("mf", data, negatives=spec, embedding_dim=4, seed=0)
        assert model.dense_item_gradient is expected, spec
    forced = build_model("mf", data, negatives="sampled:4", embedding_dim=4, seed=0)
    forced.item_path = "table"
    assert forced.dense_item_gradient
    with pytest.raises(ValueError, match="item_path must be one of"):
        MatrixFactorization(60, 40, task=AdaptiveRetrieval(num_users=60), item_path="dense")


def test_both_item_paths_train_to_the_same_weights(data):
    """The table and gathered paths compute the same loss: a few steps agree to float
    tolerance (the auto choice never changes results)."""
    weights = []
    for path in ("table", "gathered"):
        model = build_model("mf", data, strategy="adap-tau", negatives="sampled:8x2", l2=1e-3,
                            embedding_dim=8, seed=0)
        model.item_path = path
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
        model.fit(data.train_dataset(32, seed=0), epochs=2, verbose=0)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_xla_train_step_matches_the_graph_step(data):
    weights = []
    for jit in (False, True):
        model = build_model("mf", data, strategy="adap-tau", negatives="sampled:16x8",
                            loss_form="reference", message_dropout=0.0, l2=1e-3,
                            embedding_dim=8, seed=0)
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01), jit_compile=jit)
        model.fit(data.train_dataset(32, seed=0), epochs=2, verbose=0)
        weights.append([v.numpy() for v in model.weights])
    assert len(weights[0]) == len(weights[1])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
