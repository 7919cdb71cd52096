"""All six temperature strategies on one dataset and backbone, honest protocol.

Each strategy is one ``adaptau-train`` run (validation split carved from
train, early stopping on validation NDCG@20, test evaluated once) in its own
process, under ``reproduction/work/<dataset>_<backbone>/<strategy>/``. Runs are
resumable: rerunning the command skips finished runs and resumes interrupted
ones from their last epoch.

Writes ``results/strategies_<dataset>_<backbone>.{json,md}`` and, for
ML-1M + MF, ``results/ml1m_baselines.{json,md}`` (fixed τ and No Norm).

Usage:
    .venv/bin/python reproduction/strategies.py --data ml-1m --backbone mf [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reporting import REPO, SHARED_DATA, markdown_table, write_results  # noqa: E402

STRATEGIES = ("nonorm", "fixed", "c-tau", "cu-tau", "adap-tau0", "adap-tau")


def run_command(args: argparse.Namespace, strategy: str, output: Path) -> list[str]:
    """The ``adaptau-train`` command line of one strategy."""
    command = [
        sys.executable, "-m", "adaptau_tf.trainers.train",
        "--data", f"lightgcn:{SHARED_DATA / args.data}",
        "--backbone", args.backbone, "--strategy", strategy,
        "--negatives", args.negatives, "--epochs", str(args.epochs),
        "--batch-size", str(args.batch_size), "--lr", str(args.lr), "--l2", str(args.l2),
        "--patience", str(args.patience), "--seed", str(args.seed),
        "--loss-form", args.loss_form, "--verbose", "2", "--output", str(output),
    ]
    if strategy == "fixed":
        command += ["--tau", str(args.tau)]
    elif strategy in ("c-tau", "cu-tau"):
        command += ["--tau", str(args.initial_tau)]
    return command


def run_one(args: argparse.Namespace, strategy: str, work: Path) -> dict:
    output = work / strategy
    output.mkdir(parents=True, exist_ok=True)
    if not (output / "metrics.json").exists():
        with open(output / "train.log", "a") as log:
            subprocess.run(run_command(args, strategy, output), cwd=REPO, stdout=log,
                           stderr=subprocess.STDOUT, check=True)
    return json.loads((output / "metrics.json").read_text())


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="ml-1m", help="folder under ../shared/data")
    parser.add_argument("--backbone", default="mf", choices=("mf", "lightgcn"))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--negatives", default="sampled:1024")
    parser.add_argument("--epochs", type=int, default=300, help="upper bound; early stopping")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--tau", type=float, default=0.15, help="τ of the fixed strategy")
    parser.add_argument("--initial-tau", type=float, default=0.2, help="C-τ/Cu-τ start")
    parser.add_argument("--loss-form", default="paper", choices=("paper", "reference"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    args = parser.parse_args(argv)

    work = REPO / "reproduction" / "work" / f"{args.data}_{args.backbone}"
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = dict(zip(args.strategies,
                           pool.map(lambda s: run_one(args, s, work), args.strategies)))

    entries = {
        strategy: {
            "test_recall@20": r["test_recall@20"],
            "test_ndcg@20": r["test_ndcg@20"],
            "epochs": r["epochs"],
            "best_epoch": r["best_epoch"],
            "seconds": r["train_seconds"],
            "tau0": r["tau0"],
            "tau_u_p50": r["tau_u_quantiles"]["p50"],
        }
        for strategy, r in results.items()
    }
    settings = {k: getattr(args, k) for k in ("negatives", "batch_size", "lr", "l2", "tau",
                                              "initial_tau", "loss_form", "patience", "seed")}
    rows = [[s, e["test_recall@20"], e["test_ndcg@20"], e["epochs"], e["best_epoch"],
             e["tau0"], round(e["seconds"])] for s, e in entries.items()]
    table = markdown_table(
        ["strategy", "test Recall@20", "test NDCG@20", "epochs", "best epoch", "final τ0",
         "train s"], rows)
    title = (f"# Strategies on {args.data}, {args.backbone.upper()} (honest protocol: "
             "validation split, early stopping on validation NDCG@20, test once)\n\n")
    settings_line = "\n\nsettings: " + ", ".join(f"{k}={v}" for k, v in settings.items())
    write_results(f"strategies_{args.data}_{args.backbone}",
                  {**entries, "settings": settings, "protocol": "honest"},
                  title + table + settings_line)
    if args.data == "ml-1m" and args.backbone == "mf" and {"fixed", "nonorm"} <= set(entries):
        baselines = {
            "fixed": {"test_recall@20": entries["fixed"]["test_recall@20"],
                      "test_ndcg@20": entries["fixed"]["test_ndcg@20"], "tau": args.tau,
                      "epochs": entries["fixed"]["epochs"]},
            "nonorm": {"test_recall@20": entries["nonorm"]["test_recall@20"],
                       "test_ndcg@20": entries["nonorm"]["test_ndcg@20"],
                       "epochs": entries["nonorm"]["epochs"]},
            "settings": settings,
            "protocol": "honest",
        }
        write_results("ml1m_baselines", baselines,
                      "# ML-1M baselines, MF (honest protocol)\n\n" + markdown_table(
                          ["strategy", "test Recall@20", "test NDCG@20", "epochs"],
                          [[f"fixed τ={args.tau}", baselines["fixed"]["test_recall@20"],
                            baselines["fixed"]["test_ndcg@20"], baselines["fixed"]["epochs"]],
                           ["No Norm", baselines["nonorm"]["test_recall@20"],
                            baselines["nonorm"]["test_ndcg@20"], baselines["nonorm"]["epochs"]]])
                      + settings_line)
    return entries


if __name__ == "__main__":
    main()
