"""Choice layers (the supernet modules) and re-exported building blocks."""

from kerasnas.layers.choice import Choice
from kerasnas.layers.drop_path import DropPath
from kerasnas.layers.interchoice import BiasChoice
from kerasnas.layers.interchoice import INTERCHOICE
from kerasnas.layers.interchoice import SplitChoice
from kerasnas.layers.local_share import LocalShareChoice
from kerasnas.layers.mixed import MixedChoice
from kerasnas.layers.value_choice import ValueChoice
from kerasnas.layers.selection import CHOICE_TYPES
from kerasnas.layers.selection import architecture_input
from kerasnas.layers.selection import call_choice
from kerasnas.layers.selection import input_transform
from kerasnas.layers.selection import check_choice_type
from kerasnas.layers.selection import make_choice
from kerasnas.ops.batch_norm import BatchNorm
from kerasnas.ops.batch_norm import calibration_scope
from kerasnas.ops.batch_norm import moving_stats_gate
