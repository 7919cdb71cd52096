"""CSVHistory: the CSVLogger layout, with columns that may appear after the first epoch."""

import adaptau_tf  # noqa: F401

# isort: split

import csv

import numpy as np
import pytest
import tensorflow as tf

from adaptau_tf.callbacks import CSVHistory


class _EveryOther(tf.keras.callbacks.Callback):
    """Logs ``late`` (the epoch times 10) on odd epochs only, like an evaluation every 2."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch % 2 == 1:
            logs["late"] = np.float32(10.0 * epoch)


def _fit(callbacks, epochs, initial_epoch=0):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(3,))])
    model.compile(optimizer="sgd", loss="mse")
    x = np.arange(24, dtype=np.float32).reshape(8, 3) / 24.0
    y = x.sum(axis=1, keepdims=True)
    return model.fit(x, y, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
                     callbacks=callbacks)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_key_first_logged_in_epoch_two_gets_a_column(tmp_path):
    path = tmp_path / "history.csv"
    history = _fit([_EveryOther(), CSVHistory(path)], epochs=4)
    rows = _rows(path)
    assert list(rows[0]) == ["epoch", "late", "loss"]
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["late"] for r in rows] == ["NA", "10.0", "NA", "30.0"]
    np.testing.assert_allclose([float(r["loss"]) for r in rows], history.history["loss"],
                               rtol=1e-6)


def test_keras_csvlogger_drops_that_column(tmp_path):
    # The trap CSVHistory removes: if this starts to fail, Keras fixed it.
    path = tmp_path / "keras.csv"
    _fit([_EveryOther(), tf.keras.callbacks.CSVLogger(str(path))], epochs=4)
    assert "late" not in _rows(path)[0]


def test_same_file_as_csvlogger_when_the_keys_do_not_change(tmp_path):
    ours, keras = tmp_path / "ours.csv", tmp_path / "keras.csv"
    _fit([CSVHistory(ours), tf.keras.callbacks.CSVLogger(str(keras))], epochs=3)
    # CSVLogger also adds an all-NA val_<key> column per key when the first epoch has
    # no validation keys; CSVHistory adds columns only for keys that were logged.
    expected = [{k: v for k, v in row.items() if not k.startswith("val_")}
                for row in _rows(keras)]
    assert {v for row in _rows(keras) for k, v in row.items() if k.startswith("val_")} == {"NA"}
    assert _rows(ours) == expected


def test_append_continues_a_narrower_file_and_widens_it(tmp_path):
    path = tmp_path / "history.csv"
    _fit([tf.keras.callbacks.CSVLogger(str(path))], epochs=2)  # an old run: loss only
    _fit([_EveryOther(), CSVHistory(path, append=True)], epochs=4, initial_epoch=2)
    rows = _rows(path)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert [r["late"] for r in rows] == ["NA", "NA", "NA", "30.0"]
    assert all(float(r["loss"]) > 0 for r in rows)
    assert not (tmp_path / "history.csv.tmp").exists()


def test_without_append_a_new_fit_starts_afresh(tmp_path):
    path = tmp_path / "history.csv"
    _fit([_EveryOther(), CSVHistory(path)], epochs=2)
    _fit([CSVHistory(path)], epochs=1)
    rows = _rows(path)
    assert len(rows) == 1 and list(rows[0]) == ["epoch", "loss"]


def test_a_ragged_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.5\n1,1.2,9\n")
    with pytest.raises(ValueError, match=r"history.csv, line 3: 3 fields under a header of 2"):
        _fit([_EveryOther(), CSVHistory(path, append=True)], epochs=3, initial_epoch=2)


def test_repeated_epochs_replace_their_rows_only_when_asked(tmp_path):
    # A run resumed from a checkpoint older than its last row trains epochs 1-2 again.
    replaced, appended = tmp_path / "replaced.csv", tmp_path / "appended.csv"
    _fit([CSVHistory(replaced, append=True, replace_repeated_epochs=True),
          CSVHistory(appended, append=True)], epochs=3)
    before = _rows(replaced)
    history = _fit([_EveryOther(), CSVHistory(replaced, append=True,
                                              replace_repeated_epochs=True),
                    CSVHistory(appended, append=True)], epochs=4, initial_epoch=1)
    rows = _rows(replaced)
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[0] == {**before[0], "late": "NA"}  # the kept row, widened
    np.testing.assert_allclose([float(r["loss"]) for r in rows[1:]], history.history["loss"],
                               rtol=1e-6)
    assert [r["late"] for r in rows] == ["NA", "10.0", "NA", "30.0"]
    assert [r["epoch"] for r in _rows(appended)] == ["0", "1", "2", "1", "2", "3"]  # CSVLogger's
    assert not (tmp_path / "replaced.csv.tmp").exists()


def test_a_non_integer_epoch_is_refused_with_its_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.5\nfirst,1.2\n")
    with pytest.raises(ValueError, match=r"history.csv, line 3: epoch 'first' is not an integer"):
        _fit([CSVHistory(path, append=True, replace_repeated_epochs=True)], epochs=2,
             initial_epoch=1)


def test_config_round_trip_and_bad_separator(tmp_path):
    callback = CSVHistory(tmp_path / "h.tsv", separator="\t", append=True,
                          replace_repeated_epochs=True)
    clone = CSVHistory(**callback.get_config())
    assert clone.get_config() == {"filename": str(tmp_path / "h.tsv"), "separator": "\t",
                                  "append": True, "replace_repeated_epochs": True}
    with pytest.raises(ValueError, match=r"separator must be one character, got ', '"):
        CSVHistory(tmp_path / "h.csv", separator=", ")
