"""benchmarks/step_time.py on tiny sizes: every size x layout x path x XLA timed."""

import json

import pytest

from benchmarks import reporting, step_time


def test_smoke_times_every_path_and_marks_autos_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path)
    # ML-1M: 4 x 1024 >= 4000 (table); Gowalla: 4 x 1024 < 40000 <= 4 x 1024 x 32 (gathered,
    # then table).
    monkeypatch.setattr(step_time, "SIZES", {"ml-1m": (30, 4000, 480),
                                             "gowalla": (50, 40000, 480)})
    monkeypatch.setattr(step_time, "BATCH", 48)
    step_time.main(["--steps", "2", "--warmup", "1"])
    payload = json.loads((tmp_path / "step_time.json").read_text())
    runs = payload["runs"]
    layouts = [("ml-1m", "sampled:1024"), ("ml-1m", "sampled:1024x32"),
               ("gowalla", "sampled:1024"), ("gowalla", "sampled:1024x32"),
               ("gowalla", "sampled:1024x48")]
    assert [(r["dataset"], r["negatives"], r["path"], r["jit"]) for r in runs] == [
        (d, n, p, j) for d, n in layouts for p in ("gathered", "table") for j in (False, True)]
    assert all(r["ms_per_step"] > 0 for r in runs)
    for r in runs:  # 480 rows / batch 48 = 10 steps
        assert r["train_seconds_per_epoch"] * 1000 == pytest.approx(10 * r["ms_per_step"])
    own = {(r["dataset"], r["negatives"], r["path"]) for r in runs if r["default_path"]}
    assert own == {("ml-1m", "sampled:1024", "table"), ("ml-1m", "sampled:1024x32", "table"),
                   ("gowalla", "sampled:1024", "gathered"),
                   ("gowalla", "sampled:1024x32", "table"),
                   ("gowalla", "sampled:1024x48", "table")}
    assert len(payload["auto"]) == len(layouts)
    assert payload["command"] and payload["commit"]
