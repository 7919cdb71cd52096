"""benchmarks/seed_replicate.py on a tiny synthetic Table 3: other seeds beside the table's."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import shutil
import statistics

import pytest

from benchmarks import reporting, reproduce, seed_replicate
from trainers import train as trainer

TINY = {
    "datasets": {"tiny": "synthetic:num_users=80,num_items=60"},
    "backbones": ["mf"],
    "protocols": {"honest": ["grid-tau", "adap-tau"]},
    "args": {"*": {"epochs": 2, "batch_size": 128, "embedding_dim": 8,
                   "negatives": "sampled:32", "lr": 0.02, "verbose": 0},
             "adap-tau": {"warmup_epochs": 1}},
    "grid": {"*": {"taus": "0.1,0.3", "epochs": 2}},
}


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
    runs = {}
    for run in reproduce.plan(TINY, tmp / "work", []):
        args = {**run["train_args"], "seed": 1}
        if run["strategy"] == "grid-tau":
            args["tau"] = next(r["tau"] for r in table["rows"] if r["strategy"] == "grid-tau")
        runs[run["strategy"]] = tmp / "seed1" / run["strategy"]
        trainer.main(reproduce.flags(args) + ["--output", str(runs[run["strategy"]])])
    yield tmp, config, table, runs
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
