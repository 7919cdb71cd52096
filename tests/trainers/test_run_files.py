"""trainers/run_files.py: the stopwatch's booked time and its refusal of a foreign file."""

import adaptau_tf  # noqa: F401

# isort: split

import json

import pytest

from adaptau_tf.trainers.run_files import Stopwatch, write_json


def test_stopwatch_adds_this_process_to_the_booked_time(tmp_path):
    path = tmp_path / "elapsed.json"
    first = Stopwatch(path)
    assert first.base == 0.0 and not path.exists()
    first.on_epoch_end(0)
    booked = json.loads(path.read_text())["seconds"]
    assert 0.0 < booked <= first.seconds
    write_json(path, {"seconds": booked + 50.0})  # as if earlier processes had run 50 s more
    second = Stopwatch(path)
    assert second.base == booked + 50.0
    second.on_epoch_end(1)
    assert json.loads(path.read_text())["seconds"] >= booked + 50.0
    assert [p.name for p in tmp_path.iterdir()] == ["elapsed.json"]  # no temporary left
    clone = Stopwatch(**second.get_config())  # reads what the second one booked
    assert clone.path == path and clone.base == json.loads(path.read_text())["seconds"]


def test_a_file_without_seconds_is_refused_with_its_path(tmp_path):
    path = tmp_path / "elapsed.json"
    path.write_text(json.dumps({"minutes": 3}))
    with pytest.raises(ValueError, match=r"elapsed.json: not a stopwatch file .*'seconds'"):
        Stopwatch(path)
