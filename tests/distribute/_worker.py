"""Test helper: runs ``adaptau-train`` in this process and dumps τ and the accumulators.

Usage (one process of a distributed test):
    python tests/distribute/_worker.py --dump state.npz [--logical-cpus 2] -- TRAINER ARGS

``--logical-cpus N`` splits the CPU into N logical devices before TensorFlow
initialises them (what ``--distribute mirrored`` then mirrors over).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import adaptau_tf  # noqa: E402,F401

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def _copies(variable: tf.Variable) -> list[np.ndarray]:
    """Every local replica's copy of a mirrored variable (the variable itself otherwise)."""
    values = getattr(variable, "values", None)
    return [np.asarray(v.numpy()) for v in values] if values else [variable.numpy()]


class DumpState(tf.keras.callbacks.Callback):
    """Saves, at every epoch end, the task's τ and accumulators into an ``.npz``.

    Keys per epoch ``e``: ``e{e}_inverse_temperature``,
    ``e{e}_user_inverse_temperature``, ``e{e}_user_loss_sum``,
    ``e{e}_user_loss_count`` (reads: summed over replicas for the accumulators),
    ``e{e}_tau_copies_equal`` (every local replica's τ copy identical) and
    ``e{e}_loss`` (the logged loss). Runs in every worker (the reads are
    collectives) and must come after ``AdaptiveTemperature`` in the list.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.state: dict[str, Any] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        task = self.model.task
        prefix = f"e{epoch}_"
        for name in ("inverse_temperature", "user_inverse_temperature",
                     "user_loss_sum", "user_loss_count"):
            self.state[prefix + name] = np.asarray(getattr(task, name).numpy())
        equal = all(
            all(np.array_equal(copy, copies[0]) for copy in copies)
            for copies in (_copies(task.inverse_temperature),
                           _copies(task.user_inverse_temperature))
        )
        self.state[prefix + "tau_copies_equal"] = np.asarray(equal)
        self.state[prefix + "num_copies"] = np.asarray(len(_copies(task.inverse_temperature)))
        self.state[prefix + "loss"] = np.asarray(float((logs or {})["loss"]))
        np.savez(self.path, **self.state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump", required=True)
    parser.add_argument("--logical-cpus", type=int, default=1)
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    if options.logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * options.logical_cpus
        )
    from adaptau_tf.trainers import train as trainer

    rest = options.trainer_args
    args = trainer.build_parser().parse_args(rest[1:] if rest[:1] == ["--"] else rest)
    trainer.train(args, extra_callbacks=[DumpState(options.dump)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
