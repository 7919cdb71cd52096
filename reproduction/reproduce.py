"""Reproduce the paper's Table 3: strategies × backbones × datasets × protocols.

Everything comes from one config file (``reproduction/table3.toml``; TOML or
JSON). Each run is an ``adaptau-train`` process (``python -m
adaptau_tf.trainers.train``); the ``grid-tau`` strategy is an ``adaptau-grid-search``
over fixed τ (once per dataset × backbone × protocol) followed by a retrain
at the best τ with the table's settings, or, with ``retrain = false`` in the
cell's ``[grid]`` section (and ``test_best = true``), the best trial itself:
a trial trains with the cell's settings and seed (the grid's epochs and
patience), so with the same budget the retrain only repeats it. Two
protocols, labelled in every output:

* ``honest``: validation split carved from train, early stopping on it, the
  test set evaluated once;
* ``paper``: the reference code's: the best epoch (and, for the grid search,
  the best τ) chosen on the test set.

Runs live in ``<work_dir>/<dataset>_<backbone>/<protocol>/<strategy>/``
(the grid search in ``.../grid-search/``) and are resumable: finished runs
(``metrics.json``) are skipped, interrupted ones resume from their last epoch.
A finished run of ``reproduction/strategies.py`` (``reproduction/work/``) with the
same trainer settings is reused instead of retrained. A run directory (or grid
search) made with settings the config no longer asks for is ``stale``: it is
neither reported nor trained over until it is moved away. A run with no
directory at all (a fresh checkout) keeps the row of the table being replaced
when that table recorded the same settings (``reproduction/table3_carry.py``).

Writes ``benchmarks/results/table3_<dataset>.{json,md}`` (our Recall@20 and
NDCG@20 next to the paper's, ours/paper, epochs and wall time per run, the
ordering and target checks, the grid search's cost against one Adap-τ run)
and ``grid_search_<dataset>_<backbone>[_paper].{json,md,png}``.

Config (selectors: ``*`` or ``/``-joined names of a dataset, backbone,
protocol or strategy; more specific keys win)::

    work_dir = "reproduction/work/table3"
    backbones = ["mf"]
    [datasets]
    ml-1m = "lightgcn:{shared_data}/ml-1m"
    [protocols]
    honest = ["nonorm", "grid-tau", "adap-tau"]
    [args."*"]             # adaptau-train flags (underscores or dashes)
    patience = 10
    [args."ml-1m/mf"]
    preset = "paper-mf-ml1m"
    [grid."*"]             # adaptau-grid-search flags (on top of the run's args)
    epochs = 50
    retrain = false        # (not a flag) the grid-tau row is the best trial's test

Usage:
    .venv/bin/python reproduction/reproduce.py [--config reproduction/table3.toml]
        [--only ml-1m/mf/honest ...] [--dry-run] [--report-only] [--jobs 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reporting import REPO, SHARED_DATA  # noqa: E402
from reproduction import table3_report  # noqa: E402
from reproduction.paper_table3 import STRATEGIES  # noqa: E402

TRAIN, GRID_SEARCH = "adaptau_tf.trainers.train", "adaptau_tf.trainers.grid_search"
DEFAULT_CONFIG = REPO / "reproduction" / "table3.toml"
ATTRIBUTES = ("dataset", "backbone", "protocol", "strategy")


def load_config(path: Path) -> dict[str, Any]:
    """Reads a TOML or JSON config and checks its shape."""
    text = path.read_text()
    config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    for key in ("datasets", "backbones", "protocols"):
        if key not in config:
            raise ValueError(f"{path}: missing {key!r}")
    for protocol, strategies in config["protocols"].items():
        if protocol not in ("honest", "paper"):
            raise ValueError(f"{path}: protocol {protocol!r} is not 'honest' or 'paper'")
        unknown = set(strategies) - set(STRATEGIES)
        if unknown:
            raise ValueError(f"{path}: unknown strategies {sorted(unknown)}; use {STRATEGIES}")
    return config


def matches(selector: str, run: dict[str, str]) -> bool:
    """Whether every ``/``-part of ``selector`` is ``*`` or one of the run's names."""
    names = {run[key] for key in ATTRIBUTES if key in run}
    return all(part == "*" or part in names for part in selector.split("/"))


def merged(section: dict[str, dict[str, Any]], run: dict[str, str]) -> dict[str, Any]:
    """The section's values for a run: matching selectors, the more specific last."""
    keys = [key for key in section if matches(key, run)]
    keys.sort(key=lambda key: sum(part != "*" for part in key.split("/")))
    out: dict[str, Any] = {}
    for key in keys:
        out.update(section[key])
    return out


def flags(values: dict[str, Any]) -> list[str]:
    """Command-line flags: ``{"batch_size": 2048, "test_best": True}`` ->
    ``["--batch-size", "2048", "--test-best"]`` (False and None are left out)."""
    out: list[str] = []
    for key, value in values.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not False and value is not None:
            out += [flag, str(value)]
    return out


def plan(config: dict[str, Any], work: Path, only: list[str]) -> list[dict[str, Any]]:
    """Every run the config asks for (after ``--only``), with its command lines."""
    runs = []
    for dataset, spec in config["datasets"].items():
        data = spec.replace("{shared_data}", str(SHARED_DATA))
        for backbone in config["backbones"]:
            for protocol, strategies in config["protocols"].items():
                for strategy in strategies:
                    run = {"dataset": dataset, "backbone": backbone, "protocol": protocol,
                           "strategy": strategy}
                    if only and not any(matches(sel, run) for sel in only):
                        continue
                    cell = work / f"{dataset}_{backbone}" / protocol
                    args = {"data": data, "backbone": backbone, "protocol": protocol,
                            **merged(config.get("args", {}), run)}
                    run["dir"] = cell / strategy
                    run["train_args"] = {
                        **args, "strategy": "fixed" if strategy == "grid-tau" else strategy}
                    if strategy == "grid-tau":
                        grid = {k: v for k, v in args.items() if k in GRID_SHARED}
                        grid.update(merged(config.get("grid", {}), run))
                        run["grid_retrain"] = _retrain(grid, run)
                        run["grid_dir"] = cell / "grid-search"
                        run["grid_argv"] = flags(grid) + ["--output", str(run["grid_dir"])]
                    runs.append(run)
    return runs


def _best_trial_row(run: dict[str, Any]) -> bool:
    """Whether the run is a grid-tau row taken from the best trial (``retrain = false``)."""
    return run["strategy"] == "grid-tau" and not run["grid_retrain"]


def _retrain(grid: dict[str, Any], run: dict[str, str]) -> bool:
    """Pops the reproduce-level ``retrain`` key from a cell's grid settings."""
    retrain = grid.pop("retrain", True)
    cell = "/".join(run[key] for key in ATTRIBUTES[:3])
    if not isinstance(retrain, bool):
        raise ValueError(f"[grid] retrain for {cell} must be true or false, got {retrain!r}")
    if not retrain and not grid.get("test_best"):
        raise ValueError(f"[grid] retrain = false for {cell} needs test_best = true (the best "
                         f"trial's test is the grid-tau row); got test_best = "
                         f"{grid.get('test_best')!r}")
    return retrain


GRID_SHARED = frozenset({
    "preset", "data", "backbone", "loss_form", "negatives", "epochs", "batch_size", "lr", "l2",
    "dropout", "embedding_dim", "seed", "protocol", "valid_fraction", "eval_every", "patience",
    "remove_accidental_hits", "sampling_correction", "score",
})


def train_argv(run: dict[str, Any]) -> list[str] | None:
    """The run's ``adaptau-train`` flags; ``None`` for grid-tau before its search ends."""
    args = dict(run["train_args"])
    if run["strategy"] == "grid-tau":
        best = grid_result(run)
        if best is None or not best.get("complete") or best.get("best_tau") is None:
            return None
        args["tau"] = best["best_tau"]
    args.setdefault("verbose", 2)
    return flags(args) + ["--output", str(run["dir"])]


def grid_result(run: dict[str, Any]) -> dict[str, Any] | None:
    path = run["grid_dir"] / "trials.json"
    return json.loads(path.read_text()) if path.exists() else None


def _execute(module: str, argv: list[str], directory: Path, in_process: bool) -> None:
    """Runs ``python -m module argv`` logging to ``directory/run.log``; books its wall time."""
    directory.mkdir(parents=True, exist_ok=True)
    start = time.time()
    returncode: int | None = None
    try:
        with open(directory / "run.log", "a") as log:
            log.write(f"\n$ python -m {module} {' '.join(argv)}\n")
            log.flush()
            if in_process:
                returncode = _in_process(module, argv, log)
            else:
                process = subprocess.Popen([sys.executable, "-m", module, *argv], cwd=REPO,
                                           stdout=log, stderr=subprocess.STDOUT)
                try:
                    returncode = process.wait()
                finally:
                    if process.poll() is None:
                        process.terminate()
                        process.wait()
    finally:
        with open(directory / "invocations.jsonl", "a") as ledger:
            ledger.write(json.dumps({"module": module, "start": start,
                                     "seconds": time.time() - start,
                                     "returncode": returncode}) + "\n")
    if returncode != 0:
        raise RuntimeError(f"python -m {module} failed ({returncode}); see {directory}/run.log")


def _in_process(module: str, argv: list[str], log: Any) -> int:
    from adaptau_tf.trainers import grid_search, train

    main = {TRAIN: train.main, GRID_SEARCH: grid_search.main}[module]
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            return main(argv)
        except SystemExit as error:
            return error.code if isinstance(error.code, int) else 1


def reusable(run: dict[str, Any], argv: list[str], reuse_dir: Path) -> Path | None:
    """A finished ``reproduction/strategies.py`` run with the same trainer settings."""
    if not reuse_dir.exists():
        return None
    from adaptau_tf.trainers import resume, train

    wanted = vars(train.build_parser().parse_args(argv))
    # What a resumed run may change too (jit_compile: runs older than the flag lack it),
    # except its epoch budget; the preset is expanded into the other arguments.
    ignored = (resume.RESUMABLE_DIFFERENCES - {"epochs"}) | {"preset"}
    kind, _, rest = wanted["data"].partition(":")
    if kind == "lightgcn":
        wanted["data"] = f"lightgcn:{Path(rest).resolve()}"
    for config_path in sorted(reuse_dir.glob("*/*/config.json")):
        if run["dir"] in config_path.parents or not (config_path.parent / "metrics.json").exists():
            continue
        config = json.loads(config_path.read_text())
        if all(resume.recorded(config, k) == v for k, v in wanted.items() if k not in ignored):
            return config_path.parent
    return None


def status(run: dict[str, Any], reuse_dir: Path | None) -> tuple[str, Path | None]:
    """``(state, directory)``: done, reuse, grid (search pending), extend, trial, todo.

    ``extend``: a finished run that used its whole epoch budget while the
    config now asks for more epochs; the trainer continues it (trainers/resume.py).
    ``trial``: a grid-tau row without retrain whose search has finished; the
    directory is the grid search's. ``stale``: the run (or its grid search)
    was started with settings the config no longer asks for (:func:`stale`).
    """
    if stale(run):
        return "stale", None
    if _best_trial_row(run):
        result = grid_result(run)
        done = result is not None and result.get("complete") and "best_test" in result
        return ("trial", run["grid_dir"]) if done else ("grid", None)
    argv = train_argv(run)
    if (run["dir"] / "metrics.json").exists():
        return ("extend" if argv is not None and _extendable(run["dir"], argv)
                else "done"), run["dir"]
    if argv is None:
        return "grid", None
    found = reusable(run, argv, reuse_dir) if reuse_dir is not None else None
    return ("reuse", found) if found else ("todo", None)


def stale(run: dict[str, Any]) -> list[str]:
    """How the run's directory (and its grid search's) differs from what the
    config asks for now, as ``"key: old -> new"``; empty if it does not. A
    finished run's budget may grow (it is extended), never shrink."""
    from adaptau_tf.trainers import grid_search, resume, train

    out = []
    if run["strategy"] == "grid-tau":
        args = grid_search.build_parser().parse_args(run["grid_argv"])
        settings = grid_search.search_settings(args, grid_search.tau_grid(args))
        out += [f"grid search {change}" for change in grid_search.settings_differences(
            run["grid_dir"] / "grid_config.json", settings)]
    if _best_trial_row(run):
        return out
    argv = train_argv(run)
    if argv is None:
        return out
    config = train.run_config(train.build_parser().parse_args(argv))
    out += resume.config_differences(run["dir"], config)
    if (run["dir"] / "metrics.json").exists():
        budget, _ = resume.budget_and_ran(run["dir"])
        if config["epochs"] < budget:
            out.append(f"epochs: {budget!r} -> {config['epochs']!r} (a finished run's "
                       "budget cannot shrink)")
    return out


def _extendable(directory: Path, argv: list[str]) -> bool:
    """Whether a finished run ran its whole budget and ``argv`` asks for more epochs."""
    from adaptau_tf.trainers import resume, train

    return resume.extendable(directory, train.build_parser().parse_args(argv).epochs)


def execute_run(run: dict[str, Any], reuse_dir: Path | None, in_process: bool) -> str:
    """Brings one run to completion (grid search first for grid-tau)."""
    changed = stale(run)
    if changed:
        raise RuntimeError(
            f"{run['dir']} was run with other settings ({', '.join(changed)}); move it "
            "(and its grid search) away, e.g. to reproduction/work/discarded/, to rerun it")
    if run["strategy"] == "grid-tau":
        result = grid_result(run)
        if result is None or not result.get("complete"):
            print(f"grid search {run['grid_dir']}", flush=True)
            _execute(GRID_SEARCH, run["grid_argv"], run["grid_dir"], in_process)
    state, found = status(run, reuse_dir)
    if state in ("todo", "extend"):
        print(f"{'train' if state == 'todo' else 'extend'} {run['dir']}", flush=True)
        _execute(TRAIN, train_argv(run), run["dir"], in_process)
        state = "done"
    elif state == "reuse":
        print(f"reuse {found} for {run['dir']}", flush=True)
        run["dir"].mkdir(parents=True, exist_ok=True)
        (run["dir"] / "reused_from.txt").write_text(str(found) + "\n")
    return state


def _describe(run: dict[str, Any], reuse_dir: Path | None) -> str:
    state, found = status(run, reuse_dir)
    name = f"{run['dataset']}/{run['backbone']}/{run['protocol']}/{run['strategy']}"
    lines = [f"[{state}] {name}" + (f" <- {found}" if state == "reuse" else "")
             + (f": {', '.join(stale(run))}" if state == "stale" else "")]
    if run["strategy"] == "grid-tau":
        result = grid_result(run)
        grid_state = "done" if result and result.get("complete") else "todo"
        lines.append(f"    [{grid_state}] python -m adaptau_tf.trainers.grid_search "
                     + " ".join(run["grid_argv"]))
    if _best_trial_row(run):
        lines.append("    no retrain: the row is the best trial's test (retrain = false)")
    else:
        argv = train_argv(run)
        lines.append("    python -m adaptau_tf.trainers.train " + (
            " ".join(argv) if argv
            else "... --strategy fixed --tau <best τ of the grid search>"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--only", nargs="+", default=[],
                        help="selectors, e.g. ml-1m/mf or gowalla/lightgcn/honest/adap-tau")
    parser.add_argument("--work-dir", type=Path, default=None, help="overrides work_dir")
    parser.add_argument("--reuse-dir", type=Path, default=REPO / "reproduction" / "work",
                        help="reproduction/strategies.py runs to reuse ('' to disable)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--report-only", action="store_true",
                        help="write the tables from the finished runs; train nothing")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    parser.add_argument("--in-process", action="store_true",
                        help="run the trainers in this process (tests; no isolation)")
    args = parser.parse_args(argv)
    if args.in_process and args.jobs > 1:
        parser.error("--in-process runs one job at a time (--jobs 1)")

    config = load_config(args.config)
    work = args.work_dir or REPO / config.get("work_dir", "reproduction/work/table3")
    work = work if work.is_absolute() else REPO / work
    reuse_dir = args.reuse_dir if str(args.reuse_dir) not in ("", ".") else None
    runs = plan(config, work.resolve(), args.only)
    everything = plan(config, work.resolve(), [])  # the tables always cover the whole config
    if args.dry_run:
        print("\n".join(_describe(run, reuse_dir) for run in runs))
        return 0

    failures: list[str] = []
    if not args.report_only:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanups

        def attempt(run: dict[str, Any]) -> None:
            try:
                execute_run(run, reuse_dir, args.in_process)
            except Exception as error:  # keep going; reported at the end
                failures.append(f"{run['dir']}: {error}")
                print(f"FAILED {run['dir']}: {error}", file=sys.stderr, flush=True)

        # Grid searches first (their retrains need them), then the rest.
        ordered = sorted(runs, key=lambda run: run["strategy"] != "grid-tau")
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(attempt, ordered))
    states = {id(run): status(run, reuse_dir) for run in everything}
    table3_report.write_tables(config, args.config, everything, states)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
