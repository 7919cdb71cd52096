"""PopularityGroupTracker and AnalysisTensorBoard inside model.fit."""

import adaptau_tf  # noqa: F401

# isort: split

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.callbacks import (
    AdaptiveTemperature,
    AnalysisTensorBoard,
    PopularityGroupTracker,
    read_groups_csv,
)
from adaptau_tf.data import make_synthetic
from adaptau_tf.evaluation import RankingEvaluator
from adaptau_tf.models import build_model


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_users=80, num_items=60, seed=2).with_validation_split(0.2, seed=0)


def _tags(log_dir):
    tags = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, set()).add(event.step)
    return tags


def test_tracker_and_board_write_groups_and_temperatures(tmp_path, data):
    tf.keras.utils.set_random_seed(0)
    model = build_model("mf", data, strategy="adap-tau", negatives="sampled:16",
                        embedding_dim=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    evaluator = RankingEvaluator(data.train_csr, data.valid_csr, ks=(20,))
    tracker = PopularityGroupTracker.from_data(data, num_groups=4, evaluator=evaluator,
                                               csv_path=tmp_path / "groups.csv")
    board = AnalysisTensorBoard(tmp_path / "tb", tracker=tracker)
    model.fit(data.train_dataset(256, seed=0), epochs=3, verbose=0,
              callbacks=[AdaptiveTemperature.from_data(data), tracker, board])

    tags = _tags(tmp_path / "tb")
    for tag in ("temperature/tau0", "temperature/mu_pos", "temperature/mu",
                "temperature/tau_u", "magnitude/group_00", "magnitude/group_03",
                "val_recall@20_by_group/group_00", "val_ndcg@20_by_group/group_03"):
        assert tags.get(tag) == {1, 2, 3}, (tag, sorted(tags))

    groups = read_groups_csv(tmp_path / "groups.csv")
    assert groups["epochs"].tolist() == [1, 2, 3]
    assert groups["magnitude"].shape == (3, 4) and np.all(groups["magnitude"] > 0)
    raw = model.item_embedding.embeddings.numpy()
    norms = np.linalg.norm(raw, axis=1)
    expected = [norms[tracker.item_groups == g].mean() for g in range(4)]
    assert groups["magnitude"][-1] == pytest.approx(expected, rel=1e-5)
    users, items = model.compute_representations()
    overall = evaluator.evaluate(users, items)["recall@20"]
    assert np.nansum(groups["recall"][-1]) == pytest.approx(overall, abs=1e-9)
    assert groups["items"].sum() == data.num_items


def test_board_with_its_own_tracker_and_a_fixed_strategy(tmp_path, data):
    model = build_model("mf", data, strategy="fixed", temperature=0.2,
                        negatives="sampled:16", embedding_dim=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05))
    board = AnalysisTensorBoard(tmp_path / "tb", item_counts=data.train_item_counts,
                                num_groups=3)
    model.fit(data.train_dataset(256, seed=0), epochs=2, verbose=0, callbacks=[board])
    tags = _tags(tmp_path / "tb")
    assert tags["temperature/tau0"] == {1, 2} and "magnitude/group_02" in tags
    assert "temperature/mu_pos" not in tags  # no AdaptiveTemperature: no μ+
    assert not any(tag.startswith("val_recall") for tag in tags)  # no evaluator
    config = board.get_config()
    assert config["num_groups"] == 3 and config["log_dir"].endswith("tb")
    tracker = PopularityGroupTracker(
        **PopularityGroupTracker(data.train_item_counts, num_groups=5).get_config())
    assert tracker.num_groups == 5 and tracker.item_groups.max() == 4
    assert tf.keras.utils.get_registered_name(AnalysisTensorBoard) == (
        "adaptau_tf>AnalysisTensorBoard")
