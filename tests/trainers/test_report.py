"""adaptau-report on two tiny training outputs writes non-empty PNGs and report.md."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import numpy as np
import pytest

from adaptau_tf.trainers import report
from adaptau_tf.trainers import train as trainer

SMALL = "synthetic:num_users=80,num_items=60"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    outputs = []
    for strategy in ("nonorm", "adap-tau"):
        output = root / strategy
        trainer.main(["--data", SMALL, "--strategy", strategy, "--epochs", "2",
                      "--batch-size", "128", "--embedding-dim", "8", "--negatives", "sampled:32",
                      "--lr", "0.02", "--verbose", "0", "--patience", "0", "--track-groups",
                      "--output", str(output)])
        outputs.append(output)
    return outputs


def _noise_payload():
    return {
        "global": [{"ratio": r, "fixed": {"test_recall@20": 0.2, "test_ndcg@20": 0.1},
                    "adap-tau": {"test_recall@20": 0.21, "test_ndcg@20": 0.11}}
                   for r in (0.1, 0.2)],
        "local": [{"noise": r, "median_tau_u": 0.1 + r, "tau_u_p10": 0.05 + r,
                   "tau_u_p90": 0.2 + r, "users": 20} for r in (0.1, 0.2, 0.3, 0.4)],
    }


def test_report_writes_figures_and_markdown(runs, tmp_path):
    grid = tmp_path / "grid"
    grid.mkdir()
    trials = [{"tau": t, "valid_recall@20": 0.2 - abs(t - 0.1), "valid_ndcg@20": 0.1}
              for t in (0.05, 0.1, 0.2)]
    (grid / "trials.json").write_text(json.dumps({"best_tau": 0.1, "trials": trials}))
    noise = tmp_path / "noise.json"
    noise.write_text(json.dumps(_noise_payload()))
    out = tmp_path / "report"
    assert report.main([*map(str, runs), "--grid", str(grid), "--noise", str(noise),
                        "--output", str(out)]) == 0
    for name in ("magnitude_by_group", "recall_by_group", "tau_u_distribution", "sensitivity",
                 "noise_global", "noise_local_tau"):
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 2000, name
    text = (out / "report.md").read_text()
    assert "| No Norm |" in text and "| Adap-τ |" in text and "Gini" in text
    assert "grid-search optimum τ = 0.1" in text and "| 10 % |" in text


def test_run_summary_matches_the_training_metrics(runs):
    summary = report.summarize_run(runs[1], "Adap-τ")
    assert summary.group_recall.sum() == pytest.approx(summary.metrics["test_recall@20"])
    assert summary.group_ndcg.sum() == pytest.approx(summary.metrics["test_ndcg@20"])
    assert 0 < summary.long_tail["coverage@20"] <= 1 and 0 <= summary.long_tail["gini@20"] < 1
    assert summary.groups["magnitude"].shape == (2, 10)
    assert np.all(np.isfinite(summary.tau_u))
