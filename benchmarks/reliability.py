"""Hostile inputs and injected faults against the CLIs and the export, with outcomes.

Every case runs the installed commands (``python -m adaptau_tf.trainers.train``,
``adaptau_tf.export.saved_model``, ``adaptau_tf.export.check``) in fresh
processes on a tiny generated LightGCN-format data set, and checks the exit
status, the one-line message and the state left behind: no run directory that
would refuse the corrected command, no published export or finished run lost.
Writes ``results/reliability.{json,md}``; ``tests/reliability/`` runs the same
cases (:data:`CASES`) one by one.

Usage:
    .venv/bin/python benchmarks/reliability.py [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN = [sys.executable, "-m", "adaptau_tf.trainers.train"]
EXPORT = [sys.executable, "-m", "adaptau_tf.export.saved_model"]
CHECK = [sys.executable, "-m", "adaptau_tf.export.check"]
SMALL = ["--epochs", "2", "--batch-size", "64", "--embedding-dim", "8",
         "--negatives", "sampled:16", "--verbose", "0"]


def run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs a command quietly; stdout and stderr captured as text."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def write_data(folder: Path, users: int = 60, items: int = 40, seed: int = 0,
               train_rows: int = 6) -> Path:
    """A LightGCN-format data set: ``train_rows`` training and 2 test items per user."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train, test = [], []
    for user in range(users):
        chosen = rng.choice(items, size=train_rows + 2, replace=False)
        train.append(" ".join(map(str, [user, *chosen[:train_rows]])))
        test.append(" ".join(map(str, [user, *chosen[train_rows:]])))
    (folder / "train.txt").write_text("\n".join(train) + "\n")
    (folder / "test.txt").write_text("\n".join(test) + "\n")
    return folder


def digest(folder: Path) -> str:
    """sha256 over every file under ``folder`` (names and contents)."""
    total = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        total.update(str(path.relative_to(folder)).encode())
        total.update(path.read_bytes())
    return total.hexdigest()


@dataclass
class Outcome:
    """What a case observed, and whether it is what was expected."""

    observed: str
    ok: bool
    data_lost: int = 0


@dataclass
class Case:
    """One hostile input or injected fault."""

    name: str
    kind: str  # "input" or "fault"
    expected: str
    check: Callable[[Path], Outcome]


def bad_argument(flag: str, value: str, message: str) -> Case:
    """``adaptau-train`` with one bad value: exit 2, one line naming the flag, no run dir."""

    def check(work: Path) -> Outcome:
        data = write_data(work / "data")
        out = work / "run"
        done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, flag, value,
                    "--output", str(out)], work)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        ok = done.returncode == 2 and message in last and not out.exists()
        return Outcome(f"exit {done.returncode}: {last[-160:]}"
                       + ("; run dir left" if out.exists() else ""), ok)

    return Case(f"{flag} {value}", "input", f"exit 2, '{message}', no run directory", check)


def bad_data(name: str, lines: list[str], message: str, train_rows: int = 6) -> Case:
    """A malformed ``train.txt``: exit 2 and a message naming the file and line."""

    def check(work: Path) -> Outcome:
        data = write_data(work / "data", train_rows=train_rows)
        if lines:
            with open(data / "train.txt", "ab") as handle:
                for line in lines:
                    handle.write(line.encode("cp1252") + b"\n")
        out = work / "run"
        done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--output", str(out)], work)
        last = (done.stderr.strip().splitlines() or [""])[-1]
        tracebacks = "Traceback" in done.stderr
        ok = (done.returncode == 2 and message in last and not tracebacks
              and not out.exists())
        return Outcome(f"exit {done.returncode}: {last[-200:]}", ok)

    return Case(name, "input", f"exit 2, '{message}', one line", check)


def honest_without_validation(work: Path) -> Outcome:
    data = write_data(work / "data", train_rows=1)  # one row per user: nothing to hold out
    out = work / "run"
    done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--output", str(out)], work)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    ok = done.returncode == 2 and "empty validation split" in last and not out.exists()
    return Outcome(f"exit {done.returncode}: {last[-200:]}", ok)


def corrected_rerun(work: Path) -> Outcome:
    data = write_data(work / "data")
    out = work / "run"
    first = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--tau", "0", "--output",
                 str(out)], work)
    second = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--tau", "0.2", "--output",
                  str(out)], work)
    ok = first.returncode == 2 and second.returncode == 0 and (out / "metrics.json").exists()
    return Outcome(f"bad start exit {first.returncode}, corrected run exit "
                   f"{second.returncode}", ok)


def small_catalogue(work: Path) -> Outcome:
    data = write_data(work / "data", users=40, items=30, train_rows=5)
    out = work / "run"
    done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--output", str(out)], work)
    metrics = json.loads((out / "metrics.json").read_text()) if done.returncode == 0 else {}
    ok = done.returncode == 0 and "ndcg@20" in metrics.get("test", {}) \
        and "ndcg@50" not in metrics.get("test", {})
    return Outcome(f"exit {done.returncode}, test metrics at "
                   f"{sorted({k.split('@')[1] for k in metrics.get('test', {})})}", ok)


def diverging_c_tau(work: Path) -> Outcome:
    out = work / "run"
    done = run([*TRAIN, "--data", "synthetic:num_users=200,num_items=100", "--strategy",
                "c-tau", "--lr", "1000", "--epochs", "3", "--verbose", "0", "--output",
                str(out)], work)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    strict = True
    for path in out.glob("*.json") if out.exists() else []:
        try:
            json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(
                ValueError(c)))
        except ValueError:
            strict = False
    ok = done.returncode == 2 and "non-finite" in last and strict
    return Outcome(f"exit {done.returncode}: {last[-160:]}; strict JSON {strict}", ok)


def _trained(work: Path, extra: tuple[str, ...] = ()) -> tuple[Path, Path]:
    data = write_data(work / "data")
    out = work / "run"
    done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, *extra, "--output", str(out)],
               work)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return data, out


def relative_export_dir(work: Path) -> Outcome:
    _, out = _trained(work)
    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    done = run([*EXPORT, "--run", os.path.relpath(out, elsewhere), "--export-dir", "exports"],
               elsewhere)
    published = elsewhere / "exports" / "adaptau" / "1" / "saved_model.pb"
    return Outcome(f"exit {done.returncode}, published {published.exists()}",
                   done.returncode == 0 and published.exists())


def _exported(work: Path) -> tuple[Path, Path, Path]:
    data, out = _trained(work)
    done = run([*EXPORT, "--run", str(out), "--export-dir", str(work / "exports"),
                "--no-check"], work)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return data, out, work / "exports" / "adaptau" / "1"


def tampered_ids(work: Path) -> Outcome:
    _, _, version = _exported(work)
    ids = version / "items" / "ids.npy"
    import numpy as np

    np.save(ids, np.load(ids)[::-1].copy())
    done = run([*CHECK, str(version), "--no-cli"], work)
    ok = done.returncode == 1 and "sha256 differs" in done.stdout
    return Outcome(f"check exit {done.returncode}: "
                   f"{[line for line in done.stdout.splitlines() if 'FAIL' in line][:1]}", ok)


def scann_outside(work: Path) -> Outcome:
    _, _, version = _exported(work)
    manifest_path = version / "items" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["scann"]["directory"] = "../../../elsewhere"
    manifest_path.write_text(json.dumps(manifest))
    done = run([*CHECK, str(version), "--no-cli"], work)
    ok = done.returncode == 1 and "outside the export" in done.stdout
    return Outcome(f"check exit {done.returncode}", ok)


def edited_training_file(work: Path) -> Outcome:
    data, out = _trained(work)
    with open(data / "train.txt", "a") as handle:  # user 0 now has every item
        handle.write("0 " + " ".join(map(str, range(40))) + "\n")
    before = digest(out)
    done = run([*EXPORT, "--run", str(out), "--export-dir", str(work / "exports")], work)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    ok = done.returncode == 2 and "changed since the run was trained" in last
    return Outcome(f"exit {done.returncode}: {last[-120:]}", ok,
                   data_lost=int(digest(out) != before))


def killed_export(work: Path) -> Outcome:
    _, out, version = _exported(work)
    published = digest(version)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([*EXPORT, "--run", str(out), "--export-dir",
                                str(work / "exports")], cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    model_dir = version.parent
    deadline = time.time() + 300
    while not list(model_dir.glob(".tmp-*")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = [p.name for p in model_dir.glob(".tmp-*")]
    done = run([*EXPORT, "--run", str(out), "--export-dir", str(work / "exports"),
                "--no-check"], work)
    after = [p.name for p in model_dir.glob(".tmp-*")]
    orphans = run(["pgrep", "-f", f"adaptau_tf.export.check {model_dir}"], work).stdout.split()
    ok = done.returncode == 0 and not after and not orphans
    return Outcome(f"{len(left)} temporary dir(s) after the kill, {len(after)} after the next "
                   f"export (exit {done.returncode}), {len(orphans)} orphaned check(s)", ok,
                   data_lost=int(digest(version) != published))


def cold_user_served(work: Path) -> Outcome:
    data = write_data(work / "data")
    with open(data / "test.txt", "a") as handle:  # a user with test rows only
        handle.write("60 1 2\n")
    out = work / "run"
    done = run([*TRAIN, "--data", f"lightgcn:{data}", *SMALL, "--output", str(out)], work)
    if done.returncode != 0:
        return Outcome(f"training exit {done.returncode}", False)
    export = run([*EXPORT, "--run", str(out), "--export-dir", str(work / "exports")], work)
    manifest = json.loads((work / "exports/adaptau/1/items/manifest.json").read_text())
    served = run([sys.executable, "-m", "adaptau_tf.export.recommend",
                  str(work / "exports/adaptau"), "--user-ids", "60", "-k", "3", "--json"], work)
    top = json.loads(served.stdout)["recommendations"][0]["item_ids"] if served.stdout else []
    ok = export.returncode == 0 and manifest["cold_users"]["count"] == 1 and len(top) == 3
    return Outcome(f"export exit {export.returncode}, {manifest['cold_users']['count']} cold "
                   f"user flagged, answered with popular items {top}", ok)


def killed_training(work: Path) -> Outcome:
    data = write_data(work / "data", users=300, items=200, train_rows=20)
    args = ["--data", f"lightgcn:{data}", "--epochs", "6", "--batch-size", "64",
            "--embedding-dim", "8", "--negatives", "sampled:32", "--dropout", "0.1",
            "--patience", "0", "--verbose", "0"]
    whole, killed = work / "whole", work / "killed"
    run([*TRAIN, *args, "--output", str(whole)], work)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([*TRAIN, *args, "--output", str(killed)], cwd=work, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = killed / "history.csv"
    deadline = time.time() + 300
    while (not history.exists() or len(history.read_text().splitlines()) < 4) \
            and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = (killed / "metrics.json").exists()
    run([*TRAIN, *args, "--output", str(killed)], work)
    a = json.loads((whole / "metrics.json").read_text())["test"]
    b = json.loads((killed / "metrics.json").read_text())["test"]
    ok = not finished_before and a == b
    return Outcome(f"killed during epoch 4 of 6, rerun: test Recall@20 {b['recall@20']:.6f} "
                   f"vs uninterrupted {a['recall@20']:.6f} (identical: {a == b})", ok)


CASES: list[Case] = [
    bad_argument("--tau", "0", "argument --tau: expected a finite number > 0"),
    bad_argument("--batch-size", "0", "argument --batch-size: expected an integer >= 1"),
    bad_argument("--epochs", "-1", "argument --epochs: expected an integer >= 1"),
    bad_argument("--lr", "-0.01", "argument --lr: expected a finite number > 0"),
    bad_argument("--lr", "nan", "argument --lr: expected a finite number > 0"),
    bad_argument("--valid-fraction", "-0.1", "argument --valid-fraction: expected a number"),
    bad_argument("--valid-fraction", "nan", "argument --valid-fraction: expected a number"),
    bad_argument("--valid-fraction", "0", "argument --valid-fraction: expected a number"),
    bad_argument("--negatives", "sampled:0", "argument --negatives:"),
    bad_argument("--negatives", "sampled", "argument --negatives:"),
    bad_argument("--dropout", "1", "argument --dropout: expected a number in [0, 1)"),
    bad_argument("--margin", "2", "argument --margin:"),
    bad_argument("--monitor", "auc@20", "argument --monitor:"),
    bad_argument("--data", "lightgcn:/nonexistent/folder", "not found"),
    bad_data("sparse user id 10000000", ["10000000 1 2 3"], "line 61: user id 10000000"),
    bad_data("item id 10000000", ["5 10000000"], "line 61: item id 10000000"),
    bad_data("user id 1e12", ["1000000000000 1"], "line 61: user id 1000000000000"),
    bad_data("a non-integer token", ["7 1 x2"], "line 61: non-integer id 'x2'"),
    bad_data("a Windows-1252 byte", ["7 1 2 café"], "line 61:"),
    Case("honest protocol, every user one row", "input",
         "exit 2, 'empty validation split', never a silent switch to test",
         honest_without_validation),
    Case("corrected rerun after a refused start", "input",
         "the bad start leaves nothing that refuses the corrected command", corrected_rerun),
    Case("catalogue under 50 items", "input", "trains; metrics at K <= items only",
         small_catalogue),
    Case("C-τ with lr 1000", "input", "exit 2 'non-finite', strict JSON only",
         diverging_c_tau),
    Case("relative --export-dir from another directory", "input", "export published",
         relative_export_dir),
    Case("kill -9 during epoch 4 of 6, rerun", "fault", "bit-identical to uninterrupted",
         killed_training),
    Case("items/ids.npy reversed after export", "fault", "check fails: sha256",
         tampered_ids),
    Case("scann.directory pointing outside", "fault", "check fails: outside the export",
         scann_outside),
    Case("training file edited after training", "fault",
         "export refused, run untouched", edited_training_file),
    Case("export killed mid-way", "fault",
         "next export cleans the leftovers, no orphaned check, published version intact",
         killed_export),
    Case("user with no training rows", "fault", "flagged; answered with popular items",
         cold_user_served),
]


def run_case(case: Case, work: Path | None = None) -> dict:
    """Runs one case in a fresh directory; the result row."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="reliability-")) if own else work
    try:
        outcome = case.check(work)
    except Exception as error:  # noqa: BLE001  (a crash of the case is a failed case)
        outcome = Outcome(f"{type(error).__name__}: {error}"[:300], False)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return {"case": case.name, "kind": case.kind, "expected": case.expected,
            "observed": outcome.observed, "ok": outcome.ok, "data_lost": outcome.data_lost}


def main(argv: list[str] | None = None) -> dict:
    from benchmarks.reporting import markdown_table, write_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    rows = []
    for case in CASES:
        row = run_case(case)
        print(f"{'ok ' if row['ok'] else 'FAIL'} {row['case']}: {row['observed']}", flush=True)
        rows.append(row)
    killed = next(r for r in rows if r["case"].startswith("kill -9"))
    payload = {
        "inputs_tried": sum(r["kind"] == "input" for r in rows),
        "faults_injected": sum(r["kind"] == "fault" for r in rows),
        "data_lost": sum(r["data_lost"] for r in rows),
        "resume_exact": bool(killed["ok"]),
        "all_ok": all(r["ok"] for r in rows),
        "cases": rows,
    }
    table = markdown_table(["case", "kind", "expected", "observed", "ok"],
                           [[r["case"], r["kind"], r["expected"], r["observed"],
                             "yes" if r["ok"] else "**no**"] for r in rows])
    write_results("reliability", payload,
                  f"# Hostile inputs and injected faults\n\n{payload['inputs_tried']} inputs, "
                  f"{payload['faults_injected']} faults, data lost: {payload['data_lost']}, "
                  f"resume exact: {payload['resume_exact']}.\n\n{table}")
    return payload


if __name__ == "__main__":
    main()
