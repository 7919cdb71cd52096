"""ScaNN parameter sweep at a million unit vectors: recall@20 against batch-1 latency.

The synthetic catalogue of ``benchmarks/serving.py`` (1,000,000 clustered unit
vectors, d = 64, 2,000 clusters, spread 1.0; 500 held-out queries). For each
build (leaves, spherical or Euclidean tree, SOAR spilling, re-scoring
precision, dimensions per AH block, int8 centroids or an upper tree over the
leaves' centroids) and each query setting (leaves searched,
vectors re-scored) it measures recall@20 against exact search and the median
latency of single-query searches, the searcher called directly, the queries
answered back to back (warm caches: the queries were answered once before
for the recall). NumPy brute force (``items @ q``, ``argpartition``) is timed
on the same queries. This is what ``ScannIndex.choose_params`` was chosen
from; ``benchmarks/serving.py`` measures the chosen index as served.

Writes ``results/scann_sweep.{json,md}``.

Usage:
    .venv/bin/python benchmarks/scann_sweep.py [--items 1000000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.reporting import markdown_table, write_results  # noqa: E402
from benchmarks.serving import (  # noqa: E402
    K,
    brute_force,
    clustered_unit_vectors,
    exact_topk,
    recall,
)

#: (leaves, spherical, soar_lambda or 0, re-scoring type, dims per block):
#: [(leaves searched, re-scored), ...]
GRID: list[tuple[tuple[int, bool, float, str, int], list[tuple[int, int]]]] = [
    ((2000, False, 0.0, "float32", 2), [(10, 200), (8, 100), (6, 100), (10, 50)]),
    ((1000, False, 0.0, "float32", 2), [(5, 200), (4, 100), (3, 100)]),
    ((4000, False, 0.0, "float32", 2), [(20, 200), (12, 100), (8, 100)]),
    ((2000, False, 0.0, "float32", 4), [(10, 200), (6, 100)]),
    ((2000, False, 0.0, "int8", 2), [(10, 200), (6, 150)]),
    ((2000, False, 0.0, "bfloat16", 2), [(10, 200), (6, 150)]),
    ((2000, False, 1.5, "int8", 2), [(6, 200), (4, 100)]),
    # The floor: one leaf searched and 20 re-scored (recall far below 0.99)
    # shows what a single query costs before any scanning.
    ((2000, True, 0.0, "float32", 2), [(10, 200), (6, 200), (6, 150), (5, 150), (4, 150),
                                       (4, 120), (1, 20)]),
    ((2000, True, 0.0, "bfloat16", 2), [(6, 150), (4, 100)]),
    ((1400, True, 0.0, "float32", 2), [(4, 150), (5, 150)]),
    ((3000, True, 0.0, "float32", 2), [(6, 150), (8, 150)]),
    # One dimension per AH block: finer codes, so 30-40 re-scored rows suffice.
    ((2000, True, 0.0, "float32", 1), [(5, 40), (4, 40), (3, 40), (4, 30)]),
    ((1000, True, 0.0, "float32", 1), [(4, 40), (10, 40)]),
]

#: Tree variants of the spherical 2000-leaf, 2-dims-per-block build: int8
#: centroids, or an upper tree (top centroids, searched) over the leaves'
#: centroids: ``(label, tree keyword arguments, upper tree or None)``.
TREE_VARIANTS: list[tuple[str, dict[str, Any], tuple[int, int] | None]] = [
    ("int8 centroids", {"quantize_centroids": True}, None),
    ("upper tree 45/12", {}, (45, 12)),
    ("upper tree 100/25", {}, (100, 25)),
]
TREE_VARIANT_SETTINGS: list[tuple[int, int]] = [(5, 150), (6, 200)]


def build(items: np.ndarray, leaves: int, spherical: bool, soar: float, reorder_type: str,
          dims_per_block: int, tree_extra: dict[str, Any] | None = None,
          upper: tuple[int, int] | None = None) -> Any:
    from scann import scann_ops_pybind
    from scann.scann_ops.py.scann_builder import ReorderType

    tree: dict[str, Any] = {"num_leaves": leaves, "num_leaves_to_search": 10,
                            "training_sample_size": 250_000, "spherical": spherical,
                            **(tree_extra or {})}
    if soar > 0:
        tree.update(soar_lambda=soar, overretrieve_factor=2.0)
    quantize = {"float32": ReorderType.FLOAT32, "bfloat16": ReorderType.BFLOAT16,
                "int8": ReorderType.INT8}[reorder_type]
    builder = scann_ops_pybind.builder(items, K, "dot_product").tree(**tree)
    if upper is not None:
        builder = builder.upper_tree(num_leaves=upper[0], num_leaves_to_search=upper[1],
                                     scoring_mode=ReorderType.FLOAT32)
    return (builder.score_ah(dims_per_block, anisotropic_quantization_threshold=0.2)
            .reorder(200, quantize=quantize).build())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    vectors = clustered_unit_vectors(args.items + args.queries, 64, 2000, 1.0, rng)
    items, queries = vectors[:args.items], vectors[args.items:]
    truth = exact_topk(items, queries, K)
    seconds = []
    for query in queries:
        start = time.perf_counter()
        brute_force(items, query, K)
        seconds.append(time.perf_counter() - start)
    brute_ms = 1000 * float(np.median(seconds))
    builds: list[tuple[tuple[int, bool, float, str, int], str, dict[str, Any],
                       tuple[int, int] | None, list[tuple[int, int]]]] = [
        (key, "-", {}, None, settings) for key, settings in GRID
    ] + [((2000, True, 0.0, "float32", 2), label, extra, upper, TREE_VARIANT_SETTINGS)
         for label, extra, upper in TREE_VARIANTS]
    rows = []
    for (leaves, spherical, soar, reorder_type, block), variant, extra, upper, settings in builds:
        start = time.perf_counter()
        searcher = build(items, leaves, spherical, soar, reorder_type, block, extra, upper)
        build_seconds = time.perf_counter() - start
        for search, reorder in settings:
            found = [searcher.search(q, K, reorder, search)[0] for q in queries]
            seconds = []
            for query in queries:
                start = time.perf_counter()
                searcher.search(query, K, reorder, search)
                seconds.append(time.perf_counter() - start)
            latency_ms = 1000 * float(np.median(seconds))
            row = {"leaves": leaves, "spherical": spherical, "soar": soar,
                   "reorder_type": reorder_type, "dims_per_block": block,
                   "tree_variant": variant, "leaves_searched": search, "reorder": reorder,
                   "build_seconds": build_seconds, "recall@20": recall(found, truth),
                   "p50_ms_b1": latency_ms, "speedup_b1": brute_ms / latency_ms}
            print(row, flush=True)
            rows.append(row)
    payload = {"items": args.items, "queries": args.queries, "bruteforce_p50_ms_b1": brute_ms,
               "rows": rows}
    table = markdown_table(
        ["leaves", "tree", "tree variant", "SOAR", "re-score", "dims/block", "searched",
         "re-scored", "recall@20", "p50 us", "× brute force"],
        [[r["leaves"], "spherical" if r["spherical"] else "Euclidean", r["tree_variant"],
          r["soar"] or "-", r["reorder_type"], r["dims_per_block"], r["leaves_searched"],
          r["reorder"],
          r["recall@20"], f"{1000 * r['p50_ms_b1']:.1f}", f"{r['speedup_b1']:.0f}"]
         for r in rows])
    write_results("scann_sweep", payload,
                  f"# ScaNN sweep: {args.items:,} unit vectors, d = 64, top-20, batch 1 "
                  f"(warm caches)\n\nNumPy brute force p50: {brute_ms:.2f} ms.\n\n{table}")
    return payload


if __name__ == "__main__":
    main()
