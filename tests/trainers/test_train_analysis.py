"""adaptau-train --tensorboard / --track-groups and the tau_u.npy output."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.callbacks import read_groups_csv
from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.resume import check_resume

SMALL = "synthetic:num_users=80,num_items=60"


def _args(tmp_path, *extra):
    return trainer.build_parser().parse_args(
        ["--data", SMALL, "--epochs", "2", "--batch-size", "128", "--embedding-dim", "8",
         "--negatives", "sampled:32", "--lr", "0.02", "--verbose", "0", "--patience", "0",
         "--output", str(tmp_path / "run"), *extra])


def test_tensorboard_and_track_groups(tmp_path):
    tb = tmp_path / "tb"
    result = trainer.train(_args(tmp_path, "--strategy", "adap-tau", "--tensorboard", str(tb),
                                 "--track-groups"))
    run = tmp_path / "run"
    tau_u = np.load(run / "tau_u.npy")
    config = json.loads((run / "config.json").read_text())
    assert tau_u.shape == (config["num_users"],)
    assert np.median(tau_u) == pytest.approx(result["tau_u_quantiles"]["p50"])
    groups = read_groups_csv(run / "groups.csv")
    assert groups["epochs"].tolist() == [1, 2] and groups["magnitude"].shape == (2, 10)
    tags = set()
    for path in (tb / "adaptau").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(value.tag for value in event.summary.value)
    assert {"temperature/tau0", "temperature/mu_pos", "temperature/tau_u",
            "magnitude/group_09", "val_recall@20_by_group/group_00"} <= tags
    assert any((tb / "train").glob("events.out.tfevents.*"))  # Keras' own board too


def test_without_flags_no_groups_file_and_old_configs_resume(tmp_path):
    trainer.train(_args(tmp_path, "--strategy", "fixed", "--tau", "0.2"))
    run = tmp_path / "run"
    assert not (run / "groups.csv").exists() and (run / "tau_u.npy").exists()
    # A run directory written before --track-groups existed still resumes.
    config = json.loads((run / "config.json").read_text())
    del config["track_groups"]
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.json").unlink()
    check_resume(run, trainer.run_config(_args(tmp_path, "--strategy", "fixed",
                                            "--tau", "0.2", "--track-groups")))
