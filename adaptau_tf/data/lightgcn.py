"""Reader for the LightGCN text format (`train.txt` / `test.txt`).

One line per user: ``user item item ...``, space separated, ids from 0. Lines
may carry trailing spaces, may list only the user id, and may repeat an item
(repeats are dropped).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from adaptau_tf.data._split import dedup_pairs
from adaptau_tf.data.interaction_data import InteractionData

_VALID_TEXT = re.compile(r"[0-9 \t\r\n]*")
_BAD_CHAR = re.compile(r"[^0-9 \t\r\n]")
_NEGATIVE = re.compile(r"-[0-9]+")
_MAX_EXAMPLES = 5


class LightGCNFile(NamedTuple):
    """What `read_lightgcn` returns (unpacks as a 3-tuple).

    Attributes:
        pairs: `[n, 2]` int64 deduplicated `(user, item)` pairs in file order.
        num_users_seen: Largest user id in the file + 1 (user-only lines count).
        num_items_seen: Largest item id in the file + 1 (0 if no items).
    """

    pairs: np.ndarray
    num_users_seen: int
    num_items_seen: int


def _bad_token_error(path: Path, lines: list[str]) -> ValueError:
    """Builds the error for the first token that is not a non-negative integer."""
    for number, line in enumerate(lines, start=1):
        for token in line.split():
            if not token.isascii() or not token.isdigit():
                kind = "negative id" if _NEGATIVE.fullmatch(token) else "non-integer id"
                return ValueError(
                    f"{path}: line {number}: {kind} {token!r} (expected "
                    f"non-negative integer ids separated by spaces)."
                )
    for number, line in enumerate(lines, start=1):
        match = _BAD_CHAR.search(line)
        if match is not None:
            return ValueError(
                f"{path}: line {number}: unexpected character {match.group()!r} "
                "(expected digits separated by spaces)."
            )
    return ValueError(f"{path}: unexpected characters (expected digits and spaces).")


#: Ids beyond this many times the distinct ids (and beyond 1000) are refused.
MAX_ID_RATIO = 10.0


def read_lightgcn(path: str | os.PathLike[str],
                  max_id_ratio: float | None = MAX_ID_RATIO) -> LightGCNFile:
    """Reads one LightGCN-format file.

    The whole file is read once; each line is split and all tokens are
    converted to integers in one vectorised call.

    Args:
        path: Path to a ``train.txt`` / ``test.txt`` style file.
        max_id_ratio: refuse a file whose largest user or item id is more than
            this many times its number of distinct ids (and above 1000): tables
            are sized by the largest id, so sparse ids (``10000000`` among a few
            hundred users) would allocate gigabytes for nothing. ``None``
            disables the check.

    Returns:
        `LightGCNFile(pairs [n, 2] int64, num_users_seen, num_items_seen)`;
        repeated `(user, item)` pairs are dropped.

    Raises:
        FileNotFoundError: If `path` does not exist (or is not a file).
        ValueError: If the file is empty, holds a token that is not a
            non-negative integer, or ids far beyond their count (the message
            names the file, the 1-based line number and the token).

    Example:
        >>> pairs, num_users, num_items = read_lightgcn("ml-1m/train.txt")
        >>> pairs.shape, pairs.dtype
        ((796244, 2), dtype('int64'))
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"LightGCN file not found: {str(path)!r}.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path}: line {line}: byte {raw[error.start:error.start + 1]!r} is not UTF-8 text "
            "(expected digits and spaces)."
        ) from None
    if not text.strip():
        raise ValueError(
            f"{path}: file is empty (expected lines 'user item item ...')."
        )
    lines = text.split("\n")
    if _VALID_TEXT.fullmatch(text) is None:
        raise _bad_token_error(path, lines)

    tokens: list[str] = []
    lengths: list[int] = []
    for line in lines:
        parts = line.split()
        lengths.append(len(parts))
        tokens.extend(parts)
    lengths_array = np.asarray(lengths, dtype=np.int64)
    try:
        ids = np.array(tokens, dtype=np.int64)
    except OverflowError:
        too_big = next(t for t in tokens if int(t) > np.iinfo(np.int64).max)
        number = next(k + 1 for k, line in enumerate(lines) if too_big in line.split())
        raise ValueError(
            f"{path}: line {number}: id {too_big!r} overflows int64."
        ) from None

    nonempty = lengths_array > 0
    starts = (
        np.cumsum(lengths_array) - lengths_array
    )  # offset of each line's first token
    line_users = ids[starts[nonempty]]
    item_counts = lengths_array[nonempty] - 1
    is_item = np.ones(ids.shape[0], dtype=bool)
    is_item[starts[nonempty]] = False
    pairs = np.stack([np.repeat(line_users, item_counts), ids[is_item]], axis=1)
    if max_id_ratio is not None:
        line_of_token = np.repeat(np.arange(1, len(lengths) + 1), lengths_array)
        for kind, values, lines_of in (("user", line_users, np.flatnonzero(nonempty) + 1),
                                       ("item", ids[is_item], line_of_token[is_item])):
            _check_sparse_ids(path, kind, values, lines_of, max_id_ratio)
    pairs = dedup_pairs(pairs)
    num_items_seen = int(pairs[:, 1].max()) + 1 if pairs.shape[0] else 0
    return LightGCNFile(pairs, int(line_users.max()) + 1, num_items_seen)


def _check_sparse_ids(path: Path, kind: str, values: np.ndarray, lines_of: np.ndarray,
                      ratio: float) -> None:
    """Refuses ids far beyond their count, naming the line of the largest."""
    if values.size == 0:
        return
    largest = int(values.max())
    distinct = np.unique(values).size
    if largest + 1 > max(ratio * distinct, 1000):
        line = int(lines_of[int(np.argmax(values))])
        raise ValueError(
            f"{path}: line {line}: {kind} id {largest} is far beyond the file's {distinct} "
            f"distinct {kind} ids (tables are sized by the largest id: {largest + 1} rows); "
            "renumber the ids 0..n-1"
        )


def _examples(ids: np.ndarray) -> str:
    shown = ", ".join(str(int(x)) for x in ids[:_MAX_EXAMPLES])
    return shown + (", ..." if ids.shape[0] > _MAX_EXAMPLES else "")


def load_lightgcn(
    directory: str | os.PathLike[str], name: str | None = None
) -> InteractionData:
    """Loads ``train.txt`` and ``test.txt`` from a LightGCN data folder.

    `num_users` / `num_items` are the largest id over both files + 1. The
    validation split is empty (see `InteractionData.with_validation_split`).
    Warns (does not fail) when test users have no training pairs or test
    items never occur in training.

    Args:
        directory: Folder holding ``train.txt`` and ``test.txt``.
        name: Name of the data set; defaults to the folder name.

    Returns:
        `InteractionData` with `train` `[n_train, 2]`, `valid` `[0, 2]`,
        `test` `[n_test, 2]`.

    Raises:
        FileNotFoundError: If the folder or one of the files is missing.
        ValueError: On malformed files (see `read_lightgcn`).

    Example:
        >>> data = load_lightgcn("path/to/ml-1m")
        >>> data.num_users, data.num_items
        (6022, 3043)
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"LightGCN data folder not found: {str(directory)!r}.")
    train, train_users, train_items = read_lightgcn(directory / "train.txt")
    test, test_users, test_items = read_lightgcn(directory / "test.txt")
    num_users = max(train_users, test_users)
    num_items = max(train_items, test_items)
    if num_items == 0:
        raise ValueError(f"{directory}: train.txt and test.txt hold no items.")
    data_name = name if name is not None else directory.resolve().name

    if test.shape[0]:
        for column, size, what in ((0, num_users, "test user(s) have no training pairs"),
                                    (1, num_items, "test item(s) never occur in training")):
            seen = np.zeros(size, dtype=bool)
            seen[train[:, column]] = True
            cold = np.unique(test[:, column][~seen[test[:, column]]])
            if cold.size:
                warnings.warn(
                    f"{data_name}: {cold.size} {what} (e.g. {_examples(cold)}).", stacklevel=2
                )
    return InteractionData(
        num_users=num_users,
        num_items=num_items,
        train=train,
        valid=np.zeros((0, 2), dtype=np.int64),
        test=test,
        name=data_name,
    )
