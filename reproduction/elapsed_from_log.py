"""Books a run's training time from its Keras log, for runs made before ``elapsed.json``.

``adaptau-train`` runs resumed across processes before commit 1b2be14 report
only their last process's time as ``train_seconds``. Their ``--verbose 2`` log
holds every finished epoch's wall time (``396/396 - 205s - loss: ...``, the
evaluation included); this sums them into the run's ``elapsed.json``, the file
``adaptau_tf.trainers.run_files.Stopwatch`` keeps for newer runs and the Table 3 report
reads. An epoch cut short by an interruption has no such line and is not booked.

Example:
    python reproduction/elapsed_from_log.py reproduction/work/recipe/at \\
        reproduction/work/recipe/at.log
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from adaptau_tf.trainers.run_files import write_json

EPOCH_LINE = re.compile(r"^\d+/\d+ - (\d+)s - ")


def logged_seconds(log: Path) -> tuple[float, int]:
    """``(summed seconds, epochs)`` of the finished-epoch lines of a Keras verbose-2 log."""
    seconds = [int(m.group(1)) for line in log.read_text().splitlines()
               if (m := EPOCH_LINE.match(line))]
    if not seconds:
        raise ValueError(f"{log}: no finished-epoch line ('N/N - Ss - ...'); is it the "
                         "--verbose 2 log of an adaptau-train run?")
    return float(sum(seconds)), len(seconds)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="the adaptau-train run directory")
    parser.add_argument("log", type=Path, help="its --verbose 2 log")
    args = parser.parse_args(argv)
    target = args.run / "elapsed.json"
    if target.exists():
        raise SystemExit(f"{target} exists (the run keeps its own time); not overwritten")
    if not (args.run / "metrics.json").exists():
        raise SystemExit(f"{args.run} has no metrics.json: not a finished run")
    seconds, epochs = logged_seconds(args.log)
    payload = {"seconds": seconds, "epochs_booked": epochs, "from_log": str(args.log)}
    write_json(target, payload)
    print(f"{target}: {seconds:.0f} s over {epochs} finished epochs")
    return payload


if __name__ == "__main__":
    main()
