"""benchmarks/lightgcn_step_time.py on a tiny LightGCN-format graph."""

import json

import numpy as np
import pytest

from benchmarks import lightgcn_step_time, reporting


def _tiny_dataset(path):
    rng = np.random.default_rng(0)
    train, test = [], []
    for user in range(40):
        items = rng.choice(50, size=6, replace=False)
        train.append(" ".join(map(str, [user, *items[:4]])))
        test.append(" ".join(map(str, [user, *items[4:]])))
    (path / "train.txt").write_text("\n".join(train) + "\n")
    (path / "test.txt").write_text("\n".join(test) + "\n")
    return path


def test_smoke_times_both_paths_for_each_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(lightgcn_step_time, "BATCH", 32)
    monkeypatch.setattr(lightgcn_step_time, "LAYOUTS", ("in-batch", "sampled:16"))
    data_dir = _tiny_dataset(tmp_path)
    lightgcn_step_time.main(["--data", str(data_dir), "--steps", "2", "--warmup", "1"])
    payload = json.loads((tmp_path / "results" / "lightgcn_step_time.json").read_text())
    runs = payload["runs"]
    assert [(r["negatives"], r["path"]) for r in runs] == [
        (n, p) for n in ("in-batch", "sampled:16") for p in ("full", "rows")]
    assert payload["train_rows"] == 160 and payload["users"] == 40
    for r in runs:  # 160 rows / batch 32 = 5 steps per epoch
        assert r["ms_per_step"] > 0
        assert r["train_minutes_per_epoch"] * 60000 == pytest.approx(5 * r["ms_per_step"])
    by = {(r["negatives"], r["path"]): r["ms_per_step"] for r in runs}
    assert payload["speedup"]["in-batch"] == pytest.approx(
        by[("in-batch", "full")] / by[("in-batch", "rows")])
    assert payload["command"] and payload["commit"]


def test_a_layout_whose_draws_cover_the_catalogue_is_refused(tmp_path):
    from adaptau_tf.data import load_data

    data = load_data(f"lightgcn:{_tiny_dataset(tmp_path)}")
    with pytest.raises(ValueError, match="sampled:64: the model would not take its rows"):
        lightgcn_step_time.time_step(data, "sampled:64", "rows", 1, 1)
