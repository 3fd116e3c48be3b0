"""Stopping a supernet's training at the first non-finite loss."""

import math

import keras

from kerasnas.api_export import kerasnas_export


@kerasnas_export("kerasnas.callbacks.NonFiniteLossError")
class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (see `StopOnNonFiniteLoss`)."""


@kerasnas_export("kerasnas.callbacks.StopOnNonFiniteLoss")
class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first batch whose loss is NaN or
    infinite, naming the epoch, the step and the path being trained.

    `Supernet.fit` adds it unless the callbacks already hold one (or a
    `keras.callbacks.TerminateOnNaN`). It raises from `on_train_batch_end`,
    before the epoch ends, so an `EpochCheckpoint` never writes the
    diverged weights: the last checkpoint is the one after the last
    complete epoch, and `--resume` (or `EpochCheckpoint.restore`) goes on
    from it. Unlike `TerminateOnNaN`, which stops quietly and lets the
    epoch's callbacks run on the broken weights, the run ends with an
    error a script cannot mistake for success.

    The logged loss is the epoch's running mean, which turns non-finite at
    the first non-finite batch and stays so: the step named is that batch.

    Args:
        monitor: the log to watch (default `"loss"`).
    """

    def __init__(self, monitor="loss"):
        super().__init__()
        self.monitor = monitor
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        if math.isfinite(value):
            return
        raise NonFiniteLossError(
            f"Training stopped: the {self.monitor} is {value} at epoch "
            f"{self._epoch + 1}, step {batch + 1} of the epoch{self._describe_path()}. "
            "This step's weights are not finite and were not saved; checkpoints "
            f"of the epochs before (the last one after epoch {self._epoch}) are "
            "intact. Lower the learning rate, clip gradients or check the data "
            "of that step, then resume from the last checkpoint."
        )

    def _describe_path(self):
        model = self.model
        get_path = getattr(model, "get_path", None)
        if get_path is None:
            return ""
        try:
            arch = get_path()
            space = model.space
            text = space.to_string(arch) if hasattr(space, "to_string") else str(arch)
        except Exception:  # the message must not fail on a broken model
            return ""
        return f", training path {text}"

    def get_config(self):
        return {"monitor": self.monitor}
