"""Matplotlib figures of ``adaptau-report`` and ``reproduction/noise.py`` (headless, Agg).

Every function writes one PNG atomically (temporary file, then rename) and
returns its path. The τ-sensitivity figure is
:func:`adaptau_tf.trainers.grid_search.plot_sensitivity`, reused as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp)
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def plot_magnitudes(curves: Mapping[str, Mapping[str, np.ndarray]], path: Path) -> Path:
    """Mean raw item-vector norm per popularity group over epochs (paper Fig. 1a).

    Args:
        curves: label → ``{"epochs": [E], "magnitude": [E, G]}`` (one panel per
            label, one line per group, darker = more popular).
        path: the PNG to write.
    """
    plt = _pyplot()
    labels = list(curves)
    fig, axes = plt.subplots(1, max(len(labels), 1), figsize=(4.2 * max(len(labels), 1), 3.4),
                             dpi=120, squeeze=False)
    for ax, label in zip(axes[0], labels):
        epochs, magnitude = curves[label]["epochs"], curves[label]["magnitude"]
        groups = magnitude.shape[1]
        colours = plt.cm.viridis(np.linspace(0.9, 0.0, groups))
        for g in range(groups):
            ax.plot(epochs, magnitude[:, g], color=colours[g], linewidth=1.2,
                    label=f"group {g}" if g in (0, groups - 1) else None)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean raw ‖e_i‖")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title="popularity", title_fontsize=7)
    return _save(fig, path)


def plot_group_recall(values: Mapping[str, np.ndarray], path: Path, k: int = 20) -> Path:
    """Test Recall@k per item popularity group, one bar per strategy (paper Fig. 4).

    Args:
        values: label → ``[G]`` per-group recall (decomposed: sums to Recall@k).
        path: the PNG to write.
        k: the cut-off (axis label).
    """
    plt = _pyplot()
    labels = list(values)
    groups = max((len(v) for v in values.values()), default=0)
    width = 0.8 / max(len(labels), 1)
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=120)
    for j, label in enumerate(labels):
        x = np.arange(len(values[label])) + (j - (len(labels) - 1) / 2) * width
        ax.bar(x, values[label], width=width, label=label)
    ax.set_xticks(np.arange(groups))
    ax.set_xlabel("item popularity group (0 = least popular)")
    ax.set_ylabel(f"test Recall@{k} share")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


GRID_MARK = "grid-search optimum τ"
"""Label of the dashed τ when it is the grid search's best fixed τ."""


def plot_tau_distribution(taus: Mapping[str, np.ndarray], path: Path,
                          grid_tau: float | None = None,
                          mark_label: str = GRID_MARK) -> Path:
    """Histograms of the per-user τ_u (paper Fig. 5), grid-search optimum dashed.

    Args:
        taus: label → ``[n]`` τ_u.
        path: the PNG to write.
        grid_tau: the grid-search best fixed τ, if known.
        mark_label: legend of the dashed line (say where the τ comes from).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    finite = [np.asarray(v)[np.isfinite(v)] for v in taus.values()]
    values = np.concatenate(finite) if finite else np.zeros(0)
    low, high = (values.min(), values.max()) if values.size else (0.0, 1.0)
    if grid_tau is not None:
        low, high = min(low, grid_tau), max(high, grid_tau)
    bins = np.linspace(low, high if high > low else low + 1e-3, 50)
    for label, tau in zip(taus, finite):
        ax.hist(tau, bins=bins, alpha=0.55, label=f"{label} (median {np.median(tau):.3f})")
    if grid_tau is not None:
        ax.axvline(grid_tau, color="black", linestyle="--", linewidth=1,
                   label=f"{mark_label}={grid_tau:g}")
    ax.set_xlabel("τ_u")
    ax.set_ylabel("users")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_noise_global(rows: Sequence[Mapping[str, Any]], path: Path,
                      metric: str = "test_recall@20") -> Path:
    """Test metric vs global noise ratio, fixed τ vs Adap-τ (paper Table 4 as a plot).

    Args:
        rows: the ``"global"`` list of a noise result (``ratio``, ``fixed``,
            ``adap-tau``).
        path: the PNG to write.
        metric: key inside ``fixed`` / ``adap-tau``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=120)
    ratios = [row["ratio"] for row in rows]
    for method, style in (("fixed", "s--"), ("adap-tau", "o-")):
        ax.plot(ratios, [row[method][metric] for row in rows], style,
                label="fixed τ (grid best)" if method == "fixed" else "Adap-τ")
    ax.set_xlabel("false positives per training item (global ratio)")
    ax.set_ylabel(metric.replace("test_", "test "))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_noise_local(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """τ_u per user noise group (local setting): median with the 10–90 % range.

    Args:
        rows: the ``"local"`` list of a noise result (``noise``, ``median_tau_u``,
            optional ``tau_u_p10`` / ``tau_u_p90``).
        path: the PNG to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    noise = np.array([row["noise"] for row in rows], float)
    median = np.array([row["median_tau_u"] for row in rows], float)
    low = np.array([row.get("tau_u_p10", m) for row, m in zip(rows, median)], float)
    high = np.array([row.get("tau_u_p90", m) for row, m in zip(rows, median)], float)
    ax.errorbar(100 * noise, median, yerr=[median - low, high - median], fmt="o-", capsize=4)
    ax.set_xlabel("noise ratio of the user group (%)")
    ax.set_ylabel("τ_u (median, 10–90 %)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def noise_markdown(payload: Mapping[str, Any]) -> str:
    """The noise-robustness tables (global: Recall/NDCG; local: τ_u per group)."""
    lines = ["| noise ratio | fixed τ Recall@20 | Adap-τ Recall@20 | Δ Recall | "
             "fixed τ NDCG@20 | Adap-τ NDCG@20 | Δ NDCG |", "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in payload.get("global", []):
        f, a = row["fixed"], row["adap-tau"]
        lines.append(
            f"| {row['ratio']:g} | {f['test_recall@20']:.4f} | {a['test_recall@20']:.4f} | "
            f"{a['test_recall@20'] - f['test_recall@20']:+.4f} | {f['test_ndcg@20']:.4f} | "
            f"{a['test_ndcg@20']:.4f} | {a['test_ndcg@20'] - f['test_ndcg@20']:+.4f} |")
    local = payload.get("local", [])
    if local:
        lines += ["", "| user group noise | users | τ_u p10 | median τ_u | τ_u p90 | "
                  "fixed τ Recall@20 | Adap-τ Recall@20 |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for row in local:
            lines.append(
                f"| {100 * row['noise']:.0f} % | {row.get('users', '')} | "
                f"{row.get('tau_u_p10', float('nan')):.4f} | {row['median_tau_u']:.4f} | "
                f"{row.get('tau_u_p90', float('nan')):.4f} | "
                f"{row.get('fixed', {}).get('test_recall@20', float('nan')):.4f} | "
                f"{row.get('adap-tau', {}).get('test_recall@20', float('nan')):.4f} |")
    return "\n".join(lines)
