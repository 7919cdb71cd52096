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
bucket. Writes ``results/tau_u_activity_<name>.{json,md}``.

Usage:
    .venv/bin/python benchmarks/tau_u_activity.py RUN [RUN ...] --name gowalla_mf \\
        [--edges 0,20,40,80]
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
        ``spearman`` (over users with at least one training row), ``tau0``,
        and ``buckets``: ``[{"min_count", "max_count", "users", "mean_tau_u",
        "mean_ratio"}]`` with ``mean_ratio`` the bucket's mean ``τ_u`` over τ0
        (users without training rows are left out).

    Example:
        >>> activity_profile(np.array([.1, .2]), np.array([1, 5]), [0, 3], 0.1)["spearman"]
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
    rho = scipy.stats.spearmanr(tau_u[active], counts[active]).statistic
    buckets = []
    for low, high in zip(edges, [*edges[1:], None]):
        inside = active & (counts >= low) & (counts < high if high is not None else True)
        mean = float(tau_u[inside].mean()) if inside.any() else float("nan")
        buckets.append({"min_count": int(low), "max_count": None if high is None else high - 1,
                        "users": int(inside.sum()), "mean_tau_u": mean,
                        "mean_ratio": mean / tau0})
    return {"spearman": float(rho), "tau0": float(tau0), "buckets": buckets}


def profile_run(run: Path, edges: list[int],
                counts: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """:func:`activity_profile` of one finished run directory.

    ``counts`` caches the training counts per user by split (data, seed, protocol,
    validation fraction), so runs on the same split load their data once.
    """
    from trainers.train import prepare_data

    config = json.loads((run / "config.json").read_text())
    tau_u = np.load(run / "tau_u.npy")
    tau0 = json.loads((run / "metrics.json").read_text())["tau0"]  # with tau_u.npy's τ_u
    counts = {} if counts is None else counts
    split = json.dumps([config.get(k) for k in ("data", "seed", "protocol", "valid_fraction")])
    if split not in counts:
        counts[split] = prepare_data(config).train_user_counts
    if tau_u.size != counts[split].size:
        raise ValueError(f"{run / 'tau_u.npy'}: {tau_u.size} users, the run's data has "
                         f"{counts[split].size}")
    keys = ("data", "protocol", "strategy", "loss_form", "negatives", "two_beta", "margin",
            "epochs", "lr")
    return {"run": str(run), "settings": {k: config.get(k) for k in keys},
            **activity_profile(tau_u, counts[split], edges, tau0)}


def _bucket(b: dict[str, Any]) -> str:
    return f"≥ {b['min_count']}" if b["max_count"] is None else f"{b['min_count']}–{b['max_count']}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="adaptau-train run directories")
    parser.add_argument("--name", required=True, help="results/tau_u_activity_<name>.*")
    parser.add_argument("--edges", default="0,20,40,80",
                        help="lower bounds of the activity buckets (training rows per user)")
    args = parser.parse_args(argv)
    edges = [int(x) for x in args.edges.split(",")]
    counts: dict[str, np.ndarray] = {}
    runs = [profile_run(run, edges, counts) for run in args.runs]
    users = [[b["users"] for b in r["buckets"]] for r in runs]
    if any(u != users[0] for u in users):
        raise ValueError(f"runs {[str(r) for r in args.runs]} bucket different user sets "
                         f"({users}): profile runs on different data under separate --name")
    header = ["run", "strategy", "loss form", "2β", "m_u", "τ0", "Spearman(τ_u, count)",
              *(f"τ_u/τ0, {_bucket(b)} ({b['users']} users)" for b in runs[0]["buckets"])]
    rows = [[Path(r["run"]).name, r["settings"]["strategy"], r["settings"]["loss_form"],
             r["settings"]["two_beta"], r["settings"]["margin"], r["tau0"], r["spearman"],
             *(b["mean_ratio"] for b in r["buckets"])] for r in runs]
    write_results(f"tau_u_activity_{args.name}", {"runs": runs},
                  "# Per-user τ_u against user activity (training rows per user)\n\n"
                  + markdown_table(header, rows))
    return {"runs": runs}


if __name__ == "__main__":
    main()
