"""`ScannIndex`: a ScaNN index over exported item embeddings (TF-free builder).

The index is built with ``scann.scann_ops_pybind`` (the pybind API, no TF ops)
and serialised to a directory that holds only ScaNN's own assets; item ids are
mapped from ScaNN's row indices with the exported ``ids.npy`` (no pickles).
Build parameters are chosen from the catalogue size by :meth:`choose_params`
and recorded in the export manifest, so a serving team can rebuild the same
index.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Below this many items the index scores exhaustively (exact, and fast enough).
BRUTE_FORCE_MAX_ITEMS = 20_000


def _pybind() -> Any:
    """Imports ``scann_ops_pybind`` lazily (``import scann`` is slow)."""
    from scann import scann_ops_pybind

    return scann_ops_pybind


class ScannIndex:
    """Top-k maximum inner product search over ``[m, d]`` item vectors.

    Args:
        searcher: a ``scann_ops_pybind.ScannSearcher``.
        ids: ``[m]`` int64 item id of each indexed row.
        params: the build parameters (see :meth:`choose_params`).
        build_seconds: wall time of the build (``None`` when loaded).

    Example:
        >>> items = np.random.default_rng(0).standard_normal((5000, 16))
        >>> items = (items / np.linalg.norm(items, axis=1, keepdims=True)).astype("float32")
        >>> index = ScannIndex.build(items)
        >>> index.save("/tmp/items/scann")
        >>> ids, scores = ScannIndex.load("/tmp/items/scann", np.arange(5000)).search(
        ...     items[:2], k=10)
        >>> ids.shape, scores.shape
        ((2, 10), (2, 10))
    """

    def __init__(
        self,
        searcher: Any,
        ids: np.ndarray,
        params: dict[str, Any],
        build_seconds: float | None = None,
    ) -> None:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        size = int(searcher.size()) if hasattr(searcher, "size") else ids.shape[0]
        if size != ids.shape[0]:
            raise ValueError(f"the index holds {size} rows but {ids.shape[0]} ids were given")
        self.searcher = searcher
        self.ids = ids.astype(np.int64)
        self.params = dict(params)
        self.build_seconds = build_seconds

    @property
    def size(self) -> int:
        """Number of indexed items ``m``."""
        return int(self.ids.shape[0])

    @staticmethod
    def choose_params(num_items: int, dim: int, num_neighbors: int = 20,
                      normalized: bool = True) -> dict[str, Any]:
        """Build parameters for a catalogue of ``num_items`` ``dim``-vectors.

        Chosen for recall@20 >= 0.99 against exact search at the lowest batch-1
        latency measured (``benchmarks/serving.py``, ``benchmarks/results/serving.md``):

        * ``num_items < 20,000``: exhaustive float32 scoring (exact, fast enough);
        * below 200,000 items a k-means tree of ``√m`` leaves searched until
          about ``max(5,000, f·m)`` items are scanned (``f`` = 0.2 for unit
          vectors, 0.4 for raw ones: Gowalla's 41k, 41 or 81 of 202 leaves),
          exact re-scoring of the best 200 (unit) or 1,000 (raw: maximum inner
          product search, where quantisation misorders long vectors; Gowalla
          LightGCN under ``score="dot"`` needed it for 0.99);
        * from 200,000 unit vectors a spherical k-means tree (centroids on the
          sphere, which ranks leaves by cosine as the queries are scored) of
          ``2√m`` leaves (at most 4,000) searched until about 2,500 items are
          scanned, asymmetric hashing with one dimension per block (finer
          codes) and exact re-scoring of the best 40 (1M unit vectors: 5 of
          2,000 leaves, recall 0.991; two dimensions per block needed 150
          re-scored for 0.992 and were slower, the Euclidean tree with 10
          leaves and 200 re-scored slower still;
          ``benchmarks/results/scann_sweep.md``); raw vectors keep a
          Euclidean tree, about 20,000 items scanned and 1,000 re-scored;
        * otherwise asymmetric hashing with 2-dimensional blocks; anisotropic
          threshold 0.2 throughout (4-dimensional blocks, int8 centroids, an
          upper tree, or re-scoring in bfloat16 or int8 were no faster at 0.99
          or stayed below it at a million).

        Args:
            num_items: ``m``.
            dim: ``d``.
            num_neighbors: default ``k`` of the searcher.
            normalized: whether the vectors are unit rows (cosine).

        Returns:
            A JSON-ready dict with ``strategy`` (``"brute_force"`` or
            ``"tree_ah"``) and the builder arguments.

        Example:
            >>> ScannIndex.choose_params(1_000_000, 64)["num_leaves"]
            2000
        """
        if num_items < 1 or dim < 1 or num_neighbors < 1:
            raise ValueError(
                f"num_items, dim and num_neighbors must be >= 1, got "
                f"{num_items}, {dim}, {num_neighbors}"
            )
        common = {
            "distance_measure": "dot_product",
            "num_neighbors": int(num_neighbors),
            "num_items": int(num_items),
            "dim": int(dim),
        }
        if num_items < BRUTE_FORCE_MAX_ITEMS:
            return {"strategy": "brute_force", **common}
        large = num_items >= 200_000
        num_leaves = int(min(4000, round((2 if large else 1) * math.sqrt(num_items))))
        if not large:
            scanned = max(5000, (0.2 if normalized else 0.4) * num_items)
            reorder = 200 if normalized else 1000
        else:
            scanned, reorder = (2500, 40) if normalized else (20_000, 1000)
        search = int(min(num_leaves, math.ceil(scanned * num_leaves / num_items)))
        return {
            "strategy": "tree_ah",
            **common,
            "num_leaves": num_leaves,
            "num_leaves_to_search": search,
            "spherical": bool(large and normalized),
            "training_sample_size": int(min(num_items, 250_000)),
            "dimensions_per_block": 1 if large and normalized else 2,
            "anisotropic_quantization_threshold": 0.2,
            "reorder": int(max(reorder, 2 * num_neighbors)),
        }

    @classmethod
    def build(
        cls,
        embeddings: np.ndarray,
        ids: np.ndarray | None = None,
        params: dict[str, Any] | None = None,
        num_neighbors: int = 20,
        normalized: bool = True,
    ) -> ScannIndex:
        """Builds the index.

        Args:
            embeddings: ``[m, d]`` float32 item vectors (unit rows for cosine).
            ids: ``[m]`` int64 item ids (default ``arange(m)``).
            params: build parameters (default :meth:`choose_params`).
            num_neighbors: default ``k`` when ``params`` is not given.
            normalized: whether the rows are unit vectors (see :meth:`choose_params`).

        Returns:
            The built index, with ``build_seconds`` set.
        """
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] < 1:
            raise ValueError(f"embeddings must be [m >= 1, d], got shape {embeddings.shape}")
        if not np.all(np.isfinite(embeddings)):
            raise ValueError("embeddings contain NaN or infinite values")
        num_items, dim = embeddings.shape
        ids = np.arange(num_items, dtype=np.int64) if ids is None else np.asarray(ids)
        params = params or cls.choose_params(num_items, dim, num_neighbors, normalized)
        if params.get("dim", dim) != dim or params.get("num_items", num_items) != num_items:
            raise ValueError(
                f"params are for {params.get('num_items')} x {params.get('dim')} "
                f"vectors, got {num_items} x {dim}"
            )
        scann_ops_pybind = _pybind()
        start = time.perf_counter()
        builder = scann_ops_pybind.builder(embeddings, params["num_neighbors"], "dot_product")
        if params["strategy"] == "brute_force":
            builder = builder.score_brute_force()
        elif params["strategy"] == "tree_ah":
            builder = (
                builder.tree(
                    num_leaves=params["num_leaves"],
                    num_leaves_to_search=params["num_leaves_to_search"],
                    training_sample_size=params["training_sample_size"],
                    spherical=bool(params.get("spherical", False)),
                )
                .score_ah(
                    params["dimensions_per_block"],
                    anisotropic_quantization_threshold=params[
                        "anisotropic_quantization_threshold"
                    ],
                )
                .reorder(params["reorder"])
            )
        else:
            raise ValueError(
                f"params['strategy'] must be 'brute_force' or 'tree_ah', "
                f"got {params['strategy']!r}"
            )
        searcher = builder.build()
        return cls(searcher, ids, params, build_seconds=time.perf_counter() - start)

    def save(self, directory: str | Path) -> Path:
        """Serialises ScaNN's assets into ``directory`` (created; paths relative).

        Returns:
            The directory.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.searcher.serialize(str(directory), relative_path=True)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, ids: np.ndarray, params: dict[str, Any] | None = None
    ) -> ScannIndex:
        """Restores a serialised index.

        Args:
            directory: what :meth:`save` wrote.
            ids: ``[m]`` item ids of the rows (the export's ``items/ids.npy``).
            params: the recorded build parameters (for ``reorder`` and display).

        Returns:
            The index.
        """
        directory = Path(directory)
        if not (directory / "scann_assets.pbtxt").is_file():
            raise FileNotFoundError(
                f"{directory} is not a serialised ScaNN index (no scann_assets.pbtxt)"
            )
        searcher = _pybind().load_searcher(str(directory))
        return cls(searcher, ids, params or {})

    def search(
        self, queries: np.ndarray, k: int = 20, leaves_to_search: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k by inner product.

        Args:
            queries: ``[B, d]`` (or ``[d]``) float32 query vectors.
            k: neighbours per query, ``1 <= k <= m``.
            leaves_to_search: override of the tree's leaves searched.

        Returns:
            ``(ids [B, k] int64, scores [B, k] float32)``, best first.
        """
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2:
            raise ValueError(f"queries must be [B, d] or [d], got shape {queries.shape}")
        if not 1 <= int(k) <= self.size:
            raise ValueError(f"k must be in [1, {self.size}], got {k!r}")
        k = int(k)
        pre = max(int(self.params.get("reorder", k)), k)
        leaves = -1 if leaves_to_search is None else int(leaves_to_search)
        if queries.shape[0] == 1:
            rows, scores = self.searcher.search(queries[0], k, pre, leaves)
            rows, scores = np.asarray(rows)[None], np.asarray(scores)[None]
        else:
            rows, scores = self.searcher.search_batched(queries, k, pre, leaves)
        rows = np.asarray(rows, dtype=np.int64)
        return self.ids[rows], np.asarray(scores, dtype=np.float32)
