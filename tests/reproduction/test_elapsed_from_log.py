"""reproduction/elapsed_from_log.py, and the Table 3 row of a run resumed across processes."""

import json

import pytest

from reproduction import elapsed_from_log, table3_report

LOG = """gowalla: 29858 users, 40981 items
Epoch 1/3
396/396 - 122s - loss: 7.4686 - test_recall@20: 0.01
Epoch 2/3
Epoch 2/3
396/396 - 290s - loss: 6.8619 - test_recall@20: 0.02
Epoch 3/3
396/396 - 205s - loss: 6.1 - test_recall@20: 0.03
"""


def _finished_run(path, train_seconds, epochs=3, patience=5):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"epochs": 3, "preset": None, "tau": 0.2,
                                                  "patience": patience}))
    (path / "metrics.json").write_text(json.dumps({
        "epochs": epochs, "best_epoch": 2, "train_seconds": train_seconds, "tau0": 0.1,
        "test_recall@20": 0.03, "test_ndcg@20": 0.02}))


def test_sums_the_finished_epochs_and_the_report_books_them(tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    _finished_run(run, train_seconds=205.0)  # the last process's share only
    log.write_text(LOG)
    payload = elapsed_from_log.main([str(run), str(log)])
    assert payload["seconds"] == 122 + 290 + 205 and payload["epochs_booked"] == 3
    assert json.loads((run / "elapsed.json").read_text())["seconds"] == 617.0
    with pytest.raises(SystemExit, match="elapsed.json exists"):
        elapsed_from_log.main([str(run), str(log)])
    # A reused run (its directory is not the cell's) is booked at its elapsed.json.
    cell = {"dataset": "gowalla", "backbone": "mf", "protocol": "paper",
            "strategy": "adap-tau", "dir": tmp_path / "cell"}
    row = table3_report.finished_row(cell, run)
    assert row["seconds"] == 617.0 and row["train_seconds"] == 205.0
    assert row["stopped_by"] == "budget" and row["reused_from"] == str(run)


def test_a_run_without_early_stopping_ran_its_budget_even_with_a_history_row_missing(tmp_path):
    cell = {"dataset": "gowalla", "backbone": "mf", "protocol": "paper",
            "strategy": "adap-tau", "dir": tmp_path / "cell"}
    _finished_run(tmp_path / "stopped", 1.0, epochs=2, patience=5)
    _finished_run(tmp_path / "gap", 1.0, epochs=2, patience=0)  # an epoch never evaluated
    assert table3_report.finished_row(cell, tmp_path / "stopped")["stopped_by"] == \
        "early stopping"
    row = table3_report.finished_row(cell, tmp_path / "gap")
    assert row["stopped_by"] == "budget" and row["epochs"] == 2 and row["epoch_budget"] == 3


def test_a_log_without_epoch_lines_or_an_unfinished_run_is_refused(tmp_path):
    run, log = tmp_path / "run", tmp_path / "run.log"
    _finished_run(run, train_seconds=1.0)
    log.write_text("Epoch 1/3\n")
    with pytest.raises(ValueError, match=r"run.log: no finished-epoch line"):
        elapsed_from_log.main([str(run), str(log)])
    (run / "metrics.json").unlink()
    with pytest.raises(SystemExit, match="no metrics.json"):
        elapsed_from_log.main([str(run), str(log)])
