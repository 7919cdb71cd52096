"""reproduction/noise.py --smoke: the output contract, exact noisy data, resumption."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import numpy as np

from adaptau_tf.data import load_data, load_lightgcn
from benchmarks import reporting
from reproduction import noise

PNG = b"\x89PNG\r\n\x1a\n"


def test_smoke_run_writes_the_contract_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", reporting.RESULTS)  # restored after the test
    work, results = tmp_path / "work", tmp_path / "results"
    argv = ["--smoke", "--ratios", "0.2", "--work-dir", str(work),
            "--results-dir", str(results)]
    # --train-only trains one method's runs and writes no table; the full run reuses them.
    noise.main(argv + ["--train-only", "adap-tau"])
    trained = sorted(p.parent.name for p in work.glob("runs/*/*/metrics.json"))
    assert trained == ["adap-tau", "adap-tau"] and not (results / "noise_smoke.json").exists()
    adap_stamps = {p: p.stat().st_mtime_ns for p in work.glob("runs/*/adap-tau/metrics.json")}
    payload = noise.main(argv)
    assert {p: p.stat().st_mtime_ns for p in work.glob("runs/*/adap-tau/metrics.json")} == \
        adap_stamps

    saved = json.loads((results / "noise_smoke.json").read_text())
    assert {"global", "local", "commit", "machine", "command"} <= set(saved)
    (row,) = saved["global"]
    assert row["ratio"] == 0.2
    for method in ("fixed", "adap-tau"):
        assert 0.0 <= row[method]["test_recall@20"] <= 1.0
        assert 0.0 <= row[method]["test_ndcg@20"] <= 1.0
    assert [r["noise"] for r in saved["local"]] == [0.1, 0.2, 0.3, 0.4]
    assert all(np.isfinite(r["median_tau_u"]) for r in saved["local"])
    assert sum(r["users"] for r in saved["local"]) == 80
    assert saved["fixed_tau"] == noise.DEFAULT_TAU
    assert "by " in (results / "noise_smoke.md").read_text() or \
        saved["checks"]["adap_tau_ge_fixed_recall_at_every_ratio"]
    for name in ("noise_global_smoke.png", "noise_local_tau_smoke.png"):
        data = (results / "figures" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 2000

    # The noisy training file adds exactly round-half-up(0.2 · |train_u|) new items per user.
    clean = load_data(noise.SMOKE["data_spec"], seed=0)
    noisy = load_lightgcn(work / "data" / "global_0.2")
    assert (noisy.num_users, noisy.num_items) == (clean.num_users, clean.num_items)
    added = np.bincount(noisy.train[:, 0], minlength=80) - clean.train_user_counts
    assert added.tolist() == np.floor(0.2 * clean.train_user_counts + 0.5).astype(int).tolist()
    assert set(map(tuple, noisy.test.tolist())) == set(map(tuple, clean.test.tolist()))

    # Rerunning trains nothing again (finished runs are kept) and gives the same table.
    stamps = {p: p.stat().st_mtime_ns for p in work.glob("runs/*/*/metrics.json")}
    assert len(stamps) == 4
    again = noise.main(argv)
    assert {p: p.stat().st_mtime_ns for p in work.glob("runs/*/*/metrics.json")} == stamps
    assert again["global"] == payload["global"] and again["local"] == payload["local"]


def test_fixed_tau_comes_from_a_complete_grid_search(tmp_path, monkeypatch):
    monkeypatch.setattr(reporting, "RESULTS", tmp_path)
    args = noise.parse_args(["--data", "ml-1m"])
    assert noise.fixed_tau(args)[0] == noise.DEFAULT_TAU
    (tmp_path / "grid_search_ml-1m_mf.json").write_text(
        json.dumps({"best_tau": 0.12, "complete": False}))
    assert noise.fixed_tau(noise.parse_args(["--tau", "0.3"]))[0] == 0.3
    (tmp_path / "grid_search_ml-1m_mf.json").write_text(
        json.dumps({"best_tau": 0.12, "complete": True}))
    assert noise.fixed_tau(args) == (0.12, "best_tau of grid_search_ml-1m_mf.json")


def test_adap_tau_settings_reach_the_trainer_and_name_the_run(tmp_path):
    default = noise.parse_args([])
    tuned = noise.parse_args(["--warmup-epochs", "100", "--estimator", "mean-variance"])
    fixed = noise.train_argv(tuned, tmp_path, "fixed", 0.12, tmp_path / "f")
    adap = noise.train_argv(tuned, tmp_path, "adap-tau", 0.12, tmp_path / "a")
    assert fixed[-2:] == ["--tau", "0.12"] and "--warmup-epochs" not in fixed
    assert adap[adap.index("--warmup-epochs") + 1] == "100"
    assert adap[adap.index("--estimator") + 1] == "mean-variance"
    # A different Adap-τ setting never resumes (or reuses) another setting's run.
    assert noise.run_name(default, "adap-tau", 0.12) == "adap-tau"
    assert noise.run_name(tuned, "adap-tau", 0.12) == "adap-tau-w100-mean-variance"
    assert noise.run_name(tuned, "fixed", 0.12) == "fixed-tau0.12"
