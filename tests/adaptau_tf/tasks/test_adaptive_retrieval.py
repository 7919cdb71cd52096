"""AdaptiveRetrieval against NumPy softmax computations."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.tasks import AdaptiveRetrieval
from adaptau_tf.temperature import AdapTau, FixedTemperature, NoNorm


def _logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    peak = x.max(axis=axis, keepdims=True)
    return (peak + np.log(np.exp(x - peak).sum(axis=axis, keepdims=True))).squeeze(axis)


def numpy_losses(query, positives, negatives, g, t, form):
    """Per-row losses of ALGORITHM.md §1. ``negatives=None``: in-batch."""
    q, c = query.astype(np.float64), positives.astype(np.float64)
    pos = (q * c).sum(1)
    if negatives is None:
        full = q @ c.T
        neg = np.stack([np.delete(full[b], b) for b in range(len(q))])
    else:
        neg = q @ negatives.astype(np.float64).T
    neg_logits = neg * t[:, None]
    if form == "paper":
        return -t * pos + _logsumexp(np.concatenate([(t * pos)[:, None], neg_logits], 1))
    return -g * pos + _logsumexp(neg_logits)


@pytest.fixture
def batch():
    rng = np.random.default_rng(3)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    return {
        "query": unit(rng.normal(size=(5, 8))).astype(np.float32),
        "positives": unit(rng.normal(size=(5, 8))).astype(np.float32),
        "negatives": unit(rng.normal(size=(7, 8))).astype(np.float32),
        "user_ids": np.array([0, 3, 1, 3, 2]),
    }


def _adaptive_task(form: str) -> AdaptiveRetrieval:
    task = AdaptiveRetrieval(num_users=4, strategy=AdapTau(), loss_form=form)
    task.inverse_temperature.assign(1 / 0.2)
    task.user_inverse_temperature.assign(1 / np.array([0.1, 0.3, 0.25, 0.5], np.float32))
    return task


@pytest.mark.parametrize("form", ["paper", "reference"])
@pytest.mark.parametrize("mode", ["sampled", "in-batch"])
def test_loss_matches_numpy(batch, form, mode):
    task = _adaptive_task(form)
    negatives = batch["negatives"] if mode == "sampled" else None
    loss = task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
                negative_embeddings=negatives)
    t = 1 / np.array([0.1, 0.3, 0.25, 0.5])[batch["user_ids"]]
    g = np.full(5, 1 / 0.2)
    expected = numpy_losses(batch["query"], batch["positives"], negatives, g, t, form)
    np.testing.assert_allclose(
        task.per_example_loss(batch["query"], batch["positives"], batch["user_ids"],
                              negatives).numpy(), expected, rtol=1e-5)
    assert float(loss) == pytest.approx(expected.mean(), rel=1e-5)


def test_fixed_temperature_paper_form_equals_tfrs_in_batch_softmax(batch):
    task = AdaptiveRetrieval(num_users=4, strategy=FixedTemperature(0.1))
    loss = task(batch["query"], batch["positives"], user_ids=batch["user_ids"])
    logits = batch["query"] @ batch["positives"].T / 0.1
    expected = (-np.diag(logits) + _logsumexp(logits)).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_no_norm_uses_raw_scores(batch):
    task = AdaptiveRetrieval(num_users=4, strategy=NoNorm())
    q, c = batch["query"] * 3.0, batch["positives"] * 2.0
    loss = task(q, c, user_ids=batch["user_ids"])
    logits = q.astype(np.float64) @ c.T
    assert float(loss) == pytest.approx((-np.diag(logits) + _logsumexp(logits)).mean(), rel=1e-5)


@pytest.mark.parametrize("form", ["paper", "reference"])
def test_gradient_wrt_positive_score_is_softmax_gradient_over_tau(batch, form):
    task = _adaptive_task(form)
    query = tf.constant(batch["query"])
    positives = tf.Variable(batch["positives"])
    with tf.GradientTape() as tape:
        loss = task(query, positives, user_ids=batch["user_ids"],
                    negative_embeddings=batch["negatives"])
    grad = tape.gradient(loss, positives).numpy()
    # loss = mean_b ℓ_b and s+_b = q_b · c_b, so dloss/dc_b = (1/B) dℓ_b/ds+_b · q_b.
    q = batch["query"]
    d_score = 5 * (grad * q).sum(1) / (q * q).sum(1)
    tau_u = np.array([0.1, 0.3, 0.25, 0.5])[batch["user_ids"]]
    if form == "paper":
        pos = (q * batch["positives"]).sum(1) / tau_u
        neg = q @ batch["negatives"].T / tau_u[:, None]
        p_pos = np.exp(pos - _logsumexp(np.concatenate([pos[:, None], neg], 1)))
        expected = (p_pos - 1.0) / tau_u
    else:
        expected = np.full(5, -1 / 0.2)
    np.testing.assert_allclose(d_score, expected, rtol=1e-4)


def test_accidental_hits_and_hard_negatives(batch):
    negatives = np.concatenate([batch["positives"][:1], batch["negatives"]])
    negative_ids = np.array([10, 1, 2, 3, 4, 5, 6, 7])
    ids = np.array([10, 11, 12, 13, 14])
    task = AdaptiveRetrieval(num_users=4, strategy=FixedTemperature(0.5),
                             remove_accidental_hits=True)
    loss = task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
                candidate_ids=ids, negative_embeddings=negatives, negative_ids=negative_ids)
    t = np.full(5, 2.0)
    rows = numpy_losses(batch["query"], batch["positives"], negatives, t, t, "paper")
    # Row 0's positive (id 10) is also negative 0: that column is dropped for row 0 only.
    rows[0] = numpy_losses(batch["query"][:1], batch["positives"][:1], negatives[1:],
                           t[:1], t[:1], "paper")[0]
    assert float(loss) == pytest.approx(rows.mean(), rel=1e-5)

    hard = AdaptiveRetrieval(num_users=4, strategy=FixedTemperature(0.5), num_hard_negatives=2)
    hard_loss = hard(batch["query"], batch["positives"], user_ids=batch["user_ids"],
                     negative_embeddings=batch["negatives"])
    scores = batch["query"] @ batch["negatives"].T
    top2 = np.sort(scores, axis=1)[:, -2:]
    pos = (batch["query"] * batch["positives"]).sum(1)
    expected = -2 * pos + _logsumexp(np.concatenate([2 * pos[:, None], 2 * top2], 1))
    assert float(hard_loss) == pytest.approx(expected.mean(), rel=1e-5)


@pytest.mark.parametrize("form", ["paper", "reference"])
def test_grouped_negatives_score_each_row_against_its_draw(batch, form):
    rng = np.random.default_rng(11)
    groups = rng.normal(size=(2, 3, 8)).astype(np.float32)
    groups /= np.linalg.norm(groups, axis=-1, keepdims=True)
    groups[1, 2] = batch["positives"][3]  # row 3 (draw 3 mod 2 = 1) meets its own positive
    group_ids = np.array([[20, 21, 22], [23, 24, 13]])
    probability = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], np.float32)
    ids = np.array([10, 11, 12, 13, 14])
    task = _adaptive_task(form)
    task.remove_accidental_hits = True
    loss = task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
                candidate_ids=ids, negative_embeddings=groups, negative_ids=group_ids,
                negative_sampling_probability=probability)
    t = 1 / np.array([0.1, 0.3, 0.25, 0.5])[batch["user_ids"]]
    g = np.full(5, 1 / 0.2)
    rows = []
    for b in range(5):
        draw = b % 2
        keep = group_ids[draw] != ids[b]
        q, c = batch["query"][b:b + 1].astype(np.float64), batch["positives"][b:b + 1]
        pos = float((q * c).sum())
        neg_logits = (q @ groups[draw][keep].astype(np.float64).T)[0] * t[b]
        neg_logits -= np.log(probability[draw][keep])
        if form == "paper":
            rows.append(-t[b] * pos + _logsumexp(np.concatenate([[t[b] * pos], neg_logits])))
        else:
            rows.append(-g[b] * pos + _logsumexp(neg_logits))
    assert (group_ids[1] == ids[3]).sum() == 1
    assert float(loss) == pytest.approx(np.mean(rows), rel=1e-5)


def test_mean_reduction_is_batch_size_invariant_and_weighted(batch):
    task = AdaptiveRetrieval(num_users=4, strategy=FixedTemperature(0.2))
    args = dict(negative_embeddings=batch["negatives"])
    full = task(batch["query"], batch["positives"], user_ids=batch["user_ids"], **args)
    rows = task.per_example_loss(batch["query"], batch["positives"], batch["user_ids"],
                                 batch["negatives"]).numpy()
    assert float(full) == pytest.approx(rows.mean(), rel=1e-6)
    weights = np.array([1.0, 0.0, 2.0, 1.0, 0.0], np.float32)
    weighted = task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
                    sample_weight=weights, **args)
    # compute_average_loss: sum(w * l) / batch size.
    assert float(weighted) == pytest.approx((weights * rows).sum() / 5, rel=1e-6)


@pytest.mark.parametrize("mode", ["sampled", "in-batch"])
def test_accumulators_hold_unit_temperature_losses_only_in_training(batch, mode):
    task = _adaptive_task("paper")
    negatives = batch["negatives"] if mode == "sampled" else None
    task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
         negative_embeddings=negatives, training=False)
    assert task.user_loss_count.numpy().sum() == 0
    for _ in range(2):
        task(batch["query"], batch["positives"], user_ids=batch["user_ids"],
             negative_embeddings=negatives, training=True)
    ones = np.ones(5)
    unit = numpy_losses(batch["query"], batch["positives"], negatives, ones, ones, "paper")
    expected_sum = 2 * np.bincount(batch["user_ids"], weights=unit, minlength=4)
    np.testing.assert_allclose(task.user_loss_sum.numpy(), expected_sum, rtol=1e-5)
    np.testing.assert_array_equal(task.user_loss_count.numpy(), [2, 2, 2, 4])
    task.reset_user_loss()
    assert task.user_loss_sum.numpy().sum() == 0


@pytest.mark.parametrize("strategy", ["adap-tau", "nonorm"])
def test_plain_in_batch_path_equals_the_masked_path(batch, strategy):
    """Plain in-batch rows (extra candidate rows included) take the unmasked softmax;
    an all-true score_mask forces the general path: same loss, gradient and statistics."""
    candidates = np.concatenate([batch["positives"], batch["negatives"]])
    results = []
    for mask in (None, np.ones((5, 12), bool)):
        task = AdaptiveRetrieval(num_users=4, strategy=strategy, track_user_loss=True)
        if strategy == "adap-tau":
            task.user_inverse_temperature.assign(1 / np.array([0.1, 0.3, 0.25, 0.5], np.float32))
        query = tf.Variable(batch["query"] * (1.0 if strategy == "adap-tau" else 2.5))
        with tf.GradientTape() as tape:
            loss = task(query, candidates, user_ids=batch["user_ids"], score_mask=mask,
                        training=True)
        results.append((float(loss), tape.gradient(loss, query).numpy(),
                        task.user_loss_sum.numpy()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-5)
    assert results[0][2].sum() > 0


def test_fixed_strategy_does_not_accumulate_unless_asked(batch):
    for track, expected in ((False, 0), (True, 5)):
        task = AdaptiveRetrieval(num_users=4, temperature=0.1, track_user_loss=track)
        task(batch["query"], batch["positives"], user_ids=batch["user_ids"], training=True)
        assert task.user_loss_count.numpy().sum() == expected


def test_config_round_trip_and_errors():
    task = AdaptiveRetrieval(num_users=7, strategy="cu-tau", temperature=0.3,
                             loss_form="reference", num_hard_negatives=4)
    clone = AdaptiveRetrieval.from_config(task.get_config())
    assert clone.strategy.key == "cu-tau" and clone.strategy.num_users == 7
    assert clone.loss_form == "reference" and clone.num_hard_negatives == 4
    assert AdaptiveRetrieval(num_users=3).strategy.key == "adap-tau"
    assert AdaptiveRetrieval(num_users=3, temperature=0.2).strategy.key == "fixed"
    with pytest.raises(ValueError, match="'softmax'"):
        AdaptiveRetrieval(num_users=3, loss_form="softmax")
    with pytest.raises(ValueError, match="'warm'"):
        AdaptiveRetrieval(num_users=3, strategy="warm")
    with pytest.raises(ValueError, match="-2"):
        AdaptiveRetrieval(num_users=-2)
