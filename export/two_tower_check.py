"""`TwoTowerExportChecker`: ``adaptau-check-export`` for ``export_two_tower`` exports.

Chosen by :func:`adaptau_tf.export.check.checker_for` when the manifest's
``kind`` is ``two_tower``. Like the run-directory checks it imports only
TensorFlow and NumPy (ScaNN lazily, last), and it runs on the sample queries
the exporter stored with the in-memory model's answers in
``assets.extra/reference_topk.npz`` (``query/<name>`` arrays, ``k``,
``item_ids``, ``scores``). The checks:

1. every op is a registered core TF op and none is denied (as for runs);
2. ``candidate_embeddings`` holds the manifest's id vocabulary; for the
   sample queries ``serving_default`` returns ``[B, k]`` ids of the id dtype,
   sorted scores equal to query·candidate; an unknown id in every string
   feature is answered (OOV row), not refused; a per-row ``k`` pads shorter
   rows; a ``history`` id is excluded; ``k = 0`` and ``k = max_k + 1`` are
   refused with ``InvalidArgument``;
3. ``saved_model_cli show --all`` lists the signatures and ``saved_model_cli
   run`` (inputs from ``.npy`` files) returns what the signature returns;
4. ``serving_default``'s top-k equals the exporting Keras model's (the
   stored reference), up to swaps of near-tied scores;
5. with a ScaNN index, its recall@k against exact search on the sample
   queries' vectors is at least ``--min-scann-recall``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.export.check import ExportChecker

SIGNATURES = ("serving_default", "query_embedding", "candidate_embeddings")
UNKNOWN_ID = "\x00adaptau-unknown-id"


def _id_key(value: Any) -> Any:
    """A raw id as one comparable value: bytes decoded, everything else as is."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _ids_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality of raw ids, bytes and str alike."""
    def norm(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind in "SOU":
            return np.vectorize(lambda v: str(_id_key(v)), otypes=[object])(x)
        return x
    return norm(a) == norm(b)


class TwoTowerExportChecker(ExportChecker):
    """The checks of a ``kind: two_tower`` export (see the module docstring).

    Args:
        path: ``<export_dir>/<model_name>[/<version>]``.
        reference: reference ``.npz`` (default: the one the exporter stored).
        run_cli: also run ``saved_model_cli``.
        atol: score tolerance.
        min_scann_recall: lowest ScaNN recall@k against exact search that passes.
        scann_users: unused here (the sample queries are the users).

    Example:
        >>> report = TwoTowerExportChecker("/tmp/serving/movies/1").run()
        >>> report["ok"]
        True
    """

    def __init__(self, path: str | Path, reference: str | Path | None = None,
                 run_cli: bool = True, atol: float = 1e-4, min_scann_recall: float = 0.95,
                 scann_users: int = 1000) -> None:
        super().__init__(path, reference, run_cli, atol, min_scann_recall, scann_users)
        self.info = self.manifest.get("saved_model", {})
        self.inputs = self.info.get("inputs", {})
        self.history = bool(self.info.get("history"))
        self.padding = self.info.get("history_padding", "")
        self.feature_names = [n for n in self.inputs if n not in ("k", "history")]

    def _queries(self) -> tuple[dict[str, np.ndarray], int]:
        """The stored sample queries ``{feature: [B]}`` and their ``k``."""
        if self.reference is None:
            raise FileNotFoundError(f"{self.path} holds no assets.extra/reference_topk.npz and "
                                    "no --reference was given: nothing to query with")
        with np.load(self.reference) as ref:
            queries = {name: ref[f"query/{name}"] for name in self.feature_names}
            return queries, int(ref["k"])

    def _feed(self, queries: dict[str, np.ndarray], ks: np.ndarray,
              history: np.ndarray | None = None) -> dict[str, tf.Tensor]:
        batch = len(ks)
        feed = {name: tf.constant(value) for name, value in queries.items()}
        feed["k"] = tf.constant(ks, tf.int32)
        if self.history:
            if history is None:
                history = np.full((batch, 1), self.padding,
                                  dtype=object if isinstance(self.padding, str) else np.int64)
            feed["history"] = tf.constant(history)
        return feed

    def run_signatures(self) -> dict[str, np.ndarray] | None:
        """Loads the SavedModel, runs each signature on the sample queries (check 2)."""
        loaded = self._load(SIGNATURES)
        if loaded is None:
            return None
        sigs = loaded.signatures
        cands = {key: value.numpy() for key, value in sigs["candidate_embeddings"]().items()}
        table, ids = cands["embeddings"], cands["item_ids"]
        vocabulary = np.array(self.manifest.get("item_ids", []), dtype=object)
        if ids.shape != vocabulary.shape or not np.all(_ids_equal(ids, vocabulary)):
            self.fail(f"candidate_embeddings ids ({ids.shape[0]}) differ from the manifest's "
                      f"item_ids ({vocabulary.shape[0]})")
        queries, k = self._queries()
        batch = len(next(iter(queries.values())))
        vectors = sigs["query_embedding"](**{n: tf.constant(v) for n, v in queries.items()})
        vectors = vectors["embedding"].numpy()
        out = {key: value.numpy() for key, value in
               sigs["serving_default"](**self._feed(queries, np.full(batch, k))).items()}
        self.report["signatures"].update({
            "candidate_embeddings": list(table.shape), "query_embedding": list(vectors.shape),
            "serving_default": {key: list(value.shape) for key, value in out.items()},
        })
        if self.manifest.get("normalized"):
            worst = float(np.max(np.abs(np.linalg.norm(table, axis=1) - 1.0)))
            if worst > 1e-4:
                self.fail(f"candidate vectors are not unit length (max |norm-1| = {worst:.2e})")
        string_ids = self.manifest.get("item_id_dtype") == "string"
        kinds = "SOU" if string_ids else "iu"
        if out["item_ids"].shape != (batch, k) or out["item_ids"].dtype.kind not in kinds:
            self.fail(f"serving_default item_ids: {out['item_ids'].dtype} "
                      f"{out['item_ids'].shape}, expected {(batch, k)} of "
                      f"{self.manifest.get('item_id_dtype')}")
            return out
        if np.any(np.diff(out["scores"], axis=1) > 0):
            self.fail("serving_default scores are not sorted best first")
        position = {_id_key(i): r for r, i in enumerate(ids.tolist())}
        rows = np.vectorize(lambda i: position.get(_id_key(i), -1),
                            otypes=[np.int64])(out["item_ids"])
        if np.any(rows < 0):
            self.fail("serving_default returned ids that are not candidates")
            return out
        expected = np.einsum("bd,bkd->bk", vectors, table[rows])
        gap = float(np.max(np.abs(expected - out["scores"]), initial=0.0))
        self.report["signatures"]["max_score_vs_embeddings"] = gap
        if gap > self.atol:
            self.fail(f"serving_default scores differ from query·candidate by {gap:.2e}")
        self._check_behaviours(sigs["serving_default"], queries, k, out)
        self._served_vectors = vectors
        return out

    def _check_behaviours(self, serve: Any, queries: dict[str, np.ndarray], k: int,
                          out: dict[str, np.ndarray]) -> None:
        """Unknown ids, per-row ``k``, history exclusion, out-of-range ``k``."""
        behaviours: dict[str, Any] = {}
        strings = [n for n in self.feature_names if self.inputs[n]["dtype"] == "string"]
        if strings:
            unknown = {n: (np.array([UNKNOWN_ID.encode()] * 1, object) if n in strings
                           else v[:1]) for n, v in queries.items()}
            try:
                got = serve(**self._feed(unknown, np.array([k])))["item_ids"].numpy()
                behaviours["unknown_query"] = "answered"
                if got.shape != (1, k):
                    self.fail(f"an unknown id got {got.shape} item ids, expected (1, {k})")
            except tf.errors.InvalidArgumentError as error:
                self.fail(f"an unknown id in {strings} failed the request: "
                          f"{error.message.splitlines()[0][:300]}")
        if k > 1 and len(out["item_ids"]) > 1:
            got = serve(**self._feed({n: v[:2] for n, v in queries.items()},
                                     np.array([1, k])))
            ids, scores = got["item_ids"].numpy(), got["scores"].numpy()
            behaviours["per_row_k"] = [1, k]
            if not (_ids_equal(ids[0, :1], out["item_ids"][0, :1]).all()
                    and _ids_equal(ids[0, 1:], np.array([self.padding] * (k - 1))).all()
                    and np.all(np.isneginf(scores[0, 1:]))):
                self.fail("a row with k=1 beside a row with k>1 was not padded after 1 id")
        if self.history:
            first = out["item_ids"][:1, :1]
            got = serve(**self._feed({n: v[:1] for n, v in queries.items()}, np.array([k]),
                                     history=first))["item_ids"].numpy()
            behaviours["history_excluded"] = not bool(_ids_equal(got, first[0, 0]).any())
            if not behaviours["history_excluded"]:
                self.fail(f"history id {first[0, 0]!r} was still recommended")
        max_k = int(self.info.get("max_k", k))
        one = {n: v[:1] for n, v in queries.items()}
        for bad_k in (0, max_k + 1):
            self._expect_invalid(f"serving_default(k={bad_k})", serve,
                                 **self._feed(one, np.array([bad_k])))
        self.report["signatures"]["behaviours"] = behaviours

    def run(self) -> dict[str, Any]:
        """Runs all checks; without sample queries the export fails them."""
        if self.reference is None:
            self.fail(f"{self.path} holds no assets.extra/reference_topk.npz and no "
                      "--reference was given: no sample queries to check with")
        return super().run()

    def run_saved_model_cli(self, served: dict[str, np.ndarray] | None) -> None:
        """``saved_model_cli show --all`` and ``run`` with ``.npy`` inputs (check 3)."""
        if self.reference is None:
            return
        report = self._cli_show(SIGNATURES)
        queries, k = self._queries()
        feed = self._feed(queries, np.full(len(next(iter(queries.values()))), k))
        with tempfile.TemporaryDirectory() as tmp:
            arguments = []
            for name, value in feed.items():
                array = value.numpy()
                if array.dtype == object:
                    array = array.astype(bytes)
                np.save(Path(tmp) / f"in_{name}.npy", array)
                arguments.append(f"{name}={Path(tmp) / f'in_{name}.npy'}")
            outdir = Path(tmp) / "out"
            ran = self._cli("run", "--dir", str(self.path), "--tag_set", "serve",
                            "--signature_def", "serving_default", "--inputs",
                            ";".join(arguments), "--outdir", str(outdir))
            report["run_returncode"] = ran.returncode
            if ran.returncode != 0:
                self.fail(f"saved_model_cli run failed: {ran.stderr[-500:]}")
            elif served is not None:
                got = {key: np.load(outdir / f"{key}.npy", allow_pickle=True) for key in served}
                same = all(np.array_equal(got[key], served[key]) if key == "scores"
                           else bool(_ids_equal(got[key], served[key]).all()) for key in served)
                report["run_matches_signature"] = same
                if not same:
                    self.fail("saved_model_cli run output differs from the signature's")
        self.report["saved_model_cli"] = report

    def compare_reference(self, served: dict[str, np.ndarray] | None) -> None:
        """The Keras model's top-k against ``serving_default`` (check 4)."""
        if served is not None and served["item_ids"].dtype == object:
            served = {**served, "item_ids": served["item_ids"].astype(bytes)}
        super().compare_reference(served)

    def check_scann(self) -> None:
        """ScaNN's top-k against exact search for the sample queries (check 5)."""
        info = self.manifest.get("scann")
        vectors = getattr(self, "_served_vectors", None)
        if not info or vectors is None:
            self.report["scann"] = None
            return
        from adaptau_tf.export.scann_index import ScannIndex  # imports scann lazily

        items_dir = self.path / "items"
        table = np.load(items_dir / "embeddings.npy")
        rows = np.arange(table.shape[0], dtype=np.int64)
        k = int(min(info["params"].get("num_neighbors", 20), table.shape[0]))
        index = ScannIndex.load(items_dir / info["directory"], rows, info["params"])
        got, _ = index.search(vectors, k=k)
        exact = np.argsort(-(vectors @ table.T), axis=1, kind="stable")[:, :k]
        recall = float(np.mean([np.intersect1d(a, b).size / k for a, b in zip(got, exact)]))
        self.report["scann"] = {"users": int(vectors.shape[0]), "k": k, "recall": recall,
                                "strategy": info["params"].get("strategy"),
                                "min_recall": self.min_scann_recall}
        if recall < self.min_scann_recall:
            self.fail(f"ScaNN recall@{k} against exact search is {recall:.4f} < "
                      f"{self.min_scann_recall} on {vectors.shape[0]} sample queries")
