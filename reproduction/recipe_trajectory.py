"""A package run next to a reference run of the same recipe, epoch by epoch.

The reference is either an official log of the authors' code (the per-epoch
CSVs parsed from their published logs: ``epoch`` 0-based, ``inv_tau0``,
``inv_tau_u_min``/``inv_tau_u_max`` (batch means of the smallest and largest
1/τ_u), ``test_recall@20``, ``test_ndcg@20``) or a ``reference_jax.py`` log.
With an official CSV the table shows 1/τ0 and the range of 1/τ_u on both
sides (the package's over all users, the reference's batch means: close, not
the same statistic), and ``--package-other-seed`` (the same package recipe
with another seed) gives the gap two package seeds show over the same epochs,
the yardstick for the gap to the reference.

``reproduction/reference_jax.py`` ran the reference code's Gowalla MF recipe
(``paper-mf-gowalla``) on a GPU; its per-epoch logs are committed under
``results/reference_jax_gowalla_mf/``. Since the per-row draws got fast enough
on 2 cores (``results/step_time.md``) the package runs the same recipe with
``adaptau-train``. This script reads that run's ``history.csv`` (0-based
epochs) and the JAX log (1-based) and writes, for the epochs both reached,
test Recall@20 / NDCG@20, τ0, μ+ and the median τ_u / τ0 (adaptive runs; a
fixed-τ run has only the metrics) side by side, the
mean and largest gap, and each side's best epoch so far, to
``results/recipe_trajectory_<name>.{json,md}``. The two use different random
streams (initialisation, negatives, dropout), so they agree in distribution,
not bit for bit: ``--other-seed`` (the JAX run with another seed) gives the
gap two seeds of the same implementation show over the same epochs.

Usage:
    .venv/bin/python reproduction/recipe_trajectory.py \\
        --run reproduction/work/recipe/at \\
        --reference benchmarks/results/reference_jax_gowalla_mf/ref_at.jsonl \\
        --other-seed benchmarks/results/reference_jax_gowalla_mf/s1_ref_at.jsonl \\
        --name gowalla_mf_adap-tau --code-commit 84ae6d1
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.reporting import markdown_table, write_results  # noqa: E402
from reproduction.reference_jax_report import read_run  # noqa: E402

METRICS = ("test_recall@20", "test_ndcg@20")
# Logged by the adaptive strategies only: a run has all of them or none.
TAU_FIELDS = ("tau0", "mu_pos", "tau_u_p50")
FIELDS = (*METRICS, *TAU_FIELDS)
# The τ range of an adaptive package run, compared with an official log's.
RANGE_FIELDS = ("tau_u_min", "tau_u_max")
# How history.csv marks a metric of an epoch that was not evaluated.
_MISSING = (None, "", "NA")


def _fields(present: dict[str, Any], where: str,
            metrics: tuple[str, ...] = METRICS) -> tuple[str, ...]:
    """The ``metrics`` and τ fields to read from a record, or a ValueError naming ``where``."""
    missing = [f for f in metrics if present.get(f) in _MISSING]
    taus = [f for f in TAU_FIELDS if present.get(f) not in _MISSING]
    if taus and len(taus) < len(TAU_FIELDS):
        missing += [f for f in TAU_FIELDS if f not in taus]
    if missing:
        raise ValueError(f"{where}: no {', '.join(missing)} (test metrics every epoch need "
                         "the paper protocol; adaptive runs log every one of "
                         f"{', '.join(TAU_FIELDS)})")
    return (*metrics, *TAU_FIELDS) if taus else metrics


def read_package(run: Path, metrics: tuple[str, ...] = METRICS,
                 skip_unevaluated: bool = False
                 ) -> tuple[dict[str, Any], dict[int, dict[str, float]]]:
    """``(config.json, {1-based epoch: fields})`` of an ``adaptau-train`` run: the
    ``metrics`` and, for an adaptive run, the τ fields.

    Every epoch must have the ``metrics`` (the paper protocol tests every
    epoch) unless ``skip_unevaluated``: then the epochs that logged none of them
    (not evaluated: ``--eval-every``, e.g. validation metrics) are left out.
    """
    history = run / "history.csv"
    if not history.exists():
        raise FileNotFoundError(f"{history} not found: is {run} an adaptau-train run?")
    config = json.loads((run / "config.json").read_text())
    epochs: dict[int, dict[str, float]] = {}
    with open(history) as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            if skip_unevaluated and all(row.get(f) in _MISSING for f in metrics):
                continue
            fields = _fields(row, f"{history}:{line}", metrics)
            fields += tuple(f for f in RANGE_FIELDS if row.get(f) not in _MISSING)
            epochs[int(row["epoch"]) + 1] = {f: float(row[f]) for f in fields}
    return config, epochs


def read_official(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, float]]]:
    """``({"source": path}, {1-based epoch: fields})`` of an official per-epoch CSV:
    the metrics, ``tau0`` (1 / ``inv_tau0``) and ``inv_tau_u_min``/``inv_tau_u_max``."""
    epochs: dict[int, dict[str, float]] = {}
    with open(path) as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            missing = [f for f in (*METRICS, "epoch", "inv_tau0") if row.get(f) in _MISSING]
            if missing:
                raise ValueError(f"{path}:{line}: no {', '.join(missing)}")
            epochs[int(row["epoch"]) + 1] = {
                **{f: float(row[f]) for f in METRICS}, "tau0": 1.0 / float(row["inv_tau0"]),
                "inv_tau_u_min": float(row["inv_tau_u_min"]),
                "inv_tau_u_max": float(row["inv_tau_u_max"])}
    if not epochs:
        raise ValueError(f"{path}: no epoch rows")
    return {"source": str(path)}, epochs


def read_reference(path: Path) -> tuple[dict[str, Any], dict[int, dict[str, float]]]:
    """``(config, {epoch: FIELDS})`` of a ``reference_jax.py`` log (read by
    :func:`reproduction.reference_jax_report.read_run`)."""
    config, records = read_run(path)
    epochs: dict[int, dict[str, float]] = {}
    for record in records:
        fields = _fields(record, f"{path}: epoch {record['epoch']}")
        epochs[int(record["epoch"])] = {f: float(record[f]) for f in fields}
    return config, epochs


def shown_epochs(common: list[int]) -> list[int]:
    """Epochs 1-5, every 10th, and the last one both reached."""
    return [e for e in common if e <= 5 or e % 10 == 0 or e == common[-1]]


def span(epochs: list[int]) -> str:
    """``"1-120"`` for sorted 1-based ``epochs``, ``"1-120 except 85"`` where some
    are missing (an epoch a run did not log)."""
    missing = sorted(set(range(1, epochs[-1] + 1)) - set(epochs))
    return f"1-{epochs[-1]}" + (f" except {', '.join(map(str, missing))}" if missing else "")


def best(epochs: dict[int, dict[str, float]], last: int,
         key: str = "test_ndcg@20") -> dict[str, float]:
    """The best epoch up to ``last`` by ``key``: test NDCG@20 (the paper protocol's
    choice) or validation NDCG@20 (the honest protocol's)."""
    epoch = max((e for e in epochs if e <= last), key=lambda e: epochs[e][key])
    return {"epoch": epoch, **epochs[epoch]}


def gap_stats(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]],
              epochs: list[int]) -> dict[str, dict[str, float]]:
    """Mean and largest ``|a − b|`` and mean ``a − b`` (a steady offset, which
    random noise averages out of) of test Recall/NDCG@20 over ``epochs``."""
    out: dict[str, dict[str, float]] = {"mean_abs_gap": {}, "max_abs_gap": {}, "mean_gap": {}}
    for f in METRICS:
        gaps = [a[e][f] - b[e][f] for e in epochs]
        out["mean_abs_gap"][f] = sum(abs(g) for g in gaps) / len(gaps)
        out["max_abs_gap"][f] = max(abs(g) for g in gaps)
        out["mean_gap"][f] = sum(gaps) / len(gaps)
    return out


def compare(package: dict[int, dict[str, float]], reference: dict[int, dict[str, float]],
            other_seed: dict[int, dict[str, float]] | None = None,
            package_other_seed: dict[int, dict[str, float]] | None = None) -> dict[str, Any]:
    """Side-by-side rows, the gaps over every common epoch and the best epochs so far.

    ``other_seed``: the same reference recipe with another seed; its gap to
    ``reference`` over the same epochs is the yardstick for the package's.
    ``package_other_seed``: the package recipe with another seed; its gap to
    ``package`` is the yardstick when the reference has one seed only.
    """
    common = sorted(set(package) & set(reference))
    if not common:
        raise ValueError("the two runs have no epoch in common")
    yardstick = {}
    if other_seed is not None:
        shared = [e for e in common if e in other_seed]
        if not shared:
            raise ValueError("the other seed's log has no epoch in common with the runs")
        yardstick = {"seed_yardstick": {"epochs": len(shared), "span": span(shared),
                                        "package": gap_stats(package, reference, shared),
                                        "reference_seeds": gap_stats(other_seed, reference,
                                                                     shared)}}
    if package_other_seed is not None:
        shared = [e for e in common if e in package_other_seed]
        if not shared:
            raise ValueError("the other package seed has no epoch in common with the runs")
        yardstick["package_seed_yardstick"] = {
            "epochs": len(shared), "span": span(shared),
            "package": gap_stats(package, reference, shared),
            "package_seeds": gap_stats(package_other_seed, package, shared)}
    return {
        "common_epochs": len(common),
        "common_span": span(common),
        "rows": [{"epoch": e, "package": package[e], "reference": reference[e]}
                 for e in shown_epochs(common)],
        **gap_stats(package, reference, common),
        **yardstick,
        "package_best": best(package, common[-1]),
        "reference_best_same_epochs": best(reference, common[-1]),
        "reference_best_all_epochs": best(reference, max(reference)),
    }


def yardstick_table(yardstick: dict[str, Any], rows: tuple[tuple[str, str], ...]) -> str:
    """Markdown: mean / largest absolute gap (mean signed gap) per metric, one row per
    ``(label, key of yardstick)``."""
    return "\n" + markdown_table(
        [f"mean / largest absolute gap (mean signed gap), epochs {yardstick['span']}",
         "test Recall@20", "test NDCG@20"],
        [[label, *(f"{yardstick[key]['mean_abs_gap'][f]:.4f} / "
                   f"{yardstick[key]['max_abs_gap'][f]:.4f} "
                   f"({yardstick[key]['mean_gap'][f]:+.4f})" for f in METRICS)]
         for label, key in rows]) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="adaptau-train run directory")
    parser.add_argument("--reference", type=Path, required=True,
                        help="reference_jax.py log (.jsonl) or an official per-epoch CSV")
    parser.add_argument("--package-other-seed", type=Path, default=None,
                        help="the package run of the same recipe with another seed")
    parser.add_argument("--name", required=True, help="results/recipe_trajectory_NAME.*")
    parser.add_argument("--other-seed", type=Path, default=None,
                        help="the reference recipe's log with another seed (the yardstick)")
    parser.add_argument("--code-commit", required=True,
                        help="the commit whose code trained --run (config.json has none)")
    args = parser.parse_args(argv)
    package_config, package = read_package(args.run)
    official = args.reference.suffix == ".csv"
    reference_config, reference = (read_official if official else read_reference)(args.reference)
    other = read_reference(args.other_seed)[1] if args.other_seed else None
    package_other = read_package(args.package_other_seed)[1] if args.package_other_seed \
        else None
    result = compare(package, reference, other, package_other)
    payload = {"run": str(args.run), "reference": str(args.reference),
               "package_config": package_config, "reference_config": reference_config,
               "package_code_commit": args.code_commit, **result}

    def cells(r: dict[str, float]) -> list[Any]:
        if official:  # 1/τ0 and the range of 1/τ_u on both sides
            if "tau0" not in r:
                return [r["test_recall@20"], r["test_ndcg@20"], "–", "–"]
            low, high = ((r["inv_tau_u_min"], r["inv_tau_u_max"]) if "inv_tau_u_min" in r
                         else (1 / r["tau_u_max"], 1 / r["tau_u_min"]) if "tau_u_max" in r
                         else (math.nan, math.nan))
            return [r["test_recall@20"], r["test_ndcg@20"], 1 / r["tau0"],
                    f"{low:.2f}-{high:.2f}"]
        if "tau0" not in r:
            return [r["test_recall@20"], r["test_ndcg@20"], "–", "–", "–"]
        return [r["test_recall@20"], r["test_ndcg@20"], r["tau0"], r["mu_pos"],
                r["tau_u_p50"] / r["tau0"]]

    side_names = ("package", "official" if official else "JAX")
    columns = ("R@20", "N@20", "1/τ0", "1/τ_u range") if official else (
        "R@20", "N@20", "τ0", "μ+", "τ_u p50/τ0")
    header = ["epoch"] + [f"{side} {f}" for side in side_names for f in columns]
    table = markdown_table(header, [[r["epoch"], *cells(r["package"]), *cells(r["reference"])]
                                    for r in result["rows"]])
    pb, rb = result["package_best"], result["reference_best_same_epochs"]
    ra = result["reference_best_all_epochs"]
    summary = markdown_table(
        ["", "epoch", "test Recall@20", "test NDCG@20"],
        [[f"package best (epochs {result['common_span']})", pb["epoch"],
          pb["test_recall@20"], pb["test_ndcg@20"]],
         [f"{side_names[1]} best (epochs {result['common_span']})", rb["epoch"],
          rb["test_recall@20"], rb["test_ndcg@20"]],
         [f"{side_names[1]} best (all {max(reference)} epochs)", ra["epoch"],
          ra["test_recall@20"],
          ra["test_ndcg@20"]]])
    gaps = ", ".join(f"{f} mean |gap| {result['mean_abs_gap'][f]:.4f}, largest "
                     f"{result['max_abs_gap'][f]:.4f}, mean signed gap "
                     f"{result['mean_gap'][f]:+.4f} (package − {side_names[1]})"
                     for f in METRICS)
    markdown = (f"# {args.name}: package run vs {side_names[1]} reference, epoch by epoch\n\n"
                f"Package run `{args.run}` ({len(package)} epochs logged: "
                f"{span(sorted(package))}; code of "
                f"{args.code_commit}), {side_names[1]} log "
                f"`{args.reference}` ({len(reference)} epochs); {result['common_epochs']} "
                f"epochs in common. Over those: {gaps}.\n\n{table}\n\n{summary}\n")
    if "seed_yardstick" in result:
        markdown += yardstick_table(result["seed_yardstick"], (
            (f"package vs JAX ({args.reference.name})", "package"),
            (f"JAX {args.other_seed.name} vs JAX {args.reference.name}", "reference_seeds")))
    if "package_seed_yardstick" in result:
        markdown += yardstick_table(result["package_seed_yardstick"], (
            (f"package vs {side_names[1]} ({args.reference.name})", "package"),
            (f"package seed {args.package_other_seed} vs package {args.run}",
             "package_seeds")))
    write_results(f"recipe_trajectory_{args.name}", payload, markdown)
    print(markdown)
    return payload


if __name__ == "__main__":
    main()
