"""Resuming and extending adaptau-train run directories (trainers/resume.py)."""

import adaptau_tf  # noqa: F401

# isort: split

import csv
import json
import shutil

import numpy as np
import pytest

from adaptau_tf.trainers import runs
from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.resume import check_resume, extend_finished_run
from tests.trainers.test_train import Interrupt

SMALL = "synthetic:num_users=80,num_items=60"


def _args(tmp_path, epochs, *extra):
    return trainer.build_parser().parse_args(
        ["--data", SMALL, "--epochs", str(epochs), "--batch-size", "128",
         "--embedding-dim", "8", "--negatives", "sampled:32", "--lr", "0.02",
         "--verbose", "0", "--output", str(tmp_path / "run"), *extra])


def _history(run):
    with open(run / "history.csv") as handle:
        return [(int(row["epoch"]), float(row["tau0"])) for row in csv.DictReader(handle)]


def _weights(run):
    return runs.load_run(run).model.get_weights()


def test_a_finished_run_is_extended_from_its_last_epoch(tmp_path):
    run = tmp_path / "run"
    flags = ("--strategy", "adap-tau", "--patience", "0", "--warmup-epochs", "1")
    first = trainer.train(_args(tmp_path, 2, *flags))
    before = _weights(run)
    history_before = _history(run)

    extended = trainer.train(_args(tmp_path, 4, *flags))

    assert extended["epochs"] == 4
    assert [epoch for epoch, _ in _history(run)] == [0, 1, 2, 3]  # 2 and 3 only were new
    assert _history(run)[:2] == history_before
    kept = json.loads((run / "metrics.epochs2.json").read_text())
    assert kept == json.loads(json.dumps(first))
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 4
    assert json.loads((run / "config.json").read_text())["epochs"] == 4
    after = _weights(run)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    # The same command again keeps the extended run.
    assert trainer.train(_args(tmp_path, 4, *flags)) == json.loads(json.dumps(extended))


def test_extension_continues_the_optimizer_not_a_restart(tmp_path):
    # Extending 1 -> 2 epochs equals an uninterrupted 2-epoch run up to the data
    # order of epoch 2, so its loss continues below epoch 1's (a restart from the
    # initialisation would repeat epoch 1's loss).
    run = tmp_path / "run"
    flags = ("--strategy", "fixed", "--tau", "0.2", "--patience", "0")
    trainer.train(_args(tmp_path, 1, *flags))
    trainer.train(_args(tmp_path, 2, *flags))
    with open(run / "history.csv") as handle:
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 2 and losses[1] < losses[0] - 1e-3


def test_extension_refusals_name_the_reason(tmp_path):
    run = tmp_path / "run"
    flags = ("--strategy", "fixed", "--tau", "0.2", "--patience", "0")
    trainer.train(_args(tmp_path, 2, *flags))
    with pytest.raises(SystemExit, match="already ran 2 epochs; --epochs 1"):
        trainer.train(_args(tmp_path, 1, *flags))
    with pytest.raises(SystemExit, match=r"tau: 0\.2 -> 0\.3"):
        trainer.train(_args(tmp_path, 3, "--strategy", "fixed", "--tau", "0.3",
                            "--patience", "0"))
    assert (run / "metrics.json").exists()  # nothing renamed by a refusal
    shutil.rmtree(run / "backup")
    with pytest.raises(SystemExit, match="without keeping its training state"):
        trainer.train(_args(tmp_path, 3, *flags))
    assert (run / "metrics.json").exists()


def test_an_early_stopped_run_is_not_extended(tmp_path):
    args = _args(tmp_path, 30, "--strategy", "fixed", "--protocol", "paper",
                 "--patience", "1", "--lr", "0.5")
    result = trainer.train(args)
    assert result["epochs"] < 30
    with pytest.raises(SystemExit, match=f"stopped early after {result['epochs']} of 30"):
        trainer.train(_args(tmp_path, 40, "--strategy", "fixed", "--protocol", "paper",
                            "--patience", "1", "--lr", "0.5"))


def test_an_unfinished_run_relaunched_below_its_epochs_finishes_there(tmp_path):
    # Stopping a long run early: rerun it with --epochs at or below the epochs it
    # has trained. It trains no more, finishes with its best weights, and records
    # the epochs run as its budget, so that a larger --epochs can extend it later.
    run = tmp_path / "run"
    flags = ("--strategy", "adap-tau0", "--patience", "0", "--warmup-epochs", "1")
    with pytest.raises(KeyboardInterrupt):
        trainer.train(_args(tmp_path, 5, *flags), extra_callbacks=[Interrupt(2)])
    assert not (run / "metrics.json").exists()
    interrupted = _history(run)
    assert [epoch for epoch, _ in interrupted] == [0, 1]

    finished = trainer.train(_args(tmp_path, 1, *flags))

    assert finished["epochs"] == 2
    assert _history(run) == interrupted  # no epoch trained again
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    extended = trainer.train(_args(tmp_path, 3, *flags))
    assert extended["epochs"] == 3
    assert [epoch for epoch, _ in _history(run)] == [0, 1, 2]


def test_check_resume_allows_only_the_budget_to_differ(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = trainer.run_config(_args(tmp_path, 5, "--strategy", "nonorm"))
    (run / "config.json").write_text(json.dumps(config))
    check_resume(run, {**config, "epochs": 9, "verbose": 2})
    with pytest.raises(SystemExit, match=r"lr: 0\.02 -> 0\.1"):
        check_resume(run, {**config, "lr": 0.1})
    (run / "metrics.json").write_text(json.dumps({"epochs": 5}))
    assert extend_finished_run(run, config) == {"epochs": 5}


def test_a_run_written_before_a_flag_existed_resumes_with_its_old_value(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = trainer.run_config(_args(tmp_path, 5, "--negatives", "in-batch"))
    old = {k: v for k, v in config.items()
           if k not in ("remove_accidental_hits", "sampling_correction")}
    (run / "config.json").write_text(json.dumps(old))
    check_resume(run, config)  # the flags' defaults are what the old run did
    with pytest.raises(SystemExit, match=r"sampling_correction: False -> True"):
        check_resume(run, {**config, "sampling_correction": True})


def test_a_run_written_before_the_scoring_rule_resumes_and_keeps_cosine(tmp_path):
    """A config.json without score/compare_scores is a cosine run: it resumes with
    the defaults, refuses --score dot, and is rebuilt ranking by cosine."""
    config = trainer.run_config(_args(tmp_path, 2))
    trainer.train(_args(tmp_path, 2))
    run = tmp_path / "run"
    recorded = json.loads((run / "config.json").read_text())
    old = {k: v for k, v in recorded.items() if k not in ("score", "compare_scores")}
    (run / "config.json").write_text(json.dumps(old))
    check_resume(run, config)
    with pytest.raises(SystemExit, match=r"score: 'cosine' -> 'dot'"):
        check_resume(run, {**config, "score": "dot"})
    assert runs.load_run(run).model.score == "cosine"
