"""``adaptau-train``: train and evaluate a normalised retrieval model.

Example:
    adaptau-train --data lightgcn:path/to/ml-1m --backbone mf \\
        --strategy adap-tau --epochs 100 --output runs/ml1m-adaptau

The run directory holds ``config.json`` (the arguments and data sizes),
``history.csv`` (per-epoch losses, temperatures and validation metrics),
``weights/`` (the best weights, TF checkpoint format), ``tau_u.npy`` (the final
per-user τ_u ``[num_users]`` float64), ``metrics.json`` (the final test
evaluation, written last), with ``--track-groups`` ``groups.csv`` (per epoch
and item popularity group: mean raw embedding norm and validation
Recall/NDCG@20, see ``PopularityGroupTracker``), ``backup/``
(``tf.keras.callbacks.BackupAndRestore``), ``evaluation_state/`` and
``elapsed.json`` (the training time so far; ``metrics.json``'s ``train_seconds``
sums every process's): rerunning
the same command after an interruption resumes from the last finished epoch,
and rerunning it with a larger ``--epochs`` extends a finished run
(``adaptau_tf.trainers.resume``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks import ESTIMATORS, AdaptiveTemperature, CSVHistory, EpochProgress
from adaptau_tf.callbacks.serializable_callback import SerializableCallback
from adaptau_tf.evaluation import RankingEvaluation
from adaptau_tf.models import BACKBONES, SCORES, RetrievalModel
from adaptau_tf.tasks import LOSS_FORMS
from adaptau_tf.temperature import STRATEGY_KEYS
from adaptau_tf.trainers import arguments
from adaptau_tf.trainers.analysis import analysis_callbacks
from adaptau_tf.trainers.distribute import (
    DISTRIBUTE_CHOICES,
    SyncStopTraining,
    make_strategy,
    num_workers,
    state_directory,
    write_directory,
)
from adaptau_tf.trainers.presets import PRESETS, PresetArgumentParser, preset_help
from adaptau_tf.trainers.resume import check_resume, extend_finished_run, resumed_epoch
from adaptau_tf.trainers.run_files import Stopwatch, write_json
from adaptau_tf.trainers.runs import (
    data_fingerprint,
    evaluators,
    load_run,
    make_model,
    prepare_data,
    warm_start,
)

PROTOCOLS: tuple[str, ...] = ("honest", "paper")
JIT_CHOICES: tuple[str, ...] = ("auto", "on", "off")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``adaptau-train``."""
    p = PresetArgumentParser(prog="adaptau-train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help=preset_help())
    p.add_argument("--data", default="synthetic",
                   help="synthetic[:k=v,...] | lightgcn:PATH | tfds:movielens/1m-ratings")
    p.add_argument("--backbone", choices=BACKBONES, default="mf")
    p.add_argument("--strategy", choices=STRATEGY_KEYS, default="adap-tau")
    p.add_argument("--tau", type=arguments.positive_float, default=None,
                   help="fixed τ (fixed) or initial τ (learned/adaptive strategies)")
    p.add_argument("--loss-form", choices=LOSS_FORMS, default="paper")
    p.add_argument("--negatives", type=arguments.negatives, default="sampled:1024",
                   help="sampled:M (one draw shared by the batch) | sampled:MxG "
                        "(G draws of M, row b uses draw b mod G) | in-batch")
    p.add_argument("--remove-accidental-hits", action="store_true",
                   help="mask negatives that are the row's own positive item (in-batch: "
                        "the batch's other rows with the same item)")
    p.add_argument("--sampling-correction", action="store_true",
                   help="logQ correction of in-batch negatives: each negative's logit "
                        "loses the log of its share of the training pairs")
    p.add_argument("--score", choices=SCORES, default="cosine",
                   help="ranking rule at evaluation and export: cosine (normalised vectors, "
                        "as the loss sees them) | dot (the backbone's raw vectors; how the "
                        "reference code ranks LightGCN). Training is the same under both")
    p.add_argument("--compare-scores", action="store_true",
                   help="evaluate every scoring rule at each evaluation (history.csv gets "
                        "val_cosine_* and val_dot_* columns); --score still drives selection")
    p.add_argument("--epochs", type=arguments.positive_int, default=50)
    p.add_argument("--batch-size", type=arguments.positive_int, default=2048)
    p.add_argument("--lr", type=arguments.positive_float, default=1e-3)
    p.add_argument("--l2", type=arguments.non_negative_float, default=0.0)
    p.add_argument("--dropout", type=arguments.rate, default=0.0,
                   help="message dropout on users")
    p.add_argument("--embedding-dim", type=arguments.positive_int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol", choices=PROTOCOLS, default="honest",
                   help="honest: validation split from train, early stopping on it, test "
                        "once. paper: the reference code's protocol, epochs chosen on test")
    p.add_argument("--valid-fraction", type=arguments.open_fraction, default=0.1,
                   help="share of each user's training rows held out for validation "
                        "(honest protocol)")
    p.add_argument("--eval-every", type=arguments.positive_int, default=1)
    p.add_argument("--patience", type=arguments.non_negative_int, default=10,
                   help="evaluations without improvement before stopping (0: never)")
    p.add_argument("--monitor", type=arguments.metric, default="ndcg@20",
                   help="the metric early stopping and the best epoch follow, e.g. ndcg@20")
    p.add_argument("--estimator", choices=ESTIMATORS, default="mean")
    p.add_argument("--warmup-epochs", type=arguments.non_negative_int, default=1,
                   help="epochs that use the prior τ0 (0.7 / log(|A| m / 2|D_A|))")
    p.add_argument("--tau0-min-gap", type=arguments.non_negative_float, default=0.1,
                   help="after the warm-up, the data-driven τ0 is taken only once μ+ − μ "
                        "reaches this (until then the prior is kept); 0: the reference rule")
    p.add_argument("--two-beta", type=arguments.positive_float, default=1.0)
    p.add_argument("--margin", type=arguments.margin, default="mean",
                   help="m_u: 'mean' or a quantile in [0, 1]")
    p.add_argument("--distribute", choices=DISTRIBUTE_CHOICES, default="none",
                   help="tf.distribute strategy: none | mirrored (local GPUs or logical CPUs) "
                        "| multi-worker (MultiWorkerMirroredStrategy, cluster from TF_CONFIG; "
                        "--batch-size is the global batch). See docs/DISTRIBUTED.md")
    p.add_argument("--tensorboard", default=None,
                   help="TensorBoard log directory: Keras' summaries plus AnalysisTensorBoard's "
                        "(τ0, μ+, μ, τ_u histogram, magnitude and val Recall@20 per item "
                        "popularity group) under DIR/adaptau")
    p.add_argument("--track-groups", action="store_true",
                   help="write groups.csv: per epoch and item popularity group (10 groups of "
                        "equal training interactions), mean raw embedding norm and validation "
                        "Recall/NDCG@20")
    p.add_argument("--init-from", default=None,
                   help="warm start: the user and item embeddings of a finished run's best "
                        "weights (same data and split); τ state and optimizer start fresh")
    p.add_argument("--jit-compile", choices=JIT_CHOICES, default="auto",
                   help="XLA-compile the train step: auto (on when a step's negatives "
                        "cover the catalogue, G*M >= items, without --distribute) | on | off")
    p.add_argument("--output", required=True, help="run directory")
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of an error instead of its one-line message")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                   help="1: a progress bar and one line per epoch (loss, τ0, median τ_u, the "
                        "monitored metric, time); 2: the line only; 0: silent. Every metric "
                        "is in history.csv")
    return p


def _margin(text: str) -> str | float:
    """``--margin`` (checked by :func:`arguments.margin`) as the callback takes it."""
    return text if text == "mean" else float(text)


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run's ``config.json`` (before the data's sizes are added): the parsed
    flags with the data directory, output and ``--init-from`` made absolute.

    Resuming compares it with the recorded one, and the benchmarks rebuild a
    Table 3 row's expected config with it.
    """
    config = dict(vars(args))
    kind, _, rest = args.data.partition(":")
    if kind == "lightgcn" and rest:
        config["data"] = f"lightgcn:{Path(rest).resolve()}"
    config["output"] = str(Path(args.output).resolve())
    if args.init_from:
        config["init_from"] = str(Path(args.init_from).resolve())
    return config


def _save_weights(model: RetrievalModel, output: Path) -> None:
    """Saves weights into ``weights/`` atomically (temp dir, then rename)."""
    tmp = Path(tempfile.mkdtemp(dir=output, prefix=".weights."))
    tmp.chmod(0o755)
    model.save_weights(str(tmp / "model"))
    target = output / "weights"
    old = output / ".weights.old"
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def train(
    args: argparse.Namespace, extra_callbacks: Sequence[tf.keras.callbacks.Callback] = ()
) -> dict[str, Any]:
    """Runs one training job end to end; returns the content of ``metrics.json``.

    With ``--distribute multi-worker`` every worker runs this with the same
    arguments; only the chief writes into ``--output`` (the others write the
    same files into a temporary directory, deleted at the end).
    """
    strategy = make_strategy(args.distribute)  # first: multi-worker sets up collectives
    config = run_config(args)
    margin = _margin(args.margin)
    output = Path(config["output"])
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    try:
        return _checked_train(args, config, margin, strategy, output, extra_callbacks)
    except BaseException:
        # A start that failed before training wrote anything leaves no directory
        # behind that would refuse the corrected command.
        if created and not (output / "history.csv").exists():
            shutil.rmtree(output, ignore_errors=True)
        raise


def _checked_train(
    args: argparse.Namespace,
    config: dict[str, Any],
    margin: str | float,
    strategy: tf.distribute.Strategy,
    output: Path,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback],
) -> dict[str, Any]:
    """:func:`train` once the run directory exists: resumes, extends or starts it."""
    if (output / "metrics.json").exists():
        kept = extend_finished_run(output, config)  # checks the arguments too
        if kept is not None:
            print(f"{output} is already finished; its metrics.json is kept", file=sys.stderr)
            return kept
    else:
        check_resume(output, config)
    with write_directory(output, strategy) as write_dir:
        return _train(args, config, margin, strategy, output, write_dir, extra_callbacks)


def _train(
    args: argparse.Namespace,
    config: dict[str, Any],
    margin: str | float,
    strategy: tf.distribute.Strategy,
    output: Path,
    write_dir: Path,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback],
) -> dict[str, Any]:
    """:func:`train` once the run directory is checked; files go to ``write_dir``."""
    tf.keras.utils.set_random_seed(args.seed)
    data = prepare_data(config)
    config.update(num_users=data.num_users, num_items=data.num_items,
                  num_train=len(data.train), num_valid=len(data.valid), num_test=len(data.test),
                  num_replicas=strategy.num_replicas_in_sync, num_workers=num_workers(strategy))
    print(data.summary())

    with strategy.scope():
        model = make_model(config, data)
        if config["init_from"]:  # before BackupAndRestore, which wins when resuming
            warm_start(model, load_run(config["init_from"], data).model)
    monitor_eval, test_eval = evaluators(data, args.protocol)
    prefix = "val_" if args.protocol == "honest" else "test_"
    callbacks: list[tf.keras.callbacks.Callback] = []
    if model.task.strategy.adaptive:
        callbacks.append(AdaptiveTemperature.from_data(
            data, estimator=args.estimator, warmup_epochs=args.warmup_epochs,
            two_beta=args.two_beta, margin=margin, min_gap=args.tau0_min_gap,
        ))
    # Evaluation is replicated: every worker evaluates its (mirrored) copy of the
    # model, so early stopping agrees everywhere; only the chief's files are kept.
    evaluation_state = state_directory(output, write_dir, strategy, "evaluation_state")
    evaluation = RankingEvaluation(
        monitor_eval, every_n_epochs=args.eval_every, monitor=args.monitor,
        patience=args.patience or None, prefix=prefix, verbose=0,
        backup_dir=str(evaluation_state), delete_backup=False,
        scores=SCORES if args.compare_scores else (),
    )  # refuses a --monitor whose cut-off the catalogue cannot serve
    # Written once the data, the model, the evaluators and the callbacks are built: a
    # start that fails before this point leaves no config.json refusing the corrected
    # command.
    write_json(write_dir / "config.json", config)
    write_json(write_dir / "data.json", {"sha256": data_fingerprint(data)})
    callbacks.append(evaluation)
    callbacks.extend(analysis_callbacks(args, data, monitor_eval, write_dir))
    callbacks.extend(extra_callbacks)
    callbacks.append(NonFiniteGuard(args.strategy))
    callbacks.append(SyncStopTraining())
    # CSVHistory, not CSVLogger: with --eval-every > 1 the first epoch has no metrics
    # and CSVLogger, whose columns are those of the first epoch, would drop them all.
    callbacks.append(CSVHistory(write_dir / "history.csv", append=True,
                                replace_repeated_epochs=True))
    stopwatch = Stopwatch(write_dir / "elapsed.json")  # train time across resumptions
    callbacks.append(stopwatch)
    if args.tensorboard:
        callbacks.append(tf.keras.callbacks.TensorBoard(args.tensorboard))
    callbacks.append(EpochProgress(f"{prefix}{args.monitor}", verbose=args.verbose))
    # Last, so that an epoch is checkpointed as done only once its evaluation, evaluation
    # state and history row are written: a process killed in between repeats the epoch
    # (its row replaced) instead of skipping its evaluation. No callback above reads the
    # model at on_train_begin, where this one restores it.
    # Shared by every worker: the chief writes backup/chief, which all restore from.
    # Kept after the end (as evaluation_state/): a larger --epochs extends the run.
    callbacks.append(
        tf.keras.callbacks.BackupAndRestore(str(output / "backup"), delete_checkpoint=False))

    history = model.fit(
        data.train_dataset(args.batch_size, seed=args.seed,
                           first_epoch=resumed_epoch(output / "backup")),
        epochs=args.epochs, callbacks=callbacks, verbose=0,
    )
    train_seconds = stopwatch.seconds
    _save_weights(model, write_dir)

    users, items = model.compute_representations(training=False)
    test_metrics = test_eval.evaluate(users, items)
    by_score = {}
    if args.compare_scores:  # the best epoch's test under every rule (selection used --score)
        by_score = {rule: test_eval.evaluate(*model.compute_representations(score=rule))
                    if rule != args.score else test_metrics for rule in SCORES}
    tau_global, tau_users = model.task.temperatures()
    tau_users = np.asarray(tau_users, np.float64)
    _save_array(write_dir / "tau_u.npy", tau_users)
    epochs_run = _epochs_run(write_dir / "history.csv", len(history.epoch))
    if epochs_run > config["epochs"]:
        # An unfinished run relaunched with --epochs at or below the epochs it had
        # trained: it trains no more and finishes now. Its budget becomes the epochs
        # run, so that a larger --epochs can extend it later.
        print(f"{output}: --epochs {config['epochs']} is below the {epochs_run} epochs "
              f"already trained; the run finishes at {epochs_run}", file=sys.stderr)
        config["epochs"] = epochs_run
        write_json(write_dir / "config.json", config)
    result = {
        "protocol": args.protocol,
        "selected_on": "validation" if args.protocol == "honest" else "test",
        "strategy": args.strategy,
        "backbone": args.backbone,
        "score": args.score,
        "data": config["data"],
        "epochs": epochs_run,
        "best_epoch": None if evaluation.best_epoch is None else int(evaluation.best_epoch) + 1,
        f"best_{prefix}{args.monitor}": (evaluation.best_value
                                          if np.isfinite(evaluation.best_value) else None),
        "train_seconds": train_seconds,
        "tau0": float(tau_global),
        "tau_u_quantiles": dict(zip(("min", "p10", "p50", "p90", "max"),
                                    np.quantile(tau_users, [0, .1, .5, .9, 1]).tolist())),
        "test": test_metrics,
    }
    if by_score:
        result["test_by_score"] = by_score
    result.update({f"test_{k}": v for k, v in test_metrics.items()})
    write_json(write_dir / "metrics.json", result)
    print(format_metrics_table(test_metrics, title=f"test metrics ({args.protocol} protocol)"))
    return result


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class NonFiniteGuard(SerializableCallback):
    """Stops a run whose loss or τ turned NaN or infinite, with an error naming them.

    Checked at every epoch end over ``loss`` and every ``tau*`` log and the
    task's τ variables; raises ``FloatingPointError`` (``adaptau-train`` prints
    it as one line and exits with status 2) before any result file is written.

    Args:
        strategy: the strategy's key, quoted in the error.
        **kwargs: passed to ``tf.keras.callbacks.Callback``.
    """

    def __init__(self, strategy: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.strategy = strategy

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        values = {key: float(value) for key, value in (logs or {}).items()
                  if key == "loss" or key.startswith("tau")}
        task = getattr(self.model, "task", None)
        if task is not None and hasattr(task, "temperatures"):
            tau0, tau_u = task.temperatures()
            values["τ0"] = float(np.asarray(tau0))
            values["τ_u (min)"] = float(np.min(np.asarray(tau_u)))
        bad = {key: value for key, value in values.items() if not np.isfinite(value)}
        if bad:
            self.model.stop_training = True
            raise FloatingPointError(
                f"epoch {epoch + 1}: non-finite {', '.join(f'{k}={v}' for k, v in bad.items())} "
                f"with --strategy {self.strategy}; lower --lr or change the strategy")

    def get_config(self) -> dict[str, Any]:
        return {"strategy": self.strategy}


def _save_array(path: Path, array: np.ndarray) -> None:
    """Saves a ``.npy`` file atomically."""
    tmp = path.with_name(f".{path.stem}.tmp.npy")
    np.save(tmp, array)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _epochs_run(history_csv: Path, fallback: int) -> int:
    """Epochs recorded in ``history.csv`` (covers runs resumed across processes)."""
    if not history_csv.exists():
        return fallback
    lines = [line for line in history_csv.read_text().splitlines()[1:] if line.strip()]
    return len({line.split(",")[0] for line in lines}) or fallback


def format_metrics_table(metrics: dict[str, float], title: str = "metrics") -> str:
    """A markdown table: one row per metric, one column per K."""
    names = sorted({key.split("@")[0] for key in metrics if "@" in key})
    ks = sorted({int(key.split("@")[1]) for key in metrics if "@" in key})
    lines = [f"\n{title}", "| metric | " + " | ".join(f"@{k}" for k in ks) + " |",
             "|---|" + "---:|" * len(ks)]
    for name in names:
        cells = [f"{metrics[f'{name}@{k}']:.4f}" if f"{name}@{k}" in metrics else ""
                 for k in ks]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Errors in what the user gave (arguments, data files, run directories): one line
#: and exit status 2, the traceback only with --debug.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FloatingPointError,
               MemoryError)


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: 0 on success, 2 on a user error (one line on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"adaptau-train: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as error:  # refusals of resume.py: a message, not a traceback
        if isinstance(error.code, str):
            print(f"adaptau-train: error: {error.code}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
