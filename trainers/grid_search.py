"""``adaptau-grid-search``: the paper's "Grid Search τ" baseline with keras-tuner.

One trial per fixed τ (default grid 0.02, 0.04, ..., 1.00: ALGORITHM.md §4),
each an ``adaptau-train --strategy fixed --tau τ`` run inside this process
(the data is read once for all trials), with its own epoch budget
(``--epochs``) and early stopping (``--patience``) on the objective.

keras-tuner 1.4 rejects tf_keras models in its ``Tuner`` class, so
:class:`TemperatureGridTuner` subclasses ``BaseTuner`` (STACK.md), drives a
``GridSearchOracle`` and builds, fits and evaluates the model in ``run_trial``.

Protocols (as ``adaptau-train``):

* ``honest``: the objective is validation NDCG@20 (or Recall@20) on a split
  carved from train; ``--test-best`` evaluates the best trial's weights on
  test once.
* ``paper``: the reference code's protocol: the "validation" metrics of every
  trial, and the choice of τ and of the epoch, are computed on the **test**
  set. For comparison with published numbers only.

Output directory:

* ``tuner/``: keras-tuner's project (``oracle.json``, ``trial_NN/`` with each
  trial's ``history.csv``, ``result.json`` and, for the best trial, its
  ``weights/``). Rerunning the same command resumes: finished trials are kept,
  an interrupted trial resumes from its last epoch (``BackupAndRestore``).
* ``trials.csv`` / ``trials.json``: τ, valid Recall@20, valid NDCG@20, epochs,
  best epoch and seconds per trial; the best τ and the total wall time.
* ``sensitivity.png``: Recall@20 relative to the best over τ (paper Fig. 2).

Example:
    adaptau-grid-search --preset paper-mf-ml1m --data lightgcn:path/to/ml-1m \\
        --epochs 100 --patience 5 --output runs/grid-ml1m-mf
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import keras_tuner as kt
import tensorflow as tf

from adaptau_tf.trainers import runs
from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.grid_tuner import ResumableGridSearchOracle, TemperatureGridTuner
from adaptau_tf.trainers.presets import PRESETS, PresetArgumentParser, preset_help
from adaptau_tf.trainers.resume import recorded
from adaptau_tf.trainers.run_files import write_json

#: Trainer options the grid search shares (same flags, defaults and presets).
SHARED_OPTIONS: tuple[str, ...] = (
    "data", "backbone", "loss_form", "negatives", "epochs", "batch_size", "lr", "l2",
    "dropout", "embedding_dim", "seed", "protocol", "valid_fraction", "eval_every", "patience",
    "remove_accidental_hits", "sampling_correction", "score",
)
OBJECTIVES: tuple[str, ...] = ("ndcg@20", "recall@20")
# Arguments that may change between a search and its resumption.
_RESUMABLE_DIFFERENCES = frozenset({"verbose", "output", "test_best", "keep_weights", "preset"})


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``adaptau-grid-search``."""
    p = PresetArgumentParser(prog="adaptau-grid-search", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help=preset_help())
    for action in trainer.build_parser()._actions:
        if action.dest not in SHARED_OPTIONS:
            continue
        if action.nargs == 0:  # a switch (store_true)
            p.add_argument(*action.option_strings, action="store_true", help=action.help)
        else:
            p.add_argument(*action.option_strings, type=action.type, default=action.default,
                           choices=action.choices, help=action.help)
    p.add_argument("--tau-min", type=float, default=0.02)
    p.add_argument("--tau-max", type=float, default=1.0)
    p.add_argument("--tau-step", type=float, default=0.02)
    p.add_argument("--taus", default=None,
                   help="explicit comma-separated τ values (replaces min/max/step)")
    p.add_argument("--objective", choices=OBJECTIVES, default="ndcg@20",
                   help="maximised metric (validation; test under --protocol paper)")
    p.add_argument("--test-best", action="store_true",
                   help="evaluate the best trial's weights on the test set once")
    p.add_argument("--keep-weights", choices=("best", "all"), default="best",
                   help="keep every trial's weights or only the best trial's")
    p.add_argument("--output", required=True, help="output directory")
    p.add_argument("--verbose", type=int, default=0, help="Keras fit verbosity")
    return p


def tau_grid(args: argparse.Namespace) -> list[float]:
    """The τ values: ``--taus`` or ``tau_min, tau_min + step, ..., tau_max``."""
    if args.taus:
        values = [float(v) for v in args.taus.split(",") if v.strip()]
    else:
        if not (args.tau_step > 0 and 0 < args.tau_min <= args.tau_max):
            raise ValueError(
                f"need 0 < tau_min <= tau_max and tau_step > 0, got min={args.tau_min}, "
                f"max={args.tau_max}, step={args.tau_step}")
        count = int(math.floor((args.tau_max - args.tau_min) / args.tau_step + 1e-9)) + 1
        values = [args.tau_min + i * args.tau_step for i in range(count)]
    values = sorted({round(v, 10) for v in values})
    if not values or min(values) <= 0 or not all(map(math.isfinite, values)):
        raise ValueError(f"τ values must be positive and finite, got {values}")
    return values


def search_settings(args: argparse.Namespace, grid: list[float]) -> dict[str, Any]:
    """What a search is (``grid_config.json``): the arguments that must not
    change when it resumes, the data path resolved, and the τ grid."""
    settings = {k: v for k, v in vars(args).items() if k not in _RESUMABLE_DIFFERENCES}
    kind, _, rest = args.data.partition(":")
    if kind == "lightgcn" and rest:
        settings["data"] = f"lightgcn:{Path(rest).resolve()}"
    settings["grid"] = grid
    return settings


def settings_differences(path: Path, settings: dict[str, Any]) -> list[str]:
    """``"key: old -> new"`` for each setting in which the search saved in
    ``path`` (``grid_config.json``) differs from ``settings`` (empty if none).
    A search saved before a flag existed had its old value
    (:func:`adaptau_tf.trainers.resume.recorded`)."""
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    changed = sorted(k for k in set(old) | set(settings)
                     if recorded(old, k) != settings.get(k))
    return [f"{k}: {recorded(old, k)!r} -> {settings.get(k)!r}" for k in changed]


def _check_resume(path: Path, settings: dict[str, Any]) -> None:
    changed = settings_differences(path, settings)
    if changed:
        details = ", ".join(changed)
        raise SystemExit(f"{path} belongs to a grid search with other arguments ({details}); "
                         "use another --output or delete the directory")


def trial_rows(tuner: TemperatureGridTuner) -> list[dict[str, Any]]:
    """One row per completed trial, sorted by τ."""
    rows = []
    for trial in tuner.oracle.trials.values():
        result_path = Path(tuner.get_trial_dir(trial.trial_id)) / "result.json"
        if trial.status != "COMPLETED" or not result_path.exists():
            continue
        result = json.loads(result_path.read_text())
        rows.append({"trial": trial.trial_id, **result})
    return sorted(rows, key=lambda row: row["tau"])


def plot_sensitivity(rows: list[dict[str, Any]], path: Path, title: str,
                     chosen_tau: float | None = None) -> None:
    """Recall@20 relative to the best over τ (the paper's Figure 2), as a PNG.

    ``chosen_tau`` (the search's pick by its objective) gets a dashed line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = [row["tau"] for row in rows]
    recall = [row["valid_recall@20"] for row in rows]
    best = max(recall) if recall and max(recall) > 0 else 1.0
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(taus, [r / best for r in recall], marker="o", markersize=3)
    ax.axhline(1.0, color="grey", linewidth=0.6, linestyle=":")
    if chosen_tau is not None:
        ax.axvline(chosen_tau, color="tab:red", linewidth=0.8, linestyle="--",
                   label=f"chosen τ={chosen_tau:g}")
        ax.legend(fontsize=8, loc="lower right")
    if rows:
        top = max(rows, key=lambda row: row["valid_recall@20"])
        ax.annotate(f"τ={top['tau']:g}", (top["tau"], 1.0), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    ax.set_xlabel("τ")
    ax.set_ylabel("Recall@20 / best Recall@20")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def write_outputs(tuner: TemperatureGridTuner, output: Path, settings: dict[str, Any],
                  test_best: bool) -> dict[str, Any]:
    """Writes ``trials.csv``, ``trials.json`` and ``sensitivity.png``; returns the JSON."""
    rows = trial_rows(tuner)
    objective = f"valid_{settings['objective']}"
    best_trials = tuner.oracle.get_best_trials(1)
    best_row = next((row for row in rows if best_trials
                     and row["trial"] == best_trials[0].trial_id), None)
    split = "valid" if tuner.prefix == "val_" else "test (paper protocol)"
    payload: dict[str, Any] = {
        "trials": rows,
        "best_tau": None if best_row is None else best_row["tau"],
        "best_trial": None if best_row is None else best_row["trial"],
        "objective": objective,
        "protocol": settings["protocol"],
        "monitored_split": "valid" if tuner.prefix == "val_" else "test",
        "total_seconds": sum(row["seconds"] for row in rows),
        "complete": {row["tau"] for row in rows} >= set(settings["grid"]),
        "settings": settings,
    }
    if test_best and best_row is not None:
        model = tuner.load_model(tuner.oracle.get_trial(best_row["trial"]))
        users, items = model.compute_representations(training=False)
        metrics = tuner.test_eval.evaluate(users, items)
        payload["best_test"] = {f"test_{k}": v for k, v in metrics.items()}
    write_json(output / "trials.json", payload)
    columns = ["tau", "valid_recall@20", "valid_ndcg@20", "epochs", "best_epoch", "seconds"]
    tmp = output / ".trials.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(output / "trials.csv")
    kind, _, rest = settings["data"].partition(":")
    data_name = Path(rest).name if kind == "lightgcn" else kind
    plot_sensitivity(rows, output / "sensitivity.png",
                     f"{data_name}, {settings['backbone']}: Recall@20 on {split}",
                     chosen_tau=payload["best_tau"])
    return payload


def grid_search(
    args: argparse.Namespace, extra_callbacks: Sequence[tf.keras.callbacks.Callback] = ()
) -> dict[str, Any]:
    """Runs (or resumes) the search; returns the content of ``trials.json``."""
    grid = tau_grid(args)
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    settings = search_settings(args, grid)
    _check_resume(output / "grid_config.json", settings)
    write_json(output / "grid_config.json", settings)
    config = {key: settings[key] for key in SHARED_OPTIONS}
    config["monitor"] = args.objective
    data = runs.prepare_data(config)
    print(data.summary())

    prefix = "val_" if args.protocol == "honest" and len(data.valid) else "test_"
    hp = kt.HyperParameters()
    hp.Choice("tau", grid, ordered=True)
    oracle = ResumableGridSearchOracle(
        objective=kt.Objective(f"{prefix}{args.objective}", "max"),
        max_trials=len(grid), hyperparameters=hp, allow_new_entries=False,
        tune_new_entries=False,
    )
    tuner = TemperatureGridTuner(oracle, config, data, keep_weights=args.keep_weights,
                                 verbose=args.verbose, callbacks=extra_callbacks,
                                 directory=str(output),
                                 project_name="tuner", overwrite=False)
    tuner.search()
    payload = write_outputs(tuner, output, settings, args.test_best)
    print(format_trials(payload))
    return payload


def format_trials(payload: dict[str, Any]) -> str:
    """A markdown table of the trials and the best τ."""
    lines = ["| τ | valid Recall@20 | valid NDCG@20 | epochs | best epoch | seconds |",
             "|---:|---:|---:|---:|---:|---:|"]
    for row in payload["trials"]:
        lines.append(f"| {row['tau']:g} | {row['valid_recall@20']:.4f} | "
                     f"{row['valid_ndcg@20']:.4f} | {row['epochs']} | {row['best_epoch']} | "
                     f"{row['seconds']:.0f} |")
    lines.append(f"\nbest τ = {payload['best_tau']} ({payload['objective']} on the "
                 f"{payload['monitored_split']} split, {payload['protocol']} protocol); "
                 f"total {payload['total_seconds']:.0f} s over {len(payload['trials'])} trials")
    if "best_test" in payload:
        test = payload["best_test"]
        lines.append(f"best τ on test: Recall@20 {test['test_recall@20']:.4f}, "
                     f"NDCG@20 {test['test_ndcg@20']:.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tau_grid(args)
    except ValueError as error:
        parser.error(str(error))
    grid_search(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
