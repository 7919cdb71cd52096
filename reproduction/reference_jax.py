"""An independent JAX implementation of Adap-τ MF training, for a GPU machine.

Why this exists: the reference code's Gowalla MF recipe (lr 1e-4, 100 warm-up
epochs, 1024 negatives drawn per row, ~300 epochs; ALGORITHM.md §6) needs more
than a day on 2 CPU cores with the package (``adaptau-train --preset
paper-mf-gowalla``), and the GPU machine lent to some sessions has JAX but no
TensorFlow (and no way to install it). This script re-implements, in JAX, the
same training loop as ``trainers/train.py`` for MF (ALGORITHM.md §1-§3, §5) so
that such a recipe can run in minutes there. It is a diagnostic: its figures
are labelled as coming from this script, never mixed into the package's
tables. A run of our own recipe through both (the package on CPU, this script
on GPU) checks that the two implementations agree.

What it computes (as the package does): L2-normalised MF towers, the paper or
reference loss form, uniform negatives (one draw per row, or ``G`` draws with
row ``b`` scored against draw ``b mod G``), τ0 from the closed form with a
warm-up prior, τ_u from the Lambert-W closed form on each user's mean loss at
τ = 1 over the previous epoch, L2 on the raw embeddings of the batch, Adam
(Keras's ε = 1e-7), and after every epoch the all-ranking test Recall@20 /
NDCG@20 with training items masked (the paper protocol: the best epoch is
chosen on test).

Output: one JSON line per epoch in ``--out`` (the first line is the run's
settings, the last its summary: the best epoch by test NDCG@20, and the epoch
early stopping with ``--patience`` would have ended the run).

Example:
    python reproduction/reference_jax.py --data ../shared/data/gowalla \\
        --strategy adap-tau --recipe paper-mf-gowalla --out runs/at.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

K = 20
# The trained tables: {"user": [n, d], "item": [m, d]} (raw, unnormalised).
Params = dict[str, jax.Array]
# The package's presets (trainers/presets.py) for Gowalla MF.
RECIPES: dict[str, dict[str, Any]] = {
    "paper-mf-gowalla": dict(lr=1e-4, l2=1e-9, dropout=0.1, two_beta=0.25, margin="0.9",
                             loss_form="reference", warmup_epochs=100, draws=0),
    "fast-mf-gowalla": dict(lr=1e-3, l2=0.0, dropout=0.0, two_beta=1.0, margin="mean",
                            loss_form="paper", warmup_epochs=1, draws=32),
}


def load_lightgcn(path: Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], int, int]:
    """Training pairs ``([P] users, [P] items)``, per-user test items, n users, m items."""
    def read(name: str) -> dict[int, np.ndarray]:
        rows: dict[int, np.ndarray] = {}
        with open(path / name) as handle:
            for line_no, line in enumerate(handle, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    ids = [int(x) for x in fields]
                except ValueError as err:
                    raise ValueError(f"{path / name}:{line_no}: not an integer: {err}") from None
                rows[ids[0]] = np.unique(np.asarray(ids[1:], np.int64))
        return rows

    train, test = read("train.txt"), read("test.txt")
    n = 1 + max(max(train), max(test))
    m = 1 + max(int(v.max()) for v in list(train.values()) + list(test.values()) if v.size)
    users = np.concatenate([np.full(v.size, u, np.int64) for u, v in train.items()])
    items = np.concatenate([v for v in train.values()])
    tests = [test.get(u, np.zeros(0, np.int64)) for u in range(n)]
    return users, items, tests, n, m


def tau0_closed_form(un: jax.Array, itn: jax.Array, pu: np.ndarray, pi: np.ndarray,
                     active: np.ndarray, log_ratio: float) -> tuple[float, float, float]:
    """``(τ0, μ+, μ)`` of ALGORITHM.md §2 (equal-variance form) on normalised vectors."""
    mu_pos = float(jnp.mean(jnp.sum(un[pu] * itn[pi], axis=-1)))
    mu = float(jnp.mean(un[active] @ jnp.mean(itn, axis=0)))
    return (mu_pos - mu) / log_ratio, mu_pos, mu


def user_temperatures(tau0: float, loss: np.ndarray, has: np.ndarray, margin: str,
                      two_beta: float) -> np.ndarray:
    """``τ_u = τ0 exp(W(max(−1/e, (L(u) − m_u) / 2β)))``; users without a loss get τ0."""
    tau = np.full(loss.shape, tau0, np.float64)
    if not has.any():
        return tau
    values = loss[has]
    ref = values.mean() if margin == "mean" else np.quantile(values, float(margin))
    x = np.maximum((values - ref) / two_beta, -1.0 / math.e + 1e-6)
    tau[has] = tau0 * np.exp(np.real(scipy.special.lambertw(x, k=0)))
    return tau


def _unit_rows(x: jax.Array) -> jax.Array:
    """Rows scaled to unit L2 norm (``[rows, d]``)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def make_step(args: argparse.Namespace, m: int) -> Callable[..., tuple[Any, ...]]:
    """The jitted training step (loss, gradients, Adam, per-user loss sums)."""
    b1, b2, eps = 0.9, 0.999, 1e-7

    def loss_fn(params: Params, users: jax.Array, items: jax.Array, key: jax.Array,
                g: jax.Array, t_all: jax.Array) -> tuple[jax.Array, jax.Array]:
        u_raw, i_tab = params["user"][users], params["item"]
        k_drop, k_neg = jax.random.split(key)
        u_in = u_raw
        if args.dropout > 0:
            keep = jax.random.bernoulli(k_drop, 1.0 - args.dropout, u_raw.shape)
            u_in = jnp.where(keep, u_raw / (1.0 - args.dropout), 0.0)
        u, it = _unit_rows(u_in), _unit_rows(i_tab)
        batch = users.shape[0]
        if args.draws == 0:
            neg_ids = jax.random.randint(k_neg, (batch, args.negatives), 0, m)
        else:
            draw = jax.random.randint(k_neg, (args.draws, args.negatives), 0, m)
            neg_ids = draw[jnp.arange(batch) % args.draws]
        pos = jnp.sum(u * it[items], axis=-1)
        neg = jnp.take_along_axis(u @ it.T, neg_ids, axis=1)
        t = t_all[users]

        def form(gp: jax.Array, tn: jax.Array) -> jax.Array:
            if args.loss_form == "reference":
                return jax.nn.logsumexp(neg * tn[:, None], axis=1) - gp * pos
            logits = jnp.concatenate([(pos * tn)[:, None], neg * tn[:, None]], axis=1)
            return jax.nn.logsumexp(logits, axis=1) - tn * pos

        gp = g if args.loss_form == "reference" else t
        per_row = form(gp, t)
        unit = jax.lax.stop_gradient(form(jnp.ones_like(t), jnp.ones_like(t)))
        sq = jnp.sum(i_tab * i_tab, axis=-1)
        reg = (jnp.sum(u_raw * u_raw) + jnp.sum(sq[items]) + jnp.sum(sq[neg_ids])) / 2 / batch
        return jnp.mean(per_row) + args.l2 * reg, unit

    @jax.jit
    def step(params: Params, opt: dict[str, Any], sums: jax.Array, counts: jax.Array,
             users: jax.Array, items: jax.Array, key: jax.Array, g: jax.Array,
             t_all: jax.Array) -> tuple[Params, dict[str, Any], jax.Array, jax.Array, jax.Array]:
        (loss, unit), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, users, items, key, g, t_all)
        count = opt["t"] + 1
        lr = args.lr * jnp.sqrt(1 - b2 ** count) / (1 - b1 ** count)
        new_m = jax.tree.map(lambda a, gr: b1 * a + (1 - b1) * gr, opt["m"], grads)
        new_v = jax.tree.map(lambda a, gr: b2 * a + (1 - b2) * gr * gr, opt["v"], grads)
        params = jax.tree.map(lambda p, a, v: p - lr * a / (jnp.sqrt(v) + eps),
                              params, new_m, new_v)
        sums = sums.at[users].add(unit)
        counts = counts.at[users].add(1.0)
        return params, {"m": new_m, "v": new_v, "t": count}, sums, counts, loss

    return step


@jax.jit
def _eval_chunk(uc: jax.Array, itn: jax.Array, train_mask: jax.Array, test_mask: jax.Array,
                ntest: jax.Array) -> tuple[jax.Array, jax.Array]:
    scores = jnp.where(train_mask, -jnp.inf, uc @ itn.T)
    _, idx = jax.lax.top_k(scores, K)
    hits = jnp.take_along_axis(test_mask, idx, axis=1).astype(jnp.float32)
    discounts = 1.0 / jnp.log2(jnp.arange(2, K + 2, dtype=jnp.float32))
    idcg = jnp.cumsum(discounts)[jnp.clip(jnp.minimum(ntest, K) - 1, 0, K - 1)]
    valid = ntest > 0
    recall = jnp.where(valid, hits.sum(1) / jnp.maximum(ntest, 1), 0.0)
    ndcg = jnp.where(valid, (hits * discounts).sum(1) / idcg, 0.0)
    return recall.sum(), ndcg.sum()


class Evaluator:
    """All-ranking test Recall@20 / NDCG@20 with training items masked."""

    def __init__(self, users: np.ndarray, items: np.ndarray, tests: list[np.ndarray], n: int,
                 m: int, chunk: int = 2048) -> None:
        self.test_users = np.asarray([u for u in range(n) if tests[u].size], np.int64)
        self.chunk = chunk
        pad = (-len(self.test_users)) % chunk
        self.users_padded = np.concatenate([self.test_users, np.zeros(pad, np.int64)])
        rows = len(self.users_padded)  # padded rows: no test items, never counted
        row_of = np.full(n, -1, np.int64)
        row_of[self.test_users] = np.arange(len(self.test_users))
        train = np.zeros((rows, m), bool)
        keep = row_of[users] >= 0
        train[row_of[users[keep]], items[keep]] = True
        test = np.zeros((rows, m), bool)
        for r, u in enumerate(self.test_users):
            test[r, tests[u]] = True
        ntest = np.asarray([tests[u].size for u in self.test_users] + [0] * pad, np.int32)
        self.train, self.test = jnp.asarray(train), jnp.asarray(test)
        self.ntest = jnp.asarray(ntest)

    def __call__(self, un: jax.Array, itn: jax.Array) -> tuple[float, float]:
        recall = ndcg = 0.0
        for s in range(0, len(self.users_padded), self.chunk):
            sl = slice(s, s + self.chunk)
            r, g = _eval_chunk(un[self.users_padded[sl]], itn, self.train[sl], self.test[sl],
                               self.ntest[sl])
            recall, ndcg = recall + float(r), ndcg + float(g)
        return recall / len(self.test_users), ndcg / len(self.test_users)


def normalised(params: Params) -> tuple[jax.Array, jax.Array]:
    """L2-normalised ``([n, d] users, [m, d] items)`` (no dropout)."""
    return _unit_rows(params["user"]), _unit_rows(params["item"])


def summarize(epochs: list[dict[str, Any]], patience: int) -> dict[str, Any]:
    """Best epoch by test NDCG@20, overall and as early stopping would have left it."""
    best = max(epochs, key=lambda e: e["test_ndcg@20"])
    stop_best, wait = epochs[0], 0
    for e in epochs[1:]:
        if e["test_ndcg@20"] > stop_best["test_ndcg@20"]:
            stop_best, wait = e, 0
        else:
            wait += 1
            if wait >= patience:
                break
    stop_epoch = e["epoch"] if len(epochs) > 1 else epochs[0]["epoch"]
    return {"summary": True, "epochs_run": epochs[-1]["epoch"],
            "best_epoch": best["epoch"], "test_recall@20": best["test_recall@20"],
            "test_ndcg@20": best["test_ndcg@20"], "patience": patience,
            "patience_stop_epoch": stop_epoch, "patience_best_epoch": stop_best["epoch"],
            "patience_recall@20": stop_best["test_recall@20"],
            "patience_ndcg@20": stop_best["test_ndcg@20"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="LightGCN-format folder")
    p.add_argument("--out", type=Path, required=True, help="JSON-lines output")
    p.add_argument("--strategy", choices=["fixed", "adap-tau0", "adap-tau"], required=True)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="paper-mf-gowalla")
    p.add_argument("--tau", type=float, default=0.1, help="τ of --strategy fixed")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--tau-u-start", type=int, default=0,
                   help="first epoch whose τ_u is per-user (0: as the package, from the start)")
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--negatives", type=int, default=1024)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-users", type=int, default=0, help="keep the first N users (smoke runs)")
    p.add_argument("--deadline-s", type=float, default=0.0, help="stop after the epoch past it")
    for key, value in RECIPES["paper-mf-gowalla"].items():
        p.add_argument("--" + key.replace("_", "-"), type=type(value), default=None)
    args = p.parse_args(argv)
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    start = time.perf_counter()
    users, items, tests, n, m = load_lightgcn(args.data)
    if args.max_users:
        keep = users < args.max_users
        users, items, tests, n = users[keep], items[keep], tests[:args.max_users], args.max_users
    counts = np.bincount(users, minlength=n)
    active = np.flatnonzero(counts > np.quantile(counts, 0.2))
    in_active = np.isin(users, active)
    pu, pi = users[in_active], items[in_active]
    log_ratio = math.log(len(active) * m / (2.0 * len(pu)))
    evaluator = Evaluator(users, items, tests, n, m)

    key = jax.random.PRNGKey(args.seed)
    key, ku, ki = jax.random.split(key, 3)
    def xavier(k: jax.Array, rows: int) -> jax.Array:
        bound = math.sqrt(6.0 / (rows + args.dim))
        return jax.random.uniform(k, (rows, args.dim), jnp.float32, -bound, bound)
    params = {"user": xavier(ku, n), "item": xavier(ki, m)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    opt = {"m": zeros, "v": jax.tree.map(jnp.zeros_like, params), "t": jnp.zeros((), jnp.float32)}
    step = make_step(args, m)
    rng = np.random.default_rng(args.seed)
    tau0 = args.tau
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    header.update(users=n, items=m, train_rows=int(users.size), device=str(jax.devices()[0]))
    history: list[dict[str, Any]] = []
    with open(args.out, "w") as out:
        out.write(json.dumps({"config": header}) + "\n")
        sums = jnp.zeros(n, jnp.float32)
        cnts = jnp.zeros(n, jnp.float32)
        for epoch in range(args.epochs):
            t0 = time.perf_counter()
            record: dict[str, Any] = {"epoch": epoch + 1}
            tau_u = np.full(n, tau0)
            if args.strategy != "fixed":
                un, itn = normalised(params)
                data_tau0, mu_pos, mu = tau0_closed_form(un, itn, pu, pi, active, log_ratio)
                candidate = 0.7 / log_ratio if epoch < args.warmup_epochs else data_tau0
                if math.isfinite(candidate) and candidate > 0:
                    tau0 = min(max(candidate, 0.01), 2.0)
                tau_u = np.full(n, tau0)
                if args.strategy == "adap-tau" and epoch >= args.tau_u_start:
                    s, c = np.asarray(sums, np.float64), np.asarray(cnts, np.float64)
                    has = c > 0
                    loss = np.divide(s, c, out=np.zeros_like(s), where=has)
                    tau_u = user_temperatures(tau0, loss, has, args.margin, args.two_beta)
                q = np.quantile(tau_u, [0.1, 0.5, 0.9])
                record.update(tau0=tau0, mu_pos=mu_pos, mu=mu, tau_u_p10=q[0], tau_u_p50=q[1],
                              tau_u_p90=q[2], tau_u_min=float(tau_u.min()))
            sums, cnts = jnp.zeros(n, jnp.float32), jnp.zeros(n, jnp.float32)
            g = jnp.float32(1.0 / tau0)
            t_all = jnp.asarray(1.0 / tau_u, jnp.float32)
            order = rng.permutation(users.size)
            losses = []
            for s in range(0, users.size, args.batch_size):
                idx = order[s:s + args.batch_size]
                key, sub = jax.random.split(key)
                params, opt, sums, cnts, loss = step(params, opt, sums, cnts, users[idx],
                                                     items[idx], sub, g, t_all)
                losses.append(loss)
            record["loss"] = float(jnp.mean(jnp.stack(losses)))
            record["train_seconds"] = time.perf_counter() - t0
            recall, ndcg = evaluator(*normalised(params))
            record.update({"test_recall@20": recall, "test_ndcg@20": ndcg,
                           "seconds": time.perf_counter() - t0,
                           "elapsed": time.perf_counter() - start})
            history.append(record)
            out.write(json.dumps(record) + "\n")
            out.flush()
            print(json.dumps(record), flush=True)
            if args.deadline_s and time.perf_counter() - start > args.deadline_s:
                break
        summary = summarize(history, args.patience)
        out.write(json.dumps(summary) + "\n")
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    main()
