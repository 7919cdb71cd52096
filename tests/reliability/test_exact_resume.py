"""A run killed (SIGKILL) in the middle of an epoch and rerun ends where the
uninterrupted run ends: same data order, negatives, dropout, τ and
early-stopping state, so the same test metrics and weights, bit for bit."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from adaptau_tf.trainers.runs import load_run

ARGS = ["--data", "synthetic:num_users=600,num_items=400", "--epochs", "6",
        "--batch-size", "64", "--negatives", "sampled:64", "--dropout", "0.1",
        "--strategy", "adap-tau", "--lr", "0.01", "--patience", "0", "--verbose", "0"]


def _train(output, **popen):
    command = [sys.executable, "-m", "adaptau_tf.trainers.train", *ARGS, "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, **popen)


def _epochs_logged(output):
    history = output / "history.csv"
    return max(0, len(history.read_text().splitlines()) - 1) if history.exists() else 0


def test_a_run_killed_mid_epoch_resumes_bit_identical(tmp_path):
    whole = tmp_path / "whole"
    assert _train(whole).wait(timeout=600) == 0
    killed = tmp_path / "killed"
    process = _train(killed)
    deadline = time.time() + 600
    while _epochs_logged(killed) < 3 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 4
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert not (killed / "metrics.json").exists()
    rerun = _train(killed)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()[-2000:]
    a = json.loads((whole / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"]
    assert a["tau0"] == b["tau0"]
    for x, y in zip(load_run(whole).model.get_weights(), load_run(killed).model.get_weights()):
        np.testing.assert_array_equal(x, y)
