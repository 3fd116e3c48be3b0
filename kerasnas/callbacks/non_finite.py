"""Stopping a supernet's training at the first non-finite loss."""

import math
import os

import keras

from kerasnas.api_export import kerasnas_export
from kerasnas.callbacks.epoch_checkpoint import EpochCheckpoint
from kerasnas.callbacks.epoch_checkpoint import fit_checkpoint
from kerasnas.callbacks.epoch_checkpoint import forget_fit_checkpoint
from kerasnas.callbacks.epoch_checkpoint import latest_readable_checkpoint


@kerasnas_export("kerasnas.callbacks.NonFiniteLossError")
class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite (see `StopOnNonFiniteLoss`)."""


@kerasnas_export("kerasnas.callbacks.StopOnNonFiniteLoss")
class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first batch whose loss is NaN or
    infinite, naming the epoch, the step, the path being trained and the
    last checkpoint.

    `Supernet.fit` adds it unless the callbacks already hold one (or a
    `keras.callbacks.TerminateOnNaN`). It raises from `on_train_batch_end`,
    before the epoch ends, so an `EpochCheckpoint` never writes the
    diverged weights: the last checkpoint is the one after the last
    complete epoch, and `--resume` (or `EpochCheckpoint.restore`) goes on
    from it. Unlike `TerminateOnNaN`, which stops quietly and lets the
    epoch's callbacks run on the broken weights, the run ends with an
    error a script cannot mistake for success.

    The error names the checkpoint file to resume from, or says that none
    was written yet (start again), or that no `EpochCheckpoint` saves the
    run. The checkpoints are those of `checkpoint` or, by default, of the
    `EpochCheckpoint` among the same `fit`'s callbacks. A recipe resumed
    with `--resume --learning-rate <lower>` goes on with that rate.

    The logged loss is the epoch's running mean, which turns non-finite at
    the first non-finite batch and stays so: the step named is that batch.

    Args:
        monitor: the log to watch (default `"loss"`).
        checkpoint: optional `EpochCheckpoint`, or its directory, whose
            last checkpoint the error names (default: the `EpochCheckpoint`
            of the same `fit`, if any).
    """

    def __init__(self, monitor="loss", checkpoint=None):
        if not (checkpoint is None or isinstance(checkpoint, (EpochCheckpoint, str, os.PathLike))):
            raise ValueError(
                "Invalid value for argument `checkpoint`. Expected None, a "
                "`kerasnas.callbacks.EpochCheckpoint` or its directory. "
                f"Received: checkpoint={checkpoint!r}"
            )
        super().__init__()
        self.monitor = monitor
        self.checkpoint = checkpoint
        self._epoch = 0

    def on_train_begin(self, logs=None):
        # An earlier fit of the model that stopped on an error (this one,
        # say) left its EpochCheckpoint registered: this fit's registers at
        # each epoch's beginning, after every `on_train_begin`.
        forget_fit_checkpoint(self.model)

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
            f"{self._advice()}"
        )

    def _checkpoint_directory(self):
        checkpoint = self.checkpoint
        if checkpoint is None:
            checkpoint = fit_checkpoint(self.model)
        if isinstance(checkpoint, EpochCheckpoint):
            return checkpoint.directory
        return None if checkpoint is None else os.fspath(checkpoint)

    def _advice(self):
        """What is left and what to do, true of this run's checkpoints."""
        data = "or check the data of that step"
        directory = self._checkpoint_directory()
        if directory is None:
            return (
                "This step's weights are not finite; no EpochCheckpoint saves "
                f"this run: start again with a lower learning rate {data}."
            )
        try:
            path, epoch = latest_readable_checkpoint(directory)
        except ValueError:  # checkpoints, none readable
            return (
                "This step's weights are not finite and were not saved; no "
                f"checkpoint in {directory} is readable: start again with a lower "
                "learning rate (a recipe: the same command with --overwrite "
                f"--learning-rate <lower>) {data}."
            )
        if path is None:
            return (
                "This step's weights are not finite and were not saved; no "
                f"checkpoint was written yet (none in {directory}): start again "
                "with a lower learning rate (a recipe: the same command with "
                f"--learning-rate <lower>) {data}."
            )
        return (
            "This step's weights are not finite and were not saved; the last "
            f"checkpoint is {path} (after epoch {epoch}): resume from it with a "
            f"lower learning rate (a recipe: --resume --learning-rate <lower>) {data}."
        )

    def _describe_path(self):
        model = self.model
        get_path = getattr(model, "get_path", None)
        if get_path is None:
            return ""
        try:
            arch = get_path()
            space = model.space
            text = space.to_string(arch)
        except Exception:  # the message must not fail on a broken model
            return ""
        return f", training path {text}"

    def get_config(self):
        checkpoint = self.checkpoint
        if isinstance(checkpoint, EpochCheckpoint):
            checkpoint = checkpoint.directory
        return {
            "monitor": self.monitor,
            "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        }
