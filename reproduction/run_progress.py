"""Table 3 runs still in progress, compared at the epochs all of them reached.

Long Table 3 runs (Gowalla LightGCN with the reference recipe: ~150 epochs of
~60-250 s on 2 cores) train across sessions; ``reproduction/reproduce.py`` only
tables finished ones. This script reads the ``history.csv`` of unfinished (or
finished) ``adaptau-train`` runs of one dataset × backbone under the paper
protocol, which tests every epoch, and compares them at the same budget: each
run's best epoch by test NDCG@20 (the paper protocol's choice) among the first
``E`` epochs, ``E`` the fewest any unfinished run has logged (a finished run,
one with ``metrics.json``, will train no more: one stopped before ``E`` counts
with all its epochs; when every run is finished ``E`` is the most any logged, so
each run is at its best). It writes those, the issue's ordering checks
(``table3_report.ordering_checks``) and Adap-τ against 98 % of the paper at that
budget, each run's best so far and a trajectory (test Recall@20 / NDCG@20, τ0
and μ+ where logged) to
``results/progress_<dataset>_<backbone>_paper[_<name>].{json,md}``.

``--protocol honest`` compares honest-protocol runs the same way on what they
log while training: validation Recall@20 / NDCG@20 at the epochs they evaluate
(every ``--eval-every``), each run at its best evaluated epoch by validation
NDCG@20 (the epoch its test would use) among the first ``E``; the ordering
checks are on those validation figures (the test set is evaluated once, at the
end) and there is no 98 % target (a paper-protocol one). It writes
``results/progress_<dataset>_<backbone>_honest[_<name>].{json,md}``.

These are interim figures at a cut budget, not Table 3 rows; the runs'
settings (``config.json``) are listed and must agree on data, backbone and
protocol.

Usage:
    .venv/bin/python reproduction/run_progress.py --dataset gowalla --backbone lightgcn \\
        --run adap-tau=reproduction/work/lgcn_recipe/paper/adap-tau \\
        --run adap-tau0=reproduction/work/lgcn_recipe/paper/adap-tau0 \\
        --run grid-tau=reproduction/work/lgcn_recipe/paper/fixed \\
        --run nonorm=reproduction/work/lgcn_recipe/paper/nonorm --name recipe
    .venv/bin/python reproduction/run_progress.py --dataset gowalla --backbone lightgcn \\
        --protocol honest \\
        --run adap-tau=reproduction/work/table3/gowalla_lightgcn/honest/adap-tau \\
        --run nonorm=reproduction/work/lgcn_recipe/honest/nonorm --name recipe
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import reporting  # noqa: E402
from reproduction import recipe_trajectory, table3_report  # noqa: E402
from reproduction.paper_table3 import LABELS  # noqa: E402
from reproduction.seed_replicate import parse_run  # noqa: E402

#: What each protocol's runs are compared on (history.csv's column prefix): test
#: metrics every epoch (paper), validation metrics at the evaluated epochs (honest).
PREFIX = {"paper": "test_", "honest": "val_"}


def protocol_metrics(protocol: str) -> tuple[str, ...]:
    """``(<prefix>recall@20, <prefix>ndcg@20)`` of the protocol."""
    return tuple(PREFIX[protocol] + metric for metric in table3_report.METRICS)
#: The trainer's strategy behind each Table 3 label.
TRAINER_STRATEGY = {**{s: s for s in LABELS}, "grid-tau": "fixed"}
#: Settings shown per run (the ones a Table 3 row's strategies may differ in).
SHOWN = ("preset", "strategy", "tau", "loss_form", "negatives", "remove_accidental_hits",
         "sampling_correction", "warmup_epochs", "lr", "l2", "two_beta", "epochs", "patience",
         "eval_every", "seed")


def read_run(label: str, directory: Path, dataset: str, backbone: str,
             protocol: str = "paper") -> tuple[dict[str, Any], dict[int, dict[str, float]]]:
    """``(config, {1-based epoch: metrics})`` of one run, checked against its label
    and ``protocol`` (honest: only the epochs it evaluated)."""
    if label not in LABELS:
        raise ValueError(f"--run {label}=...: unknown strategy {label!r}; "
                         f"one of {', '.join(LABELS)}")
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found: is {directory} an adaptau-train run?")
    config = json.loads(config_path.read_text())
    wanted = {"protocol": protocol, "backbone": backbone,
              "strategy": TRAINER_STRATEGY[label]}
    for key, value in wanted.items():
        if config.get(key) != value:
            raise ValueError(f"{config_path}: {key} is {config.get(key)!r}, "
                             f"but --run {label}= needs {value!r}")
    if Path(str(config.get("data", "")).split(":", 1)[-1]).name != dataset:
        raise ValueError(f"{config_path}: data {config.get('data')!r} is "
                         f"not the {dataset!r} dataset")
    config, epochs = recipe_trajectory.read_package(directory, protocol_metrics(protocol),
                                                    skip_unevaluated=protocol == "honest")
    if not epochs:
        raise ValueError(f"{directory / 'history.csv'}: no epoch "
                         f"{'logged' if protocol == 'paper' else 'evaluated'} yet")
    return config, epochs


def logged_epochs(directory: Path) -> int:
    """Epochs trained so far, evaluated or not: the last 0-based epoch of
    ``history.csv`` plus one (a resumed run may log an epoch twice)."""
    with open(directory / "history.csv") as handle:
        return max((int(row["epoch"]) + 1 for row in csv.DictReader(handle)), default=0)


def train_seconds(directory: Path) -> float | None:
    """Training time booked so far across resumptions (``elapsed.json``)."""
    elapsed = directory / "elapsed.json"
    return json.loads(elapsed.read_text())["seconds"] if elapsed.exists() else None


def common_epochs(logged: dict[str, tuple[int, bool]]) -> int:
    """The budget ``E`` the runs are compared at, from ``{label: (epochs logged,
    finished)}``: the fewest epochs of an unfinished run, or, when all are
    finished, the most any run logged (each run at its best). A finished run
    stopped earlier (early stopping, or cut by relaunching it with a smaller
    ``--epochs``) does not hold the others back."""
    unfinished = [count for count, finished in logged.values() if not finished]
    return min(unfinished) if unfinished else max(count for count, _ in logged.values())


def progress(dataset: str, backbone: str, runs: list[tuple[str, Path]],
             protocol: str = "paper") -> dict[str, Any]:
    """The report's payload (see the module docstring)."""
    labels = [label for label, _ in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"each strategy at most once, got {labels}")
    metrics = protocol_metrics(protocol)
    read = {label: (directory, *read_run(label, directory, dataset, backbone, protocol))
            for label, directory in runs}
    finished = {label: (directory / "metrics.json").exists() for label, directory in runs}
    logged = {label: logged_epochs(directory) for label, directory in runs}
    common = common_epochs({label: (logged[label], finished[label]) for label in read})
    entries, rows = [], []
    for label, (directory, config, epochs) in read.items():
        if min(epochs) > common:
            raise ValueError(f"--run {label}={directory}: no epoch evaluated among the "
                             f"first {common} (its first is {min(epochs)}); wait for it")
        at_common = recipe_trajectory.best(epochs, common, metrics[1])
        so_far = recipe_trajectory.best(epochs, max(epochs), metrics[1])
        row = {"backbone": backbone, "protocol": protocol, "strategy": label,
               **{m: at_common[m] for m in metrics}}
        if protocol == "paper":
            row.update(table3_report.paper_fields(dataset, row))
        rows.append(row)
        entries.append({
            "strategy": label, "run_dir": table3_report.repo_relative(directory),
            "settings": {k: config.get(k) for k in SHOWN},
            "epochs_logged": logged[label], "epochs_evaluated": len(epochs),
            "epoch_budget": config.get("epochs"), "finished": finished[label],
            "train_seconds": train_seconds(directory),
            "at_common": {"epoch": at_common["epoch"], **{m: at_common[m] for m in metrics}},
            **{k: v for k, v in row.items() if k.startswith(("paper_", "ratio_"))},
            "best_so_far": {"epoch": so_far["epoch"], **{m: so_far[m] for m in metrics}},
            "last": {"epoch": max(epochs), **epochs[max(epochs)]},
        })
    evaluated = sorted({e for _, _, epochs in read.values() for e in epochs if e <= common})
    shown = recipe_trajectory.shown_epochs(evaluated)
    trajectory = [{"epoch": e, **{label: epochs.get(e) for label, (_, _, epochs) in read.items()}}
                  for e in shown]
    return {"dataset": dataset, "backbone": backbone, "protocol": protocol,
            "metrics": list(metrics), "common_epochs": common, "runs": entries,
            "ordering_at_common": table3_report.ordering_checks(rows, PREFIX[protocol]),
            "target_at_common": table3_report.target_checks(rows),
            "trajectory": trajectory}


def _pair(values: dict[str, Any] | None, metrics: tuple[str, ...]) -> str:
    if values is None:
        return "–"
    return " / ".join(format(values[m], ".4f") for m in metrics)


def markdown(payload: dict[str, Any]) -> str:
    """The report as markdown."""
    common, protocol = payload["common_epochs"], payload["protocol"]
    metrics = tuple(payload["metrics"])
    split = "test" if protocol == "paper" else "validation"
    all_finished = all(run["finished"] for run in payload["runs"])
    title = "Finished runs" if all_finished else "Runs in progress"
    out = [f"# {title}: {payload['dataset']} {payload['backbone']}, {protocol} protocol",
           "", f"Interim figures, not Table 3 rows: every run compared at its best "
           f"{'' if protocol == 'paper' else 'evaluated '}epoch (by {split} NDCG@20) among "
           f"the first {common} epochs, "
           + ("the most any run logged, every run having finished"
              if all_finished else
              "the fewest any unfinished run has logged (a finished run that stopped "
              "earlier counts with all its epochs)")
           + f". {split.capitalize()} "
           "Recall@20 / NDCG@20" + ("." if protocol == "paper" else
                                    ": the test set is evaluated once, when a run ends."), ""]
    rows = []
    for run in payload["runs"]:
        ratio = (" / ".join(f"{run[f'ratio_{m}']:.3f}" for m in table3_report.METRICS)
                 if "ratio_recall@20" in run else "–")
        label = LABELS[run["strategy"]]
        if run["settings"].get("tau") is not None and run["strategy"] == "grid-tau":
            label += f" (τ = {run['settings']['tau']:g})"
        rows.append([label, run["at_common"]["epoch"],
                     _pair(run["at_common"], metrics), ratio,
                     f"{run['epochs_logged']} / {run['epoch_budget']}"
                     + (" (finished)" if run["finished"] else ""),
                     f"{_pair(run['best_so_far'], metrics)} "
                     f"(epoch {run['best_so_far']['epoch']})",
                     "–" if run["train_seconds"] is None else f"{run['train_seconds']:.0f}"])
    out += [reporting.markdown_table(
        ["strategy", f"best epoch ≤ {common}", "Recall@20 / NDCG@20", "ours/paper",
         "epochs logged / budget", "best so far", "train s"], rows), ""]
    checks = [[table3_report.check_label(c["check"]),
               *(f"{c[m]['diff']:+.4f} ({'holds' if c[m]['holds'] else '**no**'})"
                 for m in table3_report.METRICS)] for c in payload["ordering_at_common"]]
    checks += [[f"Adap-τ ≥ {t['target_ratio']:.0%} of the paper",
                *(f"{t[m]['ratio']:.3f} ({'met' if t[m]['met'] else '**no**'})"
                  for m in table3_report.METRICS)] for t in payload["target_at_common"]]
    if checks:
        out += [f"## Checks at {common} epochs ({split} figures)", "",
                reporting.markdown_table(["check", "Recall@20", "NDCG@20"], checks), ""]
    labels = [run["strategy"] for run in payload["runs"]]
    traj = [[t["epoch"], *(_pair(t[label], metrics) + (
        f" (τ0 {t[label]['tau0']:.4f}, μ+ {t[label]['mu_pos']:+.3f})"
        if t[label] and "tau0" in t[label] else "") for label in labels)]
            for t in payload["trajectory"]]
    out += [f"## Trajectory ({split} Recall@20 / NDCG@20 per "
            f"{'epoch' if protocol == 'paper' else 'evaluated epoch'})", "",
            reporting.markdown_table(["epoch", *(LABELS[s] for s in labels)], traj), "",
            "## Settings", ""]
    out += [f"* {LABELS[r['strategy']]}: `{r['run_dir']}`: "
            + ", ".join(f"{k}={v}" for k, v in r["settings"].items()) for r in payload["runs"]]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--backbone", required=True, choices=("mf", "lightgcn"))
    parser.add_argument("--run", action="append", type=parse_run, required=True,
                        metavar="STRATEGY=DIRECTORY")
    parser.add_argument("--protocol", default="paper", choices=sorted(PREFIX),
                        help="paper: test figures every epoch; honest: validation figures "
                        "at the evaluated epochs")
    parser.add_argument("--name", default="", help="suffix of the result files")
    args = parser.parse_args(argv)
    payload = progress(args.dataset, args.backbone, args.run, args.protocol)
    name = (f"progress_{args.dataset}_{args.backbone}_{args.protocol}"
            + (f"_{args.name}" if args.name else ""))
    reporting.write_results(name, payload, markdown(payload))
    return payload


if __name__ == "__main__":
    main()
