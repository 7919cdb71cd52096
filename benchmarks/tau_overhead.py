"""Cost of the Adap-τ refresh (τ0 + τ_u) relative to an epoch of training.

MF, Adap-τ, batch 2048, 1024 shared sampled negatives, on ML-1M and Gowalla.
``refresh_seconds`` is the median wall time of ``AdaptiveTemperature.refresh``
(representations, score moments over the active users' training pairs,
Lambert-W per user, variable assignment) over the epochs after the first
(whose refresh also traces a tf.function; reported separately);
``epoch_seconds`` is the median training time of the same epochs, without the
refresh. Writes ``results/tau_overhead.{json,md}``.

Usage:
    .venv/bin/python benchmarks/tau_overhead.py [--epochs 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
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


def measure(dataset: str, epochs: int) -> dict:
    tf.keras.utils.set_random_seed(0)
    data = load_lightgcn(SHARED_DATA / dataset)
    model = build_model("mf", data, strategy="adap-tau", negatives="sampled:1024", seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    refresh = AdaptiveTemperature.from_data(data)
    timer = EpochTimer()  # after `refresh`: its epoch time excludes the refresh
    history = model.fit(data.train_dataset(2048, seed=0), epochs=epochs, verbose=2,
                        callbacks=[refresh, timer])
    refresh_times = history.history["tau_refresh_seconds"]
    refresh_seconds = statistics.median(refresh_times[1:])
    epoch_seconds = statistics.median(timer.seconds[1:])
    return {
        "refresh_seconds": refresh_seconds,
        "epoch_seconds": epoch_seconds,
        "refresh_fraction": refresh_seconds / epoch_seconds,
        "first_refresh_seconds": refresh_times[0],
        "refresh_seconds_all": refresh_times,
        "epoch_seconds_all": timer.seconds,
        "num_users": data.num_users,
        "num_items": data.num_items,
        "train_interactions": len(data.train),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "gowalla"])
    args = parser.parse_args(argv)
    results = {name: measure(name, args.epochs) for name in args.datasets}
    table = markdown_table(
        ["dataset", "refresh s", "epoch s", "refresh / epoch", "first refresh s (tracing)"],
        [[name, r["refresh_seconds"], r["epoch_seconds"], f"{100 * r['refresh_fraction']:.2f} %",
          r["first_refresh_seconds"]] for name, r in results.items()],
    )
    write_results("tau_overhead", results,
                  "# Adap-τ refresh overhead (target: <= 2 % of an epoch)\n\n" + table)
    return results


if __name__ == "__main__":
    main()
