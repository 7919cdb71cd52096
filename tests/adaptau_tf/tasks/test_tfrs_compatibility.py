"""AdaptiveRetrieval takes what tfrs.tasks.Retrieval takes, and says when it is not refreshed."""

import adaptau_tf  # noqa: F401

# isort: split

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from adaptau_tf.tasks import AdaptiveRetrieval, ScoreAccumulator


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    peak = x.max(axis=1, keepdims=True)
    return peak[:, 0] + np.log(np.exp(x - peak).sum(axis=1))


@pytest.fixture
def batch():
    rng = np.random.default_rng(5)
    return {
        "query": _unit(rng.normal(size=(6, 8))),
        "candidates": _unit(rng.normal(size=(6, 8))),
        "ids": np.array([b"a", b"b", b"a", b"c", b"d", b"b"]),  # rows 0/2 and 1/5 share ids
        "weights": np.array([1.0, 0.5, 2.0, 0.0, 1.0, 3.0], np.float32),
    }


def _numpy_rows(query, candidates, tau, ids=None):
    """Paper-form rows, in-batch (``C >= B``), accidental hits (same id) masked."""
    logits = query.astype(np.float64) @ candidates.astype(np.float64).T / tau
    rows = np.arange(len(query))
    if ids is not None:
        hits = ids[: len(query), None] == ids[None, :]
        hits[rows, rows] = False
        logits = np.where(hits, -np.inf, logits)
    return _logsumexp(logits) - logits[rows, rows]


def test_sum_reduction_equals_tfrs_retrieval_with_string_ids_and_weights(batch):
    tau = 0.1
    ours = AdaptiveRetrieval(num_users=np.int64(3), temperature=tau, reduction="sum",
                             remove_accidental_hits=True)
    theirs = tfrs.tasks.Retrieval(temperature=tau, remove_accidental_hits=True)
    args = (batch["query"], batch["candidates"])
    kwargs = {"candidate_ids": batch["ids"], "sample_weight": batch["weights"]}
    expected = (batch["weights"] * _numpy_rows(*args, tau, batch["ids"])).sum()
    assert float(theirs(*args, **kwargs)) == pytest.approx(expected, rel=1e-5)
    assert float(ours(*args, **kwargs)) == pytest.approx(expected, rel=1e-5)
    # The default mean reduction: the same rows, divided by the batch size.
    mean = AdaptiveRetrieval(num_users=3, temperature=tau, remove_accidental_hits=True)
    assert float(mean(*args, **kwargs)) == pytest.approx(expected / 6, rel=1e-5)


def test_extra_candidates_and_score_mask_match_tfrs(batch):
    rng = np.random.default_rng(6)
    candidates = np.concatenate([batch["candidates"], _unit(rng.normal(size=(3, 8)))])
    mask = np.ones((6, 9), bool)
    mask[0, 7] = mask[4, 1] = False
    ours = AdaptiveRetrieval(num_users=3, temperature=0.2, reduction="sum")
    theirs = tfrs.tasks.Retrieval(temperature=0.2)
    got = float(ours(batch["query"], candidates, score_mask=mask))
    logits = batch["query"].astype(np.float64) @ candidates.T / 0.2
    masked = np.where(mask, logits, -np.inf)
    expected = (_logsumexp(masked) - np.diag(logits)).sum()
    assert got == pytest.approx(expected, rel=1e-5)
    assert float(theirs(batch["query"], candidates, score_mask=mask)) == pytest.approx(
        expected, rel=1e-5)


def test_integer_ids_of_any_width_and_mismatched_dtypes(batch):
    task = AdaptiveRetrieval(num_users=3, temperature=0.2, remove_accidental_hits=True)
    int_ids = np.array([1, 2, 1, 3, 4, 2], np.int32)
    loss = task(batch["query"], batch["candidates"], candidate_ids=int_ids)
    expected = _numpy_rows(batch["query"], batch["candidates"], 0.2, int_ids).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="string and int64"):
        task(batch["query"], batch["candidates"], candidate_ids=batch["ids"],
             negative_embeddings=batch["candidates"][:2], negative_ids=np.array([1, 2]))


def test_without_user_ids_every_row_uses_tau0_and_nothing_is_accumulated(batch):
    task = AdaptiveRetrieval(num_users=4, strategy="adap-tau")
    task.inverse_temperature.assign(1 / 0.25)
    task.user_inverse_temperature.assign(1 / np.array([0.1, 0.5, 0.9, 2.0], np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # never refreshed: tested below
        loss = task(batch["query"], batch["candidates"], training=True)
    expected = _numpy_rows(batch["query"], batch["candidates"], 0.25).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert task.user_loss_count.numpy().sum() == 0
    with pytest.raises(ValueError, match="'cu-tau'.*needs user_ids"):
        AdaptiveRetrieval(num_users=4, strategy="cu-tau")(batch["query"], batch["candidates"])


def test_user_id_errors_quote_what_they_received(batch):
    task = AdaptiveRetrieval(num_users=4, temperature=0.2)
    with pytest.raises(ValueError, match="integer indices.*got dtype string"):
        task(batch["query"], batch["candidates"], user_ids=batch["ids"])
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocabulary size \\+ 1"):
        task(batch["query"], batch["candidates"], user_ids=np.array([0, 1, 2, 3, 4, 0]))
    for bad in (True, 0, 2.5, "7"):
        with pytest.raises(ValueError, match="num_users must be a positive int"):
            AdaptiveRetrieval(num_users=bad)
    with pytest.raises(ValueError, match="'median'"):
        AdaptiveRetrieval(num_users=3, reduction="median")
    clone = AdaptiveRetrieval.from_config(
        AdaptiveRetrieval(num_users=np.int32(3), reduction="sum").get_config())
    assert clone.reduction == "sum" and clone.num_users == 3 and type(clone.num_users) is int


def test_training_none_accumulates_inside_a_gradient_tape_only(batch):
    task = AdaptiveRetrieval(num_users=3, temperature=0.2, track_user_loss=True)
    ids = np.array([0, 1, 2, 0, 1, 2])
    task(batch["query"], batch["candidates"], user_ids=ids)
    assert task.user_loss_count.numpy().sum() == 0
    with tf.GradientTape():
        task(batch["query"], batch["candidates"], user_ids=ids)
    np.testing.assert_array_equal(task.user_loss_count.numpy(), [2, 2, 2])


def _train_calls(task, batch, steps):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(steps):
            task(batch["query"], batch["candidates"], training=True)
    return [str(w.message) for w in caught]


def test_refresh_monitor_warns_without_refresh_and_when_refreshes_stop(batch):
    task = AdaptiveRetrieval(num_users=3, strategy="adap-tau0")
    caught = _train_calls(task, batch, 3)
    assert len(caught) == 1 and "never refreshed" in caught[0]  # once, at the first step
    # With a refresh every 4 steps (an epoch), nothing is reported ...
    for _ in range(3):
        task.mark_refreshed()
        assert _train_calls(task, batch, 4) == []
    # ... until 2 x 4 + 1 steps pass without one.
    task.mark_refreshed()
    caught = _train_calls(task, batch, 12)
    assert len(caught) == 1 and "9, 4" in caught[0] and "AdaptiveTemperature" in caught[0]
    # Fixed strategies need no refresh.
    assert _train_calls(AdaptiveRetrieval(num_users=3, temperature=0.1), batch, 2) == []


def test_refresh_monitor_prints_inside_model_fit(capfd):
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 5, 64), rng.integers(0, 7, 64)

    class TwoTower(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.users = tf.keras.layers.Embedding(5, 4)
            self.items = tf.keras.layers.Embedding(7, 4)
            self.task = AdaptiveRetrieval(num_users=5)

        def compute_loss(self, features, training=False):
            return self.task(tf.math.l2_normalize(self.users(features[0]), -1),
                             tf.math.l2_normalize(self.items(features[1]), -1))

    model = TwoTower()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    model.fit(tf.data.Dataset.from_tensor_slices((users, items)).batch(16), epochs=2,
              verbose=0)
    printed = capfd.readouterr().err
    assert printed.count("were never refreshed") == 1
    assert model.task.refresh_monitor.steps_since_refresh.numpy() == 8


def test_score_accumulator_sums_match_numpy():
    rng = np.random.default_rng(1)
    query, items = _unit(rng.normal(size=(5, 4))), _unit(rng.normal(size=(9, 4)))
    positives = rng.normal(size=5).astype(np.float32)
    user_ids = np.array([2, 0, 2, 1, 2])
    accumulator = ScoreAccumulator(num_users=3)
    assert not accumulator.enabled
    mean, second = items.mean(0), items.T @ items / 9
    accumulator.set_candidate_moments(mean, second)
    accumulator.update(query, positives, tf.constant(user_ids, tf.int64))
    per_row = np.stack([positives, positives**2, query @ mean,
                        np.einsum("bd,de,be->b", query, second, query)], 1)
    expected = np.zeros((3, 4))
    np.add.at(expected, user_ids, per_row)
    np.testing.assert_allclose(accumulator.user_sums.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(accumulator.totals.numpy()[:5],
                               np.concatenate([[5], per_row.sum(0)]), rtol=1e-5)
    np.testing.assert_allclose(accumulator.totals.numpy()[5:], [5, 5], rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[B, 4\].*\(5, 3\)"):
        accumulator.update(query[:, :3], positives)
    with pytest.raises(ValueError, match="3-dimensional now, 4 before"):
        accumulator.set_candidate_moments(np.zeros(3), np.eye(3))
    assert accumulator.weights == [accumulator.user_sums, accumulator.totals]  # ē, C not saved


def test_the_unit_temperature_loss_of_the_statistics_matches_numpy():
    """unit_softmax_loss (the per-user statistics' fast path) against a NumPy softmax."""
    from adaptau_tf.tasks.scores import unit_softmax_loss

    rng = np.random.default_rng(3)
    pos = rng.uniform(-1, 1, 16)
    neg = rng.uniform(-1, 1, (16, 9)) - rng.uniform(0, 3, (16, 9))  # cosines minus logQ
    keep = rng.uniform(size=(16, 9)) > 0.2
    for form in ("paper", "reference"):
        got = unit_softmax_loss(tf.constant(pos, tf.float32), tf.constant(neg, tf.float32),
                                tf.constant(keep), form).numpy()
        terms = np.where(keep, np.exp(neg), 0.0).sum(axis=1)
        if form == "paper":
            terms += np.exp(pos)
        np.testing.assert_allclose(got, np.log(terms) - pos, rtol=1e-5, atol=1e-6)
