"""What a run's per-user temperatures τ_u track: user activity (training count).

Adap-τ gives a user with a larger mean training loss ``L(u)`` (at τ = 1) a
larger ``τ_u`` (ALGORITHM.md §3), meant to soften the softmax of noisy users.
A user's loss also grows with how many, and how diverse, their training items
are, so ``τ_u`` can end up encoding activity rather than noise. This reads the
``τ_u`` and τ0 of finished ``adaptau-train`` runs (``RUN/tau_u.npy`` and
``RUN/metrics.json``: those of the restored best weights), rebuilds
each run's training split from its ``config.json`` (the validation split of the
honest protocol included) and reports the Spearman rank correlation between
``τ_u`` and the user's training count, and the mean ``τ_u / τ0`` per activity
bucket. With ``--test-metrics`` it also rebuilds each run's model (its best
weights) and reports test Recall@20 / NDCG@20 per activity bucket, so runs
(Adap-τ against Adap-τ0) can be compared where their τ_u differ. Writes
``results/tau_u_activity_<name>.{json,md}``.

Usage:
    .venv/bin/python reproduction/tau_u_activity.py RUN [RUN ...] --name gowalla_mf \\
        [--edges 0,20,40,80] [--test-metrics]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reporting import markdown_table, write_results  # noqa: E402


def activity_profile(
    tau_u: np.ndarray, counts: np.ndarray, edges: list[int], tau0: float
) -> dict[str, Any]:
    """Rank correlation and per-bucket means of ``τ_u`` against user activity.

    Args:
        tau_u: ``[num_users]`` final per-user temperatures.
        counts: ``[num_users]`` training interactions per user.
        edges: increasing lower bounds of the activity buckets (the last bucket
            is open-ended), e.g. ``[0, 20, 40, 80]``.
        tau0: the run's global τ0 (the reference of the ratios).

    Returns:
        ``spearman`` (over users with at least one training row; None when every
        τ_u is the same, as under Adap-τ0), ``tau0``,
        and ``buckets``: ``[{"min_count", "max_count", "users", "mean_tau_u",
        "mean_ratio"}]`` with ``mean_ratio`` the bucket's mean ``τ_u`` over τ0
        (None for an empty bucket; users without training rows are left out).

    Example:
        >>> out = activity_profile(np.array([.1, .2]), np.array([1, 5]), [0, 3], 0.1)
        >>> round(out["spearman"], 6)
        1.0
    """
    tau_u = np.asarray(tau_u, dtype=np.float64).reshape(-1)
    counts = np.asarray(counts).reshape(-1)
    if tau_u.shape != counts.shape:
        raise ValueError(f"tau_u has {tau_u.size} users, counts {counts.size}")
    if list(edges) != sorted(set(edges)) or not edges:
        raise ValueError(f"edges must be strictly increasing, got {edges!r}")
    active = counts > 0
    if not (np.isfinite(tau0) and tau0 > 0):
        raise ValueError(f"tau0 must be a positive number, got {tau0!r}")
    constant = np.ptp(tau_u[active]) == 0 if active.any() else True
    rho = None if constant else float(
        scipy.stats.spearmanr(tau_u[active], counts[active]).statistic)
    means = bucket_means(tau_u[active], np.flatnonzero(active), counts, edges)
    buckets = [{"min_count": int(low), "max_count": None if high is None else high - 1,
                "users": m["users"], "mean_tau_u": m["mean"],
                "mean_ratio": None if m["mean"] is None else m["mean"] / tau0}
               for low, high, m in zip(edges, [*edges[1:], None], means)]
    return {"spearman": rho, "tau0": float(tau0), "buckets": buckets}


def bucket_means(
    values: np.ndarray, users: np.ndarray, counts: np.ndarray, edges: list[int]
) -> list[dict[str, Any]]:
    """Mean of a per-user quantity within each activity bucket.

    Args:
        values: ``[U]`` one value per evaluated user (e.g. test Recall@20).
        users: ``[U]`` the evaluated users' ids, indices into ``counts``.
        counts: ``[num_users]`` training interactions per user.
        edges: the activity buckets' lower bounds, as :func:`activity_profile`.

    Returns:
        One ``{"users", "mean"}`` per bucket (``mean`` None for an empty bucket).

    Example:
        >>> bucket_means(np.array([1., 0., .5]), np.array([0, 2, 1]),
        ...              np.array([1, 9, 8]), [0, 5])
        [{'users': 1, 'mean': 1.0}, {'users': 2, 'mean': 0.25}]
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    users = np.asarray(users).reshape(-1)
    if values.shape != users.shape:
        raise ValueError(f"values has {values.size} entries, users {users.size}")
    if users.size and (users.min() < 0 or users.max() >= len(counts)):
        raise ValueError(f"user ids must lie in [0, {len(counts)}), got "
                         f"{users.min()}..{users.max()}")
    user_counts = np.asarray(counts)[users]
    out = []
    for low, high in zip(edges, [*edges[1:], None]):
        inside = (user_counts >= low) & (user_counts < high if high is not None else True)
        out.append({"users": int(inside.sum()),
                    "mean": float(values[inside].mean()) if inside.any() else None})
    return out


def per_user_test_metrics(run: Any, k: int = 20) -> dict[str, np.ndarray]:
    """Per-user test metrics of a rebuilt run (``adaptau_tf.trainers.train.TrainedRun``):
    ``users`` ``[U]``, ``recall@k`` and ``ndcg@k`` ``[U]`` (their means are the
    run's test figures)."""
    from adaptau_tf.evaluation.metrics import per_user_metrics

    evaluator, users, top = run.test_rankings()
    metrics = per_user_metrics(top, evaluator.relevant_items, k)
    return {"users": users, **{f"{name}@{k}": metrics[f"{name}@{k}"]
                               for name in ("recall", "ndcg")}}


def profile_run(run: Path, edges: list[int], datasets: dict[str, Any] | None = None,
                with_test: bool = False) -> dict[str, Any]:
    """:func:`activity_profile` of one finished run directory.

    ``datasets`` caches the prepared data by split (data, seed, protocol,
    validation fraction), so runs on the same split load their data once.
    ``with_test`` adds ``test_users``, ``test_recall@20`` and ``test_ndcg@20`` to
    every bucket (:func:`per_user_test_metrics`) and the run's overall ``test`` means.
    """
    from adaptau_tf.trainers.runs import load_run, prepare_data

    config = json.loads((run / "config.json").read_text())
    tau_u = np.load(run / "tau_u.npy")
    tau0 = json.loads((run / "metrics.json").read_text())["tau0"]  # with tau_u.npy's τ_u
    datasets = {} if datasets is None else datasets
    split = json.dumps([config.get(k) for k in ("data", "seed", "protocol", "valid_fraction")])
    if split not in datasets:
        datasets[split] = prepare_data(config)
    counts = datasets[split].train_user_counts
    if tau_u.size != counts.size:
        raise ValueError(f"{run / 'tau_u.npy'}: {tau_u.size} users, the run's data has "
                         f"{counts.size}")
    keys = ("data", "protocol", "strategy", "loss_form", "negatives", "two_beta", "margin",
            "epochs", "lr")
    profile = {"run": str(run), "settings": {k: config.get(k) for k in keys},
               **activity_profile(tau_u, counts, edges, tau0)}
    if with_test:
        per_user = per_user_test_metrics(load_run(run, datasets[split]))
        profile["test"] = {name: float(per_user[name].mean()) for name in per_user
                           if name != "users"}
        for name in profile["test"]:
            means = bucket_means(per_user[name], per_user["users"], counts, edges)
            for bucket, mean in zip(profile["buckets"], means):
                bucket["test_users"] = mean["users"]
                bucket[f"test_{name}"] = mean["mean"]
    return profile


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _bucket(b: dict[str, Any]) -> str:
    return f"≥ {b['min_count']}" if b["max_count"] is None else f"{b['min_count']}–{b['max_count']}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="adaptau-train run directories")
    parser.add_argument("--name", required=True, help="results/tau_u_activity_<name>.*")
    parser.add_argument("--edges", default="0,20,40,80",
                        help="lower bounds of the activity buckets (training rows per user)")
    parser.add_argument("--test-metrics", action="store_true",
                        help="also test Recall@20 / NDCG@20 per bucket (rebuilds each model)")
    args = parser.parse_args(argv)
    edges = [int(x) for x in args.edges.split(",")]
    datasets: dict[str, Any] = {}
    runs = [profile_run(run, edges, datasets, args.test_metrics) for run in args.runs]
    users = [[b["users"] for b in r["buckets"]] for r in runs]
    if any(u != users[0] for u in users):
        raise ValueError(f"runs {[str(r) for r in args.runs]} bucket different user sets "
                         f"({users}): profile runs on different data under separate --name")
    header = ["run", "strategy", "loss form", "2β", "m_u", "τ0", "Spearman(τ_u, count)",
              *(f"τ_u/τ0, {_bucket(b)} ({b['users']} users)" for b in runs[0]["buckets"])]
    rows = [[Path(r["run"]).name, r["settings"]["strategy"], r["settings"]["loss_form"],
             r["settings"]["two_beta"], r["settings"]["margin"], r["tau0"],
             "–" if r["spearman"] is None else r["spearman"],
             *(_fmt(b["mean_ratio"]) for b in r["buckets"])] for r in runs]
    markdown = ("# Per-user τ_u against user activity (training rows per user)\n\n"
                + markdown_table(header, rows))
    if args.test_metrics:
        header = ["run", "strategy", "test Recall@20 / NDCG@20, all", *(
            f"{_bucket(b)} ({b['test_users']} test users)" for b in runs[0]["buckets"])]
        rows = [[Path(r["run"]).name, r["settings"]["strategy"],
                 f"{r['test']['recall@20']:.4f} / {r['test']['ndcg@20']:.4f}",
                 *(f"{_fmt(b['test_recall@20'])} / {_fmt(b['test_ndcg@20'])}"
                   for b in r["buckets"])] for r in runs]
        markdown += ("\n\n## Test Recall@20 / NDCG@20 per activity bucket\n\n"
                     + markdown_table(header, rows))
    write_results(f"tau_u_activity_{args.name}", {"runs": runs}, markdown)
    return {"runs": runs}


if __name__ == "__main__":
    main()
