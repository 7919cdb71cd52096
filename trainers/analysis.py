"""The trainer's analysis callbacks (``--track-groups``, ``--tensorboard``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import tensorflow as tf

from adaptau_tf.callbacks import AnalysisTensorBoard, PopularityGroupTracker
from adaptau_tf.data import InteractionData
from adaptau_tf.evaluation import RankingEvaluator


def analysis_callbacks(
    args: argparse.Namespace, data: InteractionData, monitor_eval: RankingEvaluator,
    write_dir: Path,
) -> list[tf.keras.callbacks.Callback]:
    """``--track-groups`` / ``--tensorboard``: the popularity-group tracker and its board.

    Placed after ``AdaptiveTemperature`` (whose τ0, μ+, μ they read from the
    epoch's logs) and evaluated on the monitored split every ``--eval-every``
    epochs.
    """
    if not (getattr(args, "track_groups", False) or args.tensorboard):
        return []
    tracker = PopularityGroupTracker.from_data(
        data, evaluator=RankingEvaluator(monitor_eval.exclude_csr, monitor_eval.target_csr,
                                         ks=(20,)),
        every_n_epochs=args.eval_every,
        csv_path=write_dir / "groups.csv" if getattr(args, "track_groups", False) else None,
    )
    callbacks: list[tf.keras.callbacks.Callback] = [tracker]
    if args.tensorboard:
        callbacks.append(AnalysisTensorBoard(Path(args.tensorboard) / "adaptau", tracker=tracker))
    return callbacks
