"""``adaptau-report``: figures and a markdown summary of what Adap-τ does.

From one or more ``adaptau-train`` run directories (each labelled by its
``config.json`` strategy), optionally a grid-search output directory and a
noise-robustness result, it writes into ``--output``:

* ``magnitude_by_group.png``: mean raw item-vector norm per popularity group
  over epochs, one panel per run with a ``groups.csv`` (train with
  ``--track-groups``): No Norm vs normalised (paper Fig. 1a);
* ``recall_by_group.png``: test Recall@20 per item popularity group (10 groups
  of equal training interactions, decomposed so that the groups sum to the
  overall Recall@20), one bar per run (paper Fig. 4);
* ``tau_u_distribution.png``: τ_u histograms of the per-user strategies
  (Adap-τ, Cu-τ) with the grid-search optimum dashed (paper Fig. 5);
* ``sensitivity.png`` with ``--grid``: the grid search's own τ-sensitivity
  figure (:func:`adaptau_tf.trainers.grid_search.plot_sensitivity`);
* ``noise_global.png`` / ``noise_local_tau.png`` with ``--noise``;
* ``report.md``: test metrics with the long-tail view (item coverage@20,
  average popularity of recommended items, Gini index of exposure), the
  per-group table, τ_u quantiles and the noise tables.

Each run is rebuilt with :func:`adaptau_tf.trainers.train.load_run` and evaluated on its
test split once more (same evaluator as training).

Example:
    adaptau-report reproduction/work/ml-1m_mf/nonorm reproduction/work/ml-1m_mf/adap-tau \\
        --grid runs/grid-ml1m-mf --noise benchmarks/results/noise_ml-1m.json \\
        --output reports/ml1m
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import numpy as np

from adaptau_tf.analysis import (
    average_popularity,
    coverage_at_k,
    exposure_counts,
    gini_index,
    group_metrics,
    popularity_groups,
)
from adaptau_tf.callbacks import read_groups_csv
from adaptau_tf.trainers import report_plots, runs

#: Strategies with a per-user τ_u (drawn in the τ_u distribution figure).
PER_USER = ("adap-tau", "cu-tau")
NAMES = {"nonorm": "No Norm", "fixed": "fixed τ", "c-tau": "C-τ", "cu-tau": "Cu-τ",
         "adap-tau0": "Adap-τ0", "adap-tau": "Adap-τ"}


@dataclasses.dataclass
class RunSummary:
    """What the report needs from one run directory.

    Attributes:
        label: display name (strategy, plus the folder name when ambiguous).
        config: ``config.json``.
        metrics: ``metrics.json`` (test metrics).
        tau_u: ``[n]`` final τ_u.
        group_recall: ``[G]`` test Recall@k per popularity group (decomposed).
        group_ndcg: ``[G]`` test NDCG@k per popularity group.
        long_tail: coverage@k, average popularity and Gini of exposure.
        groups: the ``groups.csv`` curves, or None.
    """

    label: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    tau_u: np.ndarray
    group_recall: np.ndarray
    group_ndcg: np.ndarray
    long_tail: dict[str, float]
    groups: dict[str, np.ndarray] | None


def summarize_run(directory: Path, label: str, num_groups: int = 10, k: int = 20) -> RunSummary:
    """Rebuilds one finished run and computes its test-side analysis."""
    directory = Path(directory)
    metrics_path = directory / "metrics.json"
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} not found: {directory} is not a finished run")
    run = runs.load_run(directory)
    evaluator, _, top = run.test_rankings()
    counts = run.data.train_item_counts
    item_groups = popularity_groups(counts, num_groups)
    split = group_metrics(top, evaluator.relevant_items, item_groups, k, num_groups)
    tau_path = directory / "tau_u.npy"
    tau_u = (np.load(tau_path) if tau_path.exists()
             else np.asarray(run.model.task.temperatures()[1], np.float64))
    groups_csv = directory / "groups.csv"
    return RunSummary(
        label=label, config=run.config,
        metrics=json.loads(metrics_path.read_text()), tau_u=tau_u,
        group_recall=split["recall"], group_ndcg=split["ndcg"],
        long_tail={f"coverage@{k}": coverage_at_k(top, run.data.num_items, k),
                   f"avg_popularity@{k}": average_popularity(top, counts, k),
                   f"gini@{k}": gini_index(exposure_counts(top, run.data.num_items, k))},
        groups=read_groups_csv(groups_csv) if groups_csv.exists() else None,
    )


def _labels(directories: Sequence[Path]) -> list[str]:
    strategies = []
    for directory in directories:
        config = json.loads((Path(directory) / "config.json").read_text())
        strategies.append(NAMES.get(config["strategy"], config["strategy"]))
    return [s if strategies.count(s) == 1 else f"{s} ({Path(d).name})"
            for s, d in zip(strategies, directories)]


def grid_best(grid_dir: Path | None) -> tuple[float | None, list[dict[str, Any]]]:
    """``(best τ, trial rows)`` of an ``adaptau-grid-search`` output (or a JSON file)."""
    if grid_dir is None:
        return None, []
    path = Path(grid_dir)
    path = path / "trials.json" if path.is_dir() else path
    payload = json.loads(path.read_text())
    return payload.get("best_tau"), payload.get("trials", [])


def build_report(
    runs: Sequence[Path], output: Path, grid: Path | None = None,
    noise: Path | None = None, best_tau: float | None = None, k: int = 20,
) -> dict[str, Any]:
    """Writes the figures and ``report.md`` into ``output``; returns what was written."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    summaries = [summarize_run(d, label, k=k) for d, label in zip(runs, _labels(runs))]
    grid_tau, trials = grid_best(grid)
    tau_mark = best_tau if best_tau is not None else grid_tau
    # A τ given with --best-tau is not necessarily a grid-search result: say so.
    mark_label = "given fixed τ" if best_tau is not None else report_plots.GRID_MARK
    figures: dict[str, Path] = {}
    curves = {s.label: s.groups for s in summaries if s.groups is not None}
    if curves:
        figures["magnitude"] = report_plots.plot_magnitudes(
            curves, output / "magnitude_by_group.png")
    if summaries:
        figures["recall_by_group"] = report_plots.plot_group_recall(
            {s.label: s.group_recall for s in summaries}, output / "recall_by_group.png", k)
    taus = {s.label: s.tau_u for s in summaries if s.config["strategy"] in PER_USER}
    if taus:
        figures["tau_u"] = report_plots.plot_tau_distribution(
            taus, output / "tau_u_distribution.png", tau_mark, mark_label=mark_label)
    if trials:
        from adaptau_tf.trainers.grid_search import plot_sensitivity

        plot_sensitivity(trials, output / "sensitivity.png", "grid search: Recall@20 over τ",
                         chosen_tau=grid_tau)
        figures["sensitivity"] = output / "sensitivity.png"
    noise_payload = json.loads(Path(noise).read_text()) if noise else None
    if noise_payload and noise_payload.get("global"):
        figures["noise_global"] = report_plots.plot_noise_global(
            noise_payload["global"], output / "noise_global.png")
    if noise_payload and noise_payload.get("local"):
        figures["noise_local"] = report_plots.plot_noise_local(
            noise_payload["local"], output / "noise_local_tau.png")
    text = report_markdown(summaries, figures, tau_mark, noise_payload, k, mark_label)
    (output / "report.md").write_text(text)
    print(text)
    return {"figures": {key: str(path) for key, path in figures.items()},
            "report": str(output / "report.md")}


def report_markdown(summaries: Sequence[RunSummary], figures: dict[str, Path],
                    tau_mark: float | None, noise: dict[str, Any] | None, k: int,
                    mark_label: str = report_plots.GRID_MARK) -> str:
    """The ``report.md`` text."""
    lines = ["# What Adap-τ does", "", f"## Test metrics and the long tail (K = {k})", "",
             f"| run | Recall@{k} | NDCG@{k} | coverage@{k} | avg. popularity | Gini@{k} | "
             "τ0 | median τ_u |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summaries:
        lt = s.long_tail
        lines.append(
            f"| {s.label} | {s.metrics[f'test_recall@{k}']:.4f} | "
            f"{s.metrics[f'test_ndcg@{k}']:.4f} | {lt[f'coverage@{k}']:.3f} | "
            f"{lt[f'avg_popularity@{k}']:.1f} | {lt[f'gini@{k}']:.3f} | "
            f"{s.metrics['tau0']:.4f} | {np.median(s.tau_u):.4f} |")
    lines += ["", "Coverage: share of items recommended to at least one test user; average "
              "popularity: mean training count of the recommended items; Gini of how often each "
              "item is recommended (0 = even).", ""]
    if summaries:
        groups = len(summaries[0].group_recall)
        lines += [f"## Test Recall@{k} by item popularity group", "",
                  f"{groups} groups of equal training interactions, 0 = least popular; each "
                  f"cell is the group's share of Recall@{k} (rows sum to Recall@{k}).", "",
                  "| run | " + " | ".join(str(g) for g in range(groups)) + " |",
                  "|---|" + "---:|" * groups]
        lines += [f"| {s.label} | " + " | ".join(f"{v:.4f}" for v in s.group_recall) + " |"
                  for s in summaries]
        lines += ["", "![Recall by popularity group](recall_by_group.png)", ""]
    if "magnitude" in figures:
        lines += ["## Item embedding magnitude by popularity group", "",
                  "Mean raw (un-normalised) item-vector norm per group over training.", "",
                  "![magnitude by group](magnitude_by_group.png)", ""]
    if "tau_u" in figures:
        mark = "" if tau_mark is None else f" Dashed: the {mark_label} = {tau_mark:g}."
        lines += ["## Distribution of τ_u", "", "| run | p10 | p50 | p90 |", "|---|---:|---:|---:|"]
        for s in summaries:
            if s.config["strategy"] in PER_USER:
                quantiles = np.quantile(s.tau_u, [0.1, 0.5, 0.9])
                lines.append(f"| {s.label} | " + " | ".join(f"{q:.4f}" for q in quantiles) + " |")
        lines += ["", mark.strip(), "", "![tau_u distribution](tau_u_distribution.png)", ""]
    if "sensitivity" in figures:
        lines += ["## τ sensitivity (grid search)", "", "![sensitivity](sensitivity.png)", ""]
    if noise:
        lines += ["## Robustness to false positives", "", report_plots.noise_markdown(noise), ""]
        lines += [f"![{name}]({figures[name].name})" for name in ("noise_global", "noise_local")
                  if name in figures]
    return "\n".join(lines).rstrip() + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``adaptau-report``."""
    p = argparse.ArgumentParser(prog="adaptau-report", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="adaptau-train run directories")
    p.add_argument("--grid", default=None,
                   help="adaptau-grid-search output directory (or its trials.json / a "
                        "grid_search_*.json result) for the optimum τ and the sensitivity plot")
    p.add_argument("--best-tau", type=float, default=None, help="τ to mark instead of --grid's")
    p.add_argument("--noise", default=None, help="a reproduction/noise.py result JSON")
    p.add_argument("-k", type=int, default=20, help="cut-off")
    p.add_argument("--output", required=True, help="directory for the PNGs and report.md")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point."""
    args = build_parser().parse_args(argv)
    build_report([Path(r) for r in args.runs], Path(args.output),
                 grid=None if args.grid is None else Path(args.grid),
                 noise=None if args.noise is None else Path(args.noise),
                 best_tau=args.best_tau, k=args.k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
