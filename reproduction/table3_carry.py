"""Rows of ``table3_<dataset>`` whose run directories are gone, carried from the last table.

The runs' directories (``reproduction/work/``) are not versioned: a fresh
checkout has none, while the tables committed under ``benchmarks/results/``
hold what the runs measured. Rewriting a table there must not turn finished
runs into "not started" rows. So a run whose directory (and, for the grid
search, whose search directory) does not exist keeps its row from the table
being replaced, provided that table recorded the very same settings for it;
the row says so with ``carried_from`` and ``carried_machine``, the commit and
machine of the table it first came from. Any change of settings (a different
flag, budget or τ grid) drops it: the run is then pending like any other.
"""

from __future__ import annotations

import json
import re
from typing import Any

from benchmarks import reporting


def previous_result(name: str) -> dict[str, Any] | None:
    """``results/<name>.json`` about to be replaced, or None (also for a non-object).

    Raises:
        ValueError: the file is not valid JSON (rewriting it would lose its rows).
    """
    path = reporting.RESULTS / f"{name}.json"
    if not path.exists():
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); restore it from git "
                         "before writing it again") from error
    return result if isinstance(result, dict) else None


def previous_table(dataset: str) -> dict[str, Any] | None:
    """The ``table3_<dataset>.json`` about to be replaced, or None."""
    return previous_result(f"table3_{dataset}")


def gone(run: dict[str, Any]) -> bool:
    """True when nothing of the run is on this machine: no run directory and,
    for grid-tau, no grid search directory either."""
    return not run["dir"].exists() and (
        run["strategy"] != "grid-tau" or not run["grid_dir"].exists())


def _origin(previous: dict[str, Any], item: dict[str, Any]) -> dict[str, str]:
    """``carried_from`` (commit) and ``carried_machine`` of the table the item first came
    from: its figures, wall times included, were measured there."""
    if "carried_from" in item:
        return {"carried_from": item["carried_from"],
                "carried_machine": item.get("carried_machine", "unknown")}
    return {"carried_from": previous.get("commit", "unknown"),
            "carried_machine": previous.get("machine", "unknown")}


def same_settings(old: str | None, new: str) -> bool:
    """Whether a row's settings string in an older table means ``new``.

    Tables written before the scoring rule existed ranked by cosine, so an
    explicit ``score=cosine`` in ``new`` adds nothing to an ``old`` string
    without any ``score=``.
    """
    if old is None:
        return False
    if old == new:
        return True
    if "score" in old:
        return False
    stripped = re.sub(r" --score cosine(?=[ ;]|$)", "", re.sub(r" score=cosine(?=[ ;]|$)", "",
                                                                 new))
    return stripped != new and stripped == old


def carried_row(previous: dict[str, Any] | None, key: str,
                settings: str) -> dict[str, Any] | None:
    """The previous table's row for ``key`` (``backbone/protocol/strategy``) if that
    table recorded the same ``settings`` string for it, with ``carried_from``."""
    if previous is None or not same_settings(previous.get("settings", {}).get(key), settings):
        return None
    backbone, protocol, strategy = key.split("/")
    for row in previous.get("rows", []):
        if (row.get("backbone"), row.get("protocol"), row.get("strategy")) == \
                (backbone, protocol, strategy):
            return {**row, **_origin(previous, row)}
    return None


def carried_grid(previous: dict[str, Any] | None, backbone: str,
                 protocol: str) -> dict[str, Any] | None:
    """The previous table's grid-search cost entry for ``backbone``/``protocol``, with
    ``carried_from``; the caller recomputes its ratios against the current Adap-τ row.
    Only called for a grid-tau row that was itself carried (same settings, grid
    included)."""
    if previous is None:
        return None
    for entry in previous.get("grid_search", []):
        if (entry.get("backbone"), entry.get("protocol")) == (backbone, protocol):
            return {**entry, **_origin(previous, entry)}
    return None
