"""``tf.distribute`` plumbing of ``adaptau-train``: strategies, chief, scratch dirs.

``--distribute`` picks the strategy (see ``docs/DISTRIBUTED.md``):

* ``none``: TensorFlow's default strategy (one device);
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over every local GPU, or
  every logical CPU device when there is no GPU;
* ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster
  and this process's task come from ``TF_CONFIG``. Every worker runs the same
  command with the same ``--output`` (a directory every worker can read: the
  chief's ``BackupAndRestore`` checkpoints are read back by all of them).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback

DISTRIBUTE_CHOICES: tuple[str, ...] = ("none", "mirrored", "multi-worker")


def make_strategy(kind: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named by ``--distribute``.

    Must run before any other TensorFlow op of the process when ``kind`` is
    ``"multi-worker"`` (the collective runtime is set up on creation).

    Raises:
        ValueError: for an unknown ``kind``, or ``multi-worker`` without a
            ``TF_CONFIG`` naming a cluster with workers and this task.
    """
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if kind == "multi-worker":
        raw = os.environ.get("TF_CONFIG", "")
        try:
            config = json.loads(raw) if raw else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"TF_CONFIG is not JSON ({error}): {raw!r}") from None
        cluster, task = config.get("cluster", {}), config.get("task", {})
        if not (cluster.get("worker") or cluster.get("chief")) or "type" not in task:
            raise ValueError(
                "--distribute multi-worker needs TF_CONFIG with a cluster "
                '({"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                f'"index": i}}}}), got TF_CONFIG={raw!r}'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"--distribute must be one of {DISTRIBUTE_CHOICES}, got {kind!r}")


def num_workers(strategy: tf.distribute.Strategy) -> int:
    """Worker processes taking part in ``strategy`` (1 unless multi-worker)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    local = len(strategy.extended.worker_devices)
    return max(1, strategy.num_replicas_in_sync // max(local, 1))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's outputs (always true on one worker)."""
    return bool(strategy.extended.should_checkpoint)


@contextlib.contextmanager
def write_directory(output: Path, strategy: tf.distribute.Strategy) -> Iterator[Path]:
    """Where this process writes its run files: ``output`` on the chief.

    Other workers of a multi-worker run still have to *make* every file (saving
    weights reads ``ON_READ`` variables, an all-reduce in which every worker
    takes part) but write them into a temporary directory, deleted on exit —
    the standard Keras multi-worker pattern.
    """
    if is_chief(strategy):
        yield output
        return
    scratch = Path(tempfile.mkdtemp(prefix="adaptau-worker-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def state_directory(output: Path, write_dir: Path, strategy: tf.distribute.Strategy,
                    name: str) -> Path:
    """A callback's resumable state directory for this process.

    The chief's is ``write_dir / name`` (inside the run directory); another
    worker's is ``output / f"{name}_worker{task}"``, beside it rather than in
    the temporary write directory, so that it survives an interruption and a
    resumed worker reloads *its own* state (e.g. ``RankingEvaluation``'s best
    value and patience, which must match the chief's for the workers to stop
    together). adaptau-train keeps them after training, to extend a finished run.
    """
    if is_chief(strategy):
        return write_dir / name
    return output / f"{name}_worker{strategy.cluster_resolver.task_id}"


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class SyncStopTraining(SerializableCallback):
    """Stops every worker when any worker's callbacks asked to stop (no arguments).

    Early stopping decides on each worker from the same (replicated)
    evaluation, so the workers agree; this OR-reduction of
    ``model.stop_training`` at every epoch end guarantees it (a worker that
    stopped alone would leave the others waiting in a collective). Place it
    after the callbacks that may stop training. A no-op on one worker.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        strategy = self.model.distribute_strategy
        if num_workers(strategy) == 1:
            return
        flag = 1.0 if self.model.stop_training else 0.0
        values = strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(flag)
        )
        stop = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)  # no MAX op
        self.model.stop_training = bool(stop.numpy() > 0)
