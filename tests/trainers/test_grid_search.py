"""adaptau-grid-search: keras-tuner grid over fixed τ, outputs, best τ, resumption."""

import adaptau_tf  # noqa: F401

# isort: split

import csv
import json

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.trainers import grid_search, runs

SMALL = "synthetic:num_users=80,num_items=60"


def _args(output, *extra):
    return grid_search.build_parser().parse_args(
        ["--data", SMALL, "--epochs", "2", "--taus", "0.1,0.3,1.0", "--batch-size", "128",
         "--embedding-dim", "8", "--negatives", "sampled:32", "--lr", "0.02",
         "--output", str(output), *extra])


class Interrupt(tf.keras.callbacks.Callback):
    """Simulates a crash in the first batch of epoch 2 of the second trial."""

    def __init__(self):
        super().__init__()
        self.trials = 0

    def on_train_begin(self, logs=None):
        self.trials += 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.trials == 2 and self.epoch == 1 and batch == 0:
            raise KeyboardInterrupt("simulated interruption")


def _refuse_training(*args, **kwargs):
    raise AssertionError("a finished trial was trained again")


def test_grid_table_plot_best_tau_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "grid"
    payload = grid_search.grid_search(_args(out, "--test-best"))
    trials = payload["trials"]
    assert [t["tau"] for t in trials] == [0.1, 0.3, 1.0]
    assert all(t["epochs"] == 2 and t["seconds"] > 0 for t in trials)
    best = max(trials, key=lambda t: t["valid_ndcg@20"])
    assert payload["best_tau"] == best["tau"] and payload["complete"]
    assert payload["objective"] == "valid_ndcg@20" and payload["monitored_split"] == "valid"
    assert payload["total_seconds"] == pytest.approx(sum(t["seconds"] for t in trials))
    assert 0 <= payload["best_test"]["test_recall@20"] <= 1
    with open(out / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["tau"]) for r in rows] == [0.1, 0.3, 1.0]
    assert {"valid_recall@20", "valid_ndcg@20", "epochs", "seconds"} <= set(rows[0])
    png = (out / "sensitivity.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert json.loads((out / "trials.json").read_text())["best_tau"] == best["tau"]
    kept = sorted(p.parent.name for p in (out / "tuner").glob("trial_*/weights"))
    assert kept == [f"trial_{best['trial']}"]  # --keep-weights best

    monkeypatch.setattr(grid_search.TemperatureGridTuner, "_fit", _refuse_training)
    again = grid_search.grid_search(_args(out))
    assert again["trials"] == trials and again["best_tau"] == payload["best_tau"]
    with pytest.raises(SystemExit, match="lr"):
        grid_search.grid_search(_args(out, "--lr", "0.5"))


def test_interrupted_search_resumes_the_running_trial(tmp_path, monkeypatch):
    out = tmp_path / "grid"
    with pytest.raises(KeyboardInterrupt):
        grid_search.grid_search(_args(out), extra_callbacks=[Interrupt()])
    assert (out / "tuner" / "trial_0" / "result.json").exists()
    assert (out / "tuner" / "trial_1" / "backup").exists()
    fitted = []
    original = grid_search.TemperatureGridTuner._fit

    def counting(self, tau, trial_dir):
        fitted.append(tau)
        return original(self, tau, trial_dir)

    monkeypatch.setattr(grid_search.TemperatureGridTuner, "_fit", counting)
    payload = grid_search.grid_search(_args(out))
    assert fitted == [0.3, 1.0]  # τ = 0.1 kept; the interrupted τ = 0.3 resumed
    assert [t["epochs"] for t in payload["trials"]] == [2, 2, 2] and payload["complete"]
    with open(out / "tuner" / "trial_1" / "history.csv") as handle:
        assert [int(r["epoch"]) for r in csv.DictReader(handle)] == [0, 1]


def test_paper_protocol_selects_on_test_by_recall(tmp_path):
    payload = grid_search.grid_search(_args(tmp_path / "g", "--protocol", "paper",
                                            "--objective", "recall@20", "--test-best"))
    assert payload["monitored_split"] == "test" and payload["protocol"] == "paper"
    assert payload["objective"] == "valid_recall@20"
    best = next(t for t in payload["trials"] if t["tau"] == payload["best_tau"])
    assert best["valid_recall@20"] == max(t["valid_recall@20"] for t in payload["trials"])
    # the "valid" number of the paper protocol is the test metric of the best epoch
    assert payload["best_test"]["test_recall@20"] == pytest.approx(best["valid_recall@20"])


def test_tau_grid_and_cli_errors(capsys):
    parser = grid_search.build_parser()
    grid = grid_search.tau_grid(parser.parse_args(["--output", "x"]))
    assert len(grid) == 50 and grid[0] == 0.02 and grid[-1] == 1.0 and grid[2] == 0.06
    narrow = parser.parse_args(["--output", "x", "--tau-min", "0.1", "--tau-max", "0.3",
                                "--tau-step", "0.1"])
    assert grid_search.tau_grid(narrow) == [0.1, 0.2, 0.3]
    with pytest.raises(SystemExit):
        grid_search.main(["--output", "x", "--taus", "0.1,-1"])
    assert "positive" in capsys.readouterr().err


def test_in_batch_corrections_reach_the_trials(tmp_path):
    args = _args(tmp_path / "g", "--taus", "0.2", "--epochs", "1", "--negatives", "in-batch",
                 "--remove-accidental-hits", "--sampling-correction")
    grid_search.grid_search(args)
    settings = json.loads((tmp_path / "g" / "grid_config.json").read_text())
    assert settings["remove_accidental_hits"] is True and settings["sampling_correction"]
    tuner_dir = tmp_path / "g" / "tuner" / "trial_0"
    config = {key: settings[key] for key in grid_search.SHARED_OPTIONS}
    data = runs.prepare_data({**config, "monitor": "ndcg@20"})
    model = runs.make_model({**config, "strategy": "fixed", "tau": 0.2}, data)
    model.load_weights(str(tuner_dir / "weights" / "model")).expect_partial()
    assert model.task.remove_accidental_hits
    counts = np.bincount(data.train[:, 1], minlength=data.num_items)
    np.testing.assert_allclose(model.item_sampling_probability.numpy(),
                               counts / counts.sum(), rtol=1e-6)


def test_a_search_saved_before_the_correction_flags_resumes(tmp_path, monkeypatch):
    out = tmp_path / "g"
    grid_search.grid_search(_args(out, "--taus", "0.2", "--epochs", "1"))
    saved = json.loads((out / "grid_config.json").read_text())
    old = {k: v for k, v in saved.items()
           if k not in ("remove_accidental_hits", "sampling_correction")}
    (out / "grid_config.json").write_text(json.dumps(old))
    monkeypatch.setattr(grid_search.TemperatureGridTuner, "_fit", _refuse_training)
    again = grid_search.grid_search(_args(out, "--taus", "0.2", "--epochs", "1"))
    assert [t["tau"] for t in again["trials"]] == [0.2]
    (out / "grid_config.json").write_text(json.dumps(old))
    with pytest.raises(SystemExit, match="remove_accidental_hits: False -> True"):
        grid_search.grid_search(_args(out, "--taus", "0.2", "--epochs", "1",
                                      "--negatives", "in-batch", "--remove-accidental-hits"))
