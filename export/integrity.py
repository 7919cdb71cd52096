"""An export's file integrity: sha256 of every file, listed in its manifest and verified.

Imports nothing beyond the standard library, so the checker, the recommender
and the exporters share it without loading TensorFlow or the model code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksums(version_dir: str | Path) -> dict[str, str]:
    """``{path relative to the version directory: sha256}`` of every file in it
    (what a manifest's ``checksums`` lists; :func:`verify_checksums` checks it)."""
    root = Path(version_dir)
    return {str(path.relative_to(root)): sha256_file(path)
            for path in sorted(root.rglob("*")) if path.is_file()}


def verify_checksums(version_dir: str | Path, manifest: dict[str, Any]) -> list[str]:
    """What is wrong with an export's files against its manifest (empty: nothing).

    Every file the manifest lists (``checksums``, relative to the version
    directory; ``files`` under ``items/`` in exports made before it) must lie
    inside the export, exist and have its sha256; the ScaNN directory must lie
    inside ``items/``.

    Example:
        >>> verify_checksums("/tmp/serving/adaptau/1", manifest)
        []
    """
    root = Path(version_dir).resolve()
    listed = dict(manifest.get("checksums") or {})
    if not listed:
        listed = {f"items/{info['path']}": info["sha256"]
                  for info in (manifest.get("files") or {}).values()}
    problems = []

    def inside(relative: str, base: Path) -> Path | None:
        path = (base / relative).resolve()
        if not path.is_relative_to(base):
            problems.append(f"{relative}: points outside the export ({path})")
            return None
        return path

    for relative, digest in sorted(listed.items()):
        path = inside(relative, root)
        if path is None:
            continue
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_file(path) != digest:
            problems.append(f"{relative}: sha256 differs from the manifest's (the file "
                            "changed after export)")
    scann = manifest.get("scann") or {}
    if scann.get("directory") is not None:
        inside(str(scann["directory"]), root / "items")
    return problems
