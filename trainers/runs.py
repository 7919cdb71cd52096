"""A run's data and model, and finished runs rebuilt from their directories.

Shared by ``adaptau-train`` (:mod:`adaptau_tf.trainers.train`, which re-exports these
names), the grid search, the exporters and the benchmarks: a run directory's
``config.json`` is enough to rebuild its split (:func:`prepare_data`), its
compiled model (:func:`make_model`) and, once finished, the model with its
best weights (:func:`load_run`).

Example:
    >>> run = load_run("runs/quickstart")
    >>> users, items = run.model.compute_representations()
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from adaptau_tf.data import InteractionData, load_data
from adaptau_tf.evaluation import RankingEvaluator
from adaptau_tf.models import RetrievalModel, build_model
from adaptau_tf.trainers.resume import recorded


@dataclasses.dataclass
class TrainedRun:
    """A finished run rebuilt from its directory.

    Attributes:
        model: the retrieval model with the run's best weights loaded.
        data: the interaction data with the run's validation split.
        config: the run's ``config.json``.
    """

    model: RetrievalModel
    data: InteractionData
    config: dict[str, Any]

    def test_rankings(self) -> tuple[RankingEvaluator, np.ndarray, np.ndarray]:
        """``(test evaluator, user ids [U], top items [U, Kmax])`` of the restored model."""
        evaluator = evaluators(self.data, self.config["protocol"])[1]
        users, items = self.model.compute_representations(training=False)
        ids, top = evaluator.evaluate_top_items(users, items)
        return evaluator, ids, top


def prepare_data(config: dict[str, Any]) -> InteractionData:
    """Loads the run's data and carves its validation split (honest protocol).

    Raises:
        ValueError: the honest protocol without a validation split (a fraction
            outside (0, 1), or data where no user has two training rows): epochs
            would be chosen on the test set, which only ``--protocol paper`` does.
    """
    data = load_data(config["data"], seed=config["seed"])
    if config["protocol"] != "honest":
        return data
    fraction = config["valid_fraction"]
    if not 0 < fraction < 1:
        raise ValueError(f"--protocol honest needs --valid-fraction in (0, 1), got {fraction!r}; "
                         "--protocol paper chooses epochs on the test set instead")
    data = data.with_validation_split(fraction, seed=config["seed"])
    if len(data.valid) == 0:
        raise ValueError(f"--protocol honest: {config['data']} gives an empty validation split "
                         "(no user has two training rows); --protocol paper chooses epochs on "
                         "the test set instead")
    return data


def data_fingerprint(data: InteractionData) -> str:
    """sha256 of the run's sizes and its train, validation and test pairs."""
    import hashlib

    digest = hashlib.sha256(f"{data.num_users} {data.num_items}".encode())
    for pairs in (data.train, data.valid, data.test):
        digest.update(np.ascontiguousarray(pairs, dtype=np.int64).tobytes())
    return digest.hexdigest()


def memory_estimate(config: dict[str, Any], data: InteractionData) -> int:
    """Bytes the run's model needs at least: the tables with Adam's two slots, and
    for LightGCN the graph and the 4 propagated layers (forward and backward)."""
    nodes = data.num_users + data.num_items
    table = nodes * config["embedding_dim"] * 4
    total = 3 * table
    if config["backbone"] == "lightgcn":
        total += 2 * len(data.train) * 12 + 8 * table
    return total


def check_memory(config: dict[str, Any], data: InteractionData) -> None:
    """Refuses, before anything is allocated, a model larger than the free memory.

    Raises:
        MemoryError: with the estimate, the available memory and the sizes.
    """
    import psutil

    needed = memory_estimate(config, data)
    available = psutil.virtual_memory().available
    if needed > 0.9 * available:
        raise MemoryError(
            f"{config['data']}: {data.num_users} users x {data.num_items} items at dimension "
            f"{config['embedding_dim']} need about {needed / 2**30:.1f} GiB for the "
            f"{config['backbone']} model; {available / 2**30:.1f} GiB are available")


def make_model(config: dict[str, Any], data: InteractionData) -> RetrievalModel:
    """Builds and compiles the run's model (after :func:`check_memory`)."""
    check_memory(config, data)
    model = build_model(
        config["backbone"],
        data,
        strategy=config["strategy"],
        temperature=config["tau"],
        loss_form=config["loss_form"],
        negatives=config["negatives"],
        embedding_dim=config["embedding_dim"],
        l2=config["l2"],
        message_dropout=config["dropout"],
        seed=config["seed"],
        remove_accidental_hits=recorded(config, "remove_accidental_hits"),
        sampling_correction=recorded(config, "sampling_correction"),
        score=recorded(config, "score"),
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(config["lr"]),
                  jit_compile=use_jit(config, model))
    return model


def use_jit(config: dict[str, Any], model: RetrievalModel) -> bool:
    """Whether ``--jit-compile`` (``auto`` for configs written before it) means XLA.

    ``auto``: on for a single-device step whose negatives cover the catalogue
    (``model.dense_item_gradient``), where XLA fuses the gather, normalisation
    and loss; off otherwise (with sparse item gradients XLA is slower) and for
    models without an XLA step (``supports_jit``: not LightGCN).

    Raises:
        ValueError: ``on`` for a model without an XLA step.
    """
    choice = config.get("jit_compile", "auto")
    if choice == "on" and not model.supports_jit:
        raise ValueError(f"--jit-compile on: {type(model).__name__} has no XLA train step "
                         "(its sparse graph propagation has no XLA kernel); use auto or off")
    if choice == "auto":
        return (model.supports_jit and model.dense_item_gradient
                and config.get("distribute", "none") == "none")
    return choice == "on"


def _union(a: sp.csr_matrix, b: sp.csr_matrix) -> sp.csr_matrix:
    merged = (a + b).tocsr()
    merged.data[:] = 1.0
    return merged


def evaluators(data: InteractionData, protocol: str) -> tuple[RankingEvaluator, RankingEvaluator]:
    """``(monitor, test)`` evaluators: the monitored split and the final test.

    Honest: validation targets with training items masked, and test with
    train + validation masked. Paper: both are the test split (the reference
    code's protocol), clearly not an unbiased estimate.
    """
    ks = evaluation_ks(data.num_items)
    test = RankingEvaluator(_union(data.train_csr, data.valid_csr), data.test_csr, ks=ks)
    if protocol == "paper":
        return test, test
    if len(data.valid) == 0:
        raise ValueError("the honest protocol needs a validation split (data.valid is empty)")
    return RankingEvaluator(data.train_csr, data.valid_csr, ks=ks), test


#: The evaluation's cut-offs; those above a small catalogue's size are dropped.
KS: tuple[int, ...] = (10, 20, 50)


def evaluation_ks(num_items: int) -> tuple[int, ...]:
    """:data:`KS` up to ``num_items`` (``(num_items,)`` below the smallest), with a note."""
    kept = tuple(k for k in KS if k <= num_items) or (num_items,)
    if kept != KS:
        print(f"note: {num_items} items: metrics at K = {', '.join(map(str, kept))} only",
              file=sys.stderr)
    return kept


def warm_start(model: RetrievalModel, source: RetrievalModel) -> None:
    """Copies ``source``'s user ``[n, d]`` and item ``[m, d]`` embedding tables into ``model``."""
    for name in ("user_embedding", "item_embedding"):
        target, origin = getattr(model, name).embeddings, getattr(source, name).embeddings
        if target.shape != origin.shape:
            raise ValueError(f"--init-from: {name} has shape {origin.shape} in the source "
                             f"run, {target.shape} here")
        target.assign(origin)


def load_run(output_dir: str | os.PathLike[str],
             data: InteractionData | None = None) -> TrainedRun:
    """Rebuilds a finished run: data with its split, model with its best weights.

    ``data``: the run's split, already built by :func:`prepare_data` (runs on one
    split can share it); built from ``config.json`` when None.

    Example:
        >>> run = load_run("runs/quickstart")
        >>> users, items = run.model.compute_representations()
    """
    output = Path(output_dir)
    config_path = output / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found: is {output} a training run directory?")
    if not (output / "weights").exists():
        raise FileNotFoundError(f"{output / 'weights'} not found: the run has not finished")
    config = json.loads(config_path.read_text())
    if data is None:
        data = prepare_data(config)
    elif (data.num_users, data.num_items, len(data.train)) != (
            config["num_users"], config["num_items"], config["num_train"]):
        raise ValueError(f"{config_path}: the data passed has {data.num_users} users, "
                         f"{data.num_items} items, {len(data.train)} training rows; the run "
                         f"had {config['num_users']}, {config['num_items']}, {config['num_train']}")
    recorded_data = output / "data.json"
    if recorded_data.exists():
        expected = json.loads(recorded_data.read_text())["sha256"]
        if data_fingerprint(data) != expected:
            raise ValueError(
                f"{output}: its data ({config['data']}) changed since the run was trained: "
                "the seen-item table and every id would be wrong; retrain, or restore the "
                "training files")
    model = make_model(config, data)
    model.load_weights(str(output / "weights" / "model")).expect_partial()
    return TrainedRun(model=model, data=data, config=config)
