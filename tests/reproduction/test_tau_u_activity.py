"""reproduction/tau_u_activity.py: τ_u against user activity, checked against NumPy."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import numpy as np
import pytest

from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.runs import prepare_data
from benchmarks import reporting
from reproduction import tau_u_activity


def _strict(constant):
    raise ValueError(f"{constant} in a result file")


def _ranks(x):
    return np.argsort(np.argsort(x)).astype(np.float64)


def test_profile_against_numpy():
    rng = np.random.default_rng(0)
    counts = rng.permutation(np.arange(0, 300))  # distinct counts: no ties, one zero
    tau_u = 0.1 + 0.001 * counts + rng.normal(0.0, 0.05, counts.size)  # distinct values
    out = tau_u_activity.activity_profile(tau_u, counts, [0, 50, 200], tau0=0.12)
    active = counts > 0
    ra, rb = _ranks(tau_u[active]), _ranks(counts[active])
    expected = np.corrcoef(ra, rb)[0, 1]
    assert out["spearman"] == pytest.approx(expected, abs=1e-12)
    assert 0.3 < out["spearman"] < 1.0
    lows, highs = [1, 50, 200], [50, 200, 10**9]  # the user with count 0 is left out
    for bucket, low, high in zip(out["buckets"], lows, highs):
        inside = (counts >= low) & (counts < high)
        assert bucket["users"] == inside.sum()
        assert bucket["mean_tau_u"] == pytest.approx(tau_u[inside].mean())
        assert bucket["mean_ratio"] == pytest.approx(tau_u[inside].mean() / 0.12)
    assert [b["max_count"] for b in out["buckets"]] == [49, 199, None]


def test_hand_cases():
    counts = np.array([3, 1, 2, 5])
    up = tau_u_activity.activity_profile(np.array([.3, .1, .2, .5]), counts, [0], 0.2)
    down = tau_u_activity.activity_profile(np.array([.1, .3, .2, .0]), counts, [0], 0.2)
    assert up["spearman"] == pytest.approx(1.0)
    assert down["spearman"] == pytest.approx(-1.0)
    assert up["buckets"][0]["mean_ratio"] == pytest.approx(1.375)  # mean 0.275 / 0.2


def test_constant_tau_u_has_no_correlation():
    # Adap-τ0: every τ_u is τ0, a rank correlation is undefined (not NaN in JSON).
    out = tau_u_activity.activity_profile(np.full(4, 0.1), np.array([1, 2, 3, 0]), [0], 0.1)
    assert out["spearman"] is None
    assert out["buckets"][0]["mean_ratio"] == pytest.approx(1.0)


def test_bucket_means_against_numpy():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 100, 500)
    users = rng.choice(500, 300, replace=False)
    values = rng.random(300)
    out = tau_u_activity.bucket_means(values, users, counts, [0, 10, 50])
    for bucket, low, high in zip(out, [0, 10, 50], [10, 50, 10**9]):
        inside = (counts[users] >= low) & (counts[users] < high)
        assert bucket["users"] == inside.sum()
        assert bucket["mean"] == pytest.approx(values[inside].mean())
    # Hand case: user 2 (count 9) and user 1 (count 8) share the upper bucket.
    hand = tau_u_activity.bucket_means(np.array([1.0, 0.0, 0.5]), np.array([0, 2, 1]),
                                       np.array([1, 9, 8]), [0, 5, 20])
    assert hand == [{"users": 1, "mean": 1.0}, {"users": 2, "mean": 0.25},
                    {"users": 0, "mean": None}]  # None, not NaN: the JSON stays valid
    with pytest.raises(ValueError, match=r"user ids must lie in \[0, 3\), got 0..3"):
        tau_u_activity.bucket_means(np.ones(2), np.array([0, 3]), np.array([1, 2, 3]), [0])


@pytest.mark.parametrize("kwargs, match", [
    ({"tau_u": np.ones(3)}, "3 users, counts 4"),
    ({"edges": [0, 20, 20]}, "strictly increasing"),
    ({"edges": []}, "strictly increasing"),
    ({"tau0": 0.0}, "positive"),
])
def test_bad_input(kwargs, match):
    args = {"tau_u": np.ones(4), "counts": np.array([1, 2, 3, 4]), "edges": [0, 2],
            "tau0": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        tau_u_activity.activity_profile(**args)


def test_main_on_a_trained_run(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    run = tmp_path / "run"
    assert trainer.main(["--data", "synthetic:num_users=80,num_items=60", "--backbone", "mf",
                         "--strategy", "adap-tau", "--epochs", "3", "--warmup-epochs", "1",
                         "--patience", "0", "--lr", "0.02",
                         "--batch-size", "128", "--embedding-dim", "8",
                         "--negatives", "sampled:32", "--verbose", "0",
                         "--output", str(run)]) == 0
    tau_u_activity.main([str(run), "--name", "tiny", "--edges", "0,5", "--test-metrics"])
    payload = json.loads((tmp_path / "results" / "tau_u_activity_tiny.json").read_text(),
                         parse_constant=_strict)  # NaN / Infinity are not JSON
    assert {"commit", "machine", "command"} <= set(payload)
    (result,) = payload["runs"]
    counts = prepare_data(json.loads((run / "config.json").read_text())).train_user_counts
    assert sum(b["users"] for b in result["buckets"]) == (counts > 0).sum()
    assert result["settings"]["strategy"] == "adap-tau"
    tau_u = np.load(run / "tau_u.npy")
    assert np.ptp(tau_u) > 0  # per-user temperatures, not one value
    assert result["spearman"] == pytest.approx(
        np.corrcoef(_ranks(tau_u[counts > 0]), _ranks(counts[counts > 0]))[0, 1], abs=0.05)
    assert "per activity bucket" in (tmp_path / "results" / "tau_u_activity_tiny.md").read_text()
    # The per-bucket test metrics come from the run's restored best weights: their
    # user-weighted means are the run's own test figures (metrics.json).
    test = json.loads((run / "metrics.json").read_text())["test"]
    for name in ("recall@20", "ndcg@20"):
        assert result["test"][name] == pytest.approx(test[name], abs=1e-6)
        users = np.array([b["test_users"] for b in result["buckets"]])
        means = np.array([b[f"test_{name}"] for b in result["buckets"]], dtype=object)
        filled = users > 0
        assert all(m is None for m in means[~filled]) and filled.any()
        assert (users[filled] * means[filled]).sum() / users.sum() == pytest.approx(
            test[name], abs=1e-6)


def test_runs_on_different_data_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    runs = []
    for users in (40, 50):
        run = tmp_path / f"run{users}"
        assert trainer.main(["--data", f"synthetic:num_users={users},num_items=60",
                             "--backbone", "mf", "--strategy", "adap-tau", "--epochs", "1",
                             "--batch-size", "64", "--embedding-dim", "4",
                             "--negatives", "sampled:8", "--verbose", "0",
                             "--output", str(run)]) == 0
        runs.append(str(run))
    with pytest.raises(ValueError, match="different user sets"):
        tau_u_activity.main([*runs, "--name", "mixed"])
    assert not (tmp_path / "results").exists()  # nothing half-written
