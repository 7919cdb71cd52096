"""Named training recipes (``adaptau-train --preset NAME``).

``source="paper"`` presets are the authors' published recipes (docs/ALGORITHM.md
§6: dim 64, Adam, batch 2048, warm-up W = 100 epochs, the reference loss
form; MF: 1024 uniform negatives drawn per row, ``sampled:1024x2048``, and
message dropout 0.1 on the user vector where their logs show it; LightGCN:
in-batch negatives, ranked by the raw inner product, ``score="dot"``).
``source="ours"`` presets fill gaps the paper leaves: MovieLens-1M has no
published recipe (``paper-mf-ml1m``: lr 1e-3, one shared draw of 1024
negatives, the paper loss form; ``paper-lightgcn-ml1m``: 1024 uniform
negatives, as in-batch ones stall there), and ``fast-mf-gowalla`` runs the
ML-1M MF settings with 32 draws per step, as one shared draw covers too few
of Gowalla's 41k items. Why each choice: docs/RESULTS.md.

A preset only changes the parser's defaults: every flag given explicitly on
the command line wins over it. Values a preset does not name keep the
parser's own defaults (e.g. ``2β`` = 1.0 and ``m_u`` = mean where §6 is
silent). Every preset keeps the reference rule for τ0 after the warm-up
(``tau0_min_gap`` 0).

Example:
    adaptau-train --preset paper-mf-gowalla --data lightgcn:path/to/gowalla \\
        --strategy adap-tau --epochs 50 --output runs/gowalla-mf   # --epochs overrides
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named recipe.

    Attributes:
        name: the ``--preset`` value.
        dataset: the data set the recipe was tuned for (``ml-1m``, ``gowalla``, ...).
        source: ``"paper"`` (the reference code's published recipe,
            ALGORITHM.md §6) or ``"ours"`` (chosen here, no published recipe).
        description: one line for ``--help`` and the result tables.
        values: parser destinations (``lr``, ``two_beta``, ...) and their values.
    """

    name: str
    dataset: str
    source: str
    description: str
    values: Mapping[str, Any]

    def flags(self) -> list[str]:
        """The preset as explicit command-line flags (``["--lr", "0.0001", ...]``)."""
        out: list[str] = []
        for key, value in self.values.items():
            flag = f"--{key.replace('_', '-')}"
            if isinstance(value, bool):  # store_true switches
                out += [flag] if value else []
            else:
                out += [flag, str(value)]
        return out


# Common to every reference-code recipe (ALGORITHM.md §6).
_COMMON = {
    "embedding_dim": 64,
    "batch_size": 2048,
    "loss_form": "reference",
    "warmup_epochs": 100,
    "epochs": 300,  # the reference logs show ~150-300 epochs; early stopping ends sooner
    "patience": 10,
    # The reference code takes the data-driven τ0 whatever μ+ − μ after the warm-up.
    "tau0_min_gap": 0.0,
}
# The reference code draws 1024 negatives per row: G = batch size draws. No early
# stopping: on Gowalla the recipe's test NDCG@20 dips for ~40 epochs after epoch 10
# (μ+ turns negative, then recovers during the warm-up), and patience 10 would end the
# run at epoch 20 with 0.1447 Recall@20 instead of 0.1812 at epoch 110
# (results/reference_jax_gowalla_mf/ref_at.jsonl, its summary's patience_stop_epoch).
_MF = {**_COMMON, "backbone": "mf", "negatives": "sampled:1024x2048", "dropout": 0.1,
       "patience": 0}
# LightGCN ranks by the raw inner product of the mean-pooled vectors, as the reference
# code does (its generate_mode nocosine); every rule is evaluated, --score selects.
_LIGHTGCN = {**_COMMON, "backbone": "lightgcn", "negatives": "in-batch", "dropout": 0.0,
             "score": "dot", "compare_scores": True}
# Our MF recipe (reproduction/strategies.py's settings): paper-mf-ml1m, fast-mf-gowalla.
_OURS_MF = {**_MF, "lr": 1e-3, "l2": 0.0, "dropout": 0.0, "loss_form": "paper",
            "warmup_epochs": 1, "patience": 5, "negatives": "sampled:1024"}


def _preset(name: str, dataset: str, source: str, description: str,
            base: Mapping[str, Any], **values: Any) -> Preset:
    return Preset(name, dataset, source, description, {**base, **values})


PRESETS: dict[str, Preset] = {p.name: p for p in (
    _preset("paper-mf-yelp2018", "yelp2018", "paper",
            "MF, reference code: lr 1e-4, l2 1e-3, 1024 negatives per row, dropout 0.1, "
            "W=100, no early stopping",
            _MF, lr=1e-4, l2=1e-3),
    _preset("paper-mf-amazon-book", "amazon-book", "paper",
            "MF, reference code: lr 1e-3, l2 1e-7, 1024 negatives per row, no dropout "
            "(its log is 'nodrop'), W=100, no early stopping",
            _MF, lr=1e-3, l2=1e-7, dropout=0.0),
    _preset("paper-mf-gowalla", "gowalla", "paper",
            "MF, reference code: lr 1e-4, l2 1e-9, 2β 0.25, m_u = 0.9 quantile, "
            "1024 negatives per row, dropout 0.1, W=100, no early stopping",
            _MF, lr=1e-4, l2=1e-9, two_beta=0.25, margin="0.9"),
    _preset("paper-mf-ml1m", "ml-1m", "ours",
            "MF, ours (no published ML-1M recipe): lr 1e-3, l2 0, 1024 negatives, "
            "no dropout, paper loss form, W=1, patience 5",
            _OURS_MF),
    _preset("fast-mf-gowalla", "gowalla", "ours",
            "MF, ours (the paper-mf-ml1m settings on Gowalla, with 32 draws of 1024 "
            "negatives per step: one shared draw covers too few of its 41k items): "
            "lr 1e-3, l2 0, 1024x32 negatives, no dropout, paper loss form, W=1, "
            "patience 5",
            _OURS_MF, negatives="sampled:1024x32"),
    _preset("paper-lightgcn-yelp2018", "yelp2018", "paper",
            "LightGCN, reference code: lr 1e-3, l2 1e-1, 2β 1.5, message dropout 0.1, "
            "in-batch negatives, W=100",
            _LIGHTGCN, lr=1e-3, l2=1e-1, two_beta=1.5, dropout=0.1),
    _preset("paper-lightgcn-gowalla", "gowalla", "paper",
            "LightGCN, reference code: lr 1e-3, l2 1e-5, 2β 0.6, in-batch negatives, W=100",
            _LIGHTGCN, lr=1e-3, l2=1e-5, two_beta=0.6),
    _preset("paper-lightgcn-ml1m", "ml-1m", "ours",
            "LightGCN, ours (no published ML-1M recipe): lr 1e-3, l2 1e-5, 1024 "
            "uniform negatives (in-batch ones stall on ML-1M), paper loss form, W=20",
            _LIGHTGCN, lr=1e-3, l2=1e-5, negatives="sampled:1024", loss_form="paper",
            warmup_epochs=20),
)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; the error lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}"
        ) from None


def preset_help() -> str:
    """``--preset`` help text: every name with its description."""
    return "named recipe; explicit flags override it. " + "; ".join(
        f"{p.name} ({p.source}): {p.description}" for p in PRESETS.values())


class PresetArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose ``--preset NAME`` replaces the defaults.

    The preset's values seed the namespace before parsing; argparse only
    fills in defaults for attributes the namespace lacks, so every flag given
    on the command line still wins. Preset keys the parser does not define
    (e.g. Adap-τ knobs in a parser without them) are dropped.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--preset", default=None)
        known, _ = pre.parse_known_args(args)
        if known.preset is not None:
            if known.preset not in PRESETS:
                self.error(f"argument --preset: unknown preset {known.preset!r}; choose one "
                           f"of {', '.join(sorted(PRESETS))}")
            dests = {action.dest for action in self._actions}
            namespace = namespace or argparse.Namespace()
            for key, value in PRESETS[known.preset].values.items():
                if key in dests and not hasattr(namespace, key):
                    setattr(namespace, key, value)
        return super().parse_known_args(args, namespace)
