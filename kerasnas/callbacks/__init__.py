"""Callbacks for supernet training."""

from kerasnas.callbacks.epoch_checkpoint import EpochCheckpoint
from kerasnas.callbacks.epoch_checkpoint import latest_checkpoint
from kerasnas.callbacks.epoch_checkpoint import latest_readable_checkpoint
from kerasnas.callbacks.epoch_checkpoint import list_checkpoints
from kerasnas.callbacks.epoch_checkpoint import restore_checkpoint
from kerasnas.callbacks.drop_path import DropPathSchedule
from kerasnas.callbacks.non_finite import NonFiniteLossError
from kerasnas.callbacks.non_finite import StopOnNonFiniteLoss
from kerasnas.callbacks.split_weights import SplitWeights
