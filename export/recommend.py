"""Top-k recommendations from an export, through the SavedModel or the ScaNN index.

``adaptau-recommend EXPORT --user-ids 0 5 7 [-k 20] [--backend saved-model|scann]``

* ``saved-model``: ``serving_default`` of the SavedModel (exact, seen items
  excluded as exported).
* ``scann``: the user vector from the SavedModel's ``user_embedding``
  signature (what a TF Serving deployment would return) searched in
  ``items/scann``; when the export excludes seen items, ScaNN is asked for
  ``k + (user's seen count)`` neighbours and the seen ones are dropped.

Neither path imports ``adaptau_tf``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adaptau_tf.export.check import resolve_saved_model_dir  # noqa: E402
from adaptau_tf.export.integrity import verify_checksums  # noqa: E402

BACKENDS = ("saved-model", "scann")


class Recommender:
    """Serves top-k item ids and scores from an export directory.

    Args:
        path: ``<export_dir>/<model_name>[/<version>]`` (latest version if omitted).
        backend: ``"saved-model"`` or ``"scann"``.

    Example:
        >>> recommender = Recommender("/tmp/serving/adaptau", backend="scann")
        >>> ids, scores = recommender.recommend([0, 5], k=10)
        >>> ids.shape
        (2, 10)
    """

    def __init__(self, path: str | Path, backend: str = "saved-model") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.path = resolve_saved_model_dir(path)
        self.backend = backend
        manifest = self.path / "items" / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} is missing: not an adaptau export")
        self.manifest = json.loads(manifest.read_text())
        problems = verify_checksums(self.path, self.manifest)
        if problems:
            raise ValueError(f"{self.path}: the export does not match its manifest: "
                             + "; ".join(problems))
        self.num_users = int(self.manifest["saved_model"]["num_users"])
        self.num_items = int(self.manifest["count"])
        self.model = tf.saved_model.load(str(self.path))
        cold = self.manifest.get("cold_users") or {}
        self.cold_policy = cold.get("policy", "popular")
        self.cold = (np.load(self.path / cold["path"]).astype(bool) if cold.get("path")
                     else np.zeros(self.num_users, bool))
        popularity = self.path / "items" / "popularity.npy"
        self.popularity = np.load(popularity) if popularity.is_file() else None
        self.index = None
        self.seen_row_splits = self.seen_items = None
        if backend == "scann":
            self._load_scann()

    def _load_scann(self) -> None:
        from adaptau_tf.export.scann_index import ScannIndex

        info = self.manifest.get("scann")
        if not info:
            raise FileNotFoundError(f"{self.path} was exported without a ScaNN index")
        ids = np.load(self.path / "items" / "ids.npy")
        self.index = ScannIndex.load(self.path / "items" / info["directory"], ids, info["params"])
        if self.manifest["saved_model"]["exclude_seen"]:
            self.seen_row_splits = np.load(self.path / "users" / "seen_row_splits.npy")
            self.seen_items = np.load(self.path / "users" / "seen_items.npy")

    def _check(self, user_ids: np.ndarray, k: int) -> None:
        bad = user_ids[(user_ids < 0) | (user_ids >= self.num_users)]
        if bad.size:
            raise ValueError(
                f"unknown user ids {bad.tolist()[:10]}: this export knows 0..{self.num_users - 1}"
            )
        if self.cold_policy == "refuse" and self.cold[user_ids].any():
            raise ValueError(f"users {user_ids[self.cold[user_ids]].tolist()[:10]} have no "
                             "training rows and this export refuses them (--cold-users refuse)")
        if not 1 <= k <= self.num_items:
            raise ValueError(f"k must be in [1, {self.num_items}], got {k}")

    def recommend(self, user_ids: Sequence[int] | np.ndarray, k: int = 20
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k per user.

        Args:
            user_ids: ``[B]`` user ids.
            k: items per user.

        Returns:
            ``(item_ids [B, k] int64, scores [B, k] float32)``, best first;
            ``-1`` / ``-inf`` pad users with fewer than k unseen items.
        """
        user_ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        self._check(user_ids, int(k))
        if self.backend == "saved-model":
            out = self.model.signatures["serving_default"](
                user_id=tf.constant(user_ids), k=tf.constant(int(k), tf.int32))
            return out["item_ids"].numpy(), out["scores"].numpy()
        return self._recommend_scann(user_ids, int(k))

    def _recommend_scann(self, user_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = self.model.signatures["user_embedding"](
            user_id=tf.constant(user_ids))["embedding"].numpy()
        ids = np.full((user_ids.shape[0], k), -1, np.int64)
        scores = np.full((user_ids.shape[0], k), -np.inf, np.float32)
        for row, user in enumerate(user_ids):
            seen = np.empty(0, np.int64)
            if self.seen_row_splits is not None:
                seen = self.seen_items[self.seen_row_splits[user]:self.seen_row_splits[user + 1]]
            fetch = min(k + seen.shape[0], self.index.size)
            if self.cold[user] and self.popularity is not None:  # as serving_default does
                order = np.argsort(-self.popularity, kind="stable")[:fetch]
                found, found_scores = self.index.ids[order][None], self.popularity[order][None]
            else:
                found, found_scores = self.index.search(queries[row], fetch)
            keep = ~np.isin(found[0], seen)
            kept, kept_scores = found[0][keep][:k], found_scores[0][keep][:k]
            ids[row, :kept.shape[0]], scores[row, :kept.shape[0]] = kept, kept_scores
        return ids, scores


def main(argv: Sequence[str] | None = None) -> int:
    """``adaptau-recommend``: prints top-k items per user (text or ``--json``)."""
    parser = argparse.ArgumentParser(prog="adaptau-recommend",
                                     description="Top-k recommendations from an export.")
    parser.add_argument("export", help="<export_dir>/<model_name>[/<version>]")
    parser.add_argument("--user-ids", type=int, nargs="+", required=True)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--backend", choices=BACKENDS, default="saved-model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        recommender = Recommender(args.export, backend=args.backend)
        ids, scores = recommender.recommend(args.user_ids, args.k)
    except (ValueError, FileNotFoundError) as error:
        print(f"adaptau-recommend: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"backend": args.backend, "k": args.k, "recommendations": [
            {"user_id": user, "item_ids": row[row >= 0].tolist(),
             "scores": [round(float(s), 6) for s in score_row[row >= 0]]}
            for user, row, score_row in zip(args.user_ids, ids, scores)]}))
        return 0
    print(f"# {recommender.path} backend={args.backend} k={args.k}")
    for user, row, score_row in zip(args.user_ids, ids, scores):
        pairs = " ".join(f"{item}:{score:.4f}" for item, score in zip(row, score_row) if item >= 0)
        print(f"user {user}: {pairs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
