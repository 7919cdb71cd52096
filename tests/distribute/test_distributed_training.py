"""Adap-τ under tf.distribute: the same τ and per-user statistics as one process.

Each distributed run goes through ``adaptau-train --distribute ...`` in fresh
processes (``_worker.py``) and is compared with an in-process single-device run
on the same global batches: sampled negatives (drawn from ``(seed, step)``, so
shared by every replica), no message dropout, the trainer's seeded shuffle,
and a global batch of 97 rows, which no replica count divides — every step
(and the last, shorter batch) is split unevenly, so the loss must be the mean
over the global batch however it is split.
"""

import adaptau_tf  # noqa: F401

# isort: split

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.distribute import make_strategy
from tests.distribute._worker import DumpState

WORKER = Path(__file__).with_name("_worker.py")
REPO = WORKER.parents[2]
TIMEOUT_SECONDS = 180
BATCH = 97
ARGS = [
    "--data", "synthetic:num_users=120,num_items=90", "--strategy", "adap-tau",
    "--epochs", "2", "--warmup-epochs", "1", "--batch-size", str(BATCH),
    "--embedding-dim", "8", "--negatives", "sampled:32", "--dropout", "0", "--lr", "0.02",
    "--patience", "0", "--verbose", "0",
]


# G = 4 draws of negatives (row b of a replica's batch uses draw b mod G): exactly the
# single-device loss when every replica's rows are a multiple of G. Batch 96 on 2 replicas
# gives 48 rows each; the last batch (2472 % 96 = 72 rows) 36 each.
GROUPED_BATCH = 96
GROUPED_ARGS = [*ARGS[: ARGS.index("--batch-size")], "--batch-size", str(GROUPED_BATCH),
                *ARGS[ARGS.index("--batch-size") + 2:]]
GROUPED_ARGS[GROUPED_ARGS.index("sampled:32")] = "sampled:32x4"


def _single_run(out: Path, args: list[str]) -> tuple[dict, Path]:
    parsed = trainer.build_parser().parse_args([*args, "--output", str(out / "run")])
    dump = DumpState(str(out / "state.npz"))
    trainer.train(parsed, extra_callbacks=[dump])
    return dict(np.load(out / "state.npz")), out / "run"


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: the same training in this process, on one device."""
    state, run = _single_run(tmp_path_factory.mktemp("single"), ARGS)
    num_train = json.loads((run / "config.json").read_text())["num_train"]
    assert num_train % BATCH % 2 == 1, "the last batch should split unevenly too"
    return state, run


@pytest.fixture(scope="module")
def single_grouped(tmp_path_factory):
    """The reference of the grouped-negatives run (``sampled:32x4``)."""
    state, run = _single_run(tmp_path_factory.mktemp("single_grouped"), GROUPED_ARGS)
    num_train = json.loads((run / "config.json").read_text())["num_train"]
    assert GROUPED_BATCH % 8 == 0 and num_train % GROUPED_BATCH % 8 == 0 < num_train % 96
    return state, run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run_workers(commands: list[tuple[list[str], dict[str, str]]], logs: list[Path]) -> None:
    """Starts every command, waits for all within the deadline, always stops them."""
    procs = []
    handles = [log.open("w") for log in logs]
    try:
        for (command, env), handle in zip(commands, handles):
            procs.append(subprocess.Popen(command, env=env, cwd=REPO, stdout=handle,
                                          stderr=subprocess.STDOUT))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        for proc, log in zip(procs, logs):
            try:
                code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker did not finish in {TIMEOUT_SECONDS}s:\n"
                            + log.read_text()[-3000:])
            assert code == 0, f"worker exited with {code}:\n" + log.read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for handle in handles:
            handle.close()


def _assert_same_state(state: dict, reference: dict, copies: int) -> None:
    for epoch in (0, 1):
        e = f"e{epoch}_"
        np.testing.assert_array_equal(state[e + "user_loss_count"],
                                      reference[e + "user_loss_count"])
        np.testing.assert_allclose(state[e + "user_loss_sum"], reference[e + "user_loss_sum"],
                                   rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(state[e + "inverse_temperature"],
                                   reference[e + "inverse_temperature"], rtol=1e-5)
        np.testing.assert_allclose(state[e + "user_inverse_temperature"],
                                   reference[e + "user_inverse_temperature"], rtol=1e-5)
        np.testing.assert_allclose(state[e + "loss"], reference[e + "loss"], rtol=1e-5)
        assert bool(state[e + "tau_copies_equal"])
        assert int(state[e + "num_copies"]) == copies
    # epoch 1 used data-driven τ_u from epoch 0's accumulators, not the warm-up prior
    assert np.ptp(reference["e1_user_inverse_temperature"]) > 0


def _assert_same_files(run: Path, reference_run: Path, workers: int = 1) -> None:
    """The run holds exactly a single-process run's files (no worker scratch left)
    plus each other worker's early-stopping state, kept to extend the run."""
    names = {path.name for path in run.iterdir()}
    kept = {f"evaluation_state_worker{task}" for task in range(1, workers)}
    assert names == {path.name for path in reference_run.iterdir()} | kept
    for name in kept:
        assert (run / name / "ranking_evaluation_state.json").exists()
    assert {"config.json", "history.csv", "metrics.json", "weights"} <= names


def _assert_same_history(run: Path, reference_run: Path) -> None:
    lines = [(run / "history.csv").read_text().splitlines(),
             (reference_run / "history.csv").read_text().splitlines()]
    header = lines[0][0].split(",")
    assert header == lines[1][0].split(",")
    for column in ("loss", "tau0", "tau_u_p50", "val_ndcg@20"):
        index = header.index(column)
        got, want = ([float(row.split(",")[index]) for row in rows[1:]] for rows in lines)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=column)


def test_multi_worker_mirrored_matches_single_process(single, tmp_path):
    reference, reference_run = single
    ports = [_free_port(), _free_port()]
    run = tmp_path / "run"
    commands = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        command = [sys.executable, str(WORKER), "--dump", str(tmp_path / f"w{index}.npz"), "--",
                   *ARGS, "--distribute", "multi-worker", "--output", str(run)]
        commands.append((command, _env(TF_CONFIG=json.dumps(tf_config))))
    _run_workers(commands, [tmp_path / "w0.log", tmp_path / "w1.log"])

    chief, other = (dict(np.load(tmp_path / f"w{i}.npz")) for i in range(2))
    _assert_same_state(chief, reference, copies=1)
    for key in chief:  # the workers agree bitwise (τ is broadcast from the chief)
        np.testing.assert_array_equal(other[key], chief[key], err_msg=key)
    # only the chief wrote the run; the other worker's scratch files are gone
    _assert_same_files(run, reference_run, workers=2)
    config = json.loads((run / "config.json").read_text())
    assert (config["num_replicas"], config["num_workers"]) == (2, 2)
    _assert_same_history(run, reference_run)


@pytest.mark.parametrize("grouped", [False, True], ids=["shared-draw", "4-draws"])
def test_mirrored_two_logical_cpus_matches_single_process(
    grouped, request, tmp_path
):
    reference, reference_run = request.getfixturevalue(
        "single_grouped" if grouped else "single"
    )
    run = tmp_path / "run"
    command = [sys.executable, str(WORKER), "--dump", str(tmp_path / "m.npz"),
               "--logical-cpus", "2", "--", *(GROUPED_ARGS if grouped else ARGS),
               "--distribute", "mirrored", "--output", str(run)]
    _run_workers([(command, _env())], [tmp_path / "m.log"])

    state = dict(np.load(tmp_path / "m.npz"))
    _assert_same_state(state, reference, copies=2)
    _assert_same_files(run, reference_run)
    config = json.loads((run / "config.json").read_text())
    assert (config["num_replicas"], config["num_workers"]) == (2, 1)
    _assert_same_history(run, reference_run)


def test_multi_worker_without_tf_config_fails_early(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        make_strategy("multi-worker")
    with pytest.raises(ValueError, match="--distribute"):
        make_strategy("parameter-server")
