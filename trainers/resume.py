"""Run directories of ``adaptau-train``: resuming and extending them.

Rerunning an interrupted command resumes from the last finished epoch
(``tf.keras.callbacks.BackupAndRestore`` in ``backup/``, the early-stopping
state in ``evaluation_state/``). A finished run keeps both, so the same
command with a larger ``--epochs`` *extends* it: training continues from the
last epoch's weights, optimizer and τ state, the best-epoch and patience
bookkeeping carries over, and the test is evaluated again at the new end. The
previous ``metrics.json`` is kept as ``metrics.epochs<N>.json``.

Every other argument must match the run's ``config.json``: a run is one
experiment, and only its epoch budget may grow.

Example:
    adaptau-train --data lightgcn:path/to/ml-1m --strategy adap-tau \\
        --epochs 20 --output runs/ml1m      # 20 epochs, test metrics
    adaptau-train --data lightgcn:path/to/ml-1m --strategy adap-tau \\
        --epochs 60 --output runs/ml1m      # continues at epoch 21
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Arguments that may differ between a run and its resumption. ``epochs`` is the
# budget (an interrupted run may resume with another one, a finished one may be
# extended: ``extend_finished_run``); track_groups too: runs started before the
# flag existed have no such key.
# jit_compile changes how a step runs (XLA or not), not what it computes; debug only how
# an error is shown.
RESUMABLE_DIFFERENCES = frozenset(
    {"verbose", "output", "tensorboard", "track_groups", "epochs", "jit_compile", "debug"}
)
# Arguments added after runs were written, with the value those runs had: a
# config.json without the key equals one with this value.
ADDED_LATER: dict[str, Any] = {"remove_accidental_hits": False, "sampling_correction": False,
                               "score": "cosine", "compare_scores": False,
                               "tau0_min_gap": 0.0}


def recorded(config: dict[str, Any], key: str) -> Any:
    """``config[key]`` of a saved ``config.json``, or :data:`ADDED_LATER`'s value for
    a key added after the run was written (``None`` for any other missing key)."""
    return config.get(key, ADDED_LATER.get(key))


def config_differences(output: Path, config: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for each argument in which ``output/config.json``
    differs from ``config``, except :data:`RESUMABLE_DIFFERENCES` (empty when
    the directory holds no run yet)."""
    existing = output / "config.json"
    if not existing.exists():
        return []
    old = json.loads(existing.read_text())
    changed = sorted(  # only the arguments: data sizes were added after parsing
        key for key in config
        if key not in RESUMABLE_DIFFERENCES
        and recorded(old, key) != config.get(key)
    )
    return [f"{k}: {recorded(old, k)!r} -> {config.get(k)!r}" for k in changed]


def check_resume(output: Path, config: dict[str, Any]) -> None:
    """Refuses to resume a run directory written with other arguments.

    Raises:
        SystemExit: ``output/config.json`` differs from ``config`` in an
            argument other than :data:`RESUMABLE_DIFFERENCES`; the message
            lists each one with its old and new value.
    """
    changed = config_differences(output, config)
    if changed:
        existing = output / "config.json"
        details = ", ".join(changed)
        raise SystemExit(
            f"{existing} belongs to a run with other arguments ({details}); "
            "use another --output or delete the directory"
        )


def resumed_epoch(backup_dir: Path) -> int:
    """The epoch a run resumes at: 1 + the last epoch ``BackupAndRestore`` saved in
    ``backup_dir`` (the chief's checkpoint), 0 when there is none.

    The training data's order is advanced to it (``train_dataset(first_epoch=)``)
    so that a resumed run sees the batches the uninterrupted run saw.
    """
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(backup_dir / "chief"))
    if latest is None:
        return 0
    saved = tf.train.load_checkpoint(latest).get_tensor(
        "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")
    return max(int(saved) + 1, 0)


def budget_and_ran(output: Path) -> tuple[int, int]:
    """``(epoch budget in config.json, epochs run in metrics.json)`` of a finished run."""
    budget = json.loads((output / "config.json").read_text())["epochs"]
    return budget, json.loads((output / "metrics.json").read_text())["epochs"]


def extendable(output: Path, epochs: int) -> bool:
    """Whether the finished run in ``output`` ran its whole budget and ``epochs``
    asks for more (``reproduction/reproduce.py`` shows it as ``[extend]``)."""
    budget, ran = budget_and_ran(output)
    return ran == budget < epochs


def extend_finished_run(output: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """Decides what to do with a finished run (one with ``metrics.json``).

    Returns its metrics when ``config["epochs"]`` is the run's own budget (the
    run is kept as it is). With a larger budget the run is prepared for
    extension: ``metrics.json`` is renamed ``metrics.epochs<N>.json`` and
    ``None`` is returned, so that training resumes from the kept state.

    Raises:
        SystemExit: other arguments differ (see :func:`check_resume`), the
            budget is smaller than the epochs already run, the run stopped
            early (more epochs would not train), or it was finished without
            its training state (``backup/``), which runs before this feature
            deleted.
    """
    check_resume(output, config)
    metrics_path = output / "metrics.json"
    old_budget, ran = budget_and_ran(output)
    wanted = config["epochs"]
    if wanted == old_budget:
        return json.loads(metrics_path.read_text())
    if not extendable(output, wanted):
        if wanted <= ran:
            raise SystemExit(
                f"{output} already ran {ran} epochs; --epochs {wanted} cannot shorten a "
                f"finished run (its budget was {old_budget})")
        best = json.loads(metrics_path.read_text()).get("best_epoch")
        raise SystemExit(
            f"{output} stopped early after {ran} of {old_budget} epochs (best epoch "
            f"{best}, patience exhausted); --epochs {wanted} would not train it further")
    if not any((output / "backup").glob("**/checkpoint")):
        raise SystemExit(
            f"{output} finished without keeping its training state ({output / 'backup'} "
            f"is missing or empty), so it cannot be extended to --epochs {wanted}; "
            "use another --output")
    os.replace(metrics_path, output / f"metrics.epochs{ran}.json")
    print(f"{output}: extending from {ran} to {wanted} epochs")
    return None
