"""benchmarks/step_time.py on a tiny catalogue: every layout x path x XLA timed."""

import json

import pytest

from benchmarks import reporting, step_time


def test_smoke_times_both_paths_and_marks_the_models_own(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path)
    monkeypatch.setattr(step_time, "GOWALLA_USERS", 50)
    monkeypatch.setattr(step_time, "GOWALLA_ITEMS", 40000)  # 1024 x 32 < 40000 <= 1024 x 48
    monkeypatch.setattr(step_time, "BATCH", 48)
    monkeypatch.setattr(step_time, "TRAIN_ROWS", 480)
    step_time.main(["--steps", "2", "--warmup", "1"])
    payload = json.loads((tmp_path / "step_time.json").read_text())
    runs = payload["runs"]
    assert [(r["negatives"], r["path"], r["jit"]) for r in runs] == [
        (n, p, j) for n in ("sampled:1024x32", "sampled:1024x48")
        for p in ("gathered", "table") for j in (False, True)]
    assert all(r["ms_per_step"] > 0 for r in runs)
    for r in runs:  # 480 rows / batch 48 = 10 steps
        assert r["gowalla_train_minutes_per_epoch"] * 60000 == pytest.approx(10 * r["ms_per_step"])
    own = {(r["negatives"], r["path"]) for r in runs if r["default_path"]}
    assert own == {("sampled:1024x32", "gathered"), ("sampled:1024x48", "table")}
    assert "| sampled:1024x48 | table | yes |" in (tmp_path / "step_time.md").read_text()
    assert payload["command"] and payload["commit"]
