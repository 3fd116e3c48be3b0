"""Choice layers (the supernet modules) and re-exported building blocks."""

from kerasnas.layers.choice import Choice
from kerasnas.ops.batch_norm import BatchNorm
from kerasnas.ops.batch_norm import calibration_scope
from kerasnas.ops.batch_norm import moving_stats_gate
