"""Training and evaluation speed on ML-1M (issue: foundation).

MF, batch 2048, 1024 shared sampled negatives, fixed τ, on the full ML-1M
training split. Prints and writes ``results/train_speed.{json,md}`` with
``seconds_per_epoch`` (median of the timed epochs, the first epoch, which
traces the graph, excluded), ``interactions_per_second`` and ``eval_seconds``
(a full ML-1M test evaluation: every test user ranked against all items with
training items masked; the median of repeated calls after the first, which
traces).

Usage:
    .venv/bin/python benchmarks/train_speed.py [--epochs 4] [--data PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adaptau_tf  # noqa: E402,F401

# isort: split

import tensorflow as tf  # noqa: E402

from adaptau_tf.data import load_lightgcn  # noqa: E402
from adaptau_tf.evaluation import RankingEvaluator  # noqa: E402
from adaptau_tf.models import build_model  # noqa: E402
from benchmarks.reporting import SHARED_DATA, markdown_table, write_results  # noqa: E402


class EpochTimer(tf.keras.callbacks.Callback):
    """Wall time of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--eval-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    tf.keras.utils.set_random_seed(0)
    data = load_lightgcn(args.data)
    model = build_model("mf", data, strategy="fixed", temperature=0.15,
                        negatives="sampled:1024", seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    timer = EpochTimer()
    model.fit(data.train_dataset(2048, seed=0), epochs=args.epochs, verbose=2,
              callbacks=[timer])
    timed = timer.seconds[1:] or timer.seconds
    seconds_per_epoch = statistics.median(timed)

    evaluator = RankingEvaluator(data.train_csr, data.test_csr)
    users, items = model.compute_representations()
    eval_times = []
    for _ in range(args.eval_repeats + 1):
        start = time.perf_counter()
        metrics = evaluator.evaluate(users, items)
        eval_times.append(time.perf_counter() - start)
    eval_seconds = statistics.median(eval_times[1:])
    payload = {
        "dataset": "ml-1m",
        "seconds_per_epoch": seconds_per_epoch,
        "epoch_seconds_all": timer.seconds,
        "interactions_per_second": len(data.train) / seconds_per_epoch,
        "eval_seconds": eval_seconds,
        "eval_seconds_first_call": eval_times[0],
        "eval_users": evaluator.num_users,
        "eval_users_per_second": evaluator.num_users / eval_seconds,
        "train_interactions": len(data.train),
        "batch_size": 2048,
        "sampled_negatives": 1024,
        "test_recall@20_after_timed_epochs": metrics["recall@20"],
    }
    table = markdown_table(
        ["figure", "value", "target"],
        [["seconds per epoch (ML-1M, MF, B=2048, M=1024)", seconds_per_epoch, "<= 15"],
         ["training interactions per second", round(payload["interactions_per_second"]), ""],
         ["full ML-1M test evaluation (s)", eval_seconds, "<= 2"],
         ["  first call, with tracing (s)", eval_times[0], ""],
         ["evaluation users per second", round(payload["eval_users_per_second"]), ""]],
    )
    write_results("train_speed", payload, "# Training and evaluation speed\n\n" + table)
    return payload


if __name__ == "__main__":
    main()
