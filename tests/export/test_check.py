import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from adaptau_tf.export import check
from adaptau_tf.export.check import ExportChecker, check_in_subprocess, resolve_saved_model_dir
from tests.export.conftest import NUM_USERS, in_memory_topk


@pytest.fixture(scope="module")
def scann_saved_model(tmp_path_factory):
    """A SavedModel holding a tfrs ScaNN layer (ScaNN custom TF ops)."""
    layer = tfrs.layers.factorized_top_k.ScaNN(
        k=5, num_leaves=4, num_leaves_to_search=2, num_reordering_candidates=20)
    layer.index(tf.random.normal([200, 8], seed=0), tf.range(200, dtype=tf.int64))
    layer(tf.random.normal([2, 8], seed=1))  # builds the layer: its call graph is saved too
    path = tmp_path_factory.mktemp("scann_model") / "1"
    tf.saved_model.save(layer, str(path),
                        options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]))
    return path


@pytest.fixture(scope="module")
def fresh_report(trained, exported, tmp_path_factory):
    """The fresh-process check of the export against a reference made here, in TF."""
    data, model = trained
    users = np.arange(0, NUM_USERS, 5, dtype=np.int64)
    ids, scores = in_memory_topk(model, data, users, 20)
    reference = tmp_path_factory.mktemp("reference") / "topk.npz"
    np.savez(reference, user_ids=users, k=np.int32(20), item_ids=ids, scores=scores)
    return check_in_subprocess(exported, reference=reference)


def test_fresh_process_check_passes_without_adaptau_tf(fresh_report):
    assert fresh_report["ok"], fresh_report["failures"]
    assert fresh_report["adaptau_tf_imported"] is False
    assert fresh_report["scann_imported"] is False


def test_fresh_process_topk_is_identical_to_in_memory_model(fresh_report):
    reference = fresh_report["reference"]
    assert reference["users"] == 40 and reference["k"] == 20
    assert reference["exact_match_fraction"] == 1.0
    assert reference["max_score_diff"] <= 1e-6


def test_fresh_process_ops_are_core_only(fresh_report):
    ops = fresh_report["ops"]
    assert ops["tags"] == ["serve"] and ops["bad"] == []
    assert {"TopKV2", "MatMul", "ResourceGather", "TensorScatterUpdate", "Assert"} <= set(
        ops["all"])
    assert not [op for op in ops["all"] if "Scann" in op or "PyFunc" in op]


def test_fresh_process_runs_signatures_errors_and_saved_model_cli(fresh_report):
    signatures = fresh_report["signatures"]
    assert signatures["serving_default"] == {"item_ids": [40, 20], "scores": [40, 20]}
    assert signatures["max_score_vs_embeddings"] <= 1e-5
    assert len(signatures["errors"]) == 5
    assert all("out of range" in m or "k must be" in m for m in signatures["errors"].values())
    cli = fresh_report["saved_model_cli"]
    assert cli == {"show_returncode": 0, "run_returncode": 0, "run_matches_signature": True}


def test_op_check_fails_on_a_scann_saved_model_in_a_fresh_process(scann_saved_model):
    report = check_in_subprocess(scann_saved_model, run_cli=False)
    assert not report["ok"]
    assert "Scann>ScannSearchBatched" in report["ops"]["bad"]
    assert "Scann>ScannSearchBatched" in report["ops"]["not_core"]  # unknown to plain TF
    assert any("non-core or denied ops" in failure for failure in report["failures"])


def test_deny_list_catches_scann_even_when_its_ops_are_registered(scann_saved_model):
    checker = ExportChecker(scann_saved_model, run_cli=False)  # this process imported scann
    checker.check_ops()
    assert "Scann>TensorsToScann" in checker.report["ops"]["denied"]
    assert checker.failures
    for name in ("PyFunc", "EagerPyFunc", "PyFuncStateless", "ScannSearch"):
        assert check.DENIED_OPS.search(name), name
    assert not check.DENIED_OPS.search("TopKV2")


def test_cli_exit_codes(exported, scann_saved_model, tmp_path, capsys):
    # From an unrelated directory, with a relative path: the installed module runs.
    relative = Path(os.path.relpath(exported.parent, tmp_path))
    done = subprocess.run([sys.executable, "-m", "adaptau_tf.export.check", str(relative),
                           "--no-cli"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "exact match 1.0000" in done.stdout and done.stdout.strip().endswith("OK")
    assert check.main([str(scann_saved_model), "--no-cli"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "modeling code or TFRS was imported by the check process" in out


def test_resolve_picks_latest_version_and_rejects_non_exports(exported, tmp_path):
    assert resolve_saved_model_dir(exported.parent) == exported
    assert resolve_saved_model_dir(exported) == exported
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        resolve_saved_model_dir(tmp_path)
