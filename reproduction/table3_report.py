"""Result files of ``reproduction/reproduce.py``: ``table3_<dataset>`` and ``grid_search_*``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from benchmarks import reporting
from benchmarks.reporting import REPO, markdown_table, write_results
from reproduction import table3_carry
from reproduction.paper_table3 import LABELS, STRATEGIES, paper_numbers
from reproduction.table3_notes import config_notes, notes_markdown

PROTOCOL_TITLES = {
    "honest": "Honest protocol: validation split carved from train (10 %), early stopping "
              "on validation NDCG@20, test evaluated once",
    "paper": "Paper protocol (the reference code's): the best epoch — and the grid "
             "search's τ — chosen on the test set; for comparison with the published "
             "numbers only, not an unbiased estimate",
}
#: (left, comparison, right) of the issue's ordering targets.
ORDERING = (("adap-tau", ">=", "adap-tau0"), ("adap-tau", ">=", "grid-tau"),
            ("adap-tau", ">", "nonorm"))
TARGET_RATIO = 0.98
METRICS = ("recall@20", "ndcg@20")


def repo_relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _wall_seconds(directory: Path, module: str) -> float | None:
    """Summed wall time of the invocations of the trainer module ``module`` (``train``
    or ``grid_search``) booked in ``invocations.jsonl`` (``trainers.<module>`` before
    the trainers were installed as ``adaptau_tf.trainers``)."""
    ledger = directory / "invocations.jsonl"
    if not ledger.exists():
        return None
    entries = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    names = {f"trainers.{module}", f"adaptau_tf.trainers.{module}"}
    return sum(e["seconds"] for e in entries if e["module"] in names) or None


def _epochs_done(directory: Path) -> int:
    history = directory / "history.csv"
    if not history.exists():
        return 0
    lines = [line for line in history.read_text().splitlines()[1:] if line.strip()]
    return len({line.split(",")[0] for line in lines})


def finished_row(run: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The table row of a finished run (``directory`` holds its metrics.json)."""
    metrics = json.loads((directory / "metrics.json").read_text())
    config = json.loads((directory / "config.json").read_text())
    wall = _wall_seconds(run["dir"], "train") if directory == run["dir"] else None
    elapsed = directory / "elapsed.json"  # all processes' time (train_seconds: since 1b2be14)
    if wall is None and elapsed.exists():
        wall = json.loads(elapsed.read_text())["seconds"]
    row = _row(run, metrics, metrics, config["epochs"],
               seconds=wall if wall is not None else metrics["train_seconds"],
               train_seconds=metrics["train_seconds"],
               tau={"grid-tau": config["tau"], "nonorm": None}.get(run["strategy"],
                                                                   metrics["tau0"]),
               preset=config.get("preset"), run_dir=run["dir"])
    if config.get("patience") == 0:  # ran its budget; fewer epochs = rows history.csv lacks
        row["stopped_by"] = "budget"
    if directory != run["dir"]:
        row["reused_from"] = repo_relative(directory)
    return row


def trial_row(run: dict[str, Any]) -> dict[str, Any]:
    """The grid-tau row taken from the grid search's best trial (``retrain = false``).

    The trial trained with the row's settings at the best τ; its test metrics
    are the grid search's ``best_test`` (trials.json), its epochs and seconds
    the trial's own.
    """
    result = json.loads((run["grid_dir"] / "trials.json").read_text())
    trial = next(t for t in result["trials"] if t["trial"] == result["best_trial"])
    row = _row(run, result["best_test"], trial, result["settings"]["epochs"],
               seconds=trial["seconds"], train_seconds=trial["seconds"],
               tau=result["best_tau"], preset=run["train_args"].get("preset"),
               run_dir=run["grid_dir"])
    row["grid_trial"] = trial["trial"]
    return row


def _row(run: dict[str, Any], test: dict[str, Any], progress: dict[str, Any], budget: int,
         **fields: Any) -> dict[str, Any]:
    """A table row: test metrics from ``test`` (``test_recall@20``, ...), ``epochs``
    and ``best_epoch`` from ``progress``, then ``fields``, the paper's figures
    and ours/paper."""
    row: dict[str, Any] = {
        "backbone": run["backbone"], "strategy": run["strategy"], "protocol": run["protocol"],
        "test_recall@20": test["test_recall@20"], "test_ndcg@20": test["test_ndcg@20"],
        "epochs": progress["epochs"], "epoch_budget": budget,
        "stopped_by": "budget" if progress["epochs"] >= budget else "early stopping",
        "best_epoch": progress["best_epoch"],
        "score": _resolved(run.get("train_args", {}), "score"),
        **fields, "run_dir": repo_relative(fields["run_dir"]),
    }
    return {**row, **paper_fields(run["dataset"], row)}


def paper_fields(dataset: str, row: dict[str, Any]) -> dict[str, float]:
    """``paper_<metric>`` and ``ratio_<metric>`` (ours/paper) of a row with
    ``backbone``, ``strategy`` and ``test_<metric>``; empty where the paper has
    no figure."""
    paper = paper_numbers(dataset, row["backbone"], row["strategy"])
    if paper is None:
        return {}
    out: dict[str, float] = {}
    for metric, value in zip(METRICS, paper):
        out[f"paper_{metric}"] = value
        out[f"ratio_{metric}"] = row[f"test_{metric}"] / value
    return out


def _resolved(train_args: dict[str, Any], name: str) -> Any:
    """The run's ``--<name>`` as the trainer resolves it: explicit flag, preset, default
    (e.g. ``score``: the ranking rule, ``cosine`` or ``dot``)."""
    if name in train_args:
        return train_args[name]
    from adaptau_tf.trainers import train

    preset = ["--preset", train_args["preset"]] if train_args.get("preset") else []
    return getattr(train.build_parser().parse_args([*preset, "--output", "-"]), name)


def _epoch_budget(train_args: dict[str, Any]) -> int:
    """The run's ``--epochs`` as the trainer resolves it: explicit flag, preset, default."""
    return int(_resolved(train_args, "epochs"))


def pending_row(run: dict[str, Any], state: str) -> dict[str, Any]:
    """What an unfinished run has done so far."""
    row = {"backbone": run["backbone"], "strategy": run["strategy"],
           "protocol": run["protocol"], "state": state,
           "epochs_done": _epochs_done(run["dir"]),
           "epoch_budget": _epoch_budget(run["train_args"]), "run_dir": repo_relative(run["dir"])}
    if run["strategy"] == "grid-tau":
        row["grid_trials_done"] = len(list(run["grid_dir"].glob("tuner/trial_*/result.json")))
    return row


def find_row(rows: list[dict[str, Any]], backbone: str, protocol: str, strategy: str):
    return next((r for r in rows if (r["backbone"], r["protocol"], r["strategy"])
                 == (backbone, protocol, strategy)), None)


def ordering_checks(rows: list[dict[str, Any]], prefix: str = "test_") -> list[dict[str, Any]]:
    """The issue's ordering targets for every backbone × protocol with both rows,
    on the rows' ``<prefix><metric>`` figures (``val_``: interim validation ones)."""
    checks = []
    for backbone, protocol in sorted({(r["backbone"], r["protocol"]) for r in rows}):
        for left, op, right in ORDERING:
            a, b = (find_row(rows, backbone, protocol, s) for s in (left, right))
            if a is None or b is None:
                continue
            entry: dict[str, Any] = {"backbone": backbone, "protocol": protocol,
                                     "check": f"{left} {op} {right}"}
            for metric in METRICS:
                diff = a[f"{prefix}{metric}"] - b[f"{prefix}{metric}"]
                entry[metric] = {"left": a[f"{prefix}{metric}"], "right": b[f"{prefix}{metric}"],
                                 "diff": diff, "holds": diff > 0 if op == ">" else diff >= 0}
            checks.append(entry)
    return checks


def target_checks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adap-τ under the paper protocol against ≥ 98 % of the published numbers."""
    out = []
    for row in rows:
        if (row["strategy"], row["protocol"]) != ("adap-tau", "paper") or \
                "paper_recall@20" not in row:
            continue
        entry: dict[str, Any] = {"backbone": row["backbone"], "target_ratio": TARGET_RATIO}
        for metric in METRICS:
            entry[metric] = {"ours": row[f"test_{metric}"], "paper": row[f"paper_{metric}"],
                             "ratio": row[f"ratio_{metric}"],
                             "met": row[f"ratio_{metric}"] >= TARGET_RATIO}
        out.append(entry)
    return out


def grid_entries(dataset: str, runs: list[dict[str, Any]], rows: list[dict[str, Any]],
                 previous: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per grid search (finished or not), with its cost against one Adap-τ run;
    writes ``grid_search_<dataset>_<backbone>[_paper].{json,md,png}`` for each. A grid
    search whose grid-tau row was carried (:mod:`reproduction.table3_carry`) keeps the
    ``previous`` table's entry, and its files are left as they are."""
    out = []
    for run in runs:
        if run["strategy"] != "grid-tau":
            continue
        row = find_row(rows, run["backbone"], run["protocol"], "grid-tau")
        result = None
        if (run["grid_dir"] / "trials.json").exists():
            result = json.loads((run["grid_dir"] / "trials.json").read_text())
            entry = _grid_entry(dataset, run, result)
        elif row is not None and "carried_from" in row:
            entry = table3_carry.carried_grid(previous, run["backbone"], run["protocol"])
        else:
            entry = None
        if entry is None:
            continue
        adap = find_row(rows, run["backbone"], run["protocol"], "adap-tau")
        entry["adap_tau_seconds"] = None if adap is None else adap["seconds"]
        # Wall time against wall time (both include process start-up) when booked.
        grid_seconds = entry["wall_seconds"] or entry["total_seconds"]
        entry["ratio_to_adap_tau"] = _ratio(grid_seconds, adap)
        # The grid-tau row's own run, when the best τ is retrained rather than taken
        # from the best trial: the baseline's full price is the search plus that run.
        retrain = None if row is None or "grid_trial" in row else row["seconds"]
        entry["retrain_seconds"] = retrain
        entry["ratio_with_retrain_to_adap_tau"] = (
            None if retrain is None else _ratio(grid_seconds + retrain, adap))
        out.append(entry)
        if result is not None:
            _write_grid(entry["name"], dataset, run, result, entry)
    return out


def _grid_entry(dataset: str, run: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A finished grid search's entry (``trials.json``), before its cost ratios."""
    return {
        "backbone": run["backbone"], "protocol": run["protocol"],
        "name": f"grid_search_{dataset}_{run['backbone']}"
                + ("_paper" if run["protocol"] == "paper" else ""),
        "best_tau": result["best_tau"], "trials": len(result["trials"]),
        "grid_size": len(result["settings"]["grid"]), "complete": result["complete"],
        "per_trial_epoch_budget": result["settings"]["epochs"],
        "total_seconds": result["total_seconds"],
        "wall_seconds": _wall_seconds(run["grid_dir"], "grid_search"),
    }


def _ratio(seconds: float, adap: dict[str, Any] | None) -> float | None:
    return None if adap is None or not adap["seconds"] else seconds / adap["seconds"]


def _write_grid(name: str, dataset: str, run: dict[str, Any], result: dict[str, Any],
                entry: dict[str, Any]) -> None:
    trials = [{k: t[k] for k in ("tau", "valid_recall@20", "valid_ndcg@20", "epochs",
                                 "best_epoch", "seconds")} for t in result["trials"]]
    payload = {
        "dataset": dataset, "backbone": run["backbone"], "protocol": run["protocol"],
        "monitored_split": result["monitored_split"], "objective": result["objective"],
        "trials": trials, "best_tau": result["best_tau"], "complete": result["complete"],
        "total_seconds": result["total_seconds"], "wall_seconds": entry["wall_seconds"],
        "grid": result["settings"]["grid"],
        "per_trial_epoch_budget": result["settings"]["epochs"],
        "adap_tau_seconds": entry["adap_tau_seconds"],
        "ratio_to_adap_tau": entry["ratio_to_adap_tau"],
        "retrain_seconds": entry["retrain_seconds"],
        "ratio_with_retrain_to_adap_tau": entry["ratio_with_retrain_to_adap_tau"],
        "run_dir": repo_relative(run["grid_dir"]),
    }
    split = ("validation split" if result["monitored_split"] == "valid"
             else "TEST set (paper protocol)")
    md = [f"# Grid search over fixed τ: {dataset}, {run['backbone']} ({run['protocol']} "
          f"protocol; the 'valid' columns are measured on the {split})", "",
          markdown_table(["τ", "valid Recall@20", "valid NDCG@20", "epochs", "best epoch",
                          "seconds"],
                         [[t["tau"], t["valid_recall@20"], t["valid_ndcg@20"], t["epochs"],
                           t["best_epoch"], round(t["seconds"])] for t in trials]), "",
          f"best τ = {result['best_tau']} by {result['objective']}; "
          f"{len(trials)}/{entry['grid_size']} trials, per-trial budget "
          f"{entry['per_trial_epoch_budget']} epochs; total {result['total_seconds']:.0f} s "
          f"of training and evaluation over the trials, "
          f"{_fmt(entry['wall_seconds'], '.0f')} s wall"]
    if entry["ratio_to_adap_tau"] is not None:
        md.append(f"= {entry['ratio_to_adap_tau']:.1f} × the wall time of one Adap-τ run "
                  f"({entry['adap_tau_seconds']:.0f} s)")
        if entry["ratio_with_retrain_to_adap_tau"] is not None:
            md[-1] += (f"; with the {entry['retrain_seconds']:.0f} s retrain at the best τ "
                       f"(the grid-tau row), {entry['ratio_with_retrain_to_adap_tau']:.1f} ×")
    png = run["grid_dir"] / "sensitivity.png"
    if png.exists():
        target = reporting.RESULTS / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)
        md.append(f"\n![Recall@20 relative to the best over τ]({name}.png)")
    write_results(name, payload, "\n".join(md))


def check_label(check: str) -> str:
    left, op, right = check.split()
    return f"{LABELS[left]} {'≥' if op == '>=' else '>'} {LABELS[right]}"


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "–" if value is None else format(value, spec)


def _markdown(dataset: str, report: dict[str, Any]) -> str:
    lines = [f"# Table 3 reproduction: {dataset}", ""]
    for protocol, title in PROTOCOL_TITLES.items():
        rows = [r for r in report["rows"] if r["protocol"] == protocol]
        if not rows:
            continue
        order = {s: i for i, s in enumerate(STRATEGIES)}
        rows.sort(key=lambda r: (r["backbone"] != "mf", order[r["strategy"]]))
        lines += [f"## {title}", "", markdown_table(
            ["backbone", "strategy", "Recall@20", "paper", "ours/paper", "NDCG@20", "paper",
             "ours/paper", "epochs / budget", "best epoch", "τ (final τ0)", "seconds"],
            [[r["backbone"], LABELS[r["strategy"]]
              + (" (best grid trial)" if "grid_trial" in r else "")
              + (" †" if "carried_from" in r else ""), r["test_recall@20"],
              _fmt(r.get("paper_recall@20")), _fmt(r.get("ratio_recall@20"), ".3f"),
              r["test_ndcg@20"], _fmt(r.get("paper_ndcg@20")),
              _fmt(r.get("ratio_ndcg@20"), ".3f"),
              f"{r['epochs']} / {r['epoch_budget']}"
              + (" (budget)" if r["stopped_by"] == "budget" else ""),
              r["best_epoch"], _fmt(r["tau"], ".3f"), round(r["seconds"])] for r in rows]),
            ""]
    carried = sorted({f"{r['carried_from']} ({r['carried_machine']})"
                      for r in report["rows"] if "carried_from" in r})
    if carried:
        lines += [f"† carried from the table of commit {', '.join(carried)}: the run's "
                  "directory is not on the machine that wrote this table (reproduction/work "
                  "is not versioned), and that table recorded the same settings for it "
                  "(reproduction/table3_carry.py).", ""]
    if report["ordering"]:
        lines += ["## Ordering targets (test metrics; diff = left − right)", "",
                  markdown_table(["backbone", "protocol", "check", "Recall@20 diff", "holds",
                                  "NDCG@20 diff", "holds"],
                                 [[c["backbone"], c["protocol"], check_label(c["check"]),
                                   _fmt(c["recall@20"]["diff"], "+.4f"),
                                   "yes" if c["recall@20"]["holds"] else "**no**",
                                   _fmt(c["ndcg@20"]["diff"], "+.4f"),
                                   "yes" if c["ndcg@20"]["holds"] else "**no**"]
                                  for c in report["ordering"]]), ""]
    if report["targets"]:
        lines += [f"## Paper-protocol targets: Adap-τ ≥ {TARGET_RATIO:.0%} of the paper", "",
                  markdown_table(["backbone", "Recall@20 ours/paper", "met",
                                  "NDCG@20 ours/paper", "met"],
                                 [[t["backbone"], _fmt(t["recall@20"]["ratio"], ".3f"),
                                   "yes" if t["recall@20"]["met"] else "**no**",
                                   _fmt(t["ndcg@20"]["ratio"], ".3f"),
                                   "yes" if t["ndcg@20"]["met"] else "**no**"]
                                  for t in report["targets"]]), ""]
    if report["grid_search"]:
        lines += ["## Grid search cost against one Adap-τ run", "", markdown_table(
            ["backbone", "protocol", "best τ", "trials", "per-trial budget", "trials s",
             "wall s", "Adap-τ wall s", "ratio (wall)", "retrain s",
             "ratio with retrain"],
            [[g["backbone"], g["protocol"] + (" †" if "carried_from" in g else ""),
              g["best_tau"], f"{g['trials']}/{g['grid_size']}",
              g["per_trial_epoch_budget"], round(g["total_seconds"]),
              _fmt(g["wall_seconds"], ".0f"),
              _fmt(g["adap_tau_seconds"], ".0f"), _fmt(g["ratio_to_adap_tau"], ".1f"),
              _fmt(g["retrain_seconds"], ".0f"),
              _fmt(g["ratio_with_retrain_to_adap_tau"], ".1f")]
             for g in report["grid_search"]]), ""]
    if report["pending"]:
        lines += ["## Not finished yet", "", markdown_table(
            ["backbone", "protocol", "strategy", "state", "epochs so far / budget"],
            [[p["backbone"], p["protocol"], LABELS[p["strategy"]], p["state"],
              f"{p['epochs_done']} / {p['epoch_budget']}"] for p in report["pending"]]), ""]
    lines += notes_markdown(report["notes"])
    lines += [f"## Settings (config `{report['config']}`)", ""]
    lines += [f"* {run}: {args}" for run, args in report["settings"].items()]
    return "\n".join(lines)


def row_key(run: dict[str, Any]) -> str:
    return f"{run['backbone']}/{run['protocol']}/{run['strategy']}"


def run_settings(run: dict[str, Any]) -> str:
    """The run's settings as one string (the table's ``settings``; carried rows match it)."""
    text = " ".join(f"{k}={v}" for k, v in run["train_args"].items()
                    if k not in ("data", "backbone", "protocol"))
    if run["strategy"] == "grid-tau":
        text += ((" tau=<best τ>; grid search: " if run["grid_retrain"]
                  else "; no retrain, the best trial of the grid search: ")
                 + " ".join(run["grid_argv"][:-2]))
    return text


def write_tables(config: dict[str, Any], config_path: Path, runs: list[dict[str, Any]],
                 states: dict[int, tuple[str, Path | None]]) -> list[Path]:
    """Writes ``table3_<dataset>.{json,md}`` for every dataset with at least one run."""
    written = []
    for dataset in config["datasets"]:
        mine = [run for run in runs if run["dataset"] == dataset]
        if not mine:
            continue
        settings = {row_key(run): run_settings(run) for run in mine}
        previous = table3_carry.previous_table(dataset)
        rows, pending = [], []
        for run in mine:
            state, directory = states[id(run)]
            carried = (table3_carry.carried_row(previous, row_key(run), settings[row_key(run)])
                       if state in ("todo", "grid") and table3_carry.gone(run) else None)
            if state in ("done", "reuse", "extend"):  # extend: the finished budget so far
                rows.append(finished_row(run, directory))
            elif state == "trial":
                rows.append(trial_row(run))
            elif carried is not None:  # rows of tables older than --score ranked by cosine
                rows.append({"score": _resolved(run.get("train_args", {}), "score"),
                             **carried})
            else:
                pending.append(pending_row(run, state))
        notes = config_notes(config, dataset)
        report = {
            "dataset": dataset, "data": mine[0]["train_args"]["data"], "rows": rows,
            "pending": pending, "ordering": ordering_checks(rows),
            "targets": target_checks(rows),
            "grid_search": grid_entries(dataset, mine, rows, previous),
            "notes": notes, "protocols": PROTOCOL_TITLES, "config": repo_relative(config_path),
            "settings": settings,
        }
        written.append(write_results(f"table3_{dataset}", report,
                                     _markdown(dataset, report)))
    return written
