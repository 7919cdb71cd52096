"""reproduction/seed_replicate.py on a tiny synthetic Table 3: other seeds beside the table's."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import shutil
import statistics

import pytest

from adaptau_tf.trainers import train as trainer
from benchmarks import reporting
from reproduction import reproduce, seed_replicate

TINY = {
    "datasets": {"tiny": "synthetic:num_users=80,num_items=60"},
    "backbones": ["mf"],
    "protocols": {"honest": ["grid-tau", "adap-tau"]},
    "args": {"*": {"epochs": 2, "batch_size": 128, "embedding_dim": 8,
                   "negatives": "sampled:32", "lr": 0.02, "verbose": 0},
             "adap-tau": {"warmup_epochs": 1}},
    "grid": {"*": {"taus": "0.1,0.3", "epochs": 2}},
}


def _train_seed(tmp, table, seed):
    """Runs of both strategies of the tiny table with ``seed`` (grid-tau at its τ)."""
    runs = {}
    for run in reproduce.plan(TINY, tmp / "work", []):
        args = {**run["train_args"], "seed": seed}
        if run["strategy"] == "grid-tau":
            args["tau"] = next(r["tau"] for r in table["rows"] if r["strategy"] == "grid-tau")
        runs[run["strategy"]] = tmp / f"seed{seed}" / run["strategy"]
        trainer.main(reproduce.flags(args) + ["--output", str(runs[run["strategy"]])])
    return runs


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The tiny table (seed 0) and seed-1 runs of both strategies."""
    tmp = tmp_path_factory.mktemp("seeds")
    patch = pytest.MonkeyPatch()
    patch.setattr(reporting, "RESULTS", tmp / "results")
    config = tmp / "tiny.json"
    config.write_text(json.dumps(TINY))
    assert reproduce.main(["--config", str(config), "--work-dir", str(tmp / "work"),
                           "--reuse-dir", "", "--in-process"]) == 0
    table = json.loads((tmp / "results" / "table3_tiny.json").read_text())
    yield tmp, config, table, _train_seed(tmp, table, 1)
    patch.undo()


def _argv(config, runs, **extra):
    argv = ["--config", str(config), "--dataset", "tiny", "--backbone", "mf",
            "--protocol", "honest"]
    for strategy, directory in {**runs, **extra}.items():
        argv += ["--run", f"{strategy}={directory}"]
    return argv


def test_rows_means_and_orderings_per_seed(made):
    tmp, config, table, runs = made
    payload = seed_replicate.main(_argv(config, runs))
    assert payload["seeds"] == [0, 1]
    rows = {(r["strategy"], r["seed"]): r for r in payload["rows"]}
    assert sorted(rows) == [("adap-tau", 0), ("adap-tau", 1), ("grid-tau", 0), ("grid-tau", 1)]
    for strategy, directory in runs.items():
        own = next(r for r in table["rows"] if r["strategy"] == strategy)
        metrics = json.loads((directory / "metrics.json").read_text())
        for metric in ("test_recall@20", "test_ndcg@20"):
            assert rows[(strategy, 0)][metric] == own[metric]
            assert rows[(strategy, 1)][metric] == metrics[metric]
    assert rows[("grid-tau", 1)]["tau"] == rows[("grid-tau", 0)]["tau"]
    means = {m["strategy"]: m for m in payload["mean"]}
    for seed in ("0", "1"):
        (check,) = payload["ordering"][seed]
        assert check["check"] == "adap-tau >= grid-tau"
        diff = (rows[("adap-tau", int(seed))]["test_ndcg@20"]
                - rows[("grid-tau", int(seed))]["test_ndcg@20"])
        assert check["ndcg@20"]["diff"] == pytest.approx(diff)
        assert check["ndcg@20"]["holds"] == (diff >= 0)
    for strategy in runs:
        values = [rows[(strategy, s)]["test_recall@20"] for s in (0, 1)]
        assert means[strategy]["test_recall@20"] == pytest.approx(statistics.fmean(values))
        # Sample standard deviation of two values: |a - b| / sqrt(2).
        assert means[strategy]["test_recall@20_std"] == pytest.approx(
            abs(values[0] - values[1]) / 2 ** 0.5)
    (mean_check,) = payload["mean_ordering"]
    assert mean_check["recall@20"]["diff"] == pytest.approx(
        means["adap-tau"]["test_recall@20"] - means["grid-tau"]["test_recall@20"])
    written = json.loads((tmp / "results" / "seed_replicate_tiny_mf_honest.json").read_text())
    assert written["commit"] and written["command"] and written["table"]["commit"]
    md = (tmp / "results" / "seed_replicate_tiny_mf_honest.md").read_text()
    assert "| Adap-τ | mean ± sd |" in md and "Adap-τ ≥ Grid Search τ" in md
    assert "trains at the τ the table's grid search chose" in md


def test_runs_that_differ_in_more_than_the_seed_are_refused(made):
    tmp, config, _, runs = made
    changed = tmp / "changed_lr"
    shutil.copytree(runs["adap-tau"], changed, dirs_exist_ok=True)
    recorded = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**recorded, "lr": 0.5}))
    with pytest.raises(ValueError, match=r"more than its seed: lr: 0\.5 -> 0\.02"):
        seed_replicate.main(_argv(config, {**runs, "adap-tau": changed}))
    same_seed = tmp / "seed0"
    shutil.copytree(runs["adap-tau"], same_seed, dirs_exist_ok=True)
    (same_seed / "config.json").write_text(json.dumps({**recorded, "seed": 0}))
    with pytest.raises(ValueError, match="seed 0 is the table's own seed"):
        seed_replicate.main(_argv(config, {**runs, "adap-tau": same_seed}))
    with pytest.raises(SystemExit, match=r"no tiny/mf/honest row for \['c-tau'\]"):
        seed_replicate.main(_argv(config, runs, **{"c-tau": runs["adap-tau"]}))


def test_a_table_made_with_other_settings_is_refused(made, tmp_path):
    _, config, table, runs = made
    stale = tmp_path / "table3_tiny.json"
    settings = {**table["settings"], "mf/honest/adap-tau": "lr=1"}
    stale.write_text(json.dumps({**table, "settings": settings}))
    with pytest.raises(ValueError, match="mf/honest/adap-tau was made with 'lr=1'"):
        seed_replicate.main(_argv(config, runs) + ["--table", str(stale)])
    unfinished = tmp_path / "unfinished.json"
    rows = [r for r in table["rows"] if r["strategy"] != "adap-tau"]
    unfinished.write_text(json.dumps({**table, "rows": rows}))
    with pytest.raises(ValueError, match="no finished mf/honest/adap-tau row"):
        seed_replicate.main(_argv(config, runs) + ["--table", str(unfinished)])


def test_every_strategy_needs_every_seed():
    rows = [{"backbone": "mf", "protocol": "honest", "strategy": s, "seed": seed,
             "test_recall@20": 0.1, "test_ndcg@20": 0.1}
            for s, seed in (("adap-tau", 0), ("adap-tau", 1), ("grid-tau", 0))]
    with pytest.raises(ValueError, match=r"grid-tau has seeds \[0\], the others \[0, 1\]"):
        seed_replicate.summarise(rows)
    assert seed_replicate.parse_run("adap-tau=a/b")[0] == "adap-tau"
    with pytest.raises(Exception, match="STRATEGY=DIRECTORY, got 'adap-tau'"):
        seed_replicate.parse_run("adap-tau")


@pytest.fixture(scope="module")
def seed2(made):
    """Seed-2 runs of both strategies of the tiny table."""
    tmp, _, table, _ = made
    return _train_seed(tmp, table, 2)


def test_carry_keeps_the_replaced_files_other_seeds(made, seed2):
    tmp, config, table, runs = made
    first = seed_replicate.main(_argv(config, runs))
    assert first["settings"] == {key: table["settings"][key]
                                 for key in ("mf/honest/adap-tau", "mf/honest/grid-tau")}
    seed1 = {r["strategy"]: r for r in first["rows"] if r["seed"] == 1}
    written = json.loads((tmp / "results" / "seed_replicate_tiny_mf_honest.json").read_text())
    # Seed 1's directories are gone: --carry keeps its rows, seed 2 comes from the runs.
    second = seed_replicate.main(_argv(config, seed2) + ["--carry"])
    assert second["seeds"] == [0, 1, 2]
    kept = {r["strategy"]: r for r in second["rows"] if r["seed"] == 1}
    origin = f"{written['commit']} ({written['machine']})"
    for strategy, row in kept.items():
        assert row["kept_from"] == origin
        assert row["test_ndcg@20"] == seed1[strategy]["test_ndcg@20"]
    fresh = {r["strategy"]: r for r in second["rows"] if r["seed"] == 2}
    for strategy, directory in seed2.items():
        metrics = json.loads((directory / "metrics.json").read_text())
        assert fresh[strategy]["test_recall@20"] == metrics["test_recall@20"]
        assert "kept_from" not in fresh[strategy]
    assert sorted(second["carry"]["kept"]) == [["adap-tau", 1], ["grid-tau", 1]]
    assert second["carry"]["rerun_differences"] == []
    means = {m["strategy"]: m for m in second["mean"]}
    values = [r["test_recall@20"] for r in second["rows"] if r["strategy"] == "adap-tau"]
    assert means["adap-tau"]["test_recall@20"] == pytest.approx(statistics.fmean(values))
    md = (tmp / "results" / "seed_replicate_tiny_mf_honest.md").read_text()
    assert "| Adap-τ | 1 † |" in md
    assert f"† kept from the seed-replicate file of commit {origin}" in md
    # Seed 1 rerun: taken from the runs; seed 2 kept with its first origin; the
    # rerun's differences from the replaced file are recorded (same runs: zero).
    third = seed_replicate.main(_argv(config, runs) + ["--carry"])
    assert sorted(third["carry"]["kept"]) == [["adap-tau", 2], ["grid-tau", 2]]
    assert all("kept_from" not in r for r in third["rows"] if r["seed"] == 1)
    differences = third["carry"]["rerun_differences"]
    assert sorted((d["strategy"], d["seed"]) for d in differences) == [
        ("adap-tau", 1), ("grid-tau", 1)]
    assert all(d[m] == 0.0 for d in differences for m in seed_replicate.METRICS)
    md = (tmp / "results" / "seed_replicate_tiny_mf_honest.md").read_text()
    assert "2 run(s) of that file were rerun here" in md and "at most 0.0e+00" in md
    # A strategy without runs keeps all its rows from the replaced file.
    fourth = seed_replicate.main(_argv(config, {"adap-tau": seed2["adap-tau"]}) + ["--carry"])
    assert sorted(fourth["carry"]["kept"]) == [["adap-tau", 1], ["grid-tau", 1],
                                               ["grid-tau", 2]]
    assert {(r["strategy"], r["seed"]) for r in fourth["rows"]} == {
        (s, seed) for s in ("adap-tau", "grid-tau") for seed in (0, 1, 2)}
    # Without --carry the replaced file's seeds are dropped.
    assert seed_replicate.main(_argv(config, seed2))["seeds"] == [0, 2]


def test_carry_refuses_rows_made_with_other_settings(made, seed2):
    tmp, config, _, runs = made
    seed_replicate.main(_argv(config, runs))
    path = tmp / "results" / "seed_replicate_tiny_mf_honest.json"
    previous = json.loads(path.read_text())
    previous["settings"]["mf/honest/grid-tau"] = "lr=1"
    path.write_text(json.dumps(previous))
    with pytest.raises(ValueError, match="mf/honest/grid-tau seed 1 was made with 'lr=1'"):
        seed_replicate.main(_argv(config, seed2) + ["--carry"])


def test_files_without_settings_are_checked_against_their_table(monkeypatch):
    previous = {"table": {"commit": "abc123", "path": "benchmarks/results/table3_x.json"}}
    asked = []

    def table_written_at(commit, path):
        asked.append((commit, path))
        return {"settings": {"mf/honest/adap-tau": "lr=0.1"}}

    monkeypatch.setattr(seed_replicate, "table_written_at", table_written_at)
    assert seed_replicate.recorded_settings(previous) == {"mf/honest/adap-tau": "lr=0.1"}
    assert asked == [("abc123", "benchmarks/results/table3_x.json")]
    assert seed_replicate.recorded_settings({"settings": {"k": "v"}}) == {"k": "v"}


def test_table_written_at_finds_the_version_committed_after_that_commit():
    path = "benchmarks/results/table3_ml-1m.json"
    committed = json.loads(seed_replicate._git("show", f"HEAD:{path}").stdout)
    written_at = committed["commit"]
    # The table is committed after the commit it was written at, whose tree
    # holds an older table: that one must not be returned.
    older = json.loads(seed_replicate._git("show", f"{written_at}:{path}").stdout)
    assert older["commit"] != written_at
    assert seed_replicate.table_written_at(written_at, path) == committed
    with pytest.raises(ValueError, match="'abc-dirty': not a committed table"):
        seed_replicate.table_written_at("abc-dirty", path)
    with pytest.raises(ValueError, match=f"no committed version of {path} was written at "
                                         "commit 0000000"):
        seed_replicate.table_written_at("0000000", path)
