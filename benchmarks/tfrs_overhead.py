"""The cost of AdaptiveRetrieval against stock ``tfrs.tasks.Retrieval``, per step.

The same MF towers (ML-1M, embedding tables of d = 64 with L2-normalised
outputs, batch 2048, Adam 1e-3) trained by three tasks:

* ``tfrs``: ``tfrs.tasks.Retrieval()`` (its default: no temperature);
* ``fixed``: ``AdaptiveRetrieval(temperature=0.1)``;
* ``adap-tau``: ``AdaptiveRetrieval(strategy="adap-tau")`` with its
  ``AdaptiveTemperature`` callback (the refresh at every epoch's start is
  part of the time);

each with in-batch negatives and with 1024 sampled negatives passed the TFRS
way, as extra candidates after the batch's positives with their
``candidate_ids``. One process, one run: every round trains one epoch of every
configuration in turn, so all see the same machine load; the figure is the
median over ``--rounds`` rounds of an epoch's seconds per step (the fastest
round is kept too: on a shared machine whole rounds slow down together, and
noise only ever adds time). Writes
``results/tfrs_overhead.{json,md}``.

Usage:
    .venv/bin/python benchmarks/tfrs_overhead.py [--rounds 8] [--data PATH]
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
import tensorflow_recommenders as tfrs  # noqa: E402

from adaptau_tf.callbacks import AdaptiveTemperature  # noqa: E402
from adaptau_tf.data import load_lightgcn  # noqa: E402
from adaptau_tf.layers import L2Normalization  # noqa: E402
from adaptau_tf.tasks import AdaptiveRetrieval  # noqa: E402
from benchmarks.reporting import SHARED_DATA, markdown_table, write_results  # noqa: E402

TASKS = ("tfrs", "fixed", "adap-tau")
NEGATIVES = ("in-batch", "sampled:1024")


class Towers(tfrs.Model):
    """MF towers: an embedding table per side, L2-normalised; the task is swappable."""

    def __init__(self, num_users: int, num_items: int, task: tf.keras.layers.Layer,
                 sampled: int | None, adaptive: bool) -> None:
        super().__init__()
        init = tf.keras.initializers.GlorotUniform(seed=0)
        self.users = tf.keras.layers.Embedding(num_users, 64, embeddings_initializer=init)
        self.items = tf.keras.layers.Embedding(num_items, 64, embeddings_initializer=init)
        self.users.build((None,))
        self.items.build((None,))
        self.norm = L2Normalization()
        self.task = task
        self.num_items = num_items
        self.sampled = sampled
        self.adaptive = adaptive

    def compute_loss(self, inputs: Any, training: bool = False) -> tf.Tensor:
        user_ids, item_ids = inputs
        query = self.norm(self.users(user_ids))
        candidates, ids = self.norm(self.items(item_ids)), item_ids
        if self.sampled:
            step = tf.cast(self.optimizer.iterations, tf.int64)
            negatives = tf.random.stateless_uniform([self.sampled], seed=tf.stack([0, step]),
                                                    maxval=self.num_items, dtype=tf.int64)
            candidates = tf.concat([candidates, self.norm(self.items(negatives))], 0)
            ids = tf.concat([item_ids, negatives], 0)
        if self.adaptive:
            return self.task(query, candidates, user_ids=user_ids, candidate_ids=ids,
                             compute_metrics=False, training=training)
        return self.task(query, candidates, candidate_ids=ids, compute_metrics=False)

    def compute_representations(self, training: bool = False) -> tuple[tf.Tensor, tf.Tensor]:
        return self.norm(self.users.embeddings), self.norm(self.items.embeddings)


def build(task: str, negatives: str, data: Any) -> tuple[Towers, list]:
    sampled = None if negatives == "in-batch" else int(negatives.split(":")[1])
    if task == "tfrs":
        layer = tfrs.tasks.Retrieval()
    elif task == "fixed":
        layer = AdaptiveRetrieval(num_users=data.num_users, temperature=0.1)
    else:
        layer = AdaptiveRetrieval(num_users=data.num_users, strategy="adap-tau")
    model = Towers(data.num_users, data.num_items, layer, sampled, adaptive=task != "tfrs")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    callbacks = [AdaptiveTemperature.from_data(data)] if task == "adap-tau" else []
    return model, callbacks


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "ml-1m"))
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    tf.keras.utils.set_random_seed(0)
    data = load_lightgcn(args.data)
    dataset = data.train_dataset(2048, seed=0)
    steps = int(dataset.cardinality())
    configs = {(t, n): build(t, n, data) for n in NEGATIVES for t in TASKS}
    for model, callbacks in configs.values():  # trace every step function first
        model.fit(dataset.take(2), epochs=1, verbose=0, callbacks=callbacks)
    times: dict[tuple[str, str], list[float]] = {key: [] for key in configs}
    for _ in range(args.rounds):
        for key, (model, callbacks) in configs.items():
            start = time.perf_counter()
            model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks)
            times[key].append(1000 * (time.perf_counter() - start) / steps)
    rows = [{"task": t, "negatives": n, "ms_per_step": statistics.median(times[(t, n)]),
             "ms_per_step_min": min(times[(t, n)]), "ms_per_step_rounds": times[(t, n)]}
            for (t, n) in configs]
    by = {(r["task"], r["negatives"]): r for r in rows}
    for row in rows:
        base = by[("tfrs", row["negatives"])]
        row["over_tfrs"] = row["ms_per_step"] / base["ms_per_step"]
        row["over_tfrs_min"] = row["ms_per_step_min"] / base["ms_per_step_min"]
    ratios = [by[("adap-tau", n)]["over_tfrs"] for n in NEGATIVES]
    ratios_min = [by[("adap-tau", n)]["over_tfrs_min"] for n in NEGATIVES]
    payload = {"dataset": "ml-1m", "batch_size": 2048, "steps_per_epoch": steps,
               "rounds": args.rounds, "rows": rows, "adap_tau_over_tfrs": max(ratios),
               "adap_tau_over_tfrs_by_negatives": dict(zip(NEGATIVES, ratios)),
               "adap_tau_over_tfrs_min": max(ratios_min)}
    table = markdown_table(
        ["negatives", "task", "ms / step (median)", "× tfrs", "ms / step (fastest round)",
         "× tfrs (fastest)"],
        [[r["negatives"], r["task"], r["ms_per_step"], r["over_tfrs"], r["ms_per_step_min"],
          r["over_tfrs_min"]] for r in rows])
    write_results("tfrs_overhead", payload,
                  "# AdaptiveRetrieval against tfrs.tasks.Retrieval (ML-1M MF towers)\n\n"
                  f"{table}\n\nAdap-τ (callback included) over TFRS: "
                  f"{max(ratios):.3f}× at worst on medians, {max(ratios_min):.3f}× on the "
                  "fastest rounds (target <= 1.10). The fastest round is the one least "
                  "disturbed by the machine (noise only adds time); both are kept.")
    return payload


if __name__ == "__main__":
    main()
