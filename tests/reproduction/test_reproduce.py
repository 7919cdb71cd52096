"""reproduction/reproduce.py on a tiny synthetic config: the output contract, resumption."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import re
from pathlib import Path

import pytest

from adaptau_tf.trainers import grid_search
from adaptau_tf.trainers import train as trainer
from benchmarks import reporting
from reproduction import reproduce, table3_report
from reproduction.paper_table3 import STRATEGIES, paper_numbers
from tests.conftest import REPO

TINY = {
    "datasets": {"tiny": "synthetic:num_users=80,num_items=60"},
    "backbones": ["mf"],
    "protocols": {"honest": ["nonorm", "grid-tau", "adap-tau"], "paper": ["adap-tau"]},
    "args": {"*": {"epochs": 2, "batch_size": 128, "embedding_dim": 8,
                   "negatives": "sampled:32", "lr": 0.02, "verbose": 0},
             "adap-tau": {"warmup_epochs": 1}},
    "grid": {"*": {"taus": "0.1,0.3,1.0", "epochs": 2, "test_best": True}},
    "notes": {"tiny/mf": "smoke config"},
}
ROW_KEYS = {"backbone", "strategy", "protocol", "test_recall@20", "test_ndcg@20", "epochs",
            "seconds"}


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


def _main(tmp_path, *extra):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY))
    return reproduce.main(["--config", str(config), "--work-dir", str(tmp_path / "work"),
                           "--reuse-dir", "", "--in-process", *extra])


def test_tiny_table3_contract_and_resume(tmp_path, results, monkeypatch, capsys):
    assert _main(tmp_path) == 0
    table = json.loads((results / "table3_tiny.json").read_text())
    assert {"commit", "machine", "command"} <= set(table)
    assert (results / "table3_tiny.md").exists()
    rows = table["rows"]
    assert sorted((r["protocol"], r["strategy"]) for r in rows) == [
        ("honest", "adap-tau"), ("honest", "grid-tau"), ("honest", "nonorm"),
        ("paper", "adap-tau")]
    for row in rows:
        assert set(row) >= ROW_KEYS and row["backbone"] == "mf"
        assert 0 <= row["test_recall@20"] <= 1 and 0 <= row["test_ndcg@20"] <= 1
        assert row["epochs"] == 2 and row["seconds"] > 0
    assert table["pending"] == [] and table["notes"] == [
        {"scope": "tiny/mf", "topic": None, "text": "smoke config"}]
    checks = {(c["protocol"], c["check"]) for c in table["ordering"]}
    assert checks == {("honest", "adap-tau >= grid-tau"), ("honest", "adap-tau > nonorm")}

    grid = json.loads((results / "grid_search_tiny_mf.json").read_text())
    assert [t["tau"] for t in grid["trials"]] == [0.1, 0.3, 1.0]
    assert {"tau", "valid_recall@20", "valid_ndcg@20"} <= set(grid["trials"][0])
    assert grid["total_seconds"] > 0 and grid["complete"]
    grid_tau = next(r for r in rows if r["strategy"] == "grid-tau")
    assert grid_tau["tau"] == grid["best_tau"]
    cost = table["grid_search"][0]
    assert cost["adap_tau_seconds"] > 0
    # The grid-tau row is a retrain here: the baseline's price adds its run to the search.
    adap = next(r for r in rows if (r["protocol"], r["strategy"]) == ("honest", "adap-tau"))
    assert cost["retrain_seconds"] == grid_tau["seconds"]
    assert cost["ratio_with_retrain_to_adap_tau"] == pytest.approx(
        (cost["wall_seconds"] + grid_tau["seconds"]) / adap["seconds"])
    assert cost["ratio_with_retrain_to_adap_tau"] > cost["ratio_to_adap_tau"]
    assert grid["retrain_seconds"] == grid_tau["seconds"]
    assert (results / "grid_search_tiny_mf.png").read_bytes().startswith(b"\x89PNG")
    md = (results / "table3_tiny.md").read_text()
    assert "Honest protocol" in md and "Paper protocol" in md and "Grid Search τ" in md

    # Resumable per run: a second invocation trains nothing and reports the same rows.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was started again")

    monkeypatch.setattr(reproduce, "_execute", refuse)
    assert _main(tmp_path) == 0
    again = json.loads((results / "table3_tiny.json").read_text())["rows"]
    assert [(r["strategy"], r["test_ndcg@20"]) for r in again] == \
        [(r["strategy"], r["test_ndcg@20"]) for r in rows]
    capsys.readouterr()
    assert _main(tmp_path, "--dry-run") == 0
    assert capsys.readouterr().out.count("[done]") == 5  # 4 runs + the grid search


def test_pending_runs_and_only_filter(tmp_path, results):
    assert _main(tmp_path, "--only", "honest/nonorm") == 0
    table = json.loads((results / "table3_tiny.json").read_text())
    assert [(r["protocol"], r["strategy"]) for r in table["rows"]] == [("honest", "nonorm")]
    assert len(table["pending"]) == 3 and table["ordering"] == []
    assert "Not finished yet" in (results / "table3_tiny.md").read_text()


def test_a_larger_epoch_budget_extends_finished_runs(tmp_path, results, capsys):
    assert _main(tmp_path, "--only", "honest/nonorm") == 0
    TINY_MORE = json.loads(json.dumps(TINY))
    TINY_MORE["args"]["*"]["epochs"] = 3
    config = tmp_path / "more.json"
    config.write_text(json.dumps(TINY_MORE))
    argv = ["--config", str(config), "--work-dir", str(tmp_path / "work"), "--reuse-dir", "",
            "--in-process", "--only", "honest/nonorm"]
    capsys.readouterr()
    assert reproduce.main([*argv, "--dry-run"]) == 0
    assert "[extend] tiny/mf/honest/nonorm" in capsys.readouterr().out
    assert reproduce.main(argv) == 0
    run = tmp_path / "work" / "tiny_mf" / "honest" / "nonorm"
    assert json.loads((run / "metrics.epochs2.json").read_text())["epochs"] == 2
    rows = json.loads((results / "table3_tiny.json").read_text())["rows"]
    assert [(r["strategy"], r["epochs"]) for r in rows] == [("nonorm", 3)]
    capsys.readouterr()
    assert reproduce.main([*argv, "--dry-run"]) == 0
    assert "[done] tiny/mf/honest/nonorm" in capsys.readouterr().out


def test_selectors_merge_from_general_to_specific():
    section = {"*": {"epochs": 1, "lr": 0.1}, "mf": {"epochs": 2}, "ml-1m/mf": {"epochs": 3},
               "gowalla": {"lr": 9}}
    run = {"dataset": "ml-1m", "backbone": "mf", "protocol": "honest", "strategy": "nonorm"}
    assert reproduce.merged(section, run) == {"epochs": 3, "lr": 0.1}
    assert reproduce.flags({"batch_size": 8, "test_best": True, "x": False, "y": None}) == [
        "--batch-size", "8", "--test-best"]


def test_shipped_config_plans_valid_commands(tmp_path):
    config = reproduce.load_config(reproduce.DEFAULT_CONFIG)
    runs = reproduce.plan(config, tmp_path, [])
    assert len(runs) == 2 * 2 * (6 + 4)
    cells = {(r["dataset"], r["backbone"], r["protocol"], r["strategy"]) for r in runs}
    for dataset in ("ml-1m", "gowalla"):
        for backbone in ("mf", "lightgcn"):
            assert {(dataset, backbone, "honest", s) for s in STRATEGIES} <= cells
            assert {(dataset, backbone, "paper", s) for s in
                    ("nonorm", "grid-tau", "adap-tau0", "adap-tau")} <= cells
    for run in runs:
        if run["strategy"] == "grid-tau":
            args = grid_search.build_parser().parse_args(run["grid_argv"])
            assert args.preset and grid_search.tau_grid(args)
        else:
            args = trainer.build_parser().parse_args(reproduce.train_argv(run))
            assert args.preset.endswith(run["dataset"].replace("-", ""))
            assert args.strategy == run["strategy"] and args.protocol == run["protocol"]


def test_grid_cells_pass_on_every_option_the_grid_search_shares_with_train():
    # a cell's [args] reach its grid search only through GRID_SHARED: a trainer option
    # the grid search takes but reproduce.py leaves out would silently differ
    assert set(grid_search.SHARED_OPTIONS) | {"preset"} == reproduce.GRID_SHARED
    config = {"work_dir": "w", "backbones": ["mf"], "datasets": {"d": "synthetic"},
              "protocols": {"paper": ["grid-tau"]},
              "args": {"*": {"negatives": "in-batch", "sampling_correction": True,
                             "remove_accidental_hits": False}},
              "grid": {"*": {"taus": "0.1"}}}
    (run,) = reproduce.plan(config, Path("w"), [])
    args = grid_search.build_parser().parse_args(run["grid_argv"])
    assert args.sampling_correction is True and args.remove_accidental_hits is False


def test_paper_numbers_match_algorithm_md():
    doc = REPO.parent / "shared" / "docs" / "ALGORITHM.md"
    if not doc.exists():
        pytest.skip("../shared/docs/ALGORITHM.md not available")
    labels = {"No Norm": "nonorm", "Grid Search τ": "grid-tau", "C-τ": "c-tau",
              "Cu-τ": "cu-tau", "Adap-τ0": "adap-tau0", "Adap-τ": "adap-tau"}
    pattern = re.compile(r"^\| (MF|LightGCN) \| ([^|]+) \|(.*)\|$")
    seen = 0
    for line in doc.read_text().splitlines():
        match = pattern.match(line)
        if not match:
            continue
        cells = [c.strip() for c in match.group(3).split("|")]
        for dataset, cell in zip(("yelp2018", "amazon-book", "ml-1m", "gowalla"), cells):
            recall, ndcg = (float(v) for v in cell.split("/"))
            assert paper_numbers(dataset, match.group(1).lower(),
                                 labels[match.group(2).strip()]) == (recall, ndcg)
            seen += 1
    assert seen == 48


def test_pending_epoch_budget_comes_from_the_flags_the_preset_or_the_trainer():
    assert table3_report._epoch_budget({"epochs": 7, "preset": "paper-mf-ml1m"}) == 7
    assert table3_report._epoch_budget({"preset": "paper-mf-ml1m"}) == 300
    assert table3_report._epoch_budget({}) == trainer.build_parser().get_default("epochs")


def _config(tmp_path, name, **grid):
    config = json.loads(json.dumps(TINY))
    config["protocols"] = {"honest": ["nonorm", "grid-tau"]}
    config["grid"]["*"].update(grid)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    return ["--config", str(path), "--work-dir", str(tmp_path / name), "--reuse-dir", "",
            "--in-process"]


def test_grid_tau_row_from_the_best_trial_matches_a_retrain(tmp_path, results, capsys):
    assert reproduce.main(_config(tmp_path, "trial", retrain=False)) == 0
    table = json.loads((results / "table3_tiny.json").read_text())
    row = next(r for r in table["rows"] if r["strategy"] == "grid-tau")
    grid_dir = tmp_path / "trial" / "tiny_mf" / "honest" / "grid-search"
    trials = json.loads((grid_dir / "trials.json").read_text())
    assert row["grid_trial"] == trials["best_trial"] and row["tau"] == trials["best_tau"]
    assert row["test_ndcg@20"] == trials["best_test"]["test_ndcg@20"]
    assert row["epochs"] == 2 and row["seconds"] > 0 and table["pending"] == []
    assert not (tmp_path / "trial" / "tiny_mf" / "honest" / "grid-tau").exists()
    assert "(best grid trial)" in (results / "table3_tiny.md").read_text()
    assert table["grid_search"][0]["retrain_seconds"] is None  # no run beyond the search
    assert table["grid_search"][0]["ratio_with_retrain_to_adap_tau"] is None
    capsys.readouterr()
    assert reproduce.main([*_config(tmp_path, "trial", retrain=False), "--dry-run"]) == 0
    assert "[trial] tiny/mf/honest/grid-tau" in capsys.readouterr().out

    # The retrain at the best τ (same seed and budget) only repeats the trial.
    assert reproduce.main(_config(tmp_path, "retrain")) == 0
    retrained = next(r for r in json.loads((results / "table3_tiny.json").read_text())["rows"]
                     if r["strategy"] == "grid-tau")
    assert "grid_trial" not in retrained and retrained["tau"] == row["tau"]
    assert retrained["test_recall@20"] == pytest.approx(row["test_recall@20"], abs=1e-6)
    assert retrained["test_ndcg@20"] == pytest.approx(row["test_ndcg@20"], abs=1e-6)


def test_grid_without_retrain_needs_the_best_trials_test(tmp_path):
    argv = _config(tmp_path, "bad", retrain=False, test_best=False)
    with pytest.raises(ValueError, match=r"tiny/mf/honest needs test_best = true"):
        reproduce.main(argv)
    with pytest.raises(ValueError, match=r"must be true or false, got 'no'"):
        reproduce.main(_config(tmp_path, "bad", retrain="no"))


def test_runs_made_with_other_settings_are_stale_not_reported(tmp_path, results, capsys):
    argv = _config(tmp_path, "old")
    assert reproduce.main([*argv, "--only", "honest/nonorm", "honest/grid-tau"]) == 0
    run = tmp_path / "old" / "tiny_mf" / "honest" / "nonorm"
    before = (run / "metrics.json").read_text()
    changed = json.loads(json.dumps(TINY))
    changed["protocols"] = {"honest": ["nonorm", "grid-tau"]}
    changed["args"]["*"]["lr"] = 0.03
    changed["grid"]["*"]["taus"] = "0.1,0.3"
    config = tmp_path / "changed.json"
    config.write_text(json.dumps(changed))
    argv = ["--config", str(config), "--work-dir", str(tmp_path / "old"), "--reuse-dir", "",
            "--in-process"]
    capsys.readouterr()
    assert reproduce.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[stale] tiny/mf/honest/nonorm: lr: 0.02 -> 0.03" in out
    assert "[stale] tiny/mf/honest/grid-tau: grid search grid: [0.1, 0.3, 1.0] -> [0.1, 0.3]" \
        in out
    assert reproduce.main(argv) == 1  # refused, not retrained over the old run
    assert "move it (and its grid search) away" in capsys.readouterr().err
    assert (run / "metrics.json").read_text() == before
    table = json.loads((results / "table3_tiny.json").read_text())
    assert table["rows"] == []
    assert {p["state"] for p in table["pending"]} == {"stale"}


def test_reusable_ignores_execution_flags_but_not_settings(tmp_path):
    argv = ["--data", "synthetic", "--strategy", "adap-tau0", "--epochs", "3",
            "--output", str(tmp_path / "table" / "run")]
    old = dict(vars(trainer.build_parser().parse_args(argv)))
    del old["jit_compile"]  # a run from before --jit-compile existed
    old.update(output="/elsewhere", verbose=0)
    found = tmp_path / "reuse" / "probes" / "a0"
    found.mkdir(parents=True)
    (found / "config.json").write_text(json.dumps(old))
    run = {"dir": tmp_path / "table" / "run"}
    assert reproduce.reusable(run, argv, tmp_path / "reuse") is None  # not finished
    (found / "metrics.json").write_text("{}")
    assert reproduce.reusable(run, argv, tmp_path / "reuse") == found
    assert reproduce.reusable(run, [*argv, "--jit-compile", "off"], tmp_path / "reuse") == found
    assert reproduce.reusable(run, [*argv, "--lr", "0.01"], tmp_path / "reuse") is None
    assert reproduce.reusable(run, [*argv, "--epochs", "4"], tmp_path / "reuse") is None
