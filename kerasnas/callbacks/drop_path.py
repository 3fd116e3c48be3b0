"""The drop-path rate schedule of DARTS' evaluation training."""

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.layers import DropPath


@kerasnas_export("kerasnas.callbacks.DropPathSchedule")
class DropPathSchedule(keras.callbacks.Callback):
    """Sets every `DropPath` of the model to `rate * epoch / epochs` at the
    start of each epoch (DARTS: `drop_path_prob * epoch / epochs`)."""

    def __init__(self, rate=0.2, epochs=None):
        super().__init__()
        self.max_rate = float(rate)
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        epochs = self.epochs or self.params.get("epochs", 1)
        value = self.max_rate * epoch / epochs
        for layer in self.model._flatten_layers(include_self=False):
            if isinstance(layer, DropPath):
                layer.rate.assign(value)
