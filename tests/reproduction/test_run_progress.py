"""reproduction/run_progress.py on hand-made run directories: equal budgets, checks, refusals."""

import csv
import json

import pytest

from benchmarks import reporting
from reproduction import run_progress

COLUMNS = ["epoch", "loss", "test_recall@20", "test_ndcg@20", "tau0", "mu_pos", "tau_u_p50"]


def _run(path, strategy, rows, protocol="paper", tau=None, data="lightgcn:/x/gowalla",
         finished=False, seconds=None):
    """A run directory whose history.csv logs ``rows`` of (Recall@20, NDCG@20)."""
    path.mkdir(parents=True)
    config = {"protocol": protocol, "backbone": "lightgcn", "strategy": strategy,
              "tau": tau, "data": data, "epochs": 150, "loss_form": "reference"}
    (path / "config.json").write_text(json.dumps(config))
    adaptive = strategy.startswith("adap")
    with open(path / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for epoch, (recall, ndcg) in enumerate(rows):  # 0-based, as Keras writes them
            writer.writerow({"epoch": epoch, "loss": 1.0, "test_recall@20": recall,
                             "test_ndcg@20": ndcg, "tau0": 0.1 if adaptive else "",
                             "mu_pos": 0.5 if adaptive else "",
                             "tau_u_p50": 0.09 if adaptive else ""})
    if finished:
        (path / "metrics.json").write_text("{}")
    if seconds is not None:
        (path / "elapsed.json").write_text(json.dumps({"seconds": seconds}))
    return path


def test_compares_every_run_at_the_epochs_all_reached(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    at = _run(tmp_path / "at", "adap-tau",
              [(0.10, 0.08), (0.15, 0.12), (0.18, 0.16), (0.20, 0.17)], seconds=400.0)
    a0 = _run(tmp_path / "a0", "adap-tau0", [(0.12, 0.09), (0.14, 0.11), (0.13, 0.10)])
    fixed = _run(tmp_path / "fixed", "fixed", [(0.11, 0.10), (0.16, 0.125), (0.17, 0.12)],
                 tau=0.1, finished=True)
    payload = run_progress.main(["--dataset", "gowalla", "--backbone", "lightgcn",
                                 "--run", f"adap-tau={at}", "--run", f"adap-tau0={a0}",
                                 "--run", f"grid-tau={fixed}", "--name", "toy"])
    assert payload["common_epochs"] == 3  # Adap-τ0 and the fixed τ logged 3 epochs
    runs = {r["strategy"]: r for r in payload["runs"]}
    # Best by NDCG@20 among epochs 1-3, not the run's 4th epoch.
    assert runs["adap-tau"]["at_common"] == {"epoch": 3, "test_recall@20": 0.18,
                                             "test_ndcg@20": 0.16}
    assert runs["adap-tau"]["best_so_far"]["epoch"] == 4
    assert runs["adap-tau"]["train_seconds"] == 400.0
    assert runs["adap-tau0"]["at_common"]["epoch"] == 2
    assert runs["grid-tau"]["at_common"]["test_ndcg@20"] == 0.125
    assert runs["grid-tau"]["finished"] and not runs["adap-tau"]["finished"]
    checks = {c["check"]: c for c in payload["ordering_at_common"]}
    assert checks["adap-tau >= adap-tau0"]["recall@20"]["diff"] == pytest.approx(0.18 - 0.14)
    assert checks["adap-tau >= grid-tau"]["ndcg@20"]["diff"] == pytest.approx(0.16 - 0.125)
    assert "adap-tau > nonorm" not in checks  # no No Norm run given
    target = payload["target_at_common"][0]  # the paper's Gowalla LightGCN 0.1901 / 0.1590
    assert target["recall@20"]["ratio"] == pytest.approx(0.18 / 0.1901)
    assert not target["recall@20"]["met"] and target["ndcg@20"]["met"]
    assert [t["epoch"] for t in payload["trajectory"]] == [1, 2, 3]
    assert payload["trajectory"][1]["grid-tau"]["test_recall@20"] == 0.16
    markdown = (tmp_path / "results" / "progress_gowalla_lightgcn_paper_toy.md").read_text()
    assert markdown.startswith("# Runs in progress: gowalla lightgcn, paper protocol")
    assert "the fewest any unfinished run has logged" in markdown
    assert "| Adap-τ ≥ 98% of the paper | 0.947 (**no**) | 1.006 (met) |" in markdown
    assert "| Grid Search τ (τ = 0.1) | 2 | 0.1600 / 0.1250 |" in markdown
    assert "| Adap-τ ≥ Adap-τ0 | +0.0400 (holds) | +0.0500 (holds) |" in markdown
    assert "0.1800 / 0.1600 (τ0 0.1000, μ+ +0.500)" in markdown
    written = json.loads((tmp_path / "results" / "progress_gowalla_lightgcn_paper_toy.json")
                         .read_text())
    assert written["common_epochs"] == 3 and "commit" in written


def test_a_finished_run_that_stopped_earlier_does_not_cut_the_budget(tmp_path, monkeypatch):
    # No Norm stopped after 2 epochs (finished); the unfinished runs logged 4 and 3:
    # they are compared at 3 epochs, No Norm with both of its own.
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    at = _run(tmp_path / "at", "adap-tau", [(0.10, 0.08), (0.15, 0.12), (0.18, 0.16), (0.2, 0.2)])
    a0 = _run(tmp_path / "a0", "adap-tau0", [(0.12, 0.09), (0.14, 0.11), (0.13, 0.10)])
    nonorm = _run(tmp_path / "nn", "nonorm", [(0.17, 0.15), (0.16, 0.14)], finished=True)
    payload = run_progress.main(["--dataset", "gowalla", "--backbone", "lightgcn",
                                 "--run", f"adap-tau={at}", "--run", f"adap-tau0={a0}",
                                 "--run", f"nonorm={nonorm}"])
    assert payload["common_epochs"] == 3
    runs = {r["strategy"]: r for r in payload["runs"]}
    assert runs["nonorm"]["at_common"] == {"epoch": 1, "test_recall@20": 0.17,
                                           "test_ndcg@20": 0.15}
    assert runs["adap-tau"]["at_common"]["epoch"] == 3
    checks = {c["check"]: c for c in payload["ordering_at_common"]}
    assert checks["adap-tau > nonorm"]["ndcg@20"]["diff"] == pytest.approx(0.16 - 0.15)
    assert payload["trajectory"][2]["nonorm"] is None  # No Norm has no epoch 3
    # All finished: the most any logged, so every run is compared at its best.
    assert run_progress.common_epochs({"a": (5, True), "b": (2, True)}) == 5
    assert run_progress.common_epochs({"a": (5, False), "b": (2, True)}) == 5


def test_when_every_run_finished_each_is_at_its_best(tmp_path, monkeypatch):
    # Adap-τ ran 4 epochs (best at 4), No Norm stopped after 2: the horizon is 4, so
    # Adap-τ is not cut back to No Norm's 2 epochs.
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    at = _run(tmp_path / "at", "adap-tau", [(0.10, 0.08), (0.15, 0.12), (0.18, 0.16), (0.2, 0.2)],
              finished=True)
    nonorm = _run(tmp_path / "nn", "nonorm", [(0.17, 0.15), (0.16, 0.14)], finished=True)
    payload = run_progress.main(["--dataset", "gowalla", "--backbone", "lightgcn",
                                 "--run", f"adap-tau={at}", "--run", f"nonorm={nonorm}"])
    assert payload["common_epochs"] == 4
    runs = {r["strategy"]: r for r in payload["runs"]}
    assert runs["adap-tau"]["at_common"]["epoch"] == 4
    checks = {c["check"]: c for c in payload["ordering_at_common"]}
    assert checks["adap-tau > nonorm"]["ndcg@20"]["diff"] == pytest.approx(0.2 - 0.15)
    text = (tmp_path / "results" / "progress_gowalla_lightgcn_paper.md").read_text()
    assert text.startswith("# Finished runs: gowalla lightgcn, paper protocol")
    assert "the first 4 epochs, the most any run logged, every run having finished" in text


@pytest.mark.parametrize("change, message", [
    ({"protocol": "honest"}, "protocol is 'honest'"),
    ({"data": "lightgcn:/x/ml-1m"}, "not the 'gowalla' dataset"),
])
def test_refuses_runs_of_another_protocol_or_dataset(tmp_path, change, message):
    run = _run(tmp_path / "at", "adap-tau", [(0.1, 0.1)], **change)
    with pytest.raises(ValueError, match=message):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau", run)])


def test_refuses_a_label_that_does_not_match_the_run(tmp_path):
    run = _run(tmp_path / "a0", "adap-tau0", [(0.1, 0.1)])
    with pytest.raises(ValueError, match="strategy is 'adap-tau0', but --run adap-tau= needs"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau", run)])
    with pytest.raises(ValueError, match="unknown strategy 'fixed'"):
        run_progress.progress("gowalla", "lightgcn", [("fixed", run)])
    with pytest.raises(ValueError, match="each strategy at most once"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau0", run), ("adap-tau0", run)])


def test_a_run_with_no_epoch_logged_is_refused(tmp_path):
    run = _run(tmp_path / "at", "adap-tau", [])
    with pytest.raises(ValueError, match="no epoch logged yet"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau", run)])
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau", tmp_path / "missing")])


VALID_COLUMNS = ["epoch", "loss", "val_recall@20", "val_ndcg@20", "tau0", "mu_pos", "tau_u_p50"]


def _honest_run(path, strategy, rows, every=1, finished=False):
    """An honest-protocol run whose history.csv logs one row per entry of ``rows``,
    validation (Recall@20, NDCG@20) only every ``every`` epochs ("NA" otherwise,
    as the trainer writes them)."""
    path.mkdir(parents=True)
    config = {"protocol": "honest", "backbone": "lightgcn", "strategy": strategy,
              "tau": None, "data": "lightgcn:/x/gowalla", "epochs": 150, "eval_every": every}
    (path / "config.json").write_text(json.dumps(config))
    adaptive = strategy.startswith("adap")
    with open(path / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, VALID_COLUMNS)
        writer.writeheader()
        for epoch, (recall, ndcg) in enumerate(rows):
            evaluated = (epoch + 1) % every == 0
            writer.writerow({"epoch": epoch, "loss": 1.0,
                             "val_recall@20": recall if evaluated else "NA",
                             "val_ndcg@20": ndcg if evaluated else "NA",
                             "tau0": 0.1 if adaptive else "", "mu_pos": 0.5 if adaptive else "",
                             "tau_u_p50": 0.09 if adaptive else ""})
    if finished:
        (path / "metrics.json").write_text("{}")
    return path


def test_honest_runs_are_compared_on_validation_at_their_evaluated_epochs(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    # Adap-τ evaluates every 2 epochs and logged 5; Adap-τ0 every 2, logged 3; No
    # Norm every epoch, stopped (finished) after 2. Compared at 3 epochs: the
    # adaptive runs at their one evaluated epoch ≤ 3 (epoch 2), not Adap-τ's 4th.
    at = _honest_run(tmp_path / "at", "adap-tau",
                     [(0, 0), (0.15, 0.12), (0, 0), (0.30, 0.30), (0, 0)], every=2)
    a0 = _honest_run(tmp_path / "a0", "adap-tau0", [(0, 0), (0.14, 0.13), (0, 0)], every=2)
    nonorm = _honest_run(tmp_path / "nn", "nonorm", [(0.13, 0.10), (0.12, 0.11)],
                         finished=True)
    payload = run_progress.main(["--dataset", "gowalla", "--backbone", "lightgcn",
                                 "--protocol", "honest", "--run", f"adap-tau={at}",
                                 "--run", f"adap-tau0={a0}", "--run", f"nonorm={nonorm}",
                                 "--name", "toy"])
    assert payload["common_epochs"] == 3
    runs = {r["strategy"]: r for r in payload["runs"]}
    assert runs["adap-tau"]["at_common"] == {"epoch": 2, "val_recall@20": 0.15,
                                             "val_ndcg@20": 0.12}
    assert runs["adap-tau"]["best_so_far"]["epoch"] == 4
    assert (runs["adap-tau"]["epochs_logged"], runs["adap-tau"]["epochs_evaluated"]) == (5, 2)
    # No Norm's best by validation NDCG@20 is epoch 2, though its Recall@20 is lower there.
    assert runs["nonorm"]["at_common"]["epoch"] == 2
    checks = {c["check"]: c for c in payload["ordering_at_common"]}
    assert checks["adap-tau >= adap-tau0"]["recall@20"]["diff"] == pytest.approx(0.01)
    assert checks["adap-tau >= adap-tau0"]["ndcg@20"]["diff"] == pytest.approx(-0.01)
    assert not checks["adap-tau >= adap-tau0"]["ndcg@20"]["holds"]
    assert checks["adap-tau > nonorm"]["ndcg@20"]["diff"] == pytest.approx(0.01)
    assert payload["target_at_common"] == []  # the 98 % target is the paper protocol's
    assert "ratio_recall@20" not in runs["adap-tau"]
    assert [t["epoch"] for t in payload["trajectory"]] == [1, 2]
    assert payload["trajectory"][0]["adap-tau"] is None  # not evaluated at epoch 1
    markdown = (tmp_path / "results" / "progress_gowalla_lightgcn_honest_toy.md").read_text()
    assert "honest protocol" in markdown and "by validation NDCG@20" in markdown
    assert "## Checks at 3 epochs (validation figures)" in markdown
    assert "| Adap-τ | 2 | 0.1500 / 0.1200 | – | 5 / 150 | 0.3000 / 0.3000 (epoch 4) |" \
        in markdown
    assert "| Adap-τ ≥ Adap-τ0 | +0.0100 (holds) | -0.0100 (**no**) |" in markdown


def test_honest_refusals(tmp_path):
    # Not evaluated yet within the common budget: Adap-τ evaluates every 4 epochs
    # and the unfinished No Norm holds the comparison at 2.
    at = _honest_run(tmp_path / "at", "adap-tau", [(0, 0)] * 4, every=4)
    nonorm = _honest_run(tmp_path / "nn", "nonorm", [(0.1, 0.1)] * 2)
    with pytest.raises(ValueError, match="no epoch evaluated among the first 2 "
                                         r"\(its first is 4\)"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau", at), ("nonorm", nonorm)],
                              "honest")
    # A paper-protocol run is refused under --protocol honest, and an honest one
    # that has not evaluated any epoch says so.
    paper = _run(tmp_path / "paper", "adap-tau0", [(0.1, 0.1)])
    with pytest.raises(ValueError, match="protocol is 'paper'"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau0", paper)], "honest")
    early = _honest_run(tmp_path / "early", "adap-tau0", [(0, 0)] * 3, every=4)
    with pytest.raises(ValueError, match="no epoch evaluated yet"):
        run_progress.progress("gowalla", "lightgcn", [("adap-tau0", early)], "honest")
