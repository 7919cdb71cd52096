"""Build a retrieval model from command-line style options."""

from __future__ import annotations

from typing import Any

from adaptau_tf.models.lightgcn import LightGCN
from adaptau_tf.models.matrix_factorization import MatrixFactorization
from adaptau_tf.models.retrieval_model import RetrievalModel
from adaptau_tf.tasks.adaptive_retrieval import AdaptiveRetrieval

BACKBONES: tuple[str, ...] = ("mf", "lightgcn")


def parse_negatives(spec: str) -> tuple[int | None, int]:
    """A negatives spec -> ``(num_negatives, negative_groups)``.

    ``"sampled:M"``: M uniform negatives shared by the batch; ``"sampled:MxG"``:
    G independent draws of M (row ``b`` uses draw ``b mod G``); ``"in-batch"``:
    the batch's other positives.

    Example:
        >>> parse_negatives("sampled:256"), parse_negatives("sampled:1024x32")
        ((256, 1), (1024, 32))
    """
    if spec == "in-batch":
        return None, 1
    prefix, _, counts = spec.partition(":")
    count, times, groups = counts.partition("x")
    groups = groups if times else "1"
    if (prefix == "sampled" and count.isdigit() and int(count) > 0
            and groups.isdigit() and int(groups) > 0):
        return int(count), int(groups)
    raise ValueError(
        f"negatives must be 'sampled:M', 'sampled:MxG' (M, G > 0) or 'in-batch', got {spec!r}"
    )


def build_model(
    backbone: str,
    data: Any,
    strategy: Any = "fixed",
    temperature: float | None = None,
    loss_form: str = "paper",
    negatives: str = "sampled:1024",
    embedding_dim: int = 64,
    l2: float = 0.0,
    message_dropout: float = 0.0,
    seed: int | None = None,
    track_user_loss: bool = False,
    remove_accidental_hits: bool = False,
    sampling_correction: bool = False,
    score: str = "cosine",
) -> RetrievalModel:
    """A ready-to-compile model for an :class:`~adaptau_tf.data.InteractionData`.

    Args:
        backbone: ``"mf"`` or ``"lightgcn"``.
        data: the interaction data (``num_users``, ``num_items``, ``train``).
        strategy: strategy key or object.
        temperature: fixed or initial τ.
        loss_form: ``"paper"`` or ``"reference"``.
        negatives: ``"sampled:M"``, ``"sampled:MxG"`` or ``"in-batch"`` (see
            :func:`parse_negatives`).
        embedding_dim: ``d``.
        l2: λ.
        message_dropout: dropout on the user vector.
        seed: initialiser seed.
        track_user_loss: accumulate per-user losses for any strategy.
        remove_accidental_hits: mask negatives that are the row's own positive
            item (in-batch: other rows with the same item; sampled: draws of it).
        sampling_correction: logQ correction of in-batch negatives, with each
            item's share of ``data.train`` as its sampling probability.
        score: the ranking rule, ``"cosine"`` or ``"dot"`` (see
            :class:`~adaptau_tf.models.retrieval_model.RetrievalModel`).

    Example:
        >>> model = build_model("mf", data, strategy="adap-tau")
    """
    task = AdaptiveRetrieval(
        num_users=data.num_users,
        strategy=strategy,
        temperature=temperature,
        loss_form=loss_form,
        track_user_loss=track_user_loss,
        remove_accidental_hits=remove_accidental_hits,
        name="retrieval",
    )
    num_negatives, negative_groups = parse_negatives(negatives)
    common = {
        "task": task,
        "embedding_dim": embedding_dim,
        "num_negatives": num_negatives,
        "negative_groups": negative_groups,
        "l2": l2,
        "message_dropout": message_dropout,
        "seed": seed,
        "sampling_correction": sampling_correction,
        "score": score,
    }
    if backbone == "mf":
        model: RetrievalModel = MatrixFactorization(data.num_users, data.num_items, **common)
    elif backbone == "lightgcn":
        model = LightGCN(data.num_users, data.num_items, train_pairs=data.train, **common)
    else:
        raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
    if sampling_correction:
        model.set_item_sampling_probability(data.train_item_counts)
    return model
