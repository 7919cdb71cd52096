"""How training, the τ refresh, evaluation and memory grow with the data.

Synthetic implicit feedback at 1M, 5M and 20M interactions (40 per user on
average; catalogues of 50k, 250k and 1M items), MF + Adap-τ (paper loss form,
d = 64, 1024 shared sampled negatives, global batch 8192), on one machine.
Each size runs in its own subprocess so that ``peak_rss_mb`` (the process's
``ru_maxrss``) belongs to that size alone; the data are generated in yet
another subprocess (``benchmarks/scaling_data.py``) and cached under
``reproduction/work/scaling/`` so that the generator's memory is not counted.

Per size:

* ``seconds_per_epoch``: training over the train split (80 % of the
  interactions), after a 5-step warm-up. Full epochs where they take less than
  ``--full-epoch-steps`` steps, otherwise ``--timed-steps`` steps timed and
  multiplied up to an epoch (``extrapolated`` says which). The machine is
  shared, so ``seconds_per_epoch_from_median_step`` (median time between
  consecutive step ends × steps per epoch) is also given: it is less
  sensitive to bursts of load from other jobs.
* ``tau_refresh_seconds``: one ``AdaptiveTemperature.refresh`` (τ0 from the
  score moments over the active users' pairs, τ_u by Lambert W from the
  per-user losses accumulated over the timed steps, assignment, reset) as
  paid at every epoch after the first: the refresh is run twice on the same
  accumulated losses and the second call is timed.
  ``tau_refresh_first_seconds`` is the first call of the process (tracing and
  first allocation of its buffers: what the first epoch pays).
* ``eval_seconds``: ``RankingEvaluator`` all-ranking over ``eval_users`` test
  users (every test user when there are at most ``--full-eval-max-users``, a
  seeded uniform sample of ``--eval-sample`` users above);
  ``eval_seconds_all_users`` scales it to every test user (evaluation cost is
  linear in the users evaluated).
* ``peak_rss_mb``: peak resident memory of the process over the Adagrad
  measurement (data, model, Adagrad slots, pipeline, τ refresh, one
  ``[users_per_block, items]`` evaluation block), and per phase:
  ``setup_peak_rss_mb`` (data, model, callback and evaluator built),
  ``steps_peak_rss_mb`` (training steps), ``refresh_peak_rss_mb`` (τ refresh)
  and ``eval_peak_rss_mb`` (evaluation, including the representations), in
  that order. The kernel's high-water mark is reset at the start of each phase
  (``/proc/self/clear_refs``) to the current RSS, so a phase's peak includes
  what earlier phases left allocated (where the reset is not possible it is
  the running peak).

The optimizer is Adagrad, whose sparse update touches only the rows of the
batch. Adam (the paper's recipe and the trainer's default) decays both moment
tables densely at every step (``m ← β1·m`` over all rows in tf_keras' Adam),
so its step cost grows with ``num_users + num_items``; the ``adam_*`` columns
time it over ``--adam-steps`` steps on the same data to show the difference.

Usage:
    .venv/bin/python benchmarks/scaling.py                 # 1M, 5M, 20M
    .venv/bin/python benchmarks/scaling.py --sizes 200k --name scaling_smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.scaling_data import SIZES, TEST_FRACTION, cached_data  # noqa: E402

BATCH = 8192
NEGATIVES = 1024


# ----------------------------------------------------------------- measurement
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class Peaks:
    """Peak resident memory per phase: the high-water mark is reset at each phase."""

    def __init__(self) -> None:
        self.mb: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        try:  # "5" resets the process's peak RSS (Linux >= 4.0)
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            pass
        yield
        self.mb[name] = max(self.mb.get(name, 0.0), _peak_rss_mb())


def _time_steps(model: Any, data: Any, steps: int, steps_per_epoch: int) -> tuple[float, float]:
    """``(wall seconds, median seconds between consecutive step ends)`` of ``steps`` steps."""
    import tensorflow as tf

    ends: list[float] = []
    record = tf.keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    dataset = data.train_dataset(BATCH, seed=0)
    start = time.perf_counter()
    model.fit(dataset if steps >= steps_per_epoch else dataset.take(steps), verbose=0,
              callbacks=[record])
    wall = time.perf_counter() - start
    gaps = np.diff(ends)
    return wall, float(np.median(gaps)) if gaps.size else wall / max(steps, 1)


def measure(name: str, options: argparse.Namespace) -> dict[str, Any]:
    """One size, in this process: see the module docstring."""
    import adaptau_tf  # noqa: F401  (Keras 2 before tensorflow)

    # isort: split
    import scipy.sparse as sp
    import tensorflow as tf

    from adaptau_tf.callbacks import AdaptiveTemperature
    from adaptau_tf.data import InteractionData
    from adaptau_tf.evaluation import RankingEvaluator
    from adaptau_tf.models import build_model

    load_start = os.getloadavg()[0]
    peaks = Peaks()
    directory = cached_data(name)
    meta = json.loads((directory / "meta.json").read_text())
    steps_per_epoch = math.ceil(meta["train"] / BATCH)
    full = steps_per_epoch <= options.full_epoch_steps
    steps = steps_per_epoch if full else min(options.timed_steps, steps_per_epoch)
    with peaks.phase("setup"):
        train, test = (np.load(directory / f"{key}.npy") for key in ("train", "test"))
        data = InteractionData(num_users=meta["users"], num_items=meta["items"], train=train,
                               valid=np.zeros((0, 2), np.int64), test=test,
                               name=f"scaling-{name}")
        tf.keras.utils.set_random_seed(0)
        model = build_model("mf", data, strategy="adap-tau", negatives=f"sampled:{NEGATIVES}",
                            embedding_dim=64, seed=0)
        model.compile(optimizer=tf.keras.optimizers.Adagrad(0.05))
        callback = AdaptiveTemperature.from_data(data, warmup_epochs=0)
        callback.set_model(model)
        test_users = np.unique(test[:, 0])
        rng = np.random.default_rng(0)
        eval_users = (test_users if test_users.size <= options.full_eval_max_users
                      else np.sort(rng.choice(test_users, options.eval_sample, replace=False)))
        keep = np.isin(test[:, 0], eval_users)
        target = sp.csr_matrix((np.ones(int(keep.sum()), np.float32),
                                (test[keep, 0], test[keep, 1])), shape=data.train_csr.shape)
        evaluator = RankingEvaluator(data.train_csr, target, ks=(20,),
                                     user_batch_size=max(32, min(1024, 2**28 // meta["items"])))
    with peaks.phase("steps"):
        _time_steps(model, data, 5, steps_per_epoch)  # warm-up: traces the train step
        train_seconds, median_step = _time_steps(model, data, steps, steps_per_epoch)
    seconds_per_epoch = train_seconds * steps_per_epoch / steps
    task = model.task
    accumulated = (task.user_loss_sum.numpy(), task.user_loss_count.numpy())
    with peaks.phase("refresh"):
        start = time.perf_counter()
        callback.refresh(1)  # the first call of a process (the first epoch)
        tau_refresh_first_seconds = time.perf_counter() - start
        task.user_loss_sum.assign(accumulated[0])  # the same statistics again
        task.user_loss_count.assign(accumulated[1])
        start = time.perf_counter()
        refreshed = callback.refresh(2)  # every later epoch
        tau_refresh_seconds = time.perf_counter() - start
    with peaks.phase("eval"):
        start = time.perf_counter()
        users, items = model.compute_representations(training=False)
        metrics = evaluator.evaluate(users, items)
        eval_seconds = time.perf_counter() - start

    row: dict[str, Any] = {
        "size": name,
        "interactions": meta["interactions"],
        "train_interactions": meta["train"],
        "users": meta["users"],
        "items": meta["items"],
        "batch_size": BATCH,
        "steps_per_epoch": steps_per_epoch,
        "timed_steps": steps,
        "extrapolated": not full,
        "seconds_per_epoch": seconds_per_epoch,
        "seconds_per_step": train_seconds / steps,
        "median_step_seconds": median_step,
        "seconds_per_epoch_from_median_step": median_step * steps_per_epoch,
        "tau_refresh_seconds": tau_refresh_seconds,
        "tau_refresh_first_seconds": tau_refresh_first_seconds,
        "tau0": refreshed["tau0"],
        "eval_users": int(eval_users.size),
        "test_users": int(test_users.size),
        "eval_seconds": eval_seconds,
        "eval_seconds_all_users": eval_seconds * test_users.size / eval_users.size,
        "eval_recall@20": metrics["recall@20"],
        "peak_rss_mb": max(peaks.mb.values()),
        "peak_rss_mb_per_million_interactions": (
            max(peaks.mb.values()) / (meta["interactions"] / 1e6)),
        **{f"{phase}_peak_rss_mb": value for phase, value in peaks.mb.items()},
        "generate_seconds": meta["generate_seconds"],
    }
    if options.adam_steps > 0:  # the dense-moment optimizer, same data, fresh model
        del model, callback
        adam = build_model("mf", data, strategy="adap-tau", negatives=f"sampled:{NEGATIVES}",
                           embedding_dim=64, seed=0)
        adam.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
        _time_steps(adam, data, 3, steps_per_epoch)
        adam_steps = min(options.adam_steps, steps_per_epoch)
        seconds, adam_median = _time_steps(adam, data, adam_steps, steps_per_epoch)
        row.update(adam_timed_steps=adam_steps, adam_seconds_per_step=seconds / adam_steps,
                   adam_seconds_per_epoch=seconds / adam_steps * steps_per_epoch,
                   adam_median_step_seconds=adam_median)
    row["load_average"] = [load_start, os.getloadavg()[0]]
    return row


# --------------------------------------------------------------------- report
def _slope(rows: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of log(key) against log(interactions)."""
    pairs = [(r["interactions"], r[key]) for r in rows if r.get(key)]
    if len(pairs) < 2:
        return None
    x, y = (np.log(np.asarray(v, np.float64)) for v in zip(*pairs))
    return float(np.polyfit(x, y, 1)[0])


def _report(rows: list[dict[str, Any]], options: argparse.Namespace) -> tuple[dict, str]:
    from benchmarks.reporting import markdown_table

    keys = ["seconds_per_epoch", "seconds_per_epoch_from_median_step", "tau_refresh_seconds",
            "tau_refresh_first_seconds",
            "eval_seconds_all_users",
            "peak_rss_mb", "steps_peak_rss_mb", "refresh_peak_rss_mb", "eval_peak_rss_mb",
            "adam_seconds_per_epoch"]
    slopes = {key: _slope(rows, key) for key in keys}
    millions = [r["interactions"] / 1e6 for r in rows]
    memory = np.polyfit(millions, [r["peak_rss_mb"] for r in rows], 1) if len(rows) > 1 else None
    steps_memory = (np.polyfit(millions, [r["steps_peak_rss_mb"] for r in rows], 1)
                    if len(rows) > 1 else None)
    payload = {
        "rows": rows,
        "log_log_slopes": slopes,
        "peak_rss_mb_per_million_interactions_marginal": (
            None if memory is None else float(memory[0])),
        "peak_rss_mb_intercept": None if memory is None else float(memory[1]),
        "steps_peak_rss_mb_per_million_interactions_marginal": (
            None if steps_memory is None else float(steps_memory[0])),
        "setup": {
            "model": "MF, adap-tau, paper loss form, d=64",
            "negatives": f"{NEGATIVES} shared sampled per step",
            "batch_size": BATCH,
            "optimizer": "Adagrad(0.05) (row-sparse updates); adam_* columns: Adam(1e-3)",
            "interactions_per_user": 40,
            "test_fraction": TEST_FRACTION,
            "full_epoch_steps": options.full_epoch_steps,
            "timed_steps": options.timed_steps,
            "adam_steps": options.adam_steps,
            "full_eval_max_users": options.full_eval_max_users,
            "eval_sample": options.eval_sample,
            "eval": "all-ranking RankingEvaluator, ks=(20,)",
        },
    }
    header = ["interactions", "users", "items", "s/epoch", "s/epoch (median step)", "timed",
              "τ refresh s (first)",
              "eval s (users)", "eval s all users", "peak RSS MB", "MB per M",
              "peak MB: steps / τ refresh / eval", "Adam s/epoch"]
    table = [[f"{r['interactions']:,}", f"{r['users']:,}", f"{r['items']:,}",
              f"{r['seconds_per_epoch']:.1f}", f"{r['seconds_per_epoch_from_median_step']:.1f}",
              ("full epoch" if not r["extrapolated"]
               else f"{r['timed_steps']}/{r['steps_per_epoch']} steps"),
              f"{r['tau_refresh_seconds']:.2f} ({r['tau_refresh_first_seconds']:.2f})",
              f"{r['eval_seconds']:.1f} ({r['eval_users']:,})",
              f"{r['eval_seconds_all_users']:.1f}", f"{r['peak_rss_mb']:.0f}",
              f"{r['peak_rss_mb_per_million_interactions']:.0f}",
              (f"{r['steps_peak_rss_mb']:.0f} / {r['refresh_peak_rss_mb']:.0f} / "
               f"{r['eval_peak_rss_mb']:.0f}"),
              (f"{r['adam_seconds_per_epoch']:.0f}" if "adam_seconds_per_epoch" in r else "")]
             for r in rows]
    slope_rows = [[key, "" if value is None else f"{value:.2f}"] for key, value in slopes.items()]
    marginal = payload["peak_rss_mb_per_million_interactions_marginal"]
    lines = [
        "# Scaling with the number of interactions (one machine)",
        "",
        "MF + Adap-τ, d = 64, 1024 shared sampled negatives, global batch 8192, Adagrad; "
        "synthetic data with 40 interactions per user (80 % train); items grow with the "
        "data up to 1M. `timed` says whether the epoch was run in full or timed over a "
        "number of steps and multiplied up. Evaluation is all-ranking over the `users` "
        "shown (a uniform sample at the largest size), `eval s all users` scales it to "
        "every test user. Adam s/epoch: Adam(1e-3) timed over a few steps on the same "
        "data (its moment decay is dense over both tables at every step).",
        "",
        markdown_table(header, table),
        "",
        "Log-log slopes against interactions (1 = linear):",
        "",
        markdown_table(["quantity", "slope"], slope_rows),
        "",
        ("" if marginal is None else
         f"Peak memory: {marginal:.0f} MB per extra million interactions (least squares "
         f"over the sizes; intercept {payload['peak_rss_mb_intercept']:.0f} MB: TensorFlow "
         "runtime and fixed buffers). Training steps alone: "
         f"{payload['steps_peak_rss_mb_per_million_interactions_marginal']:.0f} MB per "
         "extra million. Per-phase peaks are in the table: the largest phase sets the "
         "process's peak."),
    ]
    return payload, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,5M,20M", help=f"comma list of {list(SIZES)}")
    parser.add_argument("--full-epoch-steps", type=int, default=700,
                        help="run full epochs up to this many steps")
    parser.add_argument("--timed-steps", type=int, default=300,
                        help="steps timed (and multiplied up) for longer epochs")
    parser.add_argument("--adam-steps", type=int, default=30)
    parser.add_argument("--full-eval-max-users", type=int, default=130_000,
                        help="evaluate every test user up to this many")
    parser.add_argument("--eval-sample", type=int, default=20_000,
                        help="users evaluated (uniform sample) above that")
    parser.add_argument("--name", default="scaling", help="results/<name>.{json,md}")
    parser.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure:
        print("ROW " + json.dumps(measure(options.measure, options)))
        return 0

    sizes = options.sizes.split(",")
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {list(SIZES)}")
    passed = [arg for arg in (argv if argv is not None else sys.argv[1:])]
    rows = []
    for name in sizes:
        cached_data(name)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        out = subprocess.run([sys.executable, __file__, *passed, "--measure", name],
                             check=True, capture_output=True, text=True, env=env)
        row = json.loads(next(line[4:] for line in out.stdout.splitlines()
                              if line.startswith("ROW ")))
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    from benchmarks.reporting import write_results

    payload, markdown = _report(rows, options)
    write_results(options.name, payload, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
