import json
import os
import re
import warnings

import keras
import numpy as np
import pytest

from kerasnas import callbacks

X = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
Y = (X.sum(axis=1) > 0).astype("int64")


def _model(name="model"):
    # Dropout draws from a SeedGenerator: its state must be restored too.
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dropout(0.5, seed=1)(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x), name=name)
    model.compile(
        optimizer=keras.optimizers.SGD(
            keras.optimizers.schedules.CosineDecay(0.1, 16), momentum=0.9
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _fit(model, epochs, initial_epoch, checkpoint):
    model.fit(X, Y, batch_size=16, shuffle=False, epochs=epochs,
              initial_epoch=initial_epoch, callbacks=[checkpoint], verbose=0)


def _state(model):
    variables = model.variables + model.optimizer.variables
    return [v.numpy() for v in variables]


def test_resume_is_bit_identical(tmp_path):
    keras.utils.set_random_seed(0)
    straight = _model()
    initial = [v.numpy() for v in straight.variables]
    checkpoint = callbacks.EpochCheckpoint(tmp_path / "a")
    _fit(straight, 2, 0, checkpoint)

    keras.utils.set_random_seed(0)
    first = _model()
    for variable, value in zip(first.variables, initial):
        variable.assign(value)
    _fit(first, 1, 0, callbacks.EpochCheckpoint(tmp_path / "b"))

    resumed = _model()  # fresh weights and optimizer, another process' view
    checkpoint_b = callbacks.EpochCheckpoint(tmp_path / "b")
    assert checkpoint_b.restore(resumed) == 1
    assert int(resumed.optimizer.iterations.numpy()) == 4
    _fit(resumed, 2, 1, checkpoint_b)

    for a, b in zip(_state(straight), _state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert checkpoint_b.history == checkpoint.history
    assert len(checkpoint.history["loss"]) == 2


def test_files_are_atomic_and_pruned(tmp_path):
    model = _model()
    checkpoint = callbacks.EpochCheckpoint(tmp_path, keep=2)
    _fit(model, 3, 0, checkpoint)
    assert sorted(os.listdir(tmp_path)) == [
        "epoch_00002.npz", "epoch_00003.npz", "history.json",
    ]
    assert callbacks.latest_checkpoint(tmp_path).endswith("epoch_00003.npz")
    content = json.loads((tmp_path / "history.json").read_text())
    assert content["epoch"] == 3
    assert content["history"] == checkpoint.history


def test_restore_checkpoint_function(tmp_path):
    model = _model()
    _fit(model, 1, 0, callbacks.EpochCheckpoint(tmp_path))
    other = _model()
    assert callbacks.restore_checkpoint(other, tmp_path) == 1
    for a, b in zip(_state(model), _state(other), strict=True):
        np.testing.assert_array_equal(a, b)
    assert callbacks.restore_checkpoint(_model(), tmp_path / "empty") == 0


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="argument `keep`"):
        callbacks.EpochCheckpoint(tmp_path, keep=0)
    model = _model()
    _fit(model, 1, 0, callbacks.EpochCheckpoint(tmp_path))
    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="call `compile\\(\\)` first"):
        callbacks.restore_checkpoint(uncompiled, tmp_path)
    different = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    different.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="Cannot restore"):
        callbacks.restore_checkpoint(different, tmp_path)


def test_resume_skips_a_truncated_latest_checkpoint(tmp_path):
    model = _model()
    checkpoint = callbacks.EpochCheckpoint(tmp_path)
    _fit(model, 1, 0, checkpoint)
    after_epoch_1, history_1 = _state(model), json.loads(json.dumps(checkpoint.history))
    _fit(model, 2, 1, checkpoint)
    latest = tmp_path / "epoch_00002.npz"
    latest.write_bytes(latest.read_bytes()[:100])  # a copy cut short

    resumed = _model()
    checkpoint = callbacks.EpochCheckpoint(tmp_path)
    expected = (
        f"Cannot read the checkpoint {latest} (BadZipFile: File is not a zip file): "
        f"restoring {tmp_path / 'epoch_00001.npz'} (after epoch 1) instead."
    )
    with pytest.warns(UserWarning, match=re.escape(expected)):
        assert checkpoint.restore(resumed) == 1
    for a, b in zip(after_epoch_1, _state(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    # The history is the restored checkpoint's, history.json too.
    assert checkpoint.history == history_1
    assert json.loads((tmp_path / "history.json").read_text()) == {"epoch": 1, "history": history_1}

    _fit(resumed, 2, 1, checkpoint)  # epoch 2 again, replacing the damaged file
    assert len(checkpoint.history["loss"]) == 2
    assert json.loads((tmp_path / "history.json").read_text())["epoch"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert callbacks.restore_checkpoint(_model(), tmp_path) == 2


def test_no_readable_checkpoint_names_the_directory_and_files(tmp_path):
    model = _model()
    _fit(model, 1, 0, callbacks.EpochCheckpoint(tmp_path))
    (tmp_path / "epoch_00001.npz").write_bytes(b"")
    (tmp_path / "epoch_00002.npz").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ValueError) as error:
        callbacks.restore_checkpoint(_model(), tmp_path)
    message = str(error.value)
    assert message.startswith(
        "Invalid value for argument `directory`. Expected a directory holding a "
        f"readable checkpoint. Received: directory={str(tmp_path)!r}, where no checkpoint reads: "
        f"{tmp_path / 'epoch_00002.npz'} (ValueError: "
    )
    assert f"{tmp_path / 'epoch_00001.npz'} (EOFError: No data left in file)" in message
    with pytest.raises(ValueError, match="no checkpoint reads"):
        callbacks.epoch_checkpoint.latest_readable_checkpoint(tmp_path)
