"""Training and evaluation speed on ML-1M (issue: foundation).

MF, batch 2048, 1024 shared sampled negatives, fixed τ, on the full ML-1M
training split, on the model's own item path (``item_path="auto"``: the table
path here) and, for comparison, on the gathered path the model took before.
Prints and writes ``results/train_speed.{json,md}`` with
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
from typing import Any

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


def _train(data: Any, item_path: str, epochs: int) -> tuple[Any, EpochTimer, float]:
    """``(model, epoch timer, test Recall@20)`` of ``epochs`` epochs on an item path."""
    tf.keras.utils.set_random_seed(0)
    model = build_model("mf", data, strategy="fixed", temperature=0.15,
                        negatives="sampled:1024", seed=0)
    model.item_path = item_path
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    timer = EpochTimer()
    model.fit(data.train_dataset(2048, seed=0), epochs=epochs, verbose=2, callbacks=[timer])
    evaluator = RankingEvaluator(data.train_csr, data.test_csr)
    return model, timer, evaluator.evaluate(*model.compute_representations())["recall@20"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--eval-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    data = load_lightgcn(args.data)
    _, gathered, gathered_recall = _train(data, "gathered", args.epochs)
    model, timer, _ = _train(data, "auto", args.epochs)
    seconds_per_epoch = statistics.median(timer.seconds[1:] or timer.seconds)

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
        "item_path": "table" if model.dense_item_gradient else "gathered",
        "gathered_path_seconds_per_epoch": statistics.median(gathered.seconds[1:]
                                                             or gathered.seconds),
        "gathered_path_test_recall@20": gathered_recall,
    }
    table = markdown_table(
        ["figure", "value", "target"],
        [["seconds per epoch (ML-1M, MF, B=2048, M=1024)", seconds_per_epoch, "<= 5"],
         ["  on the gathered path, for comparison", payload["gathered_path_seconds_per_epoch"],
          ""],
         ["test Recall@20 after the timed epochs (gathered path)",
          f"{metrics['recall@20']:.6f} ({gathered_recall:.6f})", "same within seed noise"],
         ["training interactions per second", round(payload["interactions_per_second"]), ""],
         ["full ML-1M test evaluation (s)", eval_seconds, "<= 2"],
         ["  first call, with tracing (s)", eval_times[0], ""],
         ["evaluation users per second", round(payload["eval_users_per_second"]), ""]],
    )
    write_results("train_speed", payload, "# Training and evaluation speed\n\n" + table)
    return payload


if __name__ == "__main__":
    main()
