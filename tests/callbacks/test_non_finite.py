"""A loss that turns NaN stops supernet training with a clear error; the
checkpoint before it stays intact and training resumes from it."""

import os

import numpy as np
import pytest
import tensorflow as tf

import kerasnas
from kerasnas import callbacks
from tests.nas_helpers import compile_sgd
from tests.nas_helpers import tiny_space


def _supernet():
    supernet = kerasnas.Supernet(tiny_space(), seed=3)
    return compile_sgd(supernet, learning_rate=0.05)


def _data(poison_batch=None):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 5, 32).astype("int64")
    if poison_batch is not None:
        x[8 * poison_batch + 3] = np.nan  # one image of that batch of 8
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


def test_nan_stops_training_naming_epoch_step_and_path(tmp_path):
    supernet = _supernet()
    checkpoint = callbacks.EpochCheckpoint(tmp_path)
    supernet.fit(_data(), epochs=1, callbacks=[checkpoint], verbose=0)
    after_epoch_1 = [v.numpy() for v in supernet.network_variables]

    with pytest.raises(callbacks.NonFiniteLossError) as error:
        supernet.fit(_data(poison_batch=2), epochs=2, initial_epoch=1,
                     callbacks=[checkpoint], verbose=0)
    message = str(error.value)
    path = supernet.space.to_string(supernet.get_path())  # the failing step's path
    assert "nan at epoch 2, step 3 of the epoch" in message
    assert f"training path {path}" in message
    # It names the checkpoint that exists and says what resumes from it.
    assert f"the last checkpoint is {tmp_path / 'epoch_00001.npz'} (after epoch 1)" in message
    assert "resume from it with a lower learning rate (a recipe: --resume --learning-rate <lower>)" in message
    # The diverged weights were not checkpointed.
    assert [os.path.basename(p) for p in callbacks.list_checkpoints(tmp_path)] == ["epoch_00001.npz"]
    assert not all(np.isfinite(v.numpy()).all() for v in supernet.network_variables)

    resumed = _supernet()
    checkpoint = callbacks.EpochCheckpoint(tmp_path)
    assert checkpoint.restore(resumed) == 1
    for a, b in zip(after_epoch_1, resumed.network_variables, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    resumed.fit(_data(), epochs=3, initial_epoch=1, callbacks=[checkpoint], verbose=0)
    assert all(np.isfinite(v.numpy()).all() for v in resumed.network_variables)
    assert len(checkpoint.history["loss"]) == 3


def test_an_infinite_loss_stops_too_and_a_users_guard_is_not_doubled():
    supernet = _supernet()
    x = np.full((8, 8, 8, 3), 1e38, "float32")  # overflows to inf in the convolutions
    y = np.zeros(8, "int64")
    seen = []

    class Spy(callbacks.StopOnNonFiniteLoss):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
            super().on_train_batch_end(batch, logs)

    with pytest.raises(callbacks.NonFiniteLossError, match=r"epoch 1, step 1 of the epoch"):
        supernet.fit(x, y, batch_size=8, epochs=1, callbacks=[Spy()], verbose=0)
    assert seen == [0]  # the user's guard only: no second one was added


def test_nan_in_the_first_epoch_says_no_checkpoint_exists(tmp_path):
    supernet = _supernet()
    directory = tmp_path / "checkpoints"
    with pytest.raises(callbacks.NonFiniteLossError) as error:
        supernet.fit(_data(poison_batch=2), epochs=2,
                     callbacks=[callbacks.EpochCheckpoint(directory)], verbose=0)
    message = str(error.value)
    assert "nan at epoch 1, step 3 of the epoch" in message
    assert message.endswith(
        "This step's weights are not finite and were not saved; no checkpoint was "
        f"written yet (none in {directory}): start again with a lower learning rate "
        "(a recipe: the same command with --learning-rate <lower>) or check the data "
        "of that step."
    )
    assert "after epoch" not in message
    assert callbacks.list_checkpoints(directory) == []

    # The weights are NaN now: the next fit stops at its first step. Without
    # an EpochCheckpoint it names none (not the failed fit's), ...
    with pytest.raises(callbacks.NonFiniteLossError, match="step 1 of the epoch") as error:
        supernet.fit(_data(), epochs=1, verbose=0)
    assert str(error.value).endswith(
        "This step's weights are not finite; no EpochCheckpoint saves this run: "
        "start again with a lower learning rate or check the data of that step."
    )
    # ... and one told the directory names what it holds.
    save_checkpoint = callbacks.epoch_checkpoint.save_checkpoint
    save_checkpoint(_supernet(), str(directory), 4, {})
    guard = callbacks.StopOnNonFiniteLoss(checkpoint=directory)
    with pytest.raises(callbacks.NonFiniteLossError) as error:
        supernet.fit(_data(), epochs=1, callbacks=[guard], verbose=0)
    assert f"the last checkpoint is {directory / 'epoch_00004.npz'} (after epoch 4)" in str(error.value)
    (directory / "epoch_00004.npz").write_bytes(b"damaged")
    with pytest.raises(callbacks.NonFiniteLossError) as error:
        supernet.fit(_data(), epochs=1, callbacks=[guard], verbose=0)
    assert f"no checkpoint in {directory} is readable: start again" in str(error.value)
    assert guard.get_config() == {"monitor": "loss", "checkpoint": str(directory)}
    with pytest.raises(ValueError, match="Invalid value for argument `checkpoint`"):
        callbacks.StopOnNonFiniteLoss(checkpoint=3)
