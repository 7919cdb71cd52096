import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow is imported)

# isort: split
import json

import numpy as np
import pytest

from adaptau_tf.export import recommend
from adaptau_tf.export.recommend import Recommender
from tests.export.conftest import NUM_USERS, in_memory_topk


def test_saved_model_backend_matches_in_memory_model(trained, exported):
    data, model = trained
    users = np.array([0, 17, NUM_USERS - 1])
    ids, scores = Recommender(exported.parent).recommend(users, k=10)
    ref_ids, ref_scores = in_memory_topk(model, data, users, 10)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6)


def test_scann_backend_excludes_seen_and_agrees_with_saved_model(trained, exported):
    data, _ = trained
    users = np.arange(0, NUM_USERS, 11)
    exact_ids, exact_scores = Recommender(exported, "saved-model").recommend(users, k=10)
    ids, scores = Recommender(exported, "scann").recommend(users, k=10)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert np.mean(ids == exact_ids) > 0.99  # brute-force ScaNN: equal up to exact ties
    seen = set(map(tuple, np.concatenate([data.train, data.valid]).tolist()))
    assert not {(int(u), int(i)) for u, row in zip(users, ids) for i in row} & seen


def test_unknown_users_and_backends_are_rejected(exported):
    recommender = Recommender(exported)
    with pytest.raises(ValueError, match=rf"unknown user ids \[{NUM_USERS}\]"):
        recommender.recommend([0, NUM_USERS], k=5)
    with pytest.raises(ValueError, match="backend must be one of"):
        Recommender(exported, backend="faiss")


@pytest.mark.parametrize("backend", ["saved-model", "scann"])
def test_cli_prints_topk(exported, capsys, backend):
    args = [str(exported.parent), "--user-ids", "3", "4", "-k", "5", "--backend", backend]
    assert recommend.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[1].startswith("user 3: ") and len(lines[1].split()) == 2 + 5
    assert recommend.main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(r["item_ids"]) for r in out["recommendations"]] == [5, 5]
    assert recommend.main([str(exported), "--user-ids", "-4"]) == 2
    assert "unknown user ids [-4]" in capsys.readouterr().err
