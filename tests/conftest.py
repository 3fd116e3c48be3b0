"""Shared fixtures. Splits the CPU into 2 logical devices (as Keras'
`distribute_test.py` does) before TensorFlow initializes its devices, so
MirroredStrategy tests run without GPUs."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402

import kerasnas  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def tiny_space(**kwargs):
    """A NAS-Bench-201 space small enough for unit tests."""
    options = dict(num_classes=5, channels=4, cells_per_stage=1, input_shape=(8, 8, 3))
    options.update(kwargs)
    return kerasnas.spaces.NasBench201(**options)


def tiny_data(num=32, batch_size=8, seed=0, num_classes=5, shape=(8, 8, 3)):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num,) + shape).astype("float32")
    y = rng.integers(0, num_classes, num).astype("int64")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)
    return x, y, dataset


def compile_sgd(model, learning_rate=0.1, momentum=0.9):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model
