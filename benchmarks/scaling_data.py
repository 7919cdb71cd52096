"""Synthetic data of ``benchmarks/scaling.py``: O(interactions) generation, cached.

Sizes 200k-20M interactions; each is generated once, in its own subprocess (so
that the generator's memory is not counted in a measured process), and saved
as ``train.npy`` / ``test.npy`` / ``meta.json`` under
``reproduction/work/scaling/<size>-seed0/``.

Usage:
    .venv/bin/python benchmarks/scaling_data.py 1M   # generate (and cache) one size
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: name -> (interactions, users, items)
SIZES: dict[str, tuple[int, int, int]] = {
    "200k": (200_000, 5_000, 10_000),
    "1M": (1_000_000, 25_000, 50_000),
    "5M": (5_000_000, 125_000, 250_000),
    "20M": (20_000_000, 500_000, 1_000_000),
}
WORK = REPO / "reproduction" / "work" / "scaling"
CLUSTER_ITEMS = 2000  # items per taste cluster
TEST_FRACTION = 0.2


# ----------------------------------------------------------------- generation
def generate(interactions: int, users: int, items: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Vectorised synthetic feedback, O(interactions) time and memory.

    (``adaptau_tf.data.make_synthetic`` scores every user against every item,
    which is O(users × items): 5·10^11 at the largest size.) Users and items
    fall into taste clusters of ``CLUSTER_ITEMS`` items; 70 % of a user's
    positives come from their cluster, 30 % from the whole catalogue, each
    with a power-law popularity (rank = ⌊size·U²⌋). Per-user counts are
    lognormal (mean ``interactions / users``, at least 5); duplicates are
    removed and the total trimmed to ``interactions``; 20 % of each user's
    rows (at least one) go to test.
    """
    rng = np.random.default_rng(seed)
    mean = interactions / users
    counts = np.exp(rng.normal(np.log(mean) - 0.18, 0.6, users))
    counts = np.maximum(5, np.round(counts * 1.1 * interactions / counts.sum())).astype(np.int64)
    row_user = np.repeat(np.arange(users, dtype=np.int64), counts)
    num_clusters = max(1, items // CLUSTER_ITEMS)
    cluster_size = items // num_clusters
    item_order = rng.permutation(items)  # cluster c = item_order[c*size:(c+1)*size]
    popularity = rng.permutation(items)  # global popularity rank -> item
    user_cluster = rng.integers(0, num_clusters, users)
    local = rng.random(row_user.size) < 0.7
    u = rng.random(row_user.size)
    item = np.where(
        local,
        item_order[np.minimum(user_cluster[row_user] * cluster_size
                              + (cluster_size * u * u).astype(np.int64), items - 1)],
        popularity[(items * u * u).astype(np.int64)],
    )
    del local, u
    keys = np.unique(row_user * items + item)
    del row_user, item
    if keys.size > interactions:  # trim uniformly, keeping the sorted order
        keys = keys[np.sort(rng.choice(keys.size, interactions, replace=False))]
    user, item = np.divmod(keys, items)
    del keys
    order = np.lexsort((rng.random(user.size), user))  # random order within each user
    starts = np.searchsorted(user, np.arange(users + 1))
    per_user = np.diff(starts)
    rank = np.empty(user.size, np.int64)
    rank[order] = np.arange(user.size) - starts[user[order]]
    holdout = np.where(per_user >= 2, np.clip(np.floor(TEST_FRACTION * per_user + 0.5), 1,
                                              per_user - 1), 0)
    is_test = rank < holdout[user]
    pairs = np.stack([user, item], axis=1)
    return {"train": pairs[~is_test], "test": pairs[is_test]}


def data_dir(name: str) -> Path:
    """Where the size's data are cached."""
    return WORK / f"{name}-seed0"


def cached_data(name: str) -> Path:
    """Generates the size's data in a subprocess unless it is cached."""
    directory = data_dir(name)
    if not (directory / "meta.json").exists():
        subprocess.run([sys.executable, __file__, name], check=True)
    return directory


def generate_main(name: str) -> None:
    """Generates one size and writes it under ``WORK``."""
    interactions, users, items = SIZES[name]
    start = time.perf_counter()
    split = generate(interactions, users, items)
    directory = data_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    for key, pairs in split.items():
        np.save(directory / f"{key}.npy", pairs)
    meta = {"users": users, "items": items,
            "interactions": int(sum(len(p) for p in split.values())),
            "train": len(split["train"]), "test": len(split["test"]),
            "generate_seconds": time.perf_counter() - start}
    (directory / "meta.json").write_text(json.dumps(meta))
    print(f"generated {name}: {meta}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SIZES:
        sys.exit(f"usage: scaling_data.py SIZE, SIZE one of {list(SIZES)}; got {sys.argv[1:]}")
    generate_main(sys.argv[1])
