"""Export any two-tower model (query tower + candidates) for TF Serving, plus a ScaNN index.

Layout (TF Serving's ``<base>/<model_name>/<version>/``, written under a
hidden temporary name and renamed into place, like ``adaptau-export``)::

    <export_dir>/<model_name>/<version>/
        saved_model.pb, variables/        TwoTowerServingModule (core TF ops only)
        items/embeddings.npy              [m, d] float32 candidate vectors
        items/scann/                      ScaNN index; its row r is item_ids[r]
        items/manifest.json               the raw id vocabulary, inputs, k, checksums

A request in TF Serving's REST row format (``POST
/v1/models/<model_name>:predict``), one instance per query::

    {"instances": [
        {"user_id": "42", "k": 10, "history": ["Star Wars (1977)", "Fargo (1996)"]},
        {"user_id": "no-such-user", "k": 5, "history": ["", ""]}]}

``k`` is per row (every input of the row format has the batch as its first
dimension); ``history`` rows are padded to one length with ``""`` (``-1`` for
integer ids). An unknown user goes to the query lookup's OOV row.

CLI: ``adaptau-export-two-tower --query-model user_model.keras --candidates
titles.txt --candidate-model movie_model.keras --export-dir exports``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from adaptau_tf.export.check import ExportChecker
from adaptau_tf.export.integrity import checksums
from adaptau_tf.export.saved_model import staged_version
from adaptau_tf.export.scann_index import ScannIndex
from adaptau_tf.export.two_tower_module import TwoTowerServingModule

MANIFEST_FORMAT = 1
DEFAULT_QUERY_FEATURE = tf.TensorSpec([None], tf.string, name="user_id")


def candidate_table(
    candidates: tf.data.Dataset | tuple[Any, Any], candidate_model: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(ids [m], vectors [m, d] float32)`` of the candidates.

    Args:
        candidates: a batched dataset of raw ids (the candidate tower's input),
            of ``(ids, features)`` (the tower is called on the features) or
            ``(ids, embeddings)`` (no tower); or an ``(ids, embeddings)`` pair
            of arrays.
        candidate_model: the candidate tower (``None`` with embeddings).

    Raises:
        ValueError: no candidates, duplicate ids, or vectors that are not
            finite ``[m, d]`` (quoted).

    Example:
        >>> ids, vectors = candidate_table(movies.batch(128), movie_model)
        >>> ids[:1], vectors.shape
        (array([b'1-900 (1994)'], dtype=object), (1682, 32))
    """
    if isinstance(candidates, tuple):
        ids, vectors = (np.asarray(part) for part in candidates)
    else:
        id_parts, vector_parts = [], []
        for element in candidates:
            ids, inputs = element if isinstance(element, tuple) else (element, element)
            vectors = candidate_model(inputs, training=False) if candidate_model else inputs
            id_parts.append(np.asarray(ids).reshape(-1))
            vector_parts.append(np.asarray(vectors, np.float32))
        if not id_parts:
            raise ValueError("candidates is an empty dataset")
        ids, vectors = np.concatenate(id_parts), np.concatenate(vector_parts)
    vectors = np.asarray(vectors, np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != ids.shape[0] or ids.ndim != 1:
        raise ValueError(f"need [m] ids and [m, d] vectors, got {ids.shape} and {vectors.shape}")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"candidate ids must be unique, repeated: {unique[counts > 1][:5]}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError("candidate vectors contain NaN or infinite values")
    return ids, vectors


def _json_ids(ids: np.ndarray) -> list[Any]:
    if ids.dtype.kind in "SO":
        return [i.decode("utf-8", "backslashreplace") if isinstance(i, bytes) else str(i)
                for i in ids]
    return ids.tolist()


def pick_sample_queries(
    query_model: Any,
    specs: Sequence[tf.TensorSpec],
    given: Mapping[str, Any] | Any = None,
    count: int = 64,
) -> dict[str, np.ndarray]:
    """``{feature: [B]}`` sample queries for the export's reference and checks.

    ``given`` (a mapping, or one array for a single feature) is used as is;
    otherwise a single feature takes up to ``count`` entries spread over the
    vocabulary of the query tower's first ``StringLookup``/``IntegerLookup``
    of that dtype, and anything else ``"0"..`` / ``0..`` (pass real queries
    through ``sample_queries=`` for a meaningful reference).

    Raises:
        ValueError: given queries that miss a feature or differ in length.
    """
    names = [spec.name for spec in specs]
    if given is not None:
        given = given if isinstance(given, Mapping) else {names[0]: given}
        missing = [name for name in names if name not in given]
        arrays = {name: np.asarray(given[name]) for name in names if name in given}
        if missing or len({a.shape[0] for a in arrays.values()}) != 1:
            raise ValueError(f"sample_queries must give every feature {names} with one length, "
                             f"got {{{', '.join(f'{n}: {a.shape}' for n, a in arrays.items())}}}")
        return arrays
    if len(specs) == 1:
        lookups = (tf.keras.layers.StringLookup, tf.keras.layers.IntegerLookup)
        for layer in getattr(query_model, "submodules", ()):
            if isinstance(layer, lookups):
                vocabulary = np.asarray(layer.get_vocabulary()[layer.num_oov_indices:])
                if vocabulary.size and (vocabulary.dtype.kind in "SUO") == (
                        specs[0].dtype == tf.string):
                    rows = np.unique(np.linspace(0, vocabulary.size - 1, count).astype(int))
                    picked = vocabulary[rows]
                    if specs[0].dtype == tf.string:
                        return {names[0]: np.array([str(v).encode() for v in picked], object)}
                    return {names[0]: picked.astype(specs[0].dtype.as_numpy_dtype)}
    size = min(count, 8)
    return {spec.name: (np.array([str(i).encode() for i in range(size)], object)
                        if spec.dtype == tf.string
                        else np.arange(size).astype(spec.dtype.as_numpy_dtype))
            for spec in specs}


def _reference(query_model: Any, module: TwoTowerServingModule, queries: dict[str, np.ndarray],
               ids: np.ndarray, vectors: np.ndarray, path: Path) -> None:
    """The in-memory towers' top-k for ``queries``, for ``adaptau-check-export``."""
    inputs = ({name: tf.constant(value) for name, value in queries.items()}
              if not module.single_feature else tf.constant(queries[module.feature_names[0]]))
    query = np.asarray(query_model(inputs, training=False), np.float32)
    scores = query @ vectors.T
    k = min(10, module.max_k)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top_ids = ids[order]
    arrays = {f"query/{name}": (value.astype(bytes) if value.dtype == object else value)
              for name, value in queries.items()}
    path.mkdir(parents=True, exist_ok=True)
    np.savez(path / "reference_topk.npz", k=np.int64(k),
             item_ids=top_ids.astype(bytes) if top_ids.dtype.kind in "OU" else top_ids,
             scores=np.take_along_axis(scores, order, axis=1), **arrays)


def export_two_tower(
    query_model: Any,
    candidate_model: Any,
    candidates: tf.data.Dataset | tuple[Any, Any],
    export_dir: str | Path,
    model_name: str = "two_tower",
    version: int | None = None,
    query_features: tf.TensorSpec | Mapping[str, tf.TensorSpec] = DEFAULT_QUERY_FEATURE,
    max_k: int = 100,
    history: bool = True,
    build_scann: bool = True,
    scann_params: dict[str, Any] | None = None,
    overwrite: bool = False,
    sample_queries: Mapping[str, Any] | Any = None,
) -> Path:
    """Writes a TF Serving-ready SavedModel of ``query_model`` over ``candidates``.

    Beside it, ``assets.extra/reference_topk.npz`` (a folder TF Serving
    ignores) holds sample queries and the in-memory towers' top-10 for them,
    which ``adaptau-check-export`` compares the SavedModel with.

    Args:
        query_model: the query tower, raw features in (lookups inside).
        candidate_model: the candidate tower, or ``None`` when ``candidates``
            holds embeddings.
        candidates: see :func:`candidate_table`; the ids are what
            ``serving_default`` returns.
        export_dir: TF Serving base directory.
        model_name: TF Serving model name.
        version: positive int; default 1 + the largest existing version.
        query_features: the query tower's input: a named ``TensorSpec`` or a
            mapping ``name -> TensorSpec`` (default ``user_id`` string ``[B]``).
        max_k: the largest per-row ``k`` (capped at the number of candidates).
        history: give ``serving_default`` a ``history`` input whose ids are
            excluded from each row's top-k.
        build_scann: build and save a ScaNN index beside the SavedModel.
        scann_params: override of :meth:`ScannIndex.choose_params`.
        overwrite: replace an existing ``version``.
        sample_queries: queries for the reference (see :func:`pick_sample_queries`;
            default: spread over the query tower's lookup vocabulary).

    Returns:
        The published version directory.

    Raises:
        FileExistsError: the version exists and ``overwrite`` is False.
        ValueError: bad candidates (see :func:`candidate_table`), or a graph
            holding non-core or denied ops (``adaptau_tf.export.check``).

    Example:
        >>> path = export_two_tower(model.user_model, model.movie_model,
        ...                         movies.batch(128), "/tmp/serving", model_name="movies")
    """
    ids, vectors = candidate_table(candidates, candidate_model)
    with staged_version(export_dir, model_name, version, overwrite) as (tmp, version):
        module = TwoTowerServingModule(query_model, vectors, ids, query_features, max_k, history)
        tf.saved_model.save(module, str(tmp), signatures=module.signatures())
        specs = module.query_embedding.input_signature
        _reference(query_model, module, pick_sample_queries(
            query_model, specs, sample_queries), ids, vectors, tmp / "assets.extra")
        checker = ExportChecker(tmp, run_cli=False)
        checker.check_ops()
        if checker.report["ops"]["bad"]:
            raise ValueError(f"non-core or denied ops in the SavedModel: "
                             f"{checker.report['ops']['bad']}")
        items_dir = tmp / "items"
        items_dir.mkdir()
        np.save(items_dir / "embeddings.npy", vectors)
        scann = None
        if build_scann:
            index = ScannIndex.build(vectors, np.arange(len(ids), dtype=np.int64), scann_params)
            index.save(items_dir / "scann")
            scann = {"directory": "scann", "params": index.params,
                     "row_ids": "row r of the index is item_ids[r]"}
        norms = np.linalg.norm(vectors, axis=1)
        specs = module.serve.input_signature
        manifest = {
            "format_version": MANIFEST_FORMAT,
            "kind": "two_tower",
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "model_name": model_name,
            "version": version,
            "count": int(vectors.shape[0]),
            "dimension": int(vectors.shape[1]),
            "dtype": "float32",
            "metric": "dot_product",
            "normalized": bool(np.allclose(norms, 1.0, atol=1e-4)),
            "item_id_dtype": "string" if module.string_ids else "int64",
            "item_ids": _json_ids(ids),
            "scann": scann,
            "saved_model": {
                "signatures": sorted(module.signatures()),
                "inputs": {spec.name: {"dtype": spec.dtype.name, "shape": spec.shape.as_list()}
                           for spec in specs},
                "max_k": module.max_k,
                "history": module.history,
                "history_padding": "" if module.string_ids else -1,
                "tensorflow_version": tf.__version__,
            },
        }
        manifest["checksums"] = checksums(tmp)
        (items_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return Path(export_dir) / model_name / str(version)


def _load_keras(path: str) -> Any:
    import adaptau_tf.layers  # noqa: F401  (registers L2Normalization for loading)

    return tf.keras.models.load_model(path, compile=False)


def _read_ids(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return np.array([line.encode("utf-8") for line in lines if line], dtype=object)


def main(argv: Sequence[str] | None = None) -> int:
    """``adaptau-export-two-tower``: saved Keras query tower + candidates -> export."""
    parser = argparse.ArgumentParser(prog="adaptau-export-two-tower",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--query-model", required=True,
                        help="saved Keras query tower (.keras file or SavedModel directory)")
    parser.add_argument("--candidates", required=True,
                        help="candidate ids: a text file (one id per line) or an .npy array")
    parser.add_argument("--candidate-model", default=None,
                        help="saved Keras candidate tower (called on the ids)")
    parser.add_argument("--candidate-embeddings", default=None,
                        help="[m, d] .npy candidate vectors instead of --candidate-model")
    parser.add_argument("--query-feature", default="user_id:string",
                        help="NAME:DTYPE of the query tower's input (default user_id:string)")
    parser.add_argument("--export-dir", required=True, help="TF Serving base directory")
    parser.add_argument("--model-name", default="two_tower")
    parser.add_argument("--version", type=int, default=None)
    parser.add_argument("--max-k", type=int, default=100)
    parser.add_argument("--no-history", dest="history", action="store_false",
                        help="serving_default without the history input")
    parser.add_argument("--no-scann", dest="build_scann", action="store_false")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--sample-queries", default=None,
                        help="query ids (text file or .npy) for the reference top-k that "
                             "adaptau-check-export compares with (default: from the lookup)")
    args = parser.parse_args(argv)
    if (args.candidate_model is None) == (args.candidate_embeddings is None):
        parser.error("give exactly one of --candidate-model and --candidate-embeddings")
    name, _, dtype = args.query_feature.partition(":")
    feature = tf.TensorSpec([None], tf.as_dtype(dtype or "string"), name=name)
    ids = _read_ids(args.candidates)
    if args.candidate_embeddings is not None:
        candidates: Any = (ids, np.load(args.candidate_embeddings))
        candidate_model = None
    else:
        candidates = tf.data.Dataset.from_tensor_slices(ids).batch(1024)
        candidate_model = _load_keras(args.candidate_model)
    path = export_two_tower(
        _load_keras(args.query_model), candidate_model, candidates, args.export_dir,
        model_name=args.model_name, version=args.version, query_features=feature,
        max_k=args.max_k, history=args.history, build_scann=args.build_scann,
        overwrite=args.overwrite,
        sample_queries=_read_ids(args.sample_queries) if args.sample_queries else None,
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
