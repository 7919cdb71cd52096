"""Train-step time of MF at Gowalla's size: sampled-negative layouts, paths, XLA.

One ``model.fit`` step of the reference recipe's MF (batch 2048, d 64, message
dropout 0.1, l2 1e-9, Adap-τ, reference loss form) on Gowalla's user and item
counts, for each negatives layout (``sampled:1024x32``: 32 draws, ours;
``sampled:1024x2048``: one draw per row, the reference code's), each item path
and with and without XLA (``compile(jit_compile=...)``):

* ``gathered``: gather the ``G·M`` drawn rows, normalise them and square them
  for the L2 term (the only path before commit 84ae6d1);
* ``table``: normalise the ``[m, d]`` table once and weight the L2 term by
  draw counts (``RetrievalModel.dense_item_gradient``, what the model does
  when ``G·M >= m``).

Both paths are timed for both layouts (the model itself picks one, marked in
the table); ``adaptau-train --jit-compile auto`` turns XLA on exactly for the
table path.

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

GOWALLA_USERS, GOWALLA_ITEMS, BATCH = 29858, 40981, 2048
TRAIN_ROWS = 810128
PATHS = ("gathered", "table")


class GatheredMF(MatrixFactorization):
    """MF forced onto the gathered path (normalise and square the G·M drawn rows)."""

    @property
    def dense_item_gradient(self) -> bool:
        return False


class TableMF(MatrixFactorization):
    """MF forced onto the table path (normalise the table once, count draws)."""

    @property
    def dense_item_gradient(self) -> bool:
        return True


class StepTimer(tf.keras.callbacks.Callback):
    """Wall time of every training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def time_step(negatives: str, path: str, jit: bool, steps: int, warmup: int) -> dict[str, Any]:
    """Median milliseconds of one train step for a layout, a path and XLA on/off."""
    num_negatives, groups = parse_negatives(negatives)
    model_class = GatheredMF if path == "gathered" else TableMF
    task = AdaptiveRetrieval(GOWALLA_USERS, strategy="adap-tau", loss_form="reference")
    model = model_class(GOWALLA_USERS, GOWALLA_ITEMS, task=task, num_negatives=num_negatives,
                        negative_groups=groups, l2=1e-9, message_dropout=0.1, seed=0)
    default = MatrixFactorization.dense_item_gradient.fget(model) == (path == "table")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-4), jit_compile=jit)
    rng = np.random.default_rng(0)
    rows = (warmup + steps) * BATCH
    pairs = (rng.integers(0, GOWALLA_USERS, rows), rng.integers(0, GOWALLA_ITEMS, rows))
    timer = StepTimer()
    model.fit(tf.data.Dataset.from_tensor_slices(pairs).batch(BATCH), epochs=1, verbose=0,
              callbacks=[timer])
    ms = 1000 * statistics.median(timer.seconds[warmup:])
    steps_per_epoch = -(-TRAIN_ROWS // BATCH)
    return {"negatives": negatives, "path": path, "jit": jit, "default_path": default,
            "ms_per_step": ms,
            "gowalla_train_minutes_per_epoch": ms * steps_per_epoch / 60000,
            "first_step_seconds": timer.seconds[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    runs = []
    # 32 draws (ours), one draw per row (the reference code's).
    for negatives in ("sampled:1024x32", f"sampled:1024x{BATCH}"):
        for path in PATHS:
            for jit in (False, True):
                run = time_step(negatives, path, jit, args.steps, args.warmup)
                print(run, flush=True)
                runs.append(run)
    payload = {"users": GOWALLA_USERS, "items": GOWALLA_ITEMS, "batch_size": BATCH,
               "steps": args.steps, "warmup_steps": args.warmup, "runs": runs}
    table = markdown_table(
        ["negatives", "item path", "the model's path", "XLA", "ms / step",
         "train min / Gowalla epoch"],
        [[r["negatives"], r["path"], "yes" if r["default_path"] else "",
          "on" if r["jit"] else "off", round(r["ms_per_step"]),
          r["gowalla_train_minutes_per_epoch"]] for r in runs])
    write_results("step_time", payload,
                  "# MF train-step time at Gowalla's size\n\n" + table
                  + f"\n\nMedian of the timed steps. The epoch column: {TRAIN_ROWS:,} "
                  "training rows (Gowalla) at that median, training only (no evaluation).\n")
    return payload


if __name__ == "__main__":
    main()
