"""Provenance and atomic result files shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
#: The shared benchmark data beside the repository.
SHARED_DATA = REPO.parent / "shared" / "data"


def commit() -> str:
    """The current ``git`` commit, with ``-dirty`` when tracked files other than the
    benchmarks' own outputs (``benchmarks/results/``) have changes."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                            ".", ":(exclude)benchmarks/results"], cwd=REPO,
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{head}-dirty" if dirty else head


def machine() -> str:
    """CPU model, core count and platform, e.g. for comparing figures across machines."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.platform()}"


def command() -> str:
    """The command line that reproduces the current run."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(REPO)
    except ValueError:
        pass
    return shlex.join([".venv/bin/python", str(script), *sys.argv[1:]])


def provenance() -> dict[str, str]:
    """``commit``, ``machine`` and ``command`` keys for a result file."""
    return {"commit": commit(), "machine": machine(), "command": command()}


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_results(name: str, payload: dict[str, Any], markdown: str) -> Path:
    """Writes ``results/<name>.json`` (payload + provenance) and ``results/<name>.md``."""
    payload = {**payload, **provenance()}
    path = RESULTS / f"{name}.json"
    _atomic_write(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    footer = f"\n\ncommit `{payload['commit']}` · {payload['machine']}\n\n`{payload['command']}`\n"
    _atomic_write(RESULTS / f"{name}.md", markdown.rstrip() + footer)
    print(markdown)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return path


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A small markdown table; floats get 4 decimals."""
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
