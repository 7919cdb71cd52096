"""reproduction/table3_carry.py: finished rows survive a checkout without reproduction/work."""

import adaptau_tf  # noqa: F401

# isort: split

import json
import shutil

import pytest

from benchmarks import reporting
from reproduction import reproduce, table3_carry
from tests.reproduction.test_reproduce import TINY

CELLS = ["honest/nonorm", "honest/grid-tau", "honest/adap-tau"]


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    return tmp_path / "results"


def _argv(tmp_path, config, *extra):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return ["--config", str(path), "--work-dir", str(tmp_path / "work"), "--reuse-dir", "",
            "--in-process", *extra]


def _table(results):
    return json.loads((results / "table3_tiny.json").read_text())


def test_rows_of_lost_runs_are_carried_with_their_origin(tmp_path, results, monkeypatch):
    assert reproduce.main(_argv(tmp_path, TINY, "--only", *CELLS)) == 0
    before = _table(results)
    grid_file = (results / "grid_search_tiny_mf.json").read_text()
    assert {(r["protocol"], r["strategy"]) for r in before["rows"]} == {
        ("honest", s) for s in ("nonorm", "grid-tau", "adap-tau")}
    # A fresh checkout: the tables are committed, the run directories are not.
    shutil.rmtree(tmp_path / "work")
    monkeypatch.setattr(reporting, "commit", lambda: "c0ffee")

    assert reproduce.main(_argv(tmp_path, TINY, "--report-only")) == 0
    after = _table(results)
    assert after["commit"] == "c0ffee"
    assert len(after["rows"]) == 3
    for row in after["rows"]:
        old = next(r for r in before["rows"] if r["strategy"] == row["strategy"])
        assert row["carried_from"] == before["commit"]
        assert row["carried_machine"] == before["machine"]
        assert {k: v for k, v in row.items()
                if k not in ("carried_from", "carried_machine")} == old
    assert [p["strategy"] for p in after["pending"]] == ["adap-tau"]  # paper: never run
    assert after["ordering"] == before["ordering"]
    (grid,) = after["grid_search"]
    assert grid["carried_from"] == before["commit"]
    assert grid["ratio_to_adap_tau"] == pytest.approx(before["grid_search"][0]
                                                      ["ratio_to_adap_tau"])
    assert (results / "grid_search_tiny_mf.json").read_text() == grid_file  # left alone
    md = (results / "table3_tiny.md").read_text()
    assert "Adap-τ †" in md
    assert f"carried from the table of commit {before['commit']} ({before['machine']})" in md

    # Written again elsewhere, a carried row keeps its first origin.
    monkeypatch.setattr(reporting, "commit", lambda: "beef")
    monkeypatch.setattr(reporting, "machine", lambda: "another machine")
    assert reproduce.main(_argv(tmp_path, TINY, "--report-only")) == 0
    assert {(r["carried_from"], r["carried_machine"]) for r in _table(results)["rows"]} == \
        {(before["commit"], before["machine"])}


def test_changed_settings_drop_carried_rows(tmp_path, results):
    assert reproduce.main(_argv(tmp_path, TINY, "--only", *CELLS)) == 0
    shutil.rmtree(tmp_path / "work")
    changed = json.loads(json.dumps(TINY))
    changed["args"]["adap-tau"]["warmup_epochs"] = 2  # only Adap-τ's settings change
    changed["grid"]["*"]["taus"] = "0.1,0.3"  # and the grid's
    assert reproduce.main(_argv(tmp_path, changed, "--report-only")) == 0
    table = _table(results)
    assert [r["strategy"] for r in table["rows"]] == ["nonorm"]
    assert table["grid_search"] == []
    assert sorted((p["protocol"], p["strategy"]) for p in table["pending"]) == [
        ("honest", "adap-tau"), ("honest", "grid-tau"), ("paper", "adap-tau")]


def test_a_run_started_again_is_pending_not_carried(tmp_path, results):
    assert reproduce.main(_argv(tmp_path, TINY, "--only", "honest/nonorm")) == 0
    run = tmp_path / "work" / "tiny_mf" / "honest" / "nonorm"
    (run / "metrics.json").unlink()  # the directory is here: its state rules
    assert reproduce.main(_argv(tmp_path, TINY, "--report-only")) == 0
    table = _table(results)
    assert table["rows"] == []
    assert ("honest", "nonorm") in {(p["protocol"], p["strategy"]) for p in table["pending"]}


def test_a_corrupt_previous_table_is_an_error_not_a_silent_loss(tmp_path, results):
    results.mkdir()
    (results / "table3_tiny.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"table3_tiny\.json: not valid JSON"):
        reproduce.main(_argv(tmp_path, TINY, "--report-only"))
    assert (results / "table3_tiny.json").read_text() == "{not json"


def test_rows_older_than_the_scoring_rule_are_cosine_rows():
    old = "preset=p epochs=40 strategy=fixed tau=<best τ>; grid search: --preset p --epochs 20"
    new = ("preset=p score=cosine epochs=40 strategy=fixed tau=<best τ>; grid search: "
           "--preset p --score cosine --epochs 20")
    assert table3_carry.same_settings(old, new)
    assert not table3_carry.same_settings(old, new.replace("cosine", "dot"))
    assert not table3_carry.same_settings(old + " lr=0.1", new)
    assert table3_carry.same_settings(new, new) and not table3_carry.same_settings(None, new)
