import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import csv

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from adaptau_tf.evaluation import RankingEvaluation, RankingEvaluator

NUM_USERS, NUM_ITEMS, DIM = 12, 30, 4


class TinyModel(tf.keras.Model):
    """Scores all items for a batch of users; trained with softmax cross-entropy."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        init = tf.keras.initializers.RandomNormal(stddev=0.1, seed=0)
        self.user_table = self.add_weight(
            name="users", shape=(NUM_USERS, DIM), initializer=init
        )
        self.item_table = self.add_weight(
            name="items", shape=(NUM_ITEMS, DIM), initializer=init
        )

    def call(self, user_ids):
        users = tf.gather(self.user_table, tf.reshape(user_ids, [-1]))
        return tf.matmul(users, self.item_table, transpose_b=True)

    def compute_representations(self, training=False):
        return tf.identity(self.user_table), tf.identity(self.item_table)


class ScriptedEvaluator:
    """Stands in for RankingEvaluator: returns a scripted recall@20 per call."""

    ks = (20,)
    metric_names = ("recall@20", "ndcg@20")

    def __init__(self, values):
        self.values = list(values)
        self.calls = 0

    def evaluate(self, users, items):
        assert tuple(users.shape) == (NUM_USERS, DIM)
        assert tuple(items.shape) == (NUM_ITEMS, DIM)
        value = self.values[self.calls]
        self.calls += 1
        return {"recall@20": value, "ndcg@20": value / 2}


class WeightRecorder(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch] = [w.copy() for w in self.model.get_weights()]


def make_model(learning_rate=0.5):
    model = TinyModel()
    model(np.zeros(1, np.int64))
    model.compile(
        optimizer=tf.keras.optimizers.SGD(learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def training_data():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(NUM_USERS), 4)
    items = rng.integers(0, NUM_ITEMS, size=users.size)
    return users, items


def fit(model, callbacks, epochs):
    users, items = training_data()
    return model.fit(
        users, items, batch_size=16, epochs=epochs, callbacks=callbacks, verbose=0
    )


def real_evaluator():
    users, items = training_data()
    train = sp.csr_matrix(
        (np.ones(users.size), (users, items)), shape=(NUM_USERS, NUM_ITEMS)
    )
    rng = np.random.default_rng(1)
    test = sp.csr_matrix(
        (
            np.ones(NUM_USERS),
            (np.arange(NUM_USERS), rng.integers(0, NUM_ITEMS, NUM_USERS)),
        ),
        shape=(NUM_USERS, NUM_ITEMS),
    )
    test = test - test.multiply(train.astype(bool))
    test.eliminate_zeros()
    return RankingEvaluator(train, test, ks=(10, 20))


def test_metrics_land_in_logs_history_and_csv(tmp_path):
    evaluator = real_evaluator()
    model = make_model()
    evaluation = RankingEvaluation(
        evaluator, patience=None, restore_best_weights=False, verbose=0
    )
    csv_path = tmp_path / "log.csv"
    history = fit(model, [evaluation, tf.keras.callbacks.CSVLogger(str(csv_path))], 3)

    for key in ("val_recall@20", "val_ndcg@10", "val_mrr@20", "val_eval_seconds"):
        assert len(history.history[key]) == 3, key
    assert [h["epoch"] for h in evaluation.history] == [0, 1, 2]
    recalls = history.history["val_recall@20"]
    assert evaluation.best_value == max(recalls)
    assert evaluation.best_epoch == int(np.argmax(recalls))
    # No restore: the last logged values are those of the final weights.
    final = evaluator.evaluate(*model.compute_representations())
    assert history.history["val_ndcg@20"][-1] == final["ndcg@20"]
    assert recalls[-1] == final["recall@20"]
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert float(rows[1]["val_recall@20"]) == pytest.approx(recalls[1])


def test_early_stopping_and_best_weights_restored():
    # best 0.3 at epoch 1; 0.2, 0.25, 0.3 (not strictly better) -> stop after epoch 4
    evaluator = ScriptedEvaluator([0.1, 0.3, 0.2, 0.25, 0.3, 0.9, 0.9, 0.9])
    model = make_model()
    recorder = WeightRecorder()
    evaluation = RankingEvaluation(evaluator, patience=3, verbose=0)
    history = fit(model, [evaluation, recorder], epochs=8)

    assert len(history.history["loss"]) == 5
    assert evaluator.calls == 5
    assert evaluation.best_value == 0.3
    assert evaluation.best_epoch == 1
    assert evaluation.stopped_epoch == 4
    assert history.history["val_recall@20"] == [0.1, 0.3, 0.2, 0.25, 0.3]
    final = model.get_weights()
    for got, best, last in zip(final, recorder.weights[1], recorder.weights[4]):
        np.testing.assert_array_equal(got, best)
        assert not np.array_equal(got, last)  # training did move the weights


def test_no_early_stopping_without_patience_and_no_restore():
    evaluator = ScriptedEvaluator([0.5, 0.1, 0.1, 0.1])
    model = make_model()
    recorder = WeightRecorder()
    evaluation = RankingEvaluation(
        evaluator, patience=0, restore_best_weights=False, verbose=0
    )
    fit(model, [evaluation, recorder], epochs=4)
    assert evaluator.calls == 4
    assert evaluation.best_epoch == 0
    for got, last in zip(model.get_weights(), recorder.weights[3]):
        np.testing.assert_array_equal(got, last)


def test_every_n_epochs_and_prefixed_monitor(capsys):
    evaluator = ScriptedEvaluator([0.1, 0.2, 0.3])
    evaluation = RankingEvaluation(
        evaluator, every_n_epochs=2, monitor="test_ndcg@20", prefix="test_", verbose=1
    )
    history = fit(make_model(), [evaluation], epochs=6)
    assert [h["epoch"] for h in evaluation.history] == [1, 3, 5]
    assert history.history["test_ndcg@20"] == pytest.approx([0.05, 0.1, 0.15])
    assert evaluation.best_value == pytest.approx(0.15)
    assert "Epoch 6: test_recall@20=0.30000" in capsys.readouterr().out


def test_resume_with_backup_and_restore(tmp_path):
    class Interrupt(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("simulated preemption")

    # Run 1: best at epoch 1, interrupted after epoch 2.
    model = make_model()
    recorder = WeightRecorder()
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    first = RankingEvaluation(
        ScriptedEvaluator([0.1, 0.5, 0.2]),
        patience=2,
        verbose=0,
        backup_dir=str(tmp_path / "eval"),
    )
    with pytest.raises(RuntimeError, match="simulated preemption"):
        fit(model, [first, backup, recorder, Interrupt()], epochs=6)

    # Run 2 (fresh objects, as in a new process): resumes at epoch 3; epoch 3 is
    # the second evaluation without improvement -> patience 2 stops there.
    model = make_model()
    second = RankingEvaluation(
        ScriptedEvaluator([0.3, 0.9]),
        patience=2,
        verbose=0,
        backup_dir=str(tmp_path / "eval"),
    )
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    history = fit(model, [second, backup], epochs=6)
    assert len(history.history["loss"]) == 1
    assert second.best_epoch == 1
    assert second.best_value == 0.5
    assert [h["epoch"] for h in second.history] == [0, 1, 2, 3]
    for got, best in zip(model.get_weights(), recorder.weights[1]):
        np.testing.assert_array_equal(got, best)
    assert not list((tmp_path / "eval").iterdir())  # state removed at train end


def test_kept_backup_extends_a_finished_run(tmp_path):
    # Run 1 finishes its 3 epochs (best 0.5 at epoch 1) and keeps its state.
    model = make_model()
    recorder = WeightRecorder()
    first = RankingEvaluation(ScriptedEvaluator([0.1, 0.5, 0.2]), patience=3, verbose=0,
                              backup_dir=str(tmp_path / "eval"), delete_backup=False)
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"),
                                                 delete_checkpoint=False)
    fit(model, [first, backup, recorder], epochs=3)
    assert (tmp_path / "eval").exists() and list((tmp_path / "eval").iterdir())

    # Run 2 (a new process) with a larger budget: epochs 3 and 4 only; the best
    # of run 1 and the patience count (1) carry over, so 0.4 and 0.3 at epochs
    # 3-4 leave the best at epoch 1 and stop at the third evaluation without gain.
    model = make_model()
    second = RankingEvaluation(ScriptedEvaluator([0.4, 0.3]), patience=3, verbose=0,
                               backup_dir=str(tmp_path / "eval"), delete_backup=False)
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"),
                                                 delete_checkpoint=False)
    history = fit(model, [second, backup], epochs=6)
    assert history.epoch == [3, 4]
    assert [h["epoch"] for h in second.history] == [0, 1, 2, 3, 4]
    assert second.best_epoch == 1 and second.best_value == 0.5
    assert second.stopped_epoch == 4
    for got, best in zip(model.get_weights(), recorder.weights[1]):
        np.testing.assert_array_equal(got, best)
    assert second.get_config()["delete_backup"] is False


def test_resume_without_backup_dir_does_not_crash(tmp_path):
    class Interrupt(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated preemption")

    model = make_model()
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    evaluation = RankingEvaluation(ScriptedEvaluator([0.5, 0.5]), verbose=0)
    with pytest.raises(RuntimeError, match="simulated preemption"):
        fit(model, [evaluation, backup, Interrupt()], epochs=4)

    # Documented loss: without backup_dir the best state restarts at the resume.
    model = make_model()
    backup = tf.keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    evaluation = RankingEvaluation(ScriptedEvaluator([0.2, 0.1]), verbose=0)
    history = fit(model, [evaluation, backup], epochs=4)
    assert history.history["val_recall@20"] == [0.2, 0.1]
    assert [h["epoch"] for h in evaluation.history] == [2, 3]
    assert evaluation.best_epoch == 2
    assert evaluation.best_value == 0.2


def test_argument_errors_and_config():
    evaluator = ScriptedEvaluator([])
    with pytest.raises(ValueError, match=r"monitor='recall@5' is not a metric"):
        RankingEvaluation(evaluator, monitor="recall@5")
    with pytest.raises(ValueError, match="every_n_epochs must be >= 1, got 0"):
        RankingEvaluation(evaluator, every_n_epochs=0)
    with pytest.raises(
        ValueError, match="patience must be None or an int >= 0, got -1"
    ):
        RankingEvaluation(evaluator, patience=-1)
    with pytest.raises(TypeError, match="must be a RankingEvaluator, got dict"):
        RankingEvaluation({})
    config = RankingEvaluation(
        evaluator, monitor="val_ndcg@20", patience=4
    ).get_config()
    assert config["monitor"] == "val_ndcg@20"
    assert config["patience"] == 4
    assert (
        tf.keras.utils.get_registered_object("adaptau_tf>RankingEvaluation")
        is RankingEvaluation
    )


def test_model_without_compute_representations():
    model = tf.keras.Sequential([tf.keras.layers.Dense(NUM_ITEMS)])
    model.compile(optimizer="sgd", loss="mse")
    evaluation = RankingEvaluation(ScriptedEvaluator([0.1]), verbose=0)
    with pytest.raises(TypeError, match="compute_representations"):
        model.fit(
            np.zeros((2, 3)),
            np.zeros((2, NUM_ITEMS)),
            callbacks=[evaluation],
            verbose=0,
        )


class TwoRuleModel(TinyModel):
    """TinyModel with a scoring rule: "dot" ranks the tables, "cosine" their unit rows."""

    score = "dot"

    def compute_representations(self, training=False, score=None):
        users, items = tf.identity(self.user_table), tf.identity(self.item_table)
        if (score or self.score) == "cosine":
            return tf.math.l2_normalize(users, axis=1), tf.math.l2_normalize(items, axis=1)
        return users, items


def test_every_rule_is_logged_and_the_models_own_drives_selection():
    users, items = training_data()
    model = TwoRuleModel()
    model(np.zeros(1, np.int64))
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    evaluator = RankingEvaluator(
        sp.csr_matrix((NUM_USERS, NUM_ITEMS)),
        sp.csr_matrix((np.ones(NUM_USERS), (np.arange(NUM_USERS), np.arange(NUM_USERS))),
                      shape=(NUM_USERS, NUM_ITEMS)), ks=(5,))
    callback = RankingEvaluation(evaluator, monitor="recall@5", patience=None,
                                 scores=("cosine", "dot"), verbose=0)
    history = model.fit(users, items, epochs=2, verbose=0, callbacks=[callback])
    logs = history.history
    for epoch in range(2):
        model_dot = {k: v[epoch] for k, v in logs.items()}
        # The plain keys are the model's own rule (dot), the rule keys each rule.
        assert model_dot["val_recall@5"] == model_dot["val_dot_recall@5"]
        assert {"val_cosine_recall@5", "val_cosine_ndcg@5"} <= set(model_dot)
    final = {rule: evaluator.evaluate(*model.compute_representations(score=rule))["recall@5"]
             for rule in ("cosine", "dot")}
    assert logs["val_cosine_recall@5"][-1] == pytest.approx(final["cosine"])
    assert logs["val_dot_recall@5"][-1] == pytest.approx(final["dot"])
    assert callback.best_value == max(logs["val_dot_recall@5"])
    with pytest.raises(ValueError, match="distinct"):
        RankingEvaluation(evaluator, monitor="recall@5", scores=("dot", "dot"))
