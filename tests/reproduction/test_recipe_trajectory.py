"""reproduction/recipe_trajectory.py on hand-made logs: epochs aligned, gaps, bests."""

import csv
import json

import pytest

from benchmarks import reporting
from reproduction import recipe_trajectory


def _package_run(path, rows):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"preset": "paper-mf-gowalla"}))
    with open(path / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["epoch", "loss", *recipe_trajectory.FIELDS])
        writer.writeheader()
        for epoch, (recall, ndcg) in enumerate(rows):  # 0-based, as Keras writes them
            if recall is None:  # an epoch the run did not log
                continue
            writer.writerow({"epoch": epoch, "loss": 1.0, "test_recall@20": recall,
                             "test_ndcg@20": ndcg, "tau0": 0.1, "mu_pos": 0.2,
                             "tau_u_p50": 0.05})


def _reference_log(path, rows):
    lines = [json.dumps({"config": {"recipe": "paper-mf-gowalla"}})]
    for epoch, (recall, ndcg) in enumerate(rows, start=1):
        lines.append(json.dumps({"epoch": epoch, "test_recall@20": recall,
                                 "test_ndcg@20": ndcg, "tau0": 0.2, "mu_pos": 0.1,
                                 "tau_u_p50": 0.2, "loss": 2.0}))
    lines.append(json.dumps({"summary": True, "best_epoch": 2}))
    path.write_text("\n".join(lines) + "\n")


def test_aligns_epochs_and_reports_gaps_and_bests(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    _package_run(tmp_path / "run", [(0.10, 0.05), (0.20, 0.12), (0.25, 0.11)])
    _reference_log(tmp_path / "ref.jsonl", [(0.12, 0.06), (0.18, 0.10), (0.21, 0.13),
                                            (0.30, 0.20)])
    _reference_log(tmp_path / "seed1.jsonl", [(0.11, 0.06), (0.15, 0.10)])
    payload = recipe_trajectory.main(["--run", str(tmp_path / "run"), "--reference",
                                      str(tmp_path / "ref.jsonl"), "--name", "toy",
                                      "--other-seed", str(tmp_path / "seed1.jsonl"),
                                      "--code-commit", "abc1234"])
    assert payload["common_epochs"] == 3
    assert [r["epoch"] for r in payload["rows"]] == [1, 2, 3]
    assert payload["rows"][0]["package"]["test_recall@20"] == 0.10  # epoch 0 -> 1
    assert payload["mean_abs_gap"]["test_recall@20"] == pytest.approx((0.02 + 0.02 + 0.04) / 3)
    assert payload["max_abs_gap"]["test_ndcg@20"] == pytest.approx(0.02)
    assert payload["package_best"]["epoch"] == 2  # chosen on NDCG@20
    assert payload["reference_best_same_epochs"]["epoch"] == 3
    assert payload["reference_best_all_epochs"]["epoch"] == 4
    yardstick = payload["seed_yardstick"]  # over epochs 1-2, the three logs' common ones
    assert yardstick["epochs"] == 2
    assert yardstick["package"]["mean_abs_gap"]["test_recall@20"] == pytest.approx(0.02)
    assert yardstick["reference_seeds"]["max_abs_gap"]["test_recall@20"] == pytest.approx(0.03)
    markdown = (tmp_path / "results" / "recipe_trajectory_toy.md").read_text()
    assert payload["mean_gap"]["test_recall@20"] == pytest.approx((-0.02 + 0.02 + 0.04) / 3)
    assert yardstick["reference_seeds"]["mean_gap"]["test_recall@20"] == pytest.approx(-0.02)
    assert ("| JAX seed1.jsonl vs JAX ref.jsonl | 0.0200 / 0.0300 (-0.0200) | "
            "0.0000 / 0.0000 (+0.0000) |") in markdown
    assert "| 1 | 0.1000 | 0.0500 | 0.1000 | 0.2000 | 0.5000 | 0.1200 |" in markdown
    assert "abc1234" in markdown


def test_an_epoch_the_run_did_not_log_is_named_in_the_labels(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    _package_run(tmp_path / "run", [(0.10, 0.05), (None, None), (0.25, 0.11), (0.3, 0.2)])
    _reference_log(tmp_path / "ref.jsonl", [(0.12, 0.06), (0.18, 0.10), (0.21, 0.13)])
    _reference_log(tmp_path / "seed1.jsonl", [(0.11, 0.06), (0.15, 0.10), (0.2, 0.1)])
    payload = recipe_trajectory.main(["--run", str(tmp_path / "run"), "--reference",
                                      str(tmp_path / "ref.jsonl"), "--name", "gap",
                                      "--other-seed", str(tmp_path / "seed1.jsonl"),
                                      "--code-commit", "abc1234"])
    assert payload["common_epochs"] == 2 and payload["common_span"] == "1-3 except 2"
    assert payload["seed_yardstick"]["span"] == "1-3 except 2"
    assert payload["mean_abs_gap"]["test_recall@20"] == pytest.approx((0.02 + 0.04) / 2)
    markdown = (tmp_path / "results" / "recipe_trajectory_gap.md").read_text()
    assert "(3 epochs logged: 1-4 except 2; code of abc1234)" in markdown
    assert "| package best (epochs 1-3 except 2) | 3 |" in markdown
    assert "epochs 1-3 except 2 | test Recall@20 |" in markdown
    assert recipe_trajectory.span([1, 2, 5, 7]) == "1-7 except 3, 4, 6"


def test_shown_epochs_and_bad_inputs(tmp_path):
    assert recipe_trajectory.shown_epochs(list(range(1, 24))) == [1, 2, 3, 4, 5, 10, 20, 23]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "run" / "history.csv").write_text("epoch,loss,test_recall@20\n0,1.0,0.1\n")
    with pytest.raises(ValueError, match=r"history.csv:2: no test_ndcg@20 \("):
        recipe_trajectory.read_package(tmp_path / "run")
    (tmp_path / "run" / "history.csv").write_text(
        "epoch,test_recall@20,test_ndcg@20,tau0,mu_pos,tau_u_p50\n0,0.1,0.05,0.1,,0.1\n")
    with pytest.raises(ValueError, match=r"history.csv:2: no mu_pos \("):
        recipe_trajectory.read_package(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="is .* an adaptau-train run"):
        recipe_trajectory.read_package(tmp_path)
    with pytest.raises(ValueError, match="no epoch in common"):
        recipe_trajectory.compare({1: {}}, {2: {}})
    with pytest.raises(ValueError, match="other seed's log has no epoch in common"):
        recipe_trajectory.compare({1: {}}, {1: {}}, {2: {}})


def test_fixed_tau_runs_have_metrics_only(tmp_path, monkeypatch):
    # A fixed-τ run logs no τ0, μ+ or τ_u (neither does reference_jax.py's): the
    # comparison keeps the metrics and the table shows dashes for the rest.
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"strategy": "fixed"}))
    (tmp_path / "run" / "history.csv").write_text(
        "epoch,loss,test_recall@20,test_ndcg@20\n0,1.0,0.1,0.05\n1,1.0,0.2,0.08\n")
    lines = [json.dumps({"config": {"strategy": "fixed"}}),
             json.dumps({"epoch": 1, "test_recall@20": 0.12, "test_ndcg@20": 0.06}),
             json.dumps({"epoch": 2, "test_recall@20": 0.17, "test_ndcg@20": 0.09})]
    (tmp_path / "ref.jsonl").write_text("\n".join(lines) + "\n")
    payload = recipe_trajectory.main(["--run", str(tmp_path / "run"), "--reference",
                                      str(tmp_path / "ref.jsonl"), "--name", "fixed",
                                      "--code-commit", "abc1234"])
    assert payload["rows"][1]["package"] == {"test_recall@20": 0.2, "test_ndcg@20": 0.08}
    assert payload["mean_abs_gap"]["test_recall@20"] == pytest.approx((0.02 + 0.03) / 2)
    assert payload["package_best"]["epoch"] == 2
    markdown = (tmp_path / "results" / "recipe_trajectory_fixed.md").read_text()
    assert "| 2 | 0.2000 | 0.0800 | – | – | – | 0.1700 | 0.0900 | – | – | – |" in markdown


def _official_csv(path, rows):
    """An official per-epoch CSV (0-based epochs, 1/τ0 and the batch-mean 1/τ_u range)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "inv_tau0", "inv_tau_u_min", "inv_tau_u_max",
                         "test_recall@20", "test_ndcg@20"])
        for epoch, (recall, ndcg) in enumerate(rows):
            writer.writerow([epoch, 10.0, 8.0, 20.0, recall, ndcg])


def test_official_csv_against_two_package_seeds(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    _package_run(tmp_path / "run", [(0.10, 0.05), (0.20, 0.12), (0.25, 0.11)])
    _package_run(tmp_path / "seed1", [(0.11, 0.05), (0.18, 0.12), (0.26, 0.10)])
    _official_csv(tmp_path / "official.csv", [(0.12, 0.06), (0.18, 0.10), (0.21, 0.13),
                                              (0.30, 0.20)])
    payload = recipe_trajectory.main(
        ["--run", str(tmp_path / "run"), "--reference", str(tmp_path / "official.csv"),
         "--package-other-seed", str(tmp_path / "seed1"), "--name", "t", "--code-commit", "c"])
    assert [r["epoch"] for r in payload["rows"]] == [1, 2, 3]
    assert payload["rows"][0]["reference"]["tau0"] == pytest.approx(0.1)
    # |0.10-0.12|, |0.20-0.18|, |0.25-0.21| -> mean 0.08 / 3
    assert payload["mean_abs_gap"]["test_recall@20"] == pytest.approx(0.08 / 3)
    seeds = payload["package_seed_yardstick"]["package_seeds"]
    assert seeds["mean_abs_gap"]["test_recall@20"] == pytest.approx((0.01 + 0.02 + 0.01) / 3)
    assert payload["reference_best_all_epochs"]["epoch"] == 4
    assert payload["package_best"]["epoch"] == 2  # by test NDCG@20
    markdown = (tmp_path / "results" / "recipe_trajectory_t.md").read_text()
    assert "official R@20" in markdown and "1/τ_u range" in markdown
