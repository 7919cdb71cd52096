"""`InteractionData`: implicit-feedback (user, item) pairs split into train/valid/test."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from adaptau_tf.data._split import as_pairs, per_user_holdout_mask


def _to_csr(pairs: np.ndarray, num_users: int, num_items: int) -> sp.csr_matrix:
    """Builds a binary float32 `[num_users, num_items]` CSR matrix from pairs."""
    matrix = sp.csr_matrix(
        (np.ones(pairs.shape[0], dtype=np.float32), (pairs[:, 0], pairs[:, 1])),
        shape=(num_users, num_items),
        dtype=np.float32,
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


@dataclasses.dataclass(eq=False)
class InteractionData:
    """Implicit-feedback interactions of `num_users` users with `num_items` items.

    Every split is an `[n, 2]` int64 array of `(user, item)` pairs with
    `0 <= user < num_users` and `0 <= item < num_items`. Arrays are converted
    and checked in `__post_init__`; treat them as read-only afterwards (the
    cached CSR matrices and counts are computed once).

    Attributes:
        num_users: Number of users `n` (ids `0 .. n-1`).
        num_items: Number of items `m` (ids `0 .. m-1`).
        train: `[n_train, 2]` int64 training pairs.
        valid: `[n_valid, 2]` int64 validation pairs (may be `[0, 2]`).
        test: `[n_test, 2]` int64 test pairs.
        name: Short name of the data set, used in logs and summaries.
        noisy_users: `[num_users]` bool mask of users whose interactions were
            corrupted on purpose (synthetic data); all False when not given.

    Example:
        >>> data = InteractionData(
        ...     num_users=2, num_items=3,
        ...     train=np.array([[0, 0], [0, 1], [1, 2]]),
        ...     valid=np.zeros((0, 2), np.int64),
        ...     test=np.array([[0, 2]]), name="toy")
        >>> data.train_csr.shape
        (2, 3)
    """

    num_users: int
    num_items: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    name: str = "interactions"
    noisy_users: np.ndarray | None = None

    def __post_init__(self) -> None:
        for field_name in ("num_users", "num_items"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{field_name} must be an int, got {value!r}.")
            if value <= 0:
                raise ValueError(f"{field_name} must be positive, got {value}.")
            setattr(self, field_name, int(value))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {self.name!r}.")
        for split in ("train", "valid", "test"):
            pairs = as_pairs(getattr(self, split), split)
            self._check_range(pairs, split)
            setattr(self, split, pairs)
        if self.noisy_users is None:
            self.noisy_users = np.zeros(self.num_users, dtype=bool)
        else:
            mask = np.asarray(self.noisy_users)
            if mask.shape != (self.num_users,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"noisy_users must be a [num_users] = [{self.num_users}] bool "
                    f"array, got shape {mask.shape} dtype {mask.dtype}."
                )
            self.noisy_users = mask

    def _check_range(self, pairs: np.ndarray, split: str) -> None:
        if pairs.shape[0] == 0:
            return
        for column, bound, what in (
            (0, self.num_users, "user"),
            (1, self.num_items, "item"),
        ):
            ids = pairs[:, column]
            bad = np.flatnonzero((ids < 0) | (ids >= bound))
            if bad.size:
                raise ValueError(
                    f"{split} holds {bad.size} {what} id(s) outside [0, {bound}), "
                    f"e.g. row {int(bad[0])}: {pairs[bad[0]].tolist()}."
                )

    # ------------------------------------------------------------------ matrices
    @functools.cached_property
    def train_csr(self) -> sp.csr_matrix:
        """Binary float32 `[num_users, num_items]` CSR matrix of the train pairs."""
        return _to_csr(self.train, self.num_users, self.num_items)

    @functools.cached_property
    def valid_csr(self) -> sp.csr_matrix:
        """Binary float32 `[num_users, num_items]` CSR matrix of the valid pairs."""
        return _to_csr(self.valid, self.num_users, self.num_items)

    @functools.cached_property
    def test_csr(self) -> sp.csr_matrix:
        """Binary float32 `[num_users, num_items]` CSR matrix of the test pairs."""
        return _to_csr(self.test, self.num_users, self.num_items)

    @functools.cached_property
    def train_user_counts(self) -> np.ndarray:
        """`[num_users]` int64 number of training pairs per user."""
        return np.bincount(self.train[:, 0], minlength=self.num_users).astype(np.int64)

    @functools.cached_property
    def train_item_counts(self) -> np.ndarray:
        """`[num_items]` int64 number of training pairs per item."""
        return np.bincount(self.train[:, 1], minlength=self.num_items).astype(np.int64)

    # -------------------------------------------------------------------- splits
    def with_validation_split(
        self, fraction: float = 0.1, seed: int = 0
    ) -> InteractionData:
        """Returns a copy whose validation pairs are carved out of `train`.

        Per user, `clip(round(fraction * c), 1, c - 1)` of the user's `c`
        training pairs move to `valid` (chosen uniformly at random); users with
        fewer than 2 training pairs keep all of them in train. `test` is
        untouched. Deterministic given `seed`.

        Args:
            fraction: Share of each user's training pairs to move, in `[0, 1)`.
                0 gives an empty validation split.
            seed: Seed of the random choice.

        Returns:
            A new `InteractionData` with `train` `[n_train - k, 2]` and `valid`
            `[k, 2]` (both in the original row order).

        Raises:
            ValueError: If `fraction` is outside `[0, 1)` or this data already
                has validation pairs.

        Example:
            >>> split = data.with_validation_split(0.1, seed=0)
            >>> len(split.train) + len(split.valid) == len(data.train)
            True
        """
        if self.valid.shape[0]:
            raise ValueError(
                f"{self.name!r} already has {self.valid.shape[0]} validation pairs; "
                "with_validation_split carves valid out of train and would drop them."
            )
        mask = per_user_holdout_mask(
            self.train[:, 0], fraction, np.random.default_rng(seed)
        )
        return dataclasses.replace(
            self, train=self.train[~mask], valid=self.train[mask]
        )

    # ------------------------------------------------------------------ pipeline
    def train_dataset(
        self,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = False,
        first_epoch: int = 0,
    ) -> tf.data.Dataset:
        """Batches of training pairs as a `tf.data.Dataset`.

        Each iteration (epoch) visits every training pair exactly once. With
        `shuffle`, each epoch draws a fresh permutation of the row indices and
        gathers whole batches from it (far cheaper than an element-wise
        `Dataset.shuffle`); the sequence of permutations is determined by
        `seed` (and by TF's global seed if `tf.random.set_seed` was called).
        The dataset is prefetched and has a known cardinality.

        Under ``tf.distribute`` every element is one *global* batch. The
        dataset's auto-shard policy is set to ``DATA``: distributed over
        ``R`` replicas on ``W`` workers (``model.fit`` or
        ``strategy.experimental_distribute_dataset``), every worker runs this
        same pipeline (same seed, so the same permutation), tf.data splits
        each global batch into ``R`` per-replica slices and each worker keeps
        its own slices, so one step covers exactly one global batch, as in a
        single-process run. (File-based sharding does not apply: the data is
        in memory.)

        Args:
            batch_size: Rows per batch `B` (the last batch may be smaller unless
                `drop_remainder`).
            seed: Seed of the per-epoch permutations.
            shuffle: Whether to shuffle; if False, batches follow `train` order.
            drop_remainder: Whether to drop the last incomplete batch.
            first_epoch: The epoch the first iteration is (a resumed run): the
                sequence of permutations is advanced by this many epochs, so a
                run resumed at epoch ``k`` sees from its first iteration on the
                batches the uninterrupted run saw at epoch ``k``.

        Returns:
            Dataset of `(user_ids [B] int64, item_ids [B] int64)` tuples.

        Raises:
            ValueError: If `batch_size` is not a positive int, there are no
                training pairs, or `drop_remainder` leaves no batch.

        Example:
            >>> ds = data.train_dataset(batch_size=1024, seed=0)
            >>> for users, items in ds.take(1):
            ...     print(users.shape, users.dtype)
            (1024,) <dtype: 'int64'>
        """
        if isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)
        ):
            raise TypeError(f"batch_size must be an int, got {batch_size!r}.")
        batch_size = int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        n = int(self.train.shape[0])
        if n == 0:
            raise ValueError(f"{self.name!r} has no training pairs to batch.")
        num_full, remainder = divmod(n, batch_size)
        keep_remainder = bool(remainder) and not drop_remainder
        num_batches = num_full + int(keep_remainder)
        if num_batches == 0:
            raise ValueError(
                f"drop_remainder=True with batch_size={batch_size} > {n} training "
                "pairs leaves no batch."
            )
        users = tf.constant(self.train[:, 0])
        items = tf.constant(self.train[:, 1])
        full = num_full * batch_size

        def batches(perm: tf.Tensor | None) -> tf.data.Dataset:
            u = users if perm is None else tf.gather(users, perm)
            i = items if perm is None else tf.gather(items, perm)
            ds = tf.data.Dataset.from_tensor_slices(
                (
                    tf.reshape(u[:full], [num_full, batch_size]),
                    tf.reshape(i[:full], [num_full, batch_size]),
                )
            )
            if keep_remainder:
                ds = ds.concatenate(tf.data.Dataset.from_tensors((u[full:], i[full:])))
            return ds

        if shuffle:
            # One fresh int64 per iteration (deterministic sequence given seed).
            epoch_seeds = tf.data.Dataset.random(
                seed=int(seed), rerandomize_each_iteration=True
            ).take(1)
            for _ in range(int(first_epoch)):  # each iteration draws the next epoch's seed
                next(iter(epoch_seeds))

            def epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
                perm = tf.random.experimental.stateless_shuffle(
                    tf.range(n, dtype=tf.int64),
                    seed=tf.stack([epoch_seed, tf.constant(int(seed), tf.int64)]),
                )
                return batches(perm)

            dataset = epoch_seeds.flat_map(epoch)
        else:
            dataset = batches(None)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)

    # ------------------------------------------------------------------- summary
    def summary(self) -> str:
        """One-line description: sizes of the splits and the density.

        Returns:
            E.g. ``"ml-1m: 6022 users, 3043 items, train 796244, valid 0,
            test 99455, density 4.891%"``.
        """
        total = self.train.shape[0] + self.valid.shape[0] + self.test.shape[0]
        density = total / (self.num_users * self.num_items)
        text = (
            f"{self.name}: {self.num_users} users, {self.num_items} items, "
            f"train {self.train.shape[0]}, valid {self.valid.shape[0]}, "
            f"test {self.test.shape[0]}, density {100.0 * density:.3f}%"
        )
        noisy = int(np.count_nonzero(self.noisy_users))
        if noisy:
            text += f", noisy users {noisy}"
        return text
