"""LightGCN training speed on Gowalla: the step's parts, before and after, and an epoch.

The ``paper-lightgcn-gowalla`` recipe (in-batch negatives, batch 2048, the
reference loss form, Adap-τ, l2 1e-5, Adam 1e-3) on the Gowalla training split
(70k nodes, 1.62M adjacency entries, d = 64). Each part of a train step is
timed alone (median of ``--repeats`` calls after a tracing call):

* ``propagation_forward``: 3 CSR products and the mean over the 4 layers;
* ``propagation_backward``: forward + backward minus forward (3 products);
* ``loss``: the in-batch softmax forward + backward on ``[2048, 64]`` vectors;
* ``adam``: one Adam update of the two tables;
* ``train_step``: one whole ``model.fit`` step.

"before" converts the graph to the CSR form inside every call (what the layer
did until the conversion was cached); "after" is the layer as it is. Then two
epochs of ``model.fit`` (with the Adap-τ callback, no evaluation); the second,
which no longer traces, gives ``seconds_per_epoch`` and ``ms_per_step``. Writes
``results/lightgcn_speed.{json,md}``.

Usage:
    .venv/bin/python benchmarks/lightgcn_speed.py [--data PATH] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adaptau_tf  # noqa: E402,F401

# isort: split

import tensorflow as tf  # noqa: E402

from adaptau_tf.callbacks import AdaptiveTemperature  # noqa: E402
from adaptau_tf.data import load_lightgcn  # noqa: E402
from adaptau_tf.models import build_model  # noqa: E402
from benchmarks.reporting import SHARED_DATA, markdown_table, write_results  # noqa: E402
from benchmarks.train_speed import EpochTimer  # noqa: E402

PARTS = ("propagation_forward", "propagation_backward", "loss", "adam", "train_step")


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` in ms over ``repeats`` calls after a first (tracing) one."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def part_times(model: tf.keras.Model, batch: tuple, repeats: int) -> dict[str, float]:
    """Median ms of each part of a train step (see the module docstring)."""
    propagation = model.propagation
    table = tf.concat([model.user_embedding.embeddings, model.item_embedding.embeddings], 0)
    rows = tf.range(4096)
    forward = tf.function(lambda t: propagation(t))

    @tf.function
    def forward_backward(t: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(t)
            loss = tf.reduce_sum(tf.gather(propagation(t), rows) ** 2)
        return tape.gradient(loss, t)

    users = tf.math.l2_normalize(tf.random.normal([2048, 64], seed=0), -1)
    items = tf.math.l2_normalize(tf.random.normal([2048, 64], seed=1), -1)

    @tf.function
    def loss_step() -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch([users, items])
            loss = model.task(users, items, user_ids=batch[0], training=False)
        return tape.gradient(loss, [users, items])

    @tf.function
    def adam() -> None:
        grads = [tf.ones_like(v) * 1e-3 for v in model.trainable_variables]
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))

    step = model.make_train_function()
    batches = iter(tf.data.Dataset.from_tensors(batch).repeat())
    fwd = median_ms(lambda: forward(table), repeats)
    return {
        "propagation_forward": fwd,
        "propagation_backward": median_ms(lambda: forward_backward(table), repeats) - fwd,
        "loss": median_ms(loss_step, repeats),
        "adam": median_ms(adam, repeats),
        "train_step": median_ms(lambda: step(batches), repeats),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "gowalla"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    tf.keras.utils.set_random_seed(0)
    data = load_lightgcn(args.data)
    model = build_model("lightgcn", data, strategy="adap-tau", loss_form="reference",
                        negatives="in-batch", l2=1e-5, seed=0, score="dot")
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    batch = next(iter(data.train_dataset(2048, seed=0)))

    cached = model.propagation._matrix
    model.propagation._matrix = None  # before: the CSR form converted in every call
    before = part_times(model, batch, args.repeats)
    model.propagation._matrix = cached
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))  # fresh train function
    after = part_times(model, batch, args.repeats)

    callback = AdaptiveTemperature.from_data(data, warmup_epochs=100, two_beta=0.6,
                                             min_gap=0.0)
    dataset = data.train_dataset(2048, seed=0)
    steps = int(dataset.cardinality())
    # The first epoch also traces the step twice (the last batch is smaller): time the second.
    timer = EpochTimer()
    model.fit(dataset, epochs=2, verbose=0, callbacks=[callback, timer])
    seconds = timer.seconds[-1]

    payload = {
        "dataset": "gowalla", "recipe": "paper-lightgcn-gowalla",
        "seconds_per_epoch": seconds, "ms_per_step": 1000 * seconds / steps, "steps": steps,
        "parts": after, "parts_before": before,
        "nodes": int(data.num_users + data.num_items),
        "adjacency_nnz": int(model.propagation.adjacency.nnz),
    }
    rows = [[name, before[name], after[name],
             f"{100 * before[name] / before['train_step']:.0f} %",
             f"{100 * after[name] / after['train_step']:.0f} %"] for name in PARTS]
    table = markdown_table(["part (ms, median)", "before", "after", "share before",
                            "share after"], rows)
    epoch = markdown_table(["figure", "value", "target"],
                           [["seconds per training epoch", seconds, "<= 45"],
                            ["ms per step", payload["ms_per_step"], ""],
                            ["steps", steps, ""]])
    write_results("lightgcn_speed",
                  payload, "# LightGCN training speed (Gowalla, paper-lightgcn-gowalla)\n\n"
                  f"{epoch}\n\nA train step by part (before: the graph converted to CSR in "
                  f"every call; after: converted once):\n\n{table}")
    return payload


if __name__ == "__main__":
    main()
