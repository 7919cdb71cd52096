"""Popularity calibration of trained runs: a log-popularity prior at ranking time.

L2-normalised towers score by a cosine, which has no per-item bias: whatever
popularity the model encodes must sit in a direction shared by every user.
This asks how far a trained run is from popularity-calibrated rankings by
re-ranking its all-ranking evaluation with

    score(u, i) = s(u, i) / τ_u + γ · log(max(c_i, 1))

(``s`` the run's score, cosine or No Norm's inner product, ``τ_u`` the user's
temperature from the restored model's loss layer, ``c_i`` the item's count in
the run's training split) for a grid of ``γ``, and by splitting the hits and
the top-20 lists by item-popularity group (``adaptau_tf.analysis.popularity``,
the paper's scheme: equal shares of the training interactions).

``γ`` is chosen on the run's monitored split: validation NDCG@20 for an
honest run, the test set itself for a paper-protocol run (labelled; like that
protocol's best epoch, not an unbiased estimate). The test figures of every
``γ`` are reported as a curve; for an honest run only the chosen ``γ``'s is an
unbiased estimate. ``γ = 0`` reproduces the run's own figures. This is a diagnostic,
not one of the paper's strategies: Table 3 rows never use a prior.

Writes ``results/popularity_prior_<name>.{json,md}``.

Usage:
    .venv/bin/python reproduction/popularity_prior.py --run adap-tau0=RUN \\
        [--run adap-tau=RUN ...] --name gowalla_lightgcn_paper \\
        [--gammas 0,0.1,0.2,0.3,0.5,0.7,1] [--groups 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reporting import markdown_table, write_results  # noqa: E402

SELECT = "ndcg@20"
K = 20


def prior_embeddings(
    users: np.ndarray, items: np.ndarray, user_temperatures: np.ndarray,
    item_counts: np.ndarray, gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings whose inner products are ``s/τ_u + γ·log(max(c_i, 1))``.

    Args:
        users: ``[n, d]`` user vectors.
        items: ``[m, d]`` item vectors.
        user_temperatures: ``[n]`` positive ``τ_u`` (one value repeated for a
            global τ; 1 for No Norm's plain inner product).
        item_counts: ``[m]`` non-negative training counts.
        gamma: weight of the log-popularity prior (0: the run's own ranking).

    Returns:
        ``(users [n, d+1], items [m, d+1])`` float32: ``[u/τ_u, γ]`` and
        ``[i, log(max(c_i, 1))]``.

    Example:
        >>> u, i = prior_embeddings(np.ones((1, 2)), np.eye(2), np.array([0.5]),
        ...                         np.array([1, 4]), 1.0)
        >>> (u @ i.T).round(3)
        array([[2.   , 3.386]], dtype=float32)
    """
    users = np.asarray(users, np.float64)
    items = np.asarray(items, np.float64)
    tau = np.asarray(user_temperatures, np.float64).reshape(-1)
    counts = np.asarray(item_counts).reshape(-1)
    if users.ndim != 2 or items.ndim != 2 or users.shape[1] != items.shape[1]:
        raise ValueError(f"users [n, d] and items [m, d] must share d, got shapes "
                         f"{users.shape} and {items.shape}")
    if tau.shape != (users.shape[0],) or not np.all(np.isfinite(tau) & (tau > 0)):
        raise ValueError(f"user_temperatures must be {users.shape[0]} positive numbers, got "
                         f"shape {tau.shape}, min {tau.min() if tau.size else None}")
    if counts.shape != (items.shape[0],) or (counts.size and counts.min() < 0):
        raise ValueError(f"item_counts must be {items.shape[0]} non-negative counts, got "
                         f"shape {counts.shape}, min {counts.min() if counts.size else None}")
    if not np.isfinite(gamma):
        raise ValueError(f"gamma must be finite, got {gamma!r}")
    log_pop = np.log(np.maximum(counts, 1)).astype(np.float64)
    return (np.concatenate([users / tau[:, None], np.full((len(users), 1), gamma)], 1)
            .astype(np.float32),
            np.concatenate([items, log_pop[:, None]], 1).astype(np.float32))


def select_gamma(curve: list[dict[str, Any]], split: str) -> dict[str, Any]:
    """The ``curve`` entry with the highest ``<split>_ndcg@20`` (the smaller γ on ties).

    Example:
        >>> select_gamma([{"gamma": 0, "valid_ndcg@20": .1}, {"gamma": .5,
        ...               "valid_ndcg@20": .2}], "valid")["gamma"]
        0.5
    """
    key = f"{split}_{SELECT}"
    return max(curve, key=lambda e: (e[key], -e["gamma"]))


def _group_split(top: np.ndarray, relevant: list[np.ndarray], groups: np.ndarray,
                 num_groups: int) -> dict[str, list[float]]:
    from adaptau_tf.analysis.popularity import group_metrics

    out = group_metrics(top, relevant, groups, k=K, num_groups=num_groups)
    return {"group_recall": [float(x) for x in out["group_recall"]],
            "top20_share": [float(x) for x in out["recommended"] / out["recommended"].sum()]}


def calibrate_run(run_dir: Path, gammas: list[float], num_groups: int) -> dict[str, Any]:
    """The γ curve, the chosen γ and the popularity-group split of one run.

    ``gammas`` must hold 0 (the run's own ranking, the reference of the split).
    """
    from adaptau_tf.analysis.popularity import popularity_groups
    from adaptau_tf.evaluation.metrics import ranking_metrics
    from adaptau_tf.trainers.runs import evaluators, load_run

    if 0 not in gammas:
        raise ValueError(f"--gammas must include 0 (the run's own ranking), got {gammas}")

    run = load_run(run_dir)
    config = run.config
    monitor, test = evaluators(run.data, config["protocol"])
    split = "test" if monitor is test else "valid"
    users, items = (np.asarray(t) for t in run.model.compute_representations(training=False))
    _, tau_u = run.model.task.temperatures()
    tau_u = np.asarray(tau_u, np.float64).reshape(-1)
    counts = run.data.train_item_counts
    relevant = test.relevant_items  # a fresh list on every access: read once
    curve, tops = [], {}
    for gamma in gammas:
        u, i = prior_embeddings(users, items, tau_u, counts, gamma)
        entry = {"gamma": gamma}
        if split == "valid":
            entry.update({f"valid_{k}": v for k, v in monitor.evaluate(u, i).items()
                          if k in ("recall@20", "ndcg@20")})
        _, top = test.evaluate_top_items(u, i)
        metrics = ranking_metrics(top, relevant, (K,))
        entry.update({f"test_{k}": float(metrics[k]) for k in ("recall@20", "ndcg@20")})
        curve.append(entry)
        tops[gamma] = top
    chosen = select_gamma(curve, split)
    groups = popularity_groups(counts, num_groups)
    keys = ("data", "backbone", "protocol", "strategy", "loss_form", "negatives",
            "sampling_correction", "epochs")
    return {
        "run": str(run_dir), "settings": {k: config.get(k) for k in keys},
        "selected_on": split, "curve": curve, "chosen": chosen,
        "tau_u": {"median": float(np.median(tau_u)), "p10": float(np.quantile(tau_u, .1)),
                  "p90": float(np.quantile(tau_u, .9))},
        "groups": {"at_zero": _group_split(tops[0], relevant, groups, num_groups),
                   "at_chosen": _group_split(tops[chosen["gamma"]], relevant, groups,
                                             num_groups)},
    }


def _markdown(runs: dict[str, dict[str, Any]], num_groups: int) -> str:
    first = next(iter(runs.values()))
    gammas = [e["gamma"] for e in first["curve"]]
    lines = ["# Popularity prior at ranking time: s/τ_u + γ·log(training count)", "",
             "Diagnostic, not a Table 3 strategy. γ chosen on validation NDCG@20 (honest) "
             "or on the test set (paper protocol, labelled).", "",
             "## Test Recall@20 / NDCG@20 by γ", ""]
    header = ["run", "protocol", *(f"γ = {g:g}" for g in gammas), "chosen γ (on)",
              "test at chosen γ", "gain over γ = 0"]
    rows = []
    for name, r in runs.items():
        zero = next(e for e in r["curve"] if e["gamma"] == 0)
        c = r["chosen"]
        rows.append([name, r["settings"]["protocol"],
                     *(f"{e['test_recall@20']:.4f} / {e['test_ndcg@20']:.4f}" for e in r["curve"]),
                     f"{c['gamma']:g} ({r['selected_on']})",
                     f"{c['test_recall@20']:.4f} / {c['test_ndcg@20']:.4f}",
                     f"{c['test_recall@20'] - zero['test_recall@20']:+.4f} / "
                     f"{c['test_ndcg@20'] - zero['test_ndcg@20']:+.4f}"])
    lines.append(markdown_table(header, rows))
    valid = {n: r for n, r in runs.items() if r["selected_on"] == "valid"}
    if valid:
        lines += ["", "## Validation Recall@20 / NDCG@20 by γ (honest runs)", "",
                  markdown_table(["run", *(f"γ = {g:g}" for g in gammas)], [
                      [n, *(f"{e['valid_recall@20']:.4f} / {e['valid_ndcg@20']:.4f}"
                            for e in r["curve"])] for n, r in valid.items()])]
    lines += ["", f"## By item popularity ({num_groups} groups, each ~1/{num_groups} of the "
              "training interactions; group 1 the least popular)", "",
              "Share of each group's test interactions found in the top 20, and share of "
              "the top-20 slots given to the group, at γ = 0 and at the chosen γ.", ""]
    header = ["run", "γ", *(f"group {g + 1} found / slots" for g in range(num_groups))]
    rows = []
    for name, r in runs.items():
        chosen = [] if r["chosen"]["gamma"] == 0 else [(f"{r['chosen']['gamma']:g}", "at_chosen")]
        for label, key in [("0", "at_zero"), *chosen]:
            split = r["groups"][key]
            rows.append([name, label, *(f"{f:.4f} / {s:.3f}" for f, s in
                                        zip(split["group_recall"], split["top20_share"]))])
    lines.append(markdown_table(header, rows))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=DIR",
                        help="a finished adaptau-train run directory (repeatable)")
    parser.add_argument("--name", required=True, help="results/popularity_prior_<name>.*")
    parser.add_argument("--gammas", default="0,0.1,0.2,0.3,0.5,0.7,1",
                        help="comma-separated γ values, 0 included")
    parser.add_argument("--groups", type=int, default=5, help="item-popularity groups")
    args = parser.parse_args(argv)
    try:
        gammas = sorted({float(g) for g in args.gammas.split(",")})
    except ValueError as error:
        parser.error(f"--gammas {args.gammas!r}: {error}")
    runs: dict[str, Path] = {}
    for spec in args.run:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            parser.error(f"--run expects LABEL=DIR, got {spec!r}")
        if label in runs:
            parser.error(f"--run label {label!r} given twice")
        if not (Path(path) / "config.json").is_file():
            parser.error(f"--run {spec!r}: no config.json in {path}")
        runs[label] = Path(path)
    results = {label: calibrate_run(path, gammas, args.groups) for label, path in runs.items()}
    payload = {"gammas": gammas, "groups": args.groups, "runs": results}
    write_results(f"popularity_prior_{args.name}", payload, _markdown(results, args.groups))
    return payload


if __name__ == "__main__":
    main()
