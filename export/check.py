"""Check an export the way a TF Serving team would, in a process without the model code.

Run as ``adaptau-check-export EXPORT`` or ``python -m adaptau_tf.export.check EXPORT``.
This module imports only TensorFlow and NumPy (``adaptau_tf/__init__.py`` only
selects Keras 2 and ``adaptau_tf.export``'s ``__init__`` imports nothing), so
the op registry it compares against holds core TF ops only, and the SavedModel
is proved to load without the package's layers, losses or TFRS. The checks:

1. every op of every graph and library function in ``saved_model.pb`` is a
   registered core TF op and none is denied (``Scann*``, ``PyFunc``,
   ``EagerPyFunc``, ``PyFuncStateless``);
2. the SavedModel loads and each signature runs on sample input, with sane
   shapes, dtypes, sorted scores that equal user·item, unit vectors when the
   manifest says normalised, and ``InvalidArgument`` errors for unknown user
   ids and out-of-range ``k``;
3. ``saved_model_cli show --all`` and ``saved_model_cli run`` succeed and
   ``run`` returns what the signature returns;
4. ``serving_default`` top-k equals the in-memory model's (the reference the
   exporter stored in ``assets.extra/reference_topk.npz``, or ``--reference``);
5. when the export holds a ScaNN index, its recall@k against exact search on
   the exported vectors (the export's scoring rule: dot product on whichever
   vectors it exported) is at least ``--min-scann-recall``, for users spread
   over the id range (ScaNN is imported only after checks 1-4 proved the
   SavedModel needs none of it).

Exports of ``export_two_tower`` (manifest ``kind: two_tower``) get the same
five checks on their own signatures, run on the sample queries the exporter
stored (:mod:`adaptau_tf.export.two_tower_check`); :func:`checker_for` picks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow.python.framework import op_def_registry  # noqa: E402

from adaptau_tf.export.integrity import verify_checksums  # noqa: E402

#: ScaNN custom ops (also namespaced, e.g. ``Scann>ScannSearchBatched``) and Python callbacks.
DENIED_OPS = re.compile(r"(^|>)Scann|^(PyFunc|EagerPyFunc|PyFuncStateless)$")
REQUIRED_SIGNATURES = ("serving_default", "user_embedding", "item_embeddings")


def resolve_saved_model_dir(path: str | Path) -> Path:
    """``<version>`` dir as is; ``<model_name>`` dir -> its highest numeric version.

    Raises:
        FileNotFoundError: when no ``saved_model.pb`` can be found.
    """
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    if path.is_dir():
        versions = sorted(int(p.name) for p in path.iterdir()
                           if p.name.isdigit() and (p / "saved_model.pb").is_file())
        if versions:
            return path / str(versions[-1])
    raise FileNotFoundError(
        f"{path} holds no saved_model.pb (give <export_dir>/<model_name>[/<version>])"
    )


class ExportChecker:
    """Runs the export checks and collects a JSON-ready report.

    Args:
        path: an export version dir (or its model dir: latest version).
        reference: ``.npz`` with ``user_ids [B]``, ``k``, ``item_ids [B, k]``,
            ``scores [B, k]`` (default: the export's
            ``assets.extra/reference_topk.npz``).
        run_cli: also run ``saved_model_cli`` (two extra processes).
        atol: score tolerance for the reference comparison.
        min_scann_recall: lowest ScaNN recall@k against exact search that passes.
        scann_users: users whose ScaNN top-k is compared with exact search.

    Example:
        >>> report = ExportChecker("/tmp/serving/adaptau/1").run()
        >>> report["ok"], report["ops"]["bad"]
        (True, [])
    """

    def __init__(
        self,
        path: str | Path,
        reference: str | Path | None = None,
        run_cli: bool = True,
        atol: float = 1e-4,
        min_scann_recall: float = 0.95,
        scann_users: int = 1000,
    ) -> None:
        self.path = resolve_saved_model_dir(path)
        self.min_scann_recall = float(min_scann_recall)
        self.scann_users = int(scann_users)
        default = self.path / "assets.extra" / "reference_topk.npz"
        self.reference = Path(reference) if reference else (default if default.is_file() else None)
        self.run_cli = run_cli
        self.atol = atol
        manifest = self.path / "items" / "manifest.json"
        self.manifest = json.loads(manifest.read_text()) if manifest.is_file() else {}
        self.failures: list[str] = []
        self.report: dict[str, Any] = {"saved_model_dir": str(self.path)}

    def fail(self, message: str) -> None:
        """Records a failed check."""
        self.failures.append(message)

    def list_ops(self) -> dict[str, list[str]]:
        """Op names per meta graph (tags joined by ``,``), graph and library functions.

        Function-call nodes (whose op is a library function name) are left out.
        """
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((self.path / "saved_model.pb").read_bytes())
        ops: dict[str, list[str]] = {}
        for meta_graph in proto.meta_graphs:
            library = meta_graph.graph_def.library
            functions = {function.signature.name for function in library.function}
            names = {node.op for node in meta_graph.graph_def.node}
            for function in library.function:
                names.update(node.op for node in function.node_def)
            names.update(op.name for op in meta_graph.meta_info_def.stripped_op_list.op)
            ops[",".join(sorted(meta_graph.meta_info_def.tags))] = sorted(names - functions)
        return ops

    def check_ops(self) -> None:
        """Fails on any op that is denied or not a registered core TF op."""
        ops = self.list_ops()
        every = sorted(set().union(*ops.values())) if ops else []
        denied = [op for op in every if DENIED_OPS.search(op)]
        unknown = [op for op in every if op_def_registry.get(op) is None]
        bad = sorted(set(denied) | set(unknown))
        self.report["ops"] = {"tags": sorted(ops), "count": len(every), "all": every,
                              "denied": denied, "not_core": unknown, "bad": bad}
        if not ops:
            self.fail("saved_model.pb holds no meta graph")
        if bad:
            self.fail(f"non-core or denied ops in the SavedModel: {bad}")

    def _sample(self) -> tuple[np.ndarray, int]:
        if self.reference is not None:
            with np.load(self.reference) as ref:
                return ref["user_ids"].astype(np.int64), int(ref["k"])
        users = int(self.manifest.get("saved_model", {}).get("num_users", 1))
        return np.arange(min(users, 8), dtype=np.int64), 5

    def _cold(self) -> np.ndarray:
        """``[n]`` bool: users without training rows (none in older exports)."""
        num_users = int(self.manifest.get("saved_model", {}).get("num_users", 0))
        info = self.manifest.get("cold_users") or {}
        path = self.path / info["path"] if info.get("path") else None
        if path is not None and path.is_file():
            return np.load(path).astype(bool)
        return np.zeros(num_users, bool)

    def _expect_invalid(self, name: str, fn: Any, **kwargs: Any) -> None:
        try:
            fn(**kwargs)
        except tf.errors.InvalidArgumentError as error:
            lines = [line for line in str(error.message).splitlines() if "assertion" in line]
            self.report["signatures"]["errors"][name] = (lines or [str(error.message)])[0][:300]
        else:
            self.fail(f"{name}: expected InvalidArgumentError for {kwargs}, got a result")

    def _load(self, signatures: Sequence[str]) -> Any:
        """The loaded SavedModel, or ``None`` (a failure recorded) when it cannot
        load or lacks one of ``signatures``; starts the report's ``signatures``."""
        self.report["signatures"] = {"errors": {}}
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as error:  # noqa: BLE001  (reported, not raised)
            self.fail(f"tf.saved_model.load failed: {type(error).__name__}: {error}"[:500])
            return None
        missing = [name for name in signatures if name not in loaded.signatures]
        self.report["signatures"]["names"] = sorted(loaded.signatures)
        if missing:
            self.fail(f"missing signatures {missing}; found {sorted(loaded.signatures)}")
            return None
        return loaded

    def run_signatures(self) -> dict[str, np.ndarray] | None:
        """Loads the SavedModel and runs each signature; returns serving outputs."""
        loaded = self._load(REQUIRED_SIGNATURES)
        if loaded is None:
            return None
        sigs = loaded.signatures
        items = {key: value.numpy() for key, value in sigs["item_embeddings"]().items()}
        table, ids = items["embeddings"], items["item_ids"]
        num_items = table.shape[0]
        users, k = self._sample()
        user_vectors = sigs["user_embedding"](user_id=tf.constant(users))["embedding"].numpy()
        out = {key: value.numpy() for key, value in
               sigs["serving_default"](user_id=tf.constant(users), k=tf.constant(k, tf.int32)
                                       ).items()}
        self.report["signatures"].update({
            "item_embeddings": list(table.shape), "user_embedding": list(user_vectors.shape),
            "serving_default": {key: list(value.shape) for key, value in out.items()},
        })
        normalized = self.manifest.get("normalized", None)
        if normalized:
            for name, vectors in (("item", table), ("user", user_vectors)):
                worst = float(np.max(np.abs(np.linalg.norm(vectors, axis=1) - 1.0)))
                if worst > 1e-4:
                    self.fail(f"{name} vectors are not unit length (max |norm-1| = {worst:.2e})")
        if out["item_ids"].shape != (users.shape[0], k) or out["item_ids"].dtype != np.int64:
            self.fail(f"serving_default item_ids: {out['item_ids'].dtype} "
                      f"{out['item_ids'].shape}, expected int64 {(users.shape[0], k)}")
            return out
        scores = out["scores"]
        if np.any(np.diff(scores, axis=1) > 0):
            self.fail("serving_default scores are not sorted best first")
        valid = out["item_ids"] >= 0
        valid &= ~self._cold()[users][:, None]  # cold users score by popularity
        position = {int(item): row for row, item in enumerate(ids)}
        rows = np.vectorize(lambda item: position.get(int(item), 0))(out["item_ids"])
        expected = np.einsum("bd,bkd->bk", user_vectors, table[rows])
        gap = float(np.max(np.abs(np.where(valid, expected - scores, 0.0)), initial=0.0))
        self.report["signatures"]["max_score_vs_embeddings"] = gap
        if gap > self.atol:
            self.fail(f"serving_default scores differ from user·item by {gap:.2e}")
        num_users = self.manifest.get("saved_model", {}).get("num_users")
        if num_users is not None:
            for bad in (int(num_users), -1):
                self._expect_invalid(f"serving_default(user_id=[{bad}])", sigs["serving_default"],
                                     user_id=tf.constant([bad], tf.int64),
                                     k=tf.constant(k, tf.int32))
            self._expect_invalid(f"user_embedding(user_id=[{num_users}])",
                                 sigs["user_embedding"],
                                 user_id=tf.constant([int(num_users)], tf.int64))
        for bad_k in (0, num_items + 1):
            self._expect_invalid(f"serving_default(k={bad_k})", sigs["serving_default"],
                                 user_id=tf.constant(users[:1]), k=tf.constant(bad_k, tf.int32))
        return out

    def _cli(self, *args: str) -> subprocess.CompletedProcess:
        script = Path(sys.executable).with_name("saved_model_cli")
        command = ([str(script)] if script.is_file()
                   else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"])
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})

    def _cli_show(self, signatures: Sequence[str]) -> dict[str, Any]:
        """``saved_model_cli show --all`` must list ``signatures``; returns the report."""
        shown = self._cli("show", "--all", "--dir", str(self.path))
        if shown.returncode != 0:
            self.fail(f"saved_model_cli show failed: {shown.stderr[-500:]}")
        else:
            absent = [n for n in signatures if f"signature_def['{n}']" not in shown.stdout]
            if absent:
                self.fail(f"saved_model_cli show does not list {absent}")
        return {"show_returncode": shown.returncode}

    def run_saved_model_cli(self, served: dict[str, np.ndarray] | None) -> None:
        """``saved_model_cli show --all`` and ``run`` on serving_default."""
        report = self._cli_show(REQUIRED_SIGNATURES)
        users, k = self._sample()
        with tempfile.TemporaryDirectory() as outdir:
            ran = self._cli("run", "--dir", str(self.path), "--tag_set", "serve",
                            "--signature_def", "serving_default", "--input_exprs",
                            f"user_id={users.tolist()};k={k}", "--outdir", outdir)
            report["run_returncode"] = ran.returncode
            if ran.returncode != 0:
                self.fail(f"saved_model_cli run failed: {ran.stderr[-500:]}")
            elif served is not None:
                got = {key: np.load(Path(outdir) / f"{key}.npy") for key in served}
                same = all(np.array_equal(got[key], served[key]) for key in served)
                report["run_matches_signature"] = same
                if not same:
                    self.fail("saved_model_cli run output differs from the signature's")
        self.report["saved_model_cli"] = report

    def compare_reference(self, served: dict[str, np.ndarray] | None) -> None:
        """Top-k ids must equal the reference's, up to swaps of near-tied scores."""
        if self.reference is None or served is None:
            self.report["reference"] = None
            return
        with np.load(self.reference) as ref:
            ref_ids, ref_scores = ref["item_ids"], ref["scores"]
        got_ids, got_scores = served["item_ids"], served["scores"]
        if got_ids.shape != ref_ids.shape:
            self.fail(f"reference top-k shape {ref_ids.shape} != served {got_ids.shape}")
            return
        finite = np.isfinite(ref_scores) & np.isfinite(got_scores)
        diff = float(np.max(np.abs(np.where(finite, ref_scores - got_scores, 0.0)), initial=0.0))
        unexplained = 0
        for row, col in zip(*np.nonzero(got_ids != ref_ids)):
            near = np.abs(ref_scores[row] - got_scores[row, col]) <= self.atol
            if not (np.any(near & (ref_ids[row] == got_ids[row, col]))
                    or abs(got_scores[row, col] - ref_scores[row, -1]) <= self.atol):
                unexplained += 1
        self.report["reference"] = {
            "path": str(self.reference), "users": int(ref_ids.shape[0]), "k": int(ref_ids.shape[1]),
            "exact_match_fraction": float(np.mean(got_ids == ref_ids)),
            "max_score_diff": diff, "unexplained_mismatches": unexplained,
        }
        if diff > self.atol or unexplained:
            self.fail(f"serving_default top-k differs from the reference: max score diff "
                      f"{diff:.2e}, {unexplained} mismatches not explained by ties")

    def check_scann(self) -> None:
        """ScaNN's top-k against exact search on the exported vectors (check 5)."""
        info = self.manifest.get("scann")
        if not info:
            self.report["scann"] = None
            return
        from adaptau_tf.export.scann_index import ScannIndex  # imports scann lazily

        items_dir = self.path / "items"
        table = np.load(items_dir / "embeddings.npy")
        ids = np.load(items_dir / "ids.npy")
        num_users = int(self.manifest.get("saved_model", {}).get("num_users", 0))
        users = np.unique(np.linspace(0, max(num_users - 1, 0), self.scann_users).astype(np.int64))
        users = users[~self._cold()[users]]  # answered by popularity, not by their vectors
        loaded = tf.saved_model.load(str(self.path))
        queries = loaded.signatures["user_embedding"](user_id=tf.constant(users))["embedding"]
        queries = queries.numpy()
        k = int(min(info["params"].get("num_neighbors", 20), table.shape[0]))
        index = ScannIndex.load(items_dir / info["directory"], ids, info["params"])
        got, _ = index.search(queries, k=k)
        exact = ids[np.argsort(-(queries @ table.T), axis=1, kind="stable")[:, :k]]
        recall = float(np.mean([np.intersect1d(a, b).size / k for a, b in zip(got, exact)]))
        self.report["scann"] = {"users": int(users.size), "k": k, "recall": recall,
                                "strategy": info["params"].get("strategy"),
                                "min_recall": self.min_scann_recall}
        if recall < self.min_scann_recall:
            self.fail(f"ScaNN recall@{k} against exact search is {recall:.4f} < "
                      f"{self.min_scann_recall} on {users.size} users")

    def run(self) -> dict[str, Any]:
        """Runs all checks; the report's ``ok`` is True when none failed."""
        problems = verify_checksums(self.path, self.manifest)
        self.report["checksums"] = {"files": len(self.manifest.get("checksums") or {}),
                                    "problems": problems}
        for problem in problems:
            self.fail(f"integrity: {problem}")
        self.check_ops()
        served = None
        try:
            served = self.run_signatures()
        except Exception as error:  # noqa: BLE001  (reported, not raised)
            self.fail(f"running the signatures failed: {type(error).__name__}: {error}"[:500])
        if self.run_cli:
            self.run_saved_model_cli(served)
        self.compare_reference(served)
        # The checker itself lives in adaptau_tf.export, whose package __init__ only
        # selects Keras 2; none of the modeling code (layers, losses, TFRS) may load.
        self.report["adaptau_tf_imported"] = any(
            name.startswith("adaptau_tf.") and not name.startswith("adaptau_tf.export")
            for name in sys.modules) or "tensorflow_recommenders" in sys.modules
        self.report["scann_imported"] = "scann" in sys.modules
        if self.report["adaptau_tf_imported"]:
            self.fail("adaptau_tf's modeling code or TFRS was imported by the check process")
        try:
            self.check_scann()
        except Exception as error:  # noqa: BLE001  (reported, not raised)
            self.fail(f"the ScaNN check failed: {type(error).__name__}: {error}"[:500])
        self.report["failures"] = self.failures
        self.report["ok"] = not self.failures
        return self.report


def checker_for(path: str | Path, *args: Any, **kwargs: Any) -> ExportChecker:
    """The checker for the export at ``path``: by its manifest's ``kind``.

    ``kind: two_tower`` (``export_two_tower``) gets
    :class:`~adaptau_tf.export.two_tower_check.TwoTowerExportChecker`, a run
    export (``adaptau-export``) :class:`ExportChecker`; arguments are theirs.

    Example:
        >>> checker_for("/tmp/serving/movies").run()["ok"]
        True
    """
    manifest = resolve_saved_model_dir(path) / "items" / "manifest.json"
    kind = json.loads(manifest.read_text()).get("kind") if manifest.is_file() else None
    if kind == "two_tower":
        from adaptau_tf.export.two_tower_check import TwoTowerExportChecker

        return TwoTowerExportChecker(path, *args, **kwargs)
    return ExportChecker(path, *args, **kwargs)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL it when its parent dies (Linux only)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def check_in_subprocess(
    path: str | Path,
    reference: str | Path | None = None,
    run_cli: bool = True,
    timeout: float = 600.0,
    min_scann_recall: float | None = None,
) -> dict[str, Any]:
    """Runs ``python -m adaptau_tf.export.check`` in a fresh interpreter and returns its report.

    Example:
        >>> check_in_subprocess("/tmp/serving/adaptau/1")["ok"]
        True
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        command = [sys.executable, "-m", "adaptau_tf.export.check", str(Path(path).resolve()),
                   "--json", str(out)]
        if reference is not None:
            command += ["--reference", str(Path(reference).resolve())]
        if not run_cli:
            command.append("--no-cli")
        if min_scann_recall is not None:
            command += ["--min-scann-recall", str(min_scann_recall)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_die_with_parent)
        if not out.is_file():
            raise RuntimeError(f"adaptau_tf.export.check exited {done.returncode} without a "
                               f"report:\n{done.stderr[-2000:]}")
        return json.loads(out.read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """``adaptau-check-export EXPORT [--reference NPZ] [--no-cli] [--json OUT]``."""
    parser = argparse.ArgumentParser(prog="adaptau-check-export", description=__doc__.split(
        "\n")[0])
    parser.add_argument("export", help="<export_dir>/<model_name>[/<version>]")
    parser.add_argument("--reference", default=None, help="reference top-k .npz")
    parser.add_argument("--no-cli", dest="run_cli", action="store_false",
                        help="skip saved_model_cli")
    parser.add_argument("--json", default=None, help="write the report here")
    parser.add_argument("--min-scann-recall", type=float, default=0.95,
                        help="lowest ScaNN recall@k against exact search that passes")
    args = parser.parse_args(argv)
    try:
        report = checker_for(args.export, args.reference, run_cli=args.run_cli,
                             min_scann_recall=args.min_scann_recall).run()
    except FileNotFoundError as error:
        report = {"ok": False, "failures": [str(error)]}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    ops = report.get("ops", {})
    print(f"{report.get('saved_model_dir', args.export)}: {ops.get('count', 0)} ops, "
          f"bad: {ops.get('bad', [])}")
    if report.get("reference"):
        ref = report["reference"]
        print(f"reference top-{ref['k']} on {ref['users']} users: exact match "
              f"{ref['exact_match_fraction']:.4f}, max score diff {ref['max_score_diff']:.2e}")
    if report.get("scann"):
        sc = report["scann"]
        print(f"ScaNN ({sc['strategy']}) recall@{sc['k']} against exact search on "
              f"{sc['users']} users: {sc['recall']:.4f}")
    for name, value in report.get("signatures", {}).get("behaviours", {}).items():
        print(f"{name}: {value}")
    for failure in report["failures"]:
        print(f"FAIL: {failure}")
    print("OK" if report["ok"] else "FAILED")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
