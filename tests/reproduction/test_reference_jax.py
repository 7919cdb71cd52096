"""reproduction/reference_jax.py against the package: data, τ0, τ_u, metrics, train steps,
a smoke run.

The JAX script is the package's MF training loop re-implemented for a GPU machine
without TensorFlow; its figures only mean something if its pieces compute what
the package computes.
"""

import adaptau_tf  # noqa: F401

# isort: split

import argparse
import json
import math

import numpy as np
import pytest
import tensorflow as tf

jax = pytest.importorskip("jax")

from adaptau_tf.data import load_data, make_synthetic  # noqa: E402
from adaptau_tf.models import build_model  # noqa: E402
from adaptau_tf.temperature import closed_form  # noqa: E402
from adaptau_tf.trainers import runs  # noqa: E402
from reproduction import reference_jax as rj  # noqa: E402


@pytest.fixture
def tiny(tmp_path):
    """A LightGCN-format folder: 40 users, 60 items, duplicates, user 0 without test items."""
    rng = np.random.default_rng(3)
    lines_train, lines_test = [], []
    for u in range(40):
        items = rng.choice(60, size=int(rng.integers(2, 12)), replace=False)
        cut = max(1, len(items) * 3 // 4)
        train = [int(i) for i in items[:cut]]
        lines_train.append(" ".join(map(str, [u, *train, train[0]])))  # duplicate item
        lines_test.append(" ".join(map(str, [u, *(items[cut:].tolist() if u else [])])))
    (tmp_path / "train.txt").write_text("\n".join(lines_train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(lines_test) + "\n")
    return tmp_path


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_loader_matches_the_package(tiny):
    users, items, tests, n, m = rj.load_lightgcn(tiny)
    data = load_data(f"lightgcn:{tiny}")
    assert (n, m) == (data.num_users, data.num_items)
    assert sorted(zip(users.tolist(), items.tolist())) == sorted(
        zip(*[a.tolist() for a in data.train_csr.nonzero()]))
    assert sum(t.size for t in tests) == len(data.test)


def test_bad_line_names_the_file_and_line(tmp_path):
    (tmp_path / "train.txt").write_text("0 1 2\n1 x\n")
    (tmp_path / "test.txt").write_text("0 3\n")
    with pytest.raises(ValueError, match=r"train.txt:2: not an integer"):
        rj.load_lightgcn(tmp_path)


def test_tau0_and_tau_u_match_the_closed_forms():
    rng = np.random.default_rng(0)
    un, itn = _unit(rng.normal(size=(25, 6))), _unit(rng.normal(size=(18, 6)))
    pu, pi = rng.integers(0, 25, 90), rng.integers(0, 18, 90)
    active = np.unique(pu)
    stats = closed_form.score_statistics(un.astype(np.float32), itn.astype(np.float32),
                                         pu, pi, active)
    log_ratio = math.log(len(active) * 18 / (2.0 * len(pu)))
    tau0, mu_pos, mu = rj.tau0_closed_form(jax.numpy.asarray(un), jax.numpy.asarray(itn),
                                           pu, pi, active, log_ratio)
    assert (mu_pos, mu) == pytest.approx((stats.mu_pos, stats.mu), abs=1e-5)
    assert tau0 == pytest.approx(closed_form.tau0_mean(stats), rel=1e-4)
    loss = rng.uniform(5.0, 9.0, 25)
    has = rng.random(25) > 0.2
    for margin, two_beta in (("mean", 1.0), ("0.9", 0.25)):
        ours = rj.user_temperatures(0.1, loss, has, margin, two_beta)
        package = closed_form.user_temperatures(
            0.1, loss, has, margin="mean" if margin == "mean" else float(margin),
            two_beta=two_beta)
        np.testing.assert_allclose(ours, package, rtol=1e-12)
    assert rj.user_temperatures(0.1, loss, has, "0.9", 0.25)[~has].tolist() == [0.1] * int(
        (~has).sum())


def test_evaluator_matches_the_package(tiny):
    users, items, tests, n, m = rj.load_lightgcn(tiny)
    rng = np.random.default_rng(1)
    un, itn = _unit(rng.normal(size=(n, 8))), _unit(rng.normal(size=(m, 8)))
    recall, ndcg = rj.Evaluator(users, items, tests, n, m, chunk=16)(
        jax.numpy.asarray(un, jax.numpy.float32), jax.numpy.asarray(itn, jax.numpy.float32))
    data = load_data(f"lightgcn:{tiny}")
    package = runs.evaluators(data, "paper")[1].evaluate(un.astype(np.float32),
                                                            itn.astype(np.float32))
    assert recall == pytest.approx(package["recall@20"], abs=1e-6)
    assert ndcg == pytest.approx(package["ndcg@20"], abs=1e-6)


def test_smoke_run_writes_config_epochs_and_summary(tiny, tmp_path):
    out = tmp_path / "run.jsonl"
    rj.main(["--data", str(tiny), "--out", str(out), "--strategy", "adap-tau", "--recipe",
             "paper-mf-gowalla", "--warmup-epochs", "1", "--epochs", "3", "--batch-size", "64",
             "--negatives", "8", "--dim", "8", "--lr", "0.05", "--patience", "1"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["config"]["loss_form"] == "reference" and lines[0]["config"]["items"] == 60
    epochs, summary = lines[1:-1], lines[-1]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    users, _, _, n, m = rj.load_lightgcn(tiny)
    counts = np.bincount(users, minlength=n)
    active = closed_form.active_user_mask(counts)
    warmup = closed_form.warmup_tau0(int(active.sum()), m, int(counts[active].sum()))
    assert epochs[0]["tau0"] == pytest.approx(warmup, rel=1e-9)  # epoch 1: the prior
    assert epochs[0]["tau_u_p90"] == epochs[0]["tau0"]  # no losses yet: τ_u = τ0
    assert epochs[1]["tau_u_min"] < epochs[1]["tau0"]  # m_u the 0.9 quantile
    best = max(epochs, key=lambda e: e["test_ndcg@20"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["test_recall@20"] == best["test_recall@20"]
    assert summary["patience_stop_epoch"] <= 3


@pytest.mark.parametrize("jit", [False, True])
def test_train_steps_match_the_package_with_per_user_tau(jit):
    # Three steps of the recipe's Adap-τ computation from the same tables: reference
    # loss form, per-user τ on the negatives, per-row draws (the package's dense item
    # gradient path), L2, Adam, a user twice in a batch; no dropout (its random stream
    # differs). The package draws the JAX step's negatives (reproduced from its key).
    data = make_synthetic(num_users=30, num_items=50, seed=1)
    n, m, d, batch, draws, steps = data.num_users, data.num_items, 8, 12, 16, 3
    rng = np.random.default_rng(5)
    user0 = rng.uniform(-0.3, 0.3, (n, d)).astype(np.float32)
    item0 = rng.uniform(-0.3, 0.3, (m, d)).astype(np.float32)
    tau_u = rng.uniform(0.04, 0.2, n)
    tau0 = 0.1
    users = rng.integers(0, n, (steps, batch))
    users[:, 1] = users[:, 0]
    items = rng.integers(0, m, (steps, batch))
    keys = [jax.random.PRNGKey(7 + s) for s in range(steps)]
    negative_ids = np.stack([np.asarray(jax.random.randint(jax.random.split(k)[1],
                                                           (batch, draws), 0, m))
                             for k in keys])

    args = argparse.Namespace(dropout=0.0, draws=0, negatives=draws, loss_form="reference",
                              lr=0.01, l2=1e-3)
    step = rj.make_step(args, m)
    params = {"user": jax.numpy.asarray(user0), "item": jax.numpy.asarray(item0)}
    zeros = jax.tree.map(jax.numpy.zeros_like, params)
    opt = {"m": zeros, "v": zeros, "t": jax.numpy.zeros((), jax.numpy.float32)}
    sums = counts = jax.numpy.zeros(n, jax.numpy.float32)
    t_all = jax.numpy.asarray(1.0 / tau_u, jax.numpy.float32)
    losses = []
    for s in range(steps):
        params, opt, sums, counts, loss = step(params, opt, sums, counts, users[s], items[s],
                                               keys[s], jax.numpy.float32(1.0 / tau0), t_all)
        losses.append(float(loss))

    model = build_model("mf", data, strategy="adap-tau", loss_form="reference",
                        negatives=f"sampled:{draws}x{batch}", l2=1e-3, embedding_dim=d, seed=0)
    assert model.dense_item_gradient
    model.user_embedding.embeddings.assign(user0)
    model.item_embedding.embeddings.assign(item0)
    model.task.inverse_temperature.assign(1.0 / tau0)
    model.task.user_inverse_temperature.assign((1.0 / tau_u).astype(np.float32))
    drawn = tf.constant(negative_ids, tf.int64)
    model.sample_negatives = lambda: tf.gather(drawn, model.optimizer.iterations)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), jit_compile=jit)
    dataset = tf.data.Dataset.from_tensor_slices((users, items))
    history = model.fit(dataset, epochs=1, verbose=0).history

    np.testing.assert_allclose(model.user_embedding.embeddings.numpy(), params["user"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.item_embedding.embeddings.numpy(), params["item"],
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.task.user_loss_sum.numpy(), sums, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.task.user_loss_count.numpy(), counts)
    assert history["loss"][0] == pytest.approx(np.mean(losses), rel=1e-5)
    assert np.abs(model.user_embedding.embeddings.numpy() - user0).max() > 1e-3  # it moved
