"""adaptau-train end to end: outputs, resume after interruption, load_run."""

import adaptau_tf  # noqa: F401

# isort: split

import csv
import json
import time

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.trainers import runs
from adaptau_tf.trainers import train as trainer

SMALL = "synthetic:num_users=80,num_items=60"


def _args(tmp_path, *extra):
    return trainer.build_parser().parse_args(
        ["--data", SMALL, "--epochs", "4", "--batch-size", "128", "--embedding-dim", "8",
         "--negatives", "sampled:32", "--lr", "0.02", "--verbose", "0",
         "--output", str(tmp_path / "run"), *extra]
    )


class Interrupt(tf.keras.callbacks.Callback):
    """Simulates a crash in the middle of an epoch (after its first batch) or, with
    ``at_end``, at its end: after its evaluation, before its history row."""

    def __init__(self, epoch: int, at_end: bool = False) -> None:
        super().__init__()
        self.epoch = epoch
        self.at_end = at_end

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if not self.at_end and self.current == self.epoch and batch == 0:
            raise KeyboardInterrupt("simulated interruption")

    def on_epoch_end(self, epoch, logs=None):
        if self.at_end and epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def _history_epochs(path):
    with open(path) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_train_writes_outputs_and_load_run_rebuilds_model(tmp_path):
    result = trainer.train(_args(tmp_path, "--strategy", "adap-tau", "--patience", "0"))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result))
    assert metrics["epochs"] == 4 and metrics["protocol"] == "honest"
    for key in ("test_recall@20", "test_ndcg@20", "test_mrr@50"):
        assert 0.0 <= metrics[key] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["num_valid"] > 0 and config["strategy"] == "adap-tau"
    assert _history_epochs(run / "history.csv") == [0, 1, 2, 3]
    header = (run / "history.csv").read_text().splitlines()[0]
    assert "val_ndcg@20" in header and "tau0" in header
    loaded = runs.load_run(run)
    users, items = loaded.model.compute_representations()
    test_eval = runs.evaluators(loaded.data, "honest")[1]
    again = test_eval.evaluate(users, items)
    assert again["recall@20"] == pytest.approx(metrics["test_recall@20"], abs=1e-9)
    assert 1 / float(loaded.model.task.inverse_temperature.numpy()) == pytest.approx(
        metrics["tau0"], rel=1e-6)
    # Prepared data can be passed in (runs on one split share it); the wrong split is refused.
    shared = runs.load_run(run, runs.prepare_data(config))
    evaluator, ids, top = shared.test_rankings()
    assert ids.shape[0] == top.shape[0] == evaluator.num_users
    assert runs.evaluators(shared.data, "honest")[1].evaluate(
        *shared.model.compute_representations())["recall@20"] == pytest.approx(
        metrics["test_recall@20"], abs=1e-9)
    other = runs.prepare_data({**config, "protocol": "paper"})  # no validation split
    with pytest.raises(ValueError, match="training rows; the run had"):
        runs.load_run(run, other)


def test_eval_every_two_keeps_the_metrics_in_history_csv(tmp_path):
    # With CSVLogger the first epoch (no evaluation) fixed the columns: every metric was lost.
    trainer.train(_args(tmp_path, "--strategy", "fixed", "--tau", "0.2", "--patience", "0",
                        "--eval-every", "2"))
    with open(tmp_path / "run" / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3"]
    assert [row["val_ndcg@20"] == "NA" for row in rows] == [True, False, True, False]
    state = json.loads((tmp_path / "run" / "evaluation_state"
                        / "ranking_evaluation_state.json").read_text())
    logged = {h["epoch"]: h["ndcg@20"] for h in state["history"]}
    assert logged.keys() == {1, 3}
    for epoch, value in logged.items():
        assert float(rows[epoch]["val_ndcg@20"]) == pytest.approx(value, rel=1e-9)


def test_interrupted_run_resumes_to_the_same_epoch_count(tmp_path):
    args = _args(tmp_path, "--strategy", "fixed", "--tau", "0.2", "--patience", "0")
    with pytest.raises(KeyboardInterrupt):
        trainer.train(args, extra_callbacks=[Interrupt(2)])
    run = tmp_path / "run"
    assert not (run / "metrics.json").exists()
    assert (run / "backup").exists()
    booked = json.loads((run / "elapsed.json").read_text())["seconds"]
    assert booked > 0  # epochs 0-1, booked at their ends
    (run / "elapsed.json").write_text(json.dumps({"seconds": booked + 1000.0}))
    start = time.perf_counter()
    result = trainer.train(args)
    assert booked + 1000.0 < result["train_seconds"] < booked + 1000.0 + (
        time.perf_counter() - start)  # the earlier processes' time, then this one's
    assert result["epochs"] == 4
    assert _history_epochs(run / "history.csv") == [0, 1, 2, 3]
    assert (run / "backup").exists()  # kept: a larger --epochs extends the run


def test_a_crash_after_the_evaluation_repeats_the_epoch_instead_of_losing_it(tmp_path):
    # The checkpoint used to be written first at an epoch's end: a process killed during
    # the (long) test evaluation resumed at the next epoch, that epoch never evaluated.
    args = _args(tmp_path, "--strategy", "fixed", "--tau", "0.2", "--patience", "0",
                 "--protocol", "paper")
    with pytest.raises(KeyboardInterrupt):
        trainer.train(args, extra_callbacks=[Interrupt(1, at_end=True)])
    run = tmp_path / "run"
    assert _history_epochs(run / "history.csv") == [0]
    result = trainer.train(args)
    assert result["epochs"] == 4
    assert _history_epochs(run / "history.csv") == [0, 1, 2, 3]
    state = json.loads((run / "evaluation_state" / "ranking_evaluation_state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [0, 1, 2, 3]
    with open(run / "history.csv") as handle:
        logged = [float(row["test_ndcg@20"]) for row in csv.DictReader(handle)]
    np.testing.assert_allclose(logged, [h["ndcg@20"] for h in state["history"]], rtol=1e-9)


def test_resume_refuses_other_arguments_and_finished_runs_are_kept(tmp_path):
    trainer.train(_args(tmp_path, "--strategy", "nonorm", "--epochs", "1"))
    with pytest.raises(SystemExit, match="strategy"):
        trainer.train(_args(tmp_path, "--strategy", "fixed", "--epochs", "1"))
    kept = trainer.train(_args(tmp_path, "--strategy", "nonorm", "--epochs", "1"))
    assert kept["strategy"] == "nonorm"


def test_early_stopping_and_paper_protocol(tmp_path):
    args = _args(tmp_path, "--strategy", "fixed", "--protocol", "paper", "--epochs", "30",
                 "--patience", "1", "--lr", "0.5")
    result = trainer.train(args)
    assert result["protocol"] == "paper"
    assert "best_test_ndcg@20" in result
    assert result["epochs"] < 30  # stopped early
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["num_valid"] == 0


def test_cli_main_and_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        trainer.main(["--output", str(tmp_path / "x"), "--margin", "often"])
    assert "often" in capsys.readouterr().err
    assert trainer.main(["--data", SMALL, "--epochs", "1", "--embedding-dim", "4",
                         "--verbose", "0", "--output", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "| recall |" in out and "| ndcg |" in out
    table = trainer.format_metrics_table({"recall@10": 0.5, "ndcg@10": 0.25})
    assert "| recall | 0.5000 |" in table
    assert np.isfinite(json.loads((tmp_path / "cli" / "metrics.json").read_text())["tau0"])


def test_init_from_warm_starts_the_embeddings_and_checks_the_data(tmp_path):
    source = trainer.train(_args(tmp_path, "--strategy", "adap-tau0", "--protocol", "paper"))
    # Learning rate 0: the warm-started run keeps the source's best weights exactly.
    warm = trainer.build_parser().parse_args(
        ["--data", SMALL, "--epochs", "1", "--batch-size", "128", "--embedding-dim", "8",
         "--negatives", "sampled:32", "--lr", "1e-30", "--verbose", "0", "--protocol", "paper",
         "--strategy", "adap-tau", "--init-from", str(tmp_path / "run"),
         "--output", str(tmp_path / "warm")])
    result = trainer.train(warm)
    assert result["test_recall@20"] == pytest.approx(source["test_recall@20"], abs=1e-9)
    config = json.loads((tmp_path / "warm" / "config.json").read_text())
    assert config["init_from"] == str((tmp_path / "run").resolve())
    cold = trainer.train(_args(tmp_path / "cold", "--strategy", "adap-tau", "--protocol",
                               "paper", "--lr", "1e-30", "--epochs", "1"))
    assert cold["test_recall@20"] != pytest.approx(source["test_recall@20"], abs=1e-6)
    # Another split (honest: a validation split is carved out) is refused.
    other = _args(tmp_path / "other", "--init-from", str(tmp_path / "run"))
    with pytest.raises(ValueError, match="training rows; the run had"):
        trainer.train(other)
    with pytest.raises(FileNotFoundError, match="not found"):
        trainer.train(_args(tmp_path / "none", "--init-from", str(tmp_path / "missing")))


def test_an_xla_run_resumes_without_xla(tmp_path):
    # The flag is not part of the experiment (adaptau_tf.trainers.resume.RESUMABLE_DIFFERENCES).
    args = _args(tmp_path, "--negatives", "sampled:32x2", "--patience", "0")  # 64 >= 60 items
    assert args.jit_compile == "auto"
    with pytest.raises(KeyboardInterrupt):
        trainer.train(args, extra_callbacks=[Interrupt(2)])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["jit_compile"] == "auto"
    result = trainer.train(_args(tmp_path, "--negatives", "sampled:32x2", "--patience", "0",
                                 "--jit-compile", "off"))
    assert result["epochs"] == 4
    assert _history_epochs(tmp_path / "run" / "history.csv") == [0, 1, 2, 3]


def test_in_batch_corrections_reach_the_model_and_survive_load_run(tmp_path):
    trainer.train(_args(tmp_path, "--negatives", "in-batch", "--epochs", "1",
                        "--remove-accidental-hits", "--sampling-correction"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["remove_accidental_hits"] is True and config["sampling_correction"] is True
    loaded = runs.load_run(tmp_path / "run")
    assert loaded.model.task.remove_accidental_hits
    counts = np.bincount(loaded.data.train[:, 1], minlength=loaded.data.num_items)
    np.testing.assert_allclose(loaded.model.item_sampling_probability.numpy(),
                               counts / counts.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="in-batch negatives"):
        trainer.train(_args(tmp_path / "other", "--sampling-correction"))
