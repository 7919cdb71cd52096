"""Keras callback: per-epoch logs in a CSV file whose columns may grow."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.callbacks.serializable_callback import SerializableCallback

#: Written for a column an epoch did not log (as ``tf.keras.callbacks.CSVLogger``).
MISSING = "NA"


def _format(value: Any) -> str:
    """One cell: scalars as Python numbers, arrays as ``[a, b]``, strings as is."""
    if isinstance(value, str):
        return value
    array = np.asarray(value)
    if array.ndim == 0:
        return str(array.item())
    return "[" + ", ".join(str(x) for x in array.ravel().tolist()) + "]"


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class CSVHistory(SerializableCallback):
    """Appends every epoch's ``logs`` to a CSV file, adding columns as they appear.

    A drop-in for ``tf.keras.callbacks.CSVLogger`` (same file layout: an
    ``epoch`` column, then the log keys in sorted order, ``NA`` where an epoch
    has no value; no all-``NA`` ``val_*`` placeholder columns), without its
    trap: ``CSVLogger`` fixes its columns at the
    first epoch it sees, so keys that first appear later, such as the metrics
    of a :class:`~adaptau_tf.evaluation.RankingEvaluation` with
    ``every_n_epochs > 1``, are silently dropped, and a resumed run whose first
    epoch logs other keys than the file's header writes misaligned rows. Here
    a row whose keys all have a column is appended; a row with a new key
    rewrites the file (atomically: a temporary file, then ``os.replace``) with
    the union of the columns, the earlier rows keeping their values and
    getting ``NA`` in the new columns. With ``append=True`` an existing file
    (from an earlier ``fit`` or process, or from ``CSVLogger``) is continued
    under its own header. With ``replace_repeated_epochs=True`` an epoch at or
    below the file's last epoch replaces that epoch's row and drops the later
    ones (atomically, as above): a run resumed by ``BackupAndRestore`` from a
    checkpoint older than its last row trains those epochs again, and the file
    keeps one row per epoch, the latest.

    Place it after the callbacks that write into ``logs`` (evaluation,
    temperatures), as ``CSVLogger``.

    Args:
        filename: the CSV file.
        separator: the field separator.
        append: continue an existing file (``False`` starts it afresh at
            ``on_train_begin``).
        replace_repeated_epochs: an epoch the file already has (or an earlier
            one) replaces the rows from that epoch on instead of being appended
            after them (``CSVLogger`` appends).
        **kwargs: passed to ``tf.keras.callbacks.Callback``.

    Example:
        >>> history = CSVHistory("history.csv", append=True, replace_repeated_epochs=True)
        >>> model.fit(dataset, epochs=10,
        ...           callbacks=[RankingEvaluation(evaluator, every_n_epochs=2), history])
    """

    def __init__(
        self, filename: str | os.PathLike, separator: str = ",", append: bool = False,
        replace_repeated_epochs: bool = False, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"separator must be one character, got {separator!r}")
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = bool(append)
        self.replace_repeated_epochs = bool(replace_repeated_epochs)
        self._columns: list[str] | None = None
        self._last_epoch: int | None = None

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Reads the header (and last epoch) of the file to continue, or removes the file."""
        path = Path(self.filename)
        self._columns, self._last_epoch = None, None
        if not self.append:
            path.unlink(missing_ok=True)
        elif path.exists():
            header, rows = self._read()
            self._columns = header or None
            if self.replace_repeated_epochs and rows:
                self._last_epoch = max(self._epoch(row, n) for n, row in enumerate(rows, 2))

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Writes the epoch's row, widening the file first if it logs a new key."""
        row = {"epoch": str(epoch)}
        row.update((key, _format(value)) for key, value in (logs or {}).items())
        repeated = self._last_epoch is not None and epoch <= self._last_epoch
        if self.replace_repeated_epochs:
            self._last_epoch = epoch
        if not repeated and self._columns is not None and set(row) <= set(self._columns):
            with open(self.filename, "a", newline="") as f:
                self._writer(f).writerow([row.get(c, MISSING) for c in self._columns])
            return
        columns, rows = self._read() if Path(self.filename).exists() else ([], [])
        if repeated:
            rows = [old for n, old in enumerate(rows, 2) if self._epoch(old, n) < epoch]
        keys = set(columns) | set(row)
        self._columns = ["epoch"] + sorted(keys - {"epoch"})
        temporary = f"{self.filename}.tmp"
        with open(temporary, "w", newline="") as f:
            writer = self._writer(f)
            writer.writerow(self._columns)
            for old in [*rows, row]:
                writer.writerow([old.get(c, MISSING) for c in self._columns])
        os.replace(temporary, self.filename)

    def _writer(self, f: Any) -> Any:
        return csv.writer(f, delimiter=self.separator, lineterminator="\n")

    def _epoch(self, row: Mapping[str, str], line: int) -> int:
        """The ``epoch`` cell of a row read from line ``line`` of the file, as an int."""
        try:
            return int(row["epoch"])
        except (KeyError, ValueError):
            raise ValueError(f"{self.filename}, line {line}: epoch "
                             f"{row.get('epoch')!r} is not an integer") from None

    def _read(self) -> tuple[list[str], list[dict[str, str]]]:
        """The file's header and its rows (as ``{column: cell}``)."""
        with open(self.filename, newline="") as f:
            lines = list(csv.reader(f, delimiter=self.separator))
        if not lines:
            return [], []
        header, body = lines[0], lines[1:]
        for number, line in enumerate(body, start=2):
            if len(line) != len(header):
                raise ValueError(
                    f"{self.filename}, line {number}: {len(line)} fields under a header of "
                    f"{len(header)} ({line!r})"
                )
        return header, [dict(zip(header, line)) for line in body]

    def get_config(self) -> dict[str, Any]:
        """The arguments (``tf.keras.callbacks.Callback`` has no config to chain to)."""
        return {"filename": self.filename, "separator": self.separator, "append": self.append,
                "replace_repeated_epochs": self.replace_repeated_epochs}
