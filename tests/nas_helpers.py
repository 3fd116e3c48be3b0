"""Small models and data for the unit tests."""

import numpy as np
import tensorflow as tf

import keras
import kerasnas


def tiny_space(**kwargs):
    """A NAS-Bench-201 space small enough for unit tests."""
    options = dict(num_classes=5, channels=4, cells_per_stage=1, input_shape=(8, 8, 3))
    options.update(kwargs)
    return kerasnas.spaces.NasBench201(**options)


TINY_MOBILENET = dict(
    num_classes=10,
    input_shape=(32, 32, 3),
    stem_filters=8,
    first_block_filters=8,
    stage_filters=(8, 16),
    stage_depths=(2, 2),
    stage_strides=(1, 2),
    last_filters=32,
)


def tiny_mobilenet(**kwargs):
    """A MobileNet space small enough for unit tests."""
    return kerasnas.spaces.MobileNetSpace(**{**TINY_MOBILENET, **kwargs})


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
