"""Score and loss pieces of :class:`~adaptau_tf.tasks.AdaptiveRetrieval` (pure TF functions).

Everything here is stateless: the batch's positive and negative scores with
their keep-mask (in-batch or sampled negatives, accidental hits, score masks,
logQ correction), the per-row softmax loss of both loss forms (ALGORITHM.md
§1), and the global row count used by the mean reduction under
``tf.distribute``.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from adaptau_tf.tasks import negatives

# Logit given to masked negatives (accidental hits, the in-batch diagonal of the
# reference form). Finite so that a row whose negatives are all masked gives a
# finite loss instead of NaN.
MASK_LOGIT = -1e9


def global_batch_size(rows: tf.Tensor) -> tf.Tensor:
    """Rows of the global batch: the replica's ``rows`` summed over replicas.

    ``tf.nn.compute_average_loss`` assumes every replica holds
    ``global / num_replicas`` rows; when a global batch does not split evenly
    (the last batch of an epoch) that divisor is wrong on every replica and
    the summed loss drifts from the mean. Summing the actual row counts over
    replicas (one scalar all-reduce) makes the loss the exact mean over the
    global batch for any split.

    Args:
        rows: scalar int, the rows this replica holds.

    Returns:
        Scalar int64: the rows of the global batch (``rows`` itself outside
        ``tf.distribute`` or with one replica).

    Example:
        >>> int(global_batch_size(tf.constant(7)))
        7
    """
    rows = tf.cast(rows, tf.int64)
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return rows
    # float32 all-reduce (every collective implementation supports it); exact
    # for row counts below 2**24.
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(rows, tf.float32))
    return tf.cast(tf.round(total), tf.int64)


def ids_equal(row_ids: tf.Tensor, column_ids: tf.Tensor) -> tf.Tensor:
    """``row_ids[b] == column_ids[.., j]`` on the ids' own dtype (strings stay strings).

    Integer ids of different widths are compared as int64; anything else must
    have one dtype (TFRS compares its ``candidate_ids`` the same way, with
    ``tf.equal``).

    Args:
        row_ids: ``[B]`` ids of the rows' positives (int or string).
        column_ids: ``[1, N]`` or ``[B, N]`` ids of the negatives.

    Returns:
        ``[B, N]`` bool.

    Raises:
        ValueError: the two dtypes cannot be compared (quoted).

    Example:
        >>> ids_equal(tf.constant(["a", "b"]), tf.constant([["b", "c"]])).numpy().tolist()
        [[False, False], [True, False]]
    """
    row_ids = tf.reshape(tf.convert_to_tensor(row_ids), [-1, 1])
    column_ids = tf.convert_to_tensor(column_ids)
    if row_ids.dtype.is_integer and column_ids.dtype.is_integer:
        row_ids, column_ids = tf.cast(row_ids, tf.int64), tf.cast(column_ids, tf.int64)
    elif row_ids.dtype != column_ids.dtype:
        raise ValueError(
            "candidate ids and negative ids must have one dtype to find accidental hits, "
            f"got {row_ids.dtype.name} and {column_ids.dtype.name}"
        )
    return tf.equal(row_ids, column_ids)


def retrieval_scores(
    query: tf.Tensor,
    candidates: tf.Tensor,
    candidate_sampling_probability: tf.Tensor | None = None,
    candidate_ids: tf.Tensor | None = None,
    negative_embeddings: tf.Tensor | None = None,
    negative_ids: tf.Tensor | None = None,
    negative_sampling_probability: tf.Tensor | None = None,
    remove_accidental_hits: bool = False,
    score_mask: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Unscaled scores of a batch: positives, negatives, keep-mask, logQ.

    In-batch (``negative_embeddings is None``): row ``b``'s positive is
    ``candidates[b]`` and its negatives are every candidate but that one; as in
    TFRS, ``candidates`` may hold ``C >= B`` rows, the extra ``C - B`` being
    negatives of every row. Sampled: ``[M, d]`` negatives shared by every row
    or ``[G, M, d]`` (row ``b`` against draw ``b mod G``).

    Args:
        query: ``[B, d]`` query vectors.
        candidates: ``[C, d]`` candidate vectors, ``C >= B`` (``C = B`` with
            sampled negatives).
        candidate_sampling_probability: ``[C]`` in-batch sampling
            probabilities (logQ correction of the in-batch negatives).
        candidate_ids: ``[C]`` int or string ids of the candidates.
        negative_embeddings: ``[M, d]`` or ``[G, M, d]`` sampled negatives.
        negative_ids: ``[M]`` or ``[G, M]`` their ids.
        negative_sampling_probability: ``[M]`` or ``[G, M]``.
        remove_accidental_hits: mask negatives whose id equals the row's
            positive id.
        score_mask: ``[B, N]`` bool, ``False`` drops that negative (TFRS's
            argument; ``N = C`` in-batch, the positive's own column is
            ignored).

    Returns:
        ``(positive_scores [B], negative_scores [B, N], keep [B, N] bool,
        log_q)`` with ``log_q`` broadcastable to ``[B, N]``.

    Raises:
        ValueError: ``remove_accidental_hits`` without the ids it needs.

    Example:
        >>> q = tf.eye(2); pos, neg, keep, _ = retrieval_scores(q, q)
        >>> pos.numpy().tolist(), keep.numpy().tolist()
        ([1.0, 1.0], [[False, True], [True, False]])
    """
    batch = tf.shape(query)[0]
    positives = candidates[:batch]
    positive_scores = tf.reduce_sum(query * positives, axis=-1)
    grouped = False
    if negative_embeddings is None:
        negative_scores = tf.matmul(query, candidates, transpose_b=True)
        keep = tf.logical_not(tf.eye(batch, tf.shape(candidates)[0], dtype=tf.bool))
        ids, probability = candidate_ids, candidate_sampling_probability
    else:
        negative_embeddings = tf.convert_to_tensor(negative_embeddings)
        grouped = negative_embeddings.shape.rank == 3
        negative_scores = negatives.negative_scores(query, negative_embeddings)
        keep = tf.ones_like(negative_scores, dtype=tf.bool)
        ids, probability = negative_ids, negative_sampling_probability
    if remove_accidental_hits:
        if candidate_ids is None or ids is None:
            raise ValueError(
                "remove_accidental_hits=True needs candidate_ids (and negative_ids "
                "with sampled negatives)"
            )
        row_ids = tf.reshape(candidate_ids, [-1])[:batch]
        hits = ids_equal(row_ids, negatives.per_row(ids, batch, grouped))
        keep = tf.logical_and(keep, tf.logical_not(hits))
    if score_mask is not None:
        keep = tf.logical_and(keep, tf.cast(score_mask, tf.bool))
    log_q = tf.zeros([], negative_scores.dtype)
    if probability is not None:
        probability = negatives.per_row(probability, batch, grouped)
        log_q = tf.math.log(tf.cast(probability, negative_scores.dtype))
    return positive_scores, negative_scores, keep, log_q


def softmax_loss(
    positive_logits: tf.Tensor,
    negative_logits: tf.Tensor,
    keep: tf.Tensor,
    loss_form: str = "paper",
    num_hard_negatives: int | None = None,
) -> tf.Tensor:
    """Per-row loss from scaled positive ``[B]`` and negative ``[B, N]`` logits.

    ``"paper"``: ``−s+ + log(exp(s+) + Σ_j exp(s_j))`` (the positive once in its
    own denominator); ``"reference"``: ``−s+ + log Σ_j exp(s_j)``.

    Args:
        positive_logits: ``[B]``.
        negative_logits: ``[B, N]``.
        keep: ``[B, N]`` bool; masked negatives get :data:`MASK_LOGIT`.
        loss_form: ``"paper"`` or ``"reference"``.
        num_hard_negatives: keep only this many highest negatives per row.

    Returns:
        ``[B]`` losses.

    Example:
        >>> float(softmax_loss(tf.zeros([1]), tf.zeros([1, 1]), tf.ones([1, 1], tf.bool))[0])
        0.6931...
    """
    negative_logits = tf.where(keep, negative_logits, MASK_LOGIT)
    if num_hard_negatives is not None:
        k = tf.minimum(num_hard_negatives, tf.shape(negative_logits)[1])
        negative_logits = tf.math.top_k(negative_logits, k=k).values
    if loss_form == "reference":
        return row_logsumexp(negative_logits) - positive_logits
    # Paper form: the positive sits once in its own denominator (in-batch, the
    # diagonal is masked out of the negatives and added back here).
    return row_logsumexp(negative_logits, positive_logits) - positive_logits


def unit_softmax_loss(positive_logits: tf.Tensor, negative_logits: tf.Tensor,
                      keep: tf.Tensor, loss_form: str) -> tf.Tensor:
    """:func:`softmax_loss` for logits known to be small (cosines at τ = 1, minus a
    logQ term): ``log Σ exp`` without the max pass, and the positive joined by
    ``logaddexp`` instead of a ``[B, N + 1]`` copy. The per-user statistics of
    every training step use it; the training loss keeps :func:`softmax_loss`.

    Args:
        positive_logits: ``[B]``, in ``[-1, 1]``.
        negative_logits: ``[B, N]``, bounded well below 80 (``exp`` stays finite).
        keep: ``[B, N]`` bool; masked negatives contribute nothing.
        loss_form: ``"paper"`` or ``"reference"``.

    Returns:
        ``[B]`` losses.

    Example:
        >>> float(unit_softmax_loss(tf.zeros([1]), tf.zeros([1, 1]),
        ...                         tf.ones([1, 1], tf.bool), "paper")[0])
        0.6931...
    """
    total = tf.reduce_sum(tf.where(keep, tf.exp(negative_logits), 0.0), axis=1)
    if loss_form == "paper":
        total += tf.exp(positive_logits)
    return tf.math.log(total) - positive_logits


def row_logsumexp(logits: tf.Tensor, extra: tf.Tensor | None = None) -> tf.Tensor:
    """``[B]`` ``log Σ_j exp(logits[b, j])`` (plus ``exp(extra[b])``), a one-pass gradient.

    The value is ``tf.reduce_logsumexp``'s (shifted by the row's max); the
    gradient is written by hand as ``softmax(row) × upstream``, reusing the
    forward pass's exponentials: one multiply over ``[B, N]`` where autodiff
    of the composite runs several passes, and no dense one-hot labels as
    ``tf.nn.softmax_cross_entropy_with_logits`` needs. On CPU this softmax
    loss is faster than TF's fused cross-entropy kernel, which pays for the
    extra statistic of Adap-τ.

    Args:
        logits: ``[B, N]``.
        extra: optional ``[B]`` logits joined to each row (the positive of the
            paper form, without copying the row into ``[B, N + 1]``).

    Returns:
        ``[B]``.

    Example:
        >>> float(row_logsumexp(tf.zeros([1, 2]))[0])
        0.6931...
    """
    logits = tf.convert_to_tensor(logits)
    if extra is None:  # exp(-inf) = 0: the row alone, and a zero gradient for the column
        extra = tf.fill(tf.shape(logits)[:1], tf.constant(-float("inf"), logits.dtype))
    return _row_logsumexp(logits, tf.convert_to_tensor(extra, logits.dtype))


@tf.custom_gradient
def _row_logsumexp(
    logits: tf.Tensor, extra: tf.Tensor
) -> tuple[tf.Tensor, Callable[..., tuple[tf.Tensor, tf.Tensor]]]:
    shift = tf.stop_gradient(tf.maximum(tf.reduce_max(logits, axis=1), extra))
    exps = tf.exp(logits - shift[:, None])
    extra_exp = tf.exp(extra - shift)
    total = tf.reduce_sum(exps, axis=1) + extra_exp

    def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ratio = upstream / total
        return exps * ratio[:, None], extra_exp * ratio

    return tf.math.log(total) + shift, grad


def full_softmax_loss(
    query: tf.Tensor, candidates: tf.Tensor, scale: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Paper-form loss of plain in-batch rows: a softmax over the whole score row.

    Row ``b`` of the scores ``query @ candidates.T`` (``[B, C]``) holds its
    positive at column ``b`` and its negatives everywhere else, with nothing
    masked: the paper form's denominator (the positive once, every negative)
    is the whole row, so the loss is the softmax cross-entropy of the row with
    label ``b``, the loss of ``tfrs.tasks.Retrieval``. The row's inverse
    temperature scales the query before the product (``[B, d]`` work instead
    of ``[B, C]``, forward and backward) and the positive logit is taken from
    the vectors, so no ``[B, C]`` one-hot labels are built.

    Args:
        query: ``[B, d]`` query vectors.
        candidates: ``[C, d]`` candidate vectors, ``C >= B``; row ``b < B`` is
            row ``b``'s positive.
        scale: ``[B]`` inverse temperatures of the rows (may be trainable).

    Returns:
        ``(losses [B], logits [B, C], positive_scores [B])``: the logits are
        the scaled scores, the positive scores unscaled.

    Example:
        >>> loss, _, _ = full_softmax_loss(tf.zeros([1, 2]), tf.zeros([2, 2]), tf.ones([1]))
        >>> float(loss[0])
        0.6931...
    """
    positive_scores = tf.reduce_sum(query * candidates[: tf.shape(query)[0]], axis=-1)
    logits = tf.matmul(query * scale[:, None], candidates, transpose_b=True)
    return row_logsumexp(logits) - positive_scores * scale, logits, positive_scores


def full_unit_loss(logits: tf.Tensor, scale: tf.Tensor, positives: tf.Tensor,
                   small: bool = True) -> tf.Tensor:
    """:func:`full_softmax_loss` at τ = 1, forward only (the per-user statistic).

    Args:
        logits: ``[B, C]`` scaled scores, as :func:`full_softmax_loss` returns.
        scale: ``[B]`` the inverse temperatures they were scaled by (non-zero).
        positives: ``[B]``, the unscaled positive scores.
        small: scores known to be small (cosines): ``log Σ exp`` without the
            max pass, as :func:`unit_softmax_loss`.

    Returns:
        ``[B]`` losses.

    Example:
        >>> float(full_unit_loss(tf.zeros([1, 2]), tf.ones([1]), tf.zeros([1]))[0])
        0.6931...
    """
    scores = logits * (1.0 / scale)[:, None]
    if small:
        return tf.math.log(tf.reduce_sum(tf.exp(scores), axis=1)) - positives
    return tf.reduce_logsumexp(scores, axis=1) - positives
