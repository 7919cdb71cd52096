"""Train-step time of LightGCN on a real graph: the batch's rows against full propagation.

One ``model.fit`` step of LightGCN (3 rounds, d 64, batch 2048, Adap-τ, Adam)
on the training graph of a LightGCN-format dataset (default: Gowalla from
``../shared/data``), for each negatives layout and each propagation path:

* ``full``: propagate the whole ``[n+m, d]`` table (3 sparse products forward
  and 3 backward) and gather the batch's rows (the only path before
  ``LightGCN.propagate_rows``);
* ``rows``: ``LightGCN.propagate_rows``: the last round only for the batch's
  rows (2 full products forward and 2 backward), what the model does unless
  its sampled draws cover the catalogue.

The in-batch layout is the reference recipe's (``--remove-accidental-hits
--sampling-correction``, as in ``benchmarks/table3.toml``'s LightGCN probes);
``sampled:1024`` is one shared draw of 1024. Batches are drawn from the
training pairs. Prints and writes ``results/lightgcn_step_time.{json,md}``
with the median of ``--steps`` timed steps after ``--warmup`` untimed ones,
and the training minutes per epoch that gives (evaluation not included).

Usage:
    .venv/bin/python benchmarks/lightgcn_step_time.py [--data PATH] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adaptau_tf  # noqa: E402,F401

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adaptau_tf.data import load_data  # noqa: E402
from adaptau_tf.models import LightGCN, build_model  # noqa: E402
from adaptau_tf.models.retrieval_model import RetrievalModel  # noqa: E402
from benchmarks.reporting import SHARED_DATA, markdown_table, write_results  # noqa: E402
from benchmarks.step_time import StepTimer  # noqa: E402

BATCH = 2048
PATHS = ("full", "rows")
LAYOUTS = ("in-batch", "sampled:1024")


def time_step(data: Any, negatives: str, path: str, steps: int,
              warmup: int) -> dict[str, Any]:
    """Median milliseconds of one LightGCN train step for a layout and a path."""
    in_batch = negatives == "in-batch"
    model = build_model("lightgcn", data, strategy="adap-tau", loss_form="reference",
                        negatives=negatives, l2=1e-5, seed=0,
                        remove_accidental_hits=in_batch, sampling_correction=in_batch)
    if path == "full":  # the base class's rows: propagate everything, then gather
        model.propagate_rows = RetrievalModel.propagate_rows.__get__(model)
    elif not isinstance(model, LightGCN) or model.dense_item_gradient:
        raise ValueError(f"{negatives}: the model would not take its rows path")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(data.train), (warmup + steps) * BATCH)
    pairs = (data.train[picks, 0], data.train[picks, 1])
    timer = StepTimer()
    model.fit(tf.data.Dataset.from_tensor_slices(pairs).batch(BATCH), epochs=1, verbose=0,
              callbacks=[timer])
    ms = 1000 * statistics.median(timer.seconds[warmup:])
    steps_per_epoch = -(-len(data.train) // BATCH)
    return {"negatives": negatives, "path": path, "ms_per_step": ms,
            "train_minutes_per_epoch": ms * steps_per_epoch / 60000,
            "first_step_seconds": timer.seconds[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "gowalla"),
                        help="LightGCN-format directory (train.txt, test.txt)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    data = load_data(f"lightgcn:{args.data}")
    tf.keras.utils.set_random_seed(0)
    runs = []
    for negatives in LAYOUTS:
        for path in PATHS:
            run = time_step(data, negatives, path, args.steps, args.warmup)
            print(run, flush=True)
            runs.append(run)
    speedups = {n: next(r["ms_per_step"] for r in runs if r["negatives"] == n
                        and r["path"] == "full")
                / next(r["ms_per_step"] for r in runs if r["negatives"] == n
                       and r["path"] == "rows") for n in LAYOUTS}
    payload = {"data": Path(args.data).name, "users": data.num_users,
               "items": data.num_items, "train_rows": len(data.train),
               "batch_size": BATCH, "steps": args.steps, "warmup_steps": args.warmup,
               "runs": runs, "speedup": speedups}
    table = markdown_table(
        ["negatives", "path", "ms / step", "train min / epoch", "full / rows"],
        [[r["negatives"], r["path"], round(r["ms_per_step"]), r["train_minutes_per_epoch"],
          round(speedups[r["negatives"]], 2) if r["path"] == "rows" else ""] for r in runs])
    write_results("lightgcn_step_time", payload,
                  f"# LightGCN train-step time on {payload['data']} "
                  f"({data.num_users:,} users, {data.num_items:,} items)\n\n" + table
                  + f"\n\nMedian of the timed steps. The epoch column: {len(data.train):,} "
                  "training rows at that median, training only (no evaluation).\n")
    return payload


if __name__ == "__main__":
    main()
