"""Tables of ``reproduction/reference_jax.py`` runs (Gowalla MF on the GPU machine).

Reads the per-epoch JSON lines the runs wrote (committed under
``results/reference_jax_gowalla_mf/``: they need a GPU to regenerate) and
writes ``results/reference_jax_gowalla_mf.{json,md}``: per run the best epoch
chosen on test (the paper protocol) with the paper's figure and the ratio, the
figures at the end of the reference recipe's warm-up (epoch 100), the τ_u
spread, and for our own settings the package's figures for the same settings
(``results/table3_gowalla.json``), which check that the two implementations
agree.

Usage:
    .venv/bin/python reproduction/reference_jax_report.py --code-commit 5a4ccf3
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adaptau_tf.trainers.presets import PRESETS  # noqa: E402
from benchmarks.reporting import RESULTS, markdown_table, write_results  # noqa: E402

RUNS = RESULTS / "reference_jax_gowalla_mf"
# ALGORITHM.md §6, Gowalla MF (Recall@20, NDCG@20); a fixed τ stands for the grid search.
PAPER = {"adap-tau": (0.1838, 0.1506), "adap-tau0": (0.1754, 0.1386),
         "fixed": (0.1761, 0.1399)}
PAPER_NAME = {"adap-tau": "Adap-τ", "adap-tau0": "Adap-τ0", "fixed": "Grid Search τ"}
COMMANDS = [
    "bash reproduction/reference_jax_gpu.sh .devdata/gowalla $OUT 470",
    "python3 reproduction/reference_jax.py --data .devdata/gowalla --out $OUT/s1_NAME.jsonl "
    "--deadline-s 245 --recipe paper-mf-gowalla --seed 1 --strategy S [--tau 0.1] "
    "[--tau-u-start 100] (s1_ref_a0, s1_ref_at, s1_ref_at_late, s1_ref_fixed; four at once)",
]


def read_run(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(config, per-epoch records)`` of one run's JSON lines."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines or "config" not in lines[0]:
        raise ValueError(f"{path}:1: expected a {{'config': ...}} line, got {lines[:1]!r}")
    return lines[0]["config"], [r for r in lines[1:] if "epoch" in r]


def run_row(name: str, config: dict[str, Any], epochs: list[dict[str, Any]],
            package: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """One run's summary: best epoch on test, epoch-100 figures, τ_u spread."""
    best = max(epochs, key=lambda e: e["test_ndcg@20"])
    at100 = next((e for e in epochs if e["epoch"] == 100), None)
    paper = PAPER[config["strategy"]]
    row = {
        "run": name, "recipe": config["recipe"], "strategy": config["strategy"],
        "loss_form": config["loss_form"], "seed": config["seed"],
        "tau": config["tau"] if config["strategy"] == "fixed" else None,
        "tau_u_start": config["tau_u_start"], "epoch_budget": config["epochs"],
        "epochs": epochs[-1]["epoch"], "best_epoch": best["epoch"],
        "test_recall@20": best["test_recall@20"], "test_ndcg@20": best["test_ndcg@20"],
        "paper_recall@20": paper[0], "paper_ndcg@20": paper[1],
        "ratio_recall@20": best["test_recall@20"] / paper[0],
        "ratio_ndcg@20": best["test_ndcg@20"] / paper[1],
        "epoch100_recall@20": at100["test_recall@20"] if at100 else None,
        "epoch100_ndcg@20": at100["test_ndcg@20"] if at100 else None,
        "tau0": best.get("tau0"), "tau_u_p10": best.get("tau_u_p10"),
        "tau_u_p90": best.get("tau_u_p90"),
        "seconds_per_epoch": sum(e["seconds"] for e in epochs) / len(epochs),
    }
    if config["recipe"] == "fast-mf-gowalla":
        ours = package.get((config["strategy"], config["loss_form"]))
        if ours is not None:
            row["package_recall@20"] = ours["test_recall@20"]
            row["package_ndcg@20"] = ours["test_ndcg@20"]
            row["package_best_epoch"] = ours["best_epoch"]
    return row


def package_rows() -> dict[tuple[str, str], dict[str, Any]]:
    """The package's Gowalla MF paper-protocol rows, by (strategy, loss form): the
    form from each row's settings string, else its preset's."""
    table = json.loads((RESULTS / "table3_gowalla.json").read_text())
    out = {}
    for r in table["rows"]:
        if r["backbone"] != "mf" or r["protocol"] != "paper":
            continue
        found = re.search(r"\bloss_form=(\w+)", table["settings"][f"mf/paper/{r['strategy']}"])
        form = found.group(1) if found else PRESETS[r["preset"]].values["loss_form"]
        out[(r["strategy"], form)] = r
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--code-commit", required=True,
                   help="the commit whose reproduction/reference_jax.py the runs ran")
    args = p.parse_args(argv)
    package = package_rows()
    rows = [run_row(path.stem, *read_run(path), package) for path in sorted(RUNS.glob("*.jsonl"))]
    by_name = {r["run"]: r for r in rows}
    orderings = []
    for seed_prefix in ("", "s1_"):
        at, a0, fx = (by_name.get(seed_prefix + n) for n in ("ref_at", "ref_a0", "ref_fixed"))
        for other, label in ((a0, "Adap-τ0"), (fx, "fixed τ = 0.1")):
            if at is None or other is None:
                continue
            for when, key in (("best epoch", "test_"), ("epoch 100", "epoch100_")):
                if at[key + "recall@20"] is None or other[key + "recall@20"] is None:
                    continue
                orderings.append({
                    "seed": at["seed"], "check": f"Adap-τ − {label}", "at": when,
                    "recall@20": at[key + "recall@20"] - other[key + "recall@20"],
                    "ndcg@20": at[key + "ndcg@20"] - other[key + "ndcg@20"]})
    env = (RUNS / "env.log").read_text().splitlines()
    payload = {"runs": rows, "orderings": orderings, "code_commit": args.code_commit,
               "run_machine": " ".join(env[:2]), "run_commands": COMMANDS}
    md = ["# Gowalla MF with reproduction/reference_jax.py (JAX, GPU machine)", "",
          "Paper protocol: the best epoch (by test NDCG@20) chosen on test. Runs side by side "
          f"on one GPU ({env[1] if len(env) > 1 else '?'}; {env[0] if env else '?'}), each "
          "stopped at a wall-clock deadline, so `epochs` may be under the budget. Code: "
          f"`reproduction/reference_jax.py` of commit {args.code_commit}. Not the package: "
          "the `package` columns are the package's own runs of the same settings "
          "(table3_gowalla.json), the check that the two implementations agree.", ""]
    md.append(markdown_table(
        ["run", "recipe", "strategy", "seed", "τ_u from", "epochs / budget", "best epoch",
         "Recall@20", "NDCG@20", "paper", "ours/paper", "at epoch 100", "package",
         "τ_u p10-p90 / τ0"],
        [[r["run"], r["recipe"], r["strategy"] + (f" τ={r['tau']}" if r["tau"] else ""),
          r["seed"], r["tau_u_start"] if r["strategy"] == "adap-tau" else "–",
          f"{r['epochs']} / {r['epoch_budget']}", r["best_epoch"], r["test_recall@20"],
          r["test_ndcg@20"], f"{PAPER_NAME[r['strategy']]} {r['paper_recall@20']:.4f} / "
          f"{r['paper_ndcg@20']:.4f}",
          f"{r['ratio_recall@20']:.3f} / {r['ratio_ndcg@20']:.3f}",
          "–" if r["epoch100_recall@20"] is None else
          f"{r['epoch100_recall@20']:.4f} / {r['epoch100_ndcg@20']:.4f}",
          f"{r['package_recall@20']:.4f} / {r['package_ndcg@20']:.4f}"
          if "package_recall@20" in r else "–",
          "–" if r["tau0"] is None else
          f"{r['tau_u_p10'] / r['tau0']:.2f}-{r['tau_u_p90'] / r['tau0']:.2f} / {r['tau0']:.3f}"]
         for r in rows]))
    md += ["", "## Orderings (diff = Adap-τ − other, reference recipe, τ_u from epoch 0)", "",
           markdown_table(["seed", "check", "at", "Recall@20 diff", "NDCG@20 diff"],
                          [[o["seed"], o["check"], o["at"], f"{o['recall@20']:+.4f}",
                            f"{o['ndcg@20']:+.4f}"] for o in orderings])]
    write_results("reference_jax_gowalla_mf", payload, "\n".join(md))


if __name__ == "__main__":
    main()
