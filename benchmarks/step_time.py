"""Train-step time of MF at ML-1M's and Gowalla's sizes: negatives layouts, paths, XLA.

One ``model.fit`` step of the reference recipe's MF (batch 2048, d 64, message
dropout 0.1, l2 1e-9, Adap-τ, reference loss form) on ML-1M's and Gowalla's
user and item counts, for each negatives layout (``sampled:1024``: one draw
shared by the batch; ``sampled:1024x32``: 32 draws, ours;
``sampled:1024x2048``: one draw per row, the reference code's, Gowalla only),
each item path (``item_path``) and with and without XLA
(``compile(jit_compile=...)``):

* ``gathered``: gather the ``G·M`` drawn rows, normalise them and square them
  for the L2 term (the only path before commit 84ae6d1);
* ``table``: normalise the ``[m, d]`` table once and weight the L2 term by
  draw counts (``RetrievalModel.dense_item_gradient``, what the model does
  when ``G·M >= m``).

Every path is timed for every layout; ``item_path="auto"`` picks one (marked
in the table) and ``adaptau-train --jit-compile auto`` turns XLA on exactly for
the table path: the rule is right where the marked row with XLA as auto sets it
is the fastest of its layout.

Random (user, item) batches of the real sizes: the time of a step does not
depend on which ids it holds. Prints and writes ``results/step_time.{json,md}``
with the median of ``--steps`` timed steps after ``--warmup`` untimed ones
(tracing and XLA compilation).

Usage:
    .venv/bin/python benchmarks/step_time.py [--steps 10] [--warmup 3]
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

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adaptau_tf.models import MatrixFactorization  # noqa: E402
from adaptau_tf.models.factory import parse_negatives  # noqa: E402
from adaptau_tf.tasks import AdaptiveRetrieval  # noqa: E402
from benchmarks.reporting import markdown_table, write_results  # noqa: E402

BATCH = 2048
#: (users, items, training rows) of the two data sets.
SIZES = {"ml-1m": (6022, 3043, 796244), "gowalla": (29858, 40981, 810128)}
PATHS = ("gathered", "table")


class StepTimer(tf.keras.callbacks.Callback):
    """Wall time of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def time_step(dataset: str, negatives: str, path: str, jit: bool, steps: int,
              warmup: int) -> dict[str, Any]:
    """Median milliseconds of one train step for a size, a layout, a path and XLA on/off."""
    num_users, num_items, train_rows = SIZES[dataset]
    num_negatives, groups = parse_negatives(negatives)

    def build(item_path: str) -> MatrixFactorization:
        task = AdaptiveRetrieval(num_users, strategy="adap-tau", loss_form="reference")
        return MatrixFactorization(num_users, num_items, task=task,
                                   num_negatives=num_negatives, negative_groups=groups,
                                   l2=1e-9, message_dropout=0.1, seed=0, item_path=item_path)

    model = build(path)
    default = build("auto").dense_item_gradient == (path == "table")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-4), jit_compile=jit)
    rng = np.random.default_rng(0)
    rows = (warmup + steps) * BATCH
    pairs = (rng.integers(0, num_users, rows), rng.integers(0, num_items, rows))
    timer = StepTimer()
    model.fit(tf.data.Dataset.from_tensor_slices(pairs).batch(BATCH), epochs=1, verbose=0,
              callbacks=[timer])
    ms = 1000 * statistics.median(timer.seconds[warmup:])
    steps_per_epoch = -(-train_rows // BATCH)
    return {"dataset": dataset, "negatives": negatives, "path": path, "jit": jit,
            "default_path": default, "auto_xla": default and path == "table",
            "ms_per_step": ms, "train_seconds_per_epoch": ms * steps_per_epoch / 1000,
            "first_step_seconds": timer.seconds[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    runs = []
    layouts = {"ml-1m": ("sampled:1024", "sampled:1024x32"),
               "gowalla": ("sampled:1024", "sampled:1024x32", f"sampled:1024x{BATCH}")}
    for dataset, negatives_list in layouts.items():
        for negatives in negatives_list:
            for path in PATHS:
                for jit in (False, True):
                    run = time_step(dataset, negatives, path, jit, args.steps, args.warmup)
                    print(run, flush=True)
                    runs.append(run)
    verdicts = []
    for dataset, negatives_list in layouts.items():
        for negatives in negatives_list:
            mine = [r for r in runs if (r["dataset"], r["negatives"]) == (dataset, negatives)]
            chosen = next(r for r in mine if r["default_path"] and r["jit"] == r["auto_xla"])
            fastest = min(mine, key=lambda r: r["ms_per_step"])
            verdicts.append({"dataset": dataset, "negatives": negatives,
                             "auto_ms": chosen["ms_per_step"],
                             "fastest_ms": fastest["ms_per_step"],
                             "fastest": f"{fastest['path']}, XLA "
                                        f"{'on' if fastest['jit'] else 'off'}",
                             "auto_is_fastest": chosen is fastest})
    payload = {"sizes": SIZES, "batch_size": BATCH, "steps": args.steps,
               "warmup_steps": args.warmup, "runs": runs, "auto": verdicts}
    table = markdown_table(
        ["data", "negatives", "item path", "auto's path", "XLA", "ms / step",
         "train s / epoch"],
        [[r["dataset"], r["negatives"], r["path"], "yes" if r["default_path"] else "",
          "on" if r["jit"] else "off", round(r["ms_per_step"]),
          round(r["train_seconds_per_epoch"], 1)] for r in runs])
    auto = markdown_table(
        ["data", "negatives", "auto (path + XLA) ms", "fastest", "fastest ms", "auto fastest"],
        [[v["dataset"], v["negatives"], round(v["auto_ms"]), v["fastest"],
          round(v["fastest_ms"]), "yes" if v["auto_is_fastest"] else "**no**"]
         for v in verdicts])
    write_results("step_time", payload,
                  "# MF train-step time at ML-1M's and Gowalla's sizes\n\n" + table
                  + "\n\nMedian of the timed steps; the epoch column is the training rows "
                  "of the data set at that median, training only (no evaluation).\n\n"
                  "What item_path='auto' and --jit-compile auto choose, against the fastest "
                  "measured:\n\n" + auto + "\n")
    return payload


if __name__ == "__main__":
    main()
