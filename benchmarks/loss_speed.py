"""The softmax loss block alone, forward and backward: TF's kernels against the task's.

Two layouts at ML-1M's training shape (batch 2048, d = 64):

* ``whole row`` (TFRS's layout: in-batch positives plus 1024 extra candidates,
  a ``[2048, 3072]`` score matrix): ``tf.nn.softmax_cross_entropy_with_logits``
  with one-hot ``tf.eye`` labels on the scores (what ``tfrs.tasks.Retrieval``
  runs), the same on scores times a per-row inverse temperature (the
  task's previous form), and :func:`~adaptau_tf.tasks.scores.full_softmax_loss`
  (query-side scaling, hand-written log-sum-exp gradient), without and with
  the τ = 1 statistic of Adap-τ (:func:`~adaptau_tf.tasks.scores.full_unit_loss`);
* ``sampled`` (the package's models: ``[2048]`` positives, ``[2048, 1024]``
  negatives with a keep-mask): ``tf.reduce_logsumexp`` over the concatenated
  row (the previous form) against
  :func:`~adaptau_tf.tasks.scores.row_logsumexp` with the positive as its
  extra column.

Every variant runs ``--calls`` calls per round, the variants in turn, for
``--rounds`` rounds; the figure is the median of a round's milliseconds per
call, and each variant's ratio to the first of its layout is the median of the
per-round ratios (rounds see the same machine load). Writes
``results/loss_speed.{json,md}``.

Usage:
    .venv/bin/python benchmarks/loss_speed.py [--rounds 20] [--calls 10]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adaptau_tf.tasks.scores import (  # noqa: E402
    MASK_LOGIT,
    full_softmax_loss,
    full_unit_loss,
    row_logsumexp,
)
from benchmarks.reporting import markdown_table, write_results  # noqa: E402

BATCH, EXTRA, DIM, SAMPLED = 2048, 1024, 64, 1024


def _unit(x: np.ndarray) -> tf.Tensor:
    return tf.constant((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))


def whole_row_variants(rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    query = _unit(rng.normal(size=(BATCH, DIM)))
    candidates = _unit(rng.normal(size=(BATCH + EXTRA, DIM)))
    scale = tf.constant(rng.uniform(2, 12, BATCH).astype(np.float32))
    labels_shape = (BATCH, BATCH + EXTRA)

    def tf_kernel(scaled: bool, q: tf.Tensor, c: tf.Tensor, a: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([q, c])
            scores = tf.matmul(q, c, transpose_b=True)
            if scaled:
                scores = scores * a[:, None]
            loss = tf.reduce_sum(tf.nn.softmax_cross_entropy_with_logits(
                labels=tf.eye(*labels_shape), logits=scores))
        return loss, tape.gradient(loss, [q, c])

    def ours(statistic: bool, q: tf.Tensor, c: tf.Tensor, a: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([q, c])
            per_row, logits, positives = full_softmax_loss(q, c, a)
            loss = tf.reduce_sum(per_row)
        extra = tf.reduce_sum(full_unit_loss(logits, a, positives)) if statistic else 0.0
        return loss + extra, tape.gradient(loss, [q, c])

    functions = {
        "TF cross-entropy, eye labels (tfrs.tasks.Retrieval)": lambda q, c, a: tf_kernel(
            False, q, c, a),
        "TF cross-entropy on scores x 1/τ_u (previous)": lambda q, c, a: tf_kernel(
            True, q, c, a),
        "full_softmax_loss": lambda q, c, a: ours(False, q, c, a),
        "full_softmax_loss + τ = 1 statistic": lambda q, c, a: ours(True, q, c, a),
    }
    return {name: functools.partial(tf.function(fn), query, candidates, scale)
            for name, fn in functions.items()}


def sampled_variants(rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    positives = tf.constant(rng.uniform(-10, 10, BATCH).astype(np.float32))
    negatives = tf.constant(rng.uniform(-10, 10, (BATCH, SAMPLED)).astype(np.float32))
    keep = tf.constant(rng.uniform(size=(BATCH, SAMPLED)) > 0.001)

    def previous(pos: tf.Tensor, neg: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([pos, neg])
            masked = tf.where(keep, neg, MASK_LOGIT)
            rows = tf.reduce_logsumexp(tf.concat([pos[:, None], masked], 1), 1)
            loss = tf.reduce_sum(rows - pos)
        return loss, tape.gradient(loss, [pos, neg])

    def ours(pos: tf.Tensor, neg: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            tape.watch([pos, neg])
            loss = tf.reduce_sum(row_logsumexp(tf.where(keep, neg, MASK_LOGIT), pos) - pos)
        return loss, tape.gradient(loss, [pos, neg])

    functions = {"reduce_logsumexp over the concatenated row (previous)": previous,
                 "row_logsumexp with the positive as extra column": ours}
    return {name: functools.partial(tf.function(fn), positives, negatives)
            for name, fn in functions.items()}


def measure(variants: dict[str, Callable[[], Any]], rounds: int,
            calls: int) -> dict[str, list[float]]:
    for run in variants.values():  # trace
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            start = time.perf_counter()
            for _ in range(calls):
                out = run()
            float(out[0])
            times[name].append(1000 * (time.perf_counter() - start) / calls)
    return times


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    rows = []
    for layout, variants in (("whole row", whole_row_variants(rng)),
                             ("sampled", sampled_variants(rng))):
        times = measure(variants, args.rounds, args.calls)
        first = next(iter(times.values()))
        for name, values in times.items():
            rows.append({
                "layout": layout, "variant": name, "ms_median": statistics.median(values),
                "ms_min": min(values),
                "ratio_to_first": statistics.median(a / b for a, b in zip(values, first)),
            })
            print(rows[-1], flush=True)
    payload = {"batch": BATCH, "extra_candidates": EXTRA, "sampled": SAMPLED, "dim": DIM,
               "rounds": args.rounds, "calls": args.calls, "rows": rows}
    table = markdown_table(
        ["layout", "variant", "ms (median)", "ms (fastest round)", "× first (paired median)"],
        [[r["layout"], r["variant"], r["ms_median"], r["ms_min"], r["ratio_to_first"]]
         for r in rows])
    write_results("loss_speed", payload,
                  f"# Softmax loss block, forward and backward (batch {BATCH}, d = {DIM})\n\n"
                  f"Whole row: [{BATCH}, {BATCH + EXTRA}] scores from the vectors; sampled: "
                  f"[{BATCH}] positives and [{BATCH}, {SAMPLED}] negative logits.\n\n{table}")
    return payload


if __name__ == "__main__":
    main()
