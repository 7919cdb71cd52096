"""Tests of the LightGCN-format reader."""

import adaptau_tf  # noqa: F401  (selects Keras 2 before tensorflow)

# isort: split
import warnings
from pathlib import Path

import numpy as np
import pytest

from adaptau_tf.data.lightgcn import load_lightgcn, read_lightgcn

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_pairs_with_trailing_spaces_user_only_lines_and_duplicates(tmp_path):
    path = _write(tmp_path / "train.txt", "0 5 3 5 \n1 \n2 7 7 7\n\n")
    pairs, num_users, num_items = read_lightgcn(path)
    assert pairs.dtype == np.int64
    np.testing.assert_array_equal(pairs, [[0, 5], [0, 3], [2, 7]])
    assert num_users == 3  # user 2 is the largest id; user 1 has no items
    assert num_items == 8


def test_user_only_line_is_counted_in_num_users(tmp_path):
    pairs, num_users, num_items = read_lightgcn(_write(tmp_path / "t.txt", "0 1\n4\n"))
    np.testing.assert_array_equal(pairs, [[0, 1]])
    assert (num_users, num_items) == (5, 2)


def test_windows_line_endings_and_tabs(tmp_path):
    pairs, _, _ = read_lightgcn(_write(tmp_path / "t.txt", "0\t1 2\r\n1 0\r\n"))
    np.testing.assert_array_equal(pairs, [[0, 1], [0, 2], [1, 0]])


@pytest.mark.parametrize(
    ("text", "line", "token", "kind"),
    [
        ("0 1 2\n1 3 x7 4\n", 2, "x7", "non-integer"),
        ("0 1\n1 2\n2 1.5\n", 3, "1.5", "non-integer"),
        ("0 1 2\n1 -3\n", 2, "-3", "negative"),
        ("-1 2\n", 1, "-1", "negative"),
    ],
)
def test_bad_token_error_names_file_line_and_token(tmp_path, text, line, token, kind):
    path = _write(tmp_path / "bad_train.txt", text)
    with pytest.raises(ValueError) as info:
        read_lightgcn(path)
    message = str(info.value)
    assert "bad_train.txt" in message
    assert f"line {line}" in message
    assert repr(token) in message
    assert kind in message


@pytest.mark.parametrize("text", ["", "  \n\n "])
def test_empty_file_is_an_error(tmp_path, text):
    path = _write(tmp_path / "empty.txt", text)
    with pytest.raises(ValueError, match=r"empty\.txt.*empty"):
        read_lightgcn(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_lightgcn(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="no_folder"):
        load_lightgcn(tmp_path / "no_folder")
    _write(tmp_path / "train.txt", "0 1\n")
    with pytest.raises(FileNotFoundError, match="test.txt"):
        load_lightgcn(tmp_path)


def test_load_sizes_from_both_files_and_no_warning_when_clean(tmp_path):
    _write(tmp_path / "train.txt", "0 0 1\n1 1 2\n2 0 2 \n")
    _write(tmp_path / "test.txt", "0 2\n1 0\n2 1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_lightgcn(tmp_path, name="toy")
    assert (data.num_users, data.num_items, data.name) == (3, 3, "toy")
    assert data.train.shape == (6, 2) and data.test.shape == (3, 2)
    assert data.valid.shape == (0, 2)
    assert load_lightgcn(tmp_path).name == tmp_path.name


def test_warns_for_unseen_test_users_and_items(tmp_path):
    _write(tmp_path / "train.txt", "0 0 1\n1 1\n2\n")
    _write(tmp_path / "test.txt", "0 2\n2 0\n3 4 1\n")
    with pytest.warns(UserWarning) as record:
        data = load_lightgcn(tmp_path)
    messages = [str(w.message) for w in record]
    user_msg = next(m for m in messages if "test user" in m)
    item_msg = next(m for m in messages if "test item" in m)
    assert "2 test user(s)" in user_msg and "2, 3" in user_msg
    assert "2 test item(s)" in item_msg and "2, 4" in item_msg
    assert (data.num_users, data.num_items) == (4, 5)


def test_real_ml1m_matches_readme_counts():
    folder = SHARED_DATA / "ml-1m"
    if not (folder / "train.txt").is_file():
        pytest.skip(f"{folder} not available")
    data = load_lightgcn(folder)
    assert (data.num_users, data.num_items) == (6022, 3043)
    assert data.train.shape == (796244, 2)
    assert data.test.shape == (99455, 2)
