"""RetrievalModel's in-batch options: accidental-hit removal and the logQ correction."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.data import InteractionData
from adaptau_tf.models import build_model

TAU = 0.2


@pytest.fixture(scope="module")
def data():
    # Item 0 has 4 training pairs, item 1 has 2, items 2-4 one each, item 5 none.
    train = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [0, 1], [1, 1], [2, 2], [3, 3], [4, 4]])
    return InteractionData(num_users=5, num_items=6, train=train,
                           valid=np.zeros((0, 2), np.int64), test=np.array([[4, 5]]))


def numpy_in_batch_loss(users, items, user_ids, item_ids, loss_form, hits, log_q):
    """Mean in-batch softmax loss at τ = TAU, written out row by row."""
    losses = []
    for b, (u, i) in enumerate(zip(user_ids, item_ids)):
        positive = users[u] @ items[i] / TAU
        negatives = [users[u] @ items[c] / TAU - log_q[c]
                     for c in item_ids[np.arange(len(item_ids)) != b]
                     if not (hits and c == i)]
        logits = np.array(negatives + ([positive] if loss_form == "paper" else []))
        top = logits.max()
        losses.append(top + np.log(np.exp(logits - top).sum()) - positive)
    return float(np.mean(losses))


@pytest.mark.parametrize("loss_form", ["paper", "reference"])
@pytest.mark.parametrize("hits,correction", [(False, False), (True, False), (True, True),
                                             (False, True)])
def test_in_batch_loss_against_numpy(data, loss_form, hits, correction):
    model = build_model("mf", data, strategy="fixed", temperature=TAU, loss_form=loss_form,
                        negatives="in-batch", embedding_dim=4, seed=0,
                        remove_accidental_hits=hits, sampling_correction=correction)
    user_ids = np.array([0, 1, 2, 3, 4, 0])
    item_ids = np.array([0, 0, 2, 0, 4, 1])  # item 0 three times: two accidental hits per row
    loss = float(model.compute_loss((tf.constant(user_ids), tf.constant(item_ids))))
    users, items = (t.numpy().astype(np.float64) for t in model.compute_representations())
    share = np.array([4, 2, 1, 1, 1, 0]) / 9
    log_q = np.log(np.where(share > 0, share, 1.0)) if correction else np.zeros(6)
    expected = numpy_in_batch_loss(users, items, user_ids, item_ids, loss_form, hits, log_q)
    assert loss == pytest.approx(expected, rel=1e-5)
    if correction:
        np.testing.assert_allclose(model.item_sampling_probability.numpy(), share, rtol=1e-6)
    assert model.get_config()["sampling_correction"] is correction
    assert model.task.get_config()["remove_accidental_hits"] is hits


def test_correction_changes_the_loss_and_removing_hits_lowers_it(data):
    def loss(**kwargs):
        model = build_model("mf", data, strategy="fixed", temperature=TAU,
                            negatives="in-batch", embedding_dim=4, seed=0, **kwargs)
        return float(model.compute_loss((tf.constant([0, 1, 2]), tf.constant([0, 0, 2]))))

    plain = loss()
    assert loss(remove_accidental_hits=True) < plain  # a masked term leaves every sum
    assert loss(sampling_correction=True) != pytest.approx(plain, rel=1e-4)


def test_sampling_correction_refuses_sampled_negatives_and_bad_counts(data):
    with pytest.raises(ValueError, match="in-batch negatives.*num_negatives=16"):
        build_model("mf", data, negatives="sampled:16", sampling_correction=True)
    model = build_model("mf", data, negatives="in-batch", sampling_correction=True)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        model.set_item_sampling_probability([1, 2, 3])
    with pytest.raises(ValueError, match="min -1"):
        model.set_item_sampling_probability([1, 2, 3, 4, 5, -1])
    plain = build_model("mf", data, negatives="in-batch")
    with pytest.raises(ValueError, match="needs sampling_correction=True"):
        plain.set_item_sampling_probability(np.ones(6))


def test_sampling_probability_is_a_non_trainable_weight_that_checkpoints(data, tmp_path):
    model = build_model("lightgcn", data, negatives="in-batch", sampling_correction=True, seed=0)
    weight = model.item_sampling_probability
    assert any(w is weight for w in model.non_trainable_weights)
    assert not any(w is weight for w in model.trainable_weights)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    fresh = build_model("lightgcn", data, negatives="in-batch", sampling_correction=True, seed=1)
    fresh.item_sampling_probability.assign(np.zeros(6))
    tf.train.Checkpoint(model=fresh).read(path).assert_existing_objects_matched()
    np.testing.assert_allclose(fresh.item_sampling_probability.numpy(),
                               np.array([4, 2, 1, 1, 1, 0]) / 9, rtol=1e-6)
