"""All-ranking evaluation: metrics, the evaluator and the Keras callback."""

from adaptau_tf.evaluation.callback import RankingEvaluation
from adaptau_tf.evaluation.evaluator import RankingEvaluator
from adaptau_tf.evaluation.metrics import per_user_metrics, ranking_metrics

__all__ = [
    "RankingEvaluation",
    "RankingEvaluator",
    "per_user_metrics",
    "ranking_metrics",
]
