"""Table 3 rows rerun with other seeds: do the orderings survive seed noise?

Each Table 3 row (``reproduction/reproduce.py``) is one run with the cell's
seed. This script takes runs of some of a cell's strategies made with another
``--seed`` and otherwise exactly the settings ``reproduction/table3.toml`` gives
that row (grid-tau: the table's τ; each run's ``config.json`` is checked, and
a difference is refused with the key and both values). It reads the table's
own rows from the committed ``results/table3_<dataset>.json`` (their run
directories may be gone) and checks that the table recorded the config's
current settings for them. It writes, for every seed, test Recall@20 /
NDCG@20, the best epoch and τ of each strategy and the issue's ordering checks
(``table3_report.ordering_checks``), then the mean and sample standard
deviation over seeds and the checks of the means, to
``results/seed_replicate_<dataset>_<backbone>_<protocol>.{json,md}``.

With ``--carry`` the rows of the file being replaced are kept for every
(strategy, seed) no ``--run`` gives (its strategies join those of the runs),
as ``table3_carry`` keeps Table 3 rows: run directories (``reproduction/work/``)
are not versioned, so a checkout may lack a seed's runs while that file holds
what they measured. A kept row must have been made with the settings the table
now records for its strategy (the file's own ``settings``, or for a file
written before it had them, those of the committed table written at its
``table.commit``, read from git); otherwise it is refused. Rows given both
ways are taken from the run, and their differences from the old file are
written as ``carry.rerun_differences``.

Usage:
    .venv/bin/python reproduction/seed_replicate.py --dataset gowalla --backbone mf \\
        --protocol honest --run adap-tau=reproduction/work/seed1/adap-tau \\
        --run adap-tau0=reproduction/work/seed1/adap-tau0 \\
        --run grid-tau=reproduction/work/seed1/fixed
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import reporting  # noqa: E402
from reproduction import reproduce, table3_carry, table3_report  # noqa: E402
from reproduction.paper_table3 import LABELS  # noqa: E402

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
    from adaptau_tf.trainers import resume, train

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


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=reporting.REPO, capture_output=True, text=True,
                          check=False)


def table_written_at(commit: str, path: str) -> dict[str, Any]:
    """The committed version of the Table 3 JSON ``path`` (repository-relative)
    that was written at ``commit`` (its own ``commit`` field).

    A table written at commit C is committed after C, so C's tree holds the
    table before it: every committed version of ``path`` is read, newest first.
    """
    if commit.endswith("-dirty") or commit == "unknown":
        raise ValueError(f"{path} at commit {commit!r}: not a committed table")
    revisions = _git("rev-list", "HEAD", "--", path)
    if revisions.returncode:
        raise ValueError(f"cannot list the commits of {path}: {revisions.stderr.strip()}")
    for revision in revisions.stdout.split():
        shown = _git("show", f"{revision}:{path}")
        table = json.loads(shown.stdout) if shown.returncode == 0 else {}
        if table.get("commit") == commit:
            return table
    raise ValueError(f"no committed version of {path} was written at commit {commit}")


def recorded_settings(previous: dict[str, Any]) -> dict[str, str]:
    """The table settings a previous seed-replicate file's rows were made with."""
    if "settings" in previous:
        return previous["settings"]
    table = table_written_at(previous["table"]["commit"], previous["table"]["path"])
    return table.get("settings", {})


def carried_rows(previous: dict[str, Any], settings: dict[str, str],
                 planned: dict[str, dict[str, Any]], fresh: list[dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The previous file's other-seed rows of the planned strategies that no fresh
    row replaces, marked ``kept_from``; and, for rows given both ways, the fresh
    minus the old test metrics.

    Args:
        previous: the seed-replicate JSON being replaced.
        settings: the current table's ``settings`` (row key -> settings string).
        planned: strategy -> its planned run (``reproduce.plan``).
        fresh: the rows of this invocation's ``--run`` directories.

    Raises:
        ValueError: a row to keep was made with other settings (both quoted).
    """
    old_settings = recorded_settings(previous)
    given = {(r["strategy"], r["seed"]): r for r in fresh}
    origin = f"{previous.get('commit', 'unknown')} ({previous.get('machine', 'unknown')})"
    kept, differences = [], []
    for row in previous.get("rows", []):
        strategy, seed = row["strategy"], row["seed"]
        if strategy not in planned or seed == table_seed(planned[strategy]):
            continue
        if (strategy, seed) in given:
            differences.append({"strategy": strategy, "seed": seed, **{
                m: given[(strategy, seed)][m] - row[m] for m in METRICS}})
            continue
        key = table3_report.row_key(planned[strategy])
        if old_settings.get(key) != settings.get(key):
            raise ValueError(f"{key} seed {seed} was made with {old_settings.get(key)!r}, "
                             f"the table now records {settings.get(key)!r}: rerun it")
        kept.append({**row, "kept_from": row.get("kept_from", origin)})
    return kept, differences


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


def _carry_note(rows: list[dict[str, Any]], carry: dict[str, Any] | None) -> str:
    """The footnote on rows kept from the replaced file and on the reruns' differences."""
    if carry is None:
        return ""
    origins = sorted({r["kept_from"] for r in rows if "kept_from" in r})
    note = ""
    if origins:
        note += (f"\n\n† kept from the seed-replicate file of commit {', '.join(origins)}: "
                 "the run's directory is not on this machine, and the table's settings "
                 "for it are the ones it was made with.")
    differences = carry["rerun_differences"]
    if differences:
        largest = max(abs(d[m]) for d in differences for m in METRICS)
        note += (f"\n\n{len(differences)} run(s) of that file were rerun here with the same "
                 f"seed and settings; their test metrics differ from it by at most "
                 f"{largest:.1e}.")
    return note


def _markdown(title: str, rows: list[dict[str, Any]], summary: dict[str, Any],
              carry: dict[str, Any] | None = None) -> str:
    table = reporting.markdown_table(
        ["strategy", "seed", "Recall@20", "NDCG@20", "best epoch", "epochs", "τ (final τ0)"],
        [[LABELS[r["strategy"]], f"{r['seed']}{' †' if 'kept_from' in r else ''}",
          r["test_recall@20"], r["test_ndcg@20"],
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
            f"the others from the runs named in the command.{grid_note}"
            f"{_carry_note(rows, carry)}\n")


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
    parser.add_argument("--carry", action="store_true",
                        help="keep the replaced file's rows of seeds no --run gives")
    args = parser.parse_args(argv)
    config = reproduce.load_config(args.config)
    cell = f"{args.dataset}/{args.backbone}/{args.protocol}"
    name = f"seed_replicate_{args.dataset}_{args.backbone}_{args.protocol}"
    previous = table3_carry.previous_result(name) if args.carry else None
    wanted = sorted({strategy for strategy, _ in args.run}
                    | {row["strategy"] for row in (previous or {}).get("rows", [])})
    planned = {run["strategy"]: run for run in reproduce.plan(
        config, reporting.REPO / "reproduction" / "work" / "table3", [cell])}
    unknown = [s for s in wanted if s not in planned]
    if unknown:
        raise SystemExit(f"{args.config} has no {cell} row for {unknown}; it has "
                         f"{sorted(planned)}")
    table_path = args.table or reporting.RESULTS / f"table3_{args.dataset}.json"
    table = json.loads(table_path.read_text())
    own = table_rows(table, [planned[s] for s in wanted], table_path)
    rows = [{**own[s], "seed": table_seed(planned[s])} for s in wanted]
    fresh = [replicate_row(planned[s], directory, own[s]) for s, directory in args.run]
    rows += fresh
    settings = {table3_report.row_key(planned[s]): table["settings"][
        table3_report.row_key(planned[s])] for s in wanted}
    carry = None
    if previous is not None:
        kept, differences = carried_rows(previous, settings, planned, fresh)
        rows += kept
        carry = {"from": {"commit": previous.get("commit"), "machine": previous.get("machine")},
                 "kept": [[r["strategy"], r["seed"]] for r in kept],
                 "rerun_differences": differences}
    rows.sort(key=lambda r: (wanted.index(r["strategy"]), r["seed"]))
    summary = summarise(rows)
    payload = {"dataset": args.dataset, "backbone": args.backbone, "protocol": args.protocol,
               "table": {"path": table3_report.repo_relative(table_path),
                         "commit": table["commit"]},
               "settings": settings, "rows": rows, **summary}
    if carry is not None:
        payload["carry"] = carry
    title = (f"Table 3 rows with other seeds: {args.dataset} {args.backbone}, "
             f"{args.protocol} protocol")
    reporting.write_results(name, payload, _markdown(title, rows, summary, carry))
    return payload


if __name__ == "__main__":
    main()
