"""reproduction/popularity_prior.py: the ranking-time prior against NumPy, on trained runs."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import numpy as np
import pytest

from adaptau_tf.trainers import train as trainer
from benchmarks import reporting
from reproduction import popularity_prior


def _strict(constant):
    raise ValueError(f"{constant} in a result file")


def test_prior_embeddings_against_numpy():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(7, 4)), rng.normal(size=(11, 4))
    tau = rng.uniform(0.05, 0.2, 7)
    counts = rng.integers(0, 50, 11)
    counts[3] = 0  # an item never trained on: log(max(0, 1)) = 0
    for gamma in (0.0, 0.3, -0.2):
        u, i = popularity_prior.prior_embeddings(users, items, tau, counts, gamma)
        assert u.shape == (7, 5) and i.shape == (11, 5)
        expected = users @ items.T / tau[:, None] + gamma * np.log(np.maximum(counts, 1))
        np.testing.assert_allclose(u @ i.T, expected, rtol=1e-5, atol=1e-4)
    # γ = 0 keeps every user's ranking (τ_u only rescales a user's row).
    u, i = popularity_prior.prior_embeddings(users, items, tau, counts, 0.0)
    np.testing.assert_array_equal(np.argsort(-(u @ i.T), axis=1),
                                  np.argsort(-(users @ items.T), axis=1))


def test_hand_case_prior_flips_the_top_item():
    # τ = 0.5: item a scores 1/0.5 = 2, item b 0.8/0.5 = 1.6; b has 100 training rows,
    # a has 1, so b gains γ·log 100 = 4.605γ: it overtakes a once γ > 0.4/4.6052 = 0.08686.
    users, items = np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.8, 0.6]])
    counts = np.array([1, 100])
    for gamma, top in ((0.05, 0), (0.0866, 0), (0.0871, 1), (0.1, 1)):
        u, i = popularity_prior.prior_embeddings(users, items, np.array([0.5]), counts, gamma)
        assert int(np.argmax(u @ i.T)) == top, gamma


@pytest.mark.parametrize("kwargs, match", [
    ({"user_temperatures": np.array([0.1, 0.0])}, "2 positive numbers"),
    ({"user_temperatures": np.array([0.1])}, "2 positive numbers"),
    ({"item_counts": np.array([1, -1, 2])}, "non-negative counts, got shape \\(3,\\), min -1"),
    ({"item_counts": np.array([1, 2])}, "3 non-negative counts"),
    ({"items": np.ones((3, 2))}, "must share d"),
    ({"gamma": float("nan")}, "gamma must be finite"),
])
def test_bad_input(kwargs, match):
    args = {"users": np.ones((2, 3)), "items": np.ones((3, 3)),
            "user_temperatures": np.array([0.1, 0.2]), "item_counts": np.array([1, 2, 3]),
            "gamma": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        popularity_prior.prior_embeddings(**args)


def test_select_gamma_prefers_the_smaller_gamma_on_ties():
    curve = [{"gamma": g, "valid_ndcg@20": v, "test_ndcg@20": t}
             for g, v, t in ((0.0, 0.1, 0.3), (0.2, 0.2, 0.1), (0.5, 0.2, 0.2))]
    assert popularity_prior.select_gamma(curve, "valid")["gamma"] == 0.2
    assert popularity_prior.select_gamma(curve, "test")["gamma"] == 0.0


def _train(path, protocol, strategy):
    assert trainer.main(["--data", "synthetic:num_users=80,num_items=60", "--backbone", "mf",
                         "--protocol", protocol, "--strategy", strategy, "--epochs", "3",
                         "--warmup-epochs", "1", "--patience", "0", "--lr", "0.02",
                         "--batch-size", "128", "--embedding-dim", "8",
                         "--negatives", "sampled:32", "--verbose", "0",
                         "--output", str(path)]) == 0


def test_main_on_trained_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    honest, paper = tmp_path / "honest", tmp_path / "paper"
    _train(honest, "honest", "adap-tau")
    _train(paper, "paper", "nonorm")
    popularity_prior.main(["--run", f"at={honest}", "--run", f"nn={paper}",
                           "--name", "tiny", "--gammas", "0.5,0,0.2", "--groups", "3"])
    payload = json.loads((tmp_path / "results" / "popularity_prior_tiny.json").read_text(),
                         parse_constant=_strict)  # NaN / Infinity are not JSON
    assert {"commit", "machine", "command"} <= set(payload)
    assert payload["gammas"] == [0.0, 0.2, 0.5]
    for label, run, split in (("at", honest, "valid"), ("nn", paper, "test")):
        result = payload["runs"][label]
        assert result["selected_on"] == split
        assert [e["gamma"] for e in result["curve"]] == [0.0, 0.2, 0.5]
        # γ = 0 ranks by the restored best weights alone: the run's own test figures.
        test = json.loads((run / "metrics.json").read_text())["test"]
        zero = result["curve"][0]
        for name in ("recall@20", "ndcg@20"):
            assert zero[f"test_{name}"] == pytest.approx(test[name], abs=1e-6)
        best = max(e[f"{split}_ndcg@20"] for e in result["curve"])
        assert result["chosen"][f"{split}_ndcg@20"] == best
        for key in ("at_zero", "at_chosen"):
            groups = result["groups"][key]
            assert len(groups["group_recall"]) == 3
            assert sum(groups["top20_share"]) == pytest.approx(1.0)
    # No Norm's temperature is 1; Adap-τ's differ per user.
    assert payload["runs"]["nn"]["tau_u"]["median"] == pytest.approx(1.0)
    tau = payload["runs"]["at"]["tau_u"]
    assert tau["p10"] < tau["p90"]
    assert "gain over γ = 0" in (tmp_path / "results" / "popularity_prior_tiny.md").read_text()


@pytest.mark.parametrize("argv, match", [
    (["--run", "x"], "LABEL=DIR"),
    (["--run", "x=/nonexistent"], "no config.json"),
])
def test_bad_arguments(argv, match, capsys):
    with pytest.raises(SystemExit):
        popularity_prior.main([*argv, "--name", "bad"])
    assert match in capsys.readouterr().err


def test_gammas_must_include_zero(tmp_path):
    with pytest.raises(ValueError, match="must include 0"):
        popularity_prior.calibrate_run(tmp_path, [0.1, 0.2], 5)


def test_markdown_lists_the_chosen_gamma_once():
    split = {"group_recall": [0.1, 0.3], "top20_share": [0.4, 0.6]}

    def result(chosen):
        curve = [{"gamma": g, "test_recall@20": 0.1 + g, "test_ndcg@20": 0.05 + g,
                  "valid_recall@20": 0.2, "valid_ndcg@20": 0.1} for g in (0.0, 0.5)]
        return {"settings": {"protocol": "honest"}, "selected_on": "valid", "curve": curve,
                "chosen": curve[chosen], "groups": {"at_zero": split, "at_chosen": split}}

    text = popularity_prior._markdown({"kept": result(0), "moved": result(1)}, 2)
    group_rows = [line for line in text.splitlines() if "0.1000 / 0.400" in line]
    assert [row.split(" | ")[:2] for row in group_rows] == [
        ["| kept", "0"], ["| moved", "0"], ["| moved", "0.5"]]
    assert "| moved | honest | 0.1000 / 0.0500 | 0.6000 / 0.5500 | 0.5 (valid) | " \
           "0.6000 / 0.5500 | +0.5000 / +0.5000 |" in text
