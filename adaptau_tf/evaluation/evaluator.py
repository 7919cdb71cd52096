"""All-ranking evaluation: score every item, mask training items, take top K."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse
import tensorflow as tf

from adaptau_tf.evaluation.metrics import METRIC_NAMES, _check_ks, ranking_metrics

ArrayLike = np.ndarray | tf.Tensor | tf.Variable


def _binary_csr(matrix: object, name: str) -> scipy.sparse.csr_matrix:
    """Returns a binary float32 CSR copy of a scipy sparse matrix (explicit zeros dropped)."""
    if not scipy.sparse.issparse(matrix):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix [num_users, num_items], got "
            f"{type(matrix).__name__}"
        )
    if len(matrix.shape) != 2:
        raise ValueError(
            f"{name} must be 2-D [num_users, num_items], got shape {matrix.shape}"
        )
    csr = scipy.sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    csr.sum_duplicates()
    csr.data = (csr.data != 0).astype(np.float32)
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


class RankingEvaluator:
    """Full ranking of all items for every user that has held-out items.

    For each batch of ``b`` evaluated users the scores ``[b, m]`` are the inner
    products of their embeddings with all item embeddings; the items of each
    user in ``exclude_csr`` (training items) are set to ``-inf`` and
    ``tf.math.top_k`` keeps the best ``max(ks)``. Only one ``[b, m]`` score
    block exists at a time. The per-batch work is one ``tf.function`` with a
    fixed input signature (traced once per evaluator). The metrics come from
    :func:`adaptau_tf.evaluation.ranking_metrics` against ``target_csr``.

    A target item that is also excluded can never be retrieved; such overlap
    is a data error and triggers a warning at construction.

    Args:
        exclude_csr: ``[n, m]`` scipy sparse matrix; non-zeros are the items
            masked from each user's ranking (their training items).
        target_csr: ``[n, m]`` scipy sparse matrix; non-zeros are the relevant
            held-out items. Users with no non-zero are not evaluated.
        ks: metric cut-offs; ``max(ks) <= m``.
        user_batch_size: users scored per ``[b, m]`` float32 block (memory
            ``4 * b * m`` bytes; lower it for very large catalogues).

    Example:
        >>> evaluator = RankingEvaluator(data.train_csr, data.test_csr, ks=(20,))
        >>> users, items = model.compute_representations(training=False)
        >>> evaluator.evaluate(users, items)  # {"recall@20": ..., "ndcg@20": ...}
        >>> ids, top = evaluator.evaluate_top_items(users, items)  # [U], [U, 20]
    """

    def __init__(
        self,
        exclude_csr: scipy.sparse.csr_matrix,
        target_csr: scipy.sparse.csr_matrix,
        ks: Sequence[int] = (10, 20, 50),
        user_batch_size: int = 1024,
    ) -> None:
        self.exclude_csr = _binary_csr(exclude_csr, "exclude_csr")
        self.target_csr = _binary_csr(target_csr, "target_csr")
        self.ks = _check_ks(ks)
        if isinstance(user_batch_size, bool) or not isinstance(
            user_batch_size, int | np.integer
        ):
            raise TypeError(f"user_batch_size must be an int, got {user_batch_size!r}")
        if user_batch_size < 1:
            raise ValueError(f"user_batch_size must be >= 1, got {user_batch_size}")
        self.user_batch_size = int(user_batch_size)

        if self.exclude_csr.shape != self.target_csr.shape:
            raise ValueError(
                f"exclude_csr has shape {self.exclude_csr.shape} but target_csr has "
                f"shape {self.target_csr.shape}; both must be [num_users, num_items]"
            )
        self._num_all_users, self._num_items = self.exclude_csr.shape
        self._k_max = self.ks[-1]
        if self._k_max > self._num_items:
            raise ValueError(
                f"max(ks) = {self._k_max} exceeds the number of items {self._num_items}"
            )

        self._users = np.flatnonzero(np.diff(self.target_csr.indptr) > 0).astype(
            np.int64
        )
        if self._users.size == 0:
            raise ValueError(
                f"target_csr (shape {self.target_csr.shape}) has no user with a target item"
            )
        overlap = self.exclude_csr.multiply(self.target_csr).nnz
        if overlap:
            warnings.warn(
                f"{overlap} (user, item) pairs are both excluded and targets; those "
                "targets can never be retrieved",
                stacklevel=2,
            )
        targets = self.target_csr[self._users]
        self._relevant = np.split(
            targets.indices.astype(np.int64), targets.indptr[1:-1]
        )
        self._batches = self._make_batches()
        self._top_k_batch = tf.function(
            self._top_k_batch_eager,
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="user_embeddings"),
                tf.TensorSpec([None, None], tf.float32, name="item_embeddings"),
                tf.TensorSpec([None], tf.int64, name="batch_users"),
                tf.TensorSpec([None, 2], tf.int64, name="excluded"),
            ],
            reduce_retracing=True,
        )

    def _make_batches(self) -> list[tuple[tf.Tensor, tf.Tensor]]:
        """Splits the evaluated users into batches with their excluded (row, item) pairs."""
        batches = []
        for start in range(0, self._users.size, self.user_batch_size):
            users = self._users[start : start + self.user_batch_size]
            block = self.exclude_csr[users]
            rows = np.repeat(
                np.arange(users.size, dtype=np.int64), np.diff(block.indptr)
            )
            pairs = np.stack([rows, block.indices.astype(np.int64)], axis=1)
            batches.append((tf.constant(users), tf.constant(pairs.reshape(-1, 2))))
        return batches

    def _top_k_batch_eager(
        self,
        user_embeddings: tf.Tensor,
        item_embeddings: tf.Tensor,
        batch_users: tf.Tensor,
        excluded: tf.Tensor,
    ) -> tf.Tensor:
        """Top-``max(ks)`` item ids ``[b, Kmax]`` int32 for one batch of users.

        Args:
            user_embeddings: ``[n, d]`` float32, all users.
            item_embeddings: ``[m, d]`` float32.
            batch_users: ``[b]`` int64 user ids of this batch.
            excluded: ``[e, 2]`` int64 ``(row in batch, item id)`` pairs to mask.
        """
        scores = tf.linalg.matmul(
            tf.gather(user_embeddings, batch_users), item_embeddings, transpose_b=True
        )
        minus_inf = tf.fill(tf.shape(excluded)[:1], tf.constant(-np.inf, tf.float32))
        scores = tf.tensor_scatter_nd_update(scores, excluded, minus_inf)
        return tf.math.top_k(scores, k=self._k_max, sorted=True).indices

    @property
    def num_users(self) -> int:
        """Number of evaluated users (those with >= 1 target item)."""
        return int(self._users.size)

    @property
    def users(self) -> np.ndarray:
        """``[U]`` int64 ids of the evaluated users, in output order."""
        return self._users.copy()

    @property
    def relevant_items(self) -> list[np.ndarray]:
        """``U`` int64 arrays: the target items of each evaluated user."""
        return list(self._relevant)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Keys of the dict returned by :meth:`evaluate`."""
        return tuple(f"{name}@{k}" for k in self.ks for name in METRIC_NAMES)

    def _check_embeddings(
        self, user_embeddings: ArrayLike, item_embeddings: ArrayLike
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Converts to float32 tensors and validates shapes and finiteness."""
        tensors = []
        for name, value, rows in (
            ("user_embeddings", user_embeddings, self._num_all_users),
            ("item_embeddings", item_embeddings, self._num_items),
        ):
            tensor = tf.convert_to_tensor(value)
            if not (tensor.dtype.is_floating or tensor.dtype.is_integer):
                raise TypeError(
                    f"{name} must be a float array, got dtype {tensor.dtype.name}"
                )
            if tensor.shape.rank != 2 or tensor.shape[0] != rows:
                raise ValueError(
                    f"{name} must have shape [{rows}, d] to match the "
                    f"{self.exclude_csr.shape} interaction matrices, got "
                    f"{tuple(tensor.shape)}"
                )
            tensors.append(tf.cast(tensor, tf.float32))
        users, items = tensors
        if users.shape[1] != items.shape[1]:
            raise ValueError(
                f"user and item embeddings differ in width: user_embeddings "
                f"{tuple(users.shape)} vs item_embeddings {tuple(items.shape)}"
            )
        for name, tensor in (("user_embeddings", users), ("item_embeddings", items)):
            if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
                raise ValueError(
                    f"{name} {tuple(tensor.shape)} contains NaN or Inf values"
                )
        return users, items

    def evaluate_top_items(
        self, user_embeddings: ArrayLike, item_embeddings: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ranks all non-excluded items for every evaluated user.

        Args:
            user_embeddings: ``[n, d]`` NumPy array or tensor, all users.
            item_embeddings: ``[m, d]`` NumPy array or tensor.

        Returns:
            ``(users [U] int64, top_items [U, max(ks)] int64)``, row ``i`` the
            best items of user ``users[i]``, best first (ties: lower item id).

        Raises:
            ValueError: on shapes that do not match ``[n, d]`` / ``[m, d]`` or
                non-finite embeddings.
        """
        users, items = self._check_embeddings(user_embeddings, item_embeddings)
        blocks = [
            self._top_k_batch(users, items, batch_users, excluded).numpy()
            for batch_users, excluded in self._batches
        ]
        return self._users.copy(), np.concatenate(blocks).astype(np.int64)

    def evaluate(
        self, user_embeddings: ArrayLike, item_embeddings: ArrayLike
    ) -> dict[str, float]:
        """Computes the ranking metrics averaged over the evaluated users.

        Args:
            user_embeddings: ``[n, d]`` NumPy array or tensor, all users.
            item_embeddings: ``[m, d]`` NumPy array or tensor.

        Returns:
            ``{"recall@K", "ndcg@K", "precision@K", "hit_rate@K", "mrr@K"}`` for
            every ``K`` in ``ks``, as floats.

        Raises:
            ValueError: on shapes that do not match ``[n, d]`` / ``[m, d]`` or
                non-finite embeddings.
        """
        _, top_items = self.evaluate_top_items(user_embeddings, item_embeddings)
        return ranking_metrics(top_items, self._relevant, self.ks)

    def __repr__(self) -> str:
        return (
            f"RankingEvaluator(num_users={self.num_users}, shape={self.exclude_csr.shape}, "
            f"excluded={self.exclude_csr.nnz}, targets={self.target_csr.nnz}, ks={self.ks}, "
            f"user_batch_size={self.user_batch_size})"
        )
