"""Table 3 rows rerun with other seeds: do the orderings survive seed noise?

Each Table 3 row (``benchmarks/reproduce.py``) is one run with the cell's
seed. This script takes runs of some of a cell's strategies made with another
``--seed`` and otherwise exactly the settings ``benchmarks/table3.toml`` gives
that row (grid-tau: the table's τ; each run's ``config.json`` is checked, and
a difference is refused with the key and both values). It reads the table's
own rows from the committed ``results/table3_<dataset>.json`` (their run
directories may be gone) and checks that the table recorded the config's
current settings for them. It writes, for every seed, test Recall@20 /
NDCG@20, the best epoch and τ of each strategy and the issue's ordering checks
(``table3_report.ordering_checks``), then the mean and sample standard
deviation over seeds and the checks of the means, to
``results/seed_replicate_<dataset>_<backbone>_<protocol>.{json,md}``.

Usage:
    .venv/bin/python benchmarks/seed_replicate.py --dataset gowalla --backbone mf \\
        --protocol honest --run adap-tau=benchmarks/work/seed1/adap-tau \\
        --run adap-tau0=benchmarks/work/seed1/adap-tau0 \\
        --run grid-tau=benchmarks/work/seed1/fixed
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import reporting, reproduce, table3_report  # noqa: E402
from benchmarks.paper_table3 import LABELS  # noqa: E402

METRICS = tuple(f"test_{m}" for m in table3_report.METRICS)


def parse_run(text: str) -> tuple[str, Path]:
    """``"adap-tau=path"`` -> ``("adap-tau", Path("path"))``."""
    strategy, sep, path = text.partition("=")
    if not sep or not strategy or not path:
        raise argparse.ArgumentTypeError(f"--run takes STRATEGY=DIRECTORY, got {text!r}")
    return strategy, Path(path)


def table_rows(table: dict[str, Any], cell: list[dict[str, Any]], path: Path
               ) -> dict[str, dict[str, Any]]:
    """The committed table's row of each planned run, refused unless the table
    recorded the run's current settings."""
    rows = {}
    for run in cell:
        key = table3_report.row_key(run)
        recorded = table.get("settings", {}).get(key)
        wanted = table3_report.run_settings(run)
        if recorded != wanted:
            raise ValueError(f"{path}: {key} was made with {recorded!r}, but the config asks "
                             f"for {wanted!r}; regenerate the table first")
        row = table3_report.find_row(table["rows"], run["backbone"], run["protocol"],
                                     run["strategy"])
        if row is None:
            raise ValueError(f"{path}: no finished {key} row (see its 'pending')")
        rows[run["strategy"]] = row
    return rows


def table_seed(run: dict[str, Any]) -> int:
    """The seed the table's row was trained with (the trainer's default unless set)."""
    return run["train_args"].get("seed", 0)


def replicate_row(run: dict[str, Any], directory: Path, table_row: dict[str, Any]
                  ) -> dict[str, Any]:
    """The row of a finished run that only differs from the table's in its seed."""
    from trainers import resume, train

    if not (directory / "metrics.json").exists():
        raise ValueError(f"{directory}: no metrics.json (the run has not finished)")
    recorded = json.loads((directory / "config.json").read_text())
    if recorded["seed"] == table_seed(run):
        raise ValueError(f"{directory}: seed {recorded['seed']} is the table's own seed")
    args = {**run["train_args"], "seed": recorded["seed"]}
    if run["strategy"] == "grid-tau":
        args["tau"] = table_row["tau"]
    config = train.run_config(train.build_parser().parse_args(
        reproduce.flags(args) + ["--output", str(directory)]))
    changed = resume.config_differences(directory, config)
    if changed:
        raise ValueError(f"{directory} differs from the table's {table3_report.row_key(run)} "
                         f"in more than its seed: {', '.join(changed)}")
    return {**table3_report.finished_row(run, directory), "seed": recorded["seed"]}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-seed ordering checks and, per strategy, the mean (and sample standard
    deviation) over seeds, with the ordering checks of the means."""
    seeds = sorted({r["seed"] for r in rows})
    strategies = sorted({r["strategy"] for r in rows})
    for strategy in strategies:
        have = sorted(r["seed"] for r in rows if r["strategy"] == strategy)
        if have != seeds:
            raise ValueError(f"{strategy} has seeds {have}, the others {seeds}: every "
                             "strategy needs a run for every seed")
    ordering = {seed: table3_report.ordering_checks([r for r in rows if r["seed"] == seed])
                for seed in seeds}
    means = []
    for strategy in strategies:
        values = {m: [r[m] for r in rows if r["strategy"] == strategy] for m in METRICS}
        means.append({"backbone": rows[0]["backbone"], "protocol": rows[0]["protocol"],
                      "strategy": strategy,
                      **{m: statistics.fmean(v) for m, v in values.items()},
                      **{f"{m}_std": statistics.stdev(v) if len(v) > 1 else None
                         for m, v in values.items()}})
    return {"seeds": seeds, "ordering": {str(s): c for s, c in ordering.items()},
            "mean": means, "mean_ordering": table3_report.ordering_checks(means)}


def _spread(mean: dict[str, Any], metric: str) -> str:
    """``"0.2703 ± 0.0018"`` (the sample standard deviation over seeds)."""
    std = mean[f"{metric}_std"]
    return f"{mean[metric]:.4f}" + ("" if std is None else f" ± {std:.4f}")


def _markdown(title: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    table = reporting.markdown_table(
        ["strategy", "seed", "Recall@20", "NDCG@20", "best epoch", "epochs", "τ (final τ0)"],
        [[LABELS[r["strategy"]], r["seed"], r["test_recall@20"], r["test_ndcg@20"],
          r["best_epoch"], r["epochs"], "–" if r["tau"] is None else f"{r['tau']:.3f}"]
         for r in rows]
        + [[LABELS[m["strategy"]], "mean ± sd", *(_spread(m, metric) for metric in METRICS),
            "", "", ""] for m in summary["mean"]])
    checks = [(str(seed), c) for seed, cs in summary["ordering"].items() for c in cs]
    checks += [("mean", c) for c in summary["mean_ordering"]]
    ordering = reporting.markdown_table(
        ["seed", "check", "Recall@20 diff", "holds", "NDCG@20 diff", "holds"],
        [[seed, table3_report.check_label(c["check"]),
          f"{c['recall@20']['diff']:+.4f}", "yes" if c["recall@20"]["holds"] else "**no**",
          f"{c['ndcg@20']['diff']:+.4f}", "yes" if c["ndcg@20"]["holds"] else "**no**"]
         for seed, c in checks])
    grid_note = (" Grid Search τ with another seed trains at the τ the table's grid search "
                 "chose (the search itself is not rerun)."
                 if any(r["strategy"] == "grid-tau" for r in rows) else "")
    return (f"# {title}\n\n{table}\n\n## Ordering targets (test metrics; diff = left − right)"
            f"\n\n{ordering}\n\nThe table's own seed comes from the committed Table 3 row; "
            f"the others from the runs named in the command.{grid_note}\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=reproduce.DEFAULT_CONFIG)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--protocol", required=True, choices=("honest", "paper"))
    parser.add_argument("--run", type=parse_run, action="append", required=True,
                        metavar="STRATEGY=DIRECTORY", help="a finished adaptau-train run")
    parser.add_argument("--table", type=Path, default=None,
                        help="the Table 3 JSON (default results/table3_<dataset>.json)")
    args = parser.parse_args(argv)
    config = reproduce.load_config(args.config)
    cell = f"{args.dataset}/{args.backbone}/{args.protocol}"
    wanted = sorted({strategy for strategy, _ in args.run})
    planned = {run["strategy"]: run for run in reproduce.plan(
        config, reporting.REPO / "benchmarks" / "work" / "table3", [cell])}
    unknown = [s for s in wanted if s not in planned]
    if unknown:
        raise SystemExit(f"{args.config} has no {cell} row for {unknown}; it has "
                         f"{sorted(planned)}")
    table_path = args.table or reporting.RESULTS / f"table3_{args.dataset}.json"
    table = json.loads(table_path.read_text())
    own = table_rows(table, [planned[s] for s in wanted], table_path)
    rows = [{**own[s], "seed": table_seed(planned[s])} for s in wanted]
    rows += [replicate_row(planned[s], directory, own[s]) for s, directory in args.run]
    rows.sort(key=lambda r: (wanted.index(r["strategy"]), r["seed"]))
    summary = summarise(rows)
    payload = {"dataset": args.dataset, "backbone": args.backbone, "protocol": args.protocol,
               "table": {"path": table3_report.repo_relative(table_path),
                         "commit": table["commit"]},
               "rows": rows, **summary}
    name = f"seed_replicate_{args.dataset}_{args.backbone}_{args.protocol}"
    title = (f"Table 3 rows with other seeds: {args.dataset} {args.backbone}, "
             f"{args.protocol} protocol")
    reporting.write_results(name, payload, _markdown(title, rows, summary))
    return payload


if __name__ == "__main__":
    main()
