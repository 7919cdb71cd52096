"""Export a trained retrieval model for TF Serving and an ANN service.

Layout of an export (TF Serving's ``<base>/<model_name>/<version>/``)::

    <export_dir>/<model_name>/<version>/
        saved_model.pb, variables/, fingerprint.pb   the SavedModel (core TF ops only)
        assets.extra/reference_topk.npz              in-memory top-k, for adaptau_tf.export.check
        items/embeddings.npy                          [m, d] float32 item table
        items/ids.npy                                 [m] int64 item ids (row = item id)
        items/scann/                                  serialised ScaNN index
        items/manifest.json                           what was exported and how
        users/seen_row_splits.npy, seen_items.npy     exclusion table (exclude_seen)

The version directory is written under a hidden temporary name next to it and
renamed into place at the end, so a failed export never leaves a partial
version and never touches existing ones (TF Serving ignores non-numeric names).

The CLI (``adaptau-export``) rebuilds a training run with
``adaptau_tf.trainers.train.load_run`` and calls :func:`export_model`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.export.check import check_in_subprocess
from adaptau_tf.export.integrity import checksums, sha256_file
from adaptau_tf.export.scann_index import ScannIndex
from adaptau_tf.export.serving_module import (
    COLD_POLICIES,
    ServingModule,
    reference_topk,
    seen_table,
)
from adaptau_tf.export.serving_module import cold_users as find_cold_users

MANIFEST_FORMAT = 1
REFERENCE_USERS = 64
REFERENCE_K = 20


def next_version(model_dir: Path) -> int:
    """1 + the largest numeric version directory in ``model_dir`` (1 if none)."""
    versions = [int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def _model_info(model: Any) -> dict[str, Any]:
    task = getattr(model, "task", None)
    info: dict[str, Any] = {"backbone": type(model).__name__, "strategy": None, "tau0": None}
    if task is not None:
        info["strategy"] = getattr(getattr(task, "strategy", None), "key", None)
        inverse = getattr(task, "inverse_temperature", None)
        if inverse is not None:
            info["tau0"] = 1.0 / float(np.asarray(inverse.numpy()))
    # The exported vectors are unit rows only when the towers normalise and the
    # model ranks by cosine; "dot" exports the backbone's raw output (MIPS).
    info["score"] = getattr(model, "score", "cosine")
    info["normalized"] = bool(getattr(model, "normalize", True)) and info["score"] == "cosine"
    return info


def _write_export(
    target: Path,
    model: Any,
    data: Any,
    exclude_seen: bool,
    build_scann: bool,
    scann_params: dict[str, Any] | None,
    extra: dict[str, Any],
    cold_policy: str = "popular",
) -> dict[str, Any]:
    """Writes a complete export into ``target`` (an empty directory)."""
    users, items = (np.asarray(t.numpy() if hasattr(t, "numpy") else t, dtype=np.float32)
                    for t in model.compute_representations(training=False))
    if users.shape != (data.num_users, users.shape[1]) or items.shape[0] != data.num_items:
        raise ValueError(
            f"model representations {users.shape} / {items.shape} do not match the data "
            f"({data.num_users} users, {data.num_items} items)"
        )
    if not (np.all(np.isfinite(users)) and np.all(np.isfinite(items))):
        raise ValueError("model representations contain NaN or infinite values")
    item_ids = np.arange(items.shape[0], dtype=np.int64)
    row_splits = seen = None
    known = np.concatenate([data.train, data.valid])
    if exclude_seen:
        row_splits, seen = seen_table(known, data.num_users)
    cold = find_cold_users(known, data.num_users)
    popularity = np.bincount(data.train[:, 1], minlength=data.num_items).astype(np.float32)
    module = ServingModule(users, items, item_ids, row_splits, seen, cold, popularity,
                           cold_policy=cold_policy)
    tf.saved_model.save(module, str(target), signatures=module.signatures())

    sample = np.unique(np.linspace(0, data.num_users - 1, REFERENCE_USERS).astype(np.int64))
    if cold_policy == "refuse":
        sample = sample[~cold[sample]]
    k = min(REFERENCE_K, data.num_items)
    ref_rows, ref_scores = reference_topk(users, items, sample, k, row_splits, seen,
                                          cold, popularity)
    ref_ids = np.where(np.isinf(ref_scores), -1, item_ids[ref_rows])
    (target / "assets.extra").mkdir()
    np.savez(target / "assets.extra" / "reference_topk.npz", user_ids=sample, k=np.int32(k),
             item_ids=ref_ids, scores=ref_scores)

    items_dir = target / "items"
    items_dir.mkdir()
    np.save(items_dir / "embeddings.npy", items)
    np.save(items_dir / "ids.npy", item_ids)
    np.save(items_dir / "popularity.npy", popularity)  # cold users' ranking
    (target / "users").mkdir()
    np.save(target / "users" / "cold_users.npy", cold)
    if exclude_seen:
        np.save(target / "users" / "seen_row_splits.npy", row_splits)
        np.save(target / "users" / "seen_items.npy", seen)
    scann_info: dict[str, Any] | None = None
    if build_scann:
        index = ScannIndex.build(items, item_ids, params=scann_params,
                                 normalized=_model_info(model)["normalized"])
        index.save(items_dir / "scann")
        scann_info = {
            "directory": "scann",
            "params": index.params,
            "build_seconds": round(float(index.build_seconds), 3),
            "scann_version": _package_version("scann"),
        }
    info = _model_info(model)
    manifest = {
        "format_version": MANIFEST_FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "adaptau_tf_version": _package_version("adaptau_tf"),
        "strategy": info["strategy"],
        "tau0": info["tau0"],
        "backbone": info["backbone"],
        "count": int(items.shape[0]),
        "dimension": int(items.shape[1]),
        "dtype": "float32",
        "normalized": info["normalized"],
        "score": info["score"],
        "metric": "dot_product",
        "metric_note": _metric_note(info),
        "files": {
            name: {"path": f"{name}.npy", "sha256": sha256_file(items_dir / f"{name}.npy")}
            for name in ("embeddings", "ids")
        },
        "scann": scann_info,
        "cold_users": {"count": int(cold.sum()), "policy": cold_policy,
                       "path": "users/cold_users.npy",
                       "note": "users without training rows: their vectors were never trained; "
                               "'popular' answers them with the most popular unseen items "
                               "(scores = training counts), 'refuse' fails their requests"},
        "saved_model": {
            "signatures": sorted(module.signatures()),
            "num_users": int(data.num_users),
            "num_items": int(data.num_items),
            "exclude_seen": bool(exclude_seen),
            "excluded_pairs": int(0 if seen is None else seen.shape[0]),
            "tensorflow_version": tf.__version__,
        },
        **extra,
    }
    # Every file but the manifest itself, relative to the version directory: what the
    # checker, the recommender and the loader verify before they serve anything.
    manifest["checksums"] = checksums(target)
    (items_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _metric_note(info: dict[str, Any]) -> str:
    """How the exported vectors' dot product ranks, in words, for the manifest."""
    if info["normalized"]:
        return "dot product on unit vectors (cosine)"
    if info["score"] == "dot":
        return ("dot product on the backbone's raw, unnormalised vectors (score='dot', "
                "maximum inner product search)")
    return "dot product on unnormalised vectors (No Norm strategy)"


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def export_model(
    model: Any,
    data: Any,
    export_dir: str | Path,
    model_name: str = "adaptau",
    version: int | None = None,
    exclude_seen: bool = True,
    build_scann: bool = True,
    scann_params: dict[str, Any] | None = None,
    overwrite: bool = False,
    check: bool = False,
    config: dict[str, Any] | None = None,
    cold_users: str = "popular",
    before_publish: Callable[[Path], None] | None = None,
) -> Path:
    """Exports ``model`` to ``<export_dir>/<model_name>/<version>/`` atomically.

    Args:
        model: a trained ``RetrievalModel`` (anything with
            ``compute_representations(training=False) -> ([n, d], [m, d])``).
        data: its ``InteractionData``; ``train`` + ``valid`` pairs form the
            exclusion table.
        export_dir: TF Serving base directory.
        model_name: TF Serving model name.
        version: positive int; default 1 + the largest existing version.
        exclude_seen: mask the user's train/valid items in ``serving_default``.
        build_scann: build and serialise the ScaNN index into ``items/scann``.
        scann_params: override of :meth:`ScannIndex.choose_params`.
        overwrite: replace an existing ``version`` (otherwise an error).
        check: run ``adaptau_tf.export.check`` in a fresh process before publishing; a
            failed check aborts the export.
        config: the training run's config, recorded in the manifest as ``run``.
        cold_users: users without training rows: ``"popular"`` (answered with
            the most popular unseen items) or ``"refuse"`` (their requests fail).
        before_publish: called with the temporary directory just before the
            rename (tests use it to simulate a failure mid-export).

    Returns:
        The published version directory.

    Raises:
        FileExistsError: if the version exists and ``overwrite`` is False.
        ValueError: on a bad name, version or mismatched model/data.

    Example:
        >>> path = export_model(model, data, "/tmp/serving", model_name="adaptau")
        >>> path.name
        '1'
    """
    with staged_version(export_dir, model_name, version, overwrite) as (tmp, version):
        extra = {"model_name": model_name, "version": version}
        if config is not None:
            extra["run"] = config
        _write_export(tmp, model, data, exclude_seen, build_scann, scann_params, extra,
                      cold_policy=cold_users)
        if check:
            report = check_in_subprocess(tmp)
            if not report.get("ok"):
                raise RuntimeError(f"export check failed: {report.get('failures')}")
        if before_publish is not None:
            before_publish(tmp)
    return Path(export_dir) / model_name / str(version)


@contextlib.contextmanager
def staged_version(export_dir: str | Path, model_name: str, version: int | None,
                   overwrite: bool) -> Iterator[tuple[Path, int]]:
    """A TF Serving version directory written atomically: yields ``(tmp, version)``.

    Checks the name and version, picks ``1 +`` the largest version when
    ``version`` is None, removes the leftovers of killed exports, and hands out
    a hidden temporary directory next to the versions (named with this pid,
    so another export's clean-up spares it). When the block ends without an
    error the directory is renamed to ``<model_name>/<version>`` (an existing
    version swapped out); on any error it is deleted.

    Raises:
        ValueError: a name that is not a plain directory name, or a version < 1.
        FileExistsError: the version exists and ``overwrite`` is False.
    """
    if not model_name or "/" in model_name or model_name.startswith("."):
        raise ValueError(f"model_name must be a plain directory name, got {model_name!r}")
    if version is not None and not (isinstance(version, int) and version > 0):
        raise ValueError(f"version must be a positive int, got {version!r}")
    model_dir = Path(export_dir) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else version
    final = model_dir / str(version)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass another version or overwrite=True")
    _remove_leftovers(model_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-{os.getpid()}-", dir=model_dir))
    try:
        yield tmp, version
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_leftovers(model_dir: Path) -> None:
    """Deletes the temporary directories of exports killed before they published
    (``.tmp-<version>-<pid>-*`` whose process is gone)."""
    for path in model_dir.glob(".tmp-*"):
        parts = path.name.split("-")
        pid = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue  # another export is writing it now
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _publish(tmp: Path, final: Path) -> None:
    """Renames ``tmp`` to ``final``; an existing ``final`` is swapped out first."""
    if not final.exists():
        os.rename(tmp, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".old-{final.name}-", dir=final.parent))
    os.rmdir(old)
    os.rename(final, old)
    try:
        os.rename(tmp, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="adaptau-export",
        description="Export a training run as a TF Serving SavedModel plus ScaNN-ready items.",
    )
    parser.add_argument("--run", required=True, help="training output directory")
    parser.add_argument("--export-dir", required=True, help="TF Serving base directory")
    parser.add_argument("--model-name", default="adaptau")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--no-exclude-seen", dest="exclude_seen", action="store_false",
                        help="do not mask each user's training/validation items")
    parser.add_argument("--no-scann", dest="build_scann", action="store_false",
                        help="skip the ScaNN index")
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="skip the fresh-process check before publishing")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument("--cold-users", choices=COLD_POLICIES, default="popular",
                        help="users without training rows: popular (the most popular unseen "
                             "items) or refuse (their requests fail)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """``adaptau-export``: training run -> export directory."""
    args = _parse_args(argv)
    import adaptau_tf  # noqa: F401  (Keras 2 before the trainer imports tf.keras)
    from adaptau_tf.trainers.runs import load_run

    try:
        run = load_run(args.run)
    except (ValueError, FileNotFoundError) as error:
        print(f"adaptau-export: error: {error}", file=sys.stderr)
        return 2
    path = export_model(
        run.model, run.data, args.export_dir, model_name=args.model_name,
        version=args.version, exclude_seen=args.exclude_seen, build_scann=args.build_scann,
        overwrite=args.overwrite, check=args.check, config=dict(run.config),
        cold_users=args.cold_users,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
