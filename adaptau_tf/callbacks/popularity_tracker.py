"""Per-epoch embedding magnitude and Recall by item popularity group."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.analysis.popularity import (
    SCHEMES,
    group_mean_norms,
    group_metrics,
    popularity_groups,
)
from adaptau_tf.callbacks.serializable_callback import SerializableCallback

#: Columns of the CSV file (one row per epoch and group; ``epoch`` counts from 0).
CSV_COLUMNS: tuple[str, ...] = ("epoch", "group", "items", "magnitude", "recall", "ndcg")


@tf.keras.utils.register_keras_serializable(package="adaptau_tf")
class PopularityGroupTracker(SerializableCallback):
    """Follows the items of each popularity group over training (paper Fig. 1a).

    At the end of every ``every_n_epochs``-th epoch it computes, for each of
    the ``G`` popularity groups of :func:`~adaptau_tf.analysis.popularity_groups`
    (group 0 = least popular):

    * ``magnitude``: the mean L2 norm of the group's **raw** item vectors,
      before normalisation: ``model.propagate(training=False)[1]``, i.e. the
      layer-0 embedding rows for MF and the propagated (mean of the layer
      outputs), un-normalised vectors for LightGCN;
    * with an ``evaluator``: the group's Recall@k and NDCG@k on the
      evaluator's targets (validation), decomposed as in
      :func:`~adaptau_tf.analysis.group_metrics` (groups sum to the overall
      metric), from the normalised representations.

    The values are kept in :attr:`latest` (``{"magnitude": [G], "recall": [G],
    "ndcg": [G]}``) for other callbacks (e.g.
    :class:`~adaptau_tf.callbacks.AnalysisTensorBoard`, placed after this one)
    and, with ``csv_path``, appended to a CSV file with :data:`CSV_COLUMNS`.
    Rows of epochs ``>= epoch`` already in the file (a resumed run repeating
    an epoch) are replaced.

    Args:
        item_counts: ``[m]`` training interactions per item.
        num_groups: ``G`` (10).
        scheme: ``"interactions"`` (equal interactions per group, the paper's)
            or ``"items"`` (equal item counts).
        evaluator: optional :class:`~adaptau_tf.evaluation.RankingEvaluator`
            (validation targets, training items masked).
        k: cut-off of the per-group metrics (20).
        every_n_epochs: compute every N epochs (1).
        csv_path: optional CSV file to append to.
        **kwargs: accepted for serialisation symmetry.

    Example:
        >>> tracker = PopularityGroupTracker(
        ...     data.train_item_counts, evaluator=RankingEvaluator(
        ...         data.train_csr, data.valid_csr, ks=(20,)), csv_path="run/groups.csv")
        >>> model.fit(dataset, epochs=20, callbacks=[tracker])
        >>> tracker.latest["magnitude"]  # [10] mean raw norm per group
    """

    def __init__(
        self,
        item_counts: np.ndarray,
        num_groups: int = 10,
        scheme: str = "interactions",
        evaluator: Any = None,
        k: int = 20,
        every_n_epochs: int = 1,
        csv_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if not (isinstance(every_n_epochs, int) and every_n_epochs >= 1):
            raise ValueError(f"every_n_epochs must be an int >= 1, got {every_n_epochs!r}")
        self.item_counts = np.asarray(item_counts, np.int64)
        self.num_groups = int(num_groups)
        self.scheme = scheme
        self.evaluator = evaluator
        self.k = int(k)
        self.every_n_epochs = every_n_epochs
        self.csv_path = None if csv_path is None else str(csv_path)
        self.item_groups = popularity_groups(self.item_counts, self.num_groups, scheme)
        self.latest: dict[str, np.ndarray] = {}
        self.latest_epoch: int | None = None

    @classmethod
    def from_data(cls, data: Any, **kwargs: Any) -> PopularityGroupTracker:
        """Builds the tracker from an :class:`~adaptau_tf.data.InteractionData`."""
        return cls(data.train_item_counts, **kwargs)

    def compute(self) -> dict[str, np.ndarray]:
        """The current per-group values of :attr:`model` (see the class docstring)."""
        _, raw_items = self.model.propagate(training=False)
        stats = {"magnitude": group_mean_norms(np.asarray(raw_items), self.item_groups,
                                               self.num_groups)}
        if self.evaluator is not None:
            users, items = self.model.compute_representations(training=False)
            _, top = self.evaluator.evaluate_top_items(users, items)
            metrics = group_metrics(top, self.evaluator.relevant_items, self.item_groups,
                                    self.k, self.num_groups)
            stats["recall"] = metrics["recall"]
            stats["ndcg"] = metrics["ndcg"]
        return stats

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every_n_epochs:
            return
        self.latest = self.compute()
        self.latest_epoch = epoch
        if self.csv_path is not None:
            self._write(epoch)

    def _write(self, epoch: int) -> None:
        path = Path(self.csv_path)
        kept: list[dict[str, str]] = []
        if path.exists():
            with open(path, newline="") as handle:
                kept = [row for row in csv.DictReader(handle) if int(row["epoch"]) < epoch]
        sizes = np.bincount(self.item_groups, minlength=self.num_groups)
        nan = np.full(self.num_groups, np.nan)
        for g in range(self.num_groups):
            kept.append({
                "epoch": str(epoch), "group": str(g), "items": str(int(sizes[g])),
                "magnitude": repr(float(self.latest["magnitude"][g])),
                "recall": repr(float(self.latest.get("recall", nan)[g])),
                "ndcg": repr(float(self.latest.get("ndcg", nan)[g])),
            })
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)

    def get_config(self) -> dict[str, Any]:
        return {
            "item_counts": self.item_counts.tolist(),
            "num_groups": self.num_groups,
            "scheme": self.scheme,
            "k": self.k,
            "every_n_epochs": self.every_n_epochs,
            "csv_path": self.csv_path,
        }


def read_groups_csv(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Reads a tracker CSV into ``{"epochs": [E], "magnitude": [E, G], "recall": [E, G],
    "ndcg": [E, G], "items": [G]}`` (epochs counted from 1, last row per epoch wins).

    Example:
        >>> read_groups_csv("runs/quickstart/groups.csv")["magnitude"].shape
        (20, 10)
    """
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} holds no rows")
    epochs = sorted({int(row["epoch"]) for row in rows})
    groups = 1 + max(int(row["group"]) for row in rows)
    index = {e: i for i, e in enumerate(epochs)}
    out = {key: np.full((len(epochs), groups), np.nan) for key in ("magnitude", "recall", "ndcg")}
    items = np.zeros(groups, np.int64)
    for row in rows:
        i, g = index[int(row["epoch"])], int(row["group"])
        items[g] = int(row["items"])
        for key in out:
            out[key][i, g] = float(row[key])
    return {"epochs": np.asarray(epochs) + 1, "items": items, **out}
