"""Serving benchmark: SavedModel latency, ScaNN recall and speed (issue #7).

1. Gowalla (40,981 items): trains MF (fixed τ, sampled negatives, batch 2048,
   ``--epochs`` epochs; or takes ``--run DIR`` from ``adaptau-train``), exports
   it with :func:`adaptau_tf.export.saved_model.export_model` (seen items excluded, ScaNN
   index, fresh-process check), then measures in this process

   * SavedModel ``serving_default`` top-20 latency, batch 1 and batch 256
     (p50/p99 of per-call wall time, outputs materialised);
   * ScaNN recall@20 of the exported index against exact brute force over the
     same item table (queries: the users' exported vectors, no exclusion);
   * ScaNN batch-1 latency against NumPy brute force (``items @ q``, then
     ``argpartition`` + sort), timed in alternating blocks of 50 queries so
     both see the same machine load; index build time.

2. Synthetic: 1,000,000 clustered unit vectors, d = 64 (``--clusters``
   Gaussian clusters around unit centres, noise of norm ≈ ``--spread``,
   renormalised; held-out queries from the same clusters), with the same
   size-based ScaNN parameters: recall@20, batch-1 latency against NumPy
   brute force, speed-up.

Writes ``benchmarks/results/serving.json`` and ``serving.md``.

Usage:
    .venv/bin/python benchmarks/serving.py [--epochs 3] [--run DIR] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import adaptau_tf  # noqa: E402,F401

# isort: split

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from adaptau_tf.export.check import check_in_subprocess  # noqa: E402
from adaptau_tf.export.saved_model import export_model  # noqa: E402
from adaptau_tf.export.scann_index import ScannIndex  # noqa: E402
from benchmarks.reporting import SHARED_DATA, markdown_table, write_results  # noqa: E402

K = 20


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(seconds) * 1e3, q))


def brute_force(items: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k rows of ``items @ query`` (one query), best first."""
    scores = items @ query
    top = np.argpartition(scores, -k)[-k:]
    return top[np.argsort(-scores[top])]


def exact_topk(items: np.ndarray, queries: np.ndarray, k: int, chunk: int = 64) -> np.ndarray:
    """Exact top-k rows for many queries, ``chunk`` queries per matmul."""
    out = np.empty((queries.shape[0], k), np.int64)
    for start in range(0, queries.shape[0], chunk):
        scores = queries[start:start + chunk] @ items.T
        top = np.argpartition(scores, -k, axis=1)[:, -k:]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start:start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def scann_vs_brute_force(index: ScannIndex, items: np.ndarray, queries: np.ndarray,
                         block: int = 50) -> dict[str, float]:
    """Recall@K on all queries; batch-1 latency of both, in alternating blocks.

    Each method answers ``block`` queries one at a time, then the other the
    same queries, and so on: both see the same machine load, and each runs in
    its steady state (a query-by-query alternation would make every ScaNN
    query follow a brute-force scan of the whole table, which evicts the
    index's tree and codes from the caches; a server answering queries keeps
    them there).
    """
    found, _ = index.search(queries, K)
    truth_ids = index.ids[exact_topk(items, queries, K)]
    timings: dict[str, list[float]] = {"scann": [], "bruteforce": []}
    for query in queries[:10]:  # warm-up
        index.search(query, K)
        brute_force(items, query, K)
    for first in range(0, queries.shape[0], block):
        for name, answer in (("scann", lambda q: index.search(q, K)),
                             ("bruteforce", lambda q: brute_force(items, q, K))):
            for query in queries[first:first + block]:
                start = time.perf_counter()
                answer(query)
                timings[name].append(time.perf_counter() - start)
    return {
        f"scann_recall@{K}": recall(found, truth_ids),
        "scann_p50_ms_b1": percentile_ms(timings["scann"], 50),
        "scann_p99_ms_b1": percentile_ms(timings["scann"], 99),
        "bruteforce_p50_ms_b1": percentile_ms(timings["bruteforce"], 50),
        "bruteforce_p99_ms_b1": percentile_ms(timings["bruteforce"], 99),
    }


def saved_model_latency(path: Path, num_users: int, calls: dict[int, int]) -> dict[str, float]:
    """p50/p99 of ``serving_default`` per batch size (random users, k = K)."""
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    rng = np.random.default_rng(0)
    k = tf.constant(K, tf.int32)
    out: dict[str, float] = {}
    for batch, count in calls.items():
        for _ in range(5):  # warm-up
            serve(user_id=tf.constant(rng.integers(0, num_users, batch)), k=k)
        seconds = []
        for _ in range(count):
            users = tf.constant(rng.integers(0, num_users, batch))
            start = time.perf_counter()
            result = serve(user_id=users, k=k)
            result["item_ids"].numpy(), result["scores"].numpy()
            seconds.append(time.perf_counter() - start)
        out[f"saved_model_p50_ms_b{batch}"] = percentile_ms(seconds, 50)
        out[f"saved_model_p99_ms_b{batch}"] = percentile_ms(seconds, 99)
    return out


def trained_gowalla(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    if args.run:
        from adaptau_tf.trainers.runs import load_run

        run = load_run(args.run)
        return run.model, run.data, {"source": f"run {args.run}", "config": run.config}
    from adaptau_tf.data import load_lightgcn
    from adaptau_tf.models import build_model

    tf.keras.utils.set_random_seed(0)
    data = load_lightgcn(args.data)
    model = build_model("mf", data, strategy="fixed", temperature=0.15, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    history = model.fit(data.train_dataset(2048), epochs=args.epochs, verbose=2)
    return model, data, {
        "source": f"MF trained here: {args.epochs} epochs, batch 2048, 1024 sampled "
                  "negatives, fixed tau 0.15, Adam 1e-3",
        "epochs": args.epochs,
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": float(history.history["loss"][-1]),
    }


def gowalla(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, float], dict[str, Any]]:
    model, data, details = trained_gowalla(args)
    start = time.perf_counter()
    path = export_model(model, data, workdir / "serving", model_name="gowalla")
    details["export_seconds"] = round(time.perf_counter() - start, 1)
    report = check_in_subprocess(path)
    details["fresh_process_check"] = {
        "ok": report["ok"], "failures": report["failures"], "ops": report["ops"]["count"],
        "reference_exact_match": (report.get("reference") or {}).get("exact_match_fraction"),
    }
    manifest = json.loads((path / "items" / "manifest.json").read_text())
    details["scann_params"] = manifest["scann"]["params"]
    details.update(num_users=data.num_users, num_items=data.num_items)
    latency = saved_model_latency(path, data.num_users, {1: args.calls_b1, 256: args.calls_b256})
    items = np.load(path / "items" / "embeddings.npy")
    index = ScannIndex.load(path / "items" / "scann", np.load(path / "items" / "ids.npy"),
                            manifest["scann"]["params"])
    users = model.compute_representations(training=False)[0].numpy()
    rng = np.random.default_rng(1)
    queries = users[rng.choice(users.shape[0], args.queries, replace=False)]
    ann = scann_vs_brute_force(index, items, queries)
    result = {
        "saved_model_p50_ms_b1": latency["saved_model_p50_ms_b1"],
        "saved_model_p99_ms_b1": latency["saved_model_p99_ms_b1"],
        "saved_model_p50_ms_b256": latency["saved_model_p50_ms_b256"],
        f"scann_recall@{K}": ann[f"scann_recall@{K}"],
        "scann_p50_ms_b1": ann["scann_p50_ms_b1"],
        "bruteforce_p50_ms_b1": ann["bruteforce_p50_ms_b1"],
        "index_build_seconds": float(manifest["scann"]["build_seconds"]),
    }
    details.update(saved_model_p99_ms_b256=latency["saved_model_p99_ms_b256"],
                   scann_p99_ms_b1=ann["scann_p99_ms_b1"],
                   bruteforce_p99_ms_b1=ann["bruteforce_p99_ms_b1"], queries=args.queries)
    return result, details


def clustered_unit_vectors(rows: int, dim: int, clusters: int, spread: float,
                           rng: np.random.Generator) -> np.ndarray:
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, rows)]
    x += rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(spread / np.sqrt(dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def synthetic(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Any]]:
    rng = np.random.default_rng(0)
    vectors = clustered_unit_vectors(args.items + args.synthetic_queries, 64, args.clusters,
                                     args.spread, rng)
    items, queries = vectors[:args.items], vectors[args.items:]
    index = ScannIndex.build(items, num_neighbors=K)
    ann = scann_vs_brute_force(index, items, queries)
    result = {
        f"scann_recall@{K}": ann[f"scann_recall@{K}"],
        "scann_p50_ms_b1": ann["scann_p50_ms_b1"],
        "bruteforce_p50_ms_b1": ann["bruteforce_p50_ms_b1"],
        "speedup_b1": ann["bruteforce_p50_ms_b1"] / ann["scann_p50_ms_b1"],
    }
    details = {
        "items": args.items, "dim": 64, "clusters": args.clusters, "spread": args.spread,
        "queries": args.synthetic_queries, "index_build_seconds": index.build_seconds,
        "scann_params": index.params, "scann_p99_ms_b1": ann["scann_p99_ms_b1"],
        "bruteforce_p99_ms_b1": ann["bruteforce_p99_ms_b1"],
    }
    return result, details


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "gowalla"))
    parser.add_argument("--run", default=None, help="use this adaptau-train run instead")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=2000, help="Gowalla ScaNN queries")
    parser.add_argument("--calls-b1", type=int, default=1000)
    parser.add_argument("--calls-b256", type=int, default=100)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=1.0,
                        help="noise norm around each unit centre, before renormalising")
    parser.add_argument("--synthetic-queries", type=int, default=500)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        gowalla_result, gowalla_details = gowalla(args, Path(workdir))
    synthetic_result, synthetic_details = synthetic(args)
    payload = {
        "gowalla": gowalla_result,
        "synthetic_1m": synthetic_result,
        "details": {"gowalla": gowalla_details, "synthetic_1m": synthetic_details, "k": K},
    }
    g, s = gowalla_result, synthetic_result
    markdown = "\n\n".join([
        "# Serving benchmark (top-20)",
        f"Gowalla: {gowalla_details['num_items']:,} items, {gowalla_details['source']}; "
        f"fresh-process export check ok: {gowalla_details['fresh_process_check']['ok']}.",
        markdown_table(["Gowalla", "value"], [
            ["SavedModel p50 ms, batch 1", g["saved_model_p50_ms_b1"]],
            ["SavedModel p99 ms, batch 1", g["saved_model_p99_ms_b1"]],
            ["SavedModel p50 ms, batch 256", g["saved_model_p50_ms_b256"]],
            ["ScaNN recall@20", g["scann_recall@20"]],
            ["ScaNN p50 ms, batch 1", g["scann_p50_ms_b1"]],
            ["NumPy brute force p50 ms, batch 1", g["bruteforce_p50_ms_b1"]],
            ["ScaNN index build s", g["index_build_seconds"]],
        ]),
        f"Synthetic: {args.items:,} clustered unit vectors, d = 64, {args.clusters} clusters, "
        f"spread {args.spread}; ScaNN {synthetic_details['scann_params']['strategy']}, "
        f"{synthetic_details['scann_params'].get('num_leaves')} leaves, "
        f"{synthetic_details['scann_params'].get('num_leaves_to_search')} searched; "
        f"build {synthetic_details['index_build_seconds']:.1f} s.",
        markdown_table(["Synthetic 1M", "value"], [
            ["ScaNN recall@20", s["scann_recall@20"]],
            ["ScaNN p50 ms, batch 1", s["scann_p50_ms_b1"]],
            ["NumPy brute force p50 ms, batch 1", s["bruteforce_p50_ms_b1"]],
            ["speed-up, batch 1", s["speedup_b1"]],
        ]),
    ])
    write_results("serving", payload, markdown)
    return payload


if __name__ == "__main__":
    main()
