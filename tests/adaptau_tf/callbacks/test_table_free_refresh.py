"""AdaptiveTemperature without train_pairs or compute_representations (the table-free path)."""

import adaptau_tf  # noqa: F401

# isort: split

import math
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from adaptau_tf.callbacks import AdaptiveTemperature
from adaptau_tf.data import make_synthetic
from adaptau_tf.models import build_model
from adaptau_tf.tasks import AdaptiveRetrieval
from adaptau_tf.temperature.closed_form import active_user_mask
from adaptau_tf.temperature.streaming import statistics_from_sums

#: Table-free against table path, same frozen weights: float32 sums over the
#: epoch's batches against float64 statistics of the tables.
RTOL = 1e-4


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=120, num_items=80, seed=2)


def _snapshot(task):
    accumulator = task.score_accumulator
    return [(v, v.numpy()) for v in (task.user_loss_sum, task.user_loss_count,
                                     accumulator.user_sums, accumulator.totals)]


@pytest.mark.parametrize("estimator", ["mean", "mean-variance"])
def test_table_free_tau_equals_the_table_path_on_a_frozen_mf(data, estimator):
    model = build_model("mf", data, strategy="adap-tau", embedding_dim=8, seed=0,
                        negatives="sampled:32")
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    model.fit(data.train_dataset(64, seed=0), epochs=2, verbose=0,
              callbacks=[AdaptiveTemperature.from_data(data)])  # learn some signal
    model.compile(optimizer=tf.keras.optimizers.SGD(0.0))  # freeze the weights

    # Candidates as a TFRS user has them: raw item ids and the candidate tower.
    def item_tower(item_ids, training=False):
        return tf.math.l2_normalize(tf.gather(model.item_embedding.embeddings, item_ids), -1)

    options = dict(estimator=estimator, warmup_epochs=0, min_gap=0.0)
    free = AdaptiveTemperature(candidates=tf.data.Dataset.range(data.num_items).batch(16),
                               candidate_model=item_tower, **options)
    history = model.fit(data.train_dataset(64, seed=1), epochs=2, verbose=0, callbacks=[free])
    # Epoch 1 has no batch behind it: the τ of the pre-training is kept.
    assert history.history["tau0_accepted"] == [0.0, 1.0]
    assert math.isnan(history.history["mu_pos"][0])

    task = model.task
    saved = _snapshot(task)
    got = free.refresh(2)
    tau_u = 1 / task.user_inverse_temperature.numpy()
    for variable, value in saved:
        variable.assign(value)
    table = AdaptiveTemperature.from_data(data, **options)
    table.set_model(model)
    expected = table.refresh(2)
    for key in ("mu_pos", "mu", "tau0"):
        assert got[key] == pytest.approx(expected[key], rel=RTOL), key
    np.testing.assert_allclose(tau_u, 1 / task.user_inverse_temperature.numpy(), rtol=RTOL)
    assert np.ptp(tau_u) > 0


def test_statistics_from_sums_against_numpy():
    rng = np.random.default_rng(3)
    users, items = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    users /= np.linalg.norm(users, axis=1, keepdims=True)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    pairs = np.stack([rng.integers(0, 6, 40), rng.integers(0, 9, 40)], 1)
    scores = users @ items.T
    positive = scores[pairs[:, 0], pairs[:, 1]]
    mean, second = items.mean(0), items.T @ items / 9
    per_row = np.stack([positive, positive**2, users[pairs[:, 0]] @ mean,
                        np.einsum("bd,de,be->b", users[pairs[:, 0]], second,
                                  users[pairs[:, 0]])], 1)
    sums = np.zeros((6, 4))
    np.add.at(sums, pairs[:, 0], per_row)
    counts = np.bincount(pairs[:, 0], minlength=6).astype(float)
    totals = np.concatenate([[40], per_row.sum(0)])
    stats = statistics_from_sums(counts, sums, totals, 9, 6)
    active = active_user_mask(counts, 0.2)
    kept = active[pairs[:, 0]]
    assert stats.mu_pos == pytest.approx(positive[kept].mean())
    assert stats.var_pos == pytest.approx(positive[kept].var())
    assert stats.mu == pytest.approx(scores[active].mean())
    assert stats.var == pytest.approx(scores[active].var())
    assert (stats.num_active_users, stats.num_active_pairs) == (active.sum(), kept.sum())
    # Without user ids: every row, every user.
    rows = statistics_from_sums(np.zeros(6), np.zeros((6, 4)), totals, 9, 6)
    assert rows.mu_pos == pytest.approx(positive.mean())
    assert rows.mu == pytest.approx((users[pairs[:, 0]] @ mean).mean())
    assert (rows.num_active_users, rows.num_active_pairs) == (6, 40)
    assert statistics_from_sums(counts, sums, np.zeros(5), 9, 6) is None


class _TwoTower(tfrs.Model):
    """Feature towers without a user table (no compute_representations)."""

    def __init__(self, num_users: int, num_items: int, normalize: bool = True, **task_args):
        super().__init__()
        head = [tf.keras.layers.UnitNormalization()] if normalize else []
        self.user_model = tf.keras.Sequential(
            [tf.keras.layers.Embedding(num_users, 8, name="u"), *head])
        self.item_model = tf.keras.Sequential(
            [tf.keras.layers.Embedding(num_items, 8, name="i"), *head])
        self.task = AdaptiveRetrieval(num_users=num_users, **task_args)
        self.pass_ids = True

    def compute_loss(self, features, training=False):
        user_ids, item_ids = features
        return self.task(self.user_model(user_ids), self.item_model(item_ids),
                         user_ids=user_ids if self.pass_ids else None, training=training)


def _fit(model, data, callbacks, epochs=2):
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1))
    return model.fit(data.train_dataset(128, seed=0), epochs=epochs, verbose=0,
                     callbacks=callbacks)


def test_two_tower_model_without_user_ids_trains_with_tau0_from_the_batches(data):
    model = _TwoTower(data.num_users, data.num_items, strategy="adap-tau", reduction="sum")
    model.pass_ids = False
    items = tf.data.Dataset.range(data.num_items).batch(32)
    callback = AdaptiveTemperature(candidates=items, candidate_model=model.item_model,
                                   warmup_epochs=2)
    history = _fit(model, data, [callback], epochs=3)
    assert np.all(np.isfinite(history.history["loss"]))
    # Epoch 2: warm-up prior with |A| = n (no ids) and |D_A| = the epoch's rows.
    expected = 0.7 / math.log(data.num_users * data.num_items / (2 * len(data.train)))
    assert history.history["tau0"][1] == pytest.approx(expected, rel=1e-6)
    assert history.history["tau_u_p10"][2] == history.history["tau_u_p90"][2]  # all at τ0
    assert np.isfinite(history.history["mu"][2]) and model.task.user_loss_count.numpy().sum() == 0


def test_errors_name_what_they_saw(data):
    items = tf.data.Dataset.range(data.num_items).batch(32)
    raw = _TwoTower(data.num_users, data.num_items, normalize=False)
    with pytest.raises(ValueError, match=r"candidate vectors are not unit length: norms min"):
        _fit(raw, data, [AdaptiveTemperature(candidates=items,
                                             candidate_model=raw.item_model)])
    # Unit candidates, raw queries: caught after the first batch.
    model = _TwoTower(data.num_users, data.num_items, normalize=False)
    unit_items = items.map(lambda i: tf.math.l2_normalize(model.item_model(i), -1))
    with pytest.raises(ValueError, match="query vectors of the first batch are not unit length"):
        _fit(model, data, [AdaptiveTemperature(candidates=unit_items)])
    model = _TwoTower(data.num_users, data.num_items)
    with pytest.raises(ValueError, match=f"callback built for 7 users, task has {data.num_users}"):
        _fit(model, data, [AdaptiveTemperature(candidates=items, candidate_model=model.item_model,
                                               num_users=7)])
    with pytest.raises(ValueError, match=f"num_items=3, candidates hold {data.num_items}"):
        _fit(model, data, [AdaptiveTemperature(candidates=items, candidate_model=model.item_model,
                                               num_items=3)])
    with pytest.raises(ValueError, match="float embeddings, got int64.*candidate_model="):
        _fit(model, data, [AdaptiveTemperature(candidates=items)])
    with pytest.raises(ValueError, match="needs train_pairs .* or candidates"):
        AdaptiveTemperature()
    with pytest.raises(ValueError, match="num_users=None"):
        AdaptiveTemperature(data.train)
    with pytest.raises(NotImplementedError, match="tf.data.Dataset"):
        AdaptiveTemperature(candidates=items).get_config()


def test_table_path_refuses_unnormalised_representations(data):
    class Raw(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.task = AdaptiveRetrieval(num_users=data.num_users)

        def compute_representations(self, training=False):
            return tf.fill([data.num_users, 4], 2.0), tf.fill([data.num_items, 4], 0.5)

    callback = AdaptiveTemperature.from_data(data)
    callback.set_model(Raw())
    with pytest.raises(ValueError, match="user vectors are not unit length.*median 4"):
        callback.refresh(0)


@pytest.mark.parametrize("late", [True, False])
def test_a_log_writer_before_the_callback_is_reported(data, tmp_path, late):
    model = _TwoTower(data.num_users, data.num_items)
    callback = AdaptiveTemperature(candidates=tf.data.Dataset.range(data.num_items).batch(32),
                                   candidate_model=model.item_model)
    logger = tf.keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(model, data, [logger, callback] if late else [callback, logger], epochs=1)
    messages = [str(w.message) for w in caught if "comes after" in str(w.message)]
    assert len(messages) == int(late)
    if late:
        assert "after CSVLogger" in messages[0]
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert ("tau0" in header) is not late
