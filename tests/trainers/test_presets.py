"""Named recipes: ALGORITHM.md §6 values, CLI flags override them, both CLIs accept them."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import pytest

from adaptau_tf.trainers import grid_search
from adaptau_tf.trainers import train as trainer
from adaptau_tf.trainers.presets import PRESETS, get_preset


def _parse(*argv):
    return trainer.build_parser().parse_args([*argv, "--output", "unused"])


def test_paper_mf_gowalla_is_the_reference_recipe():
    args = _parse("--preset", "paper-mf-gowalla")
    assert (args.backbone, args.lr, args.l2, args.two_beta, args.margin) == (
        "mf", 1e-4, 1e-9, 0.25, "0.9")
    assert (args.negatives, args.dropout, args.warmup_epochs, args.batch_size) == (
        "sampled:1024x2048", 0.1, 100, 2048)  # per-row draws, as the reference code
    assert (args.embedding_dim, args.loss_form) == (64, "reference")
    lightgcn = _parse("--preset", "paper-lightgcn-gowalla")
    assert (lightgcn.backbone, lightgcn.lr, lightgcn.l2, lightgcn.two_beta,
            lightgcn.negatives, lightgcn.dropout) == ("lightgcn", 1e-3, 1e-5, 0.6, "in-batch", 0.0)
    assert (_parse("--preset", "paper-mf-yelp2018").l2,
            _parse("--preset", "paper-mf-amazon-book").lr,
            _parse("--preset", "paper-lightgcn-yelp2018").l2) == (1e-3, 1e-3, 1e-1)
    assert {p.source for p in PRESETS.values() if p.dataset == "ml-1m"} == {"ours"}
    # The reference MF recipes never stop early (their test metrics dip mid warm-up).
    assert {_parse("--preset", name).patience for name in PRESETS
            if name.startswith("paper-mf-") and get_preset(name).source == "paper"} == {0}
    assert _parse("--preset", "paper-mf-gowalla", "--patience", "10").patience == 10


def test_fast_mf_gowalla_is_the_ml1m_mf_recipe_on_gowalla_with_32_draws():
    fast = get_preset("fast-mf-gowalla")
    assert (fast.source, fast.dataset) == ("ours", "gowalla")
    ml1m = dict(get_preset("paper-mf-ml1m").values)
    assert (ml1m["negatives"], fast.values["negatives"]) == ("sampled:1024", "sampled:1024x32")
    assert dict(fast.values) == {**ml1m, "negatives": "sampled:1024x32"}
    args = _parse("--preset", "fast-mf-gowalla")
    assert (args.lr, args.l2, args.dropout, args.loss_form, args.warmup_epochs,
            args.patience) == (1e-3, 0.0, 0.0, "paper", 1, 5)
    lightgcn = _parse("--preset", "paper-lightgcn-ml1m")  # ours: uniform, not in-batch
    assert (lightgcn.backbone, lightgcn.negatives, lightgcn.loss_form,
            lightgcn.warmup_epochs) == ("lightgcn", "sampled:1024", "paper", 20)


def test_explicit_flags_override_the_preset_in_any_order():
    args = _parse("--lr", "0.01", "--preset", "paper-mf-gowalla", "--margin", "mean")
    assert (args.lr, args.margin, args.l2, args.preset) == (0.01, "mean", 1e-9,
                                                            "paper-mf-gowalla")
    assert _parse().lr == 1e-3 and _parse().preset is None  # no preset: parser defaults


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid_for_both_parsers(name):
    preset = get_preset(name)
    from_flags = vars(_parse(*preset.flags()))  # choices and types checked by argparse
    from_preset = vars(_parse("--preset", name))
    assert {k: v for k, v in from_preset.items() if k != "preset"} == \
        {k: v for k, v in from_flags.items() if k != "preset"}
    grid = grid_search.build_parser().parse_args(["--preset", name, "--epochs", "3",
                                                  "--output", "x"])
    assert grid.epochs == 3 and grid.lr == preset.values["lr"]
    assert grid.backbone == preset.values["backbone"]


def test_unknown_preset_is_refused(capsys):
    with pytest.raises(SystemExit):
        _parse("--preset", "paper-mf-nowhere")
    assert "paper-mf-gowalla" in capsys.readouterr().err
    with pytest.raises(ValueError, match="paper-mf-gowalla"):
        get_preset("nope")


def test_train_records_the_preset_and_its_values(tmp_path):
    trainer.main(["--preset", "paper-mf-ml1m", "--data", "synthetic:num_users=60,num_items=60",
                  "--epochs", "1", "--embedding-dim", "4", "--negatives", "sampled:16",
                  "--batch-size", "256", "--verbose", "0", "--output", str(tmp_path / "run")])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preset"] == "paper-mf-ml1m" and config["epochs"] == 1
    assert (config["dropout"], config["loss_form"], config["warmup_epochs"]) == (
        0.0, "paper", 1)
