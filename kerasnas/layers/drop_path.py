"""DARTS' drop-path: a whole op output dropped per sample."""

import keras
from keras import ops

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.layers.DropPath")
class DropPath(keras.layers.Layer):
    """Drops a whole op output per sample in training (DARTS' `drop_path`):
    `x / keep * Bernoulli(keep)` with `keep = 1 - rate`. `rate` is a
    variable, ramped by `DropPathSchedule`."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="drop_path_seed")
        self.rate = self.add_weight(shape=(), initializer="zeros", trainable=False, name="rate")

    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = 1.0 - ops.cast(ops.convert_to_tensor(self.rate), inputs.dtype)
        shape = (ops.shape(inputs)[0], 1, 1, 1)
        mask = ops.cast(keras.random.uniform(shape, seed=self.seed_generator) < keep, inputs.dtype)
        return inputs / keep * mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
